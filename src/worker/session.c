/* A request's processes: signalled by session, waited for with a bound. */
#include "worker/session.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "worker/conn.h"

/*
 * The session id in /proc/PID/stat: the sixth field, after "(comm)" which may
 * hold anything; -1 for a zombie when live_only is set.
 */
static pid_t session_of_state(const char *pid_dir, int live_only)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%s/stat", pid_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	char state;
	int ppid, pgrp, sid;
	if (sscanf(p + 1, " %c %d %d %d", &state, &ppid, &pgrp, &sid) != 4)
		return -1;
	if (live_only && (state == 'Z' || state == 'X'))
		return -1;
	return (pid_t)sid;
}

/*
 * Every process of session sid, from /proc: signalled with sig (0: only
 * counted), the leader left out when skip_leader, zombies when live_only.
 * Returns how many were found (and signalled).
 */
static int session_walk(pid_t sid, int sig, int skip_leader, int live_only)
{
	int n = 0;
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		pid_t pid = (pid_t)atoi(e->d_name);
		if ((skip_leader && pid == sid) || session_of_state(e->d_name, live_only) != sid)
			continue;
		if (!sig || kill(pid, sig) == 0)
			n++;
	}
	closedir(d);
	return n;
}

int session_count(pid_t sid)
{
	return sid > 1 ? session_walk(sid, 0, 0, 1) : 0;
}

int session_kill(pid_t sid, int sig)
{
	if (sid <= 1)
		return 0;
	kill(-sid, sig);
	kill(sid, sig);
	return session_walk(sid, sig, 1, 0);
}

int session_wait_leader(pid_t pid, int *status, uint64_t deadline_ms, int watch_fd)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0) {
		/* No pidfd (a kernel before 5.3): the old unbounded wait. */
		return waitpid(pid, status, 0) == pid ? 1 : 0;
	}
	int rc = 0;
	for (;;) {
		if (waitpid(pid, status, WNOHANG) == pid) {
			rc = 1;
			break;
		}
		int timeout = -1;
		if (deadline_ms) {
			uint64_t now = conn_now_ms();
			if (now >= deadline_ms)
				break;
			timeout = (int)(deadline_ms - now);
		}
		struct pollfd p[2] = {
			{ .fd = pfd, .events = POLLIN },
			{ .fd = watch_fd, .events = POLLRDHUP },
		};
		int r = poll(p, watch_fd >= 0 ? 2 : 1, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0 && watch_fd >= 0 && (p[1].revents & (POLLHUP | POLLERR)) &&
		    !(p[0].revents & POLLIN)) {
			rc = -1;
			break;
		}
		/* a half-close (POLLRDHUP alone) is the end of the client's input, not an abort */
		if (r > 0 && watch_fd >= 0 && (p[1].revents & POLLRDHUP))
			watch_fd = -1;
	}
	close(pfd);
	return rc;
}

/* --- orphans ------------------------------------------------------------ */

static char children_path[64];   /* /proc/self/task/TID/children: set by session_adopt_orphans */

int session_adopt_orphans(int on)
{
	if (on && !children_path[0]) {
		snprintf(children_path, sizeof(children_path), "/proc/self/task/%d/children",
			 (int)getpid());
		if (access(children_path, R_OK) < 0) {
			children_path[0] = '\0';
			return -1;
		}
	}
	return prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0) < 0 ? -1 : 0;
}

/* Reads a small /proc file into buf (NUL-terminated); its length, or -1.  Async-signal-safe. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* Writes "/proc/PID/stat" into out without snprintf (async-signal-safe). */
static void stat_path(pid_t pid, char *out)
{
	char digits[16];
	int n = 0;
	unsigned long v = (unsigned long)pid;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n < (int)sizeof(digits));
	memcpy(out, "/proc/", 6);
	int o = 6;
	while (n)
		out[o++] = digits[--n];
	memcpy(out + o, "/stat", 6);
}

unsigned long long session_start_ticks(pid_t pid)
{
	char path[48], buf[1024];
	stat_path(pid, path);
	ssize_t n = read_small(path, buf, sizeof(buf));
	if (n <= 0)
		return 0;
	/* after "(comm)", which may hold anything: state is field 3, starttime field 22 */
	const char *p = NULL;
	for (ssize_t i = n - 1; i >= 0 && !p; i--)
		if (buf[i] == ')')
			p = buf + i + 1;
	if (!p)
		return 0;
	int field = 2;
	while (*p && field < 22) {
		while (*p == ' ')
			p++;
		field++;
		if (field == 22)
			break;
		while (*p && *p != ' ')
			p++;
	}
	unsigned long long v = 0;
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (unsigned long long)(*p++ - '0');
	return v;
}

/* This process's children, from /proc (async-signal-safe): how many, at most cap. */
static int children_now(pid_t *out, int cap)
{
	char buf[4096];
	if (!children_path[0])
		return 0;
	ssize_t len = read_small(children_path, buf, sizeof(buf));
	int n = 0;
	long pid = 0;
	for (ssize_t i = 0; i <= len && n < cap; i++) {
		if (i < len && buf[i] >= '0' && buf[i] <= '9') {
			pid = pid * 10 + (buf[i] - '0');
			continue;
		}
		if (pid > 1)
			out[n++] = (pid_t)pid;
		pid = 0;
	}
	return n;
}

void session_reap_orphans(pid_t keep)
{
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		/* looked at first (WNOWAIT): the script's end is its caller's to take */
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0 ||
		    si.si_pid == keep)
			return;
		waitpid(si.si_pid, NULL, 0);
	}
}

void session_note_children(struct session_known *known)
{
	known->n = children_now(known->pid, SESSION_KNOWN_MAX);
}

void session_kill_orphans(unsigned long long since, const struct session_known *known)
{
	if (!since)
		return;
	for (int round = 0; round < 100; round++) {
		pid_t now[256];
		int n = children_now(now, 256), killed = 0;
		for (int i = 0; i < n; i++) {
			int old = 0;
			for (int k = 0; known && k < known->n && !old; k++)
				old = known->pid[k] == now[i];
			if (old || session_start_ticks(now[i]) < since)
				continue;
			if (kill(now[i], SIGKILL) == 0)
				killed++;
		}
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (killed == 0)
			return;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}
