/*
 * Process managers (pm = static, dynamic, ondemand) and request timeouts.
 *
 * One maintenance tick per pool reads the scoreboard (every slot copied and
 * clamped; kill targets come only from the master's own child list), the
 * listening socket's queue, and acts: spawn, retire the worker idle longest,
 * time out busy ones.  The tick timer runs only while the pool has something
 * to watch (busy workers, a queue, a pool outside its band, ondemand workers
 * to retire); otherwise the master sleeps until a connection arrives on the
 * listening socket (an edge-triggered watch), so an idle server costs no
 * wake-ups.
 */
#include "master/pm.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ev/ev.h"
#include "log/log.h"
#include "worker/worker.h"
#include "master/kept.h"
#include "master/stacktrace.h"
#include "handlers/handler.h"
#include "net/queue.h"
#include "pm/policy.h"

#define PM_TERM_GRACE_US   (1000u * 1000u)
#define PM_BUSY_PERIOD_MS  1000u
#define PM_QUEUE_PERIOD_MS 100u
#define PM_MEMORY_PERIOD_MS 250u
#define PM_FLOOD_US        20000u
/* cgi workers enforce request_terminate_timeout on their script themselves;
 * the master steps in only if the worker itself does not. */
#define PM_CGI_EXTRA_US    (3u * 1000u * 1000u)

/*
 * What a tick sees.  A worker is idle (can accept), active (in a request)
 * or parked (between two requests of a kept connection: it cannot accept,
 * so it is spawned for as an active one; it is asked to give the
 * connection up when connections wait and no worker can be added).
 */
struct pool_view {
	unsigned idle, active, parked, running;
	struct child *longest_idle;
	uint64_t longest_idle_since;
	unsigned pending, backlog;
	unsigned starting;           /* not ready yet, watched for process.start_timeout */
	uint64_t next_deadline_us;   /* the earliest slowlog/terminate deadline of a busy worker, 0 = none */
};

static void on_listen(struct ev_loop *loop, int fd, uint32_t events, void *data);
static int pool_needs_watch(const struct pool_conf *pc);

static unsigned timeout_period_ms(const struct pool_conf *pc)
{
	int t = 0;
	if (pc->request_terminate_timeout > 0)
		t = pc->request_terminate_timeout;
	if (pc->request_slowlog_timeout > 0 && (t == 0 || pc->request_slowlog_timeout < t))
		t = pc->request_slowlog_timeout;
	if (t == 0)
		return 0;
	unsigned ms = (unsigned)t * 1000u / 3u;
	if (ms < 130)
		ms = 130;
	return ms < PM_BUSY_PERIOD_MS ? ms : PM_BUSY_PERIOD_MS;
}

/* --- slowlog ------------------------------------------------------------ */

static void read_proc_line(pid_t pid, const char *what, char *out, size_t cap)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	out[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, out, cap - 1);
	close(fd);
	if (n < 0)
		n = 0;
	out[n] = '\0';
	char *nl = strchr(out, '\n');
	if (nl)
		*nl = '\0';
}

/*
 * A slowlog entry in php-fpm's shape (date, pool, pid, script, a php worker's PHP
 * stack), then what the kernel says the worker and the processes it started are
 * waiting in, then the native stack.
 */
static void slowlog_write(struct pool *p, struct child *c, const struct sb_slot *s, double secs)
{
	char ts[64], wchan[128], syscall[256], children[512];
	log_warning("[pool %s] child %d, script '%s' (request: \"%s %s%s%s\") executing too slow "
		    "(%.6f sec), logging", p->conf->name, (int)c->pid, s->script, s->method, s->uri,
		    s->query[0] ? "?" : "", s->query, secs);
	p->own->slow_requests++;
	POOL_HDR_SET(p, slow_requests, p->own->slow_requests);
	if (p->own->slowlog_fd < 0)
		return;
	log_timestamp(ts, sizeof(ts));
	/* the worker wrote it (a request's SCRIPT_FILENAME): one line of the root-written file */
	char script[4 * sizeof(s->script) + 8];
	log_escape(script, sizeof(script), s->script);
	char buf[8192];
	int n = snprintf(buf, sizeof(buf), "\n[%s]  [pool %s] pid %d\nscript_filename = %s\n", ts,
			 p->conf->name, (int)c->pid, script);
	/* The worker, then the processes below it (a cgi script and its children), breadth first. */
	pid_t targets[16] = { c->pid };
	int nt = 1;
	for (int i = 0; i < nt && nt < 16; i++) {
		char kids[512];
		snprintf(children, sizeof(children), "task/%d/children", (int)targets[i]);
		read_proc_line(targets[i], children, kids, sizeof(kids));
		char *save = NULL;
		for (char *tok = strtok_r(kids, " ", &save); tok && nt < 16; tok = strtok_r(NULL, " ", &save))
			targets[nt++] = (pid_t)atoi(tok);
	}
	int depth = p->conf->request_slowlog_trace_depth > 0 ? p->conf->request_slowlog_trace_depth : 20;
	/* A php worker: its PHP stack first, php-fpm's lines, read from its memory. */
	if (p->handler && p->handler->slowlog_frames && p->own->zygote_info_len) {
		if (p->handler->slowlog_frames(c->pid, p->own->zygote_info, p->own->zygote_info_len, depth, buf,
					       sizeof(buf)) < 0)
			n += snprintf(buf + n, sizeof(buf) - (size_t)n, "(no %s stack of %d: %s)\n",
				      p->handler->name, (int)c->pid, strerror(errno));
		n = (int)strlen(buf);
	}
	/* After php-fpm's lines, which parsers read first: what the kernel says each waits in. */
	for (int i = 0; i < nt && i < depth && n < (int)sizeof(buf) - 256; i++) {
		char comm_raw[64], comm[64 * 4];
		read_proc_line(targets[i], "comm", comm_raw, sizeof(comm_raw));
		/* a process names itself (PR_SET_NAME): its bytes are escaped like a request's */
		log_escape(comm, sizeof(comm), comm_raw);
		read_proc_line(targets[i], "wchan", wchan, sizeof(wchan));
		read_proc_line(targets[i], "syscall", syscall, sizeof(syscall));
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "[%d] %s waiting in %s (syscall %s)\n",
			      (int)targets[i], comm, wchan[0] ? wchan : "-", syscall[0] ? syscall : "-");
	}
	if (n >= (int)sizeof(buf))
		n = (int)sizeof(buf) - 1;    /* snprintf counts what did not fit */
	if (write(p->own->slowlog_fd, buf, (size_t)n) < 0)
		log_sys(LL_WARNING, "[pool %s] failed to write the slowlog", p->conf->name);
	/*
	 * The native stack of the process doing the work (the deepest one
	 * started), walked by a process of its own as the pool's user, which
	 * appends it below ("native stack of PID:").
	 */
	pid_t deepest = targets[nt - 1];
	long uid = p->uid == (uid_t)-1 ? -1L : (long)p->uid;
	long gid = p->gid == (gid_t)-1 ? -1L : (long)p->gid;
	if (stacktrace_spawn(deepest, depth, uid, gid, p->own->slowlog_fd) < 0) {
		char line[128];
		int l = snprintf(line, sizeof(line), "(no stack trace of %d: %s)\n", (int)deepest,
				 errno == EAGAIN ? "too many walks at once" : strerror(errno));
		if (write(p->own->slowlog_fd, line, (size_t)l) < 0)
			log_sys(LL_WARNING, "[pool %s] failed to write the slowlog", p->conf->name);
	}
}

/* --- per-child checks -------------------------------------------------- */

static void note_deadline(uint64_t *next, uint64_t at)
{
	if (!*next || at < *next)
		*next = at;
}

/*
 * Acts on a busy worker's request timeouts, and notes in *next when the
 * earliest one still to come is due, so the tick that acts on it runs on
 * time, not up to a period late.
 */
static void check_timeouts(struct pool *p, struct child *c, const struct sb_slot *s, uint64_t now,
			   uint64_t *next)
{
	const struct pool_conf *pc = p->conf;
	if (c->term_sent_us) {
		note_deadline(next, c->term_sent_us + PM_TERM_GRACE_US);
		if (now - c->term_sent_us > PM_TERM_GRACE_US) {
			log_warning("[pool %s] child %d did not stop after SIGTERM; sending SIGKILL",
				    pc->name, (int)c->pid);
			kill(c->pid, SIGKILL);
			c->term_sent_us = now;     /* do not repeat every tick */
		}
		return;
	}
	/*
	 * A slot read while its worker wrote it (preempted between the two
	 * counts of its sequence) mixes two requests: a new stage with the
	 * previous start, or none (0: a fresh worker's first request looked
	 * busy since boot and was killed).  Nothing is timed on it; the next
	 * look reads it whole.  A slot torn for longer than the limit itself
	 * (a worker that keeps its count odd) counts as busy since it tore.
	 */
	uint64_t started;
	if (c->torn_since_us) {
		note_deadline(next, now + PM_QUEUE_PERIOD_MS * 1000u);
		if (pc->request_terminate_timeout <= 0 ||
		    now - c->torn_since_us < (uint64_t)pc->request_terminate_timeout * 1000000u)
			return;
		started = c->torn_since_us;
	} else {
		if (!SB_SLOT_BUSY(s) ||
		    (s->stage == SB_ENDING && !pc->request_terminate_timeout_track_finished))
			return;
		started = s->accepted_mono_us > now ? now : s->accepted_mono_us;
	}
	/* no request of this worker started before the worker did */
	if (started < c->start_mono_us)
		started = c->start_mono_us;
	uint64_t busy_us = now - started;
	double secs = (double)busy_us / 1e6;

	if (pc->request_slowlog_timeout > 0 && c->slow_logged_for != s->accepted_us) {
		uint64_t limit = (uint64_t)pc->request_slowlog_timeout * 1000000u;
		if (busy_us >= limit) {
			c->slow_logged_for = s->accepted_us;
			slowlog_write(p, c, s, secs);
		} else {
			note_deadline(next, started + limit);
		}
	}
	if (pc->request_terminate_timeout > 0) {
		uint64_t limit = (uint64_t)pc->request_terminate_timeout * 1000000u;
		if (pc->app_type == APP_CGI)
			limit += PM_CGI_EXTRA_US;
		if (busy_us < limit) {
			note_deadline(next, started + limit);
		} else {
			log_warning("[pool %s] child %d, script '%s' (request: \"%s %s%s%s\") execution "
				    "timed out (%.6f sec), terminating", pc->name, (int)c->pid, s->script,
				    s->method, s->uri, s->query[0] ? "?" : "", s->query, secs);
			kill(c->pid, SIGTERM);
			c->term_sent_us = now;
		}
	}
}

/* --- exec.mode = direct ----------------------------------------------- */

/*
 * Whether a direct-mode worker's program waits in accept() on its fd 0, the
 * pool socket: the only sign of an idle program fpmd has, since the program,
 * not the worker, takes the connections.  Read from the kernel (the worker's
 * children list, the program's /proc/PID/syscall), never from anything the
 * worker or the program could write.  A program that waits in poll() or
 * select() before accepting never looks idle: it is kept, not retired.
 */
static int direct_program_waits_in_accept(pid_t worker)
{
	char path[64], kids[128], line[128];
	snprintf(path, sizeof(path), "task/%d/children", (int)worker);
	read_proc_line(worker, path, kids, sizeof(kids));
	char *end;
	long prog = strtol(kids, &end, 10);
	if (prog <= 0 || end == kids)
		return 0;
	read_proc_line((pid_t)prog, "syscall", line, sizeof(line));
	long nr = strtol(line, &end, 10);
	if (end == line || strncmp(end, " 0x0 ", 5) != 0)
		return 0;                  /* running, not readable, or another fd */
#ifdef SYS_accept
	if (nr == SYS_accept)
		return 1;
#endif
	return nr == SYS_accept4;
}

static int pool_is_direct(const struct pool_conf *pc)
{
	return pc->app_type == APP_EXEC && pc->exec_mode == EXEC_DIRECT;
}

/*
 * A direct-mode child seen as the ondemand manager needs it: idle since its
 * program was first seen in accept(), busy otherwise.  One that started less
 * than a second ago is counted idle (its program is on its way to accept()),
 * so a burst does not spawn again for connections it is about to take.
 */
static int direct_child_idle(struct child *c, uint64_t now, uint64_t *since)
{
	if (direct_program_waits_in_accept(c->pid)) {
		if (!c->direct_idle_since)
			c->direct_idle_since = now;
		*since = c->direct_idle_since;
		return 1;
	}
	c->direct_idle_since = 0;
	*since = now;
	return now - c->start_mono_us < 1000000u;
}

/*
 * A worker still not ready process.start_timeout after it began (a module's
 * init that never returns, an application's boot stuck on a lock or the
 * network) would sit counted as an idle worker that never accepts: the pool
 * spawns no other and its connections wait until nginx gives up.  It is
 * killed and its death is a failed start (children.c), so the pool backs
 * off and starts another.  A worker that lies about being ready only keeps
 * itself alive, as it could by being ready.
 */
static void check_start(struct pool *p, struct child *c, const struct sb_slot *s, uint64_t now,
			struct pool_view *v)
{
	int limit = p->conf->process_start_timeout;
	if (s->ready || limit <= 0 || c->quitting || c->idle_kill || c->start_killed)
		return;
	uint64_t deadline = c->start_mono_us + (uint64_t)limit * 1000000u;
	v->starting++;
	if (now < deadline) {
		note_deadline(&v->next_deadline_us, deadline);
		return;
	}
	log_error("[pool %s] child %d has not finished starting after %d s (%s); killing it, "
		  "process.start_timeout", p->conf->name, (int)c->pid, limit,
		  p->conf->app_type == APP_MODULE ? "its module's init has not returned"
		  : p->conf->app_type == APP_PHP ? "PHP or the application's boot has not finished"
		  : "its handler has not started");
	kill(c->pid, SIGKILL);
	c->start_killed = 1;
}

static void look(struct pool *p, struct pool_view *v, uint64_t now)
{
	memset(v, 0, sizeof(*v));
	int direct = pool_is_direct(p->conf) && p->conf->pm == PM_ONDEMAND;
	for (struct child *c = p->own->children; c; c = c->next) {
		struct sb_slot s;
		int whole = sb_slot_read(&p->sb, c->slot, &s) == 0;
		v->running++;
		if (whole)
			c->torn_since_us = 0;
		else if (!c->torn_since_us)
			c->torn_since_us = now;
		if (c->idle_kill)
			continue;          /* leaving: counts as neither */
		if (whole)
			check_start(p, c, &s, now, v);
		uint64_t since = 0;
		if (!direct && s.kept) {
			v->parked++;
			check_timeouts(p, c, &s, now, &v->next_deadline_us);
			continue;
		}
		int idle = direct ? direct_child_idle(c, now, &since) : !SB_SLOT_BUSY(&s);
		if (!idle) {
			v->active++;
		} else {
			v->idle++;
			if (!direct)
				since = s.idle_since_mono_us > now ? now : s.idle_since_mono_us;
			if (!v->longest_idle || since < v->longest_idle_since) {
				v->longest_idle = c;
				v->longest_idle_since = since;
			}
		}
		check_timeouts(p, c, &s, now, &v->next_deadline_us);
	}
	/* asked of a zygote, not answered yet: idle workers about to be */
	v->idle += p->own->spawning;
	v->running += p->own->spawning;
	if (listen_queue_len(p->listen_fd, p->addr.family, &v->pending, &v->backlog) < 0)
		v->pending = 0;
	/* a kept connection handed back with its next request waits as well */
	v->pending += kept_waiting(p);
	POOL_HDR_SET(p, listen_queue, v->pending);
	/* A connection waits for a worker only while none is idle; else it is being accepted. */
	if (v->idle == 0 && v->pending > p->own->max_listen_queue)
		p->own->max_listen_queue = v->pending;
	POOL_HDR_SET(p, max_listen_queue, p->own->max_listen_queue);
	if (v->active > p->own->max_active)
		p->own->max_active = v->active;
	POOL_HDR_SET(p, max_active, p->own->max_active);
}

static void retire(struct pool *p, struct child *c, const char *why)
{
	log_debug("[pool %s] retiring child %d (%s)", p->conf->name, (int)c->pid, why);
	c->idle_kill = 1;
	c->quitting = 1;
	kill(c->pid, SIGQUIT);
}

#define PM_RELEASE_RETRY_US (1000u * 1000u)

/*
 * pm_decide() said how many kept connections to give up for waiting ones:
 * the workers parked longest hand theirs to the master (kept.c), which holds
 * them for their next request.  A worker is asked again after a second if it
 * is still parked.
 */
static void release_parked(struct pool *p, unsigned want, unsigned waiting, uint64_t now)
{
	while (want--) {
		struct child *pick = NULL;
		uint64_t pick_since = 0;
		uint32_t pick_requests = 0;
		for (struct child *c = p->own->children; c; c = c->next) {
			struct sb_slot s;
			if (c->idle_kill || c->quitting ||
			    (c->release_sent_us && now - c->release_sent_us < PM_RELEASE_RETRY_US))
				continue;
			sb_slot_read(&p->sb, c->slot, &s);
			if (!s.kept)
				continue;
			if (!pick || s.idle_since_mono_us < pick_since) {
				pick = c;
				pick_since = s.idle_since_mono_us;
				pick_requests = (uint32_t)s.requests;
			}
		}
		if (!pick)
			return;
		union sigval val = { .sival_int = (int)pick_requests };
		log_debug("[pool %s] child %d: asking it to give up its kept connection (%u waiting)",
			  p->conf->name, (int)pick->pid, waiting);
		if (sigqueue(pick->pid, WORKER_SIG_RELEASE, val) == 0)
			p->own->kept_released++;
		pick->release_sent_us = now;
	}
}

/*
 * pm.max_memory and pm.max_idle_memory.  A worker reports its memory after
 * each request (worker.c: memory_check; private bytes, read only when its
 * resident set is over the pool's lowest limit) and pokes the eventfd when
 * it is over a limit.  The master decides: a number in the scoreboard is
 * the worker's own, so it is clamped and only ever picks which of the
 * master's own children gets a SIGQUIT, which a worker honours between
 * requests (never during one: SIGQUIT is blocked while it serves).
 *
 * One worker at a time per pool: the next is picked once the previous has
 * been reaped (and replaced), so a burst of heavy requests that leaves
 * every worker over the limit recycles them one after the other, never the
 * whole pool at once.  The heaviest goes first.
 *
 *   pm.max_memory       over it after a request: replaced now
 *   pm.max_idle_memory  over it: replaced once it has been idle for
 *                       PM_IDLE_MEMORY_US while no worker of the pool is in
 *                       a request (a quiet pool gives its memory back)
 *
 * Returns 1 while a worker over a limit waits for its turn (keep ticking).
 */
#define PM_IDLE_MEMORY_US   (1000u * 1000u)
#define PM_MEMORY_WAIT_US   (10u * 1000u * 1000u)
#define PM_MEMORY_CLAMP     (1ull << 50)

/*
 * The private bytes the worker read after its last request; 0 when its
 * resident set was under every limit (then it is under them by any figure).
 * Clamped: a worker that lies can only get itself replaced, or not.
 */
static uint64_t slot_memory(const struct sb_slot *s)
{
	return s->private_mem > PM_MEMORY_CLAMP ? PM_MEMORY_CLAMP : s->private_mem;
}

static int memory_recycle(struct pool *p, const struct pool_view *v, uint64_t now)
{
	const struct pool_conf *pc = p->conf;
	uint64_t max = pc->pm_max_memory > 0 ? (uint64_t)pc->pm_max_memory : 0;
	uint64_t idle_max = pc->pm_max_idle_memory > 0 ? (uint64_t)pc->pm_max_idle_memory : 0;
	if (!max && !idle_max)
		return 0;
	int waiting = 0, leaving = 0;
	struct child *pick = NULL;
	uint64_t pick_mem = 0, pick_limit = 0;
	int pool_idle = v->active == 0 && v->parked == 0;
	for (struct child *c = p->own->children; c; c = c->next) {
		if (c->memory_sent_us) {
			/* one at a time; a worker stuck in a request does not hold the others back for ever */
			if (now - c->memory_sent_us < PM_MEMORY_WAIT_US)
				leaving = 1;
			continue;
		}
		if (c->quitting || c->idle_kill)
			continue;
		struct sb_slot s;
		if (sb_slot_read(&p->sb, c->slot, &s) < 0) {
			/* torn (its worker was writing): look again at the next tick, not never */
			waiting = 1;
			continue;
		}
		uint64_t mem = slot_memory(&s);
		uint64_t limit = 0;
		if (max && mem > max) {
			limit = max;
		} else if (idle_max && mem > idle_max) {
			waiting = 1;
			uint64_t since = s.idle_since_mono_us > now ? now : s.idle_since_mono_us;
			if (!pool_idle || SB_SLOT_BUSY(&s) || s.kept || now - since < PM_IDLE_MEMORY_US)
				continue;
			limit = idle_max;
		} else {
			continue;
		}
		waiting = 1;
		if (!pick || mem > pick_mem) {
			pick = c;
			pick_mem = mem;
			pick_limit = limit;
		}
	}
	if (!pick || leaving)
		return waiting;
	log_notice("[pool %s] child %d: %" PRIu64 " MB of private memory after its last request, over "
		   "%s (%" PRIu64 " MB): replacing it", pc->name, (int)pick->pid, pick_mem >> 20,
		   pick_limit == max ? "pm.max_memory" : "pm.max_idle_memory", pick_limit >> 20);
	pick->memory_sent_us = now;
	pick->quitting = 1;
	kill(pick->pid, SIGQUIT);
	return 1;
}

/*
 * A static pool needs no watch on its socket, except while some worker is
 * parked: then an arrival may have to free one.  Workers say when they
 * park (once per kept connection); the watch goes at the first tick that
 * finds none parked.
 */
static void static_watch(struct master *m, struct pool *p, const struct pool_view *v)
{
	if (pool_needs_watch(p->conf))
		return;                    /* watched all the time */
	if (v->parked && !p->own->listen_watch)
		p->own->listen_watch = ev_fd_add(m->loop, p->listen_fd, EPOLLIN | EPOLLET, on_listen, p);
	else if (!v->parked && p->own->listen_watch) {
		ev_fd_del(m->loop, p->own->listen_watch);
		p->own->listen_watch = NULL;
	}
}

/* What pm_decide() said, done: the master's own children only, its log lines. */
static void act(struct master *m, struct pool *p, const struct pool_view *v,
		const struct pm_actions *a, uint64_t now)
{
	const struct pool_conf *pc = p->conf;
	unsigned live = v->idle + v->active + v->parked;
	if (a->reached_max_children) {
		p->own->max_children_reached++;
		POOL_HDR_SET(p, max_children_reached, p->own->max_children_reached);
		/* php-fpm's two lines, word for word: log matchers know them */
		log_warning("[pool %s] server reached %s setting (%d), consider raising it", pc->name,
			    pc->pm == PM_ONDEMAND ? "max_children" : "pm.max_children",
			    pc->pm_max_children);
	}
	/* php-fpm looks once a second, so says it that often at most; fpmd looks every
	 * 100 ms while connections wait */
	if (a->busy_warning && (!p->own->busy_said_us || now - p->own->busy_said_us >= 1000000u)) {
		p->own->busy_said_us = now;
		log_warning("[pool %s] seems busy (you may need to increase pm.start_servers, or "
			    "pm.min/max_spare_servers), spawning %u children, there are %u idle, and %u "
			    "total children", pc->name, a->spawn, v->idle, live);
	}
	if (a->spawn)
		children_spawn_pm(m, p, a->spawn);
	if (a->retire && v->longest_idle)
		retire(p, v->longest_idle, a->retire);
	if (a->release_parked)
		release_parked(p, a->release_parked, v->pending - v->idle, now);
	if (a->retire_zygote && p->own->zygote)
		zygote_retire(m, p);
}

/*
 * The tick after this one: every period_ms, the first at first_ms when a
 * request's deadline comes sooner (php-fpm's timeouts fire within a few ms
 * of the setting; a period of a third of it made them up to a third late).
 */
static void schedule_first(struct pool *p, unsigned period_ms, unsigned first_ms)
{
	p->sb.hdr->master_sleeping = 0;
	p->own->pm_period_ms = period_ms;
	ev_timer_arm(p->own->pm_timer, first_ms ? first_ms : 1, period_ms);
}

static void schedule(struct pool *p, unsigned period_ms)
{
	/*
	 * Asleep, the master relies on workers to poke the eventfd.  A static
	 * pool without timeouts has nothing to be woken for at a request's start.
	 */
	p->sb.hdr->master_sleeping = period_ms == 0 && pool_needs_watch(p->conf);
	if (period_ms == p->own->pm_period_ms)
		return;
	p->own->pm_period_ms = period_ms;
	if (period_ms == 0)
		ev_timer_disarm(p->own->pm_timer);
	else
		ev_timer_arm(p->own->pm_timer, period_ms, period_ms);
}

static void tick(struct master *m, struct pool *p, int woke, int only_woke)
{
	if (m->state != MASTER_RUNNING)
		return;
	uint64_t now = sb_mono_us();
	/*
	 * Under a flood of arrivals a pool is looked at every 20 ms at most: an
	 * arrival that comes sooner after a look is left to the timer, whose next
	 * look is brought forward to then (its period may be a second: such an
	 * arrival would wait that long for a worker).
	 */
	if (only_woke && p->own->pm_period_ms && now - p->own->last_tick_us < PM_FLOOD_US) {
		uint64_t due = p->own->last_tick_us + PM_FLOOD_US;
		if (p->own->look_due_us != due) {
			p->own->look_due_us = due;
			schedule_first(p, p->own->pm_period_ms, (unsigned)((due - now) / 1000u) + 1u);
		}
		return;
	}
	p->own->look_due_us = 0;
	struct pool_view v;
	look(p, &v, now);
	struct pm_view pv = {
		.idle = v.idle, .active = v.active, .parked = v.parked, .running = v.running,
		.pending = v.pending, .has_idle = v.longest_idle != NULL,
		.longest_idle_us = v.longest_idle && now > v.longest_idle_since
				   ? now - v.longest_idle_since : 0,
		/* a connection woke the master, and nothing else asked for this look (a timer's
		 * look merged with an arrival is a full look: spares are its job) */
		.woke = woke && only_woke,
		.backing_off = p->own->respawn_timer && ev_timer_armed(p->own->respawn_timer),
		.has_zygote = p->own->zygote != NULL,
	};
	struct pm_actions actions;
	pm_decide(p->conf, p->own->floor, &p->own->pm_mem, &pv, &actions);
	act(m, p, &v, &actions, now);
	if (p->conf->pm == PM_STATIC)
		static_watch(m, p, &v);
	int memory_waits = memory_recycle(p, &v, now);
	p->own->last_tick_us = now;

	/* Keep ticking only while something needs watching. */
	const struct pool_conf *pc = p->conf;
	unsigned period = 0;
	unsigned tp = timeout_period_ms(pc);
	int leaving = 0;
	for (struct child *c = p->own->children; c; c = c->next)
		leaving |= c->term_sent_us != 0;
	/* Right after an arrival the worker may not have marked itself busy yet. */
	if ((v.active || woke) && tp)
		period = tp;
	if (leaving)
		period = tp ? tp : PM_BUSY_PERIOD_MS;
	/* a worker starting is watched until it is ready or out of time */
	if (v.starting)
		period = period && period < PM_BUSY_PERIOD_MS ? period : PM_BUSY_PERIOD_MS;
	/* a worker over a memory limit waits for its turn or for the pool to be idle */
	if (memory_waits)
		period = period && period < PM_MEMORY_PERIOD_MS ? period : PM_MEMORY_PERIOD_MS;
	if (pc->pm == PM_DYNAMIC &&
	    (v.active || woke || v.idle < (unsigned)pc->pm_min_spare_servers ||
	     v.idle > (unsigned)pc->pm_max_spare_servers))
		period = period && period < PM_BUSY_PERIOD_MS ? period : PM_BUSY_PERIOD_MS;
	if (pc->pm == PM_ONDEMAND && v.running > p->own->floor)
		period = period && period < PM_BUSY_PERIOD_MS ? period : PM_BUSY_PERIOD_MS;
	if (pc->pm != PM_STATIC && v.running < p->own->floor)
		period = period && period < PM_BUSY_PERIOD_MS ? period : PM_BUSY_PERIOD_MS;
	/* a static pool a failed spawn left short looks again until it is whole */
	if (pc->pm == PM_STATIC && !pv.backing_off &&
	    v.idle + v.active + v.parked < (unsigned)pc->pm_max_children)
		period = period && period < PM_BUSY_PERIOD_MS ? period : PM_BUSY_PERIOD_MS;
	/* Waiting: more connections queued than idle workers about to accept them. */
	if (v.pending > v.idle && (pc->pm != PM_STATIC || v.parked))
		period = PM_QUEUE_PERIOD_MS;
	if (period && v.next_deadline_us) {
		uint64_t due_us = v.next_deadline_us > now ? v.next_deadline_us - now : 0;
		/* +1 ms: a tick a hair early would find nothing due yet */
		uint64_t due_ms = due_us / 1000u + 1u;
		if (due_ms < period) {
			schedule_first(p, period, (unsigned)due_ms);
			return;
		}
	}
	if (period == 0) {
		/* Going to sleep: say so first, then look once more, so a request that
		 * started in between is either seen here or pokes the eventfd. */
		schedule(p, 0);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		struct pool_view again;
		look(p, &again, sb_mono_us());
		if (again.active && (tp || pc->pm == PM_DYNAMIC))
			schedule(p, tp ? tp : PM_BUSY_PERIOD_MS);
		return;
	}
	schedule(p, period);
}

void pm_tick(struct master *m, struct pool *p, int woke)
{
	tick(m, p, woke, woke);
}

void pm_run_marked(struct master *m)
{
	for (struct pool *p = m->pools; p; p = p->next) {
		if (!p->own->pm_marked)
			continue;
		int woke = p->own->pm_marked_woke, other = p->own->pm_marked_other;
		p->own->pm_marked = p->own->pm_marked_woke = p->own->pm_marked_other = 0;
		if (p->own->pm_timer)
			tick(m, p, woke, !other);
	}
}

static void on_pm_timer(struct ev_loop *loop, struct ev_watch *t, void *data)
{
	struct pool *p = data;
	(void)loop;
	(void)t;
	/*
	 * A flood's deferred look is the arrivals' look it stands for: like
	 * theirs, it leaves a spare-server shortfall to the next full look (a
	 * request to a one-worker pool right after a look forked a second
	 * worker for itself).
	 */
	int deferred = p->own->look_due_us && sb_mono_us() + 1000u >= p->own->look_due_us;
	pm_mark(p, deferred);
}

/* A worker started a request while the master slept. */
static void on_wake(struct ev_loop *loop, int fd, uint32_t events, void *data)
{
	struct pool *p = data;
	uint64_t count;
	(void)loop;
	(void)events;
	while (read(fd, &count, sizeof(count)) > 0)
		;
	pm_mark(p, 1);
}

/* A connection arrived: look now (ondemand spawns on this), then as scheduled. */
static void on_listen(struct ev_loop *loop, int fd, uint32_t events, void *data)
{
	struct pool *p = data;
	(void)loop;
	(void)fd;
	(void)events;
	pm_mark(p, 1);
}

static int pool_needs_watch(const struct pool_conf *pc)
{
	return pc->pm != PM_STATIC || timeout_period_ms(pc) != 0;
}

int pm_pool_start(struct master *m, struct pool *p)
{
	p->own->pm_mem = (struct pm_memory){ .spawn_rate = 1 };
	p->own->slowlog_fd = -1;
	if (p->conf->slowlog && p->conf->request_slowlog_timeout > 0) {
		p->own->slowlog_fd = log_file_open(p->conf->slowlog, 0640);
		if (p->own->slowlog_fd < 0)
			log_sys(LL_WARNING, "[pool %s] cannot open slowlog '%s'", p->conf->name,
				p->conf->slowlog);
	}
	/* Every pool: its workers say when they park on a kept connection (static_watch). */
	p->own->pm_timer = ev_timer_new(m->loop, on_pm_timer, p);
	if (!p->own->pm_timer)
		return -1;
	p->own->wake_watch = ev_fd_add(m->loop, p->wake_fd, EPOLLIN, on_wake, p);
	if (!p->own->wake_watch)
		return -1;
	if (pool_needs_watch(p->conf)) {
		p->own->listen_watch = ev_fd_add(m->loop, p->listen_fd, EPOLLIN | EPOLLET, on_listen, p);
		if (!p->own->listen_watch)
			return -1;
	}
	pm_tick(m, p, 0);
	return 0;
}

void pm_pool_stop(struct master *m, struct pool *p)
{
	if (p->own->listen_watch)
		ev_fd_del(m->loop, p->own->listen_watch);
	p->own->listen_watch = NULL;
	if (p->own->wake_watch)
		ev_fd_del(m->loop, p->own->wake_watch);
	p->own->wake_watch = NULL;
	if (p->own->pm_timer)
		ev_timer_free(m->loop, p->own->pm_timer);
	p->own->pm_timer = NULL;
	if (p->own->slowlog_fd >= 0)
		close(p->own->slowlog_fd);
	p->own->slowlog_fd = -1;
}

int pm_slowlog_reopen(struct pool *p)
{
	if (p->own->slowlog_fd < 0 || !p->conf->slowlog)
		return 0;
	int fd = log_file_open(p->conf->slowlog, 0640);
	if (fd < 0)
		return -1;
	close(p->own->slowlog_fd);
	p->own->slowlog_fd = fd;
	return 0;
}
