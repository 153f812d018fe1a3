/*
 * Slowlog stack traces (see stacktrace.h), php-fpm's slowlog shape: one
 * frame a line, innermost first.
 */
#include "master/stacktrace.h"

#include <errno.h>
#include <libunwind-ptrace.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

int stacktrace_of(pid_t pid, int depth, char *buf, size_t cap)
{
	if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) < 0)
		return -1;
	int status;
	/* __WALL: the target may be a worker's child, not ours. */
	if (waitpid(pid, &status, __WALL) != pid || !WIFSTOPPED(status)) {
		ptrace(PTRACE_DETACH, pid, NULL, NULL);
		return -1;
	}
	int lines = 0;
	size_t o = strlen(buf);
	unw_addr_space_t as = unw_create_addr_space(&_UPT_accessors, 0);
	void *ui = as ? _UPT_create(pid) : NULL;
	unw_cursor_t cur;
	if (ui && unw_init_remote(&cur, as, ui) == 0) {
		do {
			unw_word_t ip = 0, off = 0;
			char name[256];
			unw_get_reg(&cur, UNW_REG_IP, &ip);
			if (unw_get_proc_name(&cur, name, sizeof(name), &off) != 0)
				snprintf(name, sizeof(name), "???");
			int n = snprintf(buf + o, cap > o ? cap - o : 0, "[0x%016lx] %s+0x%lx\n",
					 (unsigned long)ip, name, (unsigned long)off);
			if (n < 0 || (size_t)n >= cap - o)
				break;
			o += (size_t)n;
			lines++;
		} while (lines < depth && unw_step(&cur) > 0);
	}
	if (ui)
		_UPT_destroy(ui);
	if (as)
		unw_destroy_addr_space(as);
	/* Resume it as it was: the stop we caused is swallowed by detaching with signal 0. */
	ptrace(PTRACE_DETACH, pid, NULL, NULL);
	return lines;
}
