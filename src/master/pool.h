/*
 * A pool as the master keeps it: struct pool (pool/pool.h, what workers and
 * handlers read) and its own part, struct pool_master (children, timers,
 * zygote, counters), which nothing outside src/master/ sees.
 *
 * Ownership: the master owns every pool and its own part (master.c creates
 * and frees them together); the own part owns its children list, its
 * timers and its zygote's channel.
 */
#ifndef FPMD_MASTER_POOL_H
#define FPMD_MASTER_POOL_H

#include <stdint.h>
#include <sys/types.h>

#include "conf/conf.h"
#include "net/listen.h"
#include "pm/policy.h"
#include "pool/pool.h"
#include "shm/scoreboard.h"

struct handler;
struct ev_watch;
struct child;
struct master;
struct pool;
struct kept_conn;

/*
 * Spawn requests sent to a zygote and not answered yet, oldest first (a
 * zygote answers in order): each holds the slot it reserved and the read
 * ends of the new worker's pipes until the answer, a failure or the
 * deadline (zygote.c).  The master never waits for a zygote.
 */
struct spawn_pending {
	struct pool *pool;
	unsigned slot;               /* ZYGOTE_SLOT_APP: the pool's app zygote, not a worker */
	int fds[3];                  /* log, stdout, stderr read ends; -1 when none */
	uint64_t at_us;              /* sent at, monotonic */
};
struct spawn_queue {
	struct spawn_pending *items;
	size_t head, len, cap;       /* items[head .. len) are waiting */
	struct ev_watch *timer;      /* the oldest one's deadline */
};

/*
 * What only the master keeps of a pool (struct pool's own).  Allocated with
 * the pool, freed with it (master.c).
 */
struct pool_master {
	struct master *master;       /* back pointer, for timer callbacks */
	int listen_inherited;
	int listen_systemd;          /* socket-activated: never unlink its path */
	struct child *children;      /* linked list */
	unsigned running;            /* children alive */
	unsigned char *slot_used;    /* the master's private record of slot use */
	unsigned fast_failures;      /* consecutive children that died young */
	struct ev_watch *respawn_timer;
	int respawn_pending;
	int reload_canary;           /* a reload waits for this pool's first ready worker */
	uint64_t requests_dead;      /* the master's own count, mirrored to the header */
	/*
	 * The master's own copy of the scoreboard's header: what it renders
	 * (pm.status_listen) and adds to.  The shared header is published from it
	 * (POOL_HDR_SET, pool_hdr_publish) and never read back: every worker of
	 * the pool can write the shared page.
	 */
	struct sb_header hdr;

	/* process manager (pm.c) */
	struct ev_watch *listen_watch;   /* edge-triggered: a connection is waiting */
	int status_fd;                   /* pm.status_listen, answered by the master; -1 = none */
	int status_systemd;              /* status_fd came from socket activation */
	struct listen_addr status_addr;
	struct ev_watch *status_watch;
	unsigned status_conns;           /* its connections open now (status_listen.c) */
	struct ev_watch *wake_watch;
	struct ev_watch *pm_timer;       /* armed only while there is something to do */
	unsigned pm_period_ms;           /* current period, 0 = disarmed */
	uint64_t last_tick_us;
	uint64_t look_due_us;            /* a flood's deferred look, brought forward to then */
	int pm_marked;                   /* a look is due before the loop sleeps (pm_mark) */
	int pm_marked_woke;              /* ... a connection or a request's start asked for it */
	int pm_marked_other;             /* ... something else did (a timer, a reap): not skipped */
	struct pm_memory pm_mem;         /* what pm_decide() remembers between looks */
	unsigned floor;                  /* fpmctl scale: keep at least this many (until reload) */
	uint64_t max_children_reached;
	uint64_t busy_said_us;           /* "seems busy": once a second at most, as php-fpm's */
	uint64_t max_active;
	uint64_t max_listen_queue;
	uint64_t slow_requests;
	uint64_t kept_released;          /* kept connections given up for waiting ones */
	/* kept connections workers let go, held until their next request (kept.c) */
	struct ev_watch *handoff_watch;
	struct kept_conn *held;
	unsigned nheld;
	struct ev_watch *held_timer;     /* request_keepalive_timeout, while any is held */
	struct ev_watch *resend_timer;   /* requests waiting for room in the workers' queue */
	struct ev_watch *pause_timer;    /* handoff_watch off after a worker sent what no worker sends */
	int handoff_paused;
	int slowlog_fd;
	/* php pools: the zygote that clones the workers (zygote.c); -1 / NULL when none */
	int zygote_fd;                   /* SOCK_SEQPACKET to it */
	struct child *zygote;            /* its pid and output pipes; not in children; pid 0 while
					    the shared zygote has not answered for it (app zygote) */
	int zygote_ready;                /* PHP started: it answers spawn requests */
	struct spawn_queue spawnq;       /* asked of its zygote, not answered yet */
	unsigned spawning;               /* of this pool, in its zygote's queue or the shared one */
	unsigned zygote_failures;        /* consecutive early deaths, for the back-off */
	struct ev_watch *zygote_watch;   /* readiness of a restarted zygote */
	struct ev_watch *zygote_timer;   /* restart after a back-off */
	int zygote_awaits_shared;        /* an app zygote to clone once the shared zygote is ready */
	unsigned char zygote_info[256];  /* what its handler sent with "ready" (php: trace layout) */
	size_t zygote_info_len;
};

/*
 * Asks for one maintenance pass of the pool before the loop sleeps again
 * (pm_run_marked in pm.c, the loop's before-sleep hook): however many events
 * ask for it in one batch, the pool is looked at once.  woke says a
 * connection arrived (or a worker started a request while the master
 * slept).  A mark only: whoever marks does not call into the process
 * managers.
 */
static inline void pm_mark(struct pool *p, int woke)
{
	p->own->pm_marked = 1;
	if (woke)
		p->own->pm_marked_woke = 1;
	else
		p->own->pm_marked_other = 1;
}

/* A child process of a pool, as the master knows it. */
struct child {
	pid_t pid;
	struct pool *pool;           /* NULL for a previous generation's child (reload) */
	char pool_name[64];          /* kept for logs, whatever the generation */
	int decorate;                /* decorate_workers_output */
	unsigned slot;
	uint64_t start_mono_us;
	int quitting;                /* sent SIGQUIT by the master */
	int idle_kill;               /* retired by the pm: not respawned */
	int start_killed;            /* killed for process.start_timeout (pm.c): a failed start */
	uint64_t term_sent_us;       /* request_terminate_timeout: SIGTERM sent at (monotonic) */
	uint64_t slow_logged_for;    /* accepted_us of the request already slowlogged */
	uint64_t torn_since_us;      /* its slot read torn since (a write in progress), 0 = read whole */
	uint64_t release_sent_us;    /* asked to give up its kept connection at (monotonic) */
	uint64_t memory_sent_us;     /* pm.max_memory / max_idle_memory: SIGQUIT sent at (monotonic) */
	uint64_t direct_idle_since;  /* exec.mode = direct: its program seen waiting in accept()
				      * since (monotonic µs), 0 = not seen so */
	struct child_pipe {
		int fd;
		struct ev_watch *watch;
		char *buf;
		size_t len, cap;
	} out, err, log;
	struct child *next;
};

/* Sets a header field in the master's copy and publishes it to the workers'. */
#define POOL_HDR_SET(p, field, value) \
	((p)->own->hdr.field = (value), (p)->sb.hdr->field = (p)->own->hdr.field)
/* Publishes the master's copy of the counters kept as arrays or sums (children.c). */
void pool_hdr_publish_dead(struct pool *p);

#endif
