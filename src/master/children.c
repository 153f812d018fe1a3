/*
 * The master's process table: spawn a pool's children, reap them, relay
 * their output into the error log, and respawn what died.
 */
#include "master/master.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ev/ev.h"
#include "handlers/handler.h"
#include "log/log.h"
#include "master/stacktrace.h"
#include "worker/worker.h"

#define PIPE_LINE_MAX (64u * 1024u)

void pool_count(const struct pool *p, struct pool_counts *out)
{
	out->active = out->idle = 0;
	out->requests = p->own->requests_dead;
	for (struct child *c = p->own->children; c; c = c->next) {
		struct sb_slot s;
		sb_slot_read(&p->sb, c->slot, &s);
		out->requests += s.requests > (1ull << 40) ? 0 : s.requests;
		if (SB_SLOT_ACCEPTS(&s))
			out->idle++;
		else
			out->active++;
	}
}

unsigned children_total(const struct master *m)
{
	return m->total_children;
}

static int find_free_slot(const struct pool *p)
{
	for (unsigned i = 0; i < p->sb.nslots; i++)
		if (!p->own->slot_used[i])
			return (int)i;
	return -1;
}

/*
 * The layout of worker.h: listening socket, stdout, stderr, log, eventfd,
 * access log, a zygote's channel, the handoff pair's workers' end.
 */
static void child_fd_layout(struct master *m, struct pool *p, int out_w, int err_w, int log_w,
			    int ctl_fd)
{
	int want[8] = { p->listen_fd, out_w, err_w, log_w, p->wake_fd, p->access_fd, ctl_fd,
			p->handoff_worker_fd };
	pool_child_fd_layout(m->pools, p, want, 8, 16, NULL, 0);
}

void children_zygote_layout(struct master *m, struct pool *p, int out_w, int err_w, int log_w,
			    int ctl_fd)
{
	child_fd_layout(m, p, out_w, err_w, log_w, ctl_fd);
}

/* --- output relay ------------------------------------------------------ */

const char *child_pool_name(const struct child *c)
{
	return c->pool ? c->pool->conf->name : c->pool_name;
}

static void pipe_emit(struct child *c, struct child_pipe *pp, const char *line, size_t len,
		      const char *suffix)
{
	const char *pool = child_pool_name(c);
	if (pp == &c->log) {
		/* A worker's own log line: first byte is its level. */
		if (len == 0)
			return;
		int lvl = line[0] - '0';
		if (lvl < LL_DEBUG || lvl > LL_ALERT)
			lvl = LL_WARNING;
		/*
		 * Code running in the worker can reach this pipe (PHP's
		 * php://fd/3): a line that does not name the worker's own pool
		 * first is tagged with it, so no pool writes another's lines
		 * or the master's.
		 */
		char tag[96];
		int tl = snprintf(tag, sizeof(tag), "[pool %s] ", pool);
		int foreign = tl > 0 && (size_t)tl < sizeof(tag) &&
			      (len - 1 < (size_t)tl || memcmp(line + 1, tag, (size_t)tl) != 0);
		/*
		 * Nor, naming its own pool, another process of it ("[pool p] child
		 * 1 exited on signal 9", which reads as the master's): a line that
		 * names a child names this one.
		 */
		if (!foreign && tl > 0 && (size_t)tl < sizeof(tag)) {
			/* "child N" after the tag, however spaced or cased, must be the writer */
			const char *p = line + 1 + tl, *end = line + len;
			while (p < end && (*p == ' ' || *p == '\t'))
				p++;
			if (end - p >= 5 && strncasecmp(p, "child", 5) == 0) {
				p += 5;
				while (p < end && (*p == ' ' || *p == '\t'))
					p++;
				long n = 0;
				int digits = 0;
				while (p < end && *p >= '0' && *p <= '9' && digits < 12) {
					n = n * 10 + (*p++ - '0');
					digits++;
				}
				foreign = digits && n != (long)c->pid;
			}
		}
		if (foreign) {
			char prefix[128];
			snprintf(prefix, sizeof(prefix), "[pool %s] child %d: ", pool, (int)c->pid);
			log_prefixed((enum log_level)lvl, prefix, line + 1, len - 1);
			return;
		}
		log_raw((enum log_level)lvl, line + 1, len - 1);
		return;
	}
	const char *which = pp == &c->out ? "stdout" : "stderr";
	if (!c->decorate) {
		log_worker_output(NULL, line, len, suffix);
		return;
	}
	char prefix[160];
	snprintf(prefix, sizeof(prefix), "[pool %s] child %d said into %s: ", pool, (int)c->pid, which);
	log_worker_output(prefix, line, len, suffix);
}

/*
 * php-fpm's flush marker: a worker writes it at the end of each request, and
 * what is pending before it is a whole line.  A script may write it too.
 */
#define FLUSH_MARK "\0fscf\0"
#define FLUSH_MARK_LEN 6

/*
 * Splits the buffer into lines.  With log_buffering (the default) a line
 * waits for its newline (or the flush mark); without, whatever arrived is
 * logged at once.  A line longer than the limit goes out in pieces, whole.
 */
static void pipe_lines(struct child *c, struct child_pipe *pp, int final, int buffering)
{
	size_t start = 0;
	for (size_t i = 0; i < pp->len; i++) {
		if (pp->buf[i] == '\n') {
			pipe_emit(c, pp, pp->buf + start, i - start, NULL);
			start = i + 1;
		} else if (pp->buf[i] == '\0' && pp != &c->log && pp->len - i >= FLUSH_MARK_LEN &&
			   memcmp(pp->buf + i, FLUSH_MARK, FLUSH_MARK_LEN) == 0) {
			if (i > start)
				pipe_emit(c, pp, pp->buf + start, i - start, NULL);
			i += FLUSH_MARK_LEN - 1;
			start = i + 1;
		}
	}
	size_t rest = pp->len - start;
	if (rest && pp != &c->log && !final && !buffering) {
		/* unbuffered: out now, but not half of a flush mark */
		size_t keep = 0;
		for (size_t k = 1; k < FLUSH_MARK_LEN && k <= rest; k++)
			if (memcmp(pp->buf + pp->len - k, FLUSH_MARK, k) == 0)
				keep = k;
		if (rest > keep) {
			pipe_emit(c, pp, pp->buf + start, rest - keep, NULL);
			start += rest - keep;
		}
	}
	if (start < pp->len && (final || pp->len - start >= PIPE_LINE_MAX)) {
		pipe_emit(c, pp, pp->buf + start, pp->len - start,
			  final && pp != &c->log ? ", pipe is closed" : NULL);
		start = pp->len;
	}
	memmove(pp->buf, pp->buf + start, pp->len - start);
	pp->len -= start;
}

/* Reads what is there.  Returns 0 while open, -1 at EOF or error. */
/*
 * What a worker wrote, at most budget bytes a call: a worker (or a process
 * it forked, which keeps the pipe) writing without pause would otherwise
 * keep the master in this loop, deaf to every other pool, its signals and
 * its status page.  A watched pipe is level-triggered: the rest is read at
 * the loop's next turn.  0 while open, -1 at its end.
 */
#define PIPE_READ_BUDGET   (8u * 1024u)      /* up to 4096 lines of "x\n" a turn */
#define PIPE_DRAIN_BUDGET  (1024u * 1024u)

static int pipe_read(struct child *c, struct child_pipe *pp, size_t budget)
{
	size_t got = 0;
	while (got < budget) {
		if (pp->cap - pp->len < 4096) {
			size_t cap = pp->cap ? pp->cap * 2 : 8192;
			if (cap > PIPE_LINE_MAX * 2)
				cap = PIPE_LINE_MAX * 2;
			if (cap > pp->cap) {
				char *nb = realloc(pp->buf, cap);
				if (!nb)
					return -1;
				pp->buf = nb;
				pp->cap = cap;
			}
		}
		size_t room = pp->cap - pp->len;
		if (room > budget - got)
			room = budget - got;
		ssize_t n = read(pp->fd, pp->buf + pp->len, room);
		if (n > 0) {
			pp->len += (size_t)n;
			got += (size_t)n;
			pipe_lines(c, pp, 0, c->pool ? c->pool->own->master->conf->log_buffering : 1);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		pipe_lines(c, pp, 1, 1);
		return -1;
	}
	return 0;
}

static void pipe_close(struct master *m, struct child_pipe *pp)
{
	if (pp->watch)
		ev_fd_del(m->loop, pp->watch);
	pp->watch = NULL;
	if (pp->fd >= 0)
		close(pp->fd);
	pp->fd = -1;
	free(pp->buf);
	pp->buf = NULL;
	pp->len = pp->cap = 0;
}


static void on_pipe(struct ev_loop *loop, int fd, uint32_t events, void *data)
{
	struct child *c = data;
	struct child_pipe *pp = fd == c->out.fd ? &c->out : fd == c->err.fd ? &c->err : &c->log;
	(void)events;
	(void)loop;
	if (pipe_read(c, pp, PIPE_READ_BUDGET) < 0) {
		/* EOF: the worker closed it or exited; the reaper frees the child. */
		if (pp->watch)
			ev_fd_del(loop, pp->watch);
		pp->watch = NULL;
		close(pp->fd);
		pp->fd = -1;
	}
}

void children_close_pipes(struct master *m, struct child *c)
{
	struct child_pipe *pipes[3] = { &c->out, &c->err, &c->log };
	for (int i = 0; i < 3; i++) {
		if (pipes[i]->fd >= 0)
			pipe_read(c, pipes[i], PIPE_DRAIN_BUDGET);    /* what a dead worker wrote */
		pipe_close(m, pipes[i]);
	}
}

static int watch_pipe(struct master *m, struct child *c, struct child_pipe *pp, int fd)
{
	pp->fd = fd;
	if (fd < 0)
		return 0;
	pp->watch = ev_fd_add(m->loop, fd, EPOLLIN, on_pipe, c);
	return pp->watch ? 0 : -1;
}

void children_watch_pipes(struct master *m, struct child *c, int log_fd, int out_fd, int err_fd)
{
	c->out.fd = c->err.fd = c->log.fd = -1;
	watch_pipe(m, c, &c->log, log_fd);
	watch_pipe(m, c, &c->out, out_fd);
	watch_pipe(m, c, &c->err, err_fd);
}

int children_read_pipe_fds(struct child *c, int fds[3])
{
	fds[0] = c->log.fd;
	fds[1] = c->out.fd;
	fds[2] = c->err.fd;
	return 0;
}

/* --- spawn ----------------------------------------------------------- */

/* The master's record of a worker; NULL (its pipes closed, its slot free) when out of memory. */
/*
 * Spawns the process manager asks for (a dynamic pool's spares, an ondemand
 * pool's connections) are logged at DEBUG, as php-fpm's: a busy ondemand
 * pool would write a line per spawn.  A zygote's clone is recorded when its
 * answer comes: its slot says so (slot_used 2).
 */
static int pm_spawn;

int children_spawn_pm(struct master *m, struct pool *p, unsigned count)
{
	pm_spawn = 1;
	int n = children_spawn(m, p, count);
	pm_spawn = 0;
	return n;
}

static struct child *child_record(struct master *m, struct pool *p, unsigned slot, pid_t pid,
				  const int rfds[3])
{
	int quiet = !m->in_loop || pm_spawn || p->own->slot_used[slot] == 2;
	p->sb.slots[slot].pid = (uint32_t)pid;
	for (int i = 0; i < 3; i++)
		if (rfds[i] >= 0)
			fcntl(rfds[i], F_SETFL, O_NONBLOCK);
	struct child *c = calloc(1, sizeof(*c));
	if (!c) {
		for (int i = 0; i < 3; i++)
			if (rfds[i] >= 0)
				close(rfds[i]);
		memset(&p->sb.slots[slot], 0, sizeof(p->sb.slots[slot]));
		p->own->slot_used[slot] = 0;
		return NULL;
	}
	c->pid = pid;
	c->pool = p;
	snprintf(c->pool_name, sizeof(c->pool_name), "%s", p->conf->name);
	c->decorate = p->conf->decorate_workers_output;
	c->slot = slot;
	c->start_mono_us = sb_mono_us();
	children_watch_pipes(m, c, rfds[0], rfds[1], rfds[2]);
	c->next = p->own->children;
	p->own->children = c;
	p->own->slot_used[slot] = 1;
	p->own->running++;
	m->total_children++;
	/* php-fpm's levels, which log parsers count on: the start's and the pm's at DEBUG */
	log_msg(quiet ? LL_DEBUG : LL_NOTICE, "[pool %s] child %d started", p->conf->name, (int)pid);
	return c;
}

int children_adopt(struct master *m, struct pool *p, unsigned slot, pid_t pid, const int rfds[3])
{
	struct child *c = child_record(m, p, slot, pid, rfds);
	if (!c) {
		/* Keep the bookkeeping consistent: the process exists and will be reaped. */
		kill(pid, SIGKILL);
		return -1;
	}
	/* answered after a stop began: it leaves with the others */
	if (m->state != MASTER_RUNNING) {
		c->quitting = 1;
		kill(pid, m->state == MASTER_FINISHING ? SIGQUIT : SIGTERM);
	}
	return 0;
}

/* Stopping, and the last child is gone: the loop ends (whichever path counted it out). */
static void stop_when_none_left(struct master *m)
{
	if (m->state != MASTER_RUNNING && m->total_children == 0 && m->old_children == 0)
		ev_stop(m->loop);
}

void children_spawn_failed(struct master *m, struct pool *p, unsigned slot, const int rfds[3])
{
	for (int i = 0; i < 3; i++)
		if (rfds[i] >= 0)
			close(rfds[i]);
	memset(&p->sb.slots[slot], 0, sizeof(p->sb.slots[slot]));
	p->own->slot_used[slot] = 0;
	p->own->spawning--;
	m->total_children--;
	stop_when_none_left(m);
}

static void child_exited(struct master *m, struct child *c, int status);

/*
 * A clone that served and ended before its zygote's answer was read (a
 * worker of pm.max_requests = 1 under load, the zygote preempted between
 * its clone and its reply): already reaped, so adopted and buried at once,
 * as any worker that ends, and replaced.  Failing it instead lost the slot
 * for good: a static pool was left with fewer workers, or none.
 */
void children_spawn_died(struct master *m, struct pool *p, unsigned slot, pid_t pid,
			 const int rfds[3], int status)
{
	p->own->spawning--;
	m->total_children--;
	log_debug("[pool %s] worker %d ended before its zygote's answer came", p->conf->name,
		  (int)pid);
	struct child *c = child_record(m, p, slot, pid, rfds);
	if (c) {
		/* this record itself (first in its pool's list), whatever else holds the pid */
		p->own->children = c->next;
		child_exited(m, c, status);
	} else if (m->state == MASTER_RUNNING && p->conf->pm != PM_ONDEMAND) {
		POOL_HDR_SET(p, respawns, p->own->hdr.respawns + (uint64_t)children_spawn(m, p, 1));
	}
	stop_when_none_left(m);
}

/* The worker has its ends (or the zygote's message carries them): the master keeps the read ends. */
static void close_write_ends(const int logp[2], const int outp[2], const int errp[2], int devnull)
{
	close(logp[1]);
	if (outp[1] >= 0)
		close(outp[1]);
	if (errp[1] >= 0)
		close(errp[1]);
	if (devnull >= 0)
		close(devnull);
}

/*
 * Out of descriptors or processes, every look of every pool with waiting
 * connections fails to spawn (every 100 ms each): the first failure is
 * logged, then one count every SPAWN_FAIL_LOG_US while they go on (the
 * workers' accept4() failures are counted the same way).
 */
#define SPAWN_FAIL_LOG_US (10u * 1000u * 1000u)
static struct {
	uint64_t logged_us;
	unsigned suppressed;
} spawn_fail;

static int spawn_failure_logged(void)
{
	int err = errno;             /* the caller's log_sys() reports it */
	uint64_t now = sb_mono_us();
	if (spawn_fail.logged_us && now - spawn_fail.logged_us < SPAWN_FAIL_LOG_US) {
		spawn_fail.suppressed++;
		return 0;
	}
	if (spawn_fail.suppressed)
		log_error("%u more failures to start a worker in the last %.0fs (the line after "
			  "says why the latest failed)", spawn_fail.suppressed,
			  (double)(now - spawn_fail.logged_us) / 1e6);
	spawn_fail.suppressed = 0;
	spawn_fail.logged_us = now;
	errno = err;
	return 1;
}

static int spawn_one(struct master *m, struct pool *p)
{
	int slot = find_free_slot(p);
	if (slot < 0)
		return -1;
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, logp[2] = { -1, -1 };
	int devnull = -1;
	/* what failed before the worker exists; logged once, at fail: */
	const char *failed = "pipe2() for the worker's log";
	if (pipe2(logp, O_CLOEXEC) < 0)
		goto fail;
	if (p->conf->catch_workers_output) {
		failed = "pipe2() for the worker's output (catch_workers_output)";
		if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
			goto fail;
	} else {
		failed = "open(/dev/null) for the worker's output";
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (devnull < 0)
			goto fail;
	}
	failed = NULL;               /* zygote_request and fork log their own failures */

	struct sb_slot *s = &p->sb.slots[slot];
	memset(s, 0, sizeof(*s));
	s->start_us = sb_now_us();
	s->stage = SB_IDLE;

	if (p->handler->prefork_start) {
		/*
		 * php pools: the zygote clones the worker, as the master's child;
		 * its answer comes through the event loop (children_adopt).
		 */
		int rfds[3] = { logp[0], outp[0], errp[0] };
		if (zygote_request(m, p, (unsigned)slot, devnull >= 0 ? devnull : outp[1],
				   devnull >= 0 ? devnull : errp[1], logp[1], rfds) < 0)
			goto fail;
		close_write_ends(logp, outp, errp, devnull);
		p->own->slot_used[slot] = pm_spawn ? 2 : 1;
		p->own->spawning++;
		m->total_children++;
		return 0;
	}
	pid_t pid = fork();
	if (pid < 0) {
		if (spawn_failure_logged())
			log_sys(LL_ERROR, "[pool %s] fork() failed", p->conf->name);
		goto fail;
	}
	if (pid == 0) {
		s->pid = (uint32_t)getpid();
		child_fd_layout(m, p, devnull >= 0 ? devnull : outp[1],
				devnull >= 0 ? devnull : errp[1], logp[1], -1);
		worker_main(p, m->conf, (unsigned)slot, m->pid);
	}
	close_write_ends(logp, outp, errp, devnull);
	int rfds[3] = { logp[0], outp[0], errp[0] };
	return children_adopt(m, p, (unsigned)slot, pid, rfds);

fail:
	if (failed && spawn_failure_logged())
		log_sys(LL_ERROR, "[pool %s] cannot start a worker: %s failed", p->conf->name, failed);
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0) close(outp[i]);
		if (errp[i] >= 0) close(errp[i]);
		if (logp[i] >= 0) close(logp[i]);
	}
	if (devnull >= 0)
		close(devnull);
	return -1;
}

int children_spawn(struct master *m, struct pool *p, unsigned count)
{
	unsigned done = 0;
	for (; done < count; done++) {
		if (m->conf->process_max > 0 && m->total_children >= (unsigned)m->conf->process_max) {
			if (!m->process_max_warned)
				log_warning("The maximum number of processes has been reached. Please review "
					    "your configuration and consider raising 'process.max'");
			m->process_max_warned = 1;
			break;
		}
		if (spawn_one(m, p) < 0)
			break;
	}
	return (int)done;
}

void children_signal_all(struct master *m, int signo)
{
	reload_stop_old(m, signo);
	for (struct pool *p = m->pools; p; p = p->next)
		for (struct child *c = p->own->children; c; c = c->next) {
			if (signo == SIGQUIT)
				c->quitting = 1;
			kill(c->pid, signo);
		}
}

/* --- reap ------------------------------------------------------------ */

static struct child *unlink_child(struct master *m, pid_t pid)
{
	for (struct pool *p = m->pools; p; p = p->next)
		for (struct child **pc = &p->own->children; *pc; pc = &(*pc)->next)
			if ((*pc)->pid == pid) {
				struct child *c = *pc;
				*pc = c->next;
				return c;
			}
	return NULL;
}

static enum status_exit_reason exit_reason(const struct child *c, int status)
{
	if (c->idle_kill)
		return EXIT_IDLE;
	if (c->term_sent_us)
		return EXIT_TIMEOUT;
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		if (sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT || sig == SIGILL || sig == SIGFPE)
			return EXIT_CRASH;
		return EXIT_SIGNAL;
	}
	if (WEXITSTATUS(status) != 0)
		return EXIT_ERROR;
	if (c->memory_sent_us)
		return EXIT_MAX_MEMORY;
	return c->quitting ? EXIT_QUIT : EXIT_MAX_REQUESTS;
}

static void log_exit(struct master *m, struct child *c, int status, double secs)
{
	const char *pool = child_pool_name(c);
	/*
	 * A stop's children going as told are at DEBUG, as php-fpm's: nothing to
	 * look into.  So are a reload's previous generation, and a worker the pm
	 * retired (php-fpm's own line for it).
	 */
	enum log_level told = m->state != MASTER_RUNNING || !c->pool ? LL_DEBUG : LL_NOTICE;
	if (c->idle_kill && !c->memory_sent_us &&
	    ((WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
	     (WIFSIGNALED(status) && (WTERMSIG(status) == SIGQUIT || WTERMSIG(status) == SIGTERM)))) {
		log_debug("[pool %s] child %d has been killed by the process management after %.6f "
			  "seconds from start", pool, (int)c->pid, secs);
		return;
	}
	if (WIFEXITED(status)) {
		int code = WEXITSTATUS(status);
		log_msg(code == 0 ? told : LL_WARNING,
			"[pool %s] child %d exited with code %d after %.6f seconds from start", pool,
			(int)c->pid, code, secs);
	} else if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		const char *name = sigabbrev_np(sig);
		int expected = (c->quitting || c->idle_kill || m->state != MASTER_RUNNING) &&
			       (sig == SIGQUIT || sig == SIGTERM || sig == SIGKILL);
		log_msg(expected ? told : LL_WARNING,
			"[pool %s] child %d exited on signal %d (SIG%s%s) after %.6f seconds from start",
			pool, (int)c->pid, sig, name ? name : "?", WCOREDUMP(status) ? " - core dumped" : "",
			secs);
	}
}

static void emergency_check(struct master *m, int status)
{
	const struct fpmd_conf *g = m->conf;
	if (g->emergency_restart_threshold <= 0 || g->emergency_restart_interval <= 0)
		return;
	if (!WIFSIGNALED(status) || (WTERMSIG(status) != SIGSEGV && WTERMSIG(status) != SIGBUS))
		return;
	unsigned thr = (unsigned)g->emergency_restart_threshold;
	uint64_t now = sb_mono_us(), window = (uint64_t)g->emergency_restart_interval * 1000000u;
	if (!m->crash_times) {
		m->crash_times = calloc(thr, sizeof(*m->crash_times));
		if (!m->crash_times)
			return;
	}
	m->crash_times[m->crash_n++ % thr] = now;
	if (m->crash_n < thr)
		return;
	uint64_t oldest = m->crash_times[m->crash_n % thr];
	if (now - oldest > window)
		return;
	log_warning("failed processes threshold (%d in %d sec) is reached, initiating reload",
		    g->emergency_restart_threshold, g->emergency_restart_interval);
	m->crash_n = 0;
	/* A fresh generation of every pool: each child finishes its request, then is respawned. */
	children_signal_all(m, SIGQUIT);
}

static void on_respawn_timer(struct ev_loop *loop, struct ev_watch *t, void *data)
{
	struct pool *p = data;
	struct master *m = p->own->master;
	(void)loop;
	(void)t;
	if (m->state != MASTER_RUNNING)
		return;
	unsigned want = (unsigned)p->own->respawn_pending;
	p->own->respawn_pending = 0;
	POOL_HDR_SET(p, respawns, p->own->hdr.respawns + (uint64_t)children_spawn(m, p, want));
	/* the back-off is over: a look, for the waiting connections (ondemand) or for what
	 * the back-off held off or a spawn here failed to start (a static pool's refill) */
	pm_mark(p, p->conf->pm == PM_ONDEMAND);
}

/*
 * A worker died before it was ready (slot.ready: its handler started): a
 * failed start, whatever its exit code (a module's init may call exit(0)),
 * unless the master asked it to leave.  The next spawn waits, doubling up
 * to 10 s, so an app that cannot start cannot make a fork storm.  An
 * ondemand pool spawns for its waiting connections when the timer ends
 * (pm.c holds off until then).  One killed from outside once it was serving
 * (kill -9, the OOM killer) is replaced at once, or a pool losing workers
 * fast stays short of them for up to 10 s.  A worker that lies about ready
 * only loses its own back-off.
 */
void pool_hdr_publish_dead(struct pool *p)
{
	memcpy(p->sb.hdr->hist_dead, p->own->hdr.hist_dead, sizeof(p->sb.hdr->hist_dead));
	memcpy(p->sb.hdr->exits, p->own->hdr.exits, sizeof(p->sb.hdr->exits));
	p->sb.hdr->duration_sum_dead_us = p->own->hdr.duration_sum_dead_us;
}

static int failed_start(const struct child *c, int ready)
{
	return !ready && !c->quitting && !c->idle_kill;
}

static void back_off(struct master *m, struct pool *p)
{
	p->own->fast_failures++;
	unsigned delay = pm_respawn_delay_ms(p->own->fast_failures);
	if (!p->own->respawn_timer)
		p->own->respawn_timer = ev_timer_new(m->loop, on_respawn_timer, p);
	if (p->own->respawn_timer && !ev_timer_armed(p->own->respawn_timer))
		ev_timer_arm(p->own->respawn_timer, delay, 0);
	if (p->own->fast_failures == 3)
		log_warning("[pool %s] children keep dying right after start; respawning with a "
			    "delay of up to 10 s", p->conf->name);
}

void children_respawn_later(struct master *m, struct pool *p)
{
	if (m->state != MASTER_RUNNING || p->conf->pm == PM_ONDEMAND)
		return;                    /* ondemand spawns for the connections that come */
	p->own->respawn_pending++;
	back_off(m, p);
}

static void respawn(struct master *m, struct pool *p, int failed)
{
	if (failed) {
		children_respawn_later(m, p);
		return;
	}
	p->own->fast_failures = 0;
	POOL_HDR_SET(p, respawns, p->own->hdr.respawns + (uint64_t)children_spawn(m, p, 1));
}

/* A worker's end: its last output, its numbers kept for the pool, its slot freed, its replacement. */
static void child_exited(struct master *m, struct child *c, int status)
{
	struct pool *p = c->pool;
	double secs = (double)(sb_mono_us() - c->start_mono_us) / 1e6;
	children_close_pipes(m, c);
	log_exit(m, c, status, secs);

	/* The slot's numbers are the worker's: clamp before use. */
	struct sb_slot s;
	sb_slot_read(&p->sb, c->slot, &s);
	p->own->requests_dead += s.requests > (1ull << 40) ? 0 : s.requests;
	POOL_HDR_SET(p, requests_dead, p->own->requests_dead);
	for (int i = 0; i <= STATUS_HIST_BUCKETS; i++)
		p->own->hdr.hist_dead[i] += s.hist[i] > (1ull << 40) ? 0 : s.hist[i];
	p->own->hdr.duration_sum_dead_us += s.duration_sum_us > (1ull << 60) ? 0 : s.duration_sum_us;
	p->own->hdr.exits[exit_reason(c, status)]++;
	pool_hdr_publish_dead(p);
	memset(&p->sb.slots[c->slot], 0, sizeof(p->sb.slots[c->slot]));
	p->own->slot_used[c->slot] = 0;
	p->own->running--;
	m->total_children--;

	int idle_kill = c->idle_kill;
	int failed = failed_start(c, s.ready != 0);
	free(c);
	if (m->state == MASTER_RUNNING) {
		emergency_check(m, status);
		/* ondemand pools grow when connections come, not when children die. */
		if (!idle_kill && p->conf->pm != PM_ONDEMAND)
			respawn(m, p, failed);
		else if (failed)
			back_off(m, p);
		pm_mark(p, 0);
	}
}

void children_reap(struct master *m)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c = unlink_child(m, pid);
		if (!c) {
			if (stacktrace_helper_reaped(pid))
				continue;
			if (zygote_reaped(m, pid, status))
				continue;
			if (!reload_reap(m, pid, status)) {
				log_debug("unknown child (%d) exited", (int)pid);
				zygote_reaped_unowned(m, pid, status);
			}
			continue;
		}
		child_exited(m, c, status);
	}
	stop_when_none_left(m);
}

/* Logs a child's end; shared with the previous generation's children. */
void children_log_exit(struct master *m, struct child *c, int status)
{
	log_exit(m, c, status, (double)(sb_mono_us() - c->start_mono_us) / 1e6);
}
