/*
 * Slowlog stack traces (see stacktrace.h), php-fpm's slowlog shape: one
 * frame a line, innermost first.
 *
 * Who walks: everything the walk reads is the traced process's side — its
 * stack and registers, and the unwind tables (.eh_frame) of the files it
 * maps, which libunwind parses.  A pool's code can craft all of it, so none
 * of it is parsed by the root master: a process of its own does the walk
 * (fpmd exec'd with --slowlog-stack: no memory of the master's, no
 * descriptor but the slowlog it appends its lines to).  It seizes the
 * process while still root, keeps a copy of its /proc/PID/maps, puts that
 * copy where libunwind reads it (a /proc of its own: a tmpfs in a mount
 * namespace of its own) and becomes the pool's user before libunwind reads
 * anything; a file the pool's user cannot read is not read.  It stops
 * after STACK_HELPER_SECS; PTRACE_SEIZE leaves no stop signal behind, so
 * one killed mid-walk leaves the process running.  Without a mount
 * namespace (a container without CAP_SYS_ADMIN) the walk still runs as the
 * pool's user, and sees what that user may see.
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
#include <fcntl.h>
#include <grp.h>
#include <libunwind-ptrace.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log/log.h"

#define STACK_ARG "--slowlog-stack"
#define STACK_HELPER_SECS 5
#define STACK_HELPERS_MAX 8
#define STACK_MAPS_CAP (256u * 1024u)

struct mapping {
	unsigned long start, end, offset;
	char path[200];
};

/* The file mappings in the text of a /proc/PID/maps; how many. */
static int parse_maps(char *text, struct mapping *m, int cap)
{
	int n = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line && n < cap; line = strtok_r(NULL, "\n", &save)) {
		char file[256] = "";
		if (sscanf(line, "%lx-%lx %*s %lx %*s %*s %255s", &m[n].start, &m[n].end, &m[n].offset,
			   file) == 4 && file[0] == '/') {
			snprintf(m[n].path, sizeof(m[n].path), "%s", file);
			n++;
		}
	}
	return n;
}

/* The whole of a small file, NUL-terminated, in a malloc'd buffer; NULL when unreadable. */
static char *read_small_file(const char *path, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *text = malloc(cap + 1);
	size_t o = 0;
	ssize_t got;
	while (text && o < cap && (got = read(fd, text + o, cap - o)) > 0)
		o += (size_t)got;
	close(fd);
	if (text) {
		text[o] = '\0';
		*len = o;
	}
	return text;
}

/* One frame's line into buf at *o; 0, or -1 when buf is full. */
static int frame_line(unw_cursor_t *cur, const struct mapping *maps, int nmaps, char *buf,
		      size_t cap, size_t *o)
{
	unw_word_t ip = 0, off = 0;
	unw_proc_info_t pi;
	char name[256], esc[256 * 4];
	int n;
	unw_get_reg(cur, UNW_REG_IP, &ip);
	/*
	 * A symbol's name and an object's path are the traced program's bytes
	 * (an ELF name may hold a newline or an escape): escaped, so no frame
	 * writes a line of its own into the slowlog.
	 */
	if (unw_get_proc_name(cur, name, sizeof(name), &off) == 0 &&
	    unw_get_proc_info(cur, &pi) == 0 && ip >= off && ip - off == pi.start_ip) {
		log_escape(esc, sizeof(esc), name);
		n = snprintf(buf + *o, cap - *o, "[0x%016lx] %s+0x%lx\n", (unsigned long)ip, esc,
			     (unsigned long)off);
	} else {
		const struct mapping *m = NULL;
		for (int i = 0; i < nmaps && !m; i++)
			if (ip >= maps[i].start && ip < maps[i].end)
				m = &maps[i];
		/* the address as the object's own: what addr2line -e OBJECT takes */
		if (m) {
			log_escape(esc, sizeof(esc), m->path);
			n = snprintf(buf + *o, cap - *o, "[0x%016lx] %s+0x%lx\n", (unsigned long)ip,
				     esc, (unsigned long)(ip - (m->start - m->offset)));
		}
		else
			n = snprintf(buf + *o, cap - *o, "[0x%016lx] ???\n", (unsigned long)ip);
	}
	if (n < 0 || (size_t)n >= cap - *o)
		return -1;
	*o += (size_t)n;
	return 0;
}

/*
 * Where libunwind will look for the process's mappings (/proc/PID/maps),
 * the copy read as root: a tmpfs over /proc in a mount namespace of this
 * process alone.  -1 when that cannot be made (no CAP_SYS_ADMIN).
 */
static int private_proc(pid_t pid, const char *maps, size_t len)
{
	char dir[64], file[80];
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("fpmd-stack", "/proc", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=1m") < 0)
		return -1;
	snprintf(dir, sizeof(dir), "/proc/%d", (int)pid);
	snprintf(file, sizeof(file), "%s/maps", dir);
	if (mkdir(dir, 0755) < 0)
		return -1;
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (fd < 0)
		return -1;
	int rc = write(fd, maps, len) == (ssize_t)len ? 0 : -1;
	close(fd);
	return rc;
}

/* The pool's user and group, for good: libunwind runs as them. */
static int become(long uid, long gid)
{
	if (uid < 0 || geteuid() != 0)
		return 0;
	if (setgroups(0, NULL) < 0 || setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) < 0 ||
	    setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0)
		return -1;
	return 0;
}

/*
 * The helper: "native stack of PID:" and its frames, or why there are none,
 * appended to its standard output (the slowlog) in one write.
 */
static void helper_run(pid_t pid, int depth, long uid, long gid)
{
	static char out[16384];
	static struct mapping maps[512];
	size_t o = 0;
	int nmaps = 0;
	const char *why = NULL;
	int err = 0;
	alarm(STACK_HELPER_SECS);
	o += (size_t)snprintf(out, sizeof(out), "native stack of %d:\n", (int)pid);
	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) < 0 || ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0) {
		why = "ptrace";
		err = errno;
		goto done;
	}
	int status;
	/* __WALL: the target may be a worker's child, not a child of ours. */
	if (waitpid(pid, &status, __WALL) != pid || !WIFSTOPPED(status)) {
		why = "waitpid";
		err = errno;
		goto detach;
	}
	char path[64];
	size_t len = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	char *text = read_small_file(path, STACK_MAPS_CAP, &len);
	if (!text) {
		why = "maps";
		err = errno;
		goto detach;
	}
	if (geteuid() == 0 && uid > 0 && private_proc(pid, text, len) < 0) {
		/* libunwind then reads the real one, as the pool's user: what that user may read */
	}
	nmaps = parse_maps(text, maps, (int)(sizeof(maps) / sizeof(maps[0])));
	free(text);
	if (become(uid, gid) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		why = "cannot become the pool's user";
		err = errno;
		goto detach;
	}
	int lines = 0;
	unw_addr_space_t as = unw_create_addr_space(&_UPT_accessors, 0);
	void *ui = as ? _UPT_create(pid) : NULL;
	unw_cursor_t cur;
	if (ui && unw_init_remote(&cur, as, ui) == 0) {
		do {
			if (frame_line(&cur, maps, nmaps, out, sizeof(out), &o) < 0)
				break;
			lines++;
		} while (lines < depth && unw_step(&cur) > 0);
	}
	if (!lines) {
		why = "no frame could be read";
		err = 0;
	}
detach:
	/* Resume it: after PTRACE_SEIZE no stop signal is pending to swallow. */
	ptrace(PTRACE_DETACH, pid, NULL, NULL);
done:
	if (why)
		o += (size_t)snprintf(out + o, sizeof(out) - o, "(no stack trace of %d: %s%s%s)\n",
				      (int)pid, why, err ? ": " : "", err ? strerror(err) : "");
	if (o >= sizeof(out))
		o = sizeof(out) - 1;
	if (write(STDOUT_FILENO, out, o) < 0)
		_exit(1);
	_exit(0);
}

int stacktrace_helper_main(int argc, char **argv)
{
	if (argc != 6 || strcmp(argv[1], STACK_ARG) != 0)
		return -1;
	helper_run((pid_t)atol(argv[2]), atoi(argv[3]), atol(argv[4]), atol(argv[5]));
	return 0;
}

/* Helpers running, so the reaper knows them and a flood of slow requests starts few. */
static pid_t helpers[STACK_HELPERS_MAX];

int stacktrace_helper_reaped(pid_t pid)
{
	for (int i = 0; i < STACK_HELPERS_MAX; i++)
		if (helpers[i] == pid) {
			helpers[i] = 0;
			return 1;
		}
	return 0;
}

int stacktrace_spawn(pid_t pid, int depth, long uid, long gid, int out_fd)
{
	int slot = -1;
	for (int i = 0; i < STACK_HELPERS_MAX && slot < 0; i++)
		if (!helpers[i])
			slot = i;
	if (slot < 0) {
		errno = EAGAIN;
		return -1;
	}
	char a_pid[24], a_depth[24], a_uid[24], a_gid[24];
	snprintf(a_pid, sizeof(a_pid), "%d", (int)pid);
	snprintf(a_depth, sizeof(a_depth), "%d", depth);
	snprintf(a_uid, sizeof(a_uid), "%ld", uid);
	snprintf(a_gid, sizeof(a_gid), "%ld", gid);
	pid_t k = fork();
	if (k < 0)
		return -1;
	if (k == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGALRM, SIG_DFL);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null < 0 || dup2(out_fd, STDOUT_FILENO) < 0 || dup2(null, STDIN_FILENO) < 0 ||
		    dup2(null, STDERR_FILENO) < 0)
			_exit(2);
		close_range(STDERR_FILENO + 1, ~0U, 0);
		char *argv[] = { (char *)"fpmd", (char *)STACK_ARG, a_pid, a_depth, a_uid, a_gid, NULL };
		execv("/proc/self/exe", argv);
		_exit(2);
	}
	helpers[slot] = k;
	return 0;
}
