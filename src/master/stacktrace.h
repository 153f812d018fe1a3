/*
 * A native stack of another process, for slowlog entries, walked by a
 * process of its own as the pool's user (stacktrace.c says why): ptrace,
 * libunwind-ptrace, detach.  The process is stopped only for the walk
 * (microseconds to a few milliseconds).
 */
#ifndef FPMD_STACKTRACE_H
#define FPMD_STACKTRACE_H

#include <sys/types.h>

/*
 * Starts the walk of pid's stack (depth frames at most) as uid/gid (-1: as
 * the master is), its lines appended to out_fd in one write when done.
 * 0, or -1 (errno; EAGAIN when STACK_HELPERS_MAX walks already run).
 */
int stacktrace_spawn(pid_t pid, int depth, long uid, long gid, int out_fd);

/* 1 when pid was a walk's process (reaped: forgotten), 0 otherwise. */
int stacktrace_helper_reaped(pid_t pid);

/* fpmd --slowlog-stack PID DEPTH UID GID: the walk itself; -1 when argv is not that. */
int stacktrace_helper_main(int argc, char **argv);

#endif
