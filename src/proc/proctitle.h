/*
 * Process titles as ps shows them ("fpmd: master process (/etc/fpmd/fpmd.conf)",
 * "fpmd: pool www"): the argv area is rewritten in place, extended over the
 * environment strings after they have been copied elsewhere.
 */
#ifndef FPMD_PROCTITLE_H
#define FPMD_PROCTITLE_H

void proctitle_init(int argc, char **argv);
extern char **proctitle_environ;
extern char **proctitle_env_strings;
void proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
