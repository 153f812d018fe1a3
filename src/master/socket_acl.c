/*
 * listen.acl_users / listen.acl_groups: POSIX ACL entries on a pool's unix
 * socket (php-fpm's directives), written as the kernel's
 * system.posix_acl_access attribute, so no libacl is needed.
 */
#include "master/socket_acl.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "master/ids.h"
#include "net/listen.h"

/* The kernel's format (linux/posix_acl_xattr.h). */
#define ACL_XATTR_VERSION 0x0002u
enum { TAG_USER_OBJ = 0x01, TAG_USER = 0x02, TAG_GROUP_OBJ = 0x04, TAG_GROUP = 0x08,
       TAG_MASK = 0x10, TAG_OTHER = 0x20 };
#define ACL_UNDEFINED_ID 0xffffffffu

struct acl_entry {
	uint16_t tag, perm;
	uint32_t id;
};

static int cmp_entries(const void *a, const void *b)
{
	const struct acl_entry *x = a, *y = b;
	if (x->tag != y->tag)
		return x->tag < y->tag ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Adds one entry per comma-separated name; -1 with the bad name in *bad. */
static int add_names(const char *list, int group, struct acl_entry *e, size_t *n, size_t cap,
		     const char **bad)
{
	static char name[256];
	for (const char *p = list; p && *p;) {
		size_t len = strcspn(p, ", ");
		if (len && len < sizeof(name)) {
			memcpy(name, p, len);
			name[len] = '\0';
			uid_t uid;
			gid_t gid;
			int rc = group ? ids_group(name, &gid) : ids_user(name, &uid, &gid, NULL, 0);
			if (rc < 0) {
				*bad = name;
				return -1;
			}
			if (*n == cap)
				return -1;
			e[(*n)++] = (struct acl_entry){ group ? TAG_GROUP : TAG_USER, 6,
							group ? (uint32_t)gid : (uint32_t)uid };
		}
		p += len;
		p += strspn(p, ", ");
	}
	return 0;
}

int socket_acl_check(const char *users, const char *groups, char *err, size_t errlen)
{
	struct acl_entry e[68];
	size_t n = 0;
	const char *bad = NULL;
	int in_users = add_names(users, 0, e, &n, 64, &bad) < 0;
	if (in_users || add_names(groups, 1, e, &n, 64, &bad) < 0) {
		snprintf(err, errlen, "listen.acl_%s: cannot resolve '%s'", in_users ? "users" : "groups",
			 bad ? bad : "?");
		return -1;
	}
	return 0;
}

int socket_acl_apply(const char *path, unsigned mode, const char *users, const char *groups,
		     char *err, size_t errlen)
{
	struct acl_entry e[68];
	size_t n = 0;
	const char *bad = NULL;
	if (add_names(users, 0, e, &n, 64, &bad) < 0 || add_names(groups, 1, e, &n, 64, &bad) < 0) {
		snprintf(err, errlen, "listen.acl_%s: cannot resolve '%s'", bad && users &&
			 strstr(users, bad) ? "users" : "groups", bad ? bad : "?");
		return -1;
	}
	e[n++] = (struct acl_entry){ TAG_USER_OBJ, (uint16_t)((mode >> 6) & 7), ACL_UNDEFINED_ID };
	e[n++] = (struct acl_entry){ TAG_GROUP_OBJ, (uint16_t)((mode >> 3) & 7), ACL_UNDEFINED_ID };
	e[n++] = (struct acl_entry){ TAG_MASK, 6, ACL_UNDEFINED_ID };
	e[n++] = (struct acl_entry){ TAG_OTHER, (uint16_t)(mode & 7), ACL_UNDEFINED_ID };
	qsort(e, n, sizeof(e[0]), cmp_entries);

	unsigned char buf[4 + sizeof(e)];
	uint32_t v = ACL_XATTR_VERSION;   /* little endian on the platforms fpmd runs on */
	memcpy(buf, &v, 4);
	for (size_t i = 0; i < n; i++)
		memcpy(buf + 4 + i * 8, &e[i], 8);
	/* never through a symlink a pool's user may have put there (listen.h) */
	char proc[LISTEN_PROC_PATH_MAX];
	int pin = listen_path_pin(path, proc);
	if (pin < 0) {
		int saved = errno;
		snprintf(err, errlen, "'%s' is not the pool's socket any more (%s): its ACL was left "
			 "alone", path, saved == ENOTSOCK ? "not a socket" : strerror(saved));
		errno = saved;
		return -1;
	}
	int rc = 0;
	if (setxattr(proc, "system.posix_acl_access", buf, 4 + n * 8, 0) < 0) {
		snprintf(err, errlen, "cannot set the ACL of '%s': %s", path, strerror(errno));
		rc = -1;
	}
	int saved = errno;
	close(pin);
	errno = saved;
	return rc;
}
