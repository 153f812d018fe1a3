/*
 * Everything a worker does between fork and its first accept, in the order
 * that keeps it safe: tie its life to the master's, limits and priority while
 * still privileged, chroot/chdir, environment, then drop to the pool's user
 * for good.  No request is ever read with more privilege than the pool has.
 */
#include "worker/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log/log.h"
#include "proc/proctitle.h"

static int set_rlimit(int resource, long long value, const char *name)
{
	if (value == CONF_UNSET)
		return 0;
	struct rlimit rl;
	rl.rlim_cur = rl.rlim_max = value == -2 ? RLIM_INFINITY : (rlim_t)value;
	if (setrlimit(resource, &rl) < 0) {
		/* the master tags the line with the pool and the child */
		log_sys(LL_WARNING, "failed to set %s", name);
		return -1;
	}
	return 0;
}

/* A Ctrl-C seen by the worker itself: nothing to do, the master decides. */
static void on_sigint(int sig)
{
	(void)sig;
}

static void reset_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	static const int dfl[] = { SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP, SIGCHLD, SIGALRM };
	for (size_t i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
		sigaction(dfl[i], &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	/*
	 * Ctrl-C reaches the whole foreground group: stopping is the master's
	 * call.  Caught, not ignored: an ignored signal stays ignored in every
	 * program the worker runs (a script's proc_open(), exec()), which
	 * proc_terminate($p, SIGINT) could then not stop; a handler is reset
	 * to the default by exec.
	 */
	sa.sa_handler = on_sigint;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sa.sa_flags = 0;

	/* SIGQUIT stays blocked except while waiting (see conn.c). */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGQUIT);
	sigprocmask(SIG_SETMASK, &set, NULL);
}

static int apply_env(const struct pool *p)
{
	const struct pool_conf *pc = p->conf;
	if (pc->clear_env)
		clearenv();
	for (size_t i = 0; i < pc->env.n; i++)
		if (setenv(pc->env.items[i].key, pc->env.items[i].value, 1) < 0)
			return -1;
	/*
	 * The pool's user, as php-fpm sets them (after env[], as it does): a
	 * program a script runs (git, ssh) must not look in root's home.
	 */
	if (p->uid != (uid_t)-1 && p->user_name[0] && setenv("USER", p->user_name, 1) < 0)
		return -1;
	if (p->uid != (uid_t)-1 && p->user_home[0] && setenv("HOME", p->user_home, 1) < 0)
		return -1;
	return 0;
}

/*
 * apparmor_hat: the worker moves to its profile's hat, as php-fpm's
 * (libapparmor's aa_getcon and aa_change_profile are these two /proc writes).
 */
static int change_apparmor_hat(const struct pool_conf *pc)
{
	static const char *const attrs[] = { "/proc/self/attr/apparmor/current",
					     "/proc/self/attr/current" };
	char con[512];
	const char *attr = NULL;
	ssize_t n = -1;
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]) && n < 0; i++) {
		int fd = open(attrs[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, con, sizeof(con) - 1);
		close(fd);
		attr = attrs[i];
	}
	if (n <= 0) {
		log_sys(LL_ERROR, "[pool %s] failed to query apparmor confinement. Please check if "
			"\"/proc/*/attr/current\" is read and writeable.", pc->name);
		return -1;
	}
	con[n] = '\0';
	con[strcspn(con, " \n")] = '\0';       /* "profile (enforce)" -> "profile" */
	char cmd[600];
	int len = snprintf(cmd, sizeof(cmd), "changeprofile %s//%s", con, pc->apparmor_hat);
	int fd = open(attr, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || len < 0 || (size_t)len >= sizeof(cmd) || write(fd, cmd, (size_t)len) != len) {
		log_sys(LL_ERROR, "[pool %s] failed to change to new confinement (%s//%s)", pc->name,
			con, pc->apparmor_hat);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int drop_privileges(struct worker *w)
{
	struct pool *p = w->pool;
	if (p->uid == (uid_t)-1 && p->gid == (gid_t)-1)
		return 0;
	if (geteuid() == 0) {
		/* the master's list (pool.h): no NSS here, possibly inside the chroot, as root */
		if (p->uid != (uid_t)-1 && p->user_name[0] && p->ngroups > 0) {
			if (setgroups((size_t)p->ngroups, p->groups) < 0) {
				log_sys(LL_ERROR, "[pool %s] failed to setgroups() for %s (%d groups)",
					p->conf->name, p->user_name, p->ngroups);
				return -1;
			}
		} else if (p->uid != (uid_t)-1 && p->user_name[0] && p->gid != (gid_t)-1) {
			if (setgroups(1, &p->gid) < 0) {
				log_sys(LL_ERROR, "[pool %s] failed to setgroups()", p->conf->name);
				return -1;
			}
		} else if (setgroups(0, NULL) < 0) {
			log_sys(LL_ERROR, "[pool %s] failed to setgroups()", p->conf->name);
			return -1;
		}
	}
	if (p->gid != (gid_t)-1 && setgid(p->gid) < 0) {
		log_sys(LL_ERROR, "[pool %s] failed to setgid(%d)", p->conf->name, (int)p->gid);
		return -1;
	}
	if (p->uid != (uid_t)-1 && setuid(p->uid) < 0) {
		log_sys(LL_ERROR, "[pool %s] failed to setuid(%d)", p->conf->name, (int)p->uid);
		return -1;
	}
	return 0;
}

/* See WORKER_FD_LISTEN: not for cgi and exec pools, whose programs get their own 0. */
static int move_listen_off_stdin(const struct pool_conf *pc)
{
	if (pc->app_type == APP_CGI || pc->app_type == APP_EXEC || worker_fd_listen != 0)
		return 0;
	int moved = fcntl(0, F_DUPFD_CLOEXEC, WORKER_FD_LAST + 1);
	int null = open("/dev/null", O_RDONLY);
	if (moved < 0 || null < 0 || dup2(null, 0) < 0) {
		log_sys(LL_ERROR, "[pool %s] cannot put /dev/null on the worker's stdin", pc->name);
		return -1;
	}
	if (null != 0)
		close(null);
	worker_fd_listen = moved;
	return 0;
}

int worker_setup(struct worker *w)
{
	const struct pool_conf *pc = w->pool->conf;

	reset_signals();
	if (move_listen_off_stdin(pc) < 0)
		return -1;
	log_set_pipe(WORKER_FD_LOG, pc->name);
	proctitle_set("fpmd: pool %s", pc->name);

	long long nofile = pc->rlimit_files != CONF_UNSET ? pc->rlimit_files : w->global->rlimit_files;
	if (nofile == CONF_UNSET && master_nofile_soft) {
		/* the limit fpmd was started with, not the master's raised one */
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
			rl.rlim_cur = (rlim_t)master_nofile_soft;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	} else {
		set_rlimit(RLIMIT_NOFILE, nofile, "rlimit_files");
	}
	set_rlimit(RLIMIT_CORE, pc->rlimit_core != CONF_UNSET ? pc->rlimit_core
				: w->global->rlimit_core, "rlimit_core");
	if (pc->process_priority != CONF_UNSET &&
	    setpriority(PRIO_PROCESS, 0, pc->process_priority) < 0)
		log_sys(LL_WARNING, "[pool %s] failed to set priority to %d", pc->name,
			pc->process_priority);

	if (pc->chroot && *pc->chroot) {
		if (chroot(pc->chroot) < 0) {
			log_sys(LL_ERROR, "[pool %s] failed to chroot(%s)", pc->name, pc->chroot);
			return -1;
		}
		if (chdir("/") < 0)
			return -1;
	}
	if (pc->chdir && *pc->chdir && chdir(pc->chdir) < 0) {
		log_sys(LL_ERROR, "[pool %s] failed to chdir(%s)", pc->name, pc->chdir);
		return -1;
	}
	if (apply_env(w->pool) < 0)
		return -1;
	/* The output pipes become the pool user's, like any file it opens itself. */
	if (pc->catch_workers_output && geteuid() == 0) {
		if (fchown(STDOUT_FILENO, w->pool->uid, w->pool->gid) < 0 ||
		    fchown(STDERR_FILENO, w->pool->uid, w->pool->gid) < 0)
			log_sys(LL_WARNING, "[pool %s] fchown() of the output pipes failed", pc->name);
	}
	if (drop_privileges(w) < 0)
		return -1;
	if (pc->apparmor_hat && *pc->apparmor_hat && change_apparmor_hat(pc) < 0)
		return -1;
	/*
	 * If the master dies, finish the request in flight and leave.  Set after
	 * setuid, which clears it, then check the master did not die before.
	 */
	prctl(PR_SET_PDEATHSIG, SIGQUIT);
	if (getppid() != w->master_pid)
		_exit(0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		log_sys(LL_WARNING, "[pool %s] prctl(PR_SET_NO_NEW_PRIVS) failed", pc->name);
	if (pc->process_dumpable)
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	return 0;
}
