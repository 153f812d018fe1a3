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
 *
 * The shared zygote's channel: the pool's index and the slot (uint32 each)
 * with the same descriptors; or the pool's index and ZYGOTE_SLOT_APP with
 * four (stdout, stderr and log pipes, and the channel of the new zygote):
 * an app zygote for a php.worker_boot = zygote pool, answered the same way.
 */
#include "worker/worker.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
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
#include "proc/clone_parent.h"
#include "proc/proctitle.h"

/*
 * A spawn request: len bytes (the slot; for the shared zygote the pool's
 * index too), and 3 descriptors (stdout, stderr, log) or 4 (and the access
 * log).  -1 at EOF, -2 for anything else (whatever came with it closed).
 */
static int recv_spawn(int fd, void *msg, size_t len, int fds[4], int *nfds)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { .iov_base = msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if ((size_t)n != len || !cm || cm->cmsg_type != SCM_RIGHTS ||
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

/* The clone's descriptors and slot; then it is a worker of the pool. */
static void clone_layout(struct pool *pool, unsigned slot, const int fds[4], int nfds)
{
	/* stdout, stderr, the log pipe (and the access log): the new worker's own. */
	static const int to[4] = { 1, 2, WORKER_FD_LOG, WORKER_FD_ACCESS };
	/* 3 and up close-on-exec: see pool_child_fd_layout() in pool/child.c */
	for (int i = 0; i < nfds; i++)
		if ((to[i] < 3 ? dup2(fds[i], to[i]) : dup3(fds[i], to[i], O_CLOEXEC)) < 0)
			_exit(70);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	close(ZYGOTE_FD_CTL);
	pool->sb.slots[slot].pid = (uint32_t)getpid();
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

/*
 * Ready, then clones workers on the master's request until its channel
 * closes.  Returns only in a clone, with its slot: the zygote's caller
 * makes it a worker.
 */
static unsigned zygote_serve(struct pool *pool)
{
	/* Ready: the master waits for this before it asks for workers. */
	struct { int32_t status; unsigned char info[ZYGOTE_INFO_MAX]; } ready = { 0 };
	size_t info = pool->handler->zygote_info ? pool->handler->zygote_info(ready.info, sizeof(ready.info)) : 0;
	if (send(ZYGOTE_FD_CTL, &ready, sizeof(ready.status) + info, MSG_NOSIGNAL) < 0)
		_exit(0);
	for (;;) {
		uint32_t slot;
		int fds[4], nfds = 0;
		int rc = recv_spawn(ZYGOTE_FD_CTL, &slot, sizeof(slot), fds, &nfds);
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
			long pid = clone_parent();
			if (pid == 0) {
				clone_layout(pool, slot, fds, nfds);
				return slot;
			}
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

/* The zygote of this process, for worker_zygote_serve: one per process. */
static struct {
	struct pool *pool;
	const struct fpmd_conf *global;
	pid_t master_pid;
} zygote;

struct worker *worker_zygote_serve(void)
{
	unsigned slot = zygote_serve(zygote.pool);
	return worker_forked_begin(zygote.pool, zygote.global, slot, zygote.master_pid);
}

/* A pool's zygote takes the pool's user, limits and root (worker_setup), or exits. */
static void zygote_become_pools(struct worker *w)
{
	if (worker_setup(w) < 0)
		_exit(70);
	proctitle_set("fpmd: pool %s zygote", w->pool->conf->name);
	/* The master's death ends the zygote at once: it serves no request. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != w->master_pid)
		_exit(0);
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
	zygote_become_pools(&w);
	if (!early && zygote_prefork(pool) < 0)
		_exit(70);
	if (pool->handler->zygote_run) {
		/* The handler's program asks for the workers (worker_zygote_serve) once it is ready. */
		zygote = (__typeof__(zygote)){ pool, global, master_pid };
		pool->handler->zygote_run(pool);
		_exit(70);
	}
	unsigned slot = zygote_serve(pool);
	worker_main_forked(pool, global, slot, master_pid);
}

/*
 * php.worker_boot = zygote with php.zygote = shared: the pool's zygote is a
 * clone of the shared PHP zygote, its descriptors laid out.  PHP is started;
 * what is left is a zygote_main without PHP's start: the pool's user and
 * setup, the pool's PHP settings, then the application's boot.
 */
static void app_zygote_main(struct pool *pool, const struct fpmd_conf *global, pid_t master_pid)
{
	struct worker w = { .pool = pool, .global = global, .master_pid = master_pid };
	zygote_become_pools(&w);
	if (pool->handler->pool_join && pool->handler->pool_join(pool) < 0) {
		log_error("[pool %s] zygote %d: %s failed to take the pool's settings", pool->conf->name,
			  (int)getpid(), pool->handler->name);
		_exit(70);
	}
	zygote = (__typeof__(zygote)){ pool, global, master_pid };
	pool->handler->zygote_run(pool);
	_exit(70);
}

/* --- php.zygote = shared --------------------------------------------------- */

/*
 * Descriptors PHP opened while starting in the shared zygote (opcache's lock
 * file, ...): every pool zygote cloned from it keeps them.  PHP starts with
 * 0..SHARED_RESERVED_FDS-1 taken, so none of them is where a pool zygote's
 * layout (0..6) goes.
 */
#define SHARED_RESERVED_FDS 16
#define SHARED_PHP_FDS_MAX 64
static int php_fds[SHARED_PHP_FDS_MAX];
static size_t nphp_fds;
static int fd_high;                  /* above every descriptor open after PHP's start */

/* The descriptors open now, from /proc/self/fd; -1 if it cannot be read. */
static int open_fds(unsigned char *set, size_t cap, int *high)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int self = dirfd(d);
	memset(set, 0, cap);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		int fd = atoi(e->d_name);
		if (fd == self || fd < 0 || (size_t)fd >= cap * 8)
			continue;
		set[fd / 8] |= (unsigned char)(1u << (fd % 8));
		if (fd > *high)
			*high = fd;
	}
	closedir(d);
	return 0;
}

#define FD_SET_CAP 8192    /* bits: descriptors 0..65535 */
static int fd_in(const unsigned char *set, int fd)
{
	return fd >= 0 && fd < FD_SET_CAP * 8 && (set[fd / 8] & (1u << (fd % 8)));
}

/*
 * A shared pool's worker's descriptors: what a forked worker gets at 0..5 and 7
 * (worker.h; the access log the master sent, which a USR1 may have
 * reopened), plus PHP's own; everything else the shared zygote held (other
 * pools' sockets, its own channel and log) is closed, other pools'
 * scoreboards unmapped.
 */
static void shared_worker_layout(struct pool *pools, struct pool *p, const int fds[4], int nfds)
{
	int want[8] = { p->listen_fd, fds[0], fds[1], fds[2], p->wake_fd, nfds == 4 ? fds[3] : -1,
			-1, p->handoff_worker_fd };
	pool_child_fd_layout(pools, p, want, 8, fd_high + 1, php_fds, nphp_fds);
}

/*
 * An app zygote's: a pool zygote's layout (children_zygote_layout), plus
 * PHP's own.  The access log holds 5, as in a pool zygote: a clone puts the
 * current one there, so nothing the boot opens may take it.
 */
static void app_zygote_layout(struct pool *pools, struct pool *p, const int fds[4])
{
	int want[8] = { p->listen_fd, fds[0], fds[1], fds[2], p->wake_fd, p->access_fd, fds[3],
			p->handoff_worker_fd };
	pool_child_fd_layout(pools, p, want, 8, fd_high + 1, php_fds, nphp_fds);
}

static int same_text(const char *a, const char *b)
{
	return strcmp(a && *a ? a : "", b && *b ? b : "") == 0;
}

/*
 * Whether the shared pools need guarding from each other: one opcache
 * holds every shared pool's scripts, so pools whose users (or groups, or
 * chroots) differ must not be served a script cached by another that they
 * could not read themselves.  Pools of one user and one root see the same
 * files the same way: nothing to guard.
 */
static int shared_pools_differ(const struct pool *pools)
{
	const struct pool *first = NULL;
	for (const struct pool *p = pools; p; p = p->next) {
		if (!pool_uses_shared_php(p))
			continue;
		if (!first) {
			first = p;
			continue;
		}
		if (p->uid != first->uid || p->gid != first->gid ||
		    !same_text(p->conf->chroot, first->conf->chroot))
			return 1;
	}
	return 0;
}

void shared_zygote_main(struct pool *pools, const struct fpmd_conf *global, pid_t master_pid,
			const struct handler *h, int ctl, int out_w, int err_w, int log_w)
{
	/* Every shared pool's socket, eventfd, access log and handoff end stay: its workers want them. */
	size_t n = 0, cap = 8;
	for (struct pool *p = pools; p; p = p->next)
		cap += 4;
	int *keep = malloc(cap * sizeof(*keep));
	if (!keep || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
		_exit(70);
	keep[n++] = 0;
	keep[n++] = 1;
	keep[n++] = 2;
	keep[n++] = ctl;
	keep[n++] = log_w;
	for (struct pool *p = pools; p; p = p->next) {
		if (!pool_uses_shared_php(p))
			continue;
		keep[n++] = p->listen_fd;
		keep[n++] = p->wake_fd;
		keep[n++] = p->access_fd;
		keep[n++] = p->handoff_worker_fd;
	}
	pool_close_all_fds_but(keep, n);
	free(keep);
	/* see zygote_main: before PHP starts */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	worker_signals_install();
	log_set_pipe(log_w, "-");
	proctitle_set("fpmd: php zygote (shared)");
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != master_pid)
		_exit(0);
	/* 0..SHARED_RESERVED_FDS-1 taken: PHP's own descriptors land above them */
	for (int fd = 0; fd < SHARED_RESERVED_FDS; fd++)
		if (fcntl(fd, F_GETFD) < 0) {
			int z = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (z >= 0 && z != fd) {
				dup3(z, fd, O_CLOEXEC);
				close(z);
			}
		}
	static unsigned char before[FD_SET_CAP], after[FD_SET_CAP];
	int high = 0;
	if (open_fds(before, sizeof(before), &high) < 0)
		_exit(70);
	if (!h->shared_start || h->shared_start(pools->copt, shared_pools_differ(pools)) < 0)
		_exit(70);
	if (open_fds(after, sizeof(after), &high) < 0)
		_exit(70);
	fd_high = high;
	for (int fd = 0; fd <= high && nphp_fds < SHARED_PHP_FDS_MAX; fd++)
		if (fd_in(after, fd) && !fd_in(before, fd))
			php_fds[nphp_fds++] = fd;
	/* Ready, with what the slowlog needs to read a worker's PHP stack (the same in every clone). */
	struct { int32_t status; unsigned char info[ZYGOTE_INFO_MAX]; } ready = { 0 };
	size_t info = h->zygote_info ? h->zygote_info(ready.info, sizeof(ready.info)) : 0;
	if (send(ctl, &ready, sizeof(ready.status) + info, MSG_NOSIGNAL) < 0)
		_exit(0);
	for (;;) {
		uint32_t msg[2];
		int fds[4], nfds = 0;
		int rc = recv_spawn(ctl, msg, sizeof(msg), fds, &nfds);
		if (rc == -1)
			_exit(0);
		struct pool *pool = pools;
		for (uint32_t i = 0; pool && i < msg[0]; i++)
			pool = pool->next;
		int32_t answer;
		if (rc == 0 && pool && msg[1] == ZYGOTE_SLOT_APP) {
			if (!pool_app_zygote_from_shared(pool) || nfds != 4) {
				answer = -EINVAL;
			} else {
				long pid = clone_parent();
				if (pid == 0) {
					app_zygote_layout(pools, pool, fds);
					app_zygote_main(pool, global, master_pid);
				}
				answer = pid < 0 ? -errno : (int32_t)pid;
			}
		} else if (rc < 0 || !pool || !pool_shares_zygote(pool) || msg[1] >= pool->sb.nslots) {
			answer = -EINVAL;
		} else {
			/* Like fork(), but the child's parent is the master. */
			long pid = clone_parent();
			if (pid == 0) {
				shared_worker_layout(pools, pool, fds, nfds);
				pool->sb.slots[msg[1]].pid = (uint32_t)getpid();
				worker_main_shared(pool, global, msg[1], master_pid);
			}
			answer = pid < 0 ? -errno : (int32_t)pid;
		}
		if (rc == 0)
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
		ssize_t w;
		do
			w = send(ctl, &answer, sizeof(answer), MSG_NOSIGNAL);
		while (w < 0 && errno == EINTR);
		if (w < 0)
			_exit(0);
	}
}
