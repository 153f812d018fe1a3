/*
 * The handler interface every kind of pool implements.  ping and status are
 * handlers too and are matched first, whatever the pool's app.type.
 *
 *   prefork_start  optional; once per pool, in the pool's zygote
 *                  (worker/zygote.c), whose clones are the workers: a php
 *                  pool starts PHP here so opcache memory is shared
 *   worker_init    in the worker, after privileges are dropped; 0 / -1
 *   handle         one request; returns the FastCGI appStatus (0 = ok), or
 *                  -1 when the connection can no longer be used
 *   serve          optional; replaces the worker's accept loop when the
 *                  handler's program accepts on the pool socket itself
 *                  (exec.mode = direct) or runs the loop from its own
 *                  (php.worker: worker_next_request); returns when the
 *                  worker must leave
 *   zygote_run     optional, in the pool's zygote after prefork_start: runs
 *                  the handler's program, which asks for workers itself
 *                  (worker_zygote_serve: php.worker_boot = zygote); returns
 *                  only when the program failed or ended before that
 *   worker_exit    optional; before the worker exits normally
 */
#ifndef FPMD_HANDLER_H
#define FPMD_HANDLER_H

#include <sys/types.h>

#include "conf/conf.h"

struct conf_options;

struct pool;
struct worker;
struct request;

struct handler {
	const char *name;
	int  (*prefork_start)(struct pool *pool);
	int  (*worker_init)(struct worker *w);
	int  (*handle)(struct worker *w, struct request *r);
	void (*serve)(struct worker *w);
	int  (*zygote_run)(struct pool *pool);
	/* the worker is ready (scoreboard) when it first waits for a request, not when it began */
	int  ready_when_waiting;
	void (*worker_exit)(struct worker *w);
	/*
	 * optional, php.zygote = shared: shared_start in the shared zygote (PHP
	 * starts once for every shared pool; pools_differ: their users or
	 * chroots differ, so what one caches must be guarded from the others),
	 * pool_join in each pool's zygote cloned from it, after privileges are
	 * dropped (the pool's settings)
	 */
	int  (*shared_start)(const struct conf_options *opt, int pools_differ);
	int  (*pool_join)(struct pool *pool);
	/* optional: a program the worker runs for its requests (exec), whose memory is the worker's too */
	pid_t (*program)(struct worker *w);
	/* optional, in the zygote: bytes sent to the master with "ready" (php: php_trace_layout) */
	size_t (*zygote_info)(void *buf, size_t cap);
	/*
	 * optional, in the master, from the zygote's info (untrusted bytes):
	 * slowlog_frames appends the application's frames of a stuck worker to
	 * buf (frames written, or -1 with errno); powered_by is a header line for
	 * the master's own answers to the pool's clients ("" for none)
	 */
	int  (*slowlog_frames)(pid_t pid, const void *info, size_t info_len, int depth, char *buf,
			       size_t cap);
	const char *(*powered_by)(const void *info, size_t info_len);
};

/* The handler for an app.type, or NULL when fpmd was built without it. */
const struct handler *handler_for_app(enum conf_app app);
/* The handler for a pool: its app.type's, in the mode the pool asks for. */
const struct handler *handler_for_pool(const struct pool_conf *pc);

/* php.c: fpmd-php.so, loaded on demand (only in php pools' zygotes and for -i/-m). */
struct fpmd_php_entry;
struct conf_options;
const struct fpmd_php_entry *php_library_load(void);
int php_library_path(char *buf, size_t cap);
int php_cli_info(const struct conf_options *opt, int what);

extern const struct handler handler_ping;
extern const struct handler handler_status;

#include <stddef.h>
#include "status/status.h"

#define STATUS_NO_CACHE_HEADERS "Expires: Thu, 01 Jan 1970 00:00:00 GMT\r\n" \
	"Cache-Control: no-cache, no-store, must-revalidate, max-age=0\r\n"

/*
 * Set by the master: whether pid is one of the pool's own workers (its child
 * list).  The master's status page reads /proc, as root, only for those: a
 * slot's pid is its worker's to write.
 */
extern int (*status_pid_is_pools)(const struct pool *pool, pid_t pid);

/*
 * The status page of a pool, from its scoreboard (status.c).  master_pid:
 * the master's pid as the caller knows it (getpid() in the master, getppid()
 * in a worker), never the scoreboard's, which a worker can write.
 */
struct sb_header;
/* own_hdr: the master's copy of the scoreboard's header (in the master), NULL in a worker. */
char *status_page(const struct pool *pool, int listen_fd, const struct sb_header *own_hdr,
		  const char *query, pid_t master_pid, enum status_format *fmt, size_t *len);

/*
 * ping.path?ready[&queue=N] (status.c): 1 ready, 0 saturated (see
 * status_ready), -1 on error; why gets the line to answer with.
 */
int ping_ready(const struct pool *pool, int listen_fd, const struct sb_header *own_hdr,
	       const char *query, char *why, size_t cap);

#endif
