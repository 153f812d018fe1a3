/*
 * ping.path: a liveness answer from a worker that went through accept, the
 * FastCGI parser and the response writer, as php-fpm's does.
 */
#include "handlers/handler.h"

#include <string.h>

#include "pool/pool.h"
#include "worker/request.h"
#include "worker/worker.h"

/* php-fpm's exact header (its SAPI adds the default charset): monitors compare it */
#define PING_CONTENT_TYPE "text/plain;charset=UTF-8"

/*
 * ping.path?ready: the pool's readiness from the scoreboard and the listen
 * queue, 503 while saturated.  Answered here, by a worker, it can only be
 * "ready" or late: a saturated pool's ping waits in the queue like any
 * request.  pm.status_listen answers it from the master without waiting.
 */
static int ready_handle(struct worker *w, struct request *r, int head)
{
	char why[512];
	int ready = ping_ready(w->pool, WORKER_FD_LISTEN, NULL, req_param(r, "QUERY_STRING"), why, sizeof(why));
	if (resp_headers(r, ready > 0 ? 200 : 503, PING_CONTENT_TYPE, STATUS_NO_CACHE_HEADERS) < 0)
		return -1;
	return head || resp_puts(r, why) >= 0 ? 0 : -1;
}

static int ping_handle(struct worker *w, struct request *r)
{
	const char *resp = w->pool->conf->ping_response ? w->pool->conf->ping_response : "pong";
	const char *method = req_param(r, "REQUEST_METHOD");
	const char *query = req_param(r, "QUERY_STRING");
	struct status_ready_query q;
	status_ready_parse(query, &q);
	if (q.asked)
		return ready_handle(w, r, method && strcmp(method, "HEAD") == 0);
	if (resp_headers(r, 200, PING_CONTENT_TYPE, STATUS_NO_CACHE_HEADERS) < 0)
		return -1;
	if (method && strcmp(method, "HEAD") == 0)
		return 0;
	return resp_puts(r, resp) < 0 ? -1 : 0;
}

const struct handler handler_ping = {
	.name = "ping",
	.handle = ping_handle,
};
