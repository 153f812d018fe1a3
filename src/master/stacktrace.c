/*
 * Slowlog stack traces (see stacktrace.h), php-fpm's slowlog shape: one
 * frame a line, innermost first.
 *
 * A frame is named only when the name is its own function's.  libunwind names
 * an address after the nearest symbol below it, and a stripped library
 * (Debian's libphp8.2.so keeps only its exported symbols) puts a static
 * function's code under some exported neighbour.  The unwind tables (.eh_frame)
 * know every function's true start: the name stands when its symbol starts
 * there.  Otherwise the frame is the object's path and the address in it, which
 * addr2line or a debug symbols package turn into a name.
 */
#include "master/stacktrace.h"

#include <errno.h>
#include <libunwind-ptrace.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>

struct mapping {
	unsigned long start, end, offset;
	char path[200];
};

/* The traced process's file mappings, read once per trace; -1 when unreadable. */
static int read_maps(pid_t pid, struct mapping *m, int cap)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	int n = 0;
	while (n < cap && fgets(line, sizeof(line), f)) {
		char file[256] = "";
		if (sscanf(line, "%lx-%lx %*s %lx %*s %*s %255s", &m[n].start, &m[n].end, &m[n].offset,
			   file) == 4 && file[0] == '/') {
			snprintf(m[n].path, sizeof(m[n].path), "%s", file);
			n++;
		}
	}
	fclose(f);
	return n;
}

/* One frame's line into buf at *o; 0, or -1 when buf is full. */
static int frame_line(unw_cursor_t *cur, const struct mapping *maps, int nmaps, char *buf,
		      size_t cap, size_t *o)
{
	unw_word_t ip = 0, off = 0;
	unw_proc_info_t pi;
	char name[256];
	int n;
	unw_get_reg(cur, UNW_REG_IP, &ip);
	if (unw_get_proc_name(cur, name, sizeof(name), &off) == 0 &&
	    unw_get_proc_info(cur, &pi) == 0 && ip >= off && ip - off == pi.start_ip) {
		n = snprintf(buf + *o, cap - *o, "[0x%016lx] %s+0x%lx\n", (unsigned long)ip, name,
			     (unsigned long)off);
	} else {
		const struct mapping *m = NULL;
		for (int i = 0; i < nmaps && !m; i++)
			if (ip >= maps[i].start && ip < maps[i].end)
				m = &maps[i];
		/* the address as the object's own: what addr2line -e OBJECT takes */
		if (m)
			n = snprintf(buf + *o, cap - *o, "[0x%016lx] %s+0x%lx\n", (unsigned long)ip,
				     m->path, (unsigned long)(ip - (m->start - m->offset)));
		else
			n = snprintf(buf + *o, cap - *o, "[0x%016lx] ???\n", (unsigned long)ip);
	}
	if (n < 0 || (size_t)n >= cap - *o)
		return -1;
	*o += (size_t)n;
	return 0;
}

int stacktrace_of(pid_t pid, int depth, char *buf, size_t cap)
{
	static struct mapping maps[512];
	int nmaps = read_maps(pid, maps, (int)(sizeof(maps) / sizeof(maps[0])));
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
			if (o >= cap || frame_line(&cur, maps, nmaps < 0 ? 0 : nmaps, buf, cap, &o) < 0)
				break;
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
