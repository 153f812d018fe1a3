#include "worker/procmem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t page_bytes(void)
{
	static uint64_t page;
	if (!page) {
		long p = sysconf(_SC_PAGESIZE);
		page = p > 0 ? (uint64_t)p : 4096u;
	}
	return page;
}

int procmem_statm_fd(int fd, uint64_t *resident, uint64_t *shared)
{
	char buf[128];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0) {
		if (n == 0)
			errno = EIO;
		return -1;
	}
	buf[n] = '\0';
	unsigned long long size, res, shr;
	if (sscanf(buf, "%llu %llu %llu", &size, &res, &shr) != 3) {
		errno = EINVAL;
		return -1;
	}
	*resident = (uint64_t)res * page_bytes();
	if (shared)
		*shared = (uint64_t)shr * page_bytes();
	return 0;
}

int procmem_statm(pid_t pid, uint64_t *resident, uint64_t *shared)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = procmem_statm_fd(fd, resident, shared);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

/* "Name:   123 kB" lines; unknown ones are skipped. */
int procmem_rollup_parse(const char *buf, size_t len, struct procmem_rollup *out)
{
	uint64_t pss = 0, priv = 0, swap_pss = 0;
	int seen = 0;
	const char *p = buf, *end = buf + len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		const char *colon = memchr(p, ':', (size_t)(eol - p));
		if (colon) {
			size_t nlen = (size_t)(colon - p);
			char num[32];
			size_t vlen = (size_t)(eol - colon - 1);
			if (vlen >= sizeof(num))
				vlen = sizeof(num) - 1;
			memcpy(num, colon + 1, vlen);
			num[vlen] = '\0';
			uint64_t kb = strtoull(num, NULL, 10);
			if (kb > (1ull << 40))
				kb = 1ull << 40;
			if (nlen == 3 && memcmp(p, "Pss", 3) == 0) {
				pss = kb;
				seen = 1;
			} else if ((nlen == 13 && memcmp(p, "Private_Clean", 13) == 0) ||
				   (nlen == 13 && memcmp(p, "Private_Dirty", 13) == 0)) {
				priv += kb;
			} else if (nlen == 7 && memcmp(p, "SwapPss", 7) == 0) {
				swap_pss = kb;
			}
		}
		p = eol + 1;
	}
	if (!seen) {
		errno = EINVAL;
		return -1;
	}
	out->pss = (pss + swap_pss) * 1024u;
	out->private_ = (priv + swap_pss) * 1024u;
	return 0;
}

int procmem_rollup(pid_t pid, struct procmem_rollup *out)
{
	char path[64];
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/smaps_rollup");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char buf[2048];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1)
			break;
	}
	close(fd);
	buf[len] = '\0';
	return procmem_rollup_parse(buf, len, out);
}
