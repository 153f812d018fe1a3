#include "proc/clone_parent.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
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

/* clone()'s arguments are in a different order on some architectures. */
#if defined(__x86_64__)
#define CLONE_LEGACY(flags, ctid) syscall(SYS_clone, (flags), 0L, 0L, (ctid), 0L)
#elif defined(__i386__) || defined(__arm__) || defined(__aarch64__) || defined(__powerpc__) || \
	defined(__riscv) || defined(__mips__)
#define CLONE_LEGACY(flags, ctid) syscall(SYS_clone, (flags), 0L, 0L, 0L, (ctid))
#elif defined(__s390__)
#define CLONE_LEGACY(flags, ctid) syscall(SYS_clone, 0L, (flags), 0L, (ctid), 0L)
#endif

static struct {
	pid_t looked_in;         /* the process that looked: an app zygote, itself a clone, looks again */
	pid_t *tid;              /* glibc's cached thread id, NULL: not found */
	struct robust_list_head *robust_head;   /* this thread's robust futex list, as registered */
	size_t robust_len;
} glibc;

/*
 * A clone copies one thread; fork() makes glibc's locks that other threads
 * held usable again in its child (malloc, stdio, the loader), a bare clone
 * does not.  A zygote is single-threaded unless something PHP loaded started
 * a thread, at its start or its boot (it runs no PHP once it clones): looked
 * at before its first clone, said once, since its workers may then hang on
 * such a lock.
 */
static void threads_check(void)
{
	char buf[2048];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	const char *p = strstr(buf, "\nThreads:");
	long threads = p ? strtol(p + sizeof("\nThreads:") - 1, NULL, 10) : 0;
	if (threads > 1)
		log_warning("the zygote runs %ld threads (an extension or the worker script started "
			    "them): the workers it clones copy only one, and may hang on a lock one of "
			    "the others held", threads);
}

static void glibc_look(void)
{
	glibc.looked_in = getpid();
	glibc.tid = thread_id_field();
	if (!glibc.tid)
		log_warning("glibc's cached thread id cannot be set in cloned workers: "
			    "process-shared locks that check their owner (APCu's) may fail "
			    "between workers");
	void *head = NULL;
	if (syscall(SYS_get_robust_list, 0, &head, &glibc.robust_len) < 0)
		head = NULL;
	glibc.robust_head = head;
	threads_check();
}

static long clone_raw(unsigned long flags, pid_t *child_tid)
{
#ifdef CLONE_LEGACY
	return CLONE_LEGACY(flags | SIGCHLD, child_tid);
#else
#ifdef SYS_clone3
	struct clone_args args;
	memset(&args, 0, sizeof(args));
	args.flags = flags;
	args.child_tid = (uint64_t)(uintptr_t)child_tid;
	/* CLONE_PARENT: the child's exit signal is the caller's own (SIGCHLD, to the master) */
	args.exit_signal = 0;
	long pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid >= 0 || (errno != ENOSYS && errno != EPERM))
		return pid;
#endif
	if (glibc.tid) {
		glibc.tid = NULL;
		log_warning("clone3() refused: glibc's cached thread id is not set in cloned workers; "
			    "process-shared locks that check their owner (APCu's) may fail between "
			    "workers");
	}
	/* an unknown argument order: only the flags, first everywhere but s390 */
	return syscall(SYS_clone, (flags & ~(unsigned long)CLONE_CHILD_SETTID) | SIGCHLD, 0L, 0L,
		       0L, 0L);
#endif
}

pid_t clone_parent(void)
{
	if (glibc.looked_in != getpid())
		glibc_look();
	unsigned long flags = CLONE_PARENT | (glibc.tid ? CLONE_CHILD_SETTID : 0);
	long pid = clone_raw(flags, glibc.tid);
	if (pid == 0 && glibc.robust_head) {
		/*
		 * The kernel gives a new process no robust list: registered again,
		 * empty, as fork() leaves it (no mutex of the zygote's is the child's).
		 */
		glibc.robust_head->list.next = &glibc.robust_head->list;
		glibc.robust_head->list_op_pending = NULL;
		syscall(SYS_set_robust_list, glibc.robust_head, glibc.robust_len);
	}
	return (pid_t)pid;
}
