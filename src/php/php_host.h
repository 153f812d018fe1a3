/*
 * The seam between fpmd and fpmd-php.so, the PHP SAPI.  fpmd-php.so links
 * libphp8.2 and is loaded only by a php pool's zygote (never by the master),
 * so fpmd itself and pools of other kinds pay nothing for PHP.
 *
 * The .so is built from this tree at the same time as fpmd, so it reads
 * fpmd's structs (pool, conf, request) directly; the functions it calls come
 * through this table, which keeps fpmd's symbols out of PHP's namespace (an
 * exported fpmd symbol could interpose one of libphp's of the same name).
 *
 * Ownership: fpmd owns the table and everything it points at; the .so keeps
 * a pointer to it for the life of the process.
 */
#ifndef FPMD_PHP_HOST_H
#define FPMD_PHP_HOST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FPMD_PHP_HOST_VERSION 4
#define FPMD_PHP_ENTRY "fpmd_php_entry"

struct pool;
struct worker;
struct request;
struct conf_options;
struct fcgi_param;

struct fpmd_php_host {
	unsigned version;
	const char *(*param)(const struct request *r, const char *name);
	size_t (*param_count)(const struct request *r);
	const struct fcgi_param *(*param_at)(const struct request *r, size_t i);
	ssize_t (*body_read)(struct request *r, void *buf, size_t cap);
	int (*write)(struct request *r, const void *data, size_t len);
	int (*flush)(struct request *r);
	int (*write_stderr)(struct request *r, const void *data, size_t len);
	void (*note_headers)(struct request *r, const char *block, size_t len);
	/* The script resolved from the params (req_note_script in worker/request.h). */
	void (*note_script)(struct request *r, const char *script);
	/* fastcgi_finish_request(): END_REQUEST now; the script runs on. 0 / -1 */
	int (*finish)(struct request *r);
	/* The pool's status as php-fpm's ?json&full, malloc'ed (fpm_get_status()). */
	char *(*status_json)(const struct pool *p, size_t *len);
	const char *(*http_reason)(int status);
	/* A line in fpmd's error log (level as in log/log.h). */
	void (*log)(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
	/*
	 * php.worker: the worker's loop run from the application's
	 * (worker_next_request in worker/worker.h: 1 a request was handled, 0
	 * leave); php.worker_boot = zygote: the zygote's clone loop, returning
	 * only in a clone, as its begun worker; a worker's end (never returns).
	 */
	int (*next_request)(struct worker *w,
			    int (*handle)(struct worker *w, struct request *r, void *ctx), void *ctx);
	struct worker *(*zygote_serve)(void);
	void (*leave)(struct worker *w, int status);        /* never returns */
};

/* What fpmd-php.so exports as FPMD_PHP_ENTRY. */
struct fpmd_php_entry {
	unsigned version;
	/* In the zygote, after privileges are dropped: start PHP for this pool. 0 / -1 */
	int  (*pool_start)(const struct fpmd_php_host *host, struct pool *pool,
			   const struct conf_options *opt);
	/*
	 * php.zygote = shared: PHP starts once in the shared zygote (php_start,
	 * as root, before any pool's user or settings; pools_differ: the shared
	 * pools' users or chroots differ), and each pool's zygote,
	 * cloned from it and dropped to the pool's user, applies the pool's
	 * php_value[] and friends (pool_apply).  0 / -1
	 */
	int  (*php_start)(const struct fpmd_php_host *host, const struct conf_options *opt,
			  int pools_differ);
	int  (*pool_apply)(struct pool *pool);
	/* In each worker after it forked from the zygote. 0 / -1 */
	int  (*worker_init)(struct worker *w);
	int  (*handle)(struct worker *w, struct request *r);
	void (*worker_exit)(struct worker *w);
	/* php.worker: runs the worker script in this worker (boot = worker) */
	void (*worker_serve)(struct worker *w);
	/* php.worker_boot = zygote, in the zygote after pool_start; returns only on failure */
	int  (*zygote_run)(struct pool *pool);
	/* In the zygote after pool_start: where the PHP stack is, for the slowlog. */
	size_t (*trace_layout)(void *buf, size_t cap);
	/* fpmd -i / -m: PHP's information or module list on stdout; exit status. */
	int  (*cli_info)(const struct conf_options *opt, int what);
};

#endif
