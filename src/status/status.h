/*
 * Status page rendering: a snapshot of a pool in, bytes out.  Pure: the
 * worker builds the snapshot from the scoreboard; this file only formats.
 * Field names, order and formats follow php-fpm 8.2's status page so
 * existing scrapers and dashboards keep working.
 *
 * Ownership: the caller owns the snapshot; status_render returns a malloc'ed
 * buffer the caller frees.
 */
#ifndef FPMD_STATUS_H
#define FPMD_STATUS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* STATUS_LIVE (?html&live): fpmd's dashboard page, which reads ?json&full by itself. */
enum status_format { STATUS_TEXT = 0, STATUS_JSON, STATUS_XML, STATUS_HTML, STATUS_OPENMETRICS,
		     STATUS_LIVE };

/* Request duration histogram buckets (seconds), OpenMetrics' le= bounds; +Inf is implied. */
#define STATUS_HIST_BUCKETS 11
extern const double status_hist_bounds[STATUS_HIST_BUCKETS];

enum status_exit_reason { EXIT_MAX_REQUESTS = 0, EXIT_QUIT, EXIT_IDLE, EXIT_TIMEOUT, EXIT_CRASH,
			  EXIT_SIGNAL, EXIT_ERROR, EXIT_MAX_MEMORY, EXIT_REASONS };
extern const char *const status_exit_reason_names[EXIT_REASONS];

/* fpmd's own metrics, beyond php-fpm's (OpenMetrics only, names fpmd_*). */
struct status_extra {
	uint64_t max_children, min_spare, max_spare, max_requests;
	uint64_t exits[EXIT_REASONS];
	uint64_t respawns;
	uint64_t hist[STATUS_HIST_BUCKETS + 1];   /* per bucket (not cumulative), last = +Inf */
	uint64_t hist_sum_us;
};

struct status_pool {
	const struct status_extra *extra;   /* NULL: php-fpm's metrics only */
	const char *pool;
	const char *pm;
	time_t start_time;
	time_t now;
	uint64_t accepted_conn;
	uint64_t listen_queue;
	uint64_t max_listen_queue;
	uint64_t listen_queue_len;
	uint64_t idle;
	uint64_t active;
	uint64_t total;
	uint64_t max_active;
	uint64_t max_children_reached;
	uint64_t slow_requests;
	uint64_t memory_peak;
	/*
	 * fpmd's: the pool's memory now, read from /proc at scrape time (full
	 * pages and OpenMetrics only): the sum of its workers' PSS when the
	 * answering process may read their smaps_rollup, else the sum of their
	 * anonymous resident memory (statm).  0 = not computed.
	 */
	uint64_t pool_memory;
	const char *pool_memory_kind;      /* "pss" or "anon" */
};

struct status_proc {
	int pid;
	const char *state;
	time_t start_time;
	uint64_t requests;
	uint64_t request_duration_us;
	const char *method;
	const char *uri;           /* path */
	const char *query;         /* appended as ?query when not empty */
	uint64_t content_length;
	const char *user;          /* "-" when empty */
	const char *script;
	double last_cpu;           /* percent */
	uint64_t last_memory;
};

/*
 * Picks the format from a QUERY_STRING by php-fpm's precedence (html > xml >
 * json > openmetrics); html with live is the dashboard.
 */
enum status_format status_format_from_query(const char *query, int *full);
const char *status_content_type(enum status_format f);

char *status_render(const struct status_pool *p, const struct status_proc *procs, size_t nprocs,
		    enum status_format f, int full, size_t *len);

/*
 * Readiness, for load balancers and Kubernetes: ping.path?ready.  A pool is
 * saturated, hence not ready, when it has no idle worker, may not start
 * another (total >= max_children) and more than max_queue connections wait
 * in its listen queue.  A busy pool that can still grow, or whose queue is
 * short, is ready: taking it out of rotation would only move the load.
 */
struct status_ready_query {
	int asked;             /* "ready" is in the query */
	uint64_t max_queue;    /* "queue=N"; 0 when absent */
};

void status_ready_parse(const char *query, struct status_ready_query *q);
/* 1 ready, 0 saturated; why gets one line either way ("ready: ..." / "saturated: ..."). */
int status_ready(const struct status_pool *p, uint64_t max_children, uint64_t max_queue, char *why,
		 size_t cap);

#endif
