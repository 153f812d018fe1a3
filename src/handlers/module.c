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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fpmd/module.h"
#include "log/log.h"
#include "master/pool.h"
#include "worker/request.h"
#include "worker/worker.h"

#define MODULE_HEADERS_MAX 8192

struct fpmd_request {
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

static const char *host_param(const struct fpmd_request *rq, const char *name)
{
	return req_param(rq->r, name);
}

static int host_param_at(const struct fpmd_request *rq, size_t i, const char **name,
			 const char **value)
{
	const struct fcgi_param *p = req_param_at(rq->r, i);
	if (!p)
		return -1;
	*name = p->name;
	*value = p->value;
	return 0;
}

static long host_read_body(struct fpmd_request *rq, void *buf, size_t cap)
{
	return (long)req_body_read(rq->r, buf, cap);
}

static int host_set_status(struct fpmd_request *rq, int status)
{
	if (rq->sent || status < 100 || status > 599)
		return -1;
	rq->status = status;
	return 0;
}

/* Header names are tokens, values have no line breaks: a module cannot split the response. */
static int host_add_header(struct fpmd_request *rq, const char *name, const char *value)
{
	if (rq->sent || !name || !*name || !value)
		return -1;
	for (const char *p = name; *p; p++)
		if (!isgraph((unsigned char)*p) || *p == ':')
			return -1;
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return -1;
	if (strcasecmp(name, "Status") == 0)
		return host_set_status(rq, atoi(value));
	int n = snprintf(rq->headers + rq->hlen, sizeof(rq->headers) - rq->hlen, "%s: %s\r\n", name,
			 value);
	if (n < 0 || (size_t)n >= sizeof(rq->headers) - rq->hlen) {
		rq->overflow = 1;
		return -1;
	}
	rq->hlen += (size_t)n;
	return 0;
}

static int send_headers(struct fpmd_request *rq)
{
	if (rq->sent)
		return 0;
	rq->sent = 1;
	char head[64];
	int n = snprintf(head, sizeof(head), "Status: %d %s\r\n", rq->status, http_reason(rq->status));
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

static int host_write(struct fpmd_request *rq, const void *data, size_t len)
{
	if (send_headers(rq) < 0)
		return -1;
	return len ? resp_write(rq->r, data, len) : 0;
}

static int host_flush(struct fpmd_request *rq)
{
	if (send_headers(rq) < 0)
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
	struct fpmd_request rq;
	rq.r = r;
	rq.status = 200;
	rq.hlen = 0;
	rq.sent = 0;
	rq.overflow = 0;
	int rc = st->mod->handle(st->app, &rq);
	if (r->aborted)
		return -1;
	if (rc < 0 && !rq.sent) {
		log_error("[pool %s] module %s failed on %s %s", w->pool->conf->name,
			  st->mod->name ? st->mod->name : "?", req_param(r, "REQUEST_METHOD"),
			  req_param(r, "REQUEST_URI"));
		return resp_simple(r, 500, "500 Internal Server Error\n") < 0 ? -1 : 0;
	}
	if (send_headers(&rq) < 0)
		return -1;
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
