/*
 * Scoreboard mapping and its bounds-checked reader.
 */
#include "shm/scoreboard.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static const char *const stage_names[SB_STAGE_MAX] = {
	[SB_IDLE] = "Idle",
	[SB_READING_HEADERS] = "Reading headers",
	[SB_GETTING_INFO] = "Getting request information",
	[SB_RUNNING] = "Running",
	[SB_ENDING] = "Ending",
	[SB_FINISHING] = "Finishing",
};

const char *sb_stage_name(enum sb_stage s)
{
	return (unsigned)s < SB_STAGE_MAX ? stage_names[s] : "Unknown";
}

uint64_t sb_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t sb_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int sb_create(struct scoreboard *sb, unsigned nslots, const char *pool)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t hdr_len = ((sizeof(struct sb_header) + (size_t)page - 1) / (size_t)page) * (size_t)page;
	size_t len = hdr_len + (size_t)nslots * sizeof(struct sb_slot);

	memset(sb, 0, sizeof(*sb));
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	sb->hdr = p;
	sb->slots = (struct sb_slot *)((char *)p + hdr_len);
	sb->nslots = nslots;
	sb->map_len = len;
	sb_strcpy(sb->hdr->pool, sizeof(sb->hdr->pool), pool);
	sb->hdr->nslots = nslots;
	sb->hdr->start_us = sb_now_us();
	return 0;
}

void sb_unmap(const struct scoreboard *sb)
{
	if (sb->hdr)
		munmap(sb->hdr, sb->map_len);
}

void sb_destroy(struct scoreboard *sb)
{
	if (sb->hdr)
		munmap(sb->hdr, sb->map_len);
	memset(sb, 0, sizeof(*sb));
}

void sb_strcpy(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strnlen(src, cap - 1) : 0;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

static void terminate(char *s, size_t cap)
{
	s[cap - 1] = '\0';
}

int sb_slot_read(const struct scoreboard *sb, unsigned i, struct sb_slot *out)
{
	if (i >= sb->nslots)
		return -1;
	const struct sb_slot *s = &sb->slots[i];
	int ok = 0;
	for (int tries = 0; tries < 8 && !ok; tries++) {
		uint32_t before = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
		memcpy(out, (const void *)s, sizeof(*out));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		uint32_t after = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
		ok = !(before & 1) && before == after;
	}
	/* Whatever was read, it is made safe to use. */
	terminate(out->method, sizeof(out->method));
	terminate(out->uri, sizeof(out->uri));
	terminate(out->query, sizeof(out->query));
	terminate(out->script, sizeof(out->script));
	terminate(out->user, sizeof(out->user));
	if (out->stage >= SB_STAGE_MAX)
		out->stage = SB_IDLE;
	/* parked only between requests: with any other stage the flag is noise */
	out->kept = out->kept && out->stage == SB_IDLE;
	return ok ? 0 : -1;
}

void sb_header_read(const struct scoreboard *sb, struct sb_header *out)
{
	memcpy(out, sb->hdr, sizeof(*out));
	out->pool[sizeof(out->pool) - 1] = '\0';
}
