/*
 * The master: open every pool, fork the workers, then wait in one epoll
 * loop for signals, child output and timers.  Signals arrive through
 * signalfd and are handled here, in order, never inside a signal handler.
 */
#include "master/master.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ev/ev.h"
#include "handlers/handler.h"
#include "log/log.h"
#include "master/control.h"
#include "master/ids.h"
#include "master/kept.h"
#include "master/socket_acl.h"
#include "master/pm.h"
#include "master/sdnotify.h"
#include "master/status_listen.h"
#include "proc/proctitle.h"

/*
 * initgroups()'s list, made here (see pool.h, groups): the user's groups
 * from the host's NSS, and the pool's group, as initgroups(user, gid) sets.
 * A user without a passwd name (a bare uid) gets the pool's group alone.
 */
static void resolve_groups(struct pool *p)
{
	free(p->groups);
	p->groups = NULL;
	p->ngroups = 0;
	if (p->uid == (uid_t)-1 || !p->user_name[0])
		return;
	int n = 32;
	for (int tries = 0; tries < 8; tries++) {
		gid_t *list = malloc((size_t)n * sizeof(*list));
		if (!list)
			return;
		int got = n;
		if (getgrouplist(p->user_name, p->gid, list, &got) >= 0) {
			p->groups = list;
			p->ngroups = got;
			return;
		}
		free(list);
		if (got <= n)
			return;
		n = got;
	}
}

static void resolve_user(struct pool *p)
{
	const struct pool_conf *pc = p->conf;
	p->uid = (uid_t)-1;
	p->gid = (gid_t)-1;
	if (geteuid() != 0)
		return;            /* not root: workers run as whoever started fpmd */
	if (pc->user && *pc->user) {
		uid_t uid;
		gid_t gid;
		if (ids_user(pc->user, &uid, &gid, p->user_name, sizeof(p->user_name)) == 0) {
			p->uid = uid;
			struct passwd *pw = getpwuid(uid);
			if (pw && pw->pw_dir)
				snprintf(p->user_home, sizeof(p->user_home), "%s", pw->pw_dir);
			/* a bare uid without a passwd entry: its own number as the group, as php-fpm */
			p->gid = gid != (gid_t)-1 ? gid : (gid_t)uid;
		}
	}
	if (pc->group && *pc->group) {
		gid_t gid;
		if (ids_group(pc->group, &gid) == 0)
			p->gid = gid;
	}
	resolve_groups(p);
}

static int listen_perms_for(const struct pool_conf *pc, const struct pool *p,
			    struct listen_perms *perms)
{
	perms->owner = (uid_t)-1;
	perms->group = (gid_t)-1;
	perms->mode = pc->listen_mode;
	if (geteuid() != 0)
		return 0;
	/* php-fpm: the socket belongs to the pool's user unless listen.owner says otherwise. */
	const char *owner = pc->listen_owner && *pc->listen_owner ? pc->listen_owner : NULL;
	const char *group = pc->listen_group && *pc->listen_group ? pc->listen_group : NULL;
	if (owner) {
		uid_t uid;
		gid_t gid;
		if (ids_user(owner, &uid, &gid, NULL, 0) < 0) {
			log_error("[pool %s] cannot get uid for user '%s'", pc->name, owner);
			return -1;
		}
		perms->owner = uid;
		perms->group = gid;
	} else if (p->uid != (uid_t)-1) {
		perms->owner = p->uid;
		perms->group = p->gid;
	}
	if (group) {
		gid_t gid;
		if (ids_group(group, &gid) < 0) {
			log_error("[pool %s] cannot get gid for group '%s'", pc->name, group);
			return -1;
		}
		perms->group = gid;
	}
	return 0;
}

/* Releases everything a pool owns; safe on a pool that opened only partly. */
static void pool_close(struct master *m, struct pool *p)
{
	pm_pool_stop(m, p);
	kept_pool_close(m, p);
	status_listen_close(m, p);
	zygote_stop(m, p);
	while (p->own->children) {
		struct child *c = p->own->children;
		p->own->children = c->next;
		children_close_pipes(m, c);
		free(c);
	}
	if (p->own->respawn_timer)
		ev_timer_free(m->loop, p->own->respawn_timer);
	if (p->listen_fd >= 0 && !reload_give_back(m, p->listen_fd)) {
		close(p->listen_fd);
		if (p->addr.family == AF_UNIX && !p->own->listen_systemd)
			unlink(p->addr.path);
	}
	allowed_clients_free(&p->allowed);
	free(p->groups);
	sb_destroy(&p->sb);
	free(p->own->slot_used);
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	if (p->access_fd >= 0)
		close(p->access_fd);
	free(p);
}

static struct pool *pool_open(struct master *m, struct pool_conf *pc)
{
	char err[512];
	/* the pool and the master's own part of it, in one allocation */
	struct pool_alloc {
		struct pool pool;
		struct pool_master own;
	} *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	struct pool *p = &a->pool;
	p->own = &a->own;
	p->conf = pc;
	p->copt = &m->copt;
	p->own->master = m;
	p->listen_fd = -1;
	p->own->slowlog_fd = -1;
	p->access_fd = -1;
	p->own->status_fd = -1;
	p->own->zygote_fd = -1;
	p->handoff_fd = p->handoff_worker_fd = -1;
	p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->wake_fd < 0) {
		log_sys(LL_ERROR, "[pool %s] eventfd() failed", pc->name);
		goto fail;
	}
	p->handler = handler_for_pool(pc);
	if (!p->handler) {
		log_error("[pool %s] app.type = %s is not available in this build", pc->name,
			  conf_app_name(pc->app_type));
		goto fail;
	}
	resolve_user(p);
	if (listen_parse(pc->listen, &p->addr, err, sizeof(err)) < 0) {
		log_error("[pool %s] listen = '%s': %s", pc->name, pc->listen, err);
		goto fail;
	}
	struct listen_perms perms;
	if (listen_perms_for(pc, p, &perms) < 0)
		goto fail;
	if (kept_pool_open(m, p) < 0) {
		log_sys(LL_ERROR, "[pool %s] socketpair() failed", pc->name);
		goto fail;
	}
	p->listen_fd = reload_take_socket(m, p->addr.text, &p->own->listen_systemd);
	if (p->listen_fd >= 0) {
		p->own->listen_inherited = 1;
		/* A changed mode, owner or backlog applies to an inherited socket too. */
		if (p->addr.family == AF_UNIX && listen_path_apply(p->addr.path, &perms, err, sizeof(err)) < 0)
			log_warning("[pool %s] cannot apply listen.owner/mode: %s", pc->name, err);
		listen(p->listen_fd, pc->listen_backlog < 0 ? listen_somaxconn() : pc->listen_backlog);
	} else {
		p->listen_fd = listen_open(&p->addr, pc->listen_backlog, &perms, err, sizeof(err));
	}
	if (p->listen_fd >= 0 && p->addr.family == AF_UNIX &&
	    ((pc->listen_acl_users && *pc->listen_acl_users) ||
	     (pc->listen_acl_groups && *pc->listen_acl_groups)) &&
	    socket_acl_apply(p->addr.path, (unsigned)(pc->listen_mode >= 0 ? pc->listen_mode : 0660),
			     pc->listen_acl_users, pc->listen_acl_groups, err, sizeof(err)) < 0) {
		if (errno == ENOTSOCK && p->own->listen_inherited) {
			/* still the pool's socket (the descriptor), only its path is gone */
			log_warning("[pool %s] %s", pc->name, err);
		} else {
			log_error("[pool %s] %s", pc->name, err);
			goto fail;
		}
	}
	if (p->listen_fd < 0) {
		/* php-fpm's bind message names the address, not the pool: kept word for word */
		if (strncmp(err, "unable to bind", 14) == 0)
			log_error("%s", err);
		else
			log_error("[pool %s] %s", pc->name, err);
		goto fail;
	}
	if (status_listen_open(m, p, &perms) < 0)
		goto fail;
	if (allowed_clients_parse(pc->listen_allowed_clients, &p->allowed, err, sizeof(err)) < 0) {
		log_error("[pool %s] %s", pc->name, err);
		goto fail;
	}
	/*
	 * exec.mode = direct: the program accepts, and php-cgi checks no peer
	 * on a socket it did not bind (libfcgi only IPv4), so the kernel
	 * filters.  Every other pool checks in its workers; a socket inherited
	 * from a direct pool loses its filter.
	 */
	if (p->addr.family != AF_UNIX) {
		int direct = pc->app_type == APP_EXEC && pc->exec_mode == EXEC_DIRECT;
		if (allowed_clients_attach(p->listen_fd, direct ? &p->allowed : NULL) < 0) {
			log_sys(LL_ERROR, "[pool %s] cannot %s listen.allowed_clients on '%s'", pc->name,
				direct ? "apply" : "reset", p->addr.text);
			goto fail;
		}
	}
	if (pc->access_log && *pc->access_log) {
		p->access_fd = log_file_open(pc->access_log, 0640);
		if (p->access_fd < 0) {
			log_sys(LL_ERROR, "[pool %s] failed to open access.log '%s'", pc->name, pc->access_log);
			goto fail;
		}
	}
	unsigned nslots = (unsigned)(pc->pm_max_children > 0 ? pc->pm_max_children : 1);
	if (sb_create(&p->sb, nslots, pc->name) < 0) {
		log_sys(LL_ERROR, "[pool %s] mmap(scoreboard of %u slots) failed", pc->name, nslots);
		goto fail;
	}
	/* no worker yet: the new page is the master's own */
	p->own->hdr = *p->sb.hdr;
	POOL_HDR_SET(p, pm, (uint32_t)pc->pm);
	POOL_HDR_SET(p, max_children, nslots);
	POOL_HDR_SET(p, master_pid, (uint32_t)getpid());
	POOL_HDR_SET(p, listen_queue_len, (uint64_t)(pc->listen_backlog < 0 ? listen_somaxconn()
									    : pc->listen_backlog));
	p->own->slot_used = calloc(nslots, 1);
	if (!p->own->slot_used)
		goto fail;
	/*
	 * Handlers that start an interpreter once per pool (php) run it in a
	 * zygote.  Started here, all pools at once (master_run waits for them);
	 * an ondemand pool's only when its first connection comes: an idle
	 * ondemand pool costs no process at all.
	 */
	if (p->handler->prefork_start && pc->pm != PM_ONDEMAND && !pool_shares_zygote(p) &&
	    zygote_start(m, p, 0) < 0) {
		log_error("[pool %s] %s handler failed to start", pc->name, p->handler->name);
		goto fail;
	}
	return p;
fail:
	pool_close(m, p);
	return NULL;
}

static void run_marked_pools(struct ev_loop *loop, void *data)
{
	(void)loop;
	pm_run_marked(data);
}

static unsigned initial_children(const struct pool_conf *pc)
{
	switch (pc->pm) {
	case PM_STATIC:
		return (unsigned)pc->pm_max_children;
	case PM_DYNAMIC:
		return (unsigned)pc->pm_start_servers;
	default:
		return 0;
	}
}

/* --- stopping ------------------------------------------------------- */

static void on_stop_timer(struct ev_loop *loop, struct ev_watch *t, void *data)
{
	struct master *m = data;
	(void)loop;
	(void)t;
	if (m->total_children == 0 && m->old_children == 0)
		return;
	/* Escalate one step a second: QUIT → TERM → KILL. */
	if (m->stop_step == 0) {
		log_notice("%u children still running after the graceful stop timeout; sending SIGTERM",
			   m->total_children);
		children_signal_all(m, SIGTERM);
		m->stop_step = 1;
		ev_timer_arm(m->stop_timer, 1000, 0);
	} else {
		log_warning("%u children did not stop; sending SIGKILL", m->total_children);
		children_signal_all(m, SIGKILL);
		m->stop_step = 2;
	}
}

static void master_stop(struct master *m, enum master_state how)
{
	if (m->state == MASTER_TERMINATING || m->state == how)
		return;
	m->state = how;
	/* held kept connections end now, while the web server has sent nothing on them */
	for (struct pool *p = m->pools; p; p = p->next)
		kept_stop(m, p);
	if (m->drain_timer)
		ev_timer_disarm(m->drain_timer);
	sdnotify("STOPPING=1");
	if (!m->stop_timer)
		m->stop_timer = ev_timer_new(m->loop, on_stop_timer, m);
	if (how == MASTER_TERMINATING) {
		log_notice("Terminating ...");
		children_signal_all(m, SIGTERM);
		m->stop_step = 1;
		if (m->stop_timer)
			ev_timer_arm(m->stop_timer, 1000, 0);
	} else {
		log_notice("Finishing ...");
		children_signal_all(m, SIGQUIT);
		m->stop_step = 0;
		/* php-fpm's 0 escalates at once; fpmd's default of 10 s lets requests finish. */
		unsigned ms = (unsigned)m->conf->process_control_timeout * 1000u;
		if (m->stop_timer)
			ev_timer_arm(m->stop_timer, ms ? ms : 1, 0);
	}
	for (struct pool *p = m->pools; p; p = p->next) {
		if (p->own->respawn_timer)
			ev_timer_disarm(p->own->respawn_timer);
		if (p->own->pm_timer)
			ev_timer_disarm(p->own->pm_timer);
		p->own->pm_period_ms = 0;
	}
	if (m->total_children == 0 && m->old_children == 0)
		ev_stop(m->loop);
}

static void on_drain_timer(struct ev_loop *loop, struct ev_watch *t, void *data)
{
	struct master *m = data;
	(void)loop;
	(void)t;
	log_notice("sigterm_drain of %ds over", m->conf->sigterm_drain);
	master_stop(m, MASTER_FINISHING);
}

/*
 * SIGTERM with sigterm_drain: an orchestrator sends TERM and removes the
 * endpoint at about the same time, so requests keep coming for a while.
 * Readiness fails now (the scoreboard's draining flag, read by ping.path?ready
 * in workers and on status_listen), the pools keep accepting and respawning
 * for the delay, then the graceful QUIT path lets in-flight requests finish.
 */
static void master_drain(struct master *m)
{
	if (!m->drain_timer)
		m->drain_timer = ev_timer_new(m->loop, on_drain_timer, m);
	if (!m->drain_timer) {
		log_error("cannot start the sigterm_drain timer; finishing now");
		master_stop(m, MASTER_FINISHING);
		return;
	}
	m->draining = 1;
	for (struct pool *p = m->pools; p; p = p->next)
		if (p->sb.hdr)
			POOL_HDR_SET(p, draining, 1);
	sdnotify("STOPPING=1");
	log_notice("Draining: readiness answers 503, the pools keep serving for %ds (sigterm_drain), "
		   "then finish their requests", m->conf->sigterm_drain);
	ev_timer_arm(m->drain_timer, (unsigned)m->conf->sigterm_drain * 1000u, 0);
}

/*
 * USR1 for an access log: the master opens the path again, then the pool's
 * workers are replaced gracefully (each finishes its request) so the new
 * ones write to the new file.
 */
static int reopen_access_log(struct master *m, struct pool *p)
{
	(void)m;
	if (p->access_fd < 0)
		return 0;
	int fd = log_file_open(p->conf->access_log, 0640);
	if (fd < 0) {
		log_sys(LL_ERROR, "[pool %s] failed to reopen access.log '%s'", p->conf->name,
			p->conf->access_log);
		return 0;
	}
	close(p->access_fd);
	p->access_fd = fd;
	/* Workers hold the old file: each finishes its request and a new one gets the new file
	 * (a php zygote hands every new worker the pool's current access log). */
	for (struct child *c = p->own->children; c; c = c->next) {
		c->quitting = 1;
		kill(c->pid, SIGQUIT);
	}
	return 1;
}

static void on_signal(struct ev_loop *loop, int signo, void *data)
{
	struct master *m = data;
	(void)loop;
	switch (signo) {
	case SIGCHLD:
		children_reap(m);
		break;
	case SIGTERM:
		/* A second TERM while draining is an operator's: stop now, as php-fpm. */
		if (m->conf->sigterm_drain > 0 && m->state == MASTER_RUNNING && !m->draining)
			master_drain(m);
		else
			master_stop(m, MASTER_TERMINATING);
		break;
	case SIGINT:
		master_stop(m, MASTER_TERMINATING);
		break;
	case SIGQUIT:
		/* While draining too: the rest of the delay is skipped. */
		master_stop(m, MASTER_FINISHING);
		break;
	case SIGUSR1:
		if (log_reopen() < 0)
			log_sys(LL_ERROR, "failed to reopen the error log");
		else
			log_notice("error log file re-opened");
		int access = 0;
		for (struct pool *p = m->pools; p; p = p->next) {
			if (pm_slowlog_reopen(p) < 0)
				log_sys(LL_ERROR, "[pool %s] failed to reopen the slowlog", p->conf->name);
			access += reopen_access_log(m, p);
		}
		if (access)
			log_notice("access log file re-opened");
		break;
	case SIGUSR2:
	case SIGHUP:
		reload_request(m);
		break;
	default:
		break;
	}
}

/*
 * Under systemd: php-fpm's STATUS= line every systemd_interval (0: never),
 * and WATCHDOG=1 at half the watchdog period when one is set.
 */
static void on_sd_timer(struct ev_loop *loop, struct ev_watch *t, void *data)
{
	struct master *m = data;
	unsigned active = 0, idle = 0;
	uint64_t requests = 0, slow = 0;
	(void)loop;
	(void)t;
	if (m->conf->systemd_interval <= 0) {
		sdnotify("WATCHDOG=1");       /* the timer runs for the watchdog alone */
		return;
	}
	for (struct pool *p = m->pools; p; p = p->next) {
		struct pool_counts n;
		pool_count(p, &n);
		requests += n.requests;
		active += n.active;
		idle += n.idle;
		slow += p->own->slow_requests;
	}
	uint64_t now = sb_mono_us();
	double rate = m->sd_last_us && now > m->sd_last_us && requests >= m->sd_last_requests
		? (double)(requests - m->sd_last_requests) * 1e6 / (double)(now - m->sd_last_us) : 0;
	m->sd_last_us = now;
	m->sd_last_requests = requests;
	sdnotify("STATUS=Processes active: %u, idle: %u, Requests: %llu, slow: %llu, Traffic: "
		 "%.1freq/sec%s", active, idle, (unsigned long long)requests, (unsigned long long)slow,
		 rate, m->sd_watchdog_us ? "\nWATCHDOG=1" : "");
}

static void sd_start(struct master *m)
{
	if (!sdnotify_enabled())
		return;
	/* systemd_interval = 0 and no watchdog: no timer at all, so an idle
	 * master never wakes (the conf parser already made "unset" 10 s). */
	uint64_t ms = m->conf->systemd_interval > 0 ? (uint64_t)m->conf->systemd_interval * 1000u : 0;
	if (m->sd_watchdog_us) {
		uint64_t half = m->sd_watchdog_us / 2000u;
		if (ms == 0 || half < ms)
			ms = half ? half : 1000;
	}
	if (ms == 0)
		return;
	if (ms > UINT_MAX)
		ms = UINT_MAX;
	m->sd_timer = ev_timer_new(m->loop, on_sd_timer, m);
	if (m->sd_timer)
		ev_timer_arm(m->sd_timer, (unsigned)ms, (unsigned)ms);
}

/* --- run ------------------------------------------------------------- */

static int open_log(const struct fpmd_conf *c, const struct master_options *opt)
{
	/* -O is for the foreground, as php-fpm's: a daemon logs to its file */
	int force_stderr = opt->force_stderr && !c->daemonize;
	struct log_settings ls = {
		.path = c->error_log,
		.syslog_ident = c->syslog_ident,
		.syslog_facility = c->syslog_facility,
		.level = (enum log_level)c->log_level,
		.limit = c->log_limit,
		.force_stderr = force_stderr,
		.json = c->log_format && strcmp(c->log_format, "json") == 0,
	};
	if (force_stderr && c->error_log && strcmp(c->error_log, "syslog") != 0) {
		/* -O: everything to stderr, as php-fpm does; like php-fpm, the file still exists */
		int fd = log_file_open(c->error_log, 0600);
		if (fd >= 0)
			close(fd);
	}
	if (force_stderr)
		ls.path = NULL;
	if (log_open(&ls) < 0) {
		fprintf(stderr, "fpmd: failed to open error_log (%s): %s\n", c->error_log, strerror(errno));
		return -1;
	}
	return 0;
}

unsigned long long master_nofile_soft;

/*
 * The global rlimit_files and rlimit_core are the master's, as php-fpm
 * sets them (its workers inherit them unless their pool sets its own).
 */
static void master_rlimit(int resource, long long value, const char *name)
{
	if (value == CONF_UNSET)
		return;
	struct rlimit rl;
	if (getrlimit(resource, &rl) < 0)
		return;
	rlim_t want = value == -2 ? RLIM_INFINITY : (rlim_t)value;
	if (resource == RLIMIT_NOFILE && want == RLIM_INFINITY)
		want = rl.rlim_max;          /* no such thing for descriptors: the most allowed */
	rl.rlim_cur = want;
	if (want > rl.rlim_max || geteuid() == 0)
		rl.rlim_max = want;
	if (setrlimit(resource, &rl) < 0)
		log_sys(LL_WARNING, "failed to set %s to %lld for the master", name, value);
}

/* Hundreds of pools need more than the usual 1024 descriptors in the master. */
static void raise_nofile(const struct fpmd_conf *conf)
{
	struct rlimit rl;
	master_rlimit(RLIMIT_CORE, conf->rlimit_core, "rlimit_core");
	if (conf->rlimit_files != CONF_UNSET) {
		master_rlimit(RLIMIT_NOFILE, conf->rlimit_files, "rlimit_files");
		return;              /* the operator's number, not raised further */
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max || rl.rlim_cur >= 65536)
		return;
	rlim_t want = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
	rlim_t was = rl.rlim_cur;
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		master_nofile_soft = (unsigned long long)was;
}

int master_run(struct fpmd_conf *conf, const struct master_options *opt)
{
	struct master m = { .conf = conf, .opt = *opt, .daemon_pipe = -1, .exit_code = 0,
			    .ctl_client = -1, .ctl_fd = -1, .shared_zygote_fd = -1 };
	struct pool **tail = &m.pools;
	sigset_t set;

	if (open_log(conf, opt) < 0)
		return 78;
	raise_nofile(conf);
	if (opt->copt)
		m.copt = *opt->copt;
	ssize_t xl = readlink("/proc/self/exe", m.exe, sizeof(m.exe) - 1);
	m.exe[xl > 0 ? xl : 0] = '\0';
	if (getenv("FPMD_RELOADED"))
		m.reloaded = 1;
	/* A re-exec's stderr is the log itself (daemonize_notify), or nobody's terminal. */
	log_set_starting(!m.reloaded);
	m.sd_watchdog_us = sdnotify_init();
	if (conf->daemonize && !m.reloaded && daemonize_start(&m.daemon_pipe) < 0) {
		log_sys(LL_ALERT, "failed to daemonize");
		return 70;
	}
	m.pid = getpid();
	/* after a rolled-back reload the text came from a descriptor: the file is still the one named */
	const char *shown = conf->file ? conf->file : "-";
	if (strncmp(shown, "/proc/self/fd/", 14) == 0 && opt->config)
		shown = opt->config;
	proctitle_set("fpmd: master process (%s)", shown);

	struct sigaction ign = { .sa_handler = SIG_IGN };
	sigaction(SIGPIPE, &ign, NULL);

	m.loop = ev_loop_new();
	if (!m.loop) {
		log_sys(LL_ALERT, "epoll_create1() failed");
		goto fail;
	}
	sigemptyset(&set);
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGHUP };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	if (ev_signals(m.loop, &set, on_signal, &m) < 0) {
		log_sys(LL_ALERT, "signalfd() failed");
		goto fail;
	}
	reload_init(&m);

	for (size_t i = 0; i < conf->npools; i++) {
		struct pool *p = pool_open(&m, conf->pools[i]);
		if (!p)
			goto fail;
		*tail = p;
		tail = &p->next;
	}
	/*
	 * php.zygote = shared: one zygote starts PHP for every shared pool, forked
	 * now that every pool's socket is open; it clones their workers.
	 */
	if (zygote_shared_start(&m, 1) < 0)
		goto fail;
	/* The zygotes started PHP side by side; each must be ready before its workers. */
	for (struct pool *p = m.pools; p; p = p->next)
		if (p->own->zygote && zygote_wait_ready(&m, p) < 0) {
			log_error("[pool %s] %s handler failed to start", p->conf->name, p->handler->name);
			goto fail;
		}
	if (control_open(&m) < 0)
		goto fail;
	if (conf->pid && pidfile_write(conf->pid) < 0) {
		log_sys(LL_ERROR, "failed to write the pid file '%s'", conf->pid);
		goto fail;
	}
	m.pid_file_written = conf->pid != NULL;

	log_notice("fpm is running, pid %d", (int)m.pid);
	for (struct pool *p = m.pools; p; p = p->next) {
		/*
		 * A pool that cannot start its minimum is a failed start, not a
		 * service that says it is ready with a fraction of its workers.
		 */
		children_spawn(&m, p, initial_children(p->conf));
		if (pm_pool_start(&m, p) < 0 || status_listen_start(&m, p) < 0 ||
		    kept_pool_start(&m, p) < 0) {
			log_sys(LL_ALERT, "[pool %s] cannot start its process manager", p->conf->name);
			goto fail;
		}
	}
	/* A zygote's clones are answered through the loop; the first ones are awaited here. */
	zygote_wait_spawned(&m);
	for (struct pool *p = m.pools; p; p = p->next) {
		unsigned want = initial_children(p->conf);
		/* process.max stops spawning on purpose (with its own warning): not a failure */
		if (p->own->running < want && !m.process_max_warned) {
			log_error("[pool %s] started %u of its %u workers (see the error above): not "
				  "starting", p->conf->name, p->own->running, want);
			goto fail;
		}
	}
	reload_after_start(&m);
	/* After a reload: once the new generation serves and the previous one was told to go. */
	if (!m.old)
		log_notice("ready to handle connections");
	for (size_t i = 0; opt->warnings && i < opt->warnings->n; i++) {
		const struct conf_diag *dg = &opt->warnings->items[i];
		if (dg->severity != 0)
			continue;
		char *line = conf_diag_format(dg);
		log_warning("%s", line ? line : dg->msg);
		free(line);
	}
	log_set_starting(0);
	daemonize_notify(&m.daemon_pipe, 1);
	/* After a reload, READY=1 waits for the new generation (reload.c). */
	if (!m.reloaded)
		sdnotify("READY=1\nMAINPID=%d\nSTATUS=Ready to handle connections", (int)m.pid);
	sd_start(&m);

	m.in_loop = 1;
	/* every event that asks for a pool's look marks it; the looks run here, once each */
	ev_before_sleep(m.loop, run_marked_pools, &m);
	if (ev_run(m.loop) < 0)
		log_sys(LL_ALERT, "epoll_wait() failed");
	goto out;

fail:
	m.exit_code = 78;
	log_error("FPM initialization failed");
	/* After a reload, what runs keeps a master: the previous configuration's. */
	reload_start_failed(&m);
	control_say(&m, "ERROR fpmd failed to start; see the error log");
	daemonize_notify(&m.daemon_pipe, 0);
	if (m.total_children) {
		children_signal_all(&m, SIGKILL);
		while (m.total_children && m.loop) {
			usleep(10000);
			children_reap(&m);
		}
	}
out:
	zygote_shared_stop(&m);
	while (m.pools) {
		struct pool *p = m.pools;
		m.pools = p->next;
		pool_close(&m, p);
	}
	while (m.old) {
		struct child *c = m.old;
		m.old = c->next;
		children_close_pipes(&m, c);
		free(c);
	}
	if (m.reload_timer)
		ev_timer_free(m.loop, m.reload_timer);
	if (m.old_stop_timer)
		ev_timer_free(m.loop, m.old_stop_timer);
	free(m.inherited);
	/*
	 * The pid file goes before the control socket closes: `fpmctl quit/stop`
	 * returns when that connection ends, and its caller may then look for it.
	 */
	if (m.pid_file_written)
		pidfile_remove(conf->pid);
	m.pid_file_written = 0;
	control_close(&m);
	kept_closer_stop();
	if (m.stop_timer)
		ev_timer_free(m.loop, m.stop_timer);
	if (m.drain_timer)
		ev_timer_free(m.loop, m.drain_timer);
	if (m.sd_timer)
		ev_timer_free(m.loop, m.sd_timer);
	ev_loop_free(m.loop);
	free(m.crash_times);
	free(m.reaped_unowned);
	if (m.exit_code == 0)
		log_notice("exiting, bye-bye!");
	log_close();
	return m.exit_code;
}
