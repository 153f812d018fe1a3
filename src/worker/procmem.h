/*
 * A process's memory, read from /proc, for pm.max_memory, pm.max_idle_memory
 * and the status page's pool memory.
 *
 *   statm         cheap (one pread of a descriptor kept open): resident
 *                 pages, of which file-backed and shmem ("shared");
 *   smaps_rollup  dear (a walk of the page tables): proportional (PSS) and
 *                 private (USS) bytes.  Read only when statm is already
 *                 above a limit: private <= resident, so a worker whose
 *                 resident set is under the limit is under it by any figure.
 *
 * Returns 0, or -1 with errno.
 */
#ifndef FPMD_WORKER_PROCMEM_H
#define FPMD_WORKER_PROCMEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct procmem_rollup {
	uint64_t pss;        /* Pss + SwapPss: the process's share of what it maps */
	uint64_t private_;   /* Private_Clean + Private_Dirty + SwapPss of private pages: what its exit frees */
};

/* statm from a descriptor opened on /proc/<pid>/statm (pread at 0). */
int procmem_statm_fd(int fd, uint64_t *resident, uint64_t *shared);
/* The same by pid (opened and closed). */
int procmem_statm(pid_t pid, uint64_t *resident, uint64_t *shared);
/* smaps_rollup of pid (0: this process). */
int procmem_rollup(pid_t pid, struct procmem_rollup *out);
/* Parses smaps_rollup text (pure, for tests). */
int procmem_rollup_parse(const char *buf, size_t len, struct procmem_rollup *out);

#endif
