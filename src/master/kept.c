/*
 * Kept connections held by the master between two requests: kept.h says why.
 */
#include "master/kept.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "ev/ev.h"
#include "log/log.h"
#include "master/master.h"
#include "master/pool.h"
#include "net/fd_pass.h"

/*
 * One held connection.  Owned by its pool's list (pool_master.held); its
 * descriptor and watch are closed with it.
 */
struct kept_conn {
	struct pool *pool;
	int fd;
	struct ev_watch *watch;
	uint64_t since_us;           /* held since, monotonic: request_keepalive_timeout */
	int waiting;                 /* its request came, the workers' queue was full: sent again */
	unsigned idle_wakeups;       /* readable with nothing queued (on_held) */
	struct kept_conn *next;
};

/*
 * Held at most per pool: a web server keeps open as many idle connections as
 * its cache holds (nginx: keepalive × its workers, per web server), so the
 * bound is generous; past it the connection held longest is closed (nginx
 * reuses its cached connections most recent first: the coldest is the one
 * least likely to be in use).
 */
#define KEPT_HELD_MAX 1024u

#define KEPT_TIMER_MS 1000u

int kept_pool_open(struct master *m, struct pool *p)
{
	int sv[2];
	/*
	 * After a reload, the previous master's pair: the previous generation's
	 * workers hand their connections in there while they finish.  Else a
	 * new one, of datagrams: one descriptor per message, none split or merged.
	 */
	if (reload_take_handoff(m, p->addr.text, sv) < 0) {
		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
			return -1;
		/* room for the system's queue (net.unix.max_dgram_qlen), not the default buffer's */
		int room = 4 << 20;
		for (int i = 0; i < 2; i++)
			if (setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &room, sizeof(room)) < 0)
				setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &room, sizeof(room));
	}
	p->handoff_fd = sv[0];
	p->handoff_worker_fd = sv[1];
	return 0;
}

/* A socket's lingering close (SO_LINGER, which whoever sent it may have set) turned off. */
static void no_linger(int fd)
{
	struct linger off = { 0, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &off, sizeof(off));
}

/*
 * The closer: a thread of the master that only closes what workers sent it.
 * A close may wait as long as its sender likes: a socket's SO_LINGER (set
 * again through a copy the sender kept), a file on FUSE or NFS (every close
 * runs its flush, and a FUSE daemon need never answer).  The master's loop
 * never calls close() on such a descriptor: it writes its number here.  A
 * closer that falls behind (its pipe full) is waited for: what it could not
 * take waits in closer_backlog, and no pool's handoff is read (the watches
 * are off, so the loop sleeps) until the backlog is in the pipe again, which
 * CLOSER_RETRY_MS looks at.
 */
static int closer_pipe[2] = { -1, -1 };
static pthread_t closer_thread;

static void *closer_main(void *arg)
{
	(void)arg;
	for (;;) {
		int fd;
		ssize_t n = read(closer_pipe[0], &fd, sizeof(fd));
		if (n == (ssize_t)sizeof(fd))
			close(fd);
		else if (!(n < 0 && errno == EINTR))
			return NULL;
	}
}

static int closer_start(void)
{
	if (closer_pipe[1] >= 0)
		return 0;
	if (pipe2(closer_pipe, O_CLOEXEC) < 0)
		return -1;
	fcntl(closer_pipe[1], F_SETFL, O_NONBLOCK);
	/* no signal for it: the master reads its own through signalfd */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&closer_thread, NULL, closer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		close(closer_pipe[0]);
		close(closer_pipe[1]);
		closer_pipe[0] = closer_pipe[1] = -1;
		return -1;
	}
	return 0;
}

/*
 * At the master's exit: the closer finishes what its pipe holds and ends
 * (its pipe's end closed), waited for at most CLOSER_STOP_MS: a close that
 * lingers is left to the exit (the process's end takes it with it).
 */
#define CLOSER_STOP_MS 1000

void kept_closer_stop(void)
{
	if (closer_pipe[1] < 0)
		return;
	close(closer_pipe[1]);
	closer_pipe[1] = -1;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += CLOSER_STOP_MS / 1000;
	if (pthread_timedjoin_np(closer_thread, NULL, &until) != 0) {
		pthread_detach(closer_thread);
		return;
	}
	close(closer_pipe[0]);
	closer_pipe[0] = -1;
}

/*
 * Descriptors the closer's pipe had no room for, in the order they came;
 * bounded by what one turn of on_handoff takes, since no handoff is read
 * while any wait here.
 */
static int *closer_backlog;
static size_t closer_backlog_n, closer_backlog_cap;
static struct ev_watch *closer_retry;
static struct master *closer_master;
#define CLOSER_RETRY_MS 20u

static void handoffs_watch(struct master *m, int on);
static void on_handoff(struct ev_loop *loop, int fd, uint32_t events, void *data);

/* A socket, by a socket operation (fstat() of a FUSE file asks its daemon). */
static int is_socket(int fd)
{
	int type;
	socklen_t len = sizeof(type);
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
}

/* The backlog into the closer's pipe, as far as it goes; 1 when all of it went. */
static int closer_flush(void)
{
	size_t i = 0;
	while (i < closer_backlog_n &&
	       write(closer_pipe[1], &closer_backlog[i], sizeof(int)) == (ssize_t)sizeof(int))
		i++;
	memmove(closer_backlog, closer_backlog + i, (closer_backlog_n - i) * sizeof(int));
	closer_backlog_n -= i;
	return closer_backlog_n == 0;
}

static void on_closer_retry(struct ev_loop *loop, struct ev_watch *t, void *data)
{
	(void)loop;
	(void)data;
	if (!closer_flush())
		return;
	ev_timer_disarm(t);
	if (closer_master)
		handoffs_watch(closer_master, 1);
}

/*
 * A descriptor a worker sent, let go: closed by the closer, never in the
 * master's loop.  When the closer's pipe is full it waits in the backlog,
 * and the handoffs are not read until the closer has caught up.
 */
static void discard(struct master *m, const struct pool *p, int fd)
{
	if (is_socket(fd))
		no_linger(fd);
	if (closer_start() < 0) {
		/* no thread for it: a leak, not a close that could freeze the loop */
		log_error("[pool %s] no closer thread: a descriptor a worker sent stays open",
			  p ? p->conf->name : "-");
		return;
	}
	if (closer_backlog_n == 0 && write(closer_pipe[1], &fd, sizeof(fd)) == (ssize_t)sizeof(fd))
		return;
	if (closer_backlog_n == closer_backlog_cap) {
		size_t cap = closer_backlog_cap ? closer_backlog_cap * 2 : 256;
		int *nb = realloc(closer_backlog, cap * sizeof(int));
		if (!nb) {
			log_error("[pool %s] out of memory: a descriptor a worker sent stays open",
				  p ? p->conf->name : "-");
			return;
		}
		closer_backlog = nb;
		closer_backlog_cap = cap;
	}
	closer_backlog[closer_backlog_n++] = fd;
	if (closer_backlog_n == 1) {
		log_warning("[pool %s] the master's closer is behind (descriptors a worker sent that "
			    "are slow to close): kept connections are taken again once it caught up",
			    p ? p->conf->name : "-");
		closer_master = m;
		handoffs_watch(m, 0);
		if (!closer_retry)
			closer_retry = ev_timer_new(m->loop, on_closer_retry, NULL);
		if (closer_retry && !ev_timer_armed(closer_retry))
			ev_timer_arm(closer_retry, CLOSER_RETRY_MS, CLOSER_RETRY_MS);
	}
}

static unsigned held_total;      /* every pool's, against the master's descriptor limit */

static void held_free(struct master *m, struct kept_conn *k)
{
	struct kept_conn **pp = &k->pool->own->held;
	while (*pp && *pp != k)
		pp = &(*pp)->next;
	if (*pp)
		*pp = k->next;
	k->pool->own->nheld--;
	held_total--;
	if (k->watch)
		ev_fd_del(m->loop, k->watch);
	/* its sender may still hold a copy, and set SO_LINGER through it since */
	discard(m, k->pool, k->fd);
	free(k);
}

/* The connection p has held longest (of those waiting to be sent again only, or all); NULL. */
static struct kept_conn *oldest_held(const struct pool *p, int waiting_only)
{
	struct kept_conn *oldest = NULL;
	for (struct kept_conn *k = p->own->held; k; k = k->next)
		if ((!waiting_only || k->waiting) && (!oldest || k->since_us < oldest->since_us))
			oldest = k;
	return oldest;
}

static void on_resend_timer(struct ev_loop *loop, struct ev_watch *t, void *data);
#define KEPT_RESEND_MS 5u

/*
 * The held connection is readable: its next request (handed back to the
 * workers), or the web server's close (dropped).  Nothing is read: the
 * worker that takes it reads the request whole.  What waits is asked of
 * the queue's length (SIOCINQ), not of a peek: a peek starts at the
 * socket's SO_PEEK_OFF, which whoever sent it may have set past its data,
 * and a watch that stays readable while every peek finds nothing would
 * spin the master's loop.
 */
#define KEPT_IDLE_WAKEUPS 64u

static void on_held(struct ev_loop *loop, int fd, uint32_t events, void *data)
{
	struct kept_conn *k = data;
	struct pool *p = k->pool;
	struct master *m = p->own->master;
	(void)loop;
	int queued = 0;
	if (ioctl(fd, FIONREAD, &queued) < 0 || (queued <= 0 && (events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)))) {
		held_free(m, k);         /* closed by the web server: nothing was asked */
		return;
	}
	if (queued <= 0) {
		/* readable with nothing queued, again and again: not a connection to keep */
		if (++k->idle_wakeups >= KEPT_IDLE_WAKEUPS)
			held_free(m, k);
		return;
	}
	if (m->state == MASTER_RUNNING && fd_pass_send(p->handoff_fd, fd, KEPT_MARK_SERVE) == 0) {
		held_free(m, k);         /* the workers' copy is the connection now */
		pm_mark(p, 1);           /* a connection waits: spawn, or free a parked worker */
		return;
	}
	if (m->state == MASTER_RUNNING && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
		/*
		 * Hundreds handed back that no worker has taken yet: it waits here,
		 * its request in it, and is sent again as the queue drains (closed,
		 * nginx would answer a POST 502).
		 */
		ev_fd_del(m->loop, k->watch);
		k->watch = NULL;
		k->waiting = 1;
		if (!p->own->resend_timer)
			p->own->resend_timer = ev_timer_new(m->loop, on_resend_timer, p);
		if (p->own->resend_timer && !ev_timer_armed(p->own->resend_timer))
			ev_timer_arm(p->own->resend_timer, KEPT_RESEND_MS, KEPT_RESEND_MS);
		pm_mark(p, 1);
		return;
	}
	log_warning("[pool %s] a kept connection's request could not be handed to a worker (%s); "
		    "closing it", p->conf->name, m->state == MASTER_RUNNING ? strerror(errno) :
		    "stopping");
	held_free(m, k);
}

/* The connections whose request waits for room in the workers' queue, oldest first. */
static void on_resend_timer(struct ev_loop *loop, struct ev_watch *t, void *data)
{
	struct pool *p = data;
	struct master *m = p->own->master;
	(void)loop;
	int left = 0;
	struct kept_conn *oldest;
	while ((oldest = oldest_held(p, 1)) != NULL) {
		if (m->state != MASTER_RUNNING ||
		    fd_pass_send(p->handoff_fd, oldest->fd, KEPT_MARK_SERVE) < 0) {
			left = m->state == MASTER_RUNNING;
			break;
		}
		held_free(m, oldest);
		pm_mark(p, 1);
	}
	if (!left)
		ev_timer_disarm(t);
}

/* request_keepalive_timeout for the connections the master holds. */
static void on_held_timer(struct ev_loop *loop, struct ev_watch *t, void *data)
{
	struct pool *p = data;
	struct master *m = p->own->master;
	(void)loop;
	uint64_t now = sb_mono_us();
	uint64_t limit = (uint64_t)p->conf->request_keepalive_timeout * 1000000u;
	struct kept_conn *k = p->own->held;
	while (k) {
		struct kept_conn *next = k->next;
		if (!k->waiting && now - k->since_us >= limit) {
			log_debug("[pool %s] kept connection idle for request_keepalive_timeout (%ds); "
				  "closing it", p->conf->name, p->conf->request_keepalive_timeout);
			held_free(m, k);
		}
		k = next;
	}
	if (!p->own->held)
		ev_timer_disarm(t);
}

/* A worker's descriptor worth holding: a connected stream socket like the pool's. */
static int conn_acceptable(const struct pool *p, int fd)
{
	int type = 0, domain = 0, listening = 1;
	socklen_t len = sizeof(int);
	/* socket operations only: a file's fstat() could wait on its FUSE daemon */
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
		return 0;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
		return 0;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || listening)
		return 0;
	/* a dual-stack listener accepts IPv4 clients as IPv6 sockets: same family */
	return domain == p->addr.family;
}

/*
 * All pools together hold at most a quarter of the master's descriptors: a
 * worker sending connections without end must not take the master's own.
 */
static unsigned held_total_max(void)
{
	static unsigned max;     /* the master's limit is set at its start, before any pool */
	if (!max) {
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
			max = 16384;
		else
			max = rl.rlim_cur / 4 > 16 ? (unsigned)(rl.rlim_cur / 4) : 16;
	}
	return max;
}

static void hold(struct master *m, struct pool *p, int fd)
{
	if (m->state != MASTER_RUNNING) {
		discard(m, p, fd);
		return;
	}
	no_linger(fd);
	/*
	 * Over a limit, the oldest of the pool holding most makes room: one
	 * pool's workers filling the master's share do not take it from the
	 * other pools.
	 */
	struct pool *from = NULL;
	if (p->own->nheld >= KEPT_HELD_MAX)
		from = p;
	else if (held_total >= held_total_max())
		for (struct pool *o = m->pools; o; o = o->next)
			if (!from || o->own->nheld > from->own->nheld)
				from = o;
	struct kept_conn *oldest = from ? oldest_held(from, 0) : NULL;
	if (oldest) {
		log_debug("[pool %s] %u kept connections held: the oldest is closed", from->conf->name,
			  from->own->nheld);
		held_free(m, oldest);
	}
	struct kept_conn *k = calloc(1, sizeof(*k));
	if (!k) {
		discard(m, p, fd);
		return;
	}
	k->pool = p;
	k->fd = fd;
	k->since_us = sb_mono_us();
	k->watch = ev_fd_add(m->loop, fd, EPOLLIN | EPOLLRDHUP, on_held, k);
	if (!k->watch) {
		discard(m, p, fd);
		free(k);
		return;
	}
	k->next = p->own->held;
	p->own->held = k;
	p->own->nheld++;
	held_total++;
	if (p->conf->request_keepalive_timeout > 0) {
		if (!p->own->held_timer)
			p->own->held_timer = ev_timer_new(m->loop, on_held_timer, p);
		if (p->own->held_timer && !ev_timer_armed(p->own->held_timer))
			ev_timer_arm(p->own->held_timer, KEPT_TIMER_MS, KEPT_TIMER_MS);
	}
}

/*
 * A pool whose workers sent what no worker of fpmd sends (not one kept
 * connection of the pool with its mark): its code is not fpmd's worker's
 * (a module, an extension, code injected into PHP), sending descriptors to
 * make the master work.  Its handoffs are not read for KEPT_PAUSE_MS: each
 * such message costs the master at most once per pause, whatever it holds.
 * Its own kept connections wait that long; other pools' are not touched.
 */
#define KEPT_PAUSE_MS 10000u

static void pool_handoff_watch(struct master *m, struct pool *p, int on)
{
	if (on && !p->own->handoff_watch && !p->own->handoff_paused && p->handoff_fd >= 0)
		p->own->handoff_watch = ev_fd_add(m->loop, p->handoff_fd, EPOLLIN, on_handoff, p);
	else if (!on && p->own->handoff_watch) {
		ev_fd_del(m->loop, p->own->handoff_watch);
		p->own->handoff_watch = NULL;
	}
}

/* Every pool's handoff read or not (the closer's backlog, above). */
static void handoffs_watch(struct master *m, int on)
{
	for (struct pool *p = m->pools; p; p = p->next)
		pool_handoff_watch(m, p, on && closer_backlog_n == 0);
}

static void on_pause_end(struct ev_loop *loop, struct ev_watch *t, void *data)
{
	struct pool *p = data;
	(void)loop;
	ev_timer_disarm(t);
	p->own->handoff_paused = 0;
	if (closer_backlog_n == 0)
		pool_handoff_watch(p->own->master, p, 1);
}

static void pool_handoff_pause(struct master *m, struct pool *p, const char *what)
{
	log_warning("[pool %s] a worker sent the master %s, not a kept connection: this pool's "
		    "kept connections are not taken for %u s", p->conf->name, what, KEPT_PAUSE_MS / 1000u);
	pool_handoff_watch(m, p, 0);
	p->own->handoff_paused = 1;
	if (!p->own->pause_timer)
		p->own->pause_timer = ev_timer_new(m->loop, on_pause_end, p);
	if (p->own->pause_timer && ev_timer_arm(p->own->pause_timer, KEPT_PAUSE_MS, 0) == 0)
		return;
	p->own->handoff_paused = 0;   /* no timer (out of memory): not paused for ever */
	if (closer_backlog_n == 0)
		pool_handoff_watch(m, p, 1);
}

/*
 * A message whose descriptor the kernel could not give the master
 * (MSG_CTRUNC): the master's shortage when it cannot open one now
 * (RLIMIT_NOFILE, the system's table), not the worker's doing.  The
 * connection is lost either way (the kernel closed it); said once a
 * minute at most.
 */
static int master_out_of_descriptors(struct pool *p)
{
	int probe = fcntl(p->handoff_fd, F_DUPFD_CLOEXEC, 0);
	if (probe >= 0) {
		close(probe);
		return 0;
	}
	if (errno != EMFILE && errno != ENFILE)
		return 0;
	static uint64_t said_us;
	uint64_t now = sb_mono_us();
	if (!said_us || now - said_us >= 60000000u) {
		said_us = now;
		log_sys(LL_ERROR, "[pool %s] the master is out of descriptors: a kept connection a "
			"worker handed over was lost (raise rlimit_files)", p->conf->name);
	}
	return 1;
}

/* Workers sent kept connections: each message one descriptor and its mark, or dropped whole. */
static void on_handoff(struct ev_loop *loop, int fd, uint32_t events, void *data)
{
	struct pool *p = data;
	struct master *m = p->own->master;
	(void)loop;
	(void)events;
	for (int i = 0; i < 64 && p->own->handoff_watch; i++) {
		char byte = 0;
		struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
		/*
		 * Room for the kernel's most descriptors per message (SCM_MAX_FD):
		 * any the buffer could not take the kernel would close itself, in
		 * the master, as they came.
		 */
		union { struct cmsghdr h; char buf[CMSG_SPACE(253 * sizeof(int))]; } u;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				     .msg_controllen = sizeof(u.buf) };
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		int first = -1, total = 0;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t j = 0; j < k; j++) {
				int one;
				memcpy(&one, CMSG_DATA(cm) + j * sizeof(int), sizeof(int));
				if (total++ == 0)
					first = one;
				else
					discard(m, p, one);
			}
		}
		if (total == 0 && (mh.msg_flags & MSG_CTRUNC) && n == 1 && byte == KEPT_MARK_SERVE &&
		    master_out_of_descriptors(p))
			continue;
		const char *bad = NULL;
		if (total != 1 || (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) || n != 1 ||
		    byte != KEPT_MARK_SERVE)
			bad = total > 1 ? "several descriptors in one message" : "a message of another shape";
		else if (m->state == MASTER_RUNNING && !conn_acceptable(p, first))
			bad = "a descriptor that is no connection of the pool";
		if (bad) {
			if (first >= 0)
				discard(m, p, first);
			pool_handoff_pause(m, p, bad);
			return;
		}
		hold(m, p, first);
	}
	/* more than a batch: the rest at the next turn of the loop (level-triggered) */
}

int kept_pool_start(struct master *m, struct pool *p)
{
	if (p->handoff_fd < 0)
		return 0;
	/*
	 * The closer from the start, not at the first descriptor to close: a
	 * worker leaving passes what waits for it to the master at any time,
	 * and the master's descriptors stay the same from start to stop.
	 */
	if (closer_start() < 0)
		log_sys(LL_WARNING, "[pool %s] no closer thread yet (pthread_create)", p->conf->name);
	pool_handoff_watch(m, p, closer_backlog_n == 0);
	return p->own->handoff_watch || closer_backlog_n ? 0 : -1;
}

void kept_pass_on_exec(struct master *m, struct pool *p)
{
	struct kept_conn *k = p->own->held;
	while (k) {
		struct kept_conn *next = k->next;
		/* sent on the workers' end, it waits in the master's end's queue */
		if (fd_pass_send(p->handoff_worker_fd, k->fd, KEPT_MARK_SERVE) == 0)
			held_free(m, k);
		k = next;
	}
}

/*
 * What a reload's exec would close in the master's own thread: execve()
 * closes every close-on-exec descriptor, and a descriptor a worker sent can
 * make its close wait as long as that worker likes (a socket whose SO_LINGER
 * it set again through its own copy; the master then hangs in the exec,
 * deaf even to SIGTERM).  The held connections the pair had no room for and
 * the closer's backlog go on to the next master instead, open, named in
 * FPMD_DISCARD: it gives them to its own closer (kept_adopt_discards).
 * cloexec 0 before the exec; 1 again when the exec failed.
 */
#define ENV_DISCARD "FPMD_DISCARD"

void kept_exec_discards(struct master *m, int cloexec)
{
	size_t n = closer_backlog_n;
	for (struct pool *p = m->pools; p; p = p->next)
		n += p->own->nheld;
	if (cloexec) {
		unsetenv(ENV_DISCARD);
	} else if (n == 0) {
		return;
	}
	char *list = cloexec ? NULL : malloc(n * 12 + 1);
	size_t o = 0;
	if (list)
		list[0] = '\0';
	for (struct pool *p = m->pools; p; p = p->next)
		for (struct kept_conn *k = p->own->held; k; k = k->next) {
			fcntl(k->fd, F_SETFD, cloexec ? FD_CLOEXEC : 0);
			if (list)
				o += (size_t)snprintf(list + o, 13, "%d,", k->fd);
		}
	for (size_t i = 0; i < closer_backlog_n; i++) {
		fcntl(closer_backlog[i], F_SETFD, cloexec ? FD_CLOEXEC : 0);
		if (list)
			o += (size_t)snprintf(list + o, 13, "%d,", closer_backlog[i]);
	}
	if (list && o)
		setenv(ENV_DISCARD, list, 1);
	free(list);
}

void kept_adopt_discards(struct master *m)
{
	const char *env = getenv(ENV_DISCARD);
	char *list = env ? strdup(env) : NULL;
	unsetenv(ENV_DISCARD);
	if (!list)
		return;
	char *save = NULL;
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int fd = atoi(t);
		/* the previous master's own words: still, only an open descriptor above stdio */
		if (fd > 2 && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0)
			discard(m, NULL, fd);
	}
	free(list);
}

void kept_stop(struct master *m, struct pool *p)
{
	while (p->own->held)
		held_free(m, p->own->held);
}

void kept_pool_close(struct master *m, struct pool *p)
{
	kept_stop(m, p);
	if (p->own->held_timer)
		ev_timer_free(m->loop, p->own->held_timer);
	p->own->held_timer = NULL;
	if (p->own->resend_timer)
		ev_timer_free(m->loop, p->own->resend_timer);
	p->own->resend_timer = NULL;
	if (p->own->pause_timer)
		ev_timer_free(m->loop, p->own->pause_timer);
	p->own->pause_timer = NULL;
	if (p->own->handoff_watch)
		ev_fd_del(m->loop, p->own->handoff_watch);
	p->own->handoff_watch = NULL;
	if (p->handoff_fd >= 0 && !reload_give_back(m, p->handoff_fd)) {
		close(p->handoff_fd);
		if (p->handoff_worker_fd >= 0)
			close(p->handoff_worker_fd);
	}
	p->handoff_fd = p->handoff_worker_fd = -1;
}

unsigned kept_waiting(const struct pool *p)
{
	if (p->handoff_worker_fd < 0)
		return 0;
	struct pollfd pfd = { .fd = p->handoff_worker_fd, .events = POLLIN };
	return poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN) ? 1 : 0;
}
