/*
 * A native stack of another process, for slowlog entries: ptrace-attach,
 * walk the frames with libunwind-ptrace, detach.  The process is stopped
 * only for the walk (microseconds to a few milliseconds).
 */
#ifndef FPMD_STACKTRACE_H
#define FPMD_STACKTRACE_H

#include <stddef.h>
#include <sys/types.h>

/* Appends up to depth lines "[0x...] function+0xoff" to buf; returns lines written or -1. */
int stacktrace_of(pid_t pid, int depth, char *buf, size_t cap);

#endif
