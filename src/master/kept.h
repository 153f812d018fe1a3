/*
 * Kept connections a worker let go, held by the master until their next
 * request (kept.c).
 *
 * With FCGI_KEEP_CONN the web server owns the connection (FastCGI 1.0,
 * §3.5): nginx reuses a cached one at any moment, and retries a request
 * whose cached connection turns out closed only when it is idempotent (a
 * POST gets 502 Bad Gateway).  So a worker never closes a kept connection
 * it must stop waiting on (for a connection waiting on the pool's socket,
 * the master's release, a graceful exit at max_requests, a retire, a
 * memory recycle): it sends it to the master over the pool's handoff
 * socket pair.  The master watches it and, when its next request arrives,
 * sends it back over the same pair, where an idle worker takes it as it
 * takes a connection from the pool's socket (worker.c).
 *
 * Nothing a worker sends is trusted: one descriptor per message, kept only
 * when it is a connected stream socket of the pool's address family, at
 * most KEPT_HELD_MAX per pool; the master never reads from it (a peek of
 * one byte tells a request from the web server's close).
 */
#ifndef FPMD_MASTER_KEPT_H
#define FPMD_MASTER_KEPT_H

struct master;
struct pool;

/*
 * The pool's handoff pair: p->handoff_fd (the master's end) and
 * p->handoff_worker_fd; the previous master's after a reload.  0 / -1.
 */
int kept_pool_open(struct master *m, struct pool *p);
/* Watches the master's end; 0 / -1. */
int kept_pool_start(struct master *m, struct pool *p);
/*
 * Before a reload's exec: every held connection is queued in the pair (the
 * next master reads them as if a worker had sent them).
 */
void kept_pass_on_exec(struct master *m, struct pool *p);
/*
 * Around a reload's exec, after kept_pass_on_exec: what came from workers
 * and is still open goes on to the next master (cloexec 0), or stays this
 * one's (1, the exec failed); the next master closes it (kept_adopt_discards,
 * first thing at its start).
 */
void kept_exec_discards(struct master *m, int cloexec);
void kept_adopt_discards(struct master *m);
/* The closer thread ended at the master's exit (waited for a second at most). */
void kept_closer_stop(void);
/* Closes every held connection and the pair. */
void kept_pool_close(struct master *m, struct pool *p);
/* A graceful stop: the held connections are closed now, while the web server has sent nothing on them. */
void kept_stop(struct master *m, struct pool *p);
/* Connections handed back and not taken by a worker yet: 1 when any (pm.c counts it waiting). */
unsigned kept_waiting(const struct pool *p);

#endif
