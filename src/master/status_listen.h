/*
 * pm.status_listen answered by the master itself (status_listen.c).
 */
#ifndef FPMD_STATUS_LISTEN_H
#define FPMD_STATUS_LISTEN_H

#include "master/master.h"

int  status_listen_open(struct master *m, struct pool *p, const struct listen_perms *perms);
int  status_listen_start(struct master *m, struct pool *p);
void status_listen_close(struct master *m, struct pool *p);

#endif
