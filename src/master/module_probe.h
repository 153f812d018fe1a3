#ifndef FPMD_MODULE_PROBE_H
#define FPMD_MODULE_PROBE_H

#include <stddef.h>

#include "conf/conf.h"

/*
 * Loads a module pool's module.path in a child process and checks its
 * fpmd_module.  0, or -1 with what is wrong in err ("cannot be loaded: …").
 */
int module_probe(const struct pool_conf *p, char *err, size_t cap);
/*
 * main()'s first step: `fpmd --probe-module PATH USER GROUP` is the probe
 * module_probe runs; it never returns then.  -1 for any other command line.
 */
int module_probe_main(int argc, char **argv);

#endif
