/*
 * app.type = php: the core's side.  PHP itself lives in fpmd-php.so
 * (src/php/), loaded only in a php pool's zygote, so the master and pools of
 * other kinds never map libphp.  This file finds the library, hands it the
 * host table (php/php_host.h) and forwards the handler calls.
 */
#include "handlers/handler.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"
#include "php/php_host.h"
#include "php/php_trace.h"
#include "worker/request.h"
#include "worker/worker.h"

#ifndef FPMD_PHP_LIBDIR
#define FPMD_PHP_LIBDIR "/usr/local/lib/fpmd"
#endif

static const struct fpmd_php_entry *entry;

static void host_log(int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg((enum log_level)level, 0, fmt, ap);
	va_end(ap);
}

static char *host_status_json(const struct pool *p, size_t *len)
{
	enum status_format fmt;
	return status_page(p, WORKER_FD_LISTEN, NULL, "json&full", getppid(), &fmt, len);
}

static const struct fpmd_php_host host = {
	.version = FPMD_PHP_HOST_VERSION,
	.param = req_param,
	.param_count = req_param_count,
	.param_at = req_param_at,
	.body_read = req_body_read,
	.write = resp_write,
	.flush = resp_flush,
	.write_stderr = resp_stderr,
	.note_headers = req_note_headers,
	.note_script = req_note_script,
	.finish = req_finish_early,
	.status_json = host_status_json,
	.http_reason = http_reason,
	.log = host_log,
	.next_request = worker_next_request,
	.zygote_serve = worker_zygote_serve,
	.leave = worker_leave,
};

/* Next to the binary first (a build tree, a package), then the install directory. */
int php_library_path(char *buf, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(buf, cap, "%s/fpmd-php.so", exe);
			if (access(buf, R_OK) == 0)
				return 0;
		}
	}
	snprintf(buf, cap, "%s/fpmd-php.so", FPMD_PHP_LIBDIR);
	return access(buf, R_OK) == 0 ? 0 : -1;
}

const struct fpmd_php_entry *php_library_load(void)
{
	if (entry)
		return entry;
	char path[PATH_MAX];
	if (php_library_path(path, sizeof(path)) < 0) {
		log_error("php pools need fpmd-php.so, found neither next to fpmd nor in %s: build "
			  "it with libphp8.2-embed and php8.2-dev installed (scripts/deps.sh build)",
			  FPMD_PHP_LIBDIR);
		return NULL;
	}
	/* GLOBAL: PHP's extensions (opcache.so, ...) resolve libphp's symbols through it. */
	void *dl = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	if (!dl) {
		log_error("cannot load %s: %s", path, dlerror());
		return NULL;
	}
	const struct fpmd_php_entry *e = dlsym(dl, FPMD_PHP_ENTRY);
	if (!e || e->version != FPMD_PHP_HOST_VERSION) {
		log_error("%s is not the fpmd-php.so of this fpmd (entry %s, version %u, want %u)",
			  path, e ? "found" : "missing", e ? e->version : 0, FPMD_PHP_HOST_VERSION);
		dlclose(dl);
		return NULL;
	}
	entry = e;
	return entry;
}

int php_cli_info(const struct conf_options *opt, int what)
{
	const struct fpmd_php_entry *e = php_library_load();
	return e ? e->cli_info(opt, what) : 78;
}

static int php_prefork_start(struct pool *p)
{
	const struct fpmd_php_entry *e = php_library_load();
	if (!e)
		return -1;
	return e->pool_start(&host, p, p->copt);
}

static int php_shared_start(const struct conf_options *opt, int pools_differ)
{
	const struct fpmd_php_entry *e = php_library_load();
	if (!e)
		return -1;
	return e->php_start(&host, opt, pools_differ);
}

static int php_pool_join(struct pool *p)
{
	return entry->pool_apply(p);
}

static int php_so_worker_init(struct worker *w)
{
	return entry->worker_init ? entry->worker_init(w) : 0;
}

static int php_so_handle(struct worker *w, struct request *r)
{
	return entry->handle(w, r);
}

static void php_worker_exit(struct worker *w)
{
	if (entry->worker_exit)
		entry->worker_exit(w);
}

static size_t php_zygote_info(void *buf, size_t cap)
{
	return entry && entry->trace_layout ? entry->trace_layout(buf, cap) : 0;
}

/* The master's side: what the zygote's trace layout lets it read of a worker (php_trace.c). */
static int php_slowlog_frames(pid_t pid, const void *info, size_t info_len, int depth, char *buf,
			      size_t cap)
{
	struct php_trace_layout layout;
	if (info_len != sizeof(layout)) {
		errno = ENODATA;
		return -1;
	}
	memcpy(&layout, info, sizeof(layout));
	return php_trace_of(pid, &layout, depth, buf, cap);
}

static void php_so_worker_serve(struct worker *w)
{
	entry->worker_serve(w);
}

/* php.worker_boot = zygote: PHP started (prefork_start), now the application boots. */
static int php_so_zygote_run(struct pool *p)
{
	return entry->zygote_run(p);
}

/* What every php pool's handler has; the three below differ in how the application runs. */
#define PHP_HANDLER_COMMON \
	.name = "php", \
	.prefork_start = php_prefork_start, \
	.worker_init = php_so_worker_init, \
	.handle = php_so_handle, \
	.worker_exit = php_worker_exit, \
	.zygote_info = php_zygote_info, \
	.slowlog_frames = php_slowlog_frames, \
	.powered_by = php_trace_powered_by

/* A script per request. */
const struct handler handler_php = {
	PHP_HANDLER_COMMON,
	.shared_start = php_shared_start,
	.pool_join = php_pool_join,
};

/* php.worker: the application's worker script runs the loop (php/worker_mode.c). */
const struct handler handler_php_worker = {
	PHP_HANDLER_COMMON,
	.shared_start = php_shared_start,
	.pool_join = php_pool_join,
	.serve = php_so_worker_serve,
	.ready_when_waiting = 1,
};

/*
 * php.worker_boot = zygote: the application boots once in the pool's own
 * zygote (a booted application is the pool's alone), and every worker is a
 * clone of it, returning into the application's loop.  With php.zygote =
 * shared that zygote is a clone of the shared PHP zygote that takes the
 * pool's settings (pool_join) before it boots; with pool, it starts PHP.
 */
const struct handler handler_php_worker_zygote = {
	PHP_HANDLER_COMMON,
	.shared_start = php_shared_start,
	.pool_join = php_pool_join,
	.zygote_run = php_so_zygote_run,
};
