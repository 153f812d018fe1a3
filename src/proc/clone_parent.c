#include "proc/clone_parent.h"

#include <dlfcn.h>
#include <errno.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log/log.h"

/*
 * glibc caches each thread's id in its thread descriptor, and fork() has the
 * kernel write the child's there (CLONE_CHILD_SETTID).  Without it every
 * worker a zygote cloned kept the zygote's id, and a process-shared rwlock
 * held by one worker looked held by "itself" to the next: EDEADLK (APCu:
 * "Failed to acquire write lock", its stores and fetches failing under
 * load).  Where the field is, glibc says to debuggers (libthread_db's
 * descriptor: size in bits, count, offset in struct pthread); it is taken
 * only when it holds this thread's id now.
 */
static pid_t *thread_id_field(void)
{
	const uint32_t *d = dlsym(RTLD_DEFAULT, "_thread_db_pthread_tid");
	if (!d || d[0] != 8 * sizeof(pid_t) || d[2] > 4096 - sizeof(pid_t))
		return NULL;
	pid_t *field = (pid_t *)(void *)((char *)pthread_self() + d[2]);
	return *field == (pid_t)syscall(SYS_gettid) ? field : NULL;
}

static struct {
	int looked;
	pid_t *tid;              /* glibc's cached thread id, NULL: not found */
	void *robust_head;       /* this thread's robust futex list, as registered */
	size_t robust_len;
} glibc;

static void glibc_look(void)
{
	glibc.looked = 1;
	glibc.tid = thread_id_field();
	if (!glibc.tid)
		log_warning("glibc's cached thread id cannot be set in cloned workers: "
			    "process-shared locks that check their owner (APCu's) may fail "
			    "between workers");
	if (syscall(SYS_get_robust_list, 0, &glibc.robust_head, &glibc.robust_len) < 0)
		glibc.robust_head = NULL;
}

static long clone_raw(unsigned long flags, pid_t *child_tid)
{
#ifdef SYS_clone3
	struct clone_args args;
	memset(&args, 0, sizeof(args));
	args.flags = flags;
	args.child_tid = (uint64_t)(uintptr_t)child_tid;
	/* CLONE_PARENT: the child's exit signal is the caller's own (SIGCHLD, to the master) */
	args.exit_signal = 0;
	long pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid >= 0 || errno != ENOSYS)
		return pid;
#endif
	/* the argument order of clone() itself differs by architecture */
#if defined(__x86_64__)
	return syscall(SYS_clone, flags | SIGCHLD, 0L, 0L, child_tid, 0L);
#elif defined(__i386__) || defined(__arm__) || defined(__aarch64__) || defined(__powerpc__)
	return syscall(SYS_clone, flags | SIGCHLD, 0L, 0L, 0L, child_tid);
#else
	(void)child_tid;
	return syscall(SYS_clone, (flags & ~(unsigned long)CLONE_CHILD_SETTID) | SIGCHLD, 0L, 0L,
		       0L, 0L);
#endif
}

pid_t clone_parent(void)
{
	if (!glibc.looked)
		glibc_look();
	unsigned long flags = CLONE_PARENT | (glibc.tid ? CLONE_CHILD_SETTID : 0);
	long pid = clone_raw(flags, glibc.tid);
	if (pid == 0 && glibc.robust_head)
		syscall(SYS_set_robust_list, glibc.robust_head, glibc.robust_len);
	return (pid_t)pid;
}
