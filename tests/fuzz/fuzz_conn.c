/*
 * libFuzzer harness for a worker's connection state machine: the real
 * worker loop (worker.c: worker_next_request(), included below so its static functions are
 * reachable without a seam in src/), conn.c, request.c, the FastCGI codec
 * and the real ping handler, on one simulated client connection.
 *
 * The input is the client's byte stream, optionally followed by CTL_MARK and
 * control bytes.  The control bytes decide, one per system call, how the
 * peer behaves: how many bytes a read() returns (all, 1..32, 64..2048, one),
 * EINTR, EAGAIN, ECONNRESET, an early EOF; whether a write is taken whole,
 * short, interrupted, or fails with EPIPE/ECONNRESET; how long a poll waits
 * on a fake clock (a wait longer than the timeout times out, and the clock
 * moves by the timeout), or whether a SIGQUIT arrives.  They also drive a
 * stub handler (read the body piecewise, write small/large STDOUT, STDERR,
 * finish early, fail).  The first control byte sets the worker up
 * (max_requests, access log, an extra header line, the header/keep-alive and
 * body read timeouts: off, 1, 5 or 60 s of fake time).  Without control bytes every read returns what is
 * left and every write is taken whole: a captured nginx request replays as
 * nginx sent it.
 *
 * System calls are interposed with ld's --wrap (see the Makefile); only the
 * simulated descriptor FAKE_FD (and the access log's fd 5) is faked, the
 * fuzzer's own I/O goes to the real calls.
 *
 * Checked on what the worker writes: it parses as FastCGI records (version
 * 1, known server-to-client type, content + padding a multiple of 8, zero
 * padding, END_REQUEST and UNKNOWN_TYPE of length 8); every END_REQUEST
 * answers a BEGIN_REQUEST already delivered and not yet answered (none for a
 * request never begun, none twice); STDOUT/STDERR only for a request begun
 * and not yet ended, none after its stream's empty record; management
 * replies on id 0; nothing written after the peer is gone (a write failed
 * with EPIPE/ECONNRESET, a read with ECONNRESET, or the worker shut the
 * socket down) and no call at all on the descriptor once closed; a request
 * handed to a handler while the peer stayed intact (and no body timeout
 * cut it) gets exactly one
 * END_REQUEST; no STDOUT carries bytes the handler wrote for another request
 * (the stub's body bytes are tagged with the request's serial number); the
 * connection is closed exactly once; the loop ends within a bound of system
 * calls and fake time (no busy loop on EAGAIN/EINTR).
 * Access log lines (fd 5) are one line each.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* The worker's code itself: its loop state and finish_request() are static. */
#include "../../src/worker/worker.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAKE_FD 777
#define CTL_MARK "\0FPMDCTL"
#define CTL_MARK_LEN 8
#define MAX_OUT (4u << 20)

static struct conn conn;

static int trace;     /* FUZZ_CONN_TRACE set: each fake call on stderr */
#define TRACE(...) do { if (trace) fprintf(stderr, __VA_ARGS__); } while (0)

static void fail(const char *why)
{
	fprintf(stderr, "fuzz_conn: invariant broken: %s\n", why);
	abort();
}

/* --- the run's state --------------------------------------------------- */

static struct {
	int active;                    /* the wrappers fake only during a run */
	const uint8_t *in;             /* client bytes */
	size_t in_len, in_pos;         /* in_pos: delivered so far */
	const uint8_t *ctl;
	size_t ctl_len, ctl_pos;
	int peer_eof;                  /* the client half-closed early: reads give 0 */
	int peer_gone;                 /* reset / broken pipe: nothing may be written */
	int shut_wr;                   /* the worker shut its side down */
	int closed;                    /* close(FAKE_FD) seen */
	unsigned long calls;           /* fake system calls, for the loop bound */
	uint64_t clock_ms;             /* fake CLOCK_MONOTONIC */

	/* client-side walk of the delivered bytes: BEGIN_REQUESTs per id */
	size_t walk_pos;
	int walk_counted;              /* the BEGIN_REQUEST at walk_pos is counted */
	uint32_t begins[65536];
	uint32_t ends[65536];
	uint8_t stream_ended[65536];   /* the empty STDOUT went out for the open request */

	/* the output stream */
	uint8_t *out;
	size_t out_len, out_parsed;

	/* handler bookkeeping */
	int handled;                   /* a request went to the handler */
	uint16_t handled_id;
	int handled_end;               /* its END_REQUEST went out */
	int handled_timed_out;         /* request_body_timeout cut it: no answer is owed */
	unsigned eofs, eofs_before;    /* reads that returned 0 */
	size_t handler_out;            /* bytes the stub wrote this run */
	unsigned serial;               /* requests dispatched so far: tags the stub's body bytes */
} S;

static uint8_t ctl_byte(void)
{
	return S.ctl_pos < S.ctl_len ? S.ctl[S.ctl_pos++] : 0;
}

static void count_call(void)
{
	/* every fake call consumes input, control or time: a loop that does not is a bug */
	if (++S.calls > 100000u + 8u * (S.in_len + S.ctl_len))
		fail("the connection loop does not terminate (system call bound)");
}

static void touch_fd(void)
{
	if (S.closed)
		fail("system call on the connection after close()");
	count_call();
}

/* Walks the delivered client bytes as records, counting complete BEGIN_REQUESTs. */
static void walk_client(void)
{
	for (;;) {
		size_t left = S.in_pos - S.walk_pos;
		if (left < FCGI_HEADER_LEN)
			return;
		struct fcgi_header hd;
		fcgi_header_decode(S.in + S.walk_pos, &hd);
		size_t clen = hd.content_length, pad = hd.padding_length;
		/* a BEGIN_REQUEST counts once its body is in (that is when it can be answered) */
		if (hd.type == FCGI_BEGIN_REQUEST) {
			if (left < FCGI_HEADER_LEN + clen)
				return;
		} else if (left < FCGI_HEADER_LEN + clen + pad) {
			return;
		}
		if (hd.type == FCGI_BEGIN_REQUEST && !S.walk_counted) {
			S.begins[hd.request_id]++;
			S.stream_ended[hd.request_id] = 0;
			S.walk_counted = 1;
		}
		if (left < FCGI_HEADER_LEN + clen + pad)
			return;     /* counted; padding still to come */
		S.walk_pos += FCGI_HEADER_LEN + clen + pad;
		S.walk_counted = 0;
	}
}

static uint8_t tag(unsigned serial)
{
	return (uint8_t)(0x80 | (serial & 0x7f));
}

/* Checks the complete records of the output written so far. */
static void parse_output(void)
{
	for (;;) {
		size_t left = S.out_len - S.out_parsed;
		if (left < FCGI_HEADER_LEN)
			return;
		const uint8_t *h = S.out + S.out_parsed;
		struct fcgi_header hd;
		fcgi_header_decode(h, &hd);
		size_t clen = hd.content_length, pad = hd.padding_length;
		uint16_t id = hd.request_id;
		uint8_t type = hd.type;
		if (left < FCGI_HEADER_LEN + clen + pad)
			return;
		if (hd.version != FCGI_VERSION_1)
			fail("output record version is not 1");
		if ((clen + pad) % 8 != 0 || pad > 7)
			fail("output record not padded to a multiple of 8");
		for (size_t i = 0; i < pad; i++)
			if (h[FCGI_HEADER_LEN + clen + i] != 0)
				fail("output padding is not zero");
		switch (type) {
		case FCGI_STDOUT:
		case FCGI_STDERR:
			if (id == 0 || S.begins[id] <= S.ends[id])
				fail("stream record for a request not begun or already ended");
			if (type == FCGI_STDOUT && S.stream_ended[id])
				fail("STDOUT after its stream's empty record");
			if (type == FCGI_STDOUT && clen == 0)
				S.stream_ended[id] = 1;
			/* the stub's body bytes carry its request's tag (headers are ASCII) */
			for (size_t i = 0; type == FCGI_STDOUT && i < clen; i++)
				if (h[FCGI_HEADER_LEN + i] >= 0x80 && h[FCGI_HEADER_LEN + i] != tag(S.serial))
					fail("STDOUT carries another request's output");
			break;
		case FCGI_END_REQUEST:
			if (clen != 8)
				fail("END_REQUEST content length is not 8");
			if (id == 0 || S.begins[id] <= S.ends[id])
				fail("END_REQUEST for a request never begun, or twice");
			S.ends[id]++;
			S.stream_ended[id] = 0;
			if (S.handled && id == S.handled_id)
				S.handled_end = 1;
			break;
		case FCGI_GET_VALUES_RESULT:
			if (id != 0)
				fail("GET_VALUES_RESULT not on the management id");
			break;
		case FCGI_UNKNOWN_TYPE:
			if (id != 0 || clen != 8)
				fail("UNKNOWN_TYPE malformed");
			break;
		default:
			fail("output record of a type a server never sends");
		}
		S.out_parsed += FCGI_HEADER_LEN + clen + pad;
	}
}

static void take_output(const void *p, size_t n)
{
	if (S.out_len + n > MAX_OUT)
		fail("unbounded output");
	memcpy(S.out + S.out_len, p, n);
	S.out_len += n;
	parse_output();
}

/* --- interposed system calls (ld --wrap) ------------------------------- */

ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __real_writev(int fd, const struct iovec *iov, int cnt);
int __real_close(int fd);
int __real_shutdown(int fd, int how);
int __real_poll(struct pollfd *fds, nfds_t n, int timeout);
int __real_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask);
int __real_clock_gettime(clockid_t id, struct timespec *ts);
ssize_t __wrap_read(int fd, void *buf, size_t n);
ssize_t __real_recv(int fd, void *buf, size_t n, int flags);
ssize_t __wrap_recv(int fd, void *buf, size_t n, int flags);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
ssize_t __wrap_writev(int fd, const struct iovec *iov, int cnt);
int __wrap_close(int fd);
int __wrap_shutdown(int fd, int how);
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout);
int __wrap_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask);
int __wrap_clock_gettime(clockid_t id, struct timespec *ts);

/*
 * The client's next bytes.  conn.c reads with recv(MSG_DONTWAIT) and waits
 * (poll/ppoll, fake_wait below) only on EAGAIN: an EAGAIN op is "nothing yet".
 */
static ssize_t fake_read(void *buf, size_t n)
{
	touch_fd();
	if (S.peer_gone) {
		errno = ECONNRESET;
		return -1;
	}
	size_t avail = S.in_len - S.in_pos;
	if (avail == 0 || S.peer_eof) {
		S.eofs++;
		return 0;
	}
	uint8_t op = ctl_byte();
	size_t want = avail;
	switch (op >> 5) {
	case 0: break;                                   /* what is there */
	case 1: want = (size_t)(op & 31) + 1; break;     /* a few bytes */
	case 2: want = ((size_t)(op & 31) + 1) * 64; break;
	case 3: want = 1; break;
	case 4: errno = EINTR; return -1;
	case 5: errno = EAGAIN; return -1;
	case 6:
		S.peer_gone = 1;
		errno = ECONNRESET;
		return -1;
	default:
		S.peer_eof = 1;                           /* the client stops sending */
		S.eofs++;
		return 0;
	}
	if (want > avail)
		want = avail;
	if (want > n)
		want = n;
	TRACE("read %zu of %zu (t=%llu ms)\n", want, avail, (unsigned long long)S.clock_ms);
	memcpy(buf, S.in + S.in_pos, want);
	S.in_pos += want;
	walk_client();
	return (ssize_t)want;
}

ssize_t __wrap_read(int fd, void *buf, size_t n)
{
	if (!S.active || fd != FAKE_FD)
		return __real_read(fd, buf, n);
	return fake_read(buf, n);
}

ssize_t __wrap_recv(int fd, void *buf, size_t n, int flags)
{
	if (!S.active || fd != FAKE_FD)
		return __real_recv(fd, buf, n, flags);
	return fake_read(buf, n);
}

/* How much of an n-byte write the peer takes now; -1 with errno for a failure. */
static ssize_t write_verdict(size_t n)
{
	if (S.peer_gone)
		fail("write after the peer is gone (EPIPE/ECONNRESET seen)");
	if (S.shut_wr)
		fail("write after the worker shut the connection down");
	uint8_t op = ctl_byte();
	TRACE("write %zu: op 0x%02x\n", n, op);
	switch (op >> 5) {
	case 4:
		return n > 1 ? (ssize_t)(1 + (op & 31) % (n - 1)) : (ssize_t)n;   /* short */
	case 5:
		errno = EINTR;
		return -1;
	case 6:
		S.peer_gone = 1;
		errno = EPIPE;
		return -1;
	case 7:
		S.peer_gone = 1;
		errno = ECONNRESET;
		return -1;
	default:
		return (ssize_t)n;
	}
}

static void access_line(const void *buf, size_t n)
{
	const char *p = buf;
	if (n == 0 || p[n - 1] != '\n' || memchr(p, '\n', n - 1))
		fail("access log write is not exactly one line");
}

ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	if (S.active && fd == WORKER_FD_ACCESS) {
		access_line(buf, n);
		return (ssize_t)n;
	}
	if (!S.active || fd != FAKE_FD)
		return __real_write(fd, buf, n);
	touch_fd();
	if (n == 0)
		return 0;
	ssize_t k = write_verdict(n);
	if (k > 0)
		take_output(buf, (size_t)k);
	return k;
}

ssize_t __wrap_writev(int fd, const struct iovec *iov, int cnt)
{
	if (!S.active || fd != FAKE_FD)
		return __real_writev(fd, iov, cnt);
	touch_fd();
	size_t total = 0;
	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	if (total == 0)
		return 0;
	ssize_t k = write_verdict(total);
	if (k <= 0)
		return k;
	size_t left = (size_t)k;
	for (int i = 0; i < cnt && left; i++) {
		size_t m = iov[i].iov_len < left ? iov[i].iov_len : left;
		take_output(iov[i].iov_base, m);
		left -= m;
	}
	return k;
}

int __wrap_close(int fd)
{
	if (!S.active || fd != FAKE_FD)
		return __real_close(fd);
	if (S.closed)
		fail("the connection closed twice");
	S.closed = 1;
	return 0;
}

int __wrap_shutdown(int fd, int how)
{
	if (!S.active || fd != FAKE_FD)
		return __real_shutdown(fd, how);
	touch_fd();
	if (how == SHUT_WR || how == SHUT_RDWR)
		S.shut_wr = 1;
	return 0;
}

/*
 * A wait on the connection: the peer's next move comes after a delay from
 * the control bytes (0..25.5 s of fake time).  Past the timeout the wait
 * times out and the clock moves by the timeout.  0xff is a SIGQUIT.
 */
static int fake_wait(struct pollfd *pfd, long timeout_ms)
{
	touch_fd();
	pfd->revents = 0;
	/* the peer closed (or sent everything): readable at once, read() tells */
	if (S.in_pos == S.in_len || S.peer_eof || S.peer_gone) {
		pfd->revents = POLLIN | (S.peer_gone ? POLLERR : 0);
		return 1;
	}
	uint8_t op = ctl_byte();
	TRACE("wait (timeout %ld ms): op 0x%02x (t=%llu ms)\n", timeout_ms, op, (unsigned long long)S.clock_ms);
	if (op == 0xff) {
		worker_quit = 1;
		errno = EINTR;
		return -1;
	}
	uint64_t delay = (uint64_t)op * 100u;
	if (timeout_ms >= 0 && delay > (uint64_t)timeout_ms) {
		S.clock_ms += (uint64_t)timeout_ms;
		return 0;
	}
	S.clock_ms += delay;
	pfd->revents = POLLIN;
	return 1;
}

int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout)
{
	if (!S.active || n != 1 || fds[0].fd != FAKE_FD)
		return __real_poll(fds, n, timeout);
	return fake_wait(&fds[0], timeout);
}

int __wrap_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
	if (!S.active || n != 1 || fds[0].fd != FAKE_FD)
		return __real_ppoll(fds, n, ts, mask);
	long t = ts ? (long)ts->tv_sec * 1000L + ts->tv_nsec / 1000000L : -1;
	return fake_wait(&fds[0], t);
}

int __wrap_clock_gettime(clockid_t id, struct timespec *ts)
{
	if (!S.active)
		return __real_clock_gettime(id, ts);
	/* the wall clock is the fake one plus a fixed epoch: 2026-01-01 */
	uint64_t ms = S.clock_ms + (id == CLOCK_REALTIME ? 1767225600000ull : 1000000ull);
	ts->tv_sec = (time_t)(ms / 1000u);
	ts->tv_nsec = (long)(ms % 1000u) * 1000000L;
	return 0;
}

/* --- what worker.c needs from the rest of the daemon -------------------- */

void log_msg(enum log_level l, const char *fmt, ...)
{
	(void)l;
	(void)fmt;
}

void log_sys(enum log_level l, const char *fmt, ...)
{
	(void)l;
	(void)fmt;
}

int log_burst_pass(struct log_burst *b, char *note, size_t cap)
{
	(void)b;
	if (cap)
		note[0] = '\0';
	return 1;
}

void proctitle_set(const char *fmt, ...)
{
	(void)fmt;
}

int worker_setup(struct worker *w)
{
	(void)w;
	return -1;
}

/* The status handler needs a live pool socket; the harness routes nothing to it. */
static int no_status(struct worker *w, struct request *r)
{
	(void)w;
	(void)r;
	abort();
}
const struct handler handler_status = { .name = "status", .handle = no_status };

int ping_ready(const struct pool *pool, int listen_fd, const struct sb_header *own_hdr,
	       const char *query, char *why, size_t cap)
{
	(void)pool;
	(void)own_hdr;
	(void)listen_fd;
	(void)query;
	snprintf(why, cap, "ready\n");
	return 1;
}

/* --- the stub handler: what a pool's code may do with a request --------- */

static uint8_t pattern[200000];

static int stub_write(struct request *r, size_t n)
{
	if (S.handler_out + n > (1u << 20))
		n = 1;
	S.handler_out += n;
	memset(pattern, tag(S.serial), n);
	return resp_write(r, pattern, n);
}

/*
 * The request handed to the handler last is over: with the peer intact (no
 * reset, no broken pipe, no EOF while it ran, no protocol error) it got
 * exactly one END_REQUEST.
 */
static void check_handled(void)
{
	if (!S.handled)
		return;
	S.handled = 0;
	/* more than one is caught as an END_REQUEST without its BEGIN_REQUEST */
	int intact = !S.peer_gone && S.eofs == S.eofs_before && conn.parser.error == FCGI_OK &&
		     !S.handled_timed_out;
	if (intact && !S.handled_end)
		fail("a dispatched request got no END_REQUEST although the peer stayed");
}

static int stub_handle(struct worker *w, struct request *r)
{
	(void)w;
	char buf[4096];
	int app_status = 0;
	/* the harness knows which request the worker dispatched */
	check_handled();
	S.serial++;
	S.handled = 1;
	S.handled_id = r->id;
	S.handled_end = 0;
	S.handled_timed_out = 0;
	S.eofs_before = S.eofs;
	for (int step = 0; step < 24; step++) {
		uint8_t op = ctl_byte();
		TRACE("handler step: op 0x%02x\n", op);
		/*
		 * The handler may write after req_finish_early(): request.c drops that
		 * output (it once went out after END_REQUEST, or under the next
		 * request's id: tests/fuzz/findings/fuzz_conn-*, found by this harness).
		 */
		switch (op % 16) {
		case 0:
			goto out;
		case 1:
			(void)resp_headers(r, 200, "text/plain", "X-Fuzz: 1\r\n");
			break;
		case 2:
			(void)stub_write(r, (size_t)(op >> 4) + 1);
			break;
		case 3:
			(void)stub_write(r, ((size_t)ctl_byte() + 1) * 64);
			break;
		case 4:
			/* more than the connection's buffer: conn_write_record's writev path */
			(void)stub_write(r, 65536 + (size_t)ctl_byte() * 512);
			break;
		case 5:
			(void)resp_stderr(r, "PHP Warning:  x\n", 16);
			break;
		case 6:
			(void)req_body_read(r, buf, (size_t)ctl_byte() % sizeof(buf) + 1);
			break;
		case 7:
			(void)req_body_drain(r);
			break;
		case 8:
			(void)req_body_next(r, op & 16);
			if (r->pending_len)
				r->pending_len = 0;
			break;
		case 9:
			(void)req_finish_early(r);
			break;
		case 10:
			(void)resp_flush(r);
			break;
		case 11:
			app_status = -1;
			goto out;
		case 12:
			app_status = ctl_byte();
			goto out;
		case 13:
			(void)resp_simple(r, 404, "not here\n");
			break;
		case 14:
			/* a multiplexing handler's check before its poll (cgi.c) */
			(void)req_body_gap(r, op & 16);
			break;
		default:
			(void)req_body_read(r, buf, sizeof(buf));
			break;
		}
	}
out:
	S.handled_timed_out = r->body_timed_out;
	return app_status;
}

static const struct handler stub_handler = { .name = "fuzz", .handle = stub_handle };

/* --- the run ------------------------------------------------------------ */

static struct pool_conf pc;
static struct pool pool;
static struct sb_header sb_hdr;
static struct sb_slot *slots;

static void setup_once(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	trace = getenv("FUZZ_CONN_TRACE") != NULL;
	pc.name = (char *)"fuzz";
	pc.ping_path = (char *)"/ping";
	pc.pm_max_children = 5;
	pc.access_format = (char *)"%R - %u %t \"%m %r%Q%q\" %s %f %{mili}d %{kilo}M %C%% "
		"%{REQUEST_URI}e %{Content-Type}o %{X-Fuzz}o";
	slots = aligned_alloc(64, sizeof(*slots));
	if (!slots)
		abort();
	memset(slots, 0, sizeof(*slots));
	pool.conf = &pc;
	pool.handler = &stub_handler;
	pool.sb.hdr = &sb_hdr;
	pool.sb.slots = slots;
	pool.sb.nslots = 1;
	slots[0].pid = 1;
	pool.access_fd = -1;
	pool.listen_fd = -1;
	struct fcgi_limits limits;
	fcgi_limits_default(&limits);
	limits.max_conns = limits.max_reqs = 5;
	if (conn_init(&conn, &limits) < 0)
		abort();
	S.out = malloc(MAX_OUT);
	if (!S.out)
		abort();
}

static struct worker wk;

/*
 * One connection through the worker's own loop step (worker_next_request):
 * the connection is handed to it as if just accepted, and last_round keeps
 * it from waiting for another once this one ends.
 */
static void serve_one_connection(struct worker *w, struct conn *c, uint64_t accept_ms)
{
	loop = (struct worker_loop){ .c = c, .listen_ep = -1, .quit_fd = -1, .opened = 1,
				     .in_conn = 1, .accept_ms = accept_ms, .last_round = 1 };
	while (worker_next_request(w, NULL, NULL) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup_once();
	uint8_t *out = S.out;
	memset(&S, 0, sizeof(S));
	S.out = out;
	S.in = data;
	S.in_len = size;
	const uint8_t *mark = memmem(data, size, CTL_MARK, CTL_MARK_LEN);
	if (mark) {
		S.in_len = (size_t)(mark - data);
		S.ctl = mark + CTL_MARK_LEN;
		S.ctl_len = size - S.in_len - CTL_MARK_LEN;
	}
	/* the worker's settings for this run, from the first control byte */
	uint8_t cfg = ctl_byte();
	memset(&wk, 0, sizeof(wk));
	wk.pool = &pool;
	wk.slot = &slots[0];
	wk.max_requests = cfg & 3;                    /* 0 = unlimited */
	wk.access_log = (cfg >> 2) & 1;
	wk.extra_headers = (cfg & 8) ? "X-Powered-By: fuzz\r\n" : NULL;
	/* read timeouts in seconds (0 = off): header and keep-alive, body */
	static const int timeouts[4] = { 0, 1, 5, 60 };
	pc.request_header_timeout = pc.request_keepalive_timeout = timeouts[(cfg >> 4) & 3];
	pc.request_body_timeout = timeouts[(cfg >> 6) & 3];
	worker_quit = 0;

	S.active = 1;
	conn_attach(&conn, FAKE_FD);
	/* a request in flight when the connection ends is followed in stub_handle */
	serve_one_connection(&wk, &conn, conn_now_ms());
	S.active = 0;
	check_handled();
	TRACE("end: %zu of %zu bytes read, %zu written, t=%llu ms, quit=%d\n", S.in_pos, S.in_len,
	      S.out_len, (unsigned long long)S.clock_ms, (int)worker_quit);

	if (!S.closed)
		fail("the connection was not closed");
	if (S.out_parsed != S.out_len && !S.peer_gone)
		fail("output ends in the middle of a record");
	return 0;
}
