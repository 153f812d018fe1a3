/*
 * Blocking connection I/O for workers.  SIGQUIT is blocked while a request
 * runs and unblocked only inside ppoll(), so a graceful stop can never cut a
 * request short and can never be missed between two system calls.
 */
#include "worker/conn.h"
#include "shm/scoreboard.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "worker/worker.h"

int conn_init(struct conn *c, const struct fcgi_limits *limits)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->watch_listen_fd = -1;
	c->watch_handoff_fd = -1;
	c->in = malloc(CONN_IN_CAP);
	c->out = malloc(CONN_OUT_CAP);
	if (!c->in || !c->out) {
		conn_free(c);
		errno = ENOMEM;
		return -1;
	}
	fcgi_parser_init(&c->parser, limits);
	return 0;
}

void conn_free(struct conn *c)
{
	conn_close(c);
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
	fcgi_parser_free(&c->parser);
}

void conn_attach(struct conn *c, int fd)
{
	c->fd = fd;
	c->in_pos = c->in_len = 0;
	c->out_len = 0;
	c->rec_open = 0;
	c->dead = 0;
	c->write_shut = 0;
	c->send_timed_out = 0;
	/*
	 * Every write to the client is bounded (nginx's send_timeout): a client
	 * that never reads would otherwise hold the worker in writev() forever,
	 * SIGQUIT and the master's death included.  A blocking write that makes
	 * no progress for this long fails with EAGAIN.  One system call per
	 * connection, none per write.
	 */
	if (c->send_timeout_ms > 0) {
		struct timeval tv = { .tv_sec = c->send_timeout_ms / 1000,
				      .tv_usec = (c->send_timeout_ms % 1000) * 1000 };
		if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
			/* not a socket (a test's pipe): writes stay unbounded */
		}
	}
	/* Not reset(): a connection cut mid-record must leave nothing behind. */
	fcgi_parser_restart(&c->parser);
}

void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* The mask used while waiting: the worker's own, with SIGQUIT and the
 * master's release signal let through.
 * Computed once: the worker's mask does not change after setup. */
static const sigset_t *waiting_mask(void)
{
	static sigset_t mask;
	static int ready;
	if (!ready) {
		sigprocmask(SIG_SETMASK, NULL, &mask);
		sigdelset(&mask, SIGQUIT);
		sigdelset(&mask, WORKER_SIG_RELEASE);
		ready = 1;
	}
	return &mask;
}

int listen_wait_open(int listen_fd, int handoff_fd)
{
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return -1;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
		close(epfd);
		return -1;
	}
	/* a kept connection handed back with its next request is one more arrival */
	struct epoll_event hev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = LISTEN_WAIT_HANDOFF };
	if (handoff_fd >= 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, handoff_fd, &hev) < 0) {
		close(epfd);
		return -1;
	}
	return epfd;
}

int listen_wait(int epfd)
{
	for (;;) {
		if (worker_quit)
			return 0;
		struct epoll_event ev;
		int r = epoll_pwait(epfd, &ev, 1, -1, waiting_mask());
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return 0;
	}
}

/*
 * ppoll with the waiting mask (a quit or a release interrupts it): >0 some
 * descriptor is ready, 0 timed out, -1 a quit, a release or an error.
 */
static int wait_fds(struct pollfd *pfd, nfds_t n, int timeout_ms)
{
	struct timespec ts, *tsp = NULL;
	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
		tsp = &ts;
	}
	for (;;) {
		if (worker_quit)
			return -1;
		int r = ppoll(pfd, n, tsp, waiting_mask());
		if (r >= 0)
			return r;
		if (errno != EINTR || worker_quit || worker_release)
			return -1;
	}
}

int wait_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	return wait_fds(&pfd, 1, timeout_ms) > 0;
}

/* The scoreboard's clock, in ms: the one clock of the master and the workers. */
uint64_t conn_now_ms(void)
{
	return sb_mono_us() / 1000u;
}

/*
 * Waits for input: 1 readable, 0 timed out, -1 a quit (interruptible only)
 * or an error.  Not interruptible: SIGQUIT stays blocked, as a request that
 * has begun is owed its answer.
 */
static int wait_input(int fd, int interruptible, int timeout_ms, int listen_fd, int handoff_fd)
{
	if (interruptible && listen_fd >= 0) {
		/* the kept connection and the pool's socket (and handoff): 2 when only a connection waits */
		struct pollfd pfd[3] = { { .fd = fd, .events = POLLIN },
					 { .fd = listen_fd, .events = POLLIN },
					 { .fd = handoff_fd, .events = POLLIN } };
		int r = wait_fds(pfd, handoff_fd >= 0 ? 3 : 2, timeout_ms);
		/* -1: a quit or a release (the caller says which), or an error */
		return r > 0 ? (pfd[0].revents ? 1 : 2) : r;
	}
	if (interruptible) {
		uint64_t start = conn_now_ms();
		/* wait_readable returns 0 for both a quit and the time being up */
		if (wait_readable(fd, timeout_ms))
			return 1;
		if (worker_quit || worker_release || timeout_ms < 0)
			return -1;
		return conn_now_ms() - start >= (uint64_t)timeout_ms ? 0 : -1;
	}
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t end = timeout_ms >= 0 ? conn_now_ms() + (uint64_t)timeout_ms : 0;
	for (;;) {
		int left = -1;
		if (timeout_ms >= 0) {
			uint64_t now = conn_now_ms();
			left = now >= end ? 0 : (int)(end - now);
		}
		int r = poll(&pfd, 1, left);
		if (r > 0)
			return 1;
		if (r == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

enum conn_read_result conn_read(struct conn *c, int interruptible, int timeout_ms)
{
	c->in_pos = c->in_len = 0;
	if (interruptible && worker_quit)
		return CONN_READ_QUIT;
	for (;;) {
		/*
		 * Read first, wait only when nothing is there: a body arriving
		 * faster than it is consumed costs one system call per read.
		 */
		ssize_t n = recv(c->fd, c->in, CONN_IN_CAP, MSG_DONTWAIT);
		if (n > 0) {
			c->in_len = (size_t)n;
			return CONN_READ_OK;
		}
		if (n == 0)
			return CONN_READ_EOF;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return CONN_READ_ERR;
		int w = wait_input(c->fd, interruptible, timeout_ms, c->watch_listen_fd,
				   c->watch_handoff_fd);
		if (w == 0)
			return CONN_READ_TIMEOUT;
		if (w == 2)
			return CONN_READ_WAITING;
		if (w < 0)
			return worker_quit ? CONN_READ_QUIT : worker_release ? CONN_READ_RELEASE :
			       CONN_READ_ERR;
	}
}

static int write_full_iov(struct conn *c, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		ssize_t n = writev(c->fd, iov, iovcnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				c->send_timed_out = 1;
			c->dead = 1;
			return -1;
		}
		size_t left = (size_t)n;
		while (iovcnt > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

void conn_stream_close(struct conn *c)
{
	if (!c->rec_open)
		return;
	c->rec_open = 0;
	if (c->rec_len == 0) {
		c->out_len = c->rec_at;    /* an empty stream record would end the stream */
		return;
	}
	uint8_t pad;
	fcgi_stream_header(c->out + c->rec_at, c->rec_type, c->rec_id, c->rec_len, &pad);
	memset(c->out + c->out_len, 0, pad);
	c->out_len += pad;
}

int conn_stream_append(struct conn *c, uint8_t type, uint16_t id, const void *p, size_t n,
		       size_t max_content)
{
	if (c->dead)
		return -1;
	if (c->rec_open && (c->rec_type != type || c->rec_id != id || c->rec_len + n > max_content))
		conn_stream_close(c);
	if (!c->rec_open) {
		/* room for the whole record it may become: header, max_content, padding */
		if (FCGI_HEADER_LEN + max_content + 7 > CONN_OUT_CAP - c->out_len && conn_flush(c) < 0)
			return -1;
		c->rec_open = 1;
		c->rec_at = c->out_len;
		c->rec_len = 0;
		c->rec_type = type;
		c->rec_id = id;
		c->out_len += FCGI_HEADER_LEN;
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	c->rec_len += n;
	return 0;
}

int conn_flush(struct conn *c)
{
	conn_stream_close(c);
	if (c->out_len == 0)
		return c->dead ? -1 : 0;
	if (c->dead) {
		c->out_len = 0;
		return -1;
	}
	struct iovec iov = { .iov_base = c->out, .iov_len = c->out_len };
	c->out_len = 0;
	return write_full_iov(c, &iov, 1);
}

int conn_write(struct conn *c, const void *p, size_t n)
{
	if (c->dead)
		return -1;
	conn_stream_close(c);
	if (c->out_len + n > CONN_OUT_CAP && conn_flush(c) < 0)
		return -1;
	if (n > CONN_OUT_CAP) {
		struct iovec iov = { .iov_base = (void *)p, .iov_len = n };
		return write_full_iov(c, &iov, 1);
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	return 0;
}

int conn_write_record(struct conn *c, const uint8_t hdr[FCGI_HEADER_LEN], const void *data,
		      size_t len, uint8_t padding)
{
	if (c->dead)
		return -1;
	conn_stream_close(c);
	size_t need = FCGI_HEADER_LEN + len + padding;
	if (need <= CONN_OUT_CAP - c->out_len) {
		memcpy(c->out + c->out_len, hdr, FCGI_HEADER_LEN);
		memcpy(c->out + c->out_len + FCGI_HEADER_LEN, data, len);
		memset(c->out + c->out_len + FCGI_HEADER_LEN + len, 0, padding);
		c->out_len += need;
		return 0;
	}
	if (conn_flush(c) < 0)
		return -1;
	struct iovec iov[3] = {
		{ .iov_base = (void *)hdr, .iov_len = FCGI_HEADER_LEN },
		{ .iov_base = (void *)data, .iov_len = len },
		{ .iov_base = (void *)fcgi_zero_pad, .iov_len = padding },
	};
	return write_full_iov(c, iov, 3);
}
