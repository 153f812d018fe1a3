/*
 * The process managers' decisions (pm = dynamic, ondemand), as one pure
 * function: what a look at a pool found in, what to do out.  No I/O, no
 * clock, no process: master/pm.c looks (scoreboard, listen queue), calls
 * pm_decide() and acts (fork, SIGQUIT, log).  Unit-tested in
 * tests/unit/test_pm_policy.c against php-fpm's rules.
 */
#ifndef FPMD_PM_POLICY_H
#define FPMD_PM_POLICY_H

#include <stdint.h>

#include "conf/conf.h"

/* What one look at a pool found.  Filled by the master for each decision. */
struct pm_view {
	unsigned idle;          /* can accept now (a spawn not answered yet included) */
	unsigned active;        /* in a request */
	unsigned parked;        /* between two requests of a kept connection: cannot accept */
	unsigned running;       /* every child, leaving ones included */
	unsigned pending;       /* connections in the listening socket's queue */
	int has_idle;           /* longest_idle_us is about a worker */
	uint64_t longest_idle_us;   /* how long the worker idle longest has been idle */
	int woke;               /* a connection (or a request's start) woke the master */
	int backing_off;        /* workers die at start: spawning waits for children.c's timer */
	int has_zygote;         /* the pool has its own zygote (php.zygote = pool) */
};

/*
 * What the process manager remembers between two decisions; one per pool,
 * owned by the master's pool (zeroed at start, spawn_rate 1).
 */
struct pm_memory {
	unsigned spawn_rate;        /* dynamic: doubles while short of idle workers */
	int max_children_warned;    /* pm.max_children reached: said once per episode */
};

/* What to do.  Several may hold at once; the master acts on them in this order. */
struct pm_actions {
	unsigned spawn;             /* new workers now */
	int busy_warning;           /* php-fpm's "seems busy" line, with spawn */
	int reached_max_children;   /* the first time in this episode: warn and count */
	const char *retire;         /* the worker idle longest goes, for this reason; NULL = none */
	unsigned release_parked;    /* kept connections to give up for waiting ones */
	int retire_zygote;          /* an idle ondemand pool lets its zygote go */
};

/*
 * floor: fpmctl scale's minimum (0 = none).  Updates *mem.  pm = static
 * spawns here only what a failed spawn left short (children.c replaces
 * one that exits) and never retires.
 */
void pm_decide(const struct pool_conf *pc, unsigned floor, struct pm_memory *mem,
	       const struct pm_view *v, struct pm_actions *out);

/*
 * Workers that die right after they start: the next spawn waits 100 ms after
 * the first, doubling with each one after it, up to 10 s (children.c).
 */
unsigned pm_respawn_delay_ms(unsigned failures_in_a_row);

#endif
