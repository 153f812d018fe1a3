/*
 * ping.path: a liveness answer from a worker that went through accept, the
 * FastCGI parser and the response writer, as php-fpm's does.
 */
#include "handlers/handler.h"

#include <string.h>

#include "master/pool.h"
#include "worker/request.h"
#include "worker/worker.h"


static int ping_handle(struct worker *w, struct request *r)
{
	const char *resp = w->pool->conf->ping_response ? w->pool->conf->ping_response : "pong";
	if (resp_headers(r, 200, "text/plain", STATUS_NO_CACHE_HEADERS) < 0)
		return -1;
	const char *method = req_param(r, "REQUEST_METHOD");
	if (method && strcmp(method, "HEAD") == 0)
		return 0;
	return resp_puts(r, resp) < 0 ? -1 : 0;
}

const struct handler handler_ping = {
	.name = "ping",
	.handle = ping_handle,
};
