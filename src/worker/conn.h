/*
 * A worker's client connection: blocking socket I/O with reusable buffers.
 *
 * Ownership: the worker allocates one conn (and its two buffers) at start
 * and reuses it for every connection; conn_close() closes the socket only.
 */
#ifndef FPMD_CONN_H
#define FPMD_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "fcgi/fcgi.h"

#define CONN_IN_CAP  (64u * 1024u)
#define CONN_OUT_CAP (64u * 1024u)

struct conn {
	int fd;
	uint8_t *in;
	size_t in_pos, in_len;
	uint8_t *out;
	size_t out_len;
	struct fcgi_parser parser;
	int dead;                    /* the peer is gone: stop writing */
	int write_shut;              /* shutdown(SHUT_WR) done: nothing more is written */
	int send_timeout_ms;         /* request_send_timeout; 0 = none (set by the worker) */
	int send_timed_out;          /* a write waited send_timeout_ms for the peer: given up */
	/*
	 * The pool's socket and its handoff pair's workers' end, watched too
	 * while an interruptible read waits (a kept connection between
	 * requests): CONN_READ_WAITING when a connection waits on either.
	 * -1: not watched (set by the worker).
	 */
	int watch_listen_fd;
	int watch_handoff_fd;
	/*
	 * A stream record being filled in out (conn_stream_append): its header
	 * at rec_at is written when it closes (conn_stream_close, or before
	 * anything else is written or sent), so small writes are gathered into
	 * one record where they land, copied once.
	 */
	int rec_open;
	size_t rec_at, rec_len;
	uint16_t rec_id;
	uint8_t rec_type;
};

int  conn_init(struct conn *c, const struct fcgi_limits *limits);
void conn_free(struct conn *c);
void conn_attach(struct conn *c, int fd);
void conn_close(struct conn *c);

enum conn_read_result { CONN_READ_OK = 1, CONN_READ_EOF = 0, CONN_READ_ERR = -1,
			CONN_READ_QUIT = -2, CONN_READ_TIMEOUT = -3, CONN_READ_RELEASE = -4,
			CONN_READ_WAITING = -5 };
/*
 * Reads more bytes into the (empty) input buffer, waiting at most timeout_ms
 * for them (-1 = no limit): CONN_READ_TIMEOUT when nothing came in time.
 * With interruptible set, a SIGQUIT while waiting returns CONN_READ_QUIT
 * and the master's WORKER_SIG_RELEASE CONN_READ_RELEASE (used between
 * requests).
 */
enum conn_read_result conn_read(struct conn *c, int interruptible, int timeout_ms);

/* Monotonic milliseconds, for the read timeouts. */
uint64_t conn_now_ms(void);

/* Appends to the output buffer, flushing as needed.  0 / -1 (peer gone). */
int conn_write(struct conn *c, const void *p, size_t n);
/*
 * Appends n bytes (0 < n <= max_content <= 65535) to the open stream record
 * of that type and request id, or closes it and opens one: a record holds
 * at most max_content bytes.  0, or -1 when the peer is gone.
 */
int conn_stream_append(struct conn *c, uint8_t type, uint16_t id, const void *p, size_t n,
		       size_t max_content);
/* Closes the open stream record (header and padding written into out), if any. */
void conn_stream_close(struct conn *c);
/* Writes header, data and padding without copying data (large pieces). */
int conn_write_record(struct conn *c, const uint8_t hdr[FCGI_HEADER_LEN], const void *data,
		      size_t len, uint8_t padding);
int conn_flush(struct conn *c);

/* Waits for fd or a signal.  1 readable, 0 interrupted or timed out. */
int wait_readable(int fd, int timeout_ms);

/*
 * Waiting for connections: an epoll set holding the listening socket with
 * EPOLLEXCLUSIVE, so a new connection wakes one idle worker, not all of them
 * (poll waiters are all woken: a thundering herd).  -1 if it cannot be made.
 */
int listen_wait_open(int listen_fd, int handoff_fd);
#define LISTEN_WAIT_HANDOFF 2u   /* epoll data of the handoff end (the socket's is 0) */
/* 1 when a connection may be waiting, 0 when interrupted (SIGQUIT). */
int listen_wait(int epfd);

#endif
