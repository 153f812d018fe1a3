/*
 * app.type = module: a C shared object (include/fpmd/module.h) loaded into
 * each worker after it dropped privileges.  The module sees only the host
 * function table below; fpmd's own request API stays private.
 *
 * A module that crashes takes its worker with it: the master logs the
 * signal and respawns with back-off, and emergency_restart_* applies, so a
 * module that crashes at every start cannot make a fork storm.
 */
#include "handlers/handler.h"

#include <ctype.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fpmd/module.h"
#include "log/log.h"
#include "pool/pool.h"
#include "worker/request.h"
#include "worker/worker.h"

#define MODULE_HEADERS_MAX 8192

/*
 * One request's state.  The module never gets its address: its handle is a
 * token (see live()), so one kept past its request cannot reach the next
 * one, which would otherwise sit at the same stack address.
 */
struct mod_req {
	struct request *r;
	int status;
	char headers[MODULE_HEADERS_MAX];
	size_t hlen;
	int sent;
	int overflow;
};

struct module_state {
	void *dl;
	const struct fpmd_module *mod;
	void *app;                   /* the module's own state from init */
};

static const char *pool_name;   /* for module log lines */
static const char *mod_name = "?";

/* The request being handled, and the token standing for it; none between requests. */
static struct mod_req *current;
static uintptr_t current_token;
static uint64_t generation;
static int stale_logged;        /* once per request */
static struct request *exit_watch;   /* set while handle runs: exit() then is a failure */

/* Odd, so never the address of anything; different for every request. */
static struct fpmd_request *new_token(void)
{
	generation++;
	current_token = (uintptr_t)((generation << 1) | 1u);
	stale_logged = 0;
	return (struct fpmd_request *)current_token;
}

/* The state behind a handle, or NULL (logged) for one that is not this request's. */
static struct mod_req *live(const struct fpmd_request *h)
{
	if (current && (uintptr_t)h == current_token)
		return current;
	if (!stale_logged)
		log_error("[pool %s] child %d: module %s used a request handle after its request "
			  "ended (or one it was never given); the call is refused",
			  pool_name ? pool_name : "?", (int)getpid(), mod_name);
	stale_logged = 1;
	return NULL;
}

static const char *host_param(const struct fpmd_request *h, const char *name)
{
	const struct mod_req *rq = live(h);
	return rq ? req_param(rq->r, name) : NULL;
}

static int host_param_at(const struct fpmd_request *h, size_t i, const char **name,
			 const char **value)
{
	const struct mod_req *rq = live(h);
	const struct fcgi_param *p = rq ? req_param_at(rq->r, i) : NULL;
	if (!p)
		return -1;
	*name = p->name;
	*value = p->value;
	return 0;
}

static long host_read_body(struct fpmd_request *h, void *buf, size_t cap)
{
	struct mod_req *rq = live(h);
	return rq ? (long)req_body_read(rq->r, buf, cap) : -1;
}

static int set_status(struct mod_req *rq, int status)
{
	if (rq->sent || status < 100 || status > 599)
		return -1;
	rq->status = status;
	return 0;
}

static int host_set_status(struct fpmd_request *h, int status)
{
	struct mod_req *rq = live(h);
	return rq ? set_status(rq, status) : -1;
}

/* Header names are tokens, values have no line breaks: a module cannot split the response. */
static int host_add_header(struct fpmd_request *h, const char *name, const char *value)
{
	struct mod_req *rq = live(h);
	if (!rq || rq->sent || !name || !*name || !value)
		return -1;
	for (const char *p = name; *p; p++)
		if (!isgraph((unsigned char)*p) || *p == ':')
			return -1;
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return -1;
	if (strcasecmp(name, "Status") == 0)
		return set_status(rq, atoi(value));
	int n = snprintf(rq->headers + rq->hlen, sizeof(rq->headers) - rq->hlen, "%s: %s\r\n", name,
			 value);
	if (n < 0 || (size_t)n >= sizeof(rq->headers) - rq->hlen) {
		rq->overflow = 1;
		return -1;
	}
	rq->hlen += (size_t)n;
	return 0;
}

static int send_headers(struct mod_req *rq)
{
	if (rq->sent)
		return 0;
	rq->sent = 1;
	char head[64];
	int n = http_status_line(head, sizeof(head), rq->status);
	struct request *r = rq->r;
	r->status = rq->status;
	r->headers_sent = 1;
	if (resp_write(r, head, (size_t)n) < 0 || resp_write(r, rq->headers, rq->hlen) < 0 ||
	    resp_write(r, "\r\n", 2) < 0)
		return -1;
	/* For access.format's %o: the block as sent, status line included. */
	char block[MODULE_HEADERS_MAX + 64];
	memcpy(block, head, (size_t)n);
	memcpy(block + n, rq->headers, rq->hlen);
	req_note_headers(r, block, (size_t)n + rq->hlen);
	return 0;
}

static int host_write(struct fpmd_request *h, const void *data, size_t len)
{
	struct mod_req *rq = live(h);
	if (!rq || send_headers(rq) < 0)
		return -1;
	return len ? resp_write(rq->r, data, len) : 0;
}

static int host_flush(struct fpmd_request *h)
{
	struct mod_req *rq = live(h);
	if (!rq || send_headers(rq) < 0)
		return -1;
	return resp_flush(rq->r);
}

static void host_log(enum fpmd_log_level level, const char *fmt, ...)
{
	static const enum log_level map[] = { LL_DEBUG, LL_NOTICE, LL_WARNING, LL_ERROR };
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(map[(unsigned)level <= FPMD_LOG_ERROR ? level : FPMD_LOG_ERROR],
		"[pool %s] child %d module: %s", pool_name ? pool_name : "?", (int)getpid(), msg);
}

static const struct fpmd_host host = {
	.abi = FPMD_MODULE_ABI,
	.param = host_param,
	.param_at = host_param_at,
	.read_body = host_read_body,
	.set_status = host_set_status,
	.add_header = host_add_header,
	.write = host_write,
	.flush = host_flush,
	.log = host_log,
};

/*
 * A module that calls exit() in handle ends its worker in the middle of a
 * request, with code 0 that would read as a worker's normal recycling: it
 * is logged as the failure it is, and the code made non-zero (70, as a
 * worker whose init failed), so the master's line is a warning too.
 */
static void exit_in_handle(void)
{
	struct request *r = exit_watch;
	if (!r)
		return;
	exit_watch = NULL;
	const char *method = req_param(r, "REQUEST_METHOD"), *uri = req_param(r, "REQUEST_URI");
	log_error("[pool %s] child %d: module %s called exit() while handling %s %s; the worker "
		  "exits and the client's connection is closed", pool_name ? pool_name : "?",
		  (int)getpid(), mod_name, method ? method : "?", uri ? uri : "?");
	_exit(70);
}

static int module_worker_init(struct worker *w)
{
	const struct pool_conf *pc = w->pool->conf;
	pool_name = pc->name;
	struct module_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -1;
	w->handler_data = st;
	st->dl = dlopen(pc->module_path, RTLD_NOW | RTLD_LOCAL);
	if (!st->dl) {
		log_error("[pool %s] cannot load module.path '%s': %s", pc->name, pc->module_path,
			  dlerror());
		return -1;
	}
	st->mod = dlsym(st->dl, "fpmd_module");
	if (!st->mod) {
		log_error("[pool %s] module '%s' does not export 'fpmd_module' (see fpmd/module.h)",
			  pc->name, pc->module_path);
		return -1;
	}
	if (st->mod->abi != FPMD_MODULE_ABI || !st->mod->handle) {
		log_error("[pool %s] module '%s' was built for module ABI %u, this fpmd speaks %u%s",
			  pc->name, pc->module_path, st->mod->abi, FPMD_MODULE_ABI,
			  st->mod->handle ? "" : " (and it has no handle function)");
		return -1;
	}
	mod_name = st->mod->name ? st->mod->name : "?";
	atexit(exit_in_handle);
	size_t n = pc->module_param.n;
	struct fpmd_setting *settings = calloc(n ? n : 1, sizeof(*settings));
	if (!settings)
		return -1;
	for (size_t i = 0; i < n; i++) {
		settings[i].key = pc->module_param.items[i].key;
		settings[i].value = pc->module_param.items[i].value;
	}
	int rc = st->mod->init ? st->mod->init(&host, settings, n, &st->app) : 0;
	free(settings);
	if (rc < 0) {
		log_error("[pool %s] module %s ('%s') failed to initialise", pc->name,
			  st->mod->name ? st->mod->name : "?", pc->module_path);
		return -1;
	}
	return 0;
}

static int module_handle(struct worker *w, struct request *r)
{
	struct module_state *st = w->handler_data;
	struct mod_req rq;
	rq.r = r;
	rq.status = 200;
	rq.hlen = 0;
	rq.sent = 0;
	rq.overflow = 0;
	current = &rq;
	struct fpmd_request *h = new_token();
	exit_watch = r;
	int rc = st->mod->handle(st->app, h);
	exit_watch = NULL;
	current = NULL;
	const char *method = req_param(r, "REQUEST_METHOD"), *uri = req_param(r, "REQUEST_URI");
	method = method ? method : "?";
	uri = uri ? uri : "?";
	if (r->aborted)
		return -1;
	if (rc < 0 && !rq.sent) {
		log_error("[pool %s] module %s failed on %s %s", w->pool->conf->name, mod_name,
			  method, uri);
		return resp_simple(r, 500, "500 Internal Server Error\n") < 0 ? -1 : 0;
	}
	if (send_headers(&rq) < 0)
		return -1;
	if (rc < 0) {
		/* Too late for a 500: the web server gets the answer with a non-zero appStatus. */
		log_error("[pool %s] module %s failed on %s %s after its answer had begun",
			  w->pool->conf->name, mod_name, method, uri);
		return 1;
	}
	return 0;
}

static void module_worker_exit(struct worker *w)
{
	struct module_state *st = w->handler_data;
	if (!st)
		return;
	if (st->mod && st->mod->shutdown)
		st->mod->shutdown(st->app);
	/* No dlclose: the process is about to exit, and a module's atexit handlers
	 * must not run after its code is unmapped. */
	free(st);
	w->handler_data = NULL;
}

const struct handler handler_module = {
	.name = "module",
	.worker_init = module_worker_init,
	.handle = module_handle,
	.worker_exit = module_worker_exit,
};
