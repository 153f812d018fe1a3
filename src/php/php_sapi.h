/*
 * What the files of fpmd-php.so share (sapi.c: the SAPI and startup;
 * request.c: one request; functions.c: php-fpm's PHP functions).
 * Everything here is process-wide: one PHP per process (NTS), one request
 * at a time.
 */
#ifndef FPMD_PHP_SAPI_H
#define FPMD_PHP_SAPI_H

#include <php.h>

#include "pathinfo/pathinfo.h"

struct fpmd_php_host;
struct pool;
struct request;
struct worker;

/* log/log.h's levels, for php_host->log (its declarations stay out of PHP's namespace) */
enum { LOG_L_DEBUG = 0, LOG_L_NOTICE, LOG_L_WARNING, LOG_L_ERROR };

extern const struct fpmd_php_host *php_host;
extern struct pool *php_pool;          /* this process's pool */

/*
 * The request in progress: made by php_handle() on its stack, pointed to by
 * php_current while PHP runs it (PHP's callbacks have no context of their
 * own), NULL between requests.  Owns paths and self until the request ends.
 */
struct php_request {
	struct request *req;          /* the worker's request (params, body, output) */
	struct pathinfo paths;        /* what the params resolve to (cgi.fix_pathinfo) */
	struct pathinfo_in in;
	int have_paths;
	char *self;                   /* PHP_SELF */
};
extern struct php_request *php_current;

/*
 * The current request's CGI variables as PHP sees them (request.c): the
 * params with cgi.fix_pathinfo's changes over them.  NULL between requests.
 */
const struct pathinfo *php_request_pathinfo(void);
const char *php_request_var(const char *name, int *changed);
const char *php_request_self(void);     /* PHP_SELF */

/*
 * The parts of a request's life that php.worker's handled requests share
 * with a script's (request.c): SAPI's request info, PHP_VALUE params, the
 * end of the request's paths, fastcgi.error_header.
 */
void php_end_paths(struct php_request *pr);
void php_fill_request_info(struct php_request *pr);
void php_apply_request_ini(struct request *r);
void php_error_header(void);

/* php.worker (worker_mode.c) */
void php_worker_serve(struct worker *w);
int  php_worker_zygote_run(struct pool *pool);

const char *php_pool_name(void);
/* .user.ini files of the current request's directories, at activate time */
void php_activate_user_ini(void);
int  php_worker_init(struct worker *w);
int  php_handle(struct worker *w, struct request *r);
void php_print_modules(void);

extern const zend_function_entry php_fpmd_functions[];

#endif
