/*
 * The master's side of a php pool's zygote (see worker/zygote.c): start it,
 * ask it for workers, restart it when it dies.
 *
 * The zygote runs as the pool's user and hosts PHP, so the master trusts
 * nothing it says: an answer is a pid only if that pid is a child of the
 * master (waitid) that no pool already owns.  The master waits for an answer
 * at most ZYGOTE_ANSWER_MS: a clone takes well under a millisecond.
 *
 * php.zygote = pool: the master forks each pool's zygote, which starts PHP
 * itself; an idle ondemand pool lets its zygote go (zygote_retire).
 * php.zygote = shared (the default, php-fpm's memory profile): the master
 * forks one shared zygote that starts PHP once and clones the workers of
 * every shared pool (worker/zygote.c); each drops to its pool's user and
 * applies its pool's PHP settings, as php-fpm's children do.  A shared pool
 * has no zygote of its own.  A shared pool that boots its application in a
 * zygote (php.worker_boot = zygote) has one: an app zygote, cloned by the
 * shared zygote on the master's request (ZYGOTE_SLOT_APP), which takes the
 * pool's user and settings, boots the application and clones the pool's
 * workers.  It is answered for like a worker: a pid that is the master's
 * unowned child.
 */
#include "master/master.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ev/ev.h"
#include "handlers/handler.h"
#include "log/log.h"
#include "worker/worker.h"

#define ZYGOTE_ANSWER_MS 2000
/* PHP's startup: extensions, opcache's shared memory, php.ini. */
#define ZYGOTE_START_MS  30000

/* One message: an int32, then (in the ready message only) the handler's info bytes. */
static int read_answer(int fd, int timeout_ms, int32_t *answer, struct pool_master *info_to)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t deadline = sb_mono_us() + (uint64_t)timeout_ms * 1000u;
	unsigned char msg[sizeof(int32_t) + ZYGOTE_INFO_MAX];
	for (;;) {
		uint64_t now = sb_mono_us();
		int left = now >= deadline ? 0 : (int)((deadline - now) / 1000u) + 1;
		int n = poll(&pfd, 1, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			errno = n == 0 ? ETIMEDOUT : errno;
			return -1;
		}
		ssize_t r = recv(fd, msg, sizeof(msg), MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < (ssize_t)sizeof(*answer)) {
			errno = r == 0 ? EPIPE : EPROTO;
			return -1;
		}
		memcpy(answer, msg, sizeof(*answer));
		if (info_to) {
			info_to->zygote_info_len = (size_t)r - sizeof(*answer);
			memcpy(info_to->zygote_info, msg + sizeof(*answer), info_to->zygote_info_len);
		}
		return 0;
	}
}

static void on_zygote_ready(struct ev_loop *loop, int fd, uint32_t events, void *data);
static void q_read_answers(struct master *m, struct spawn_queue *q, struct pool *owner, int fd);

static void on_zygote_answers(struct ev_loop *loop, int fd, uint32_t events, void *data)
{
	struct pool *p = data;
	(void)loop;
	(void)events;
	q_read_answers(p->own->master, &p->own->spawnq, p, fd);
}

static void on_shared_answers(struct ev_loop *loop, int fd, uint32_t events, void *data)
{
	struct master *m = data;
	(void)loop;
	(void)events;
	q_read_answers(m, &m->shared_spawnq, NULL, fd);
}
static int pid_owned(const struct master *m, pid_t pid);


static void q_fail_all(struct master *m, struct spawn_queue *q);

static void kill_zygote(struct master *m, struct pool *p)
{
	q_fail_all(m, &p->own->spawnq);
	if (p->own->zygote_watch)
		ev_fd_del(m->loop, p->own->zygote_watch);
	p->own->zygote_watch = NULL;
	if (p->own->zygote_fd >= 0)
		close(p->own->zygote_fd);
	p->own->zygote_fd = -1;
	p->own->zygote_ready = 0;
	if (p->own->zygote && p->own->zygote->pid > 0)
		kill(p->own->zygote->pid, SIGKILL);
}

/* Workers wanted now that the zygote answers again: what the pm would have spawned. */
static void spawn_missing(struct master *m, struct pool *p)
{
	unsigned want = 0;
	if (p->conf->pm == PM_STATIC)
		want = (unsigned)p->conf->pm_max_children;
	else if (p->conf->pm == PM_DYNAMIC)
		want = (unsigned)p->conf->pm_start_servers;
	if (want > p->own->running + p->own->spawning)
		POOL_HDR_SET(p, respawns, p->own->hdr.respawns + (uint64_t)children_spawn(m, p, want - p->own->running - p->own->spawning));
}

/* A zygote's channel (socketpair) and its stdout, stderr and log pipes. */
struct zygote_pipes {
	int sv[2], out[2], err[2], log[2];
};

static int zygote_pipes_open(struct zygote_pipes *zp, const char *what)
{
	*zp = (struct zygote_pipes){ { -1, -1 }, { -1, -1 }, { -1, -1 }, { -1, -1 } };
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, zp->sv) < 0 ||
	    pipe2(zp->out, O_CLOEXEC) < 0 || pipe2(zp->err, O_CLOEXEC) < 0 ||
	    pipe2(zp->log, O_CLOEXEC) < 0) {
		log_sys(LL_ERROR, "[pool %s] cannot create the zygote's channels", what);
		return -1;
	}
	return 0;
}

static void close_pair(int fd[2], int which)
{
	for (int i = 0; i < 2; i++)
		if ((which < 0 || which == i) && fd[i] >= 0) {
			close(fd[i]);
			fd[i] = -1;
		}
}

/* which: 0 the master's ends, 1 the zygote's, -1 both */
static void zygote_pipes_close(struct zygote_pipes *zp, int which)
{
	close_pair(zp->sv, which);
	close_pair(zp->out, which);
	close_pair(zp->err, which);
	close_pair(zp->log, which);
}

/*
 * The master's record of a zygote (not in any pool's children: its pipes
 * watched, its output relayed), once the zygote's ends are its own: they
 * are closed here, and *ctl is the master's end of the channel.  pid 0: an
 * app zygote not answered for yet.  NULL when out of memory.
 */
static struct child *zygote_record(struct master *m, struct pool *p, const char *what, pid_t pid,
				   struct zygote_pipes *zp, int *ctl)
{
	struct child *z = calloc(1, sizeof(*z));
	if (!z)
		return NULL;
	zygote_pipes_close(zp, 1);
	z->pid = pid;
	z->pool = p;
	snprintf(z->pool_name, sizeof(z->pool_name), "%s", what);
	z->decorate = p ? p->conf->decorate_workers_output : 1;
	z->slot = ~0u;
	z->start_mono_us = sb_mono_us();
	fcntl(zp->out[0], F_SETFL, O_NONBLOCK);
	fcntl(zp->err[0], F_SETFL, O_NONBLOCK);
	fcntl(zp->log[0], F_SETFL, O_NONBLOCK);
	children_watch_pipes(m, z, zp->log[0], zp->out[0], zp->err[0]);
	*ctl = zp->sv[0];
	return z;
}

/*
 * Forks a zygote with its channel and output pipes and records it.
 * p: the pool whose own zygote it is, NULL for the shared one (h: its
 * handler).  Returns it with *ctl set, or NULL (logged).
 */
static struct child *zygote_fork(struct master *m, struct pool *p, const struct handler *h,
				 int *ctl)
{
	const char *what = p ? p->conf->name : "php-zygote";
	struct zygote_pipes zp;
	if (zygote_pipes_open(&zp, what) < 0)
		goto fail;
	pid_t pid = fork();
	if (pid < 0) {
		log_sys(LL_ERROR, "[pool %s] fork() of the zygote failed", what);
		goto fail;
	}
	if (pid == 0) {
		if (p) {
			children_zygote_layout(m, p, zp.out[1], zp.err[1], zp.log[1], zp.sv[1]);
			zygote_main(p, m->conf, m->pid);
		}
		if (h)
			shared_zygote_main(m->pools, m->conf, m->pid, h, zp.sv[1], zp.out[1], zp.err[1],
					   zp.log[1]);
		_exit(70);
	}
	struct child *z = zygote_record(m, p, what, pid, &zp, ctl);
	if (!z) {
		kill(pid, SIGKILL);
		goto fail;
	}
	log_debug("[pool %s] zygote %d started", what, (int)pid);
	return z;
fail:
	zygote_pipes_close(&zp, -1);
	return NULL;
}

static int send_spawn(int fd, const void *msg, size_t len, const int *fds, size_t nfds);
static int q_enqueue(struct master *m, struct spawn_queue *q, struct pool *p, unsigned slot,
		     const int rfds[3]);
static void q_give_up(struct master *m, struct pool *p);

static uint32_t pool_index(const struct master *m, const struct pool *p)
{
	uint32_t i = 0;
	for (const struct pool *o = m->pools; o && o != p; o = o->next)
		i++;
	return i;
}

/*
 * php.worker_boot = zygote with php.zygote = shared: the pool's zygote is
 * asked of the shared zygote (its answer, the pid, comes through the shared
 * queue: q_read_answers).  Not ready yet: it is asked for when it is
 * (shared_now_ready).
 */
static int zygote_clone_from_shared(struct master *m, struct pool *p)
{
	if (m->shared_zygote_fd < 0 || !m->shared_zygote_ready) {
		p->own->zygote_awaits_shared = 1;
		return 0;
	}
	p->own->zygote_awaits_shared = 0;
	struct zygote_pipes zp;
	if (zygote_pipes_open(&zp, p->conf->name) < 0) {
		zygote_pipes_close(&zp, -1);
		return -1;
	}
	uint32_t msg[2] = { pool_index(m, p), ZYGOTE_SLOT_APP };
	int fds[4] = { zp.out[1], zp.err[1], zp.log[1], zp.sv[1] };
	if (send_spawn(m->shared_zygote_fd, msg, sizeof(msg), fds, 4) < 0) {
		log_sys(LL_ERROR, "[pool %s] cannot ask the shared PHP zygote for the pool's zygote; "
			"restarting it", p->conf->name);
		zygote_pipes_close(&zp, -1);
		q_give_up(m, NULL);
		p->own->zygote_awaits_shared = 1;
		return -1;
	}
	int ctl;
	struct child *z = zygote_record(m, p, p->conf->name, 0, &zp, &ctl);
	static const int none[3] = { -1, -1, -1 };
	if (!z || q_enqueue(m, &m->shared_spawnq, p, ZYGOTE_SLOT_APP, none) < 0) {
		/* a request in flight whose answer nobody can take: the shared zygote's state is unknown */
		if (z) {
			children_close_pipes(m, z);
			free(z);
			close(ctl);
		} else {
			zygote_pipes_close(&zp, -1);
		}
		q_give_up(m, NULL);
		p->own->zygote_awaits_shared = 1;
		errno = ENOMEM;
		return -1;
	}
	/* its channel is heard only once its pid is known (q_read_answers): nothing it says before counts */
	p->own->zygote = z;
	p->own->zygote_fd = ctl;
	p->own->zygote_ready = 0;
	log_debug("[pool %s] zygote asked of the shared PHP zygote", p->conf->name);
	return 0;
}

int zygote_start(struct master *m, struct pool *p, int wait_ready)
{
	if (pool_app_zygote_from_shared(p)) {
		if (zygote_clone_from_shared(m, p) < 0)
			return -1;
		return wait_ready && p->own->zygote ? zygote_wait_ready(m, p) : 0;
	}
	int ctl;
	struct child *z = zygote_fork(m, p, NULL, &ctl);
	if (!z)
		return -1;
	p->own->zygote = z;
	p->own->zygote_fd = ctl;
	p->own->zygote_ready = 0;
	if (!wait_ready) {
		p->own->zygote_watch = ev_fd_add(m->loop, p->own->zygote_fd, EPOLLIN, on_zygote_ready, p);
		return p->own->zygote_watch ? 0 : -1;
	}
	return zygote_wait_ready(m, p);
}

static void on_zygote_ready(struct ev_loop *loop, int fd, uint32_t events, void *data)
{
	struct pool *p = data;
	struct master *m = p->own->master;
	int32_t answer = -1;
	(void)events;
	ev_fd_del(loop, p->own->zygote_watch);
	p->own->zygote_watch = NULL;
	if (read_answer(fd, 0, &answer, p->own) < 0 || answer != 0) {
		kill_zygote(m, p);      /* the reaper restarts it, after a back-off */
		return;
	}
	p->own->zygote_ready = 1;
	p->own->zygote_watch = ev_fd_add(loop, fd, EPOLLIN, on_zygote_answers, p);
	if (p->own->zygote_failures || p->conf->pm != PM_ONDEMAND)
		log_notice("[pool %s] zygote %d restarted", p->conf->name, (int)p->own->zygote->pid);
	if (m->state != MASTER_RUNNING)
		return;
	if (p->conf->pm == PM_ONDEMAND)
		pm_mark(p, 0);          /* the connection that woke it up is waiting: a full tick */
	else
		spawn_missing(m, p);
}

int zygote_wait_ready(struct master *m, struct pool *p)
{
	/* An app zygote: first the shared zygote's answer, its pid (at start: nothing else waits). */
	if (p->own->zygote && !p->own->zygote->pid)
		zygote_wait_spawned(m);
	if (!p->own->zygote || p->own->zygote_ready)
		return p->own->zygote ? 0 : -1;
	if (p->own->zygote_watch)
		ev_fd_del(m->loop, p->own->zygote_watch);
	p->own->zygote_watch = NULL;
	int32_t answer;
	if (!p->own->zygote->pid ||
	    read_answer(p->own->zygote_fd, ZYGOTE_START_MS, &answer, p->own) < 0 || answer != 0) {
		/* Its own log lines say why: out with them before ours. */
		struct child *z = p->own->zygote;
		pid_t pid = z->pid;
		if (!pid)
			log_error("[pool %s] the shared PHP zygote did not answer for the pool's zygote "
				  "within %d ms", p->conf->name, ZYGOTE_ANSWER_MS);
		kill_zygote(m, p);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		children_close_pipes(m, z);
		free(z);
		p->own->zygote = NULL;
		return -1;
	}
	p->own->zygote_ready = 1;
	p->own->zygote_watch = ev_fd_add(m->loop, p->own->zygote_fd, EPOLLIN, on_zygote_answers, p);
	return p->own->zygote_watch ? 0 : -1;
}

static int pid_owned(const struct master *m, pid_t pid)
{
	if (m->shared_zygote && m->shared_zygote->pid == pid)
		return 1;
	for (const struct pool *o = m->pools; o; o = o->next) {
		if (o->own->zygote && o->own->zygote->pid == pid)
			return 1;
		for (const struct child *c = o->own->children; c; c = c->next)
			if (c->pid == pid)
				return 1;
	}
	for (const struct child *c = m->old; c; c = c->next)
		if (c->pid == pid)
			return 1;
	return 0;
}

/* The effective uid of pid (from /proc), or -1. */
static uid_t proc_euid(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return (uid_t)-1;
	unsigned long real, eff;
	uid_t uid = (uid_t)-1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Uid: %lu %lu", &real, &eff) == 2) {
			uid = (uid_t)eff;
			break;
		}
	fclose(f);
	return uid;
}

/*
 * A pool's own zygote runs as the pool's user, and so do its clones from
 * the start: a pid of another user is not one of them (another pool's
 * zygote the shared one has just cloned, say).  The shared zygote's clones
 * begin as root and drop later: nothing to check there.
 */
static int answer_of_pool_user(const struct pool *owner, pid_t pid)
{
	if (!owner || geteuid() != 0 || owner->uid == (uid_t)-1 || owner->uid == 0)
		return 1;
	return proc_euid(pid) == owner->uid;
}

/* --- spawn requests: sent, queued, answered through the event loop --------- */

static void q_timer_arm(struct spawn_queue *q);

static int q_push(struct spawn_queue *q, const struct spawn_pending *e)
{
	if (q->head == q->len)
		q->head = q->len = 0;
	if (q->len == q->cap) {
		if (q->head) {
			memmove(q->items, q->items + q->head, (q->len - q->head) * sizeof(*q->items));
			q->len -= q->head;
			q->head = 0;
		} else {
			size_t cap = q->cap ? q->cap * 2 : 8;
			struct spawn_pending *n = realloc(q->items, cap * sizeof(*n));
			if (!n)
				return -1;
			q->items = n;
			q->cap = cap;
		}
	}
	q->items[q->len++] = *e;
	return 0;
}

static int q_pop(struct spawn_queue *q, struct spawn_pending *e)
{
	if (q->head == q->len)
		return 0;
	*e = q->items[q->head++];
	return 1;
}

static void app_zygote_lost(struct master *m, struct pool *p);
static int reaped_unowned_take(struct master *m, pid_t pid, int *status);

/* The channel is gone (or not to be trusted): every request waiting on it fails. */
static void q_fail_all(struct master *m, struct spawn_queue *q)
{
	struct spawn_pending e;
	while (q_pop(q, &e))
		if (e.slot == ZYGOTE_SLOT_APP)
			app_zygote_lost(m, e.pool);
		else
			children_spawn_failed(m, e.pool, e.slot, e.fds);
	if (q->timer)
		ev_timer_disarm(q->timer);
}

static void q_free(struct master *m, struct spawn_queue *q)
{
	q_fail_all(m, q);
	if (q->timer)
		ev_timer_free(m->loop, q->timer);
	q->timer = NULL;
	free(q->items);
	memset(q, 0, sizeof(*q));
}

static int send_spawn(int fd, const void *msg, size_t len, const int *fds, size_t nfds)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	memset(cbuf, 0, sizeof(cbuf));
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = CMSG_SPACE(nfds * sizeof(int)) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	ssize_t n;
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -1 : 0;
}

static void shared_close(struct master *m);

/*
 * A zygote that does not answer in time, says what it must not, or closed
 * its channel: killed (the reaper restarts it), its requests failed.  p is
 * the pool whose zygote it is, NULL for the shared one.
 */
static void q_give_up(struct master *m, struct pool *p)
{
	if (!p) {
		if (m->shared_zygote && m->shared_zygote->pid > 0)
			kill(m->shared_zygote->pid, SIGKILL);
		shared_close(m);
		return;
	}
	kill_zygote(m, p);
}

static void on_q_timer(struct ev_loop *loop, struct ev_watch *t, void *data)
{
	struct spawn_queue *q = data;
	struct master *m = NULL;
	(void)loop;
	(void)t;
	if (q->head == q->len)
		return;
	struct pool *p = q->items[q->head].pool;
	m = p->own->master;
	uint64_t age = sb_mono_us() - q->items[q->head].at_us;
	if (age < (uint64_t)ZYGOTE_ANSWER_MS * 1000u) {
		q_timer_arm(q);
		return;
	}
	log_error("[pool %s] the %szygote did not answer a spawn request within %d ms; restarting it",
		  p->conf->name, q == &m->shared_spawnq ? "shared PHP " : "", ZYGOTE_ANSWER_MS);
	q_give_up(m, q == &m->shared_spawnq ? NULL : p);
}

/* Armed for the oldest request's deadline while any waits. */
static void q_timer_arm(struct spawn_queue *q)
{
	if (!q->timer || q->head == q->len)
		return;
	uint64_t age = sb_mono_us() - q->items[q->head].at_us;
	uint64_t left = age >= (uint64_t)ZYGOTE_ANSWER_MS * 1000u ? 0
			: (uint64_t)ZYGOTE_ANSWER_MS * 1000u - age;
	ev_timer_arm(q->timer, (unsigned)(left / 1000u) + 1u, 0);
}

/*
 * Answers of a zygote, in the order of its queue: a pid is a worker only if
 * it is a child of the master that nobody owns yet (the zygote is not
 * trusted); anything else restarts the zygote and fails what still waits.
 */
static void q_read_answers(struct master *m, struct spawn_queue *q, struct pool *owner, int fd)
{
	for (;;) {
		int32_t answer;
		ssize_t r = recv(fd, &answer, sizeof(answer), MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		struct spawn_pending e;
		if (r != (ssize_t)sizeof(answer) || !q_pop(q, &e)) {
			if (r > 0)
				log_error("a zygote answered a spawn request nobody made; restarting it");
			q_give_up(m, owner);     /* EOF too: it is gone, the reaper says why */
			return;
		}
		struct pool *p = e.pool;
		int app = e.slot == ZYGOTE_SLOT_APP;
		const char *what = app ? "the pool's zygote" : "a worker";
		if (answer <= 0) {
			errno = -answer;
			log_sys(LL_ERROR, "[pool %s] the %szygote could not clone %s", p->conf->name,
				owner ? "" : "shared PHP ", what);
			if (app) {
				app_zygote_lost(m, p);
			} else {
				children_spawn_failed(m, p, e.slot, e.fds);
				children_respawn_later(m, p);
			}
			continue;
		}
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)answer, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
		    pid_owned(m, (pid_t)answer) || !answer_of_pool_user(owner, (pid_t)answer)) {
			int status = 0;
			int died = reaped_unowned_take(m, (pid_t)answer, &status);
			if (died && app)
				log_error("[pool %s] %s (pid %d) exited before the master heard of it",
					  p->conf->name, what, (int)answer);
			else if (!died)
				log_error("[pool %s] the %szygote answered pid %d, which is not a new child "
					  "of the master; restarting it", p->conf->name,
					  owner ? "" : "shared PHP ", (int)answer);
			if (app)
				app_zygote_lost(m, p);
			else if (died)
				children_spawn_died(m, p, e.slot, (pid_t)answer, e.fds, status);
			else
				children_spawn_failed(m, p, e.slot, e.fds);
			if (died)
				continue;
			q_give_up(m, owner);
			return;
		}
		if (app) {
			struct child *z = p->own->zygote;
			if (z && !z->pid && p->own->zygote_fd >= 0 && m->state == MASTER_RUNNING) {
				z->pid = (pid_t)answer;
				log_debug("[pool %s] zygote %d cloned from the shared PHP zygote",
					  p->conf->name, (int)answer);
				p->own->zygote_watch = ev_fd_add(m->loop, p->own->zygote_fd, EPOLLIN,
								 on_zygote_ready, p);
				if (!p->own->zygote_watch)
					kill_zygote(m, p);      /* reaped, restarted after the back-off */
			} else {
				kill((pid_t)answer, SIGKILL);   /* asked for, then given up: reaped as nobody's */
			}
			continue;
		}
		p->own->spawning--;
		m->total_children--;
		children_adopt(m, p, e.slot, (pid_t)answer, e.fds);
	}
	if (q->head < q->len)
		q_timer_arm(q);
	else if (q->timer)
		ev_timer_disarm(q->timer);
}

static int q_enqueue(struct master *m, struct spawn_queue *q, struct pool *p, unsigned slot,
		     const int rfds[3])
{
	struct spawn_pending e = { .pool = p, .slot = slot, .at_us = sb_mono_us() };
	memcpy(e.fds, rfds, sizeof(e.fds));
	if (!q->timer)
		q->timer = ev_timer_new(m->loop, on_q_timer, q);
	if (!q->timer || q_push(q, &e) < 0)
		return -1;
	if (q->len - q->head == 1)
		q_timer_arm(q);
	return 0;
}

int zygote_request(struct master *m, struct pool *p, unsigned slot, int out_w, int err_w,
		   int log_w, const int rfds[3])
{
	int shared = pool_shares_zygote(p);
	if (!shared && !p->own->zygote && !(p->own->zygote_timer && ev_timer_armed(p->own->zygote_timer))) {
		/* an ondemand pool starts PHP when its first connection comes */
		zygote_start(m, p, 0);
		errno = EAGAIN;
		return -1;
	}
	int fd = shared ? m->shared_zygote_fd : p->own->zygote_fd;
	if (fd < 0 || !(shared ? m->shared_zygote_ready : p->own->zygote_ready)) {
		errno = EAGAIN;
		return -1;
	}
	/* The output pipes become the pool user's, as a forked worker's do. */
	if (p->conf->catch_workers_output && geteuid() == 0 && p->uid != (uid_t)-1) {
		if (fchown(out_w, p->uid, p->gid) < 0 || fchown(err_w, p->uid, p->gid) < 0)
			log_sys(LL_WARNING, "[pool %s] fchown() of the output pipes failed", p->conf->name);
	}
	/* the access log goes with each request: a USR1 may have reopened it since the zygote began */
	int fds[4] = { out_w, err_w, log_w, p->access_fd };
	size_t nfds = p->access_fd >= 0 ? 4 : 3;
	struct spawn_queue *q = shared ? &m->shared_spawnq : &p->own->spawnq;
	int rc;
	if (shared) {
		uint32_t msg[2] = { pool_index(m, p), slot };
		rc = send_spawn(fd, msg, sizeof(msg), fds, nfds);
	} else {
		uint32_t msg = slot;
		rc = send_spawn(fd, &msg, sizeof(msg), fds, nfds);
	}
	if (rc < 0) {
		/* EAGAIN: its queue is full (it is stopped, or far behind): a restart is the cure */
		log_sys(LL_ERROR, "[pool %s] cannot send the %szygote a spawn request; restarting it",
			p->conf->name, shared ? "shared PHP " : "");
		q_give_up(m, shared ? NULL : p);
		return -1;
	}
	if (q_enqueue(m, q, p, slot, rfds) < 0) {
		/* out of memory with a request in flight: the zygote's state is unknown */
		q_give_up(m, shared ? NULL : p);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/*
 * At start, before "ready": the answers to the first spawn requests, so that
 * a ready pool has its workers (as php-fpm's, which forks them first) and a
 * zygote that cannot clone them fails the start rather than a later request.
 * The master serves nothing yet: it may block, ZYGOTE_ANSWER_MS at most.
 */
int zygote_wait_spawned(struct master *m)
{
	size_t cap = 1;
	for (struct pool *p = m->pools; p; p = p->next)
		cap++;
	struct pollfd *pfd = calloc(cap, sizeof(*pfd));
	struct spawn_queue **qs = calloc(cap, sizeof(*qs));
	struct pool **owners = calloc(cap, sizeof(*owners));
	int rc = -1;
	if (!pfd || !qs || !owners)
		goto out;
	uint64_t deadline = sb_mono_us() + (uint64_t)ZYGOTE_ANSWER_MS * 1000u;
	for (;;) {
		nfds_t n = 0;
		if (m->shared_zygote_fd >= 0 && m->shared_spawnq.head < m->shared_spawnq.len) {
			pfd[n] = (struct pollfd){ .fd = m->shared_zygote_fd, .events = POLLIN };
			qs[n] = &m->shared_spawnq;
			owners[n++] = NULL;
		}
		for (struct pool *p = m->pools; p && n < cap; p = p->next)
			if (p->own->zygote_fd >= 0 && p->own->spawnq.head < p->own->spawnq.len) {
				pfd[n] = (struct pollfd){ .fd = p->own->zygote_fd, .events = POLLIN };
				qs[n] = &p->own->spawnq;
				owners[n++] = p;
			}
		if (!n) {
			rc = 0;
			break;
		}
		uint64_t now = sb_mono_us();
		if (now >= deadline) {
			for (nfds_t i = 0; i < n; i++) {
				struct pool *p = qs[i]->items[qs[i]->head].pool;
				log_error("[pool %s] the %szygote did not answer a spawn request within %d ms",
					  p->conf->name, owners[i] ? "" : "shared PHP ", ZYGOTE_ANSWER_MS);
				q_give_up(m, owners[i]);
			}
			errno = ETIMEDOUT;
			break;
		}
		int r = poll(pfd, n, (int)((deadline - now) / 1000u) + 1);
		if (r < 0 && errno != EINTR)
			break;
		for (nfds_t i = 0; r > 0 && i < n; i++)
			if (pfd[i].revents)
				q_read_answers(m, qs[i], owners[i], pfd[i].fd);
	}
out:
	free(pfd);
	free(qs);
	free(owners);
	return rc;
}

static void on_zygote_timer(struct ev_loop *loop, struct ev_watch *t, void *data)
{
	struct pool *p = data;
	(void)loop;
	(void)t;
	if (p->own->master->state == MASTER_RUNNING && !p->own->zygote)
		zygote_start(p->own->master, p, 0);
}

/*
 * A zygote that died is started again after a back-off that doubles while
 * it keeps dying young (under 10 s): 250 ms, then up to 30 s.
 */
static void restart_later(struct master *m, struct ev_watch **timer, unsigned *failures, double lived,
			  ev_timer_cb cb, void *data)
{
	*failures = lived < 10.0 ? *failures + 1 : 0;
	unsigned f = *failures;
	unsigned delay = f ? 250u << (f > 7 ? 7 : f - 1) : 0;
	if (delay > 30000)
		delay = 30000;
	if (!*timer)
		*timer = ev_timer_new(m->loop, cb, data);
	if (*timer)
		ev_timer_arm(*timer, delay ? delay : 1, 0);
}

/*
 * An app zygote asked of the shared zygote that will not come, or that went
 * before its pid was known: asked again after the back-off.  One whose pid
 * is known is the reaper's (zygote_reaped).
 */
static void app_zygote_lost(struct master *m, struct pool *p)
{
	struct child *z = p->own->zygote;
	if (!z || z->pid)
		return;
	kill_zygote(m, p);
	children_close_pipes(m, z);
	free(z);
	p->own->zygote = NULL;
	if (m->state == MASTER_RUNNING)
		restart_later(m, &p->own->zygote_timer, &p->own->zygote_failures, 0.0, on_zygote_timer, p);
}

/* The records an answer can no longer name (older than its time) go. */
static void reaped_unowned_prune(struct master *m, uint64_t now)
{
	size_t keep = 0;
	for (size_t i = 0; i < m->reaped_unowned_n; i++)
		if (m->reaped_unowned[i].pid > 0 &&
		    now - m->reaped_unowned[i].at_us <= (uint64_t)ZYGOTE_ANSWER_MS * 1000u)
			m->reaped_unowned[keep++] = m->reaped_unowned[i];
	m->reaped_unowned_n = keep;
}

#define REAPED_UNOWNED_MAX 65536u   /* beyond, the oldest is forgotten */

void zygote_reaped_unowned(struct master *m, pid_t pid, int status)
{
	uint64_t now = sb_mono_us();
	reaped_unowned_prune(m, now);
	if (m->reaped_unowned_n == m->reaped_unowned_cap) {
		size_t cap = m->reaped_unowned_cap ? m->reaped_unowned_cap * 2 : 16;
		struct reaped_unowned *r = cap <= REAPED_UNOWNED_MAX
			? realloc(m->reaped_unowned, cap * sizeof(*r)) : NULL;
		if (r) {
			m->reaped_unowned = r;
			m->reaped_unowned_cap = cap;
		} else if (m->reaped_unowned_n) {
			memmove(m->reaped_unowned, m->reaped_unowned + 1,
				(m->reaped_unowned_n - 1) * sizeof(*m->reaped_unowned));
			m->reaped_unowned_n--;
		} else {
			return;
		}
	}
	m->reaped_unowned[m->reaped_unowned_n++] = (struct reaped_unowned){
		.pid = pid, .status = status, .at_us = now };
}

/*
 * Whether pid is a child of the master reaped unowned within an answer's
 * time, and its wait status (forgets it: one answer names it); an older
 * one is no clone of a request still waiting.
 */
static int reaped_unowned_take(struct master *m, pid_t pid, int *status)
{
	uint64_t now = sb_mono_us();
	for (size_t i = 0; i < m->reaped_unowned_n; i++)
		if (pid > 0 && m->reaped_unowned[i].pid == pid &&
		    now - m->reaped_unowned[i].at_us <= (uint64_t)ZYGOTE_ANSWER_MS * 1000u) {
			m->reaped_unowned[i].pid = 0;
			*status = m->reaped_unowned[i].status;
			return 1;
		}
	return 0;
}

static void shared_reaped(struct master *m, int status);

int zygote_reaped(struct master *m, pid_t pid, int status)
{
	if (m->shared_zygote && m->shared_zygote->pid == pid) {
		shared_reaped(m, status);
		return 1;
	}
	for (struct pool *p = m->pools; p; p = p->next) {
		struct child *z = p->own->zygote;
		if (!z || z->pid != pid)
			continue;
		double secs = (double)(sb_mono_us() - z->start_mono_us) / 1e6;
		children_close_pipes(m, z);
		p->own->zygote = NULL;
		kill_zygote(m, p);
		free(z);
		if (m->state != MASTER_RUNNING)
			return 1;
		if (WIFEXITED(status))
			log_error("[pool %s] zygote %d exited with code %d after %.3f seconds; its "
				  "workers keep serving, new ones wait for a new zygote", p->conf->name,
				  (int)pid, WEXITSTATUS(status), secs);
		else
			log_error("[pool %s] zygote %d exited on signal %d after %.3f seconds; its "
				  "workers keep serving, new ones wait for a new zygote", p->conf->name,
				  (int)pid, WIFSIGNALED(status) ? WTERMSIG(status) : 0, secs);
		restart_later(m, &p->own->zygote_timer, &p->own->zygote_failures, secs, on_zygote_timer, p);
		return 1;
	}
	return 0;
}

void zygote_stop(struct master *m, struct pool *p)
{
	q_free(m, &p->own->spawnq);
	if (p->own->zygote_timer)
		ev_timer_free(m->loop, p->own->zygote_timer);
	p->own->zygote_timer = NULL;
	kill_zygote(m, p);
	if (p->own->zygote) {
		/* Usually gone already: its channel closed.  What is left, init reaps. */
		if (p->own->zygote->pid > 0)
			waitpid(p->own->zygote->pid, NULL, WNOHANG);
		children_close_pipes(m, p->own->zygote);
		free(p->own->zygote);
		p->own->zygote = NULL;
	}
}

/* --- php.zygote = shared ------------------------------------------------ */

static void shared_close(struct master *m)
{
	q_fail_all(m, &m->shared_spawnq);
	if (m->shared_zygote_watch)
		ev_fd_del(m->loop, m->shared_zygote_watch);
	m->shared_zygote_watch = NULL;
	if (m->shared_zygote_fd >= 0)
		close(m->shared_zygote_fd);
	m->shared_zygote_fd = -1;
	m->shared_zygote_ready = 0;
}

/* Ready: what it sent for the slowlog is every shared pool's; workers missing are spawned. */
static void shared_now_ready(struct master *m, const unsigned char *info, size_t len, int restart)
{
	m->shared_zygote_ready = 1;
	m->shared_zygote_watch = ev_fd_add(m->loop, m->shared_zygote_fd, EPOLLIN, on_shared_answers, m);
	for (struct pool *p = m->pools; p; p = p->next)
		if (pool_shares_zygote(p)) {
			memcpy(p->own->zygote_info, info, len);
			p->own->zygote_info_len = len;
		}
	/* the app zygotes asked for meanwhile (at start: every pool's, which master_run waits for) */
	for (struct pool *p = m->pools; p && m->state == MASTER_RUNNING; p = p->next)
		if (p->own->zygote_awaits_shared && !p->own->zygote)
			zygote_start(m, p, 0);
	/* at start, master_run spawns the first workers itself */
	if (m->state != MASTER_RUNNING || !restart)
		return;
	for (struct pool *p = m->pools; p; p = p->next)
		if (pool_shares_zygote(p))
			spawn_missing(m, p);
}

static void on_shared_ready(struct ev_loop *loop, int fd, uint32_t events, void *data)
{
	struct master *m = data;
	int32_t answer = -1;
	struct pool_master info;
	(void)events;
	ev_fd_del(loop, m->shared_zygote_watch);
	m->shared_zygote_watch = NULL;
	if (read_answer(fd, 0, &answer, &info) < 0 || answer != 0) {
		if (m->shared_zygote && m->shared_zygote->pid > 0)
			kill(m->shared_zygote->pid, SIGKILL);   /* reaped, restarted after a back-off */
		return;
	}
	log_notice("shared PHP zygote %d restarted", (int)m->shared_zygote->pid);
	shared_now_ready(m, info.zygote_info, info.zygote_info_len, 1);
}

int zygote_shared_start(struct master *m, int wait_ready)
{
	const struct handler *h = NULL;
	for (struct pool *p = m->pools; p && !h; p = p->next)
		if (pool_uses_shared_php(p))
			h = p->handler;
	if (!h)
		return 0;
	int ctl;
	struct child *z = zygote_fork(m, NULL, h, &ctl);
	if (!z)
		return -1;
	m->shared_zygote = z;
	m->shared_zygote_fd = ctl;
	m->shared_zygote_ready = 0;
	if (!wait_ready) {
		m->shared_zygote_watch = ev_fd_add(m->loop, ctl, EPOLLIN, on_shared_ready, m);
		if (!m->shared_zygote_watch)
			kill(z->pid, SIGKILL);      /* reaped, started again after the back-off */
		return 0;
	}
	int32_t answer;
	struct pool_master info;
	if (read_answer(ctl, ZYGOTE_START_MS, &answer, &info) < 0 || answer != 0) {
		log_error("the shared PHP zygote failed to start PHP; see the lines above");
		kill(z->pid, SIGKILL);
		waitpid(z->pid, NULL, 0);
		shared_close(m);
		children_close_pipes(m, z);
		free(z);
		m->shared_zygote = NULL;
		return -1;
	}
	shared_now_ready(m, info.zygote_info, info.zygote_info_len, 0);
	return 0;
}

static void on_shared_timer(struct ev_loop *loop, struct ev_watch *t, void *data)
{
	struct master *m = data;
	(void)loop;
	(void)t;
	/* one that cannot even be forked (descriptors, memory short) is tried again, or the
	 * pools sharing it would be left with no worker for good */
	if (m->state == MASTER_RUNNING && !m->shared_zygote && zygote_shared_start(m, 0) < 0)
		restart_later(m, &m->shared_zygote_timer, &m->shared_zygote_failures, 0,
			      on_shared_timer, m);
}

/* Its pools' zygotes serve on (they are the master's children); new ones wait for it. */
static void shared_reaped(struct master *m, int status)
{
	struct child *z = m->shared_zygote;
	double secs = (double)(sb_mono_us() - z->start_mono_us) / 1e6;
	children_close_pipes(m, z);
	m->shared_zygote = NULL;
	shared_close(m);
	int pid = (int)z->pid;
	free(z);
	if (m->state != MASTER_RUNNING)
		return;
	if (WIFEXITED(status))
		log_error("shared PHP zygote %d exited with code %d after %.3f seconds; the pools' "
			  "workers keep serving, new ones wait for a new shared zygote", pid,
			  WEXITSTATUS(status), secs);
	else
		log_error("shared PHP zygote %d exited on signal %d after %.3f seconds; the pools' "
			  "workers keep serving, new ones wait for a new shared zygote", pid,
			  WIFSIGNALED(status) ? WTERMSIG(status) : 0, secs);
	restart_later(m, &m->shared_zygote_timer, &m->shared_zygote_failures, secs, on_shared_timer, m);
}

void zygote_shared_stop(struct master *m)
{
	q_free(m, &m->shared_spawnq);
	if (m->shared_zygote_timer)
		ev_timer_free(m->loop, m->shared_zygote_timer);
	m->shared_zygote_timer = NULL;
	shared_close(m);
	if (m->shared_zygote) {
		if (m->shared_zygote->pid > 0)
			kill(m->shared_zygote->pid, SIGKILL);
		waitpid(m->shared_zygote->pid, NULL, WNOHANG);
		children_close_pipes(m, m->shared_zygote);
		free(m->shared_zygote);
		m->shared_zygote = NULL;
	}
}

/*
 * An ondemand pool with no worker left: its zygote goes too, so an idle
 * pool costs no process (cloned again from the shared zygote, or started
 * again, at its next connection).  The zygote runs no request: it is simply
 * killed, and its exit reaped as nobody's.
 */
void zygote_retire(struct master *m, struct pool *p)
{
	if (!p->own->zygote || !p->own->zygote_ready)
		return;
	log_debug("[pool %s] zygote %d retired: the pool is idle", p->conf->name,
		  (int)p->own->zygote->pid);
	kill_zygote(m, p);
	children_close_pipes(m, p->own->zygote);
	free(p->own->zygote);
	p->own->zygote = NULL;
}

void zygote_kill_all(const struct master *m)
{
	if (m->shared_zygote && m->shared_zygote->pid > 0)
		kill(m->shared_zygote->pid, SIGKILL);
	for (const struct pool *p = m->pools; p; p = p->next)
		if (p->own->zygote && p->own->zygote->pid > 0)
			kill(p->own->zygote->pid, SIGKILL);
}
