/*
 * cgi.landlock: a cgi worker, and every script it runs, may read and execute
 * files only under the pool's cgi.root, cgi.allow[] and cgi.interpreter
 * paths and the system's program and library directories.
 */
#ifndef FPMD_CGI_LANDLOCK_H
#define FPMD_CGI_LANDLOCK_H

struct pool_conf;

/*
 * Restricts the calling process (a cgi worker after its privileges were
 * dropped) for good.  roots/allow are the resolved paths the handler uses.
 * 0, or -1 with the reason logged (the kernel lacks Landlock, a rule failed).
 */
int cgi_landlock_apply(const struct pool_conf *pc, char *const *roots, unsigned long nroots,
		       char *const *allow, unsigned long nallow);

#endif
