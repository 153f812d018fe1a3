/*
 * What the files of fpmd-php.so share (sapi.c: the SAPI and startup;
 * request.c: one request; functions.c: php-fpm's PHP functions).
 * Everything here is process-wide: one PHP per process (NTS), one request
 * at a time.
 */
#ifndef FPMD_PHP_SAPI_H
#define FPMD_PHP_SAPI_H

#include <php.h>

struct fpmd_php_host;
struct pool;
struct request;
struct worker;

extern const struct fpmd_php_host *php_host;
extern struct pool *php_pool;          /* this process's pool */
extern struct request *php_current;    /* the request in progress, NULL between requests */

/* The current request's resolved paths (request.c); NULL between requests. */
struct php_request_paths {
	const char *script, *script_name, *path_info, *path_translated, *php_self;
};
const struct php_request_paths *php_request_paths(void);

const char *php_pool_name(void);
/* .user.ini files of the current request's directories, at activate time */
void php_activate_user_ini(void);
int  php_worker_init(struct worker *w);
int  php_handle(struct worker *w, struct request *r);
void php_print_modules(void);

extern const zend_function_entry php_fpmd_functions[];

#endif
