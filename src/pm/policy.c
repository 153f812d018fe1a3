/*
 * pm_decide(): php-fpm's process-manager rules, and where fpmd departs
 * from them, in one pure function (see policy.h).  Defaults come from the
 * directive table (conf_directives.c), never from here.
 */
#include "pm/policy.h"

#include <string.h>

static unsigned min_u(unsigned a, unsigned b)
{
	return a < b ? a : b;
}

static void reached_max(struct pm_memory *mem, struct pm_actions *out)
{
	if (mem->max_children_warned)
		return;
	mem->max_children_warned = 1;
	out->reached_max_children = 1;
}

/* Connections queued beyond what the idle workers are about to take. */
static unsigned waiting_of(const struct pm_view *v)
{
	return v->pending > v->idle ? v->pending - v->idle : 0;
}

/*
 * dynamic: keep pm.min_spare_servers idle workers and no more than
 * pm.max_spare_servers, spawning 1, 2, 4 ... per look while short (php-fpm's
 * rule).  A shortfall seen on a wake-up (the first request to a pool whose
 * master slept) waits for the next look, as php-fpm's once-a-second
 * maintenance does: a request of a few milliseconds to a one-worker pool
 * does not fork a second worker each time.  Unlike php-fpm, connections
 * that wait with no idle worker to take them get workers at once, as many
 * as wait (within pm.max_children and pm.max_spawn_rate), as ondemand's
 * do: a burst is not served at the pace of a doubling once a second.
 */
static void decide_dynamic(const struct pool_conf *pc, unsigned floor, struct pm_memory *mem,
			   const struct pm_view *v, struct pm_actions *out)
{
	unsigned max = (unsigned)pc->pm_max_children;
	unsigned min_spare = (unsigned)pc->pm_min_spare_servers;
	unsigned max_spare = (unsigned)pc->pm_max_spare_servers;
	unsigned cap = (unsigned)pc->pm_max_spawn_rate;
	unsigned live = v->idle + v->active + v->parked;
	unsigned waiting = waiting_of(v);

	if (live < floor && live < max) {
		/* fpmctl scale asked for more: up to the floor at the spawn rate. */
		out->spawn = min_u(min_u(floor - live, cap), max - live);
		return;
	}
	if (v->idle > max_spare && v->has_idle && live > floor && !waiting) {
		out->retire = "above pm.max_spare_servers";
		mem->spawn_rate = 1;
		return;
	}
	int short_of_spares = v->idle < min_spare;
	if (!short_of_spares && !waiting) {
		mem->spawn_rate = 1;
		return;
	}
	/* workers die at start: children.c's timer starts them again, after the back-off */
	if (v->backing_off)
		return;
	if (v->woke && !waiting)
		return;
	if (live >= max) {
		reached_max(mem, out);
		return;
	}
	unsigned want = short_of_spares ? min_u(min_spare - v->idle, mem->spawn_rate) : 0;
	if (waiting > want)
		want = min_u(waiting, cap);
	want = min_u(want, max - live);
	out->spawn = want;
	if (want)
		mem->max_children_warned = 0;   /* php-fpm's: a worker started ends the episode */
	if (short_of_spares) {
		out->busy_warning = mem->spawn_rate >= 8;
		mem->spawn_rate = mem->spawn_rate * 2 > cap ? cap : mem->spawn_rate * 2;
	}
}

/*
 * ondemand: as many new workers as connections are waiting that idle ones
 * cannot take (php-fpm forks one per wake-up: bug #69724), within
 * pm.max_children and pm.max_spawn_rate; the worker idle longest is retired
 * once it has been idle for pm.process_idle_timeout.
 */
static void decide_ondemand(const struct pool_conf *pc, unsigned floor, struct pm_memory *mem,
			    const struct pm_view *v, struct pm_actions *out)
{
	unsigned max = (unsigned)pc->pm_max_children;
	unsigned cap = (unsigned)pc->pm_max_spawn_rate;
	unsigned live = v->idle + v->active + v->parked;
	unsigned waiting = waiting_of(v);
	/* A wake-up with no idle worker means a connection came, even if the
	 * queue could not be read. */
	if (v->woke && waiting == 0 && v->idle == 0)
		waiting = 1;
	if (waiting && v->backing_off) {
		/* workers die at start: the back-off's end spawns (children.c) */
	} else if (waiting) {
		if (live >= max) {
			reached_max(mem, out);
		} else {
			out->spawn = min_u(min_u(waiting, cap), max - live);
			mem->max_children_warned = 0;   /* a worker started ends the episode */
		}
	}
	live += out->spawn;
	if (live < floor && live < max)
		out->spawn += min_u(min_u(floor - live, cap), max - live);
	live = v->idle + v->active + v->parked + out->spawn;
	if (v->has_idle && v->pending == 0 && live > floor &&
	    v->longest_idle_us >= (uint64_t)pc->pm_process_idle_timeout * 1000000u)
		out->retire = "pm.process_idle_timeout";
	/* No worker left and nobody waiting: an idle pool costs no process at all. */
	if (v->running == 0 && v->pending == 0 && !v->woke && floor == 0 && v->has_zygote)
		out->retire_zygote = 1;
}

/*
 * Connections wait, no worker is idle and none can be added: workers
 * parked on kept connections give theirs up, one per waiting connection.
 */
static unsigned parked_to_release(const struct pool_conf *pc, const struct pm_view *v)
{
	unsigned live = v->idle + v->active + v->parked;
	if (!v->parked || v->pending <= v->idle)
		return 0;
	if (pc->pm != PM_STATIC && live < (unsigned)pc->pm_max_children)
		return 0;                  /* a new worker is on its way instead */
	return v->pending - v->idle;
}

unsigned pm_respawn_delay_ms(unsigned failures_in_a_row)
{
	if (failures_in_a_row == 0)
		return 0;
	if (failures_in_a_row > 8)
		return 10000;
	unsigned delay = 100u << (failures_in_a_row - 1);
	return delay > 10000 ? 10000 : delay;
}

/*
 * static: a worker that ends is replaced at once (children.c); a look only
 * makes up for a spawn that failed (descriptors or memory short, a
 * clone refused), so a pool never stays short of pm.max_children.
 */
static void decide_static(const struct pool_conf *pc, const struct pm_view *v,
			  struct pm_actions *out)
{
	unsigned max = (unsigned)pc->pm_max_children;
	unsigned live = v->idle + v->active + v->parked;
	if (!v->backing_off && live < max)
		out->spawn = max - live;
}

void pm_decide(const struct pool_conf *pc, unsigned floor, struct pm_memory *mem,
	       const struct pm_view *v, struct pm_actions *out)
{
	memset(out, 0, sizeof(*out));
	if (pc->pm == PM_DYNAMIC)
		decide_dynamic(pc, floor, mem, v, out);
	else if (pc->pm == PM_ONDEMAND)
		decide_ondemand(pc, floor, mem, v, out);
	else
		decide_static(pc, v, out);
	out->release_parked = parked_to_release(pc, v);
}
