/*
 * fpmd module API — a C application loaded into each worker of a pool
 * with `app.type = module` and `module.path = /path/to/app.so`.
 *
 * A module exports one symbol:
 *
 *     const struct fpmd_module fpmd_module = {
 *         .abi = FPMD_MODULE_ABI, .name = "hello",
 *         .init = my_init, .handle = my_handle, .shutdown = my_shutdown,
 *     };
 *
 * init     once per worker, after the worker dropped to the pool's user;
 *          settings are the pool's module.param[KEY] = VALUE lines.
 *          Return 0, or -1 to stop the worker (logged, counted like a crash).
 * handle   once per request.  Read params and the body through `host`,
 *          answer through `host`: status and headers first, then the body
 *          in as many writes as you like (streamed to the client).
 *          Return 0, or -1 if the request failed (500 if nothing was sent;
 *          after output, the answer ends with a non-zero appStatus and a
 *          log line).  The request handle is valid only until handle
 *          returns: a handle kept for later is refused (-1, NULL) and logged.
 *          Do not call exit() here: it is logged as a failure and the
 *          worker exits with a non-zero code.
 * shutdown before the worker exits normally (optional).
 *
 * Everything the module may call is in struct fpmd_host, passed to init and
 * valid for the worker's life: the module links against nothing from fpmd.
 * The ABI number changes only when these structs change incompatibly.
 * Build: cc -shared -fPIC $(fpmd --module-cflags) -o app.so app.c
 */
#ifndef FPMD_MODULE_H
#define FPMD_MODULE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FPMD_MODULE_ABI 1

struct fpmd_request;    /* opaque: one request in progress */

struct fpmd_setting {
	const char *key;
	const char *value;
};

enum fpmd_log_level { FPMD_LOG_DEBUG = 0, FPMD_LOG_NOTICE, FPMD_LOG_WARNING, FPMD_LOG_ERROR };

struct fpmd_host {
	unsigned abi;

	/* The request: a FastCGI param (CGI variable) by name, or NULL. */
	const char *(*param)(const struct fpmd_request *r, const char *name);
	/* The i-th param; returns 0, or -1 past the end. */
	int (*param_at)(const struct fpmd_request *r, size_t i, const char **name, const char **value);
	/* Reads the body: bytes read, 0 at its end, -1 if the client went away. */
	long (*read_body)(struct fpmd_request *r, void *buf, size_t cap);

	/* The response: status (default 200) and headers, before the first write. */
	int (*set_status)(struct fpmd_request *r, int status);
	int (*add_header)(struct fpmd_request *r, const char *name, const char *value);
	/* Body bytes (headers go out first); 0, or -1 if the client went away. */
	int (*write)(struct fpmd_request *r, const void *data, size_t len);
	/* Sends what was written so far to the client now. */
	int (*flush)(struct fpmd_request *r);

	/* A line in fpmd's error log, with the pool and pid. */
	void (*log)(enum fpmd_log_level level, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));
};

struct fpmd_module {
	unsigned abi;           /* FPMD_MODULE_ABI */
	const char *name;
	int  (*init)(const struct fpmd_host *host, const struct fpmd_setting *settings, size_t n,
		     void **state);
	int  (*handle)(void *state, struct fpmd_request *r);
	void (*shutdown)(void *state);
};

#ifdef __cplusplus
}
#endif

#endif
