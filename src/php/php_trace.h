/*
 * Where a PHP worker keeps its PHP stack, so the master can write the
 * slowlog's PHP frames ("[0x…] sleep() /srv/x.php:3", php-fpm's shape)
 * without loading PHP itself.  The zygote fills this in once (addresses are
 * the same in every worker it clones) and sends it with its ready message;
 * the master reads the stuck worker's memory with process_vm_readv.  Every
 * value read that way is the worker's and is treated as untrusted: reads are
 * bounded, the walk is bounded, nothing is ever dereferenced in the master.
 *
 * Plain C, no PHP headers: included by the master and by fpmd-php.so.
 */
#ifndef FPMD_PHP_TRACE_H
#define FPMD_PHP_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PHP_TRACE_MAGIC 0x70687074u   /* "phpt" */

struct php_trace_layout {
	uint32_t magic;
	uint32_t call_kind_mask;       /* ZEND_CALL_CODE | ZEND_CALL_TOP */
	uint32_t call_top_code, call_nested_code;
	uint64_t current_execute_data; /* &EG(current_execute_data) */
	uint64_t path_translated;      /* &SG(request_info).path_translated */
	uint16_t ex_func, ex_prev, ex_opline, ex_call_info;   /* zend_execute_data */
	uint16_t fn_type, fn_name, op_filename;                 /* zend_function */
	uint16_t op_lineno;                                     /* zend_op */
	uint16_t str_val;                                       /* zend_string */
	uint16_t pad;
	/* "X-Powered-By: PHP/8.2.x\r\n" when expose_php is on, else "": the master's own
	 * answers for this pool (pm.status_listen) carry it too, as php-fpm's do */
	char powered_by[40];
};

/* The pool's X-Powered-By line from an untrusted layout: "" unless well-formed. */
const char *php_trace_powered_by(const void *info, size_t len);

/*
 * Appends the PHP frames of pid (at most depth) to buf as php-fpm's slowlog
 * does.  Returns frames written, or -1 with errno (e.g. EPERM, ESRCH).
 */
int php_trace_of(pid_t pid, const struct php_trace_layout *l, int depth, char *buf, size_t cap);

#endif
