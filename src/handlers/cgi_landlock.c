/*
 * Landlock (Linux 5.13+) for cgi pools.  Only reading and executing are
 * handled: writing stays with the file modes of the pool's user, so scripts
 * keep /dev/null, /tmp and their own data directories; what Landlock adds is
 * that a script (or a bug in the worker) cannot read another site's files,
 * /home, or secrets outside the allowed trees, whatever their modes.
 *
 * Allowed to read and execute: each cgi.root, each cgi.allow[] file, each
 * cgi.interpreter, and /usr, /bin, /sbin, /lib, /lib32, /lib64, /libx32
 * (programs and their libraries).  Allowed to read: /etc (the loader cache,
 * locale, passwd), /dev (null, urandom) and /proc (a script's own /proc/self).
 * Paths that do not exist are skipped.  The ruleset needs no_new_privs, which
 * every worker sets (worker_setup.c).
 */
#include "handlers/cgi_landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "conf/conf.h"
#include "log/log.h"

#define FS_READ  (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_RX    (FS_READ | LANDLOCK_ACCESS_FS_EXECUTE)
/* A rule on a file may name only the rights that apply to files. */
#define FILE_RIGHTS (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_EXECUTE)

static const char *const system_rx[] = { "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
					 "/libx32" };
static const char *const system_r[] = { "/etc", "/dev", "/proc" };

/* 0 when allowed or absent (ENOENT), -1 on a real failure (logged). */
static int allow_path(int ruleset, const char *pool, const char *path, uint64_t rights)
{
	int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		log_sys(LL_ERROR, "[pool %s] cgi.landlock: cannot open '%s'", pool, path);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		rights &= FILE_RIGHTS;
	struct landlock_path_beneath_attr attr = { .allowed_access = rights, .parent_fd = fd };
	long r = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &attr, 0);
	int e = errno;
	close(fd);
	if (r < 0) {
		errno = e;
		log_sys(LL_ERROR, "[pool %s] cgi.landlock: cannot allow '%s'", pool, path);
		return -1;
	}
	return 0;
}

int cgi_landlock_apply(const struct pool_conf *pc, char *const *roots, unsigned long nroots,
		       char *const *allow, unsigned long nallow)
{
	const char *pool = pc->name;
	struct landlock_ruleset_attr attr = { .handled_access_fs = FS_RX };
	long fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (fd < 0) {
		log_sys(LL_ERROR, "[pool %s] child %d: cgi.landlock = yes but this kernel offers no "
			"Landlock (Linux 5.13+, 'landlock' in the lsm= boot list); refusing to run "
			"scripts unconfined", pool, (int)getpid());
		return -1;
	}
	int ruleset = (int)fd, rc = 0;
	for (unsigned long i = 0; i < nroots && rc == 0; i++)
		rc = allow_path(ruleset, pool, roots[i], FS_RX);
	for (unsigned long i = 0; i < nallow && rc == 0; i++)
		rc = allow_path(ruleset, pool, allow[i], FS_RX);
	for (size_t i = 0; i < pc->cgi_interpreter.n && rc == 0; i++)
		rc = allow_path(ruleset, pool, pc->cgi_interpreter.items[i].value, FS_RX);
	for (size_t i = 0; i < sizeof(system_rx) / sizeof(*system_rx) && rc == 0; i++)
		rc = allow_path(ruleset, pool, system_rx[i], FS_RX);
	for (size_t i = 0; i < sizeof(system_r) / sizeof(*system_r) && rc == 0; i++)
		rc = allow_path(ruleset, pool, system_r[i], FS_READ);
	/* worker_setup set it already; restrict_self refuses without it */
	if (rc == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		rc = -1;
	if (rc == 0 && syscall(SYS_landlock_restrict_self, ruleset, 0) < 0) {
		log_sys(LL_ERROR, "[pool %s] cgi.landlock: landlock_restrict_self() failed", pool);
		rc = -1;
	}
	close(ruleset);
	return rc;
}
