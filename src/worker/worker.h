/*
 * A worker process: one pool, one scoreboard slot, one connection at a time.
 *
 * Ownership: struct worker lives on the worker's stack for its whole life;
 * it owns its connection and the handler's per-worker state (handler_data).
 * The pool and its scoreboard are inherited from the master by fork.
 */
#ifndef FPMD_WORKER_H
#define FPMD_WORKER_H

#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>

#include "pool/pool.h"

struct fpmd_conf;

/* The fds a worker finds after fork (see worker_exec_layout in master). */
/*
 * The pool's listening socket: 0 as the layout puts it (the FastCGI
 * convention, what an exec pool's programs expect), moved above the layout
 * by worker_setup in php and module pools, whose code and the programs it
 * runs find /dev/null on 0, as php-fpm gives them (php://stdin read the pool's
 * socket until default_socket_timeout).
 */
extern int worker_fd_listen;
#define WORKER_FD_LISTEN worker_fd_listen
#define WORKER_FD_LOG    3
#define WORKER_FD_WAKE   4   /* the pool's eventfd: "a request started" while the master sleeps */
#define WORKER_FD_ACCESS 5   /* access.log, when the pool has one */
/* 6: a zygote's channel (ZYGOTE_FD_CTL), in a zygote only */
#define WORKER_FD_HANDOFF 7  /* the pool's handoff pair, the workers' end (master/kept.h) */
#define WORKER_FD_LAST   WORKER_FD_HANDOFF
#define WORKER_RESP_HEAD_MAX 8192
/* An unread request body is drained up to this much before answering ends. */
#define WORKER_DRAIN_MAX (64ull * 1024u * 1024u)
#define WORKER_DRAIN_MS  10000

struct worker {
	struct pool *pool;
	const struct fpmd_conf *global;
	struct sb_slot *slot;
	unsigned slot_index;
	pid_t master_pid;
	uint64_t requests;
	unsigned max_requests;       /* 0 = unlimited (jitter applied) */
	int access_log;              /* WORKER_FD_ACCESS is open */
	/* The last response's header block, for %o in access.format. */
	char resp_head[WORKER_RESP_HEAD_MAX];
	size_t resp_head_len;
	void *handler_data;
	/* Lines every answer of this worker carries, each ending in \r\n (php: X-Powered-By). */
	const char *extra_headers;
	struct rusage request_ru;    /* at the request's first byte: its CPU counts from there */
	int have_request_ru;
	/* /proc/self/statm and /proc/self/clear_refs, kept open (-1: none; procmem.h) */
	int statm_fd, clear_refs_fd;
	uint64_t mem_threshold;      /* the pool's lowest memory limit, 0 = none */
	/* The connection's peer address (TCP), "" on a unix socket: access.format's %R. */
	char peer_ip[64];
};

struct request;

/*
 * The worker's loop, one request at a time (worker.c): waits for the next
 * request, answers ping and status itself, and gives the pool handler's
 * requests to handle (NULL: the pool handler's own handle()).  1 after such
 * a request ended on the wire, 0 when the worker must leave (a graceful
 * stop, pm.max_requests, the master gone).  For a handler whose program
 * runs the loop itself (handler.serve: php.worker).
 */
typedef int (*worker_handle_fn)(struct worker *w, struct request *r, void *ctx);
int worker_next_request(struct worker *w, worker_handle_fn handle, void *ctx);
/* Between setup and the first request: the handler's worker_init, "ready". */
void worker_begin(struct worker *w);
/* The worker's end: its connection closed, the handler's worker_exit, _exit(status). */
void worker_leave(struct worker *w, int status) __attribute__((noreturn));

/*
 * php.worker_boot = zygote (zygote.c): the zygote's clone loop, run from
 * inside the handler's program (handler.zygote_run).  Returns only in a
 * clone: the new worker, begun (worker_begin), to serve through
 * worker_next_request and end with worker_leave.
 */
struct worker *worker_zygote_serve(void);
/* The same worker start as worker_main_forked, for a worker that returns into its program. */
struct worker *worker_forked_begin(struct pool *pool, const struct fpmd_conf *global,
				   unsigned slot, pid_t master_pid);

/* Runs a worker until it decides to exit; never returns. */
void worker_main(struct pool *pool, const struct fpmd_conf *global, unsigned slot,
		 pid_t master_pid) __attribute__((noreturn));

/* The same for a worker cloned from its pool's zygote (zygote.c), set up already. */
void worker_main_forked(struct pool *pool, const struct fpmd_conf *global, unsigned slot,
			pid_t master_pid) __attribute__((noreturn));
void worker_signals_install(void);
/* The same for a worker cloned from the shared PHP zygote: the rest of its setup, then the pool's. */
void worker_main_shared(struct pool *pool, const struct fpmd_conf *global, unsigned slot,
			pid_t master_pid) __attribute__((noreturn));
/* A php pool's zygote: starts PHP once, then clones the pool's workers on request. */
void zygote_main(struct pool *pool, const struct fpmd_conf *global, pid_t master_pid)
	__attribute__((noreturn));
/*
 * php.zygote = shared: one zygote, forked by the master after every pool is
 * open, starts PHP once (as the master's user, as php-fpm's master does) and
 * clones every shared pool's workers, which drop to their pool's user.
 */
struct handler;
void shared_zygote_main(struct pool *pools, const struct fpmd_conf *global, pid_t master_pid,
			const struct handler *h, int ctl, int out_w, int err_w, int log_w)
	__attribute__((noreturn));
#define ZYGOTE_FD_CTL 6
/* The slot of a shared zygote's spawn request that asks for a pool's app zygote instead. */
#define ZYGOTE_SLOT_APP UINT32_MAX
#define ZYGOTE_INFO_MAX 256   /* the handler's bytes in the zygote's ready message */

/* Set by the SIGQUIT handler: finish the request in flight, then exit. */
extern volatile sig_atomic_t worker_quit;

/*
 * The master's "give up your kept connection": sigqueue()d to a worker that
 * waits for the next request on a kept connection while connections queue
 * on the pool socket and no worker can be added.  The value is the slot's
 * request count when the master looked, so a signal that arrives late (the
 * worker got its next request meanwhile) is recognised and ignored.
 * A realtime signal: PHP's own signal handling never touches those.
 */
#define WORKER_SIG_RELEASE (SIGRTMIN + 2)
extern volatile sig_atomic_t worker_release;

/* A timeout directive in seconds as a poll timeout: 0 (off) becomes -1 (none). */
int worker_timeout_ms(int seconds);

/* Privileges, limits, environment: everything between fork and the first accept. */
int worker_setup(struct worker *w);

#endif
