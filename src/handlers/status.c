/*
 * pm.status_path: builds a snapshot of the pool from the scoreboard (every
 * slot copied out and sanitized by sb_slot_read) and renders it with the
 * pure status module.
 */
#include "handlers/handler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool/pool.h"
#include "net/queue.h"
#include "status/status.h"
#include "worker/request.h"
#include "worker/procmem.h"
#include "worker/worker.h"


/* A pool seen from its scoreboard; procs points into itself, so it is not copied. */
struct snapshot {
	struct status_pool sp;
	struct status_extra extra;
	struct sb_slot *slots;
	struct status_proc *procs;
	size_t n;
};

static void snapshot_free(struct snapshot *s)
{
	free(s->slots);
	free(s->procs);
}

/*
 * Builds a pool's snapshot from its scoreboard.  Shared by the status and
 * ping handlers (in a worker) and pm.status_listen (in the master): every
 * slot is copied out and sanitized by sb_slot_read, nothing in shared memory
 * is trusted.  The header's counters come from own_hdr, the master's copy,
 * when the master renders (every worker can write the shared page); a
 * worker (own_hdr NULL) reads the shared one.  0, or -1 when memory runs out.
 */
static int snapshot_take(const struct pool *pool, int listen_fd, const struct sb_header *own_hdr,
			 struct snapshot *snap)
{
	const struct scoreboard *sb = &pool->sb;
	struct sb_header hdr;
	if (own_hdr)
		hdr = *own_hdr;
	else
		sb_header_read(sb, &hdr);

	memset(snap, 0, sizeof(*snap));
	snap->slots = calloc(sb->nslots ? sb->nslots : 1, sizeof(*snap->slots));
	snap->procs = calloc(sb->nslots ? sb->nslots : 1, sizeof(*snap->procs));
	if (!snap->slots || !snap->procs) {
		snapshot_free(snap);
		return -1;
	}
	const struct pool_conf *pc = pool->conf;
	struct status_extra *extra = &snap->extra;
	*extra = (struct status_extra){
		.max_children = (uint64_t)(pc->pm_max_children > 0 ? pc->pm_max_children : 0),
		.min_spare = (uint64_t)(pc->pm_min_spare_servers > 0 ? pc->pm_min_spare_servers : 0),
		.max_spare = (uint64_t)(pc->pm_max_spare_servers > 0 ? pc->pm_max_spare_servers : 0),
		.max_requests = (uint64_t)(pc->pm_max_requests > 0 ? pc->pm_max_requests : 0),
		.respawns = hdr.respawns,
		.hist_sum_us = hdr.duration_sum_dead_us,
	};
	memcpy(extra->exits, hdr.exits, sizeof(extra->exits));
	memcpy(extra->hist, hdr.hist_dead, sizeof(extra->hist));
	struct status_pool *sp = &snap->sp;
	*sp = (struct status_pool){
		.extra = extra,
		.pool = pool->conf->name,
		.pm = conf_pm_name(pool->conf->pm),
		.start_time = (time_t)(hdr.start_us / 1000000u),
		.now = time(NULL),
		.listen_queue_len = hdr.listen_queue_len,
		.listen_queue = hdr.listen_queue,
		.max_listen_queue = hdr.max_listen_queue,
		.max_children_reached = hdr.max_children_reached,
		.slow_requests = hdr.slow_requests,
		.accepted_conn = hdr.requests_dead,
	};
	/* The live queue, for unix sockets too (php-fpm reports 0 there). */
	unsigned pending = 0, backlog = 0;
	if (listen_queue_len(listen_fd, pool->addr.family, &pending, &backlog) == 0) {
		sp->listen_queue = pending;
		if (pending > sp->max_listen_queue)
			sp->max_listen_queue = pending;
	}
	size_t n = 0;
	uint64_t mono_now = sb_mono_us(), seen_max = 0;
	for (unsigned i = 0; i < sb->nslots; i++) {
		struct sb_slot *s = &snap->slots[n];
		sb_slot_read(sb, i, s);
		if (s->pid == 0)
			continue;
		struct status_proc *pr = &snap->procs[n];
		int busy = SB_SLOT_BUSY(s);
		/* the worker's count, clamped as the master's own total clamps it (children.c) */
		if (s->requests > (1ull << 40))
			s->requests = 0;
		sp->accepted_conn += s->requests + (busy ? 1 : 0);
		if (SB_SLOT_ACCEPTS(s))
			sp->idle++;
		else
			sp->active++;
		/* a worker's count of its busy peers, clamped: it is the worker's to write */
		uint64_t seen = s->active_seen < sb->nslots ? s->active_seen : sb->nslots;
		if (seen > seen_max)
			seen_max = seen;
		if (s->memory > sp->memory_peak)
			sp->memory_peak = s->memory;
		for (int b = 0; b <= STATUS_HIST_BUCKETS; b++)
			extra->hist[b] += s->hist[b] > (1ull << 40) ? 0 : s->hist[b];
		extra->hist_sum_us += s->duration_sum_us > (1ull << 60) ? 0 : s->duration_sum_us;
		pr->pid = (int)s->pid;
		pr->state = sb_stage_name(s->kept ? SB_READING_HEADERS : (enum sb_stage)s->stage);
		pr->start_time = (time_t)(s->start_us / 1000000u);
		pr->requests = s->requests + (busy ? 1 : 0);
		pr->request_duration_us = busy && mono_now > s->accepted_mono_us
			? mono_now - s->accepted_mono_us : s->duration_us;
		/* parked: how long it has waited for the kept connection's next request */
		if (s->kept && mono_now > s->idle_since_mono_us)
			pr->request_duration_us = mono_now - s->idle_since_mono_us;
		pr->method = s->method;
		pr->uri = s->uri;
		pr->query = s->query;
		pr->content_length = s->content_length;
		pr->user = s->user;
		pr->script = s->script;
		if (s->kept) {
			/* waiting for the next request's headers: none yet, as php-fpm shows it */
			pr->method = pr->uri = pr->query = pr->user = pr->script = "";
			pr->content_length = 0;
		}
		if (!busy) {
			pr->last_cpu = s->duration_us ? (double)s->cpu_us * 100.0 / (double)s->duration_us : 0;
			pr->last_memory = s->memory;
		}
		n++;
	}
	snap->n = n;
	sp->total = n;
	sp->max_active = hdr.max_active > sp->active ? hdr.max_active : sp->active;
	if (seen_max > sp->max_active)
		sp->max_active = seen_max;
	return 0;
}

/* The parent of pid, from /proc/<pid>/stat; -1 when it cannot be read. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	int ppid;
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return (pid_t)ppid;
}

/*
 * The pool's memory at scrape time: its workers' PSS summed (what the pool
 * costs: shared pages are split between the processes that share them, so
 * the sum is not inflated by the zygote's pages and the libraries).  Only
 * the master (pm.status_listen, root) or a worker whose pool is dumpable
 * may read a sibling's smaps_rollup; otherwise the sum of the workers'
 * anonymous resident memory (statm: resident less file-backed), which
 * counts pages still shared with the zygote once per worker.  A pid comes
 * from a slot, which its worker writes: it is read only if it is a child
 * of the master (master_pid: the caller's own knowledge, not the
 * scoreboard's header, which a worker can write too).
 */
int (*status_pid_is_pools)(const struct pool *pool, pid_t pid);

static void pool_memory(const struct pool *pool, struct snapshot *snap, pid_t master_pid)
{
	uint64_t pss = 0, anon = 0;
	int pss_ok = 1;
	/* in the master, its own list of the pool's workers decides (another pool's are children too) */
	int in_master = master_pid == getpid() && status_pid_is_pools;
	for (size_t i = 0; i < snap->n; i++) {
		pid_t pid = (pid_t)snap->procs[i].pid;
		if (pid <= 0 || (in_master ? !status_pid_is_pools(pool, pid) : parent_of(pid) != master_pid))
			continue;
		uint64_t res, shr;
		if (procmem_statm(pid, &res, &shr) == 0 && res > shr)
			anon += res - shr;
		struct procmem_rollup r;
		if (pss_ok && procmem_rollup(pid == getpid() ? 0 : pid, &r) == 0)
			pss += r.pss;
		else
			pss_ok = 0;
	}
	snap->sp.pool_memory = pss_ok ? pss : anon;
	snap->sp.pool_memory_kind = pss_ok ? "pss" : "anon";
}

/* Renders a pool's status page; a malloc'ed body, or NULL when memory runs out. */
char *status_page(const struct pool *pool, int listen_fd, const struct sb_header *own_hdr,
		  const char *query, pid_t master_pid, enum status_format *fmt, size_t *len)
{
	struct snapshot snap;
	int full;
	*fmt = status_format_from_query(query, &full);
	if (snapshot_take(pool, listen_fd, own_hdr, &snap) < 0)
		return NULL;
	if (full || *fmt == STATUS_OPENMETRICS)
		pool_memory(pool, &snap, master_pid);
	char *body = status_render(&snap.sp, snap.procs, snap.n, *fmt, full, len);
	snapshot_free(&snap);
	return body;
}

int ping_ready(const struct pool *pool, int listen_fd, const struct sb_header *own_hdr,
	       const char *query, char *why, size_t cap)
{
	struct status_ready_query q;
	struct snapshot snap;
	status_ready_parse(query, &q);
	if (snapshot_take(pool, listen_fd, own_hdr, &snap) < 0) {
		snprintf(why, cap, "error: out of memory\n");
		return -1;
	}
	int ready = status_ready(&snap.sp, snap.extra.max_children, q.max_queue, why, cap);
	/* The master's flag: it stops, take it out of rotation (its own copy, in the master). */
	if (own_hdr ? own_hdr->draining : pool->sb.hdr && pool->sb.hdr->draining) {
		char rest[512];
		const char *colon = strchr(why, ':');
		snprintf(rest, sizeof(rest), "%s", colon ? colon : ": \n");
		snprintf(why, cap, "draining%s", rest);
		ready = 0;
	}
	snapshot_free(&snap);
	return ready;
}

static int status_handle(struct worker *w, struct request *r)
{
	enum status_format f;
	size_t len = 0;
	char *body = status_page(w->pool, WORKER_FD_LISTEN, NULL, req_param(r, "QUERY_STRING"), getppid(),
				 &f, &len);
	int rc;
	if (!body) {
		rc = resp_simple(r, 500, "Internal error. Please review log file for errors.");
	} else {
		rc = resp_headers(r, 200, status_content_type(f), STATUS_NO_CACHE_HEADERS);
		const char *method = req_param(r, "REQUEST_METHOD");
		if (rc == 0 && !(method && strcmp(method, "HEAD") == 0))
			rc = resp_write(r, body, len);
	}
	free(body);
	return rc < 0 ? -1 : 0;
}

const struct handler handler_status = {
	.name = "status",
	.handle = status_handle,
};
