#ifndef FPMD_CONF_CHECK_H
#define FPMD_CONF_CHECK_H

#include "conf/conf.h"

/* Adds an error for each system-level problem; returns -1 if any was found. */
/* check_users: resolve user and group (always with -t; only as root when starting). */
int conf_check_system(const struct fpmd_conf *c, struct conf_diags *d, int check_users);
/* Pools that would run as root need -R (allow_root), as php-fpm requires. */
void conf_check_root_pools(const struct fpmd_conf *c, int allow_root, struct conf_diags *d);

#endif
