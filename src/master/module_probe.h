#ifndef FPMD_MODULE_PROBE_H
#define FPMD_MODULE_PROBE_H

#include <stddef.h>

#include "conf/conf.h"

/*
 * Loads a module pool's module.path in a child process and checks its
 * fpmd_module.  0, or -1 with what is wrong in err ("cannot be loaded: …").
 */
int module_probe(const struct pool_conf *p, char *err, size_t cap);

#endif
