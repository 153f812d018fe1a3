/*
 * Scoreboard: one shared mapping per pool, created by the master before any
 * fork and inherited by that pool's workers only.
 *
 *   page 0   struct sb_header   published by the master, which never reads it
 *                                back: any worker of the pool can write it too
 *   page 1.. struct sb_slot[n]  slot i written by the worker that owns it only
 *
 * Numbers and fixed char arrays only: no pointers, no offsets, no sizes that
 * anybody trusts.  Readers copy a slot out (sb_slot_read), NUL-terminate the
 * strings themselves and clamp every number: a worker may be compromised and
 * the master runs as root (CVE-2021-21703 was a pointer followed here).
 *
 * Writers never lock.  A slot carries a sequence number that is odd while
 * its worker is writing, so a reader can retry instead of reading a torn
 * request (and gives up after a few tries rather than wait on a worker).
 */
#ifndef FPMD_SHM_SCOREBOARD_H
#define FPMD_SHM_SCOREBOARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "status/status.h"

#define SB_METHOD_LEN  16
#define SB_URI_LEN     512
#define SB_QUERY_LEN   512
#define SB_SCRIPT_LEN  512
#define SB_USER_LEN    64
#define SB_POOL_LEN    64

/* Request stages, in php-fpm's order (its status page names them). */
enum sb_stage {
	SB_IDLE = 0,
	SB_READING_HEADERS,
	SB_GETTING_INFO,
	SB_RUNNING,
	SB_ENDING,
	SB_FINISHING,
	SB_STAGE_MAX
};

const char *sb_stage_name(enum sb_stage s);

/*
 * A worker can take a new connection only when idle and not waiting on a
 * kept one ("parked", sb_slot.kept): php-fpm's "Idle" means "can accept".
 * A parked worker is shown as php-fpm shows one waiting for the next
 * request of a kept connection: "Reading headers", counted active.
 */
#define SB_SLOT_BUSY(s) ((s)->stage != SB_IDLE && (s)->stage != SB_FINISHING)
#define SB_SLOT_ACCEPTS(s) (!SB_SLOT_BUSY(s) && !(s)->kept)

struct sb_slot {
	volatile uint32_t seq;           /* odd while the worker writes */
	uint32_t stage;
	uint32_t pid;                    /* set by the master before fork */
	uint32_t ready;                  /* set by the worker once its handler started */
	uint32_t active_seen;            /* busy workers it counted as its request started */
	uint32_t kept;                   /* 1: waiting for the next request on a kept connection */
	uint64_t start_us;               /* process start, wall clock µs (master) */
	uint64_t requests;               /* requests served by this process */
	uint64_t accepted_us;            /* current/last request start, wall clock µs */
	uint64_t accepted_mono_us;       /* same, monotonic (for timeouts) */
	uint64_t duration_us;            /* last request duration (set when it ends) */
	uint64_t idle_since_mono_us;     /* when it became idle, monotonic */
	uint64_t content_length;
	uint64_t cpu_us;                 /* last request CPU (user + system) */
	uint64_t memory;                 /* last request's peak: PHP's, else the peak RSS (bytes) */
	/*
	 * After the last request (pm.max_memory, pm.max_idle_memory; exec pools
	 * count their program too): resident bytes (statm), and private bytes
	 * (smaps_rollup), read only when resident is over the pool's lowest
	 * limit, else 0.  The master clamps both and uses them only to pick
	 * which of its own children to replace.
	 */
	uint64_t resident;
	uint64_t private_mem;
	uint64_t hist[STATUS_HIST_BUCKETS + 1];  /* requests by duration bucket */
	uint64_t duration_sum_us;
	/*
	 * exec pools: the back-off of the worker's program, written by the
	 * worker, read (and clamped) by the pool's other workers so that the
	 * back-off is the pool's.  The master never reads them.
	 */
	uint32_t exec_failures;          /* its program's consecutive failed starts */
	uint32_t exec_pad_;
	uint64_t exec_not_before_ms;     /* monotonic ms: no start in the pool before this */
	uint64_t exec_logged_ms;         /* when it last logged a program's exit */
	char method[SB_METHOD_LEN];
	char uri[SB_URI_LEN];
	char query[SB_QUERY_LEN];
	char script[SB_SCRIPT_LEN];
	char user[SB_USER_LEN];
} __attribute__((aligned(64)));

struct sb_header {
	char     pool[SB_POOL_LEN];
	uint32_t pm;                     /* enum conf_pm */
	uint32_t nslots;
	uint64_t start_us;               /* pool start, wall clock µs */
	uint64_t requests_dead;          /* requests served by children that have exited */
	uint64_t max_children_reached;
	uint64_t slow_requests;
	uint64_t max_active;
	uint64_t max_listen_queue;
	uint64_t listen_queue;
	uint64_t listen_queue_len;       /* backlog */
	uint32_t max_children;
	uint32_t master_pid;
	/*
	 * Set by the master when it stops ticking: the next worker that starts a
	 * request pokes the pool's eventfd (WORKER_FD_WAKE) so the master looks
	 * again.  Workers only read it.
	 */
	volatile uint32_t master_sleeping;
	/*
	 * Set by the master on a SIGTERM with sigterm_drain: readiness answers
	 * 503 while the pool still serves.  Workers only read it.
	 */
	volatile uint32_t draining;
	/*
	 * Set by the first worker that logged the pool's php_value[] problems
	 * (a shared-zygote pool applies them in every worker): the others log
	 * them at debug.  The workers' own; the master never reads it.
	 */
	volatile uint32_t php_values_warned;
	/* fpmd_* metrics, the master's own counts */
	uint64_t exits[EXIT_REASONS];
	uint64_t respawns;
	uint64_t hist_dead[STATUS_HIST_BUCKETS + 1];   /* of children that exited */
	uint64_t duration_sum_dead_us;
};

struct scoreboard {
	struct sb_header *hdr;
	struct sb_slot *slots;
	unsigned nslots;
	size_t map_len;
};

int  sb_create(struct scoreboard *sb, unsigned nslots, const char *pool);
void sb_destroy(struct scoreboard *sb);
/*
 * Unmaps without touching the struct: a child drops other pools'
 * scoreboards this way, as a write to each pool's struct would copy a page
 * of the master's heap per pool into every worker (hundreds of pools).
 */
void sb_unmap(const struct scoreboard *sb);

/* A private, sanitized copy of a slot.  Returns 0, or -1 if it stayed torn. */
int sb_slot_read(const struct scoreboard *sb, unsigned i, struct sb_slot *out);
/*
 * Copy of the header.  The master publishes it, but every worker of the pool
 * can write it: the master keeps its own copy (pool_master.hdr) and never
 * reads this one; a worker's status page reads it (a worker could answer
 * anything anyway).
 */
void sb_header_read(const struct scoreboard *sb, struct sb_header *out);

/* Worker side: begin/end a write to its own slot. */
static inline void sb_write_begin(struct sb_slot *s)
{
	s->seq++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void sb_write_end(struct sb_slot *s)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
	s->seq++;
}

/* Copies a string into a fixed field, truncating, always NUL-terminated. */
void sb_strcpy(char *dst, size_t cap, const char *src);

uint64_t sb_now_us(void);        /* CLOCK_REALTIME */
uint64_t sb_mono_us(void);       /* CLOCK_MONOTONIC */

#endif
