/*
 * pm_decide(): the process managers' rules, look by look.  Pools come from
 * configuration text through the real loader, so the defaults are the
 * directive table's (pm.max_spawn_rate 32, pm.process_idle_timeout 10s).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "pm/policy.h"

#define SEC 1000000ull

struct fixture {
	struct fpmd_conf *c;
	struct conf_diags d;
	struct pm_memory mem;
};

static const struct pool_conf *pool(struct fixture *f, const char *settings)
{
	char text[1024];
	struct conf_options opt;
	memset(&opt, 0, sizeof(opt));
	opt.daemonize = CONF_UNSET;
	opt.running_as_root = 1;
	opt.prefix = "/opt/fpmd";
	snprintf(text, sizeof(text), "[www]\nuser = nobody\nlisten = /run/www.sock\napp.type = cgi\ncgi.root = /srv\n%s\n", settings);
	memset(&f->d, 0, sizeof(f->d));
	f->c = conf_load_string("/etc/fpmd/fpmd.conf", text, &opt, NULL, &f->d);
	assert_non_null(f->c);
	for (size_t i = 0; i < f->d.n; i++)
		if (f->d.items[i].severity) {
			char *s = conf_diag_format(&f->d.items[i]);
			fprintf(stderr, "%s\n", s);
			free(s);
		}
	assert_int_equal(f->d.errors, 0);
	assert_int_equal(f->c->npools, 1);
	f->mem = (struct pm_memory){ .spawn_rate = 1 };
	return f->c->pools[0];
}

static void done(struct fixture *f)
{
	conf_free(f->c);
	conf_diags_free(&f->d);
}

static struct pm_actions decide(struct fixture *f, unsigned floor, struct pm_view v)
{
	struct pm_actions a;
	if (!v.running)
		v.running = v.idle + v.active + v.parked;
	pm_decide(f->c->pools[0], floor, &f->mem, &v, &a);
	return a;
}

/* php-fpm's dynamic rule: 1, 2, 4, 8 ... per look while short of spares, warned from 8. */
static void test_dynamic_doubles_while_short(void **state)
{
	(void)state;
	struct fixture f;
	pool(&f, "pm = dynamic\npm.max_children = 100\npm.start_servers = 20\n"
		 "pm.min_spare_servers = 20\npm.max_spare_servers = 40");
	static const struct { unsigned idle, spawn, warn, rate_after; } looks[] = {
		{ 0, 1, 0, 2 }, { 1, 2, 0, 4 }, { 3, 4, 0, 8 }, { 7, 8, 1, 16 },
		{ 15, 5, 1, 32 },          /* what is short, not the rate */
		{ 19, 1, 1, 32 },          /* the rate is capped at pm.max_spawn_rate (32) */
		{ 20, 0, 0, 1 },           /* enough: the rate starts again at 1 */
	};
	for (size_t i = 0; i < sizeof(looks) / sizeof(*looks); i++) {
		struct pm_actions a = decide(&f, 0, (struct pm_view){ .idle = looks[i].idle, .active = 10 });
		assert_int_equal(a.spawn, looks[i].spawn);
		assert_int_equal(a.busy_warning, looks[i].warn);
		assert_int_equal(f.mem.spawn_rate, looks[i].rate_after);
		assert_null(a.retire);
	}
	done(&f);
}

static void test_dynamic_retires_above_max_spare(void **state)
{
	(void)state;
	struct fixture f;
	pool(&f, "pm = dynamic\npm.max_children = 10\npm.start_servers = 2\n"
		 "pm.min_spare_servers = 1\npm.max_spare_servers = 3");
	f.mem.spawn_rate = 4;
	struct pm_actions a = decide(&f, 0, (struct pm_view){ .idle = 4, .has_idle = 1 });
	assert_string_equal(a.retire, "above pm.max_spare_servers");
	assert_int_equal(a.spawn, 0);
	assert_int_equal(f.mem.spawn_rate, 1);
	/* one at a time: 3 idle is within the band */
	a = decide(&f, 0, (struct pm_view){ .idle = 3, .has_idle = 1 });
	assert_null(a.retire);
	/* fpmctl scale's floor holds them */
	a = decide(&f, 4, (struct pm_view){ .idle = 4, .has_idle = 1 });
	assert_null(a.retire);
	/* connections wait beyond the idle ones: nobody leaves */
	a = decide(&f, 0, (struct pm_view){ .idle = 4, .has_idle = 1, .pending = 6 });
	assert_null(a.retire);
	done(&f);
}

/* Workers that die at start: no spare is spawned until the back-off's timer (children.c). */
static void test_dynamic_holds_spares_during_a_back_off(void **state)
{
	(void)state;
	struct fixture f;
	pool(&f, "pm = dynamic\npm.max_children = 10\npm.start_servers = 3\n"
		 "pm.min_spare_servers = 3\npm.max_spare_servers = 5");
	for (int i = 0; i < 4; i++) {
		struct pm_actions a = decide(&f, 0, (struct pm_view){ .backing_off = 1 });
		assert_int_equal(a.spawn, 0);
		assert_int_equal(f.mem.spawn_rate, 1);
	}
	assert_int_equal(decide(&f, 0, (struct pm_view){ 0 }).spawn, 1);
	/* fpmctl scale's floor is not held: the operator asked for it */
	assert_int_equal(decide(&f, 4, (struct pm_view){ .backing_off = 1 }).spawn, 4);
	done(&f);
}

/* A wake-up that finds the pool short of spares waits for the next look (php-fpm's pace). */
static void test_dynamic_wake_up_waits_for_the_next_look(void **state)
{
	(void)state;
	struct fixture f;
	pool(&f, "pm = dynamic\npm.max_children = 10\npm.start_servers = 1\n"
		 "pm.min_spare_servers = 1\npm.max_spare_servers = 3");
	struct pm_actions a = decide(&f, 0, (struct pm_view){ .active = 1, .pending = 0, .woke = 1 });
	assert_int_equal(a.spawn, 0);
	a = decide(&f, 0, (struct pm_view){ .active = 1 });
	assert_int_equal(a.spawn, 1);
	done(&f);
}

/* Issue 25: connections that wait get workers at once, as many as wait. */
static void test_dynamic_spawns_for_waiting_connections(void **state)
{
	(void)state;
	struct fixture f;
	pool(&f, "pm = dynamic\npm.max_children = 40\npm.start_servers = 1\n"
		 "pm.min_spare_servers = 1\npm.max_spare_servers = 3");
	/* 32 connections, one worker busy, none idle: 32 wait */
	struct pm_actions a = decide(&f, 0, (struct pm_view){ .active = 1, .pending = 32, .woke = 1 });
	assert_int_equal(a.spawn, 32);
	assert_int_equal(a.busy_warning, 0);
	/* an idle worker takes one of them; min_spare is met but 9 still wait */
	a = decide(&f, 0, (struct pm_view){ .idle = 1, .active = 5, .pending = 10 });
	assert_int_equal(a.spawn, 9);
	/* within pm.max_children */
	a = decide(&f, 0, (struct pm_view){ .active = 35, .pending = 30 });
	assert_int_equal(a.spawn, 5);
	a = decide(&f, 0, (struct pm_view){ .active = 40, .pending = 30 });
	assert_int_equal(a.spawn, 0);
	assert_int_equal(a.reached_max_children, 1);
	/* workers that die at start: the back-off's timer spawns, not the queue */
	a = decide(&f, 0, (struct pm_view){ .idle = 1, .active = 2, .pending = 10, .backing_off = 1 });
	assert_int_equal(a.spawn, 0);
	done(&f);

	pool(&f, "pm = dynamic\npm.max_children = 40\npm.start_servers = 1\n"
		 "pm.min_spare_servers = 1\npm.max_spare_servers = 3\npm.max_spawn_rate = 8");
	a = decide(&f, 0, (struct pm_view){ .active = 1, .pending = 32 });
	assert_int_equal(a.spawn, 8);
	done(&f);
}

/*
 * One warning per episode, php-fpm's way: again only once the pool has
 * started a worker since (a busy pool idle for a moment between requests,
 * looked at every 100 ms, warned several times a second: 38 in 10 s).
 */
static void test_max_children_warned_once_per_episode(void **state)
{
	(void)state;
	struct fixture f;
	pool(&f, "pm = dynamic\npm.max_children = 4\npm.start_servers = 2\n"
		 "pm.min_spare_servers = 2\npm.max_spare_servers = 3");
	assert_int_equal(decide(&f, 0, (struct pm_view){ .active = 4 }).reached_max_children, 1);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .active = 4 }).reached_max_children, 0);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .active = 4, .pending = 3 }).reached_max_children, 0);
	for (int i = 0; i < 10; i++) {
		/* spares back for a moment, then full again: the same episode */
		decide(&f, 0, (struct pm_view){ .idle = 2, .active = 2 });
		assert_int_equal(decide(&f, 0, (struct pm_view){ .active = 4 }).reached_max_children, 0);
	}
	/* a worker started: a later shortfall is news */
	assert_int_equal(decide(&f, 0, (struct pm_view){ .idle = 1, .active = 2 }).spawn, 1);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .active = 4 }).reached_max_children, 1);
	done(&f);

	pool(&f, "pm = ondemand\npm.max_children = 2");
	assert_int_equal(decide(&f, 0, (struct pm_view){ .active = 2, .pending = 1 }).reached_max_children, 1);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .active = 2, .pending = 5 }).reached_max_children, 0);
	decide(&f, 0, (struct pm_view){ .active = 2 });          /* the queue emptied */
	assert_int_equal(decide(&f, 0, (struct pm_view){ .active = 2, .pending = 1 }).reached_max_children, 0);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .active = 1, .pending = 1 }).spawn, 1);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .active = 2, .pending = 1 }).reached_max_children, 1);
	done(&f);
}

static void test_floor_is_kept(void **state)
{
	(void)state;
	struct fixture f;
	pool(&f, "pm = dynamic\npm.max_children = 50\npm.start_servers = 1\n"
		 "pm.min_spare_servers = 1\npm.max_spare_servers = 3");
	assert_int_equal(decide(&f, 40, (struct pm_view){ .idle = 2 }).spawn, 32);   /* at the spawn rate */
	assert_int_equal(decide(&f, 40, (struct pm_view){ .idle = 34 }).spawn, 6);
	done(&f);
	pool(&f, "pm = ondemand\npm.max_children = 10");
	assert_int_equal(decide(&f, 4, (struct pm_view){ 0 }).spawn, 4);
	/* waiting connections and the floor together stay within pm.max_children */
	assert_int_equal(decide(&f, 10, (struct pm_view){ .active = 2, .pending = 6 }).spawn, 8);
	done(&f);
}

static void test_ondemand_spawns_what_waits(void **state)
{
	(void)state;
	struct fixture f;
	pool(&f, "pm = ondemand\npm.max_children = 50");
	assert_int_equal(decide(&f, 0, (struct pm_view){ .pending = 5 }).spawn, 5);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .pending = 100 }).spawn, 32);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .idle = 3, .pending = 5 }).spawn, 2);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .idle = 3, .pending = 2 }).spawn, 0);
	/* a wake-up with no idle worker: a connection came, even with the queue unread */
	assert_int_equal(decide(&f, 0, (struct pm_view){ .woke = 1 }).spawn, 1);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .pending = 5, .backing_off = 1 }).spawn, 0);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .active = 48, .pending = 5 }).spawn, 2);
	done(&f);
}

static void test_ondemand_retires_after_idle_timeout(void **state)
{
	(void)state;
	struct fixture f;
	pool(&f, "pm = ondemand\npm.max_children = 5");      /* pm.process_idle_timeout: 10s */
	struct pm_view v = { .idle = 1, .has_idle = 1, .longest_idle_us = 10 * SEC - 1 };
	assert_null(decide(&f, 0, v).retire);
	v.longest_idle_us = 10 * SEC;
	assert_string_equal(decide(&f, 0, v).retire, "pm.process_idle_timeout");
	v.pending = 1;
	assert_null(decide(&f, 0, v).retire);
	v.pending = 0;
	assert_null(decide(&f, 1, v).retire);           /* the floor */
	done(&f);
	pool(&f, "pm = ondemand\npm.max_children = 5\npm.process_idle_timeout = 2s");
	assert_string_equal(decide(&f, 0, (struct pm_view){ .idle = 2, .has_idle = 1,
							    .longest_idle_us = 2 * SEC }).retire,
			    "pm.process_idle_timeout");
	done(&f);
}

static void test_ondemand_lets_its_zygote_go_when_empty(void **state)
{
	(void)state;
	struct fixture f;
	pool(&f, "pm = ondemand\npm.max_children = 5");
	assert_int_equal(decide(&f, 0, (struct pm_view){ .has_zygote = 1 }).retire_zygote, 1);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .has_zygote = 1, .woke = 1 }).retire_zygote, 0);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .has_zygote = 1, .running = 1 }).retire_zygote, 0);
	assert_int_equal(decide(&f, 1, (struct pm_view){ .has_zygote = 1 }).retire_zygote, 0);
	assert_int_equal(decide(&f, 0, (struct pm_view){ 0 }).retire_zygote, 0);
	done(&f);
}

/* Kept connections are given up only when nothing else can take the waiting ones. */
static void test_parked_released_for_waiting_connections(void **state)
{
	(void)state;
	struct fixture f;
	pool(&f, "pm = static\npm.max_children = 2");
	assert_int_equal(decide(&f, 0, (struct pm_view){ .parked = 2, .pending = 1 }).release_parked, 1);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .parked = 2, .pending = 3 }).release_parked, 3);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .idle = 1, .parked = 1, .pending = 1 }).release_parked, 0);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .active = 2, .pending = 1 }).release_parked, 0);
	struct pm_actions a = decide(&f, 0, (struct pm_view){ .parked = 2, .pending = 1 });
	assert_int_equal(a.spawn, 0);                   /* a whole static pool spawns nothing */
	done(&f);
	pool(&f, "pm = ondemand\npm.max_children = 3");
	a = decide(&f, 0, (struct pm_view){ .parked = 2, .pending = 1 });
	assert_int_equal(a.spawn, 1);                   /* a new worker instead */
	assert_int_equal(a.release_parked, 0);
	a = decide(&f, 0, (struct pm_view){ .parked = 3, .pending = 2 });
	assert_int_equal(a.spawn, 0);
	assert_int_equal(a.release_parked, 2);
	done(&f);
}

/* A static pool short of pm.max_children (a spawn failed) is made whole, not during a back-off. */
static void test_static_makes_up_for_a_failed_spawn(void **state)
{
	(void)state;
	struct fixture f;
	pool(&f, "pm = static\npm.max_children = 4");
	assert_int_equal(decide(&f, 0, (struct pm_view){ .idle = 4 }).spawn, 0);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .idle = 1, .active = 2 }).spawn, 1);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .active = 1, .parked = 1 }).spawn, 2);
	assert_int_equal(decide(&f, 0, (struct pm_view){ 0 }).spawn, 4);
	assert_int_equal(decide(&f, 0, (struct pm_view){ .idle = 1, .backing_off = 1 }).spawn, 0);
	assert_null(decide(&f, 0, (struct pm_view){ .idle = 4, .has_idle = 1,
						    .longest_idle_us = 3600000000ull }).retire);
	done(&f);
}

static void test_respawn_back_off(void **state)
{
	(void)state;
	static const unsigned want[] = { 0, 100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000 };
	for (unsigned i = 0; i < sizeof(want) / sizeof(*want); i++)
		assert_int_equal(pm_respawn_delay_ms(i), want[i]);
	assert_int_equal(pm_respawn_delay_ms(40), 10000);       /* no shift past the word */
	assert_int_equal(pm_respawn_delay_ms(~0u), 10000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dynamic_doubles_while_short),
		cmocka_unit_test(test_dynamic_retires_above_max_spare),
		cmocka_unit_test(test_dynamic_wake_up_waits_for_the_next_look),
		cmocka_unit_test(test_dynamic_holds_spares_during_a_back_off),
		cmocka_unit_test(test_dynamic_spawns_for_waiting_connections),
		cmocka_unit_test(test_max_children_warned_once_per_episode),
		cmocka_unit_test(test_floor_is_kept),
		cmocka_unit_test(test_ondemand_spawns_what_waits),
		cmocka_unit_test(test_ondemand_retires_after_idle_timeout),
		cmocka_unit_test(test_ondemand_lets_its_zygote_go_when_empty),
		cmocka_unit_test(test_parked_released_for_waiting_connections),
		cmocka_unit_test(test_static_makes_up_for_a_failed_spawn),
		cmocka_unit_test(test_respawn_back_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
