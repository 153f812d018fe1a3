/*
 * One FastCGI request as a handler sees it: params in, body streamed in,
 * response streamed out.  Handlers use only these functions, so the
 * connection and protocol stay in one place (conn.c, worker.c).
 *
 * Ownership: the worker owns the request and its connection; a handler
 * borrows them for the duration of handle().
 */
#ifndef FPMD_REQUEST_H
#define FPMD_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fcgi/fcgi.h"

struct conn;
struct worker;

struct request {
	struct conn *conn;
	struct worker *worker;
	const struct fcgi_parser *fp;
	uint16_t id;
	int status;                  /* HTTP status sent (for logs), 0 = not yet known */
	int headers_sent;
	int aborted;                 /* client went away or sent ABORT_REQUEST */
	int protocol_error;          /* ... or broke the protocol in the body (logged where found) */
	uint64_t bytes_out;
	/* body streaming state */
	const uint8_t *pending;
	size_t pending_len;
	int stdin_done;
	int stderr_used;
	int finished;                /* END_REQUEST already sent (fastcgi_finish_request) */
	uint64_t memory_peak;        /* the handler's own figure (PHP's), 0 = use ru_maxrss */
	uint64_t body_wait_ms;       /* request_body_timeout: waiting for the body since (0 = not) */
	int body_timed_out;          /* request_body_timeout expired (logged; aborted is set too) */
	uint64_t body_bytes;         /* FCGI_STDIN bytes received so far */
	int body_too_large;          /* over request.max_body_size (logged; aborted is set too) */
	char *script;                /* the script the handler resolved (req_note_script), owned; NULL: SCRIPT_FILENAME */
};

const char *req_param(const struct request *r, const char *name);
size_t req_param_count(const struct request *r);
const struct fcgi_param *req_param_at(const struct request *r, size_t i);

/*
 * Reads up to cap bytes of the request body.  Returns bytes read, 0 at the
 * end of the body, -1 when the client went away or aborted (r->aborted).
 */
ssize_t req_body_read(struct request *r, void *buf, size_t cap);
/*
 * Non-blocking step of the body stream, for handlers that multiplex the
 * client with other descriptors: makes the next piece available in
 * r->pending/pending_len from bytes already received, reading the socket
 * once only when may_read is set (the caller saw it readable).
 * Returns 1 when a piece is pending, 0 when more input is needed, 2 when
 * the body is complete, -1 when the client aborted or went away.
 */
int req_body_next(struct request *r, int may_read);

/*
 * request_body_timeout for handlers that multiplex the client with other
 * descriptors (req_body_read and req_body_next's own reads apply it by
 * themselves).  Call before each poll, waiting set when that poll waits for
 * the client's body: returns the longest the poll may wait in ms (-1 = no
 * limit), or -2 when the client has sent nothing for request_body_timeout
 * (logged once; r->aborted and r->body_timed_out set, the connection dead).
 */
int req_body_gap(struct request *r, int waiting);

/* Discards whatever remains of the body (needed before the next keep-alive request). */
int req_body_drain(struct request *r);
/*
 * The same, bounded: at most max_bytes and timeout_ms.  A web server that is
 * still sending a body we refused must be read from, or it sees a broken
 * pipe instead of our answer.  0 when the body ended, -1 otherwise.
 */
int req_body_drain_bounded(struct request *r, uint64_t max_bytes, int timeout_ms);

/* Writes response bytes (CGI headers then body) as FCGI_STDOUT. 0 / -1. */
int resp_write(struct request *r, const void *data, size_t len);
int resp_puts(struct request *r, const char *s);
int resp_flush(struct request *r);
/* Sends the gathered FCGI_STDOUT bytes as a record (the answer's end does it too). */
int req_out_flush(struct request *r);
/* FCGI_STDERR: the web server logs it. */
int resp_stderr(struct request *r, const void *data, size_t len);
/*
 * Writes "Status: N REASON", "Content-Type: ...", extra header lines (each
 * ending in \r\n, may be NULL) and the blank line.
 */
int resp_headers(struct request *r, int status, const char *content_type, const char *extra);
/* Remembers the response header block sent (access.format's %o). */
void req_note_headers(struct request *r, const char *block, size_t len);
/*
 * The script the handler runs, as it resolved it from the params (PHP's
 * cgi.fix_pathinfo: SCRIPT_FILENAME less its path info): what the status
 * page, the slowlog and the access log's %f show, as php-fpm's do.
 */
void req_note_script(struct request *r, const char *script);

/* A complete short answer: headers + body text. */
int resp_simple(struct request *r, int status, const char *body);

/* PHP's reason phrase of an HTTP status, as php-fpm sends it; NULL for a code it has none for. */
const char *http_reason(int status);
/* "Status: NNN Reason\r\n" (or "Status: NNN\r\n") into buf; its length. */
int http_status_line(char *buf, size_t cap, int status);

/*
 * An answer that cannot be completed: what was written goes out, then the
 * connection is closed without END_REQUEST, so the web server sees the
 * upstream end early (nginx: "upstream prematurely closed", the client's
 * body cut) instead of a complete answer with a piece missing.
 */
void req_cut(struct request *r);

/*
 * Ends the request on the wire now (STDOUT end, END_REQUEST) while the
 * handler runs on; later output is dropped.  php's fastcgi_finish_request().
 */
int req_finish_early(struct request *r);

#endif
