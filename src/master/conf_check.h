#ifndef FPMD_CONF_CHECK_H
#define FPMD_CONF_CHECK_H

#include "conf/conf.h"

/* Adds an error for each system-level problem; returns -1 if any was found. */
int conf_check_system(const struct fpmd_conf *c, struct conf_diags *d);

#endif
