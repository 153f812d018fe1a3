/*
 * The request API handlers use: params, the streamed body, the streamed
 * response.  STDOUT records carry at most 65535 bytes; large writes go out
 * without a copy (conn_write_record).
 */
#include "worker/request.h"

#include <poll.h>
#include <stdarg.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"
#include "pool/pool.h"
#include "worker/conn.h"
#include "worker/worker.h"

const char *req_param(const struct request *r, const char *name)
{
	return fcgi_param_value(r->fp, name);
}

size_t req_param_count(const struct request *r)
{
	return r->fp->nparams;
}

const struct fcgi_param *req_param_at(const struct request *r, size_t i)
{
	return i < r->fp->nparams ? &r->fp->params[i] : NULL;
}

/* Blocking body read, built on req_body_next. */
ssize_t req_body_read(struct request *r, void *buf, size_t cap)
{
	for (;;) {
		int st = req_body_next(r, 1);
		if (st == 2)
			return 0;
		if (st < 0)
			return -1;
		if (st == 1) {
			size_t n = r->pending_len < cap ? r->pending_len : cap;
			memcpy(buf, r->pending, n);
			r->pending += n;
			r->pending_len -= n;
			return (ssize_t)n;
		}
	}
}

static int body_timeout_ms(const struct request *r)
{
	return r->worker ? worker_timeout_ms(r->worker->pool->conf->request_body_timeout) : -1;
}

/* The client sent nothing for request_body_timeout: one line, the connection is given up. */
static void body_expired(struct request *r)
{
	const struct pool_conf *pc = r->worker->pool->conf;
	log_limited(LL_WARNING, "[pool %s] child %d: request_body_timeout (%ds) expired while "
		    "reading the request body (FCGI_STDIN): nothing received for %ds; closing the "
		    "connection%s", pc->name, (int)getpid(), pc->request_body_timeout,
		    pc->request_body_timeout);
	r->body_timed_out = 1;
	r->aborted = 1;
	r->conn->dead = 1;
}

int req_body_gap(struct request *r, int waiting)
{
	int limit = body_timeout_ms(r);
	if (!waiting || limit < 0) {
		r->body_wait_ms = 0;
		return -1;
	}
	uint64_t now = conn_now_ms();
	if (!r->body_wait_ms)
		r->body_wait_ms = now;
	uint64_t spent = now - r->body_wait_ms;
	if (spent >= (uint64_t)limit) {
		if (!r->body_timed_out)
			body_expired(r);
		return -2;
	}
	return (int)((uint64_t)limit - spent);
}

/*
 * request.max_body_size, for a body longer than its CONTENT_LENGTH said
 * (the worker refuses a declared one before the handler runs): the rest is
 * not read, the request is cut off as if the client had aborted.
 */
static int body_over_limit(struct request *r)
{
	long long max = r->worker ? r->worker->pool->conf->request_max_body_size : 0;
	/* body_too_large already: refused and answered, now drained (worker.c) */
	if (max <= 0 || r->body_bytes <= (uint64_t)max || r->body_too_large)
		return 0;
	log_warning("[pool %s] child %d: request body grew past request.max_body_size (%lld "
		    "bytes); the rest is refused", r->worker->pool->conf->name, (int)getpid(), max);
	r->body_too_large = 1;
	r->aborted = 1;
	r->pending_len = 0;
	return 1;
}

/*
 * Management records may arrive in the middle of a body (spec §4.1) and
 * are answered at once.
 */
int req_body_next(struct request *r, int may_read)
{
	struct conn *c = r->conn;
	for (;;) {
		if (r->pending_len)
			return 1;
		if (r->stdin_done)
			return 2;
		if (r->aborted)
			return -1;
		if (c->in_pos == c->in_len) {
			if (!may_read)
				return 0;
			may_read = 0;
			/*
			 * A multiplexing handler that waited already (req_body_gap)
			 * has only the rest of the gap left.
			 */
			int limit = body_timeout_ms(r);
			if (limit >= 0 && r->body_wait_ms) {
				uint64_t spent = conn_now_ms() - r->body_wait_ms;
				limit = spent >= (uint64_t)limit ? 0 : limit - (int)spent;
			}
			enum conn_read_result rr = conn_read(c, 0, limit);
			r->body_wait_ms = 0;
			if (rr == CONN_READ_TIMEOUT) {
				body_expired(r);
				return -1;
			}
			if (rr != CONN_READ_OK) {
				r->aborted = 1;
				c->dead = 1;
				return -1;
			}
		}
		struct fcgi_event ev;
		ssize_t used = fcgi_parser_feed(&c->parser, c->in + c->in_pos, c->in_len - c->in_pos, &ev);
		if (used < 0) {
			/* said as in the request's head: the client is there, its record is wrong */
			log_limited(LL_WARNING, "[pool %s] child %d: FastCGI protocol error from client "
				    "while reading the request body: %s; closing the connection%s",
				    r->worker->pool->conf->name, (int)getpid(),
				    fcgi_strerror(c->parser.error));
			r->aborted = 1;
			r->protocol_error = 1;
			c->dead = 1;
			return -1;
		}
		c->in_pos += (size_t)used;
		switch (ev.kind) {
		case FCGI_EV_STDIN:
			r->pending = ev.data;
			r->pending_len = ev.len;
			r->body_bytes += ev.len;
			if (body_over_limit(r))
				return -1;
			break;
		case FCGI_EV_STDIN_END:
			r->stdin_done = 1;
			break;
		case FCGI_EV_ABORT:
			r->aborted = 1;
			return -1;
		case FCGI_EV_REPLY:
			/* a management record's answer; none once the answer is over (lingering close) */
			if (c->write_shut)
				break;
			if (conn_write(c, ev.data, ev.len) < 0 || conn_flush(c) < 0) {
				r->aborted = 1;
				return -1;
			}
			break;
		default:
			break;
		}
	}
}

int req_body_drain_bounded(struct request *r, uint64_t max_bytes, int timeout_ms)
{
	uint64_t drained = 0, t0 = conn_now_ms();
	for (;;) {
		int st = req_body_next(r, 0);
		if (st == 2)
			return 0;
		if (st < 0)
			return -1;
		if (st == 1) {
			drained += r->pending_len;
			r->pending_len = 0;
			if (drained > max_bytes)
				return -1;
			continue;
		}
		uint64_t spent = conn_now_ms() - t0;
		if (timeout_ms < 0 || spent >= (uint64_t)timeout_ms)
			return -1;
		struct pollfd pfd = { .fd = r->conn->fd, .events = POLLIN };
		if (poll(&pfd, 1, (int)((uint64_t)timeout_ms - spent)) <= 0)
			return -1;
		if (req_body_next(r, 1) < 0)
			return -1;
	}
}

int req_body_drain(struct request *r)
{
	char sink[4096];
	ssize_t n;
	while ((n = req_body_read(r, sink, sizeof(sink))) > 0)
		;
	return n < 0 ? -1 : 0;
}

static int write_stream(struct request *r, uint8_t type, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len > 0) {
		uint8_t hdr[FCGI_HEADER_LEN], pad;
		size_t n = fcgi_stream_header(hdr, type, r->id, len, &pad);
		if (conn_write_record(r->conn, hdr, p, n, pad) < 0) {
			r->aborted = 1;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * Small writes are gathered into one FCGI_STDOUT record (as php-fpm does):
 * a script's var_dump() is dozens of writes of a few bytes, and a record per
 * write is 8 bytes of header each, a larger answer, more work for the web
 * server, and clients that mishandle a record holding just "0".  The record
 * is filled where it is sent from, the connection's output buffer
 * (conn_stream_append): one copy.  Larger writes go out without a copy.
 */
#define STDOUT_GATHER 8192

int req_out_flush(struct request *r)
{
	conn_stream_close(r->conn);
	return 0;
}

int resp_write(struct request *r, const void *data, size_t len)
{
	/*
	 * An empty FCGI_STDOUT record would end the stream: nothing to send is
	 * nothing sent.  After END_REQUEST (req_finish_early) the output is
	 * dropped, as request.h promises: sent, it would follow END_REQUEST, or
	 * go out under the next request's id on a kept connection (found by
	 * fuzz_conn).
	 */
	if (len == 0 || r->finished)
		return 0;
	r->bytes_out += len;
	if (len >= STDOUT_GATHER) {
		if (write_stream(r, FCGI_STDOUT, data, len) < 0)
			return -1;
	} else if (conn_stream_append(r->conn, FCGI_STDOUT, r->id, data, len, STDOUT_GATHER) < 0) {
		r->aborted = 1;
		return -1;
	}
	/*
	 * Sent once a record's worth is there, as php-fpm sends its 8 KiB
	 * buffer: a page that prints its head and then works shows the head
	 * (the connection's buffer holds 64 KiB: held until then, a progress
	 * page or an export showed nothing until its end).
	 */
	if (r->conn->out_len >= STDOUT_GATHER && conn_flush(r->conn) < 0) {
		r->aborted = 1;
		return -1;
	}
	return 0;
}

int resp_puts(struct request *r, const char *s)
{
	return resp_write(r, s, strlen(s));
}

int resp_flush(struct request *r)
{
	if (r->finished)
		return 0;
	if (req_out_flush(r) < 0)
		return -1;
	return conn_flush(r->conn);
}

int resp_stderr(struct request *r, const void *data, size_t len)
{
	if (len == 0 || r->finished)
		return 0;
	r->stderr_used = 1;
	/*
	 * Gathered like the output, in the same buffer, so the order holds
	 * (what the script printed before its message goes first): a request's
	 * messages with nothing printed between them make one FCGI_STDERR
	 * record, which nginx logs as one line, as php-fpm's.
	 */
	if (len >= STDOUT_GATHER) {
		if (req_out_flush(r) < 0)
			return -1;
		return write_stream(r, FCGI_STDERR, data, len);
	}
	if (conn_stream_append(r->conn, FCGI_STDERR, r->id, data, len, STDOUT_GATHER) < 0) {
		r->aborted = 1;
		return -1;
	}
	return 0;
}

const char *http_reason(int status)
{
	/* PHP's own table (main/http_status_codes.h), the reasons php-fpm sends */
	static const struct { int code; const char *text; } reasons[] = {
		{ 100, "Continue" }, { 101, "Switching Protocols" }, { 200, "OK" },
		{ 201, "Created" }, { 202, "Accepted" }, { 203, "Non-Authoritative Information" },
		{ 204, "No Content" }, { 205, "Reset Content" }, { 206, "Partial Content" },
		{ 300, "Multiple Choices" }, { 301, "Moved Permanently" }, { 302, "Found" },
		{ 303, "See Other" }, { 304, "Not Modified" }, { 305, "Use Proxy" },
		{ 307, "Temporary Redirect" }, { 308, "Permanent Redirect" }, { 400, "Bad Request" },
		{ 401, "Unauthorized" }, { 402, "Payment Required" }, { 403, "Forbidden" },
		{ 404, "Not Found" }, { 405, "Method Not Allowed" }, { 406, "Not Acceptable" },
		{ 407, "Proxy Authentication Required" }, { 408, "Request Timeout" },
		{ 409, "Conflict" }, { 410, "Gone" }, { 411, "Length Required" },
		{ 412, "Precondition Failed" }, { 413, "Request Entity Too Large" },
		{ 414, "Request-URI Too Long" }, { 415, "Unsupported Media Type" },
		{ 416, "Requested Range Not Satisfiable" }, { 417, "Expectation Failed" },
		{ 426, "Upgrade Required" }, { 428, "Precondition Required" },
		{ 429, "Too Many Requests" }, { 431, "Request Header Fields Too Large" },
		{ 451, "Unavailable For Legal Reasons" }, { 500, "Internal Server Error" },
		{ 501, "Not Implemented" }, { 502, "Bad Gateway" }, { 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" }, { 505, "HTTP Version Not Supported" },
		{ 506, "Variant Also Negotiates" }, { 511, "Network Authentication Required" },
	};
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == status)
			return reasons[i].text;
	return NULL;
}

int http_status_line(char *buf, size_t cap, int status)
{
	const char *reason = http_reason(status);
	int n = snprintf(buf, cap, "Status: %d%s%s\r\n", status, reason ? " " : "", reason ? reason : "");
	return n < 0 ? 0 : (size_t)n < cap ? n : (int)cap - 1;
}

void req_note_headers(struct request *r, const char *block, size_t len)
{
	struct worker *w = r->worker;
	if (len > sizeof(w->resp_head))
		len = sizeof(w->resp_head);
	memcpy(w->resp_head, block, len);
	w->resp_head_len = len;
}

void req_note_script(struct request *r, const char *script)
{
	struct worker *w = r->worker;
	free(r->script);
	r->script = script ? strdup(script) : NULL;
	if (!w || !w->slot)
		return;
	sb_write_begin(w->slot);
	sb_strcpy(w->slot->script, sizeof(w->slot->script), r->script);
	sb_write_end(w->slot);
}

int resp_headers(struct request *r, int status, const char *content_type, const char *extra)
{
	char buf[1024];
	int n = http_status_line(buf, sizeof(buf), status);
	if (content_type)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "Content-type: %s\r\n", content_type);
	r->status = status;
	r->headers_sent = 1;
	req_note_headers(r, buf, (size_t)n);
	if (resp_write(r, buf, (size_t)n) < 0)
		return -1;
	if (r->worker && r->worker->extra_headers && resp_puts(r, r->worker->extra_headers) < 0)
		return -1;
	if (extra && resp_puts(r, extra) < 0)
		return -1;
	return resp_write(r, "\r\n", 2);
}

int resp_simple(struct request *r, int status, const char *body)
{
	if (resp_headers(r, status, "text/plain;charset=UTF-8", NULL) < 0)
		return -1;
	return resp_puts(r, body);
}
