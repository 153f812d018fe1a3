/*
 * fork() whose child is its caller's sibling (CLONE_PARENT): a zygote's
 * workers are the master's children, reaped, counted and signalled by it.
 */
#ifndef FPMD_CLONE_PARENT_H
#define FPMD_CLONE_PARENT_H

#include <sys/types.h>

/*
 * As fork(), the child's parent being the caller's.  What glibc's fork()
 * sets right in its child and a bare clone does not, this does too: the
 * thread id glibc keeps for the thread (its process-shared rwlocks and
 * error-checking, recursive and robust mutexes take it for their owner's),
 * and the kernel's robust futex list (a new process starts without one).
 * No pthread_atfork() handlers run, as in a vfork()ed child (in a php
 * worker: p11-kit's and GnuTLS's, which count forks; OpenSSL 3 registers
 * none).  Warns once when the caller runs more than one thread.
 */
pid_t clone_parent(void);

#endif
