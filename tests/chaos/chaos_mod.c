/*
 * Test-only fpmd module for the fault-injection suite (tests/chaos).  Never
 * installed: tests/chaos/conftest.py builds it into the build directory.
 *
 * module.param[mode] chooses the fault:
 *   serve     (default) answers "ok"; ?ms=N sleeps N ms first.
 *   crash     init segfaults: a worker that dies at every start.
 *   scribble  a thread overwrites every shared writable mapping of the worker
 *             (the pool's scoreboard: MAP_SHARED|MAP_ANONYMOUS, "/dev/zero
 *             (deleted)" in /proc/self/maps) in a loop, with random bytes,
 *             all-ones, and the 32-bit pid from module.param[victim] at every
 *             aligned offset (so every pid field names a process the master
 *             did not fork).  Requests are still answered.
 *   hog       ?hold=N: a thread takes every free descriptor for N ms (see
 *             hog()): the worker is out of fds meanwhile.
 *   initfail  init returns -1: a worker that never becomes ready.
 *   exit0     init calls exit(0): a worker that "exits cleanly" before it was
 *             ready.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fpmd/module.h"

enum mode { SERVE, CRASH, SCRIBBLE, HOG, INITFAIL, EXIT0 };

static const struct fpmd_host *host;
static enum mode mode = SERVE;
static uint32_t victim;

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

struct region {
	uintptr_t lo, hi;
};

/* The shared writable mappings of this process: only the scoreboard in a worker. */
static size_t shared_maps(struct region *out, size_t cap)
{
	char line[512];
	size_t n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return 0;
	while (n < cap && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
			continue;
		if (perms[0] == 'r' && perms[1] == 'w' && perms[3] == 's' && strstr(line, "/dev/zero"))
			out[n++] = (struct region){ lo, hi };
	}
	fclose(f);
	return n;
}

static uint64_t rnd_state;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void *scribbler(void *arg)
{
	struct region r[8];
	size_t n = shared_maps(r, 8);
	unsigned long round = 0;

	(void)arg;
	host->log(FPMD_LOG_NOTICE, "chaos: scribbling over %zu shared mapping(s)", n);
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			uint32_t *p = (uint32_t *)r[i].lo, *end = (uint32_t *)r[i].hi;

			for (; p < end; p++) {
				switch (round % 4) {
				case 0: *p = (uint32_t)rnd(); break;
				case 1: *p = victim; break;
				case 2: *p = 0xffffffffu; break;
				default: *p = (uint32_t)rnd() & 0x0000ffffu; break;   /* small numbers */
				}
			}
		}
		round++;
		sleep_ms(1);
	}
	return NULL;
}

static int chaos_init(const struct fpmd_host *h, const struct fpmd_setting *s, size_t n, void **state)
{
	host = h;
	*state = NULL;
	rnd_state = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull | 1;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(s[i].key, "mode") == 0) {
			if (strcmp(s[i].value, "crash") == 0)
				mode = CRASH;
			else if (strcmp(s[i].value, "scribble") == 0)
				mode = SCRIBBLE;
			else if (strcmp(s[i].value, "hog") == 0)
				mode = HOG;
			else if (strcmp(s[i].value, "initfail") == 0)
				mode = INITFAIL;
			else if (strcmp(s[i].value, "exit0") == 0)
				mode = EXIT0;
		} else if (strcmp(s[i].key, "victim") == 0) {
			victim = (uint32_t)strtoul(s[i].value, NULL, 10);
		}
	}
	if (mode == CRASH)
		raise(SIGSEGV);
	if (mode == INITFAIL)
		return -1;
	if (mode == EXIT0)
		exit(0);
	if (mode == SCRIBBLE) {
		pthread_t t;

		if (pthread_create(&t, NULL, scribbler, NULL) != 0)
			return -1;
		pthread_detach(t);
	}
	return 0;
}

/*
 * Holds every free descriptor for ms milliseconds.  It keeps grabbing while
 * it holds, so the descriptor the worker frees when it closes the hog
 * request's connection is taken too, and the next accept4() meets EMFILE.
 */
static void *hog(void *arg)
{
	long ms = (long)(intptr_t)arg;
	struct timespec t0, now;
	int lo = -1, hi = -1, fd;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		while ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
			if (lo < 0 || fd < lo)
				lo = fd;
			if (fd > hi)
				hi = fd;
		}
		usleep(200);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 < ms);
	for (fd = lo; lo >= 0 && fd <= hi; fd++)
		close(fd);
	host->log(FPMD_LOG_NOTICE, "chaos: released fds %d..%d", lo, hi);
	return NULL;
}

static long query_num(struct fpmd_request *r, const char *key)
{
	const char *q = host->param(r, "QUERY_STRING");
	size_t kl = strlen(key);

	while (q && *q) {
		if (strncmp(q, key, kl) == 0 && q[kl] == '=')
			return strtol(q + kl + 1, NULL, 10);
		q = strchr(q, '&');
		if (q)
			q++;
	}
	return -1;
}

static int chaos_handle(void *state, struct fpmd_request *r)
{
	char buf[4096];
	long ms = query_num(r, "ms"), hold = query_num(r, "hold");

	(void)state;
	while (host->read_body(r, buf, sizeof(buf)) > 0)
		;
	if (ms > 0)
		sleep_ms(ms);
	if (mode == HOG && hold > 0) {
		pthread_t t;

		if (pthread_create(&t, NULL, hog, (void *)(intptr_t)hold) != 0)
			return -1;
		pthread_detach(t);
		host->add_header(r, "Content-Type", "text/plain");
		return host->write(r, "hogging", 7);
	}
	host->add_header(r, "Content-Type", "text/plain");
	return host->write(r, "ok", 2);
}

const struct fpmd_module fpmd_module = {
	.abi = FPMD_MODULE_ABI, .name = "chaos", .init = chaos_init, .handle = chaos_handle,
};
