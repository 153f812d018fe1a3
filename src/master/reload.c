/*
 * Reload (SIGUSR2, SIGHUP): never drops a request, never takes the service
 * down.
 *
 *   1. The new configuration is read and checked in the running master.
 *      Any error: every message is logged, nothing changes.
 *   2. Valid: the master re-execs its binary (a new binary on disk is picked
 *      up; the pid stays, so pid files and systemd need nothing).  The
 *      listening sockets and the pipes of the running workers stay open
 *      across exec and are listed in the environment (FPMD_SOCKETS,
 *      FPMD_OLD_CHILDREN).  The old workers keep accepting meanwhile: no
 *      connection waiting in a backlog is ever lost.
 *   3. The new master adopts the sockets (opens new ones, closes removed
 *      ones), starts the new generation, and for each pool waits until one
 *      new worker reports ready (its handler started) before telling that
 *      pool's old workers to finish their request and exit.
 *   4. A pool whose new workers do not come up (none ready within 15 s, or
 *      its old workers all gone while its new ones die at start) fails the
 *      reload, and the master goes back to the previous configuration: the
 *      old master put it (conf_dump) in a memfd, FPMD_PREV_CONF, and the
 *      master re-execs once more with it (FPMD_ROLLBACK_CONF), like a
 *      reload.  Old workers serve until the restored generation is ready.
 *      Keeping them without a master that can replace them would let the
 *      pool shrink to nothing as they recycle or crash; nginx also keeps
 *      its previous configuration whole when a new one cannot start.  A
 *      rollback that fails too keeps what runs and says so.
 */
#include "master/master.h"

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf/buf.h"
#include "ev/ev.h"
#include "log/log.h"
#include "master/conf_check.h"
#include "master/kept.h"
#include "master/control.h"
#include "master/sdnotify.h"

#define RELOAD_CANARY_TIMEOUT_US (15u * 1000u * 1000u)
extern char **environ;

#define ENV_SOCKETS  "FPMD_SOCKETS"
#define ENV_HANDOFF  "FPMD_HANDOFF"   /* H0:H1=ADDRESS;... the pools' handoff pairs (kept.h) */
#define ENV_CHILDREN "FPMD_OLD_CHILDREN"
#define ENV_RELOAD   "FPMD_RELOADED"
#define ENV_PREV     "FPMD_PREV_CONF"       /* fd: the configuration before this reload */
#define ENV_ROLLBACK "FPMD_ROLLBACK_CONF"   /* fd: run this one, the reload failed */

static void exec_self(struct master *m, int rollback_fd);

static void set_cloexec(int fd, int on)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl >= 0)
		fcntl(fd, F_SETFD, on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC));
}

/* An fd number from the environment must be an open descriptor we did not make. */
static int valid_fd(long v)
{
	return v > 2 && v < 65536 && fcntl((int)v, F_GETFD) >= 0;
}

static void adopt_sockets(struct master *m, char *list)
{
	size_t cap = 1;
	for (const char *p = list; *p; p++)
		cap += *p == ';';
	m->inherited = calloc(cap, sizeof(*m->inherited));
	if (!m->inherited)
		return;
	char *save = NULL;
	for (char *tok = strtok_r(list, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq)
			continue;
		*eq = '\0';
		char *end = NULL;
		long fd = strtol(tok, &end, 10);
		if (!valid_fd(fd))
			continue;
		struct inherited_socket *is = &m->inherited[m->ninherited++];
		is->fd = (int)fd;
		is->systemd = strcmp(end, ":s") == 0;
		snprintf(is->text, sizeof(is->text), "%s", eq + 1);
		set_cloexec(is->fd, 1);
		/* every socket handed over, used or not, as php-fpm lists them */
		log_notice("using inherited socket fd=%d, \"%s\"", is->fd, is->text);
	}
}

/*
 * The handoff pairs: the kept connections the previous master held wait in
 * them (kept_pass_on_exec), and the previous generation's workers hand theirs
 * in while they finish.  A list of its own, which an older binary ignores.
 */
static void adopt_handoffs(struct master *m, char *list)
{
	size_t cap = 1;
	for (const char *p = list; *p; p++)
		cap += *p == ';';
	m->handoffs = calloc(cap, sizeof(*m->handoffs));
	if (!m->handoffs)
		return;
	char *save = NULL;
	for (char *tok = strtok_r(list, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		long h0, h1;
		int at = 0;
		if (sscanf(tok, "%ld:%ld=%n", &h0, &h1, &at) != 2 || !at || !valid_fd(h0) ||
		    !valid_fd(h1) || h0 == h1)
			continue;
		struct inherited_handoff *ih = &m->handoffs[m->nhandoffs++];
		ih->fd[0] = (int)h0;
		ih->fd[1] = (int)h1;
		snprintf(ih->text, sizeof(ih->text), "%s", tok + at);
		set_cloexec(ih->fd[0], 1);
		set_cloexec(ih->fd[1], 1);
	}
}

int reload_give_back(struct master *m, int fd)
{
	for (size_t i = 0; fd >= 0 && i < m->ninherited; i++)
		if (m->inherited[i].used && m->inherited[i].fd == fd) {
			m->inherited[i].used = 0;
			return 1;
		}
	for (size_t i = 0; fd >= 0 && i < m->nhandoffs; i++)
		if (m->handoffs[i].used && m->handoffs[i].fd[0] == fd) {
			m->handoffs[i].used = 0;
			return 1;
		}
	return 0;
}

int reload_take_handoff(struct master *m, const char *text, int fds[2])
{
	for (size_t i = 0; i < m->nhandoffs; i++) {
		struct inherited_handoff *ih = &m->handoffs[i];
		if (!ih->used && strcmp(ih->text, text) == 0) {
			ih->used = 1;
			fds[0] = ih->fd[0];
			fds[1] = ih->fd[1];
			return 0;
		}
	}
	return -1;
}

static void adopt_children(struct master *m, char *list)
{
	char *save = NULL;
	for (char *tok = strtok_r(list, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		long pid, fds[3], decorate;
		unsigned long long started = 0;
		char name[64];
		/* PID:LOG:OUT:ERR:DECORATE:START_MONO_US:POOL; a previous binary's has no START */
		if (sscanf(tok, "%ld:%ld:%ld:%ld:%ld:%llu:%63s", &pid, &fds[0], &fds[1], &fds[2],
			   &decorate, &started, name) != 7) {
			started = 0;
			if (sscanf(tok, "%ld:%ld:%ld:%ld:%ld:%63s", &pid, &fds[0], &fds[1], &fds[2],
				   &decorate, name) != 6)
				continue;
		}
		if (pid <= 1)
			continue;
		struct child *c = calloc(1, sizeof(*c));
		if (!c)
			return;
		c->pid = (pid_t)pid;
		c->pool = NULL;
		c->decorate = decorate != 0;
		snprintf(c->pool_name, sizeof(c->pool_name), "%s", name);
		/* the monotonic clock runs on across exec: its age is its age, not the reload's */
		uint64_t now = sb_mono_us();
		c->start_mono_us = started && started <= now ? (uint64_t)started : now;
		for (int i = 0; i < 3; i++) {
			if (fds[i] >= 0 && !valid_fd(fds[i]))
				fds[i] = -1;
			if (fds[i] >= 0)
				set_cloexec((int)fds[i], 1);
		}
		children_watch_pipes(m, c, (int)fds[0], (int)fds[1], (int)fds[2]);
		c->next = m->old;
		m->old = c;
		m->old_children++;
	}
}

/*
 * systemd socket activation: LISTEN_FDS sockets from fd 3 on, for this pid.
 * Each is named the way listen_parse names a `listen` value, so a pool whose
 * `listen` matches adopts it like a socket inherited across a reload.
 */
static void adopt_activated(struct master *m)
{
	const char *pid = getenv("LISTEN_PID"), *nfds = getenv("LISTEN_FDS");
	if (!pid || !nfds || atol(pid) != (long)getpid())
		return;
	long n = atol(nfds);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (n <= 0 || n > 1024)
		return;
	struct inherited_socket *more = realloc(m->inherited,
						 (m->ninherited + (size_t)n) * sizeof(*more));
	if (!more)
		return;
	m->inherited = more;
	for (int fd = 3; fd < 3 + n; fd++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char host[INET6_ADDRSTRLEN] = "";
		struct inherited_socket *is = &m->inherited[m->ninherited];
		memset(is, 0, sizeof(*is));
		if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
			continue;
		if (ss.ss_family == AF_UNIX) {
			snprintf(is->text, sizeof(is->text), "%s", ((struct sockaddr_un *)&ss)->sun_path);
		} else if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
			snprintf(is->text, sizeof(is->text), "%s:%u", host, ntohs(s4->sin_port));
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
			snprintf(is->text, sizeof(is->text), "[%s]:%u", host, ntohs(s6->sin6_port));
		} else {
			continue;
		}
		is->fd = fd;
		is->systemd = 1;
		set_cloexec(fd, 1);
		m->ninherited++;
		log_notice("socket activation: fd=%d, \"%s\"", fd, is->text);
		/* listed like every other inherited socket, as php-fpm lists them */
		log_notice("using inherited socket fd=%d, \"%s\"", fd, is->text);
	}
}

/* An fd named by the environment variable, or -1; the variable is removed. */
static int env_fd(const char *name)
{
	const char *v = getenv(name);
	char *end = NULL;
	long fd = v ? strtol(v, &end, 10) : -1;
	unsetenv(name);
	if (fd < 0 || !end || *end || !valid_fd(fd))
		return -1;
	set_cloexec((int)fd, 1);
	return (int)fd;
}

const char *reload_rollback_source(char *buf, size_t cap)
{
	const char *v = getenv(ENV_ROLLBACK);
	char *end = NULL;
	long fd = v ? strtol(v, &end, 10) : -1;
	if (fd < 0 || !end || *end || !valid_fd(fd))
		return NULL;
	snprintf(buf, cap, "/proc/self/fd/%ld", fd);
	return buf;
}

void reload_init(struct master *m)
{
	m->ctl_client = -1;
	control_adopt_listener();
	const char *flag = getenv(ENV_RELOAD);
	m->reloaded = flag && *flag;
	m->prev_conf_fd = env_fd(ENV_PREV);
	int rb = env_fd(ENV_ROLLBACK);
	if (rb >= 0) {
		/* main.c has read the configuration from it */
		m->rolled_back = 1;
		close(rb);
	}
	kept_adopt_discards(m);
	char *handoffs = getenv(ENV_HANDOFF) ? strdup(getenv(ENV_HANDOFF)) : NULL;
	unsetenv(ENV_HANDOFF);
	if (handoffs)
		adopt_handoffs(m, handoffs);
	free(handoffs);
	char *socks = getenv(ENV_SOCKETS) ? strdup(getenv(ENV_SOCKETS)) : NULL;
	char *kids = getenv(ENV_CHILDREN) ? strdup(getenv(ENV_CHILDREN)) : NULL;
	unsetenv(ENV_SOCKETS);
	unsetenv(ENV_CHILDREN);
	unsetenv(ENV_RELOAD);
	if (socks)
		adopt_sockets(m, socks);
	adopt_activated(m);
	if (kids && m->loop)
		adopt_children(m, kids);
	free(socks);
	free(kids);
}

/*
 * The inherited socket listening at `text`, or -1.  *systemd says whether it
 * came from socket activation (then systemd made its path, and keeps
 * listening there after fpmd stops: fpmd must not remove it).
 */
int reload_take_socket(struct master *m, const char *text, int *systemd)
{
	*systemd = 0;
	for (size_t i = 0; i < m->ninherited; i++) {
		struct inherited_socket *is = &m->inherited[i];
		if (!is->used && strcmp(is->text, text) == 0) {
			is->used = 1;
			*systemd = is->systemd;
			fcntl(is->fd, F_SETFL, fcntl(is->fd, F_GETFL) | O_NONBLOCK);
			return is->fd;
		}
	}
	return -1;
}

/* --- the previous generation ------------------------------------------ */

static void on_old_stop_timer(struct ev_loop *loop, struct ev_watch *t, void *data)
{
	struct master *m = data;
	(void)loop;
	(void)t;
	if (!m->old_children)
		return;
	int sig = m->old_stop_step == 0 ? SIGTERM : SIGKILL;
	/*
	 * Only those told to quit: the others serve on, kept while the new
	 * generation is not ready (a reload that may yet roll back).
	 */
	unsigned told = 0;
	for (struct child *c = m->old; c; c = c->next)
		if (c->quitting)
			told++;
	if (told)
		log_warning("%u workers of the previous generation still running after the "
			    "graceful timeout; sending SIG%s", told, sig == SIGTERM ? "TERM" : "KILL");
	for (struct child *c = m->old; c; c = c->next)
		if (c->quitting)
			kill(c->pid, sig);
	if (m->old_stop_step++ == 0)
		ev_timer_arm(m->old_stop_timer, 1000, 0);
}

static void quit_old(struct master *m, struct child *c)
{
	if (c->quitting)
		return;
	c->quitting = 1;
	kill(c->pid, SIGQUIT);
	if (!m->old_stop_timer)
		m->old_stop_timer = ev_timer_new(m->loop, on_old_stop_timer, m);
	if (m->old_stop_timer && !ev_timer_armed(m->old_stop_timer)) {
		unsigned ms = (unsigned)m->conf->process_control_timeout * 1000u;
		m->old_stop_step = 0;
		ev_timer_arm(m->old_stop_timer, ms ? ms : 1, 0);
	}
}

void reload_stop_old(struct master *m, int signo)
{
	for (struct child *c = m->old; c; c = c->next) {
		if (signo == SIGQUIT)
			c->quitting = 1;
		kill(c->pid, signo);
	}
}

int reload_reap(struct master *m, pid_t pid, int status)
{
	for (struct child **pc = &m->old; *pc; pc = &(*pc)->next) {
		if ((*pc)->pid != pid)
			continue;
		struct child *c = *pc;
		*pc = c->next;
		children_close_pipes(m, c);
		children_log_exit(m, c, status);
		free(c);
		m->old_children--;
		if (m->old_children == 0) {
			if (m->old_stop_timer)
				ev_timer_disarm(m->old_stop_timer);
			if (m->state == MASTER_RUNNING && !m->reload_failed)
				log_notice("reload complete: the previous generation has exited");
		}
		return 1;
	}
	return 0;
}

static struct pool *pool_named(struct master *m, const char *name)
{
	for (struct pool *p = m->pools; p; p = p->next)
		if (strcmp(p->conf->name, name) == 0)
			return p;
	return NULL;
}

static int pool_ready(const struct pool *p)
{
	for (struct child *c = p->own->children; c; c = c->next) {
		struct sb_slot s;
		sb_slot_read(&p->sb, c->slot, &s);
		if (s.ready)
			return 1;
	}
	/* ondemand pools start no worker: ready as soon as their socket is open. */
	return p->conf->pm == PM_ONDEMAND && p->own->running == 0;
}

/* A previous worker of the pool named so that was not told to leave. */
static int old_serving(const struct master *m, const char *name)
{
	for (const struct child *c = m->old; c; c = c->next)
		if (!c->quitting && strcmp(c->pool_name, name) == 0)
			return 1;
	return 0;
}

/*
 * The new generation of a pool did not come up.  Back to the previous
 * configuration when there is one (not after a rollback: that would loop);
 * else its old workers keep serving, as long as they last.
 */
static void reload_fail(struct master *m, const char *pool, const char *why)
{
	if (m->reload_failed)
		return;
	m->reload_failed = 1;
	if (m->prev_conf_fd >= 0 && !m->rolled_back) {
		log_error("reload failed for pool %s: %s; going back to the previous configuration",
			  pool, why);
		control_say(m, "ERROR reload failed for pool %s: %s; the previous configuration is "
			    "restored and its workers keep serving", pool, why);
		control_done(m, 0);
		exec_self(m, m->prev_conf_fd);
		log_error("cannot go back to the previous configuration; pool %s keeps its previous "
			  "workers while they last", pool);
	} else {
		log_error("reload failed for pool %s: %s; its previous workers keep serving, but "
			  "none is replaced when it exits", pool, why);
		control_say(m, "ERROR reload failed for pool %s: %s; its previous workers keep serving",
			    pool, why);
		control_done(m, 0);
	}
	sdnotify("READY=1\nSTATUS=Reload failed for pool %s; previous workers serve", pool);
}

/*
 * A reload's caller still held once the previous configuration serves
 * again (its answer was not sent before the rollback's exec): answered now,
 * so the control socket takes the next command.
 */
static void rolled_back_answer(struct master *m)
{
	if (m->ctl_client < 0)
		return;
	control_say(m, "ERROR reload failed: the new configuration does not start; the previous "
		    "configuration is restored and its workers keep serving");
	control_done(m, 0);
}

void reload_start_failed(struct master *m)
{
	if (!m->reloaded || m->prev_conf_fd < 0 || m->rolled_back || !m->loop)
		return;
	log_error("reload failed: the new configuration does not start; going back to the "
		  "previous configuration");
	control_adopt_client(m);
	control_say(m, "ERROR reload failed: the new configuration does not start; the previous "
		    "configuration is restored and its workers keep serving");
	control_done(m, 0);
	/* Zygotes started for it hold nothing the restored master needs, and it would not know them. */
	for (struct pool *p = m->pools; p; p = p->next) {
		if (!p->own->zygote)
			continue;
		pid_t pid = p->own->zygote->pid;
		zygote_stop(m, p);
		if (pid > 0)            /* 0: not answered for yet, nothing to wait for */
			waitpid(pid, NULL, 0);
	}
	m->reload_failed = 1;
	exec_self(m, m->prev_conf_fd);
}

/*
 * Each tick: the old workers of a pool whose new generation is ready (or that
 * no longer exists) are told to finish and exit.  Runs until every old
 * worker was told, or the reload failed.
 */
static void on_reload_timer(struct ev_loop *loop, struct ev_watch *t, void *data)
{
	struct master *m = data;
	(void)loop;
	int waiting = 0, timed_out = sb_mono_us() - m->reload_started_us > RELOAD_CANARY_TIMEOUT_US;
	for (struct pool *p = m->pools; p && !m->reload_failed; p = p->next) {
		if (!p->own->reload_canary)
			continue;
		if (pool_ready(p))
			p->own->reload_canary = 0;
		else if (timed_out)
			reload_fail(m, p->conf->name, "its new workers did not start within 15 s");
		else if (p->own->fast_failures > 0 && !old_serving(m, p->conf->name))
			/* nobody serves it any more, and its new workers die at start */
			reload_fail(m, p->conf->name, "its new workers die at start and its previous "
				    "ones have exited");
		/*
		 * Still watched when its previous workers left on their own
		 * (pm.max_requests) before its new ones failed: the check must
		 * outlive them, or the pool would be left with no worker at all.
		 */
		if (p->own->reload_canary && !m->reload_failed)
			waiting = 1;
	}
	for (struct child *c = m->old; c; c = c->next) {
		if (c->quitting)
			continue;
		struct pool *p = pool_named(m, c->pool_name);
		if (!p || pool_ready(p))
			quit_old(m, c);
		else if (!m->reload_failed)
			waiting = 1;
	}
	if (!waiting) {
		/*
		 * Every previous worker was told to go.  Idle ones leave within
		 * milliseconds; until they have, one may still take a connection
		 * (its wake-up can come before its SIGQUIT).  "ready" waits for
		 * them, a second at most: busy ones finish in their own time
		 * (this master cannot tell which are busy: their scoreboard was
		 * the previous master's).
		 */
		uint64_t now = sb_mono_us();
		if (!m->handover_us)
			m->handover_us = now;
		if (m->old_children && now - m->handover_us < 1000000u)
			return;
		ev_timer_disarm(t);
		log_notice("ready to handle connections");
		if (m->rolled_back && !m->reload_failed) {
			log_notice("the previous configuration serves again");
			rolled_back_answer(m);
			sdnotify("READY=1\nSTATUS=Reload failed; the previous configuration serves");
		} else if (!m->reload_failed) {
			control_say(m, "OK reloaded: the new generation is serving, pid %d", (int)m->pid);
			control_done(m, 0);
			sdnotify("READY=1\nSTATUS=Reloaded: the new generation is serving");
			/* This configuration works: nothing to go back to any more. */
			if (m->prev_conf_fd >= 0)
				close(m->prev_conf_fd);
			m->prev_conf_fd = -1;
		}
	}
}

void reload_after_start(struct master *m)
{
	/* Sockets of pools that are gone: close them, and remove their unix paths. */
	for (size_t i = 0; i < m->ninherited; i++) {
		struct inherited_socket *is = &m->inherited[i];
		if (is->used)
			continue;
		log_notice("closing inherited socket fd=%d, \"%s\": no pool listens there any more",
			   is->fd, is->text);
		close(is->fd);
		if (is->text[0] == '/' && !is->systemd)
			unlink(is->text);
	}
	free(m->inherited);
	m->inherited = NULL;
	m->ninherited = 0;
	/* a pool gone, or listening elsewhere: the connections its pair held end with it */
	for (size_t i = 0; i < m->nhandoffs; i++) {
		if (m->handoffs[i].used)
			continue;
		close(m->handoffs[i].fd[0]);
		close(m->handoffs[i].fd[1]);
	}
	free(m->handoffs);
	m->handoffs = NULL;
	m->nhandoffs = 0;
	if (!m->old) {
		if (m->rolled_back) {
			log_notice("the previous configuration serves again");
			rolled_back_answer(m);
			sdnotify("READY=1\nSTATUS=Reload failed; the previous configuration serves");
		} else if (m->reloaded) {
			control_say(m, "OK reloaded, pid %d", (int)m->pid);
			control_done(m, 0);
			sdnotify("READY=1\nSTATUS=Reloaded");
		}
		return;
	}
	for (struct pool *p = m->pools; p; p = p->next)
		p->own->reload_canary = old_serving(m, p->conf->name);
	m->reload_started_us = sb_mono_us();
	m->reload_timer = ev_timer_new(m->loop, on_reload_timer, m);
	if (m->reload_timer)
		ev_timer_arm(m->reload_timer, 20, 50);
}

/* --- the request -------------------------------------------------------- */

/*
 * The binary that will run must accept the configuration too (it may be a
 * new one): `fpmd -t` with the same options, output relayed to the log.
 * Bounded: a checker that takes longer than 10 s is killed and the reload
 * refused.
 */
static int check_with_binary(struct master *m)
{
	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(out[0]);
		close(out[1]);
		return -1;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(out[1], 1);
		dup2(out[1], 2);
		char *argv[64];
		int n = 0;
		argv[n++] = m->exe;
		argv[n++] = (char *)"-t";
		for (int i = 1; i < m->opt.argc && n < 62; i++)
			argv[n++] = m->opt.argv[i];
		argv[n] = NULL;
		execv(m->exe, argv);
		_exit(127);
	}
	close(out[1]);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	char buf[8192];
	size_t len = 0;
	int status = 0, done = 0;
	for (int waited = 0; waited < 10000 && !done; waited += 5) {
		ssize_t r;
		while ((r = read(out[0], buf + len, sizeof(buf) - 1 - len)) > 0)
			len += (size_t)r;
		if (waitpid(pid, &status, WNOHANG) == pid)
			done = 1;
		else
			usleep(5000);
	}
	if (!done) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		log_error("reload refused: '%s -t' did not finish within 10 s", m->exe);
		close(out[0]);
		return -1;
	}
	ssize_t r;
	while ((r = read(out[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)r;
	close(out[0]);
	buf[len] = '\0';
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* Drop the checker's own time stamp: ours is added. */
		char *msg = line[0] == '[' && strchr(line, ']') ? strchr(line, ']') + 2 : line;
		if (msg > line + strlen(line))
			msg = line;
		log_error("%s -t: %s", m->exe, msg);
		control_say(m, "%s", msg);
	}
	log_error("reload refused: the binary '%s' rejects the configuration; still serving with "
		  "the running one", m->exe);
	control_say(m, "ERROR reload refused: the binary '%s' rejects the configuration", m->exe);
	return -1;
}

static void pass_child(struct child *c, struct buf *out)
{
	int fds[3];
	children_read_pipe_fds(c, fds);
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			set_cloexec(fds[i], 0);
	buf_printf(out, "%d:%d:%d:%d:%d:%llu:%s;", (int)c->pid, fds[0], fds[1], fds[2],
	       c->decorate, (unsigned long long)c->start_mono_us, child_pool_name(c));
}

static void restore_cloexec(struct master *m)
{
	for (struct pool *p = m->pools; p; p = p->next) {
		set_cloexec(p->listen_fd, 1);
		if (p->handoff_fd >= 0) {
			set_cloexec(p->handoff_fd, 1);
			set_cloexec(p->handoff_worker_fd, 1);
		}
		if (p->own->status_fd >= 0)
			set_cloexec(p->own->status_fd, 1);
		for (struct child *c = p->own->children; c; c = c->next) {
			int fds[3];
			children_read_pipe_fds(c, fds);
			for (int i = 0; i < 3; i++)
				if (fds[i] >= 0)
					set_cloexec(fds[i], 1);
		}
	}
	for (struct child *c = m->old; c; c = c->next) {
		int fds[3];
		children_read_pipe_fds(c, fds);
		for (int i = 0; i < 3; i++)
			if (fds[i] >= 0)
				set_cloexec(fds[i], 1);
	}
}

void reload_request(struct master *m)
{
	/* a caller on the control socket is answered either way (control_done closes it) */
	if (m->state != MASTER_RUNNING) {
		control_say(m, "ERROR reload ignored: fpmd is stopping");
		control_done(m, 0);
		return;
	}
	/* A new generation would serve as ready again: the stop is under way. */
	if (m->draining) {
		log_warning("reload ignored: draining after SIGTERM (sigterm_drain)");
		control_say(m, "ERROR reload ignored: draining after SIGTERM (sigterm_drain)");
		control_done(m, 0);
		return;
	}
	log_notice("Reloading in progress ...");

	struct conf_diags d;
	memset(&d, 0, sizeof(d));
	/* The environment moved since start (proctitle): read it where it is now. */
	m->copt.environ = environ;
	struct fpmd_conf *next = conf_load(m->opt.config, &m->copt, &conf_io_default, &d);
	if (next && d.errors == 0) {
		conf_check_root_pools(next, m->opt.allow_root, &d);
		conf_check_system(next, &d, geteuid() == 0);
	}
	for (size_t i = 0; i < d.n; i++) {
		char *line = conf_diag_format(&d.items[i]);
		/* 1 error, 0 warning, -1 notice: a notice is one at start, and on a reload too */
		int sev = d.items[i].severity;
		log_msg(sev > 0 ? LL_ERROR : sev == 0 ? LL_WARNING : LL_NOTICE, "%s", line ? line : "?");
		control_say(m, "%s: %s", sev > 0 ? "error" : sev == 0 ? "warning" : "notice",
			    line ? line : "?");
		free(line);
	}
	int bad = !next || d.errors;
	conf_diags_free(&d);
	conf_free(next);
	if (bad) {
		log_error("reload refused: the configuration '%s' has errors; still serving with the "
			  "running configuration", m->opt.config);
		control_say(m, "ERROR reload refused: the configuration has errors; still serving "
			    "with the running one");
		return;
	}
	if (check_with_binary(m) < 0)
		return;

	exec_self(m, -1);
}

/*
 * The configuration running now, for the next master to go back to: a memfd
 * left open across exec, or -1 (then that reload cannot roll back).
 */
static int prev_conf_memfd(const struct master *m)
{
	char *text = conf_dump(m->conf);
	int fd = text ? memfd_create("fpmd-previous-conf", 0) : -1;
	size_t len = text ? strlen(text) : 0, off = 0;
	while (fd >= 0 && off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			fd = -1;
			break;
		}
		off += (size_t)n;
	}
	free(text);
	if (fd < 0)
		log_sys(LL_WARNING, "cannot keep the running configuration for a rollback");
	return fd;
}

/*
 * Re-execs the master with the listening sockets and every child passed on:
 * a reload (rollback_fd -1), or the way back to the configuration in
 * rollback_fd.  Returns only when exec failed; everything is as before then.
 */
static void exec_self(struct master *m, int rollback_fd)
{
	struct buf socks = { 0 }, kids = { 0 }, handoffs = { 0 };
	buf_puts(&socks, "");
	buf_puts(&kids, "");
	buf_puts(&handoffs, "");
	for (struct pool *p = m->pools; p; p = p->next) {
		set_cloexec(p->listen_fd, 0);
		if (p->handoff_fd >= 0) {
			/* the connections it holds wait in the pair for the next master */
			kept_pass_on_exec(m, p);
			set_cloexec(p->handoff_fd, 0);
			set_cloexec(p->handoff_worker_fd, 0);
			buf_printf(&handoffs, "%d:%d=%s;", p->handoff_fd, p->handoff_worker_fd,
				   p->addr.text);
		}
		/* FD[:s]=ADDRESS; ":s": from socket activation, still systemd's after the re-exec */
		buf_printf(&socks, "%d%s=%s;", p->listen_fd, p->own->listen_systemd ? ":s" : "",
		       p->addr.text);
		if (p->own->status_fd >= 0) {
			set_cloexec(p->own->status_fd, 0);
			buf_printf(&socks, "%d%s=%s;", p->own->status_fd, p->own->status_systemd ? ":s" : "",
			       p->own->status_addr.text);
		}
		for (struct child *c = p->own->children; c; c = c->next)
			pass_child(c, &kids);
	}
	for (struct child *c = m->old; c; c = c->next)
		pass_child(c, &kids);
	/* A start that failed half way has sockets no pool took yet: they go on too. */
	for (size_t i = 0; i < m->ninherited; i++) {
		struct inherited_socket *is = &m->inherited[i];
		if (is->used)
			continue;
		set_cloexec(is->fd, 0);
		buf_printf(&socks, "%d%s=%s;", is->fd, is->systemd ? ":s" : "", is->text);
	}
	for (size_t i = 0; i < m->nhandoffs; i++) {
		struct inherited_handoff *ih = &m->handoffs[i];
		if (ih->used)
			continue;
		set_cloexec(ih->fd[0], 0);
		set_cloexec(ih->fd[1], 0);
		buf_printf(&handoffs, "%d:%d=%s;", ih->fd[0], ih->fd[1], ih->text);
	}

	char args[1024] = "";
	size_t al = 0;
	for (int i = 0; i < m->opt.argc && al + 8 < sizeof(args); i++)
		al += (size_t)snprintf(args + al, sizeof(args) - al, "%s\"%s\"", i ? ", " : "",
				       m->opt.argv[i]);
	log_notice("reloading: execvp(\"%s\", {%s})", m->exe, args);

	/* A rollback passes no previous configuration: its own failure must not loop. */
	int prev = rollback_fd >= 0 ? -1 : prev_conf_memfd(m);
	char fdnum[16];
	if (rollback_fd >= 0) {
		set_cloexec(rollback_fd, 0);
		snprintf(fdnum, sizeof(fdnum), "%d", rollback_fd);
		setenv(ENV_ROLLBACK, fdnum, 1);
	} else if (prev >= 0) {
		snprintf(fdnum, sizeof(fdnum), "%d", prev);
		setenv(ENV_PREV, fdnum, 1);
	}
	if (!socks.oom && !kids.oom && !handoffs.oom) {
		setenv(ENV_SOCKETS, socks.p, 1);
		setenv(ENV_HANDOFF, handoffs.p, 1);
		setenv(ENV_CHILDREN, kids.p, 1);
		setenv(ENV_RELOAD, "1", 1);
		control_pass_on_exec(m);
		sdnotify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=Reloading",
			 (unsigned long long)sb_mono_us());
		/*
		 * The zygotes serve no request and the new master starts its own;
		 * one that is stopped (kill -STOP) would never see its channel close.
		 * If the exec fails, the reaper restarts them.
		 */
		zygote_kill_all(m);
		kept_exec_discards(m, 0);
		execv(m->exe, m->opt.argv);
		kept_exec_discards(m, 1);
	}
	log_sys(LL_ERROR, "execv(%s) failed; still serving with the running configuration", m->exe);
	control_say(m, "ERROR reload failed: cannot execute '%s'", m->exe);
	unsetenv("FPMD_CTL_CLIENT");
	control_exec_failed(m);
	unsetenv(ENV_SOCKETS);
	unsetenv(ENV_HANDOFF);
	unsetenv(ENV_CHILDREN);
	unsetenv(ENV_RELOAD);
	unsetenv(ENV_PREV);
	unsetenv(ENV_ROLLBACK);
	if (prev >= 0)
		close(prev);
	if (rollback_fd >= 0)
		set_cloexec(rollback_fd, 1);
	restore_cloexec(m);
	buf_free(&socks);
	buf_free(&kids);
	buf_free(&handoffs);
}
