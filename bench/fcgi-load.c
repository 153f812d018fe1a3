/*
 * fcgi-load: a FastCGI load generator.
 *
 * One thread, one epoll set, N connections each carrying one request at a
 * time (FastCGI servers do not multiplex).  Every response is read to its
 * END_REQUEST and checked: request id 1, protocolStatus 0 (spec §5.5), a
 * CGI header block with a 2xx/3xx Status (RFC 3875 §6.3.3, absent means
 * 200), and with -e a body that contains the expected string.  The run is
 * bounded: it stops after -d seconds or -n requests, and no request waits
 * longer than -t milliseconds.
 *
 * The records are encoded and decoded by fpmd's own codec (src/fcgi), which
 * is unit-tested and fuzzed: this file only moves bytes and keeps score.
 *
 *   fcgi-load [-c conns] [-d secs | -n reqs] [-k] [-b bytes] [-X method]
 *             [-r root] [-p NAME=VALUE]... [-e string] [-t ms] [-j] ADDRESS URI
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fcgi/fcgi.h"

#define MAX_CONNS      10000
#define MAX_PARAMS     64
#define HEAD_MAX       8192     /* CGI header block we look into for Status */
#define EXPECT_MAX     256
#define READ_BUF       65536
#define SCAN_NS        (5 * 1000000LL)   /* how often timeouts and retries are checked */
#define RETRY_NS       (1 * 1000000LL)   /* pause after an error or a full backlog */

enum err_kind {
	E_NONE = -1,
	E_CONNECT = 0,  /* socket/connect failed (a full unix backlog is retried until -t) */
	E_PROTOCOL,     /* malformed records, bad END_REQUEST, closed before END_REQUEST */
	E_TIMEOUT,      /* no END_REQUEST within -t */
	E_STATUS,       /* a CGI Status outside 2xx/3xx, or no header block at all */
	E_MISMATCH,     /* the body lacks the -e string */
	E_KINDS
};

static const char *const err_names[E_KINDS] = {
	"connect", "protocol", "timeout", "status", "mismatch",
};

enum cstate {
	C_WAIT = 0,     /* no request: start one at wake_ns */
	C_CONNECTING,   /* TCP connect in progress, or unix connect refused with EAGAIN */
	C_WRITING,      /* request bytes going out */
	C_READING,      /* waiting for records up to END_REQUEST */
	C_DONE,         /* nothing more to do */
};

/*
 * One client connection and the request it carries.  Owns fd; the reader is
 * per connection, not per request, so record framing (an END_REQUEST's
 * padding) carries over between keep-alive requests.
 */
struct conn {
	int fd;
	enum cstate state;
	uint32_t events;           /* what epoll watches for fd */
	int64_t start_ns;          /* when the current request began (connect included) */
	int64_t wake_ns;           /* C_WAIT / unix EAGAIN: when to try again */
	size_t wpos;               /* bytes of the request written */
	unsigned served;           /* requests completed on this connection */
	size_t got;                /* response bytes received for this request */
	struct fcgi_resp_reader rd;
	char head[HEAD_MAX];       /* the CGI header block, until its blank line */
	size_t head_len;
	int head_done;
	int status;                /* CGI Status, 200 when absent */
	char carry[EXPECT_MAX];    /* last expect_len-1 body bytes, for matches across pieces */
	size_t carry_len;
	int found;
};

/* Log-linear latency histogram in microseconds: exact below 128, then 64 steps per power of two. */
#define H_SUB     64
#define H_BUCKETS (128 + 25 * H_SUB)  /* up to 2^32 µs */

struct hist {
	uint64_t count[H_BUCKETS];
	uint64_t n, sum, max;
};

static struct {
	/* options */
	const char *address, *uri, *root, *method, *expect;
	unsigned conns;
	double duration;
	uint64_t nreq;
	int keep, json;
	size_t body_len;
	int64_t timeout_ns;
	const char *extra[MAX_PARAMS];
	unsigned nextra;

	/* target */
	int is_unix;
	struct sockaddr_storage sa;
	socklen_t salen;

	/* the request, identical for every request: built once */
	uint8_t *req;
	size_t req_len;
	size_t expect_len;

	/* run state */
	int ep;
	struct conn *c;
	int64_t t0, end_ns;
	uint64_t started, finished, ok;
	uint64_t errors[E_KINDS];
	uint64_t reconnects, eagain;
	unsigned unfinished;         /* requests still in flight when the run stopped */
	uint64_t bytes_in;
	struct hist h;
	char first_err[256];
	volatile sig_atomic_t stop;
} g;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("fcgi-load: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* --- latency histogram --------------------------------------------------- */

static unsigned h_index(uint64_t v)
{
	unsigned msb, shift;

	if (v < 128)
		return (unsigned)v;
	if (v > UINT32_MAX)
		v = UINT32_MAX;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - 6;
	return 128 + (shift - 1) * H_SUB + (unsigned)((v >> shift) - H_SUB);
}

/* The middle of a bucket: within 0.8% of any value that fell in it. */
static uint64_t h_value(unsigned i)
{
	unsigned shift;
	uint64_t top;

	if (i < 128)
		return i;
	shift = (i - 128) / H_SUB + 1;
	top = H_SUB + (i - 128) % H_SUB;
	return (top << shift) + ((1ull << shift) >> 1);
}

static void h_add(struct hist *h, uint64_t us)
{
	h->count[h_index(us)]++;
	h->n++;
	h->sum += us;
	if (us > h->max)
		h->max = us;
}

static uint64_t h_pct(const struct hist *h, double p)
{
	uint64_t want, seen = 0;
	unsigned i;

	if (!h->n)
		return 0;
	want = (uint64_t)(p / 100.0 * (double)h->n + 0.5);
	if (want < 1)
		want = 1;
	for (i = 0; i < H_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= want) {
			uint64_t v = h_value(i);

			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

/* --- the request ----------------------------------------------------------- */

static size_t put_param(uint8_t *out, size_t cap, const char *name, const char *value)
{
	size_t n = fcgi_nv_encode(out, cap, name, strlen(name), value, strlen(value));

	if (!n)
		die("params too large");
	return n;
}

/* NAME=VALUE from -p, or NULL: a later -p wins over the defaults. */
static const char *extra_value(const char *name)
{
	size_t nl = strlen(name);
	const char *v = NULL;
	unsigned i;

	for (i = 0; i < g.nextra; i++)
		if (strncmp(g.extra[i], name, nl) == 0 && g.extra[i][nl] == '=')
			v = g.extra[i] + nl + 1;
	return v;
}

/*
 * The params nginx's fastcgi_params sends, with SCRIPT_FILENAME =
 * root + script name, then every -p.  One record stream: BEGIN_REQUEST,
 * PARAMS, empty PARAMS, STDIN (the body, if any), empty STDIN.
 */
static void build_request(void)
{
	static uint8_t nv[FCGI_MAX_CONTENT];
	char path[4096], filename[8192], clen[32];
	const char *query = strchr(g.uri, '?');
	const char *defs[][2] = {
		{ "GATEWAY_INTERFACE", "CGI/1.1" },
		{ "SERVER_SOFTWARE", "fcgi-load" },
		{ "SERVER_PROTOCOL", "HTTP/1.1" },
		{ "REQUEST_METHOD", g.method },
		{ "REQUEST_URI", g.uri },
		{ "SCRIPT_NAME", path },
		{ "DOCUMENT_URI", path },
		{ "QUERY_STRING", query ? query + 1 : "" },
		{ "DOCUMENT_ROOT", g.root },
		{ "SCRIPT_FILENAME", filename },
		{ "REMOTE_ADDR", "127.0.0.1" },
		{ "REMOTE_PORT", "50000" },
		{ "SERVER_ADDR", "127.0.0.1" },
		{ "SERVER_PORT", "80" },
		{ "SERVER_NAME", "localhost" },
		{ "HTTP_HOST", "localhost" },
		{ "CONTENT_LENGTH", clen },
		{ "CONTENT_TYPE", g.body_len ? "application/octet-stream" : "" },
	};
	size_t plen = query ? (size_t)(query - g.uri) : strlen(g.uri), off = 0, cap, n, rl;
	uint8_t *body = NULL;
	unsigned i;

	if (plen >= sizeof(path))
		die("URI too long");
	memcpy(path, g.uri, plen);
	path[plen] = '\0';
	rl = strlen(g.root);
	while (rl && g.root[rl - 1] == '/')
		rl--;
	snprintf(filename, sizeof(filename), "%.*s%s%s", (int)rl, g.root,
		 path[0] == '/' ? "" : "/", path);
	if (g.body_len)
		snprintf(clen, sizeof(clen), "%zu", g.body_len);
	else
		clen[0] = '\0';

	for (i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		const char *v = extra_value(defs[i][0]);

		off += put_param(nv + off, sizeof(nv) - off, defs[i][0], v ? v : defs[i][1]);
	}
	for (i = 0; i < g.nextra; i++) {
		const char *eq = strchr(g.extra[i], '=');
		char name[1024];
		unsigned j, known = 0;

		if (!eq || eq == g.extra[i] || (size_t)(eq - g.extra[i]) >= sizeof(name))
			die("-p wants NAME=VALUE, got '%s'", g.extra[i]);
		memcpy(name, g.extra[i], (size_t)(eq - g.extra[i]));
		name[eq - g.extra[i]] = '\0';
		for (j = 0; j < sizeof(defs) / sizeof(defs[0]); j++)
			known |= strcmp(defs[j][0], name) == 0;
		if (!known && extra_value(name) == eq + 1)
			off += put_param(nv + off, sizeof(nv) - off, name, eq + 1);
	}

	cap = FCGI_BEGIN_REQUEST_LEN + fcgi_stream_size(off) + FCGI_HEADER_LEN +
	      (g.body_len ? fcgi_stream_size(g.body_len) : 0) + FCGI_HEADER_LEN;
	g.req = malloc(cap);
	if (g.body_len)
		body = malloc(g.body_len);
	if (!g.req || (g.body_len && !body))
		die("out of memory");
	if (body)
		for (n = 0; n < g.body_len; n++)
			body[n] = (uint8_t)('a' + n % 26);
	fcgi_begin_request_encode(g.req, 1, FCGI_RESPONDER, g.keep ? FCGI_KEEP_CONN : 0);
	n = FCGI_BEGIN_REQUEST_LEN;
	n += fcgi_stream_encode(g.req + n, cap - n, FCGI_PARAMS, 1, nv, off);
	n += fcgi_stream_encode(g.req + n, cap - n, FCGI_PARAMS, 1, "", 0);
	if (g.body_len)
		n += fcgi_stream_encode(g.req + n, cap - n, FCGI_STDIN, 1, body, g.body_len);
	n += fcgi_stream_encode(g.req + n, cap - n, FCGI_STDIN, 1, "", 0);
	g.req_len = n;
	free(body);
}

/* unix:PATH, tcp:HOST:PORT, a path with a '/', or HOST:PORT. Resolved once. */
static void resolve(const char *spec)
{
	struct addrinfo hints, *res;
	char host[256];
	const char *colon;
	size_t hl;
	int r;

	if (strncmp(spec, "unix:", 5) == 0 || (strncmp(spec, "tcp:", 4) && strchr(spec, '/'))) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&g.sa;
		const char *path = strncmp(spec, "unix:", 5) == 0 ? spec + 5 : spec;

		if (!*path || strlen(path) >= sizeof(sun->sun_path))
			die("bad unix socket path '%s'", path);
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, path, strlen(path) + 1);
		g.salen = sizeof(*sun);
		g.is_unix = 1;
		return;
	}
	if (strncmp(spec, "tcp:", 4) == 0)
		spec += 4;
	colon = strrchr(spec, ':');
	if (!colon || colon == spec || !colon[1])
		die("bad address '%s' (unix:PATH or tcp:HOST:PORT)", spec);
	hl = (size_t)(colon - spec);
	if (spec[0] == '[' && colon[-1] == ']') {
		spec++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		die("host name too long");
	memcpy(host, spec, hl);
	host[hl] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	r = getaddrinfo(host, colon + 1, &hints, &res);
	if (r)
		die("%s: %s", host, gai_strerror(r));
	memcpy(&g.sa, res->ai_addr, res->ai_addrlen);
	g.salen = res->ai_addrlen;
	freeaddrinfo(res);
}

/* --- connections ------------------------------------------------------------ */

static void note_error(const char *fmt, ...)
{
	va_list ap;

	if (g.first_err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(g.first_err, sizeof(g.first_err), fmt, ap);
	va_end(ap);
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->served = 0;
}

static void watch(struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (c->events == events)
		return;
	c->events = events;
	if (epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

static int more_to_start(void)
{
	if (g.stop)
		return 0;
	return g.nreq ? g.started < g.nreq : 1;
}

static void begin(struct conn *c, int64_t now);

/*
 * The one place a request ends, well or badly.  An error closes the
 * connection (its framing can no longer be trusted); success keeps it when
 * -k asked for keep-alive.  Then the next request starts, or the connection
 * rests.
 */
static void finish(struct conn *c, enum err_kind kind, int64_t now)
{
	g.finished++;
	if (kind == E_NONE) {
		g.ok++;
		h_add(&g.h, (uint64_t)(now - c->start_ns) / 1000);
		c->served++;
		if (!g.keep)
			conn_close(c);
	} else {
		g.errors[kind]++;
		conn_close(c);
	}
	/* after an error the connection rests until the next scan: no tight loop, no recursion */
	c->state = C_WAIT;
	c->wake_ns = kind == E_NONE ? now : now + RETRY_NS;
	if (!more_to_start())
		c->state = C_DONE;
	else if (kind == E_NONE)
		begin(c, now);
}

static int retry_on_new_conn(struct conn *c, int64_t now);

static void send_request(struct conn *c, int64_t now)
{
	while (c->wpos < g.req_len) {
		ssize_t n = send(c->fd, g.req + c->wpos, g.req_len - c->wpos, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			watch(c, EPOLLIN | EPOLLOUT);
			c->state = C_WRITING;
			return;
		}
		if (n < 0) {
			/* A keep-alive connection the server closed: not the request's fault. */
			if ((errno == EPIPE || errno == ECONNRESET) && retry_on_new_conn(c, now))
				return;
			/*
			 * The server may answer before reading the whole body (an
			 * error, a ping) and close: its answer may be waiting unread.
			 */
			if (errno == EPIPE || errno == ECONNRESET) {
				c->wpos = g.req_len;
				break;
			}
			note_error("send: %s", strerror(errno));
			finish(c, E_PROTOCOL, now);
			return;
		}
		c->wpos += (size_t)n;
	}
	c->state = C_READING;
	watch(c, EPOLLIN);
}

/*
 * Non-blocking connect.  A unix socket connects at once or, with the
 * server's backlog full, fails with EAGAIN: the socket is closed and the
 * connect retried at the next scan, within the request's timeout.
 */
static void open_conn(struct conn *c, int64_t now)
{
	struct epoll_event ev = { .events = g.is_unix ? EPOLLIN : EPOLLIN | EPOLLOUT, .data.ptr = c };
	int r;

	c->fd = socket(g.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		note_error("socket: %s", strerror(errno));
		finish(c, E_CONNECT, now);
		return;
	}
	if (epoll_ctl(g.ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	c->events = ev.events;
	fcgi_resp_reader_init(&c->rd);
	do {
		r = connect(c->fd, (struct sockaddr *)&g.sa, g.salen);
	} while (r < 0 && errno == EINTR);
	if (r == 0) {
		send_request(c, now);
		return;
	}
	if (errno == EINPROGRESS) {
		c->state = C_CONNECTING;
		return;
	}
	if (errno == EAGAIN && g.is_unix) {
		g.eagain++;
		conn_close(c);
		c->state = C_CONNECTING;
		c->wake_ns = now + RETRY_NS;
		return;
	}
	note_error("connect: %s", strerror(errno));
	finish(c, E_CONNECT, now);
}

static void begin(struct conn *c, int64_t now)
{
	g.started++;
	c->start_ns = now;
	c->wpos = 0;
	c->got = 0;
	c->head_len = 0;
	c->head_done = 0;
	c->status = 200;
	c->carry_len = 0;
	c->found = 0;
	c->wake_ns = 0;
	c->state = C_WRITING;
	if (c->fd < 0)
		open_conn(c, now);
	else
		send_request(c, now);
}

/* A keep-alive connection closed before any byte of the answer: reconnect, same request. */
static int retry_on_new_conn(struct conn *c, int64_t now)
{
	if (!c->served || c->got)
		return 0;
	g.reconnects++;
	conn_close(c);
	c->wpos = 0;
	c->state = C_WRITING;
	open_conn(c, now);
	return 1;
}

static void search_body(struct conn *c, const uint8_t *p, size_t n)
{
	size_t keep, k = g.expect_len;
	char win[2 * EXPECT_MAX];

	if (!k || c->found)
		return;
	/* the seam: carried tail + the first k-1 new bytes */
	if (c->carry_len) {
		size_t take = n < k - 1 ? n : k - 1;

		memcpy(win, c->carry, c->carry_len);
		memcpy(win + c->carry_len, p, take);
		if (memmem(win, c->carry_len + take, g.expect, k)) {
			c->found = 1;
			return;
		}
	}
	if (memmem(p, n, g.expect, k)) {
		c->found = 1;
		return;
	}
	keep = k - 1;
	if (n >= keep) {
		memcpy(c->carry, p + n - keep, keep);
		c->carry_len = keep;
	} else {
		size_t total = c->carry_len + n, drop = total > keep ? total - keep : 0;

		memmove(c->carry, c->carry + drop, c->carry_len - drop);
		memcpy(c->carry + c->carry_len - drop, p, n);
		c->carry_len = total - drop;
	}
}

/* "Status: 404 Not Found" anywhere in the header block; 200 when absent. */
static void parse_status(struct conn *c, size_t hlen)
{
	const char *p = c->head, *end = c->head + hlen;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (ll > 7 && strncasecmp(p, "Status:", 7) == 0) {
			c->status = atoi(p + 7);
			return;
		}
		p += ll + 1;
	}
}

/*
 * STDOUT content: the header block is collected until its blank line
 * (LF or CRLF), the rest is body, searched for -e.
 */
static void on_stdout(struct conn *c, const uint8_t *p, size_t n)
{
	if (!c->head_done) {
		size_t old = c->head_len, take = n < HEAD_MAX - old ? n : HEAD_MAX - old, i;

		memcpy(c->head + old, p, take);
		c->head_len += take;
		for (i = old > 3 ? old - 3 : 0; i < c->head_len; i++) {
			size_t end = 0;

			if (i + 1 < c->head_len && c->head[i] == '\n' && c->head[i + 1] == '\n')
				end = i + 2;
			else if (i + 3 < c->head_len && memcmp(c->head + i, "\r\n\r\n", 4) == 0)
				end = i + 4;
			if (end) {
				c->head_done = 1;
				parse_status(c, i);
				/* body bytes after the blank line in this piece */
				search_body(c, p + (end - old), n - (end - old));
				return;
			}
		}
		return;
	}
	search_body(c, p, n);
}

static void on_end(struct conn *c, const struct fcgi_resp_event *ev, int64_t now)
{
	if (ev->request_id != 1) {
		note_error("END_REQUEST for request id %u", ev->request_id);
		finish(c, E_PROTOCOL, now);
	} else if (ev->protocol_status != FCGI_REQUEST_COMPLETE) {
		note_error("END_REQUEST protocolStatus %u", ev->protocol_status);
		finish(c, E_PROTOCOL, now);
	} else if (!c->head_done || c->status < 200 || c->status >= 400) {
		note_error(c->head_done ? "CGI Status %d" : "no CGI header block", c->status);
		finish(c, E_STATUS, now);
	} else if (g.expect_len && !c->found) {
		note_error("body lacks '%s'", g.expect);
		finish(c, E_MISMATCH, now);
	} else {
		finish(c, E_NONE, now);
	}
}

/* Reads once and feeds the reader; stops at END_REQUEST, which ends the request. */
static void read_conn(struct conn *c, int64_t now)
{
	static uint8_t buf[READ_BUF];
	struct fcgi_resp_event ev;
	ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
	size_t off = 0;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (retry_on_new_conn(c, now))
			return;
		note_error(n ? "recv: %s" : "connection closed before END_REQUEST",
			   strerror(errno));
		finish(c, E_PROTOCOL, now);
		return;
	}
	g.bytes_in += (uint64_t)n;
	c->got += (size_t)n;
	while (off < (size_t)n) {
		ssize_t used = fcgi_resp_reader_feed(&c->rd, buf + off, (size_t)n - off, &ev);

		if (used < 0) {
			note_error("%s", fcgi_strerror(c->rd.error));
			finish(c, E_PROTOCOL, now);
			return;
		}
		off += (size_t)used;
		if (ev.kind == FCGI_RESP_STDOUT)
			on_stdout(c, ev.data, ev.len);
		else if (ev.kind == FCGI_RESP_OTHER) {
			note_error("unexpected record type %u", ev.other_type);
			finish(c, E_PROTOCOL, now);
			return;
		} else if (ev.kind == FCGI_RESP_END) {
			/* only the END_REQUEST's padding may follow; nothing else was asked */
			struct fcgi_resp_event rest;

			if (off < (size_t)n &&
			    (fcgi_resp_reader_feed(&c->rd, buf + off, (size_t)n - off, &rest) !=
				     (ssize_t)((size_t)n - off) ||
			     rest.kind != FCGI_RESP_NONE)) {
				note_error("bytes after END_REQUEST");
				finish(c, E_PROTOCOL, now);
				return;
			}
			on_end(c, &ev, now);
			return;
		}
	}
}

static void on_event(struct conn *c, uint32_t events, int64_t now)
{
	if (c->state == C_CONNECTING) {
		int e = 0;
		socklen_t sl = sizeof(e);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0)
			e = errno;
		if (e) {
			note_error("connect: %s", strerror(e));
			finish(c, E_CONNECT, now);
			return;
		}
		send_request(c, now);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		read_conn(c, now);
		return;
	}
	if ((events & EPOLLOUT) && c->state == C_WRITING)
		send_request(c, now);
}

/* Every SCAN_NS: requests past their timeout, connects to retry, rested connections. */
static void scan(int64_t now)
{
	unsigned i;

	for (i = 0; i < g.conns; i++) {
		struct conn *c = &g.c[i];

		if (c->state == C_DONE)
			continue;
		if (c->state == C_WAIT) {
			if (!more_to_start())
				c->state = C_DONE;
			else if (now >= c->wake_ns)
				begin(c, now);
			continue;
		}
		if (now - c->start_ns > g.timeout_ns) {
			note_error("no END_REQUEST within %lld ms",
				   (long long)(g.timeout_ns / 1000000));
			finish(c, E_TIMEOUT, now);
			continue;
		}
		if (c->state == C_CONNECTING && c->fd < 0 && now >= c->wake_ns)
			open_conn(c, now);
	}
}

static int all_done(void)
{
	unsigned i;

	if (g.nreq && g.finished >= g.nreq)
		return 1;
	for (i = 0; i < g.conns; i++)
		if (g.c[i].state != C_DONE)
			return 0;
	return 1;
}

static void on_signal(int sig)
{
	(void)sig;
	g.stop = 1;
}

/* --- main ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fcgi-load [options] ADDRESS URI\n"
		"  ADDRESS       unix:PATH, tcp:HOST:PORT (or a path, or HOST:PORT)\n"
		"  URI           /script/path?query: SCRIPT_NAME, REQUEST_URI, QUERY_STRING\n"
		"  -c N          connections in flight (default 16)\n"
		"  -d SECS       run this long (default 5 unless -n is given)\n"
		"  -n N          run this many requests (with -d: whichever comes first)\n"
		"  -k            keep-alive: FCGI_KEEP_CONN, reuse each connection\n"
		"  -b BYTES      POST a body of this size (method POST unless -X)\n"
		"  -X METHOD     REQUEST_METHOD (default GET, POST with -b)\n"
		"  -r ROOT       DOCUMENT_ROOT; SCRIPT_FILENAME = ROOT + script path (default /)\n"
		"  -p NAME=VAL   add or override a param (repeatable)\n"
		"  -e STRING     every response body must contain STRING\n"
		"  -t MS         per-request timeout (default 10000)\n"
		"  -j            print one JSON line instead of the report\n"
		"Exit status: 0 no errors, 1 some request failed, 2 usage or setup error.\n");
}

static double num_arg(const char *s, const char *what, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < lo || v > hi)
		die("bad %s '%s'", what, s);
	return v;
}

static void parse_args(int argc, char **argv)
{
	int ch, have_d = 0;

	g.conns = 16;
	g.root = "/";
	g.timeout_ns = 10000 * 1000000LL;
	while ((ch = getopt(argc, argv, "c:d:n:kb:X:r:p:e:t:jh")) != -1) {
		switch (ch) {
		case 'c': g.conns = (unsigned)num_arg(optarg, "-c", 1, MAX_CONNS); break;
		case 'd': g.duration = num_arg(optarg, "-d", 0.01, 86400); have_d = 1; break;
		case 'n': g.nreq = (uint64_t)num_arg(optarg, "-n", 1, 1e12); break;
		case 'k': g.keep = 1; break;
		case 'b': g.body_len = (size_t)num_arg(optarg, "-b", 0, 1 << 30); break;
		case 'X': g.method = optarg; break;
		case 'r': g.root = optarg; break;
		case 'p':
			if (g.nextra == MAX_PARAMS)
				die("too many -p");
			g.extra[g.nextra++] = optarg;
			break;
		case 'e':
			g.expect = optarg;
			g.expect_len = strlen(optarg);
			if (g.expect_len == 0 || g.expect_len > EXPECT_MAX)
				die("-e wants 1 to %d bytes", EXPECT_MAX);
			break;
		case 't': g.timeout_ns = (int64_t)num_arg(optarg, "-t", 1, 3600000) * 1000000LL; break;
		case 'j': g.json = 1; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		exit(2);
	}
	g.address = argv[optind];
	g.uri = argv[optind + 1];
	if (!have_d && !g.nreq)
		g.duration = 5;
	if (!g.method)
		g.method = g.body_len ? "POST" : "GET";
	if (g.nreq && g.conns > g.nreq)
		g.conns = (unsigned)g.nreq;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void report(double secs)
{
	uint64_t errs = 0;
	double rps = secs > 0 ? (double)g.ok / secs : 0;
	double mean = g.h.n ? (double)g.h.sum / (double)g.h.n : 0;
	unsigned i;

	for (i = 0; i < E_KINDS; i++)
		errs += g.errors[i];
	if (g.json) {
		printf("{\"address\":");
		json_str(g.address);
		printf(",\"uri\":");
		json_str(g.uri);
		printf(",\"conns\":%u,\"keepalive\":%s,\"method\":", g.conns,
		       g.keep ? "true" : "false");
		json_str(g.method);
		printf(",\"body_bytes\":%zu,\"seconds\":%.3f,\"requests\":%llu,\"ok\":%llu,"
		       "\"rps\":%.1f,\"latency_us\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,"
		       "\"max\":%llu,\"mean\":%.1f},\"errors\":{",
		       g.body_len, secs, (unsigned long long)g.finished, (unsigned long long)g.ok,
		       rps, (unsigned long long)h_pct(&g.h, 50), (unsigned long long)h_pct(&g.h, 90),
		       (unsigned long long)h_pct(&g.h, 99), (unsigned long long)g.h.max, mean);
		for (i = 0; i < E_KINDS; i++)
			printf("%s\"%s\":%llu", i ? "," : "", err_names[i],
			       (unsigned long long)g.errors[i]);
		printf("},\"error_total\":%llu,\"first_error\":", (unsigned long long)errs);
		json_str(g.first_err);
		printf(",\"unfinished\":%u,\"reconnects\":%llu,\"connect_eagain\":%llu,"
		       "\"bytes_in\":%llu}\n", g.unfinished, (unsigned long long)g.reconnects,
		       (unsigned long long)g.eagain, (unsigned long long)g.bytes_in);
		return;
	}
	printf("%s %s %s, %u connections, %s, %zu body bytes\n", g.method, g.address, g.uri,
	       g.conns, g.keep ? "keep-alive" : "one request per connection", g.body_len);
	printf("  %llu ok of %llu in %.2f s: %.1f req/s (%u unfinished at the end)\n",
	       (unsigned long long)g.ok, (unsigned long long)g.finished, secs, rps, g.unfinished);
	printf("  latency  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  mean %.3f ms\n",
	       (double)h_pct(&g.h, 50) / 1000, (double)h_pct(&g.h, 90) / 1000,
	       (double)h_pct(&g.h, 99) / 1000, (double)g.h.max / 1000, mean / 1000);
	printf("  errors  ");
	for (i = 0; i < E_KINDS; i++)
		printf(" %s %llu", err_names[i], (unsigned long long)g.errors[i]);
	putchar('\n');
	if (g.first_err[0])
		printf("  first error: %s\n", g.first_err);
	if (g.reconnects || g.eagain)
		printf("  keep-alive reconnects %llu, unix connect EAGAIN retries %llu\n",
		       (unsigned long long)g.reconnects, (unsigned long long)g.eagain);
}

int main(int argc, char **argv)
{
	struct epoll_event evs[256];
	struct sigaction sa;
	int64_t now, last_scan, last_done = 0;
	unsigned i;
	uint64_t errs = 0;

	parse_args(argc, argv);
	resolve(g.address);
	build_request();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	g.ep = epoll_create1(EPOLL_CLOEXEC);
	g.c = calloc(g.conns, sizeof(*g.c));
	if (g.ep < 0 || !g.c)
		die("setup: %s", strerror(errno));
	g.t0 = now = last_scan = now_ns();
	g.end_ns = g.duration > 0 ? g.t0 + (int64_t)(g.duration * 1e9) : INT64_MAX;
	for (i = 0; i < g.conns; i++) {
		g.c[i].fd = -1;
		if (more_to_start())
			begin(&g.c[i], now);
		else
			g.c[i].state = C_DONE;
	}

	while (!g.stop && !all_done()) {
		int64_t left = g.end_ns - now, wait_ms = SCAN_NS / 1000000;
		int n;

		if (left <= 0)
			break;
		if (left < SCAN_NS)
			wait_ms = left / 1000000 + 1;
		n = epoll_wait(g.ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), (int)wait_ms);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		now = now_ns();
		for (i = 0; n > 0 && i < (unsigned)n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->fd >= 0 && c->state != C_WAIT && c->state != C_DONE)
				on_event(c, evs[i].events, now);
		}
		if (g.finished && g.nreq && g.finished >= g.nreq)
			last_done = now;
		if (now - last_scan >= SCAN_NS) {
			scan(now);
			last_scan = now;
		}
	}
	now = now_ns();
	for (i = 0; i < g.conns; i++) {
		if (g.c[i].state != C_WAIT && g.c[i].state != C_DONE)
			g.unfinished++;
		conn_close(&g.c[i]);
	}
	if (g.end_ns != INT64_MAX && now >= g.end_ns)
		now = g.end_ns;
	else if (last_done)
		now = last_done;
	report((double)(now - g.t0) / 1e9);
	for (i = 0; i < E_KINDS; i++)
		errs += g.errors[i];
	free(g.c);
	free(g.req);
	return errs || !g.ok ? 1 : 0;
}
