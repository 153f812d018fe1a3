/*
 * A worker: accept a connection, read one request, hand it to a handler,
 * finish it, repeat.  Follow one request from top to bottom here:
 *
 *   accept4 → allowed_clients → READING_HEADERS → parser fed until PARAMS end
 *   → GETTING_INFO (scoreboard filled) → route (ping, status, pool handler)
 *   → RUNNING → handler streams the response → END_REQUEST → IDLE
 *   (ENDING in between when the script runs on after req_finish_early,
 *   php's fastcgi_finish_request()) → keep-alive or close → max_requests
 *   → next accept.
 */
#include "worker/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handlers/handler.h"
#include "log/access_format.h"
#include "log/log.h"
#include "net/fd_pass.h"
#include "proc/proctitle.h"
#include "worker/conn.h"
#include "worker/procmem.h"
#include "worker/request.h"

volatile sig_atomic_t worker_quit;
volatile sig_atomic_t worker_release;
static volatile sig_atomic_t release_token;
static pid_t release_from;

static void on_sigquit(int signo)
{
	(void)signo;
	worker_quit = 1;
}

/* Only the master's, only sigqueue()d: anybody else's is ignored. */
static void on_release(int signo, siginfo_t *si, void *ctx)
{
	(void)signo;
	(void)ctx;
	if (si->si_code != SI_QUEUE || si->si_pid != release_from)
		return;
	release_token = si->si_value.sival_int;
	worker_release = 1;
}

/*
 * Installed once the worker serves (a handler set before would be reset by
 * worker_setup), blocked except while waiting, like SIGQUIT.
 */
static void release_signal_install(pid_t master_pid)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_release;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	release_from = master_pid;
	sigaction(WORKER_SIG_RELEASE, &sa, NULL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, WORKER_SIG_RELEASE);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

/*
 * A release meant for this wait: the master saw this worker parked after
 * the request count it sent.  One that arrives after the worker has served
 * another request is stale and ignored.
 */
static int release_is_current(const struct worker *w)
{
	int current = worker_release && (uint32_t)release_token == (uint32_t)w->slot->requests;
	worker_release = 0;
	return current;
}

static void slot_stage(struct worker *w, enum sb_stage stage)
{
	sb_write_begin(w->slot);
	w->slot->stage = stage;
	w->slot->kept = 0;
	if (stage == SB_IDLE)
		w->slot->idle_since_mono_us = sb_mono_us();
	sb_write_end(w->slot);
}

#define TV_US(tv) ((uint64_t)(tv).tv_sec * 1000000u + (uint64_t)(tv).tv_usec)

static uint64_t cpu_us(const struct rusage *ru)
{
	return TV_US(ru->ru_utime) + TV_US(ru->ru_stime);
}

/* Workers of the pool in a request now, this one included (a racy read is good enough). */
static uint32_t busy_now(const struct worker *w)
{
	const struct scoreboard *sb = &w->pool->sb;
	uint32_t n = 0;
	for (unsigned i = 0; i < sb->nslots; i++) {
		uint32_t st = sb->slots[i].stage;
		if (sb->slots[i].pid && st != SB_IDLE && st != SB_FINISHING)
			n++;
	}
	return n;
}

/* builtin: ping.path or pm.status_path answer it, no script runs (php-fpm shows "-"). */
static void slot_request_start(struct worker *w, const struct fcgi_parser *p, int builtin)
{
	const char *method = fcgi_param_value(p, "REQUEST_METHOD");
	const char *uri = fcgi_param_value(p, "REQUEST_URI");
	const char *query = fcgi_param_value(p, "QUERY_STRING");
	const char *script = fcgi_param_value(p, "SCRIPT_FILENAME");
	const char *user = fcgi_param_value(p, "REMOTE_USER");
	const char *clen = fcgi_param_value(p, "CONTENT_LENGTH");
	char path[SB_URI_LEN];

	/* php-fpm shows the URI without its query; the query has its own field. */
	sb_strcpy(path, sizeof(path), uri ? uri : fcgi_param_value(p, "SCRIPT_NAME"));
	char *q = strchr(path, '?');
	if (q)
		*q = '\0';

	sb_write_begin(w->slot);
	w->slot->stage = SB_GETTING_INFO;
	sb_strcpy(w->slot->method, sizeof(w->slot->method), method);
	sb_strcpy(w->slot->uri, sizeof(w->slot->uri), path);
	sb_strcpy(w->slot->query, sizeof(w->slot->query), query);
	sb_strcpy(w->slot->script, sizeof(w->slot->script), builtin ? NULL : script);
	sb_strcpy(w->slot->user, sizeof(w->slot->user), user);
	w->slot->content_length = clen ? strtoull(clen, NULL, 10) : 0;
	/* "max active processes" counts requests side by side: this one and the others now */
	w->slot->active_seen = busy_now(w);
	sb_write_end(w->slot);
}

/* --- memory (pm.max_memory, pm.max_idle_memory, %M) ------------------- */

/*
 * A module or exec worker's "last request memory" (and %M) is the request's
 * peak resident set when the access log prints %M: clear_refs 5 resets the
 * kernel's high-water mark (VmHWM, which is also getrusage's ru_maxrss) as
 * the request starts.  Otherwise (no %M, no /proc, a cgi pool) ru_maxrss is
 * the process's peak so far; a php pool's figure is PHP's own.
 */
static void memory_request_start(const struct worker *w)
{
	if (w->clear_refs_fd >= 0 && pwrite(w->clear_refs_fd, "5", 1, 0) < 0) {
		/* A kernel without it: the peak so far stands in. */
	}
}

static uint64_t memory_of_request(struct worker *w, const struct rusage *after)
{
	uint64_t m = (uint64_t)after->ru_maxrss * 1024u;
	/* exec pools: the program's resident set as the request ends, on top of the worker's */
	pid_t prog = w->pool->handler->program ? w->pool->handler->program(w) : 0;
	uint64_t res;
	if (prog > 0 && procmem_statm(prog, &res, NULL) == 0)
		m += res;
	return m;
}

static int over_limit(const struct pool_conf *pc, uint64_t figure)
{
	return (pc->pm_max_memory > 0 && figure > (uint64_t)pc->pm_max_memory) ||
	       (pc->pm_max_idle_memory > 0 && figure > (uint64_t)pc->pm_max_idle_memory);
}

/*
 * After a request, once its answer is out: the worker's resident set from
 * statm (one pread), and, only when that is over the pool's lowest limit,
 * its private memory from smaps_rollup, the figure the limits compare
 * against: what replacing the worker gives back (shared pages, the zygote's
 * and the libraries', stay with the pool).  An exec pool's program counts
 * too.  1 when over a limit: the master is then told (eventfd); it decides
 * which worker goes, and when (pm.c: memory_recycle).
 */
static int memory_check(struct worker *w)
{
	if (!w->mem_threshold)
		return 0;
	uint64_t res = 0, priv = 0;
	/* a cgi worker keeps no descriptor for it (its budget is counted: conf.h) */
	if ((w->statm_fd >= 0 ? procmem_statm_fd(w->statm_fd, &res, NULL)
			      : procmem_statm(getpid(), &res, NULL)) < 0)
		return 0;
	pid_t prog = w->pool->handler->program ? w->pool->handler->program(w) : 0;
	uint64_t pres = 0;
	if (prog > 0 && procmem_statm(prog, &pres, NULL) == 0)
		res += pres;
	if (res > w->mem_threshold) {
		struct procmem_rollup r;
		if (procmem_rollup(0, &r) == 0)
			priv = r.private_;
		else
			priv = res - pres;   /* unreadable: resident is the bound we have */
		if (prog > 0 && procmem_rollup(prog, &r) == 0)
			priv += r.private_;
		else
			priv += pres;
	}
	sb_write_begin(w->slot);
	w->slot->resident = res;
	w->slot->private_mem = priv;
	sb_write_end(w->slot);
	return priv && over_limit(w->pool->conf, priv);
}

/* Over a limit: the master is told once the slot is written and idle (it reads it then). */
static void memory_tell_master(void)
{
	uint64_t one = 1;
	if (write(WORKER_FD_WAKE, &one, sizeof(one)) < 0) {
		/* Counter full or no eventfd: the master is awake anyway. */
	}
}

/* Above the worker's numbered descriptors (worker.h, WORKER_FD_LAST), close-on-exec. */
static int fd_above_layout(int fd)
{
	if (fd < 0 || fd > WORKER_FD_LAST)
		return fd;
	int moved = fcntl(fd, F_DUPFD_CLOEXEC, WORKER_FD_LAST + 1);
	close(fd);
	return moved;
}

static uint64_t lowest_limit(const struct pool_conf *pc)
{
	uint64_t a = pc->pm_max_memory > 0 ? (uint64_t)pc->pm_max_memory : 0;
	uint64_t b = pc->pm_max_idle_memory > 0 ? (uint64_t)pc->pm_max_idle_memory : 0;
	return a && b ? (a < b ? a : b) : a ? a : b;
}

static void memory_open(struct worker *w)
{
	const struct pool_conf *pc = w->pool->conf;
	w->mem_threshold = lowest_limit(pc);
	if (!w->mem_threshold)
		return;
	if (w->statm_fd < 0 && pc->app_type != APP_CGI)
		w->statm_fd = fd_above_layout(open("/proc/self/statm", O_RDONLY | O_CLOEXEC));
	uint64_t res;
	if (w->statm_fd < 0 && procmem_statm(getpid(), &res, NULL) < 0)
		log_sys(LL_WARNING, "[pool %s] child %d: cannot read /proc/self/statm (a chroot without "
			"/proc?): pm.max_memory and pm.max_idle_memory do not apply to this worker",
			pc->name, (int)getpid());
}

/* The request's figures, before END_REQUEST goes out (php-fpm's order). */
static void slot_request_end(struct worker *w, const struct rusage *before,
			     const struct rusage *after, uint64_t memory_peak)
{
	sb_write_begin(w->slot);
	w->slot->duration_us = sb_mono_us() - w->slot->accepted_mono_us;
	w->slot->cpu_us = cpu_us(after) - cpu_us(before);
	unsigned b = 0;
	while (b < STATUS_HIST_BUCKETS && (double)w->slot->duration_us > status_hist_bounds[b] * 1e6)
		b++;
	w->slot->hist[b]++;
	w->slot->duration_sum_us += w->slot->duration_us;
	/* PHP's own peak when the handler knows it (php-fpm's "last request memory") */
	w->slot->memory = memory_peak;
	w->slot->requests++;
	w->slot->idle_since_mono_us = sb_mono_us();
	sb_write_end(w->slot);
}

/*
 * Params over request.max_params_size, _count or max_param_name_size: the
 * request is answered (431, as a web server answers headers it will not
 * take) instead of a dropped connection that nginx shows as a 502; then the
 * connection is closed, after reading what the client had already sent
 * (bounded), so a TCP reset cannot destroy the answer on its way.
 */
static void answer_params_too_large(struct worker *w, struct conn *c)
{
	const struct pool_conf *pc = w->pool->conf;
	log_limited(LL_WARNING, "[pool %s] child %d: request refused with 431: %s "
		    "(request.max_params_size %zu, request.max_params_count %d, "
		    "request.max_param_name_size %zu)%s", pc->name, (int)getpid(),
		    fcgi_strerror(c->parser.error), pc->request_max_params_size,
		    pc->request_max_params_count, pc->request_max_param_name_size);
	if (!c->parser.active)
		return;
	static const char body[] = POOL_PARAMS_REFUSAL;
	uint8_t hdr[FCGI_HEADER_LEN], end[FCGI_END_REQUEST_LEN], pad;
	uint16_t id = c->parser.request_id;
	fcgi_stream_header(hdr, FCGI_STDOUT, id, sizeof(body) - 1, &pad);
	if (conn_write_record(c, hdr, body, sizeof(body) - 1, pad) < 0)
		return;
	fcgi_stream_header(hdr, FCGI_STDOUT, id, 0, &pad);
	fcgi_end_request_encode(end, id, 0, FCGI_REQUEST_COMPLETE);
	if (conn_write(c, hdr, sizeof(hdr)) < 0 || conn_write(c, end, sizeof(end)) < 0 ||
	    conn_flush(c) < 0)
		return;
	shutdown(c->fd, SHUT_WR);
	uint64_t until = conn_now_ms() + 1000;
	size_t drained = 0;
	while (drained < (4u << 20)) {
		uint64_t now = conn_now_ms();
		if (now >= until || !wait_readable(c->fd, (int)(until - now)))
			break;
		ssize_t n = recv(c->fd, c->in, CONN_IN_CAP, MSG_DONTWAIT);
		if (n <= 0)
			break;
		drained += (size_t)n;
	}
}

/*
 * Waiting on a kept connection, the worker cannot take a new one: it is
 * marked so the master counts it as neither idle nor busy ("parked": it
 * spawns for it as for a busy one, and asks it to give the connection up
 * when no worker can be added; pm.c).  The first wait of a connection also
 * tells the master, which may be asleep or, in a static pool, not watching
 * the socket: once per kept connection, not per request.
 */
static void slot_park(struct worker *w, int tell_master)
{
	sb_write_begin(w->slot);
	w->slot->kept = 1;
	sb_write_end(w->slot);
	if (tell_master) {
		uint64_t one = 1;
		if (write(WORKER_FD_WAKE, &one, sizeof(one)) < 0) {
			/* Counter full or no eventfd: the master is awake anyway. */
		}
	}
}

/*
 * A connection a parked worker took from the pool's socket for the kept one
 * it gave up (read_request_head): take_connection serves it first.
 */
static int taken_fd = -1;
static struct sockaddr_storage taken_peer;
static int accept_one(struct worker *w, struct sockaddr_storage *peer);
/* worker.h: 0 until worker_setup moves the pool's socket off stdin (php and module pools). */
int worker_fd_listen = 0;

/* The kept connection in hand is to be handed to the master, not closed (end_connection). */
static int park_kept;
/* The connection in hand is kept, its last request answered, no byte of the next one read. */
static int kept_between;

/*
 * A kept connection the master handed back (master/kept.h): its next
 * request is there.  The fd, or -1 when another worker took it first.
 */
static int handoff_take(struct sockaddr_storage *peer)
{
	for (;;) {
		char byte;
		struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
		union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				     .msg_controllen = sizeof(u.buf) };
		ssize_t n = recvmsg(WORKER_FD_HANDOFF, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int)))
			continue;            /* not one descriptor: nothing to serve */
		int fd;
		memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
		if (n != 1 || byte != KEPT_MARK_SERVE) {
			/* a descriptor the master would not close itself (kept.h): the close is ours */
			close(fd);
			continue;
		}
		socklen_t len = sizeof(*peer);
		memset(peer, 0, sizeof(*peer));
		if (getpeername(fd, (struct sockaddr *)peer, &len) < 0)
			peer->ss_family = AF_UNSPEC;
		return fd;
	}
}

/*
 * The web server owns a kept connection (FastCGI §3.5): one this worker
 * stops waiting on goes to the master, which holds it until its next
 * request.  0 sent (the caller closes its copy), -1 not (it is closed as
 * before: the master stopping, or its queue full).
 */
static int handoff_park(const struct worker *w, int fd)
{
	if (fd_pass_send(WORKER_FD_HANDOFF, fd, KEPT_MARK_SERVE) == 0)
		return 0;
	log_debug("[pool %s] child %d: a kept connection could not be handed to the master (%s); "
		  "closing it", w->pool->conf->name, (int)getpid(), strerror(errno));
	return -1;
}

/* A waiting connection: one handed back first (its request is there already), else a new one. */
static int take_waiting(struct worker *w, struct sockaddr_storage *peer)
{
	int fd = handoff_take(peer);
	return fd >= 0 ? fd : accept_one(w, peer);
}

/*
 * Whether a waiting connection is better left to another: a worker of the
 * pool other than w waits to accept, or the pool may still grow (dynamic,
 * ondemand: the master spawns for a connection that waits behind parked
 * workers).  From the scoreboard, which may lag: a wrong guess costs a
 * kept connection given up, or the master's release a moment later.
 */
static int another_worker_may_take(const struct worker *w)
{
	int can_grow = w->pool->conf->pm != PM_STATIC;
	int full = 1;
	for (unsigned i = 0; i < w->pool->sb.nslots; i++) {
		struct sb_slot s;
		if (i == w->slot_index)
			continue;
		sb_slot_read(&w->pool->sb, i, &s);
		if (!s.pid)
			full = 0;
		else if (SB_SLOT_ACCEPTS(&s))
			return 1;
	}
	return can_grow && !full;
}

/* A connection waits on the pool's socket, not accepted by anyone yet. */
static int connection_waiting(void)
{
	struct pollfd pfd = { .fd = WORKER_FD_LISTEN, .events = POLLIN };
	return poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN);
}

/* How long a parked worker leaves a waiting connection to an idle worker. */
#define PARKED_YIELD_MS 2

/* A timeout in seconds as milliseconds for poll, 0 (off) as -1 (no limit). */
int worker_timeout_ms(int seconds)
{
	if (seconds <= 0)
		return -1;
	return seconds > INT_MAX / 1000 ? INT_MAX : seconds * 1000;
}

/*
 * Reads until BEGIN_REQUEST and every PARAMS record have arrived.
 * Returns 1 when a request is ready, 0 when the connection ended cleanly
 * (or a quit came between requests, or request_keepalive_timeout), -1 on a
 * protocol error or request_header_timeout.  A request aborted before its
 * params ended is answered here; on a kept connection the wait goes on.
 *
 * request_header_timeout counts from accept_ms on a new connection and from
 * the first byte of the request on a kept one, as nginx's
 * client_header_timeout: the wait for that first byte on a kept connection
 * is request_keepalive_timeout's.
 */
static int quit_pending(void);

static int read_request_head_counted(struct worker *w, struct conn *c, unsigned nth,
				     uint64_t accept_ms, int *started, int *client_ended)
{
	const struct pool_conf *pc = w->pool->conf;
	int header_ms = worker_timeout_ms(pc->request_header_timeout);
	uint64_t deadline = header_ms >= 0 ? accept_ms + (uint64_t)header_ms : 0;
	int first = nth == 0;
	int yielded = 0;     /* a waiting connection left to another worker, for PARKED_YIELD_MS */
	uint64_t idle_until = 0;   /* request_keepalive_timeout's end, once the wait began */
	for (;;) {
		if (c->in_pos == c->in_len) {
			/*
			 * Between keep-alive requests a graceful stop may interrupt the
			 * wait; a connection just accepted is owed its answer.
			 */
			int idle = !*started && !first;
			int wait_ms = -1;
			if (idle && quit_pending()) {
				/*
				 * Told to stop while it served (SIGQUIT stays blocked
				 * then): the next request on a kept connection is not
				 * this worker's, even one already there to read (nginx
				 * sends it as soon as fastcgi_finish_request() answered
				 * the last): a stop or reload waited for it again and
				 * again, then killed the worker.  The connection goes
				 * back unread, as at a quit seen while waiting.
				 */
				park_kept = 1;
				return 0;
			}
			if (idle) {
				/* one deadline for the whole wait, however often it is woken */
				int keep_ms = worker_timeout_ms(pc->request_keepalive_timeout);
				if (keep_ms >= 0) {
					uint64_t now = conn_now_ms();
					if (!idle_until)
						idle_until = now + (uint64_t)keep_ms;
					wait_ms = now >= idle_until ? 0 : (int)(idle_until - now);
				}
				if (!w->slot->kept)
					slot_park(w, nth <= 1);
				/*
				 * Parked, the worker watches the pool's socket too: a
				 * client of another nginx worker (or instance) must not
				 * wait for this connection's web server to let go.
				 */
				c->watch_listen_fd = yielded ? -1 : WORKER_FD_LISTEN;
				c->watch_handoff_fd = yielded ? -1 : WORKER_FD_HANDOFF;
				if (yielded && (wait_ms < 0 || wait_ms > PARKED_YIELD_MS))
					wait_ms = PARKED_YIELD_MS;
			} else if (deadline) {
				uint64_t now = conn_now_ms();
				wait_ms = now >= deadline ? 0 : (int)(deadline - now);
			}
			enum conn_read_result rr = conn_read(c, idle, wait_ms);
			c->watch_listen_fd = -1;
			c->watch_handoff_fd = -1;
			if (rr == CONN_READ_TIMEOUT && idle && yielded &&
			    !(idle_until && conn_now_ms() >= idle_until)) {
				yielded = 0;            /* the pause is over: look again */
				continue;
			}
			if (rr == CONN_READ_WAITING) {
				/*
				 * An idle worker was woken for it as well (or one is being
				 * spawned): its turn, while the scoreboard shows one.  A
				 * slot that shows idle wrongly is the master's release's
				 * to make up for.
				 */
				yielded = another_worker_may_take(w);
				if (yielded)
					continue;
				struct sockaddr_storage peer;
				int fd = take_waiting(w, &peer);
				if (fd < 0)
					continue;               /* someone took it */
				taken_fd = fd;
				taken_peer = peer;
				park_kept = 1;
				log_debug("[pool %s] child %d: kept connection handed to the master for a "
					  "connection waiting on the pool's socket", pc->name, (int)getpid());
				return 0;
			}
			if (rr == CONN_READ_RELEASE) {
				/*
				 * Asked before the request this worker served since:
				 * given up still if a connection waits now (the master
				 * asks one worker at a time, again only after a second).
				 */
				if (!release_is_current(w) && !connection_waiting())
					continue;
				park_kept = 1;
				log_debug("[pool %s] child %d: kept connection handed to the master: the "
					  "pool needs this worker for a waiting connection", pc->name,
					  (int)getpid());
				return 0;
			}
			/* the client's side ended the wait (a close, a reset, a timeout) */
			*client_ended = rr == CONN_READ_EOF || rr == CONN_READ_ERR ||
					rr == CONN_READ_TIMEOUT;
			if (rr == CONN_READ_TIMEOUT && idle) {
				log_debug("[pool %s] child %d: kept connection idle for "
					  "request_keepalive_timeout (%ds); closing it", pc->name,
					  (int)getpid(), pc->request_keepalive_timeout);
				return 0;
			}
			if (rr == CONN_READ_TIMEOUT) {
				log_limited(LL_WARNING, "[pool %s] child %d: request_header_timeout (%ds) "
					    "expired while reading the request's %s; closing the "
					    "connection%s", pc->name, (int)getpid(),
					    pc->request_header_timeout, !*started ? "first byte" :
					    c->parser.active ? "params (FCGI_PARAMS)" :
					    "header (FCGI_BEGIN_REQUEST)");
				return -1;
			}
			if (rr == CONN_READ_QUIT && idle)
				park_kept = 1;          /* leaving between two requests: kept for the next */
			if (rr == CONN_READ_EOF || rr == CONN_READ_QUIT)
				return 0;
			if (rr == CONN_READ_ERR)
				return -1;
		}
		if (!*started) {
			kept_between = 0;
			/* The request starts with its first byte, as php-fpm counts it. */
			sb_write_begin(w->slot);
			w->slot->stage = SB_READING_HEADERS;
			w->slot->kept = 0;
			w->slot->accepted_us = sb_now_us();
			w->slot->accepted_mono_us = sb_mono_us();
			sb_write_end(w->slot);
			w->have_request_ru = getrusage(RUSAGE_SELF, &w->request_ru) == 0;
			*started = 1;
			if (!first && header_ms >= 0)
				deadline = conn_now_ms() + (uint64_t)header_ms;
			/* Busy is stored first, the flag read second: the master does the
			 * reverse, so one of the two always sees the other. */
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (w->pool->sb.hdr->master_sleeping) {
				uint64_t one = 1;
				if (write(WORKER_FD_WAKE, &one, sizeof(one)) < 0) {
					/* Counter full or no eventfd: the master is awake anyway. */
				}
			}
		}
		struct fcgi_event ev;
		ssize_t n = fcgi_parser_feed(&c->parser, c->in + c->in_pos, c->in_len - c->in_pos, &ev);
		if (n < 0) {
			enum fcgi_error e = c->parser.error;
			if (fcgi_error_is_limit(e)) {
				answer_params_too_large(w, c);
				return -1;
			}
			log_limited(LL_WARNING, "[pool %s] child %d: FastCGI protocol error from client: "
				    "%s; closing the connection%s", w->pool->conf->name, (int)getpid(),
				    fcgi_strerror(e));
			return -1;
		}
		c->in_pos += (size_t)n;
		switch (ev.kind) {
		case FCGI_EV_PARAMS_DONE:
			return 1;
		case FCGI_EV_REPLY:
			if (conn_write(c, ev.data, ev.len) < 0 || conn_flush(c) < 0)
				return -1;
			break;
		case FCGI_EV_ABORT:
			/*
			 * Aborted before its params ended: nothing ran.  It is owed its
			 * END_REQUEST (spec §5.4) like any other; a kept connection
			 * then goes on with its next request.
			 */
			if (c->parser.active) {
				uint8_t rec[FCGI_END_REQUEST_LEN];
				fcgi_end_request_encode(rec, c->parser.request_id, 0, FCGI_REQUEST_COMPLETE);
				if (conn_write(c, rec, sizeof(rec)) < 0 || conn_flush(c) < 0)
					return -1;
				if (!(c->parser.flags & FCGI_KEEP_CONN) || worker_quit)
					return 0;
				/* kept: wait for its next request, as after an answered one */
				fcgi_parser_reset(&c->parser);
				slot_stage(w, SB_IDLE);
				first = *started = 0;
			}
			break;
		default:
			break;
		}
	}
}

/*
 * Every wait for a request counts as accepted, as php-fpm counts it (the
 * status page's "accepted conn" and the worker's "requests"): a request
 * that began (a byte of it came) and never became whole (the client went,
 * stalled past request_header_timeout, broke the protocol, was answered
 * 431), and a wait the client ended without a byte (a connection closed
 * at once, a TCP health check; nginx closing a kept connection).  A wait
 * this side ended (a stop, the connection handed to the master) does not.
 */
static int read_request_head(struct worker *w, struct conn *c, unsigned nth, uint64_t accept_ms)
{
	int started = 0, client_ended = 0;
	int r = read_request_head_counted(w, c, nth, accept_ms, &started, &client_ended);
	if (r <= 0 && (started || client_ended)) {
		sb_write_begin(w->slot);
		w->slot->requests++;
		sb_write_end(w->slot);
	}
	return r;
}

/* --- access log -------------------------------------------------------- */

static const char *entry_param(void *ctx, const char *name)
{
	return req_param(ctx, name);
}

static const char *entry_header(void *ctx, const char *name, size_t *len)
{
	const struct request *r = ctx;
	const struct worker *w = r->worker;
	size_t nlen = strlen(name);
	const char *p = w->resp_head, *end = w->resp_head + w->resp_head_len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
			const char *v = p + nlen + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = eol;
			if (ve > v && ve[-1] == '\r')
				ve--;
			*len = (size_t)(ve - v);
			return v;
		}
		p = eol + 1;
	}
	return NULL;
}

/* access.suppress_path[]: successful GET/HEAD without body or query, on these paths only. */
static int suppressed(const struct pool_conf *pc, const struct request *r, const char *uri)
{
	if (pc->access_suppress_path.n == 0 || r->status < 200 || r->status > 299)
		return 0;
	const char *m = req_param(r, "REQUEST_METHOD");
	const char *q = req_param(r, "QUERY_STRING");
	const char *cl = req_param(r, "CONTENT_LENGTH");
	if (!m || (strcmp(m, "GET") && strcmp(m, "HEAD")) || (q && *q) || (cl && *cl && strcmp(cl, "0")))
		return 0;
	for (size_t i = 0; i < pc->access_suppress_path.n; i++)
		if (strcmp(uri, pc->access_suppress_path.items[i]) == 0)
			return 1;
	return 0;
}

/*
 * A failure that repeats on every try (a full disk under the access log, no
 * descriptor for accept4): the first is logged with its errno, the ones
 * after it are counted and summed up in one line every FAIL_SUMMARY_MS while
 * they go on, and when the call works again.
 */
#define FAIL_SUMMARY_MS 10000
struct failure_run {
	enum log_level level;
	const char *first;           /* the first failure's line, after "[pool P] child N: " */
	const char *counted;         /* "N more <counted> in the last Xs" */
	uint64_t first_ms;           /* the failure that was logged; 0 = none pending */
	uint64_t since_ms;           /* start of the period being counted */
	unsigned long more;          /* failures since, not logged */
	int err;
};

static void failure_summary(const struct worker *w, struct failure_run *f, int recovered)
{
	uint64_t now = conn_now_ms();
	if (f->more) {
		errno = f->err;
		log_sys(f->level, "[pool %s] child %d: %lu more %s in the last %.1fs", w->pool->conf->name,
			(int)getpid(), f->more, f->counted, (double)(now - f->since_ms) / 1000.0);
	}
	f->more = 0;
	f->since_ms = now;
	if (recovered)
		f->first_ms = 0;
}

static void failure_note(const struct worker *w, struct failure_run *f, int err)
{
	if (!f->first_ms) {
		errno = err;
		log_sys(f->level, "[pool %s] child %d: %s", w->pool->conf->name, (int)getpid(), f->first);
		f->first_ms = f->since_ms = conn_now_ms();
		f->more = 0;
		return;
	}
	f->more++;
	f->err = err;
	if (conn_now_ms() - f->since_ms >= FAIL_SUMMARY_MS)
		failure_summary(w, f, 0);
}

static void failure_over(const struct worker *w, struct failure_run *f)
{
	if (f->first_ms)
		failure_summary(w, f, 1);
}

static struct failure_run access_fail = {
	.level = LL_WARNING, .first = "access log write failed (further failures are counted)",
	.counted = "access log lines lost",
};

static void write_access_log(struct worker *w, struct request *r, const struct rusage *before,
			     const struct rusage *after_ru)
{
	const struct pool_conf *pc = w->pool->conf;
	const struct rusage after = *after_ru;
	char uri[SB_URI_LEN];
	sb_strcpy(uri, sizeof(uri), w->slot->uri);
	if (!r->status)
		r->status = 200;
	if (suppressed(pc, r, uri))
		return;
	struct access_entry e = {
		.pool = pc->name, .pid = (int)getpid(), .master_pid = (int)w->master_pid,
		/* php-fpm's %R is the connection's peer; on a unix socket, the web server's word */
		.remote_addr = w->peer_ip[0] ? w->peer_ip : req_param(r, "REMOTE_ADDR"), .remote_user = req_param(r, "REMOTE_USER"),
		.method = req_param(r, "REQUEST_METHOD"), .uri = uri,
		.query = req_param(r, "QUERY_STRING"), .script = r->script ? r->script : req_param(r, "SCRIPT_FILENAME"),
		.status = r->status, .content_length = w->slot->content_length,
		.duration_us = w->slot->duration_us,
		.memory = r->memory_peak,
		.param = entry_param, .header = entry_header, .ctx = r,
	};
	e.start.tv_sec = (time_t)(w->slot->accepted_us / 1000000u);
	e.start.tv_nsec = (long)(w->slot->accepted_us % 1000000u) * 1000L;
	clock_gettime(CLOCK_REALTIME, &e.now);
	e.cpu_user_us = TV_US(after.ru_utime) - TV_US(before->ru_utime);
	e.cpu_system_us = TV_US(after.ru_stime) - TV_US(before->ru_stime);
	size_t len;
	char *line = access_format(pc->access_format, &e, &len);
	if (!line)
		return;
	/* One write(): lines of concurrent workers never interleave (O_APPEND). */
	if (write(WORKER_FD_ACCESS, line, len) < 0)
		failure_note(w, &access_fail, errno);
	else
		failure_over(w, &access_fail);
	free(line);
}

static const struct handler *route(const struct worker *w, const struct request *r)
{
	const struct pool_conf *pc = w->pool->conf;
	const char *script = req_param(r, "SCRIPT_NAME");
	if (script) {
		if (pc->ping_path && strcmp(script, pc->ping_path) == 0)
			return &handler_ping;
		if (pc->pm_status_path && strcmp(script, pc->pm_status_path) == 0)
			return &handler_status;
	}
	return w->pool->handler;
}

/*
 * request.max_body_size, for every pool kind: a declared CONTENT_LENGTH
 * over it is answered 413 before the handler runs (the body is drained
 * after END_REQUEST, within bounds, as any unread body).  1 when refused.
 */
static int body_refused(struct worker *w, struct request *r)
{
	const struct pool_conf *pc = w->pool->conf;
	if (pc->request_max_body_size <= 0)
		return 0;
	const char *clen = req_param(r, "CONTENT_LENGTH");
	if (!clen || !*clen || strtoull(clen, NULL, 10) <= (unsigned long long)pc->request_max_body_size)
		return 0;
	log_warning("[pool %s] request body of %s bytes is over request.max_body_size (%lld)",
		    pc->name, clen, pc->request_max_body_size);
	resp_simple(r, 413, "413 Request Entity Too Large\n");
	r->body_too_large = 1;       /* the drain that follows reads it all */
	return 1;
}

/* Ends the request on the wire: stream terminators, END_REQUEST, flush. */
static int finish_request(struct request *r, uint32_t app_status)
{
	uint8_t rec[FCGI_HEADER_LEN + FCGI_END_REQUEST_LEN], pad;
	struct conn *c = r->conn;

	if (req_out_flush(r) < 0)
		return -1;
	fcgi_stream_header(rec, FCGI_STDOUT, r->id, 0, &pad);
	if (conn_write(c, rec, FCGI_HEADER_LEN) < 0)
		return -1;
	if (r->stderr_used) {
		fcgi_stream_header(rec, FCGI_STDERR, r->id, 0, &pad);
		if (conn_write(c, rec, FCGI_HEADER_LEN) < 0)
			return -1;
	}
	fcgi_end_request_encode(rec, r->id, app_status, FCGI_REQUEST_COMPLETE);
	if (conn_write(c, rec, FCGI_END_REQUEST_LEN) < 0)
		return -1;
	return conn_flush(c);
}

void req_cut(struct request *r)
{
	conn_flush(r->conn);       /* the open output record too */
	/*
	 * A close alone is an end of the answer to nginx unless it both buffers
	 * and keeps the connection (fastcgi_buffering off, the usual setting for
	 * streaming, ended the client's chunked body as if complete: curl and
	 * browsers took a cut page, a cut download, as whole).  A record of no
	 * FastCGI version is an upstream error to nginx in every setting: it
	 * closes the client's connection without the body's end.
	 */
	static const uint8_t broken[FCGI_HEADER_LEN] = { 0 };
	if (!r->conn->dead && conn_write(r->conn, broken, sizeof(broken)) == 0)
		conn_flush(r->conn);
	r->finished = 1;
	r->aborted = 1;
	r->conn->dead = 1;
}

int req_finish_early(struct request *r)
{
	if (r->finished)
		return 0;
	r->finished = 1;
	int rc = finish_request(r, 0);
	/*
	 * The client has its answer; what runs on is the script's own work
	 * (fastcgi_finish_request()).  ENDING tells the master so:
	 * request_terminate_timeout spares it unless
	 * request_terminate_timeout_track_finished says otherwise (php-fpm's rule).
	 */
	slot_stage(r->worker, SB_ENDING);
	/*
	 * Not a kept connection: close it now, as php-fpm does, so a web server
	 * that waits for the end of the connection (nginx without keep-alive)
	 * hands the answer on while the script runs on.
	 */
	if (!(r->fp->flags & FCGI_KEEP_CONN) && !r->conn->dead) {
		shutdown(r->conn->fd, SHUT_RDWR);
		r->conn->dead = 1;
	}
	return rc;
}

/*
 * catch_workers_output: the end of a request ends a line a script left
 * unfinished on stdout or stderr (php-fpm's behaviour and php-fpm's marker,
 * "\0fscf\0", which the master strips: children.c).
 */
static void flush_worker_output(const struct worker *w)
{
	if (!w->pool->conf->catch_workers_output)
		return;
	ssize_t n = write(STDOUT_FILENO, "\0fscf\0", 6);
	n = write(STDERR_FILENO, "\0fscf\0", 6);
	(void)n;
}

/*
 * The worker's loop, one step at a time: worker_next_request() returns
 * after each request the pool's handler served, so a handler may drive the
 * loop from inside its own program (php.worker: the application's loop
 * calls it).  State between steps: the connection in hand and where its
 * requests are.  One per process.
 */
static struct worker_loop {
	struct conn *c;
	int listen_ep, quit_fd;
	int opened;          /* listen_ep and quit_fd made (the first step) */
	int in_conn;         /* c holds a connection */
	unsigned nth;        /* requests read on it so far */
	uint64_t accept_ms;
	int last_round;      /* a quit: the connection already queued for it was taken */
	int done;            /* the worker must leave */
} loop = { .listen_ep = -1, .quit_fd = -1 };

/* The master waits for this before a reload retires the previous generation. */
static void slot_ready(struct worker *w)
{
	sb_write_begin(w->slot);
	w->slot->ready = 1;
	sb_write_end(w->slot);
}

/*
 * park: the connection is a kept one between two requests, which the web
 * server may use again at any moment: handed to the master (handoff_park)
 * unless it is dead or holds input already read.
 */
static void end_connection(struct worker *w, int park)
{
	struct conn *c = loop.c;
	if (c->send_timed_out)
		log_warning("[pool %s] child %d: request_send_timeout (%ds) expired: the client read "
			    "nothing; closing the connection", w->pool->conf->name, (int)getpid(),
			    w->pool->conf->request_send_timeout);
	if (park && c->fd >= 0 && !c->dead && !c->send_timed_out && c->in_pos == c->in_len)
		handoff_park(w, c->fd);
	conn_close(c);
	loop.in_conn = 0;
	kept_between = 0;
	slot_stage(w, SB_IDLE);
}

/*
 * One request of the connection in hand, from its params to its end on the
 * wire.  handle is the pool handler's stand-in (NULL: the handler itself).
 * Returns 1 when the connection may carry another request.  *pool_served:
 * the request went to the pool's handler (not ping, status or a refusal).
 */
static int serve_request(struct worker *w, worker_handle_fn handle, void *ctx, int *pool_served)
{
	struct conn *c = loop.c;
	struct rusage ru_before, ru_after;
	/*
	 * From the request's first byte, as php-fpm counts it: not from the
	 * previous request's end, which counted the work between two requests
	 * (the drain of an unread body, the wait) as this one's: %C of 9000 %
	 * for a ping.
	 */
	if (w->have_request_ru)
		ru_before = w->request_ru;
	else
		getrusage(RUSAGE_SELF, &ru_before);
	w->have_request_ru = 0;
	w->resp_head_len = 0;
	struct request req = {
		.conn = c, .worker = w, .fp = &c->parser, .id = c->parser.request_id,
	};
	memory_request_start(w);

	const struct handler *h = route(w, &req);
	int builtin = h == &handler_ping || h == &handler_status;
	slot_request_start(w, &c->parser, builtin);
	slot_stage(w, SB_RUNNING);
	int app_status = 0;
	*pool_served = 0;
	if (!body_refused(w, &req)) {
		*pool_served = h == w->pool->handler;
		app_status = *pool_served && handle ? handle(w, &req, ctx) : h->handle(w, &req);
	}
	/*
	 * Accounted and logged before END_REQUEST, as php-fpm does: a client
	 * (or a test) that reads the access log or the status right after its
	 * answer finds its request there.
	 */
	getrusage(RUSAGE_SELF, &ru_after);
	/*
	 * No script ran for a ping or a status page: no memory of its own (the
	 * worker's resident set, a php worker's 100 MiB, made every health check
	 * the pool's heaviest request in %M and "last request memory").
	 */
	if (!req.memory_peak && !builtin)
		req.memory_peak = memory_of_request(w, &ru_after);
	slot_request_end(w, &ru_before, &ru_after, req.memory_peak);
	w->requests++;
	if (w->access_log)
		write_access_log(w, &req, &ru_before, &ru_after);

	int keep = (c->parser.flags & FCGI_KEEP_CONN) && app_status >= 0 && !req.aborted;
	if (req.finished ? c->dead : finish_request(&req, app_status < 0 ? 1u : (uint32_t)app_status) < 0)
		keep = 0;
	/*
	 * A body nobody read (a refusal, a script that ignored it) is read and
	 * dropped after END_REQUEST, within bounds: the client has its answer,
	 * and a web server still sending the body gets no broken pipe.  On a
	 * connection that is not kept, the web server is told at once that
	 * nothing more comes (nginx ends such a response when the connection
	 * does, and stops sending the body once it has the answer: waiting for
	 * the rest held the answer back for the drain's whole limit), and what
	 * it still sends is read until it closes: a lingering close.
	 */
	if (!req.stdin_done && !req.aborted && !c->dead) {
		if (!keep && shutdown(c->fd, SHUT_WR) == 0)
			c->write_shut = 1;
		if (req_body_drain_bounded(&req, WORKER_DRAIN_MAX, WORKER_DRAIN_MS) < 0)
			keep = 0;
	}
	int over = memory_check(w);
	slot_stage(w, SB_IDLE);
	if (over)
		memory_tell_master();
	flush_worker_output(w);
	free(req.script);
	return keep;
}

static void note_peer(struct worker *w, const struct sockaddr_storage *peer)
{
	w->peer_ip[0] = '\0';
	if (peer->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)peer)->sin6_addr)) {
		/* an IPv4 client of a dual-stack socket is an IPv4 address, as php-fpm prints it */
		inet_ntop(AF_INET, &((const struct sockaddr_in6 *)peer)->sin6_addr.s6_addr[12],
			  w->peer_ip, sizeof(w->peer_ip));
	} else if (peer->ss_family == AF_INET || peer->ss_family == AF_INET6) {
		sockaddr_text((const struct sockaddr *)peer, w->peer_ip, sizeof(w->peer_ip));
	}
}

/* Out of descriptors, accept4() fails at every 100 ms back-off: counted (failure_note). */
static struct failure_run accept_fail = {
	.level = LL_ERROR, .first = "accept4() failed",
	.counted = "accept4() failures (one try per 100 ms)",
};

static int accept_one(struct worker *w, struct sockaddr_storage *peer)
{
	socklen_t len = sizeof(*peer);
	int fd = accept4(WORKER_FD_LISTEN, (struct sockaddr *)peer, &len, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE) {
			/* Out of descriptors: back off instead of spinning on the ready socket. */
			failure_note(w, &accept_fail, errno);
			usleep(100 * 1000);
		}
		return -1;
	}
	failure_over(w, &accept_fail);
	if (!allowed_clients_match(&w->pool->allowed, (struct sockaddr *)peer)) {
		char ip[64];
		sockaddr_text((struct sockaddr *)peer, ip, sizeof(ip));
		log_error("Connection disallowed: IP address '%s' has been dropped.", ip);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * epoll_pwait and ppoll return ready descriptors without delivering a
 * pending signal, so a busy worker would never see its SIGQUIT: ask.
 * Where the accept loop has no quit_fd (below), and between two requests
 * of a kept connection.
 */
static int quit_pending(void)
{
	sigset_t set;
	if (worker_quit)
		return 1;
	if (sigpending(&set) == 0 && sigismember(&set, SIGQUIT))
		worker_quit = 1;
	return worker_quit;
}

#define QUIT_FD_TAG 1u   /* epoll data of quit_fd; the listening socket's is 0 (conn.c) */

/*
 * A SIGQUIT that arrives while a request is served stays pending (it is
 * blocked then: worker_setup).  A signalfd for it in the epoll set the
 * worker waits on makes it one more ready descriptor, reported by the same
 * epoll_wait that reports the next connection: no system call per request
 * to ask (sigpending was one).  The signal is left pending, not read: a
 * later interruptible wait (ppoll in conn.c, SIGQUIT unblocked) still sees it.
 * -1 if it cannot be made: the loop then asks quit_pending().
 */
static int quit_fd_open(int listen_ep)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGQUIT);
	int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -1;
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = QUIT_FD_TAG };
	if (epoll_ctl(listen_ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * 1 when a connection may be waiting, 0 when the worker must leave.  Both
 * events of one wake-up are looked at: a quit seen with a connection still
 * leaves (the loop's exit serves that connection once, as before).
 * SIGQUIT stays blocked here: quit_fd is how it is seen.
 */
static int wait_connection(int listen_ep)
{
	for (;;) {
		if (worker_quit)
			return 0;
		struct epoll_event ev[2];
		int n = epoll_wait(listen_ep, ev, 2, -1);
		if (n < 0 && errno != EINTR)
			return 0;
		for (int i = 0; i < n; i++)
			if (ev[i].data.u32 == QUIT_FD_TAG)
				worker_quit = 1;
		if (n > 0)
			return !worker_quit;
	}
}

static unsigned pick_max_requests(const struct pool_conf *pc)
{
	if (pc->pm_max_requests <= 0)
		return 0;
	unsigned max = (unsigned)pc->pm_max_requests;
	/* Jitter spreads restarts so workers started together do not all recycle at once. */
	if (pc->pm_max_requests_jitter > 0) {
		unsigned seed = (unsigned)getpid() ^ (unsigned)sb_mono_us();
		max += (unsigned)rand_r(&seed) % ((unsigned)pc->pm_max_requests_jitter + 1);
	}
	return max;
}

/* SIGQUIT: finish the request in flight, then leave.  A php zygote installs it before PHP starts. */
void worker_signals_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigquit;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGQUIT, &sa, NULL);
}

static void worker_serve(struct worker *w) __attribute__((noreturn));
static void worker_run(struct worker *w) __attribute__((noreturn));

static int max_requests_reached(const struct worker *w)
{
	return w->max_requests && w->requests >= w->max_requests;
}

/*
 * A worker leaving at pm.max_requests may have been the one a waiting
 * connection woke (EPOLLEXCLUSIVE wakes one waiter) and have served
 * another instead, its last: nothing would wake an idle worker for that
 * one before the next arrival, and it waited there for seconds (nginx:
 * 504).  Its wait set closed (no more wake-ups for it), what waits on the
 * pool's socket or the handoff queue, one of each, goes to the master,
 * which offers it again: a new arrival, an idle worker woken.  Returns a
 * connection the master could not take (the caller serves it), or -1.
 */
static int pass_on_waiting(struct worker *w)
{
	if (loop.listen_ep < 0)
		return -1;
	close(loop.listen_ep);
	loop.listen_ep = -1;
	struct pollfd pf[2] = { { .fd = WORKER_FD_HANDOFF, .events = POLLIN },
				{ .fd = WORKER_FD_LISTEN, .events = POLLIN } };
	if (poll(pf, 2, 0) <= 0)
		return -1;
	int left = -1;
	for (int i = 0; i < 2; i++) {
		if (!(pf[i].revents & POLLIN))
			continue;
		struct sockaddr_storage peer;
		int fd = i == 0 ? handoff_take(&peer) : accept_one(w, &peer);
		if (fd < 0)
			continue;
		if (handoff_park(w, fd) == 0) {
			close(fd);          /* the master's copy is the connection now */
			continue;
		}
		if (left < 0) {
			note_peer(w, &peer);
			left = fd;
		} else {
			close(fd);          /* the master stops: as any connection at a stop */
		}
	}
	return left;
}

/*
 * The next connection: 1 when c holds one, 0 when the worker must leave.
 *
 * The master's death: PR_SET_PDEATHSIG sends this worker SIGQUIT when the
 * master exits (set after the last credential change, which would clear it,
 * and followed by a getppid() check for a master that died before:
 * worker_setup, worker_main_forked; the master is single-threaded, so the
 * thread that forked is the process).  With quit_fd that SIGQUIT ends the
 * wait like any graceful stop, so no getppid() per connection is needed: a
 * connection that was already queued when the master died may still be
 * served, which the old check allowed too (it ran before accept, with the
 * same race).  Without quit_fd (no epoll, no signalfd) the old checks stay.
 */
static int take_connection(struct worker *w)
{
	if (!loop.opened) {
		loop.opened = 1;
		if (w->pool->handler->ready_when_waiting)
			slot_ready(w);
		loop.listen_ep = listen_wait_open(WORKER_FD_LISTEN, WORKER_FD_HANDOFF);
		/*
		 * Not in a cgi pool: its workers keep their descriptors for the CGI
		 * requests (the script, three pipes; rlimit_files is checked against
		 * what a worker holds), and a fork and exec per request dwarf the two
		 * system calls quit_fd saves.
		 */
		loop.quit_fd = loop.listen_ep >= 0 && w->pool->conf->app_type != APP_CGI ?
			       quit_fd_open(loop.listen_ep) : -1;
	}
	if (taken_fd >= 0) {
		/* taken for a kept connection given up: served, even by a worker about to leave */
		int fd = taken_fd;
		taken_fd = -1;
		loop.accept_ms = conn_now_ms();
		note_peer(w, &taken_peer);
		conn_attach(loop.c, fd);
		return 1;
	}
	if (loop.last_round || max_requests_reached(w)) {
		int fd = pass_on_waiting(w);
		if (fd < 0)
			return 0;
		/* the master could not take it: served here, once, before leaving */
		loop.last_round = 1;
		loop.accept_ms = conn_now_ms();
		conn_attach(loop.c, fd);
		return 1;
	}
	if (loop.quit_fd < 0)
		quit_pending();
	while (!worker_quit) {
		if (loop.quit_fd >= 0) {
			if (!wait_connection(loop.listen_ep))
				continue;
		} else {
			if (!(loop.listen_ep >= 0 ? listen_wait(loop.listen_ep) :
			      wait_readable(WORKER_FD_LISTEN, -1)))
				continue;
			/* A worker whose master died serves no new connection (PDEATHSIG may race). */
			if (getppid() != w->master_pid)
				return 0;
		}
		struct sockaddr_storage peer;
		int fd = take_waiting(w, &peer);
		if (fd < 0)
			continue;
		loop.accept_ms = conn_now_ms();
		note_peer(w, &peer);
		conn_attach(loop.c, fd);
		return 1;
	}
	/*
	 * A connection whose wake-up reached this worker (EPOLLEXCLUSIVE wakes
	 * one) as it was told to quit would wait for the next arrival: serve
	 * what is already queued for it, once, before leaving.
	 */
	loop.last_round = 1;
	if (getppid() != w->master_pid)
		return 0;
	struct sockaddr_storage peer;
	int fd = take_waiting(w, &peer);
	if (fd < 0)
		return 0;
	loop.accept_ms = conn_now_ms();
	note_peer(w, &peer);
	conn_attach(loop.c, fd);
	return 1;
}

int worker_next_request(struct worker *w, worker_handle_fn handle, void *ctx)
{
	for (;;) {
		if (loop.done)
			return 0;
		if (!loop.in_conn) {
			if (!take_connection(w)) {
				loop.done = 1;
				return 0;
			}
			loop.in_conn = 1;
			loop.nth = 0;
		}
		park_kept = 0;
		if (read_request_head(w, loop.c, loop.nth, loop.accept_ms) <= 0) {
			end_connection(w, park_kept);
			continue;
		}
		int pool_served;
		int keep = serve_request(w, handle, ctx, &pool_served);
		loop.nth++;
		if (!keep || worker_quit || max_requests_reached(w)) {
			end_connection(w, keep);
		} else {
			fcgi_parser_reset(&loop.c->parser);
			kept_between = 1;
		}
		if (pool_served)
			return 1;
	}
}

/*
 * %M is the request's own peak resident set: clear_refs resets the
 * high-water mark as a request starts (a system call per request, so only
 * when the access log prints it; else the figure is the process's peak so
 * far).  Opened still root (when the master is), before worker_setup: a
 * worker that is not dumpable cannot open its own clear_refs once it has
 * dropped to the pool's user (its /proc files are root's then); the
 * descriptor only ever resets its own peak.  Not in a cgi pool: its
 * descriptors are counted (conf.h), and its requests' memory is their
 * scripts'.
 */
static void memory_open_early(struct worker *w)
{
	const struct pool *pool = w->pool;
	if (pool->conf->app_type != APP_CGI) {
		if (pool->access_fd >= 0 && access_format_uses(pool->conf->access_format, 'M'))
			w->clear_refs_fd = fd_above_layout(open("/proc/self/clear_refs",
								O_WRONLY | O_CLOEXEC));
		if (lowest_limit(pool->conf))
			w->statm_fd = fd_above_layout(open("/proc/self/statm", O_RDONLY | O_CLOEXEC));
	}
}

void worker_main(struct pool *pool, const struct fpmd_conf *global, unsigned slot,
		 pid_t master_pid)
{
	struct worker w = {
		.pool = pool, .global = global, .slot = &pool->sb.slots[slot],
		.slot_index = slot, .master_pid = master_pid,
		.statm_fd = -1, .clear_refs_fd = -1,
	};
	worker_signals_install();
	memory_open_early(&w);
	if (worker_setup(&w) < 0)
		_exit(70);
	worker_serve(&w);
}

/*
 * A worker of a php.zygote = shared pool, cloned from the shared zygote with
 * its descriptors laid out: PHP is started, the rest of a worker's setup is
 * its own (limits, chroot, environment, the pool's user), then the pool's PHP
 * settings, as php-fpm's children apply theirs after the fork.
 */
void worker_main_shared(struct pool *pool, const struct fpmd_conf *global, unsigned slot,
			pid_t master_pid)
{
	struct worker w = {
		.pool = pool, .global = global, .slot = &pool->sb.slots[slot],
		.slot_index = slot, .master_pid = master_pid,
		.statm_fd = -1, .clear_refs_fd = -1,
	};
	memory_open_early(&w);
	if (worker_setup(&w) < 0)
		_exit(70);
	if (pool->handler->pool_join && pool->handler->pool_join(pool) < 0) {
		log_error("[pool %s] child %d: %s failed to take the pool's settings", pool->conf->name,
			  (int)getpid(), pool->handler->name);
		_exit(70);
	}
	worker_serve(&w);
}

void worker_main_forked(struct pool *pool, const struct fpmd_conf *global, unsigned slot,
			pid_t master_pid)
{
	worker_run(worker_forked_begin(pool, global, slot, master_pid));
}

/*
 * Everything between a worker's setup and its first wait: the handler's
 * start, the connection buffers, "ready" in the scoreboard.  w must live as
 * long as the worker: static (worker_serve, worker_forked_begin), for the
 * frames of a handler's program keep pointers to it (php.worker).
 */
void worker_begin(struct worker *w)
{
	static struct conn c;
	struct pool *pool = w->pool;
	w->max_requests = pick_max_requests(pool->conf);
	w->access_log = pool->access_fd >= 0;
	memory_open(w);
	release_signal_install(w->master_pid);
	if (pool->handler->worker_init && pool->handler->worker_init(w) < 0) {
		log_error("[pool %s] child %d: %s handler failed to initialise", pool->conf->name,
			  (int)getpid(), pool->handler->name);
		_exit(70);
	}

	struct fcgi_limits limits;
	conf_fcgi_limits(pool->conf, &limits);
	limits.max_conns = (unsigned)pool->conf->pm_max_children;
	limits.max_reqs = (unsigned)pool->conf->pm_max_children;
	if (conn_init(&c, &limits) < 0)
		_exit(70);
	c.send_timeout_ms = worker_timeout_ms(pool->conf->request_send_timeout);
	if (c.send_timeout_ms < 0)
		c.send_timeout_ms = 0;
	loop.c = &c;

	slot_stage(w, SB_IDLE);
	if (!pool->handler->ready_when_waiting)
		slot_ready(w);
}

void worker_leave(struct worker *w, int status)
{
	if (loop.in_conn)
		end_connection(w, kept_between);
	slot_stage(w, SB_FINISHING);
	if (w->pool->handler->worker_exit)
		w->pool->handler->worker_exit(w);
	if (loop.c)
		conn_free(loop.c);
	_exit(status);
}

struct worker *worker_forked_begin(struct pool *pool, const struct fpmd_conf *global,
				   unsigned slot, pid_t master_pid)
{
	static struct worker w;
	w = (struct worker){
		.pool = pool, .global = global, .slot = &pool->sb.slots[slot],
		.slot_index = slot, .master_pid = master_pid,
		.statm_fd = -1, .clear_refs_fd = -1,
	};
	/* clone() cleared the death signal; the zygote did the rest of worker_setup(). */
	prctl(PR_SET_PDEATHSIG, SIGQUIT);
	if (getppid() != master_pid)
		_exit(0);
	proctitle_set("fpmd: pool %s", pool->conf->name);
	worker_begin(&w);
	return &w;
}

static void worker_run(struct worker *w)
{
	/*
	 * A handler whose program accepts on the pool socket itself (exec
	 * direct), or that runs the loop from its own (php.worker): the
	 * worker's loop opens its epoll watch on the socket only when asked
	 * for a request, so the first keeps none that every connection meant
	 * for the program would notify.
	 */
	if (w->pool->handler->serve)
		w->pool->handler->serve(w);
	else
		while (worker_next_request(w, NULL, NULL) > 0)
			;
	worker_leave(w, 0);
}

static void worker_serve(struct worker *wp)
{
	/* static: a worker runs once per process, and the frames below keep pointers to it */
	static struct worker w;
	w = *wp;
	worker_begin(&w);
	worker_run(&w);
}
