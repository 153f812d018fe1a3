/*
 * A php pool's zygote.  PHP starts once per pool, here, after the zygote
 * dropped to the pool's user; each worker is then a clone of it, so
 * opcache's shared memory and everything PHP built at startup are shared by
 * the pool's workers, copy-on-write, and no PHP code ever runs in the master
 * or as root.  Each pool has its own zygote, so each has its own opcache:
 * one pool's scripts cannot poison another's cache.
 *
 * The workers are cloned with CLONE_PARENT: they are the master's children,
 * reaped, counted and signalled by it exactly like workers it forked itself.
 *
 * Protocol on ZYGOTE_FD_CTL (SOCK_SEQPACKET): the master sends a uint32 slot
 * with three descriptors (stdout, stderr and log pipes of the new worker),
 * four with the pool's access log (reopened by USR1 since the zygote began);
 * the zygote answers an int32: the new worker's pid, or -errno.  EOF: exit.
 */
#include "worker/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "handlers/handler.h"
#include "log/log.h"
#include "master/proctitle.h"

/* The slot, and 3 descriptors (stdout, stderr, log) or 4 (and the access log). */
static int recv_spawn(int fd, uint32_t *slot, int fds[4], int *nfds)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { .iov_base = slot, .iov_len = sizeof(*slot) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (n != sizeof(*slot) || !cm || cm->cmsg_type != SCM_RIGHTS ||
	    (cm->cmsg_len != CMSG_LEN(3 * sizeof(int)) && cm->cmsg_len != CMSG_LEN(4 * sizeof(int)))) {
		/* Not the master's message: close whatever came with it. */
		for (; cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_type == SCM_RIGHTS)
				for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
					close(((int *)CMSG_DATA(cm))[i]);
		return -2;
	}
	*nfds = cm->cmsg_len == CMSG_LEN(4 * sizeof(int)) ? 4 : 3;
	memcpy(fds, CMSG_DATA(cm), (size_t)*nfds * sizeof(int));
	return 0;
}

static void become_worker(struct pool *pool, const struct fpmd_conf *global, unsigned slot,
			  pid_t master_pid, const int fds[4], int nfds)
{
	/* stdout, stderr, the log pipe (and the access log): the new worker's own. */
	static const int to[4] = { 1, 2, WORKER_FD_LOG, WORKER_FD_ACCESS };
	/* 3 and up close-on-exec: see child_fd_layout() in master/children.c */
	for (int i = 0; i < nfds; i++)
		if ((to[i] < 3 ? dup2(fds[i], to[i]) : dup3(fds[i], to[i], O_CLOEXEC)) < 0)
			_exit(70);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	close(ZYGOTE_FD_CTL);
	pool->sb.slots[slot].pid = (uint32_t)getpid();
	worker_main_forked(pool, global, slot, master_pid);
}

static int zygote_prefork(struct pool *pool)
{
	if (pool->handler->prefork_start && pool->handler->prefork_start(pool) < 0) {
		log_error("[pool %s] %s failed to start; see the lines above", pool->conf->name,
			  pool->handler->name);
		return -1;
	}
	return 0;
}

void zygote_main(struct pool *pool, const struct fpmd_conf *global, pid_t master_pid)
{
	struct worker w = { .pool = pool, .global = global, .master_pid = master_pid };
	/*
	 * The workers' signal dispositions are set before PHP starts: PHP records
	 * them at startup and, from every request on, forwards signals to what it
	 * recorded, so a handler installed later would be lost after one request.
	 */
	worker_signals_install();
	/*
	 * PHP starts as the pool's user.  A chroot'ed pool is the exception, as
	 * with php-fpm: php.ini, the extensions and fpmd-php.so are outside the
	 * chroot, so PHP starts first (reading files only; no script runs).
	 */
	int early = pool->conf->chroot && *pool->conf->chroot;
	if (early) {
		log_set_pipe(WORKER_FD_LOG, pool->conf->name);
		if (zygote_prefork(pool) < 0)
			_exit(70);
	}
	if (worker_setup(&w) < 0)
		_exit(70);
	proctitle_set("fpmd: pool %s zygote", pool->conf->name);
	/* The master's death ends the zygote at once: it serves no request. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != master_pid)
		_exit(0);
	if (!early && zygote_prefork(pool) < 0)
		_exit(70);
	/* Ready: the master waits for this before it asks for workers. */
	struct { int32_t status; unsigned char info[ZYGOTE_INFO_MAX]; } ready = { 0 };
	size_t info = pool->handler->zygote_info ? pool->handler->zygote_info(ready.info, sizeof(ready.info)) : 0;
	if (send(ZYGOTE_FD_CTL, &ready, sizeof(ready.status) + info, MSG_NOSIGNAL) < 0)
		_exit(0);
	for (;;) {
		uint32_t slot;
		int fds[4], nfds = 0;
		int rc = recv_spawn(ZYGOTE_FD_CTL, &slot, fds, &nfds);
		if (rc == -1)
			_exit(0);
		int32_t answer;
		if (rc < 0 || slot >= pool->sb.nslots) {
			answer = -EINVAL;
			if (rc == 0)
				for (int i = 0; i < nfds; i++)
					close(fds[i]);
		} else {
			/* Like fork(), but the child's parent is the master. */
			long pid = syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD), 0L, 0L, 0L, 0L);
			if (pid == 0)
				become_worker(pool, global, slot, master_pid, fds, nfds);
			answer = pid < 0 ? -errno : (int32_t)pid;
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
		}
		ssize_t n;
		do
			n = send(ZYGOTE_FD_CTL, &answer, sizeof(answer), MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			_exit(0);
	}
}
