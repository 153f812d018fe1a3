/* listen.acl_users / listen.acl_groups on a unix socket (socket_acl.c). */
#ifndef FPMD_SOCKET_ACL_H
#define FPMD_SOCKET_ACL_H

#include <stddef.h>

/* mode gives the owner, group and other entries; 0, or -1 with a reason in err. */
int socket_acl_apply(const char *path, unsigned mode, const char *users, const char *groups,
		     char *err, size_t errlen);
/* Every name resolves (fpmd -t): 0, or -1 with the one that does not in err. */
int socket_acl_check(const char *users, const char *groups, char *err, size_t errlen);

#endif
