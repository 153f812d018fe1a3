/*
 * app.type = exec: any FastCGI program (php-cgi, a libfcgi app, Perl FCGI,
 * Python flup) run and supervised by each worker.
 *
 * The worker starts the program with a listening unix socket as its fd 0
 * (the FastCGI convention, FCGI_LISTENSOCK_FILENO), in a directory only the
 * pool's user can enter, and relays each request to it: params as parsed
 * (limits enforced, scoreboard filled, ping/status answered by fpmd), the
 * body streamed in, the program's STDOUT/STDERR streamed back.
 *
 * One poll loop moves both directions with bounded memory: the body is read
 * from the client only once what was queued for the program has gone, and
 * the program's output is read whenever it comes.  A program that writes a
 * large answer before reading its input therefore cannot deadlock the relay.
 *
 * The connection to the program is kept across requests (FCGI_KEEP_CONN) when
 * the program keeps it.  A kept connection the program closed before reading
 * the next request (php-cgi after PHP_FCGI_MAX_REQUESTS) is noticed before use,
 * or by ECONNRESET/EPIPE, which on a unix socket mean our bytes were dropped
 * unread: the request is then sent again on a new connection, from a copy of
 * what was sent (kept up to EXEC_REPLAY_MAX of body).
 *
 * Supervision: the program leads its own process group and dies with its
 * worker (PDEATHSIG).  The worker is a child subreaper, so whatever the
 * program leaves behind is reparented to it: when the program exits, its
 * group is killed before it is reaped; when the worker leaves, the group gets
 * SIGTERM, then SIGKILL after EXEC_TERM_MS, and every remaining descendant is
 * killed and reaped.  A worker killed by SIGTERM kills the group on its way.
 *
 * exec.mode = direct (handler_exec_direct) skips the relay: the program gets
 * the pool's own listening socket as its fd 0 and accepts by itself
 * (spawn-fcgi style), and the worker only supervises it, restarting it when
 * it exits (php-cgi after PHP_FCGI_MAX_REQUESTS: recycling by restart).
 *
 * exec.command is split into words without a shell ('…' and "…" quote);
 * php_value and php_admin_value lines become `-d key=value` for php-cgi.
 */
#include "handlers/handler.h"

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
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgi/cgi.h"
#include "log/log.h"
#include "pool/pool.h"
#include "worker/conn.h"
#include "worker/request.h"
#include "worker/session.h"
#include "worker/worker.h"

#define EXEC_BUF        (64u * 1024u)
#define EXEC_REPLAY_MAX (64u * 1024u)  /* body bytes kept to resend on a stale kept connection */
#define EXEC_TERM_MS    1000           /* SIGTERM to SIGKILL when the worker stops the program */
#define EXEC_BACKOFF_MIN_MS 100        /* after the pool's first failed start, doubling... */
#define EXEC_BACKOFF_MAX_MS 10000      /* ...up to this */
#define EXEC_WAIT_MAX_MS 5000          /* a request waits this long for a start, then 503 */
#define EXEC_LOG_EVERY_MS 1000         /* one line about a program's exit per pool and second */

/* Records on their way to the program; sent from pos, appended at len. */
struct exec_queue {
	uint8_t *p;
	size_t pos, len, cap;
};

struct exec_state {
	char dir[64];
	struct sockaddr_un addr;
	int listen_fd;               /* the program's fd 0: private, or the pool's (direct) */
	int direct;                  /* exec.mode = direct */
	uint64_t started_ms;         /* when the program was last started */
	int served;                  /* the program answered a request since its start */
	unsigned unlogged;           /* exits not logged (EXEC_LOG_EVERY_MS) since the last line */
	pid_t pid;                   /* the program, leader of its own process group */
	int pidfd;                   /* readable when the program exits (-1: not available) */
	int conn_fd;                 /* connection kept from the last request, -1 none */
	/*
	 * The program closed a kept connection (Debian's pure-Ruby fcgi, FCGI.pm
	 * apps that read ahead and shut down): until it is started again, each
	 * request gets a connection of its own, never one it may have left.
	 */
	int closes_kept;
	struct conf_str_list argv;   /* exec.command's words plus -d KEY=VALUE */
	char max_requests[24];       /* PHP_FCGI_MAX_REQUESTS for the program */
	int set_max_requests;        /* 0 when the pool's env[] sets it */
	uint8_t *buf;
	struct exec_queue out;
	uint64_t restarts;
	int killed;                  /* the worker killed the program (logged): its end is not news */
	struct cgi_headers *hdr;     /* to learn the status for logs; bytes pass unchanged */
};


/* For the SIGTERM handler: the program's group, and what to remove (set once, at init). */
static volatile sig_atomic_t program_pgid;
static char cleanup_sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
static char cleanup_dir[64];

/*
 * The master sends SIGTERM on a fast stop and on request_terminate_timeout.
 * PDEATHSIG would take the program but not what it started, and nothing
 * would remove the program's directory: kill the group, wait for the
 * program (its orphans then come to this worker), kill them, remove the
 * socket and the directory, then die of the signal as before.  Every call
 * is async-signal-safe.
 */
static void on_sigterm(int signo)
{
	pid_t g = program_pgid;
	if (g > 0) {
		kill(-g, SIGKILL);
		waitpid(g, NULL, 0);
	}
	session_kill_children();
	if (cleanup_sock[0])
		unlink(cleanup_sock);
	if (cleanup_dir[0])
		rmdir(cleanup_dir);
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigaction(signo, &dfl, NULL);
	raise(signo);
}

/*
 * Forks and execs the program.  Whether the exec itself worked is known at
 * once, through a close-on-exec pipe the child writes its errno into when
 * it fails: a command fpmd -t accepts (an executable file) can still fail
 * there (a script whose interpreter is missing, no right to execute it as
 * the pool's user), and a worker whose program cannot even start is a
 * failed start (the pool's back-off; a reload's canary never becomes ready,
 * so the reload rolls back), not a worker that answers 503.
 */
static void note_failed_start(struct worker *w);

static int start_program(struct worker *w, struct exec_state *st)
{
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		ep[0] = ep[1] = -1;
	pid_t pid = fork();
	if (pid < 0) {
		log_sys(LL_ERROR, "[pool %s] fork() for exec.command failed", w->pool->conf->name);
		if (ep[0] >= 0) {
			close(ep[0]);
			close(ep[1]);
		}
		return -1;
	}
	if (pid == 0) {
		/* The program must not outlive its worker. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Its own group: what it starts is stopped with it. */
		setpgid(0, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		sigaction(SIGPIPE, &dfl, NULL);
		sigaction(SIGINT, &dfl, NULL);
		sigaction(SIGQUIT, &dfl, NULL);
		sigaction(SIGTERM, &dfl, NULL);
		if (st->listen_fd == 0 ? fcntl(0, F_SETFD, 0) < 0 : dup2(st->listen_fd, 0) < 0)
			_exit(127);
		/*
		 * Direct: the pool socket is non-blocking for the workers' epoll;
		 * php-cgi and libfcgi take EAGAIN from accept() as an error and
		 * exit.  The flag belongs to the socket, shared by the whole pool,
		 * whose workers do not accept in this mode (a reload sets it again).
		 */
		if (st->listen_fd == 0)
			fcntl(0, F_SETFL, fcntl(0, F_GETFL) & ~O_NONBLOCK);
		/* 1 and 2 stay the worker's: catch_workers_output applies to the program too. */
		if (ep[1] >= 0 && dup3(ep[1], 3, O_CLOEXEC) == 3) {
			close_range(4, ~0U, 0);
		} else {
			close_range(3, ~0U, 0);
			ep[1] = -1;
		}
		/*
		 * php-cgi: one process (the worker is the process manager), and a
		 * request limit no lower than the worker's own, so it never leaves
		 * before its worker recycles (unless env[] says otherwise).
		 */
		setenv("PHP_FCGI_CHILDREN", "0", 1);
		if (st->set_max_requests)
			setenv("PHP_FCGI_MAX_REQUESTS", st->max_requests, 1);
		/* Direct: the program accepts, so it checks the peers (php-cgi and libfcgi read this). */
		if (st->direct && w->pool->conf->listen_allowed_clients)
			setenv("FCGI_WEB_SERVER_ADDRS", w->pool->conf->listen_allowed_clients, 1);
		execvp(st->argv.items[0], st->argv.items);
		int e = errno;
		if (ep[1] >= 0 && write(3, &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	/* Also here: the group must exist before anyone signals it. */
	setpgid(pid, pid);
	if (ep[0] >= 0) {
		close(ep[1]);
		int e = 0;
		ssize_t n;
		do
			n = read(ep[0], &e, sizeof(e));
		while (n < 0 && errno == EINTR);
		close(ep[0]);
		if (n == (ssize_t)sizeof(e)) {
			errno = e;
			log_sys(LL_ERROR, "[pool %s] cannot execute exec.command '%s'", w->pool->conf->name,
				st->argv.items[0]);
			waitpid(pid, NULL, 0);
			note_failed_start(w);
			return -1;
		}
	}
	st->pid = pid;
	program_pgid = pid;
	st->served = 0;
	st->closes_kept = 0;
	st->started_ms = conn_now_ms();
	if (st->pidfd >= 0)
		close(st->pidfd);
	st->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	return 0;
}

/*
 * 1 when the program has exited (not reaped yet: its pid still names its
 * group); *clean tells whether it exited with code 0, when clean is not NULL.
 */
static int program_exited(const struct exec_state *st, int *clean)
{
	siginfo_t si = { 0 };
	if (waitid(P_PID, (id_t)st->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid != st->pid)
		return 0;
	if (clean)
		*clean = si.si_code == CLD_EXITED && si.si_status == 0;
	return 1;
}

/*
 * The pool's back-off, from every worker's slot: the latest "no start
 * before" and the sum of consecutive failures.  Other workers' slots are
 * other processes' memory: clamped, they can delay a start by
 * EXEC_BACKOFF_MAX_MS at most.
 */
static uint64_t pool_not_before(const struct worker *w, unsigned *failures, uint64_t *logged)
{
	const struct scoreboard *sb = &w->pool->sb;
	uint64_t now = conn_now_ms(), until = 0, last_log = 0;
	unsigned f = 0;
	for (unsigned i = 0; i < sb->nslots; i++) {
		const struct sb_slot *sl = &sb->slots[i];
		uint64_t u = __atomic_load_n(&sl->exec_not_before_ms, __ATOMIC_RELAXED);
		uint64_t l = __atomic_load_n(&sl->exec_logged_ms, __ATOMIC_RELAXED);
		uint32_t n = __atomic_load_n(&sl->exec_failures, __ATOMIC_RELAXED);
		if (u > now + EXEC_BACKOFF_MAX_MS)
			u = now + EXEC_BACKOFF_MAX_MS;
		until = u > until ? u : until;
		last_log = l <= now && l > last_log ? l : last_log;
		f += n < 64 ? n : 64;
	}
	if (failures)
		*failures = f;
	if (logged)
		*logged = last_log;
	return until;
}

/* A start failed: the pool's next one waits, doubling with the pool's failures. */
static void note_failed_start(struct worker *w)
{
	unsigned f;
	pool_not_before(w, &f, NULL);
	unsigned shift = f < 7 ? f : 7;
	uint64_t delay = (uint64_t)EXEC_BACKOFF_MIN_MS << shift;
	if (delay > EXEC_BACKOFF_MAX_MS)
		delay = EXEC_BACKOFF_MAX_MS;
	__atomic_store_n(&w->slot->exec_failures, w->slot->exec_failures + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&w->slot->exec_not_before_ms, conn_now_ms() + delay, __ATOMIC_RELAXED);
	if (f + 1 == 3)
		log_warning("[pool %s] child %d: exec.command keeps exiting right after it starts; "
			    "the pool starts it again with a delay of up to %d s", w->pool->conf->name,
			    (int)getpid(), EXEC_BACKOFF_MAX_MS / 1000);
}

/* How the program ended, at most once a second for the whole pool (the rest counted). */
static void log_exit(struct worker *w, struct exec_state *st, int status)
{
	uint64_t last, now = conn_now_ms();
	pool_not_before(w, NULL, &last);
	if (last && now - last < EXEC_LOG_EVERY_MS) {
		st->unlogged++;
		return;
	}
	__atomic_store_n(&w->slot->exec_logged_ms, now, __ATOMIC_RELAXED);
	char more[64] = "";
	if (st->unlogged)
		snprintf(more, sizeof(more), " (%u more exits since the last line)", st->unlogged);
	st->unlogged = 0;
	if (WIFSIGNALED(status))
		log_warning("[pool %s] child %d: exec.command exited on signal %d; restarting it%s",
			    w->pool->conf->name, (int)getpid(), WTERMSIG(status), more);
	else
		log_warning("[pool %s] child %d: exec.command exited with code %d; restarting it%s",
			    w->pool->conf->name, (int)getpid(), WEXITSTATUS(status), more);
}

/*
 * Restarts the program if it has exited; logs how it ended.  A program that
 * exited before it answered anything (managed), or within a second of its
 * start (direct: the worker cannot tell), is a failed start: the pool backs
 * off, so a program that cannot start is not forked in a loop.  One that
 * served and then left (php-cgi after PHP_FCGI_MAX_REQUESTS, a program that
 * exits after each request) is recycling, started again at once.
 * Returns 0, or -1 while the back-off holds: *wait_ms then says for how long.
 */
static int ensure_program(struct worker *w, struct exec_state *st, uint64_t *wait_ms)
{
	int status;
	*wait_ms = 0;
	if (st->pid > 0 && !program_exited(st, NULL))
		return 0;
	if (st->pid > 0) {
		/* What it left in its group goes with it, while the zombie holds the id. */
		kill(-st->pid, SIGKILL);
		waitpid(st->pid, &status, 0);
		/* killed by this worker (its client left, its answer was broken): no failed start */
		int killed = st->killed;
		if (st->killed)
			st->killed = 0;
		else
			log_exit(w, st, status);
		st->restarts++;
		if (st->conn_fd >= 0) {
			close(st->conn_fd);
			st->conn_fd = -1;
		}
		int failed = !killed && (st->direct ? conn_now_ms() - st->started_ms < 1000 : !st->served);
		if (failed)
			note_failed_start(w);
		else if (w->slot->exec_failures)
			__atomic_store_n(&w->slot->exec_failures, 0, __ATOMIC_RELAXED);
	}
	st->pid = 0;
	program_pgid = 0;
	/* Anything else a previous program left (its own session, say) goes before the next. */
	session_kill_children();
	uint64_t now = conn_now_ms(), until = pool_not_before(w, NULL, NULL);
	if (now < until) {
		*wait_ms = until - now;
		return -1;
	}
	if (start_program(w, st) == 0)
		return 0;
	/* its exec failed: the back-off it set is waited for, as after an early exit */
	now = conn_now_ms();
	until = pool_not_before(w, NULL, NULL);
	*wait_ms = until > now ? until - now : 0;
	return -1;
}

/*
 * ensure_program for a request: the back-off is waited for until deadline
 * (monotonic ms), so a request that comes while the program is down gets it
 * once it starts, and a 503 only when that takes too long.
 */
static int ensure_program_by(struct worker *w, struct exec_state *st, uint64_t deadline,
			     uint64_t *left_ms)
{
	for (;;) {
		uint64_t wait_ms;
		*left_ms = 0;
		if (ensure_program(w, st, &wait_ms) == 0)
			return 0;
		uint64_t now = conn_now_ms();
		*left_ms = wait_ms;
		if (!wait_ms || now + wait_ms > deadline)
			return -1;
		wait_readable(-1, (int)wait_ms);
	}
}

/*
 * A program left in the middle of an exchange (its answer malformed, cut or
 * abandoned by the client) is in a state nobody knows: a php-cgi still
 * running the abandoned script, a program still writing an answer no one
 * reads.  Reusing it would make the next request wait for it, or read its
 * leftovers as that request's answer: it is killed with its group and a new
 * one started.
 */
static void restart_program(struct worker *w, struct exec_state *st, const char *why)
{
	if (st->pid > 0 && !program_exited(st, NULL)) {
		log_warning("[pool %s] child %d: %s; restarting exec.command", w->pool->conf->name,
			    (int)getpid(), why);
		kill(-st->pid, SIGKILL);
		siginfo_t si;
		while (waitid(P_PID, (id_t)st->pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
			;
		st->killed = 1;
	}
	uint64_t wait_ms;
	ensure_program(w, st, &wait_ms);     /* in a back-off: started by the next request */
}

/*
 * Stops the program when the worker leaves: SIGTERM to its group, SIGKILL
 * after EXEC_TERM_MS (a program may ignore SIGTERM), then everything it left.
 * A managed program is idle by then.  A direct one may be in the middle of a
 * request, which SIGTERM lets php-cgi finish: it is waited for as long as it
 * takes, and the master's process_control_timeout bounds that (its SIGTERM to
 * the worker kills the group).
 */
static void stop_program(struct worker *w, struct exec_state *st)
{
	if (st->pid > 0) {
		kill(-st->pid, SIGTERM);
		int gone = 0;
		for (int i = 0; st->direct || i < EXEC_TERM_MS / 10; i++) {
			if ((gone = program_exited(st, NULL)))
				break;
			usleep(10000);
		}
		if (!gone)
			log_warning("[pool %s] child %d: exec.command %d did not stop %d ms after SIGTERM; "
				    "sending SIGKILL", w->pool->conf->name, (int)getpid(), (int)st->pid,
				    EXEC_TERM_MS);
		kill(-st->pid, SIGKILL);
		waitpid(st->pid, NULL, 0);
		st->pid = 0;
		program_pgid = 0;
	}
	session_kill_children();
}

/* exec.command's words, then php_value & co as -d KEY=VALUE (php-cgi's). */
static int build_argv(const struct pool_conf *pc, struct conf_str_list *argv)
{
	char err[128];
	if (conf_split_argv(pc->exec_command, argv, err, sizeof(err)) < 0) {
		log_error("[pool %s] exec.command: %s", pc->name, err);
		return -1;
	}
	const struct conf_kv_list *lists[] = { &pc->php_value, &pc->php_flag, &pc->php_admin_value,
					       &pc->php_admin_flag };
	for (size_t l = 0; l < 4; l++)
		for (size_t i = 0; i < lists[l]->n; i++) {
			char *kv;
			if (asprintf(&kv, "%s=%s", lists[l]->items[i].key, lists[l]->items[i].value) < 0)
				return -1;
			char **ni = realloc(argv->items, (argv->n + 3) * sizeof(*ni));
			char *d = strdup("-d");
			if (!ni || !d) {
				free(kv);
				free(d);
				if (ni)
					argv->items = ni;
				return -1;
			}
			argv->items = ni;
			argv->items[argv->n++] = d;
			argv->items[argv->n++] = kv;
			argv->items[argv->n] = NULL;
			argv->cap = argv->n + 1;
		}
	return 0;
}

/* What both modes need; the program is not started yet. */
static struct exec_state *state_init(struct worker *w, int direct)
{
	const struct pool_conf *pc = w->pool->conf;
	struct exec_state *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	w->handler_data = st;
	st->listen_fd = -1;
	st->pidfd = -1;
	st->conn_fd = -1;
	st->buf = malloc(EXEC_BUF);
	st->hdr = malloc(sizeof(*st->hdr));
	if (!st->buf || !st->hdr || build_argv(pc, &st->argv) < 0)
		return NULL;
	/*
	 * The worker's own limit (pm.max_requests plus its jitter), 0 = none, as
	 * php-cgi reads it.  Relayed, two over: a worker at its limit still
	 * serves a connection the master could not take back, and one kept
	 * connection it gave up (worker.c, take_connection), which php-cgi
	 * leaving first would cost a start of its own and a "restarting it"
	 * warning.  Direct, exact: the program's own limit is the recycling.
	 */
	st->direct = direct;
	snprintf(st->max_requests, sizeof(st->max_requests), "%u",
		 w->max_requests && !direct ? w->max_requests + 2 : w->max_requests);
	st->set_max_requests = 1;
	for (size_t i = 0; i < pc->env.n; i++)
		if (strcmp(pc->env.items[i].key, "PHP_FCGI_MAX_REQUESTS") == 0)
			st->set_max_requests = 0;
	/* Orphans of the program come to this worker, which kills and reaps them. */
	session_adopt_orphans(1);
	struct sigaction sa = { .sa_handler = on_sigterm };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	return st;
}

static int exec_worker_start(struct worker *w)
{
	const struct pool_conf *pc = w->pool->conf;
	struct exec_state *st = state_init(w, 0);
	if (!st)
		return -1;
	/* A directory only this worker's user can enter holds the program's socket. */
	snprintf(st->dir, sizeof(st->dir), "/tmp/fpmd-exec-XXXXXX");
	if (!mkdtemp(st->dir)) {
		log_sys(LL_ERROR, "[pool %s] mkdtemp(%s) failed", pc->name, st->dir);
		st->dir[0] = '\0';
		return -1;
	}
	st->addr.sun_family = AF_UNIX;
	snprintf(st->addr.sun_path, sizeof(st->addr.sun_path), "%s/app.sock", st->dir);
	/* SIGTERM (a fast stop) removes them too: see on_sigterm */
	snprintf(cleanup_dir, sizeof(cleanup_dir), "%s", st->dir);
	snprintf(cleanup_sock, sizeof(cleanup_sock), "%s", st->addr.sun_path);
	st->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (st->listen_fd < 0 ||
	    bind(st->listen_fd, (struct sockaddr *)&st->addr, sizeof(st->addr)) < 0 ||
	    listen(st->listen_fd, 16) < 0) {
		log_sys(LL_ERROR, "[pool %s] cannot create the socket for exec.command", pc->name);
		return -1;
	}
	return start_program(w, st);
}

static void exec_worker_exit(struct worker *w)
{
	struct exec_state *st = w->handler_data;
	if (!st)
		return;
	/* Closing first lets a program waiting on a kept connection see the end. */
	if (st->conn_fd >= 0)
		close(st->conn_fd);
	stop_program(w, st);
	if (st->listen_fd >= 0 && !st->direct)
		close(st->listen_fd);
	if (st->pidfd >= 0)
		close(st->pidfd);
	if (st->dir[0]) {
		unlink(st->addr.sun_path);
		rmdir(st->dir);
	}
	free(st->buf);
	free(st->out.p);
	free(st->hdr);
	conf_str_list_free(&st->argv);
	free(st);
	w->handler_data = NULL;
}

/*
 * A start that fails leaves nothing behind: the worker exits without its
 * handler's worker_exit, and each failed start (every back-off cycle, a
 * reload to a command that cannot run) left a /tmp/fpmd-exec-* directory.
 */
static int exec_worker_init(struct worker *w)
{
	if (exec_worker_start(w) == 0)
		return 0;
	int e = errno;
	exec_worker_exit(w);
	errno = e;
	return -1;
}

/* --- one request ------------------------------------------------------- */

/* Room for n more bytes at the end of the queue. */
static uint8_t *q_reserve(struct exec_queue *q, size_t n)
{
	if (q->len + n > q->cap) {
		size_t cap = q->cap ? q->cap : EXEC_BUF;
		while (cap < q->len + n)
			cap *= 2;
		uint8_t *np = realloc(q->p, cap);
		if (!np)
			return NULL;
		q->p = np;
		q->cap = cap;
	}
	return q->p + q->len;
}

/* Queues data as records of one stream (len 0: the stream's end). */
static int q_stream(struct exec_queue *q, uint8_t type, const void *data, size_t len)
{
	size_t need = fcgi_stream_size(len);
	uint8_t *p = q_reserve(q, need);
	if (!p)
		return -1;
	q->len += fcgi_stream_encode(p, need, type, 1, data, len);
	return 0;
}

/* BEGIN_REQUEST (asking to keep the connection) and every param, as parsed. */
static int q_head(struct exec_queue *q, const struct request *r)
{
	uint8_t *p = q_reserve(q, FCGI_BEGIN_REQUEST_LEN);
	if (!p)
		return -1;
	fcgi_begin_request_encode(p, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
	q->len += FCGI_BEGIN_REQUEST_LEN;
	size_t total = 0;
	for (size_t i = 0; i < req_param_count(r); i++) {
		const struct fcgi_param *pa = req_param_at(r, i);
		total += fcgi_nv_size(pa->name_len, pa->value_len);
	}
	uint8_t *nv = malloc(total ? total : 1);
	if (!nv)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < req_param_count(r); i++) {
		const struct fcgi_param *pa = req_param_at(r, i);
		o += fcgi_nv_encode(nv + o, total - o, pa->name, pa->name_len, pa->value, pa->value_len);
	}
	int rc = q_stream(q, FCGI_PARAMS, nv, o) < 0 || q_stream(q, FCGI_PARAMS, NULL, 0) < 0 ? -1 : 0;
	free(nv);
	return rc;
}

/* Sends what the socket takes now.  0, or -1 with errno (the program is gone). */
static int q_send(struct exec_queue *q, int fd)
{
	while (q->pos < q->len) {
		ssize_t n = send(fd, q->p + q->pos, q->len - q->pos, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			q->pos += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
	return 0;
}

static int connect_program(const struct exec_state *st)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (const struct sockaddr *)&st->addr, sizeof(st->addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The connection kept from the last request if the program still holds it
 * (nothing may arrive on it between requests: data or EOF means it is done),
 * else a new one.  *reused tells which.
 */
static int program_conn(struct exec_state *st, int *reused, int *stray)
{
	*stray = 0;
	if (st->conn_fd >= 0) {
		int fd = st->conn_fd;
		struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
		st->conn_fd = -1;
		if (poll(&p, 1, 0) == 0) {
			*reused = 1;
			return fd;
		}
		/* EOF is a program that closed a kept connection; bytes are records after END_REQUEST */
		char c;
		*stray = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
		st->closes_kept |= !*stray;
		close(fd);
		if (*stray)
			return -1;
	}
	*reused = 0;
	return connect_program(st);
}

struct relay {
	int ended;
	uint32_t app_status;
	int got_any;                 /* any byte from the program for this request */
	int got_output;
	int status_known;
	char bad[96];                /* what the program sent that it must not have, "" none */
};

/*
 * Forwards what the program sent; records END_REQUEST.  -1 when the client
 * is gone; -2 when the program broke the protocol (rl->bad says how): a
 * record for another request id (we only ever send id 1), a record type a
 * responder does not send, or anything after END_REQUEST.  nginx refuses
 * the same ("unexpected FastCGI request id"); passing them on would hand
 * one request's answer to the next client on a kept connection.
 */
static int relay_response(struct exec_state *st, struct request *r, struct fcgi_resp_reader *rd,
			  const uint8_t *buf, size_t len, struct relay *rl)
{
	while (len) {
		struct fcgi_resp_event ev;
		ssize_t used = fcgi_resp_reader_feed(rd, buf, len, &ev);
		if (used < 0) {
			snprintf(rl->bad, sizeof(rl->bad), "a malformed FastCGI record: %s",
				 fcgi_strerror(rd->error));
			return -2;
		}
		buf += used;
		len -= (size_t)used;
		if (ev.kind != FCGI_RESP_NONE && ev.request_id != 1) {
			snprintf(rl->bad, sizeof(rl->bad), "a record for request id %u (the request is 1)",
				 (unsigned)ev.request_id);
			return -2;
		}
		if (ev.kind == FCGI_RESP_OTHER) {
			snprintf(rl->bad, sizeof(rl->bad), "an unexpected record of type %u",
				 (unsigned)ev.other_type);
			return -2;
		}
		if (ev.kind == FCGI_RESP_END && len) {
			snprintf(rl->bad, sizeof(rl->bad), "%zu bytes after END_REQUEST", len);
			return -2;
		}
		switch (ev.kind) {
		case FCGI_RESP_STDOUT:
			if (!rl->status_known) {
				size_t consumed;
				int hr = cgi_headers_feed(st->hdr, (const char *)ev.data, ev.len, &consumed);
				if (hr != 0) {
					rl->status_known = 1;
					r->status = hr > 0 ? st->hdr->status : 200;
					r->headers_sent = 1;
				}
			}
			rl->got_output = 1;
			if (resp_write(r, ev.data, ev.len) < 0)
				return -1;
			break;
		case FCGI_RESP_STDERR:
			if (resp_stderr(r, ev.data, ev.len) < 0)
				return -1;
			break;
		case FCGI_RESP_END:
			rl->ended = 1;
			rl->app_status = ev.app_status;
			return 0;
		default:
			break;
		}
	}
	return resp_flush(r);
}

/*
 * security.limit_extensions, when set for the pool, on the script the
 * program would run.  php-cgi with cgi.fix_pathinfo (its default) runs the
 * longest existing file at the start of SCRIPT_FILENAME, so "/up.jpg/x.php"
 * runs /up.jpg: the name as sent and that file must both pass.  Without
 * SCRIPT_FILENAME there is nothing to check, so nothing is allowed.
 */
static int script_allowed(const struct pool_conf *pc, const struct request *r)
{
	const struct conf_str_list *l = &pc->security_limit_extensions;
	if (l->n == 0)
		return 1;
	const char *const *exts = (const char *const *)l->items;
	const char *sf = req_param(r, "SCRIPT_FILENAME");
	char path[4096];
	const char *denied = NULL;
	if (!sf || !*sf || strlen(sf) >= sizeof(path)) {
		denied = "(no usable SCRIPT_FILENAME)";
	} else if (!cgi_extension_allowed(sf, exts, l->n)) {
		denied = sf;
	} else {
		snprintf(path, sizeof(path), "%s", sf);
		struct stat sb;
		char *slash;
		int found;
		while (!(found = stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) &&
		       (slash = strrchr(path, '/')) && slash != path)
			*slash = '\0';
		if (found && strcmp(path, sf) != 0 && !cgi_extension_allowed(path, exts, l->n))
			denied = path;
	}
	if (denied)
		log_warning("[pool %s] access to the script '%s' has been denied (see "
			    "security.limit_extensions)", pc->name, denied);
	return !denied;
}

/*
 * No program within EXEC_WAIT_MAX_MS: the pool's back-off holds (logged by
 * note_failed_start).  A back-off that ends later than that is not waited
 * for: the answer is at once, and says when the next start is.
 */
static int unavailable(struct worker *w, struct request *r, uint64_t left_ms, uint64_t deadline)
{
	uint64_t now = conn_now_ms();
	if (left_ms)
		log_error("[pool %s] child %d: exec.command keeps exiting before it answers; its next "
			  "start is in %.1f s, later than this request may still wait (%.1f s of %d s): "
			  "503", w->pool->conf->name, (int)getpid(), (double)left_ms / 1000.0,
			  deadline > now ? (double)(deadline - now) / 1000.0 : 0.0,
			  EXEC_WAIT_MAX_MS / 1000);
	else
		log_error("[pool %s] child %d: exec.command did not start within %d s (it keeps "
			  "exiting before it answers); 503", w->pool->conf->name, (int)getpid(),
			  EXEC_WAIT_MAX_MS / 1000);
	return resp_simple(r, 503, "503 Service Unavailable\n") < 0 ? -1 : 0;
}

/*
 * One request relayed.  Each turn: take more of the body only when the queue
 * has drained (memory stays bounded), send what the program takes, and poll
 * the program (its output; room for input), the client (body, or hang-up)
 * and the program's pidfd (it may exit by itself while the request waits in
 * its socket's backlog: restarted, the new one accepts it).
 *
 * Only an exchange that reached END_REQUEST, clean, leaves the program as it
 * was; any other end restarts it (restart_program says why).
 */
static int exec_handle(struct worker *w, struct request *r)
{
	struct exec_state *st = w->handler_data;
	struct exec_queue *q = &st->out;
	const char *pool = w->pool->conf->name;
	struct relay rl = { 0 };
	struct fcgi_resp_reader rd;
	fcgi_resp_reader_init(&rd);
	cgi_headers_init(st->hdr);

	if (!script_allowed(w->pool->conf, r))
		return resp_simple(r, 403, "Access denied.\n") < 0 ? -1 : 0;

	uint64_t deadline = conn_now_ms() + EXEC_WAIT_MAX_MS, left_ms = 0;
	if (ensure_program_by(w, st, deadline, &left_ms) < 0)
		return unavailable(w, r, left_ms, deadline);
	session_reap_orphans(st->pid);
	/*
	 * A body larger than what can be sent again goes on a new connection:
	 * a kept one the program closes after its answer (and may not have
	 * closed yet) would take the first part of it and drop it.
	 */
	const char *cl = req_param(r, "CONTENT_LENGTH");
	const char *method = req_param(r, "REQUEST_METHOD");
	/* no length: a chunked body nginx passes on unbuffered, of any size */
	int unknown = (!cl || !*cl) && method && strcmp(method, "GET") != 0 &&
		      strcmp(method, "HEAD") != 0;
	if (st->conn_fd >= 0 && (unknown || (cl && strtoull(cl, NULL, 10) > EXEC_REPLAY_MAX))) {
		close(st->conn_fd);
		st->conn_fd = -1;
	}
	int reused, stray;
	int fd = program_conn(st, &reused, &stray);
	if (stray) {
		restart_program(w, st, "exec.command sent records after END_REQUEST on its kept "
				"connection");
		fd = st->pid > 0 ? connect_program(st) : -1;
	}
	q->pos = q->len = 0;
	if (fd < 0 || q_head(q, r) < 0) {
		log_sys(LL_ERROR, "[pool %s] child %d: cannot reach exec.command", pool, (int)getpid());
		if (fd >= 0)
			close(fd);
		return resp_simple(r, 502, "502 Bad Gateway\n") < 0 ? -1 : 0;
	}
	/*
	 * The copy kept to send again holds up to EXEC_REPLAY_MAX of body, counted
	 * as body (the fresh-connection rule above counts CONTENT_LENGTH): its
	 * records' headers and padding on top, within twice that (a client that
	 * sends tiny records only loses its own copy).
	 */
	size_t replay_max = q->len + 2 * EXEC_REPLAY_MAX;
	uint64_t replay_body = 0;
	int replay = reused;             /* all that was sent is still in the queue */
	int body_done = 0, in_open = 1, rc = 0, client_watch = 1, down = 0;
	const char *why = "exec.command closed the connection before END_REQUEST";

	while (!rl.ended) {
		if (!body_done && q->pos == q->len) {
			int b = req_body_next(r, 0);
			if (b < 0) {
				rc = -1;     /* client gone or aborted: drop the program's request */
				break;
			}
			if (b > 0) {
				size_t n = b == 1 ? r->pending_len : 0;
				replay_body += n;
				if (!replay || replay_body > EXEC_REPLAY_MAX ||
				    q->len + fcgi_stream_size(n) > replay_max) {
					q->pos = q->len = 0;
					replay = 0;
				}
				if (q_stream(q, FCGI_STDIN, r->pending, n) < 0) {
					rc = -1;
					break;
				}
				r->pending_len = 0;
				body_done = b == 2;
			}
		}
		if (in_open && q_send(q, fd) < 0) {
			int err = errno;
			if (reused && replay && !rl.got_any && (err == EPIPE || err == ECONNRESET)) {
				/* Closed by the program before it read this request: send it again. */
				close(fd);
				reused = replay = 0;
				st->closes_kept = 1;
				if ((fd = connect_program(st)) < 0)
					break;
				q->pos = 0;
				continue;
			}
			/* It stopped reading: its answer may still come; the rest of the body is dropped. */
			in_open = 0;
			body_done = 1;
			q->pos = q->len = 0;
		}
		int need_body = !body_done && q->pos == q->len;
		if (need_body && r->conn->in_pos < r->conn->in_len)
			continue;            /* more of the body already arrived: queue it first */
		/*
		 * Once the body is in, the client is watched only for a hang-up.  A
		 * half-close (shutdown(SHUT_WR) after FCGI_STDIN: POLLRDHUP alone) is
		 * the end of its input, as php-fpm and libfcgi take it, not an abort.
		 */
		struct pollfd pfd[3] = {
			{ .fd = fd, .events = POLLIN | (q->pos < q->len ? POLLOUT : 0) },
			{ .fd = need_body || client_watch ? r->conn->fd : -1,
			  .events = need_body ? POLLIN : POLLRDHUP },
			{ .fd = rl.got_any ? -1 : st->pidfd, .events = POLLIN },
		};
		/* request_body_timeout, while the body is awaited (logged by req_body_gap) */
		int gap = req_body_gap(r, need_body);
		if (gap == -2) {
			rc = -1;
			break;
		}
		if (poll(pfd, 3, gap) < 0) {
			if (errno == EINTR)
				continue;
			rc = -1;
			break;
		}
		if (pfd[2].revents && !(pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			if (ensure_program_by(w, st, deadline, &left_ms) < 0) {
				down = 1;
				break;
			}
			continue;
		}
		if (pfd[1].revents) {
			if (need_body) {
				if (req_body_next(r, 1) < 0) {
					rc = -1;
					break;
				}
			} else if (pfd[1].revents & (POLLHUP | POLLERR)) {
				rc = -1;
				break;
			} else {
				client_watch = 0;
			}
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(fd, st->buf, EXEC_BUF, MSG_DONTWAIT);
			if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
				continue;
			/*
			 * A kept connection the program closed before answering: our bytes
			 * were dropped unread (ECONNRESET), or read and discarded (EOF).
			 * libfcgi does the latter when the previous request's empty STDIN
			 * record, which a program that never reads its input leaves in the
			 * socket, comes first on the next request: it calls that a protocol
			 * error and closes.  Nothing was answered, so send it again on a
			 * new connection, as a web server does with a stale kept upstream.
			 */
			if ((n == 0 || (n < 0 && errno == ECONNRESET)) && reused && replay && !rl.got_any) {
				close(fd);
				reused = replay = 0;
				st->closes_kept = 1;
				if ((fd = connect_program(st)) < 0)
					break;
				q->pos = 0;
				continue;
			}
			if (n <= 0)
				break;           /* the program closed without END_REQUEST */
			rl.got_any = 1;
			int x = relay_response(st, r, &rd, st->buf, (size_t)n, &rl);
			if (x == -2) {
				log_error("[pool %s] child %d: exec.command sent %s", pool, (int)getpid(),
					  rl.bad);
				why = "exec.command broke the FastCGI protocol";
				break;
			}
			if (x < 0) {
				rc = -1;
				break;
			}
		}
	}
	int whole = rl.ended && !rl.bad[0];
	if (whole)
		st->served = 1;
	/* Kept only after a whole exchange: nothing of this request may be left on it. */
	if (fd >= 0 && whole && rc == 0 && in_open && body_done && q->pos == q->len &&
	    !st->closes_kept)
		st->conn_fd = fd;
	else if (fd >= 0)
		close(fd);
	if (!whole && !down)
		restart_program(w, st, rc < 0 ? "the client went away before the answer was complete"
				: why);
	if (rc < 0) {
		r->aborted = 1;
		return -1;
	}
	if (!whole) {
		if (down && !rl.got_output)
			return unavailable(w, r, left_ms, deadline);
		if (!rl.got_output) {
			log_error("[pool %s] child %d: exec.command ended the connection without an answer",
				  pool, (int)getpid());
			return resp_simple(r, 502, "502 Bad Gateway\n") < 0 ? -1 : 0;
		}
		log_error("[pool %s] child %d: exec.command's answer was cut (%s); closing the client's "
			  "connection without END_REQUEST", pool, (int)getpid(), why);
		req_cut(r);
		return -1;
	}
	return (int)(rl.app_status & 0x7fffffff);
}

/* The program, for the worker's memory figures (pm.max_memory: its memory is the worker's). */
static pid_t exec_program(struct worker *w)
{
	const struct exec_state *st = w->handler_data;
	return st && st->pid > 0 ? st->pid : 0;
}

const struct handler handler_exec = {
	.name = "exec",
	.worker_init = exec_worker_init,
	.handle = exec_handle,
	.worker_exit = exec_worker_exit,
	.program = exec_program,
};

/* --- exec.mode = direct ------------------------------------------------ */

static int direct_worker_init(struct worker *w)
{
	struct exec_state *st = state_init(w, 1);
	if (!st)
		return -1;
	st->listen_fd = WORKER_FD_LISTEN;
	return start_program(w, st);
}

/*
 * The worker's life in direct mode: wait for the program to exit and start
 * it again, until the worker is told to go (SIGQUIT, or its master died).
 * A program that lived less than a second is a failed start: the pool's
 * back-off applies (ensure_program), so it is not restarted in a loop.
 */
static void direct_serve(struct worker *w)
{
	struct exec_state *st = w->handler_data;
	while (!worker_quit && getppid() == w->master_pid) {
		if (st->pid > 0) {
			if (!wait_readable(st->pidfd, st->pidfd < 0 ? 1000 : -1) && worker_quit)
				break;
			if (!program_exited(st, NULL))
				continue;
		}
		uint64_t wait_ms;
		if (ensure_program(w, st, &wait_ms) < 0 && !worker_quit)
			wait_readable(-1, wait_ms ? (int)wait_ms : 1000);   /* back-off, or fork failed */
	}
}

/* No request ever reaches this handler: its program accepts them. */
static int direct_handle(struct worker *w, struct request *r)
{
	(void)w;
	return resp_simple(r, 500, "500 Internal Server Error\n") < 0 ? -1 : 0;
}

const struct handler handler_exec_direct = {
	.name = "exec (direct)",
	.worker_init = direct_worker_init,
	.handle = direct_handle,
	.serve = direct_serve,
	.worker_exit = exec_worker_exit,
};
