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

/*
 * What /proc/PID/stat says after "(comm)", which may hold anything: from the
 * state on (field 3), in buf; NULL when there is no such process.
 * Async-signal-safe.
 */
static const char *stat_after_comm(pid_t pid, char *buf, size_t cap)
{
	char path[48];
	stat_path(pid, path);
	ssize_t n = read_small(path, buf, cap);
	if (n <= 0)
		return NULL;
	const char *p = strrchr(buf, ')');
	return p ? p + 1 : NULL;
}

/* The session id of pid (the sixth field); -1 for a zombie when live_only is set. */
static pid_t session_of_state(pid_t pid, int live_only)
{
	char buf[512];
	const char *p = stat_after_comm(pid, buf, sizeof(buf));
	char state;
	int ppid, pgrp, sid;
	if (!p || sscanf(p, " %c %d %d %d", &state, &ppid, &pgrp, &sid) != 4)
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
		if ((skip_leader && pid == sid) || session_of_state(pid, live_only) != sid)
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
	if (prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0) < 0)
		return -1;
	if (on && !children_path[0]) {
		snprintf(children_path, sizeof(children_path), "/proc/self/task/%d/children",
			 (int)getpid());
		if (access(children_path, R_OK) < 0) {
			children_path[0] = '\0';
			return -1;
		}
	}
	return 0;
}

unsigned long long session_start_ticks(pid_t pid)
{
	char buf[1024];
	const char *p = stat_after_comm(pid, buf, sizeof(buf));
	if (!p)
		return 0;
	/* from the state (field 3) to starttime (field 22) */
	for (int field = 3; field < 22 && *p; field++) {
		while (*p == ' ')
			p++;
		while (*p && *p != ' ')
			p++;
	}
	while (*p == ' ')
		p++;
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

/* The rounds of session_kill_orphans and session_kill_children (all: every child). */
static void kill_children(unsigned long long since, const struct session_known *known, int all)
{
	for (int round = 0; round < 100; round++) {
		pid_t now[256];
		int n = children_now(now, 256), killed = 0;
		for (int i = 0; i < n; i++) {
			int old = 0;
			for (int k = 0; known && k < known->n && !old; k++)
				old = known->pid[k] == now[i];
			if (!all && (old || session_start_ticks(now[i]) < since))
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

void session_kill_orphans(unsigned long long since, const struct session_known *known)
{
	if (since)
		kill_children(since, known, 0);
}

void session_kill_children(void)
{
	kill_children(0, NULL, 1);
}
