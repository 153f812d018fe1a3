/*
 * Process managers and request timeouts (pm.c): the per-pool maintenance
 * that the master runs only while there is something to watch.
 */
#ifndef FPMD_PM_H
#define FPMD_PM_H

#include "master/master.h"

/* After the pool's first children are spawned: watches and timers as needed. */
int  pm_pool_start(struct master *m, struct pool *p);
void pm_pool_stop(struct master *m, struct pool *p);
/* pm_mark() (master/pool.h) asks for a look; the loop's before-sleep hook runs the marked ones. */
void pm_run_marked(struct master *m);
/* One maintenance pass now (at a pool's start). */
void pm_tick(struct master *m, struct pool *p, int woke);
int  pm_slowlog_reopen(struct pool *p);

#endif
