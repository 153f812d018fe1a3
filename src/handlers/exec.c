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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgi/cgi.h"
#include "log/log.h"
#include "master/pool.h"
#include "worker/conn.h"
#include "worker/request.h"
#include "worker/worker.h"

#define EXEC_BUF        (64u * 1024u)
#define EXEC_REPLAY_MAX (64u * 1024u)  /* body bytes kept to resend on a stale kept connection */
#define EXEC_TERM_MS    1000           /* SIGTERM to SIGKILL when the worker stops the program */
#define EXEC_RESTART_BURST 20          /* restarts within a second before a pause */

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
	uint64_t burst_start_ms;     /* restarts counted since then (EXEC_RESTART_BURST) */
	unsigned burst;
	pid_t pid;                   /* the program, leader of its own process group */
	int pidfd;                   /* readable when the program exits (-1: not available) */
	int conn_fd;                 /* connection kept from the last request, -1 none */
	struct conf_str_list argv;   /* exec.command's words plus -d KEY=VALUE */
	char max_requests[24];       /* PHP_FCGI_MAX_REQUESTS for the program */
	int set_max_requests;        /* 0 when the pool's env[] sets it */
	uint8_t *buf;
	struct exec_queue out;
	uint64_t restarts;
	struct cgi_headers *hdr;     /* to learn the status for logs; bytes pass unchanged */
};


/* The program's group, for the SIGTERM handler. */
static volatile sig_atomic_t program_pgid;

/*
 * The master sends SIGTERM on a fast stop and on request_terminate_timeout.
 * PDEATHSIG would take the program but not what it started: kill the group,
 * then die of the signal as before.  kill, sigaction and raise are
 * async-signal-safe.
 */
static void on_sigterm(int signo)
{
	pid_t g = program_pgid;
	if (g > 0)
		kill(-g, SIGKILL);
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigaction(signo, &dfl, NULL);
	raise(signo);
}

static int start_program(struct worker *w, struct exec_state *st)
{
	pid_t pid = fork();
	if (pid < 0) {
		log_sys(LL_ERROR, "[pool %s] fork() for exec.command failed", w->pool->conf->name);
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
		close_range(3, ~0U, 0);
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
		_exit(127);
	}
	/* Also here: the group must exist before anyone signals it. */
	setpgid(pid, pid);
	st->pid = pid;
	program_pgid = pid;
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
 * Reaps descendants the program left behind (reparented to this worker, a
 * child subreaper), never the program itself: its exit is ensure_program's.
 */
static void reap_orphans(const struct exec_state *st)
{
	for (;;) {
		siginfo_t si = { 0 };
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0 ||
		    si.si_pid == st->pid)
			return;
		waitpid(si.si_pid, NULL, 0);
	}
}

/*
 * Kills and reaps every remaining child of this worker: orphans reparented to
 * it.  Theirs come to us in turn as they die, hence the rounds (bounded).
 */
static void kill_descendants(void)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	for (int round = 0; round < 100; round++) {
		FILE *f = fopen(path, "re");
		int pid, n = 0;
		if (!f)
			return;
		while (fscanf(f, "%d", &pid) == 1) {
			kill(pid, SIGKILL);
			n++;
		}
		fclose(f);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (n == 0)
			return;
		usleep(10000);
	}
}

/* Restarts the program if it has exited; logs how it ended. */
static int ensure_program(struct worker *w, struct exec_state *st)
{
	int status;
	if (st->pid > 0 && !program_exited(st, NULL))
		return 0;
	if (st->pid > 0) {
		/* What it left in its group goes with it, while the zombie holds the id. */
		kill(-st->pid, SIGKILL);
		waitpid(st->pid, &status, 0);
		if (WIFSIGNALED(status))
			log_warning("[pool %s] child %d: exec.command exited on signal %d; restarting it",
				    w->pool->conf->name, (int)getpid(), WTERMSIG(status));
		else
			log_warning("[pool %s] child %d: exec.command exited with code %d; restarting it",
				    w->pool->conf->name, (int)getpid(), WEXITSTATUS(status));
		st->restarts++;
		if (st->conn_fd >= 0) {
			close(st->conn_fd);
			st->conn_fd = -1;
		}
	}
	st->pid = 0;
	program_pgid = 0;
	/* Anything else a previous program left (its own session, say) goes before the next. */
	kill_descendants();
	/*
	 * A program that exits as soon as it starts (a wrong path in its own
	 * configuration, say) would be forked in a loop, and a request waiting
	 * for it would wait for ever: past EXEC_RESTART_BURST restarts within a
	 * second, none until the second is over (the request gets a 502 or 503).
	 */
	uint64_t now = conn_now_ms();
	if (now - st->burst_start_ms >= 1000) {
		st->burst_start_ms = now;
		st->burst = 0;
	}
	if (++st->burst > EXEC_RESTART_BURST) {
		if (st->burst == EXEC_RESTART_BURST + 1)
			log_error("[pool %s] child %d: exec.command exited %d times within a second; "
				  "not restarting it before the second is over", w->pool->conf->name,
				  (int)getpid(), EXEC_RESTART_BURST);
		return -1;
	}
	return start_program(w, st);
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
	kill_descendants();
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
static struct exec_state *state_init(struct worker *w)
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
	/* The worker's own limit (pm.max_requests plus its jitter), 0 = none, as php-cgi reads it. */
	snprintf(st->max_requests, sizeof(st->max_requests), "%u", w->max_requests);
	st->set_max_requests = 1;
	for (size_t i = 0; i < pc->env.n; i++)
		if (strcmp(pc->env.items[i].key, "PHP_FCGI_MAX_REQUESTS") == 0)
			st->set_max_requests = 0;
	/* Orphans of the program come to this worker, which kills and reaps them. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	struct sigaction sa = { .sa_handler = on_sigterm };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	return st;
}

static int exec_worker_init(struct worker *w)
{
	const struct pool_conf *pc = w->pool->conf;
	struct exec_state *st = state_init(w);
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
static int program_conn(struct exec_state *st, int *reused)
{
	if (st->conn_fd >= 0) {
		int fd = st->conn_fd;
		struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
		st->conn_fd = -1;
		if (poll(&p, 1, 0) == 0) {
			*reused = 1;
			return fd;
		}
		close(fd);
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
};

/* Forwards what the program sent; records END_REQUEST. -1 when the client is gone. */
static int relay_response(struct exec_state *st, struct request *r, struct fcgi_resp_reader *rd,
			  const uint8_t *buf, size_t len, struct relay *rl)
{
	while (len) {
		struct fcgi_resp_event ev;
		ssize_t used = fcgi_resp_reader_feed(rd, buf, len, &ev);
		if (used < 0)
			return -2;
		buf += used;
		len -= (size_t)used;
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
 * One request relayed.  Each turn: take more of the body only when the queue
 * has drained (memory stays bounded), send what the program takes, and poll
 * the program (its output; room for input), the client (body, or hang-up)
 * and the program's pidfd (it may exit by itself while the request waits in
 * its socket's backlog: restarted, the new one accepts it).
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

	if (ensure_program(w, st) < 0)
		return resp_simple(r, 503, "503 Service Unavailable\n") < 0 ? -1 : 0;
	reap_orphans(st);
	int reused;
	int fd = program_conn(st, &reused);
	q->pos = q->len = 0;
	if (fd < 0 || q_head(q, r) < 0) {
		log_sys(LL_ERROR, "[pool %s] child %d: cannot reach exec.command", pool, (int)getpid());
		if (fd >= 0)
			close(fd);
		return resp_simple(r, 502, "502 Bad Gateway\n") < 0 ? -1 : 0;
	}
	size_t replay_max = q->len + EXEC_REPLAY_MAX;
	int replay = reused;             /* all that was sent is still in the queue */
	int body_done = 0, in_open = 1, rc = 0;

	while (!rl.ended) {
		if (!body_done && q->pos == q->len) {
			int b = req_body_next(r, 0);
			if (b < 0) {
				rc = -1;     /* client gone or aborted: drop the program's request */
				break;
			}
			if (b > 0) {
				size_t n = b == 1 ? r->pending_len : 0;
				if (!replay || q->len + fcgi_stream_size(n) > replay_max) {
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
		struct pollfd pfd[3] = {
			{ .fd = fd, .events = POLLIN | (q->pos < q->len ? POLLOUT : 0) },
			{ .fd = r->conn->fd, .events = need_body ? POLLIN : POLLRDHUP },
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
			if (ensure_program(w, st) < 0)
				break;
			continue;
		}
		if (pfd[1].revents) {
			if (need_body) {
				if (req_body_next(r, 1) < 0) {
					rc = -1;
					break;
				}
			} else if (pfd[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
				rc = -1;
				break;
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
				log_error("[pool %s] child %d: exec.command sent a malformed FastCGI record: %s",
					  pool, (int)getpid(), fcgi_strerror(rd.error));
				break;
			}
			if (x < 0) {
				rc = -1;
				break;
			}
		}
	}
	/* Kept only after a whole exchange: nothing of this request may be left on it. */
	if (fd >= 0 && rl.ended && rc == 0 && in_open && body_done && q->pos == q->len)
		st->conn_fd = fd;
	else if (fd >= 0)
		close(fd);
	if (rc < 0) {
		r->aborted = 1;
		return -1;
	}
	if (!rl.ended) {
		ensure_program(w, st);      /* it probably died: log it and start it again */
		if (!rl.got_output) {
			log_error("[pool %s] child %d: exec.command ended the connection without an answer",
				  pool, (int)getpid());
			return resp_simple(r, 502, "502 Bad Gateway\n") < 0 ? -1 : 0;
		}
		return -1;                    /* half an answer: the client must see it failed */
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
	struct exec_state *st = state_init(w);
	if (!st)
		return -1;
	st->direct = 1;
	st->listen_fd = WORKER_FD_LISTEN;
	return start_program(w, st);
}

/*
 * The worker's life in direct mode: wait for the program to exit and start
 * it again, until the worker is told to go (SIGQUIT, or its master died).
 * A program that fails within a second of its start is restarted a second
 * later, not in a loop.
 */
static void direct_serve(struct worker *w)
{
	struct exec_state *st = w->handler_data;
	while (!worker_quit && getppid() == w->master_pid) {
		if (st->pid > 0) {
			if (!wait_readable(st->pidfd, st->pidfd < 0 ? 1000 : -1) && worker_quit)
				break;
			int clean;
			if (!program_exited(st, &clean))
				continue;
			/* Leaving after its N requests is its way of recycling: no delay for that. */
			if (!clean && conn_now_ms() - st->started_ms < 1000) {
				wait_readable(-1, 1000);
				if (worker_quit)
					break;
			}
		}
		/* Not started (too many restarts, or fork failed): try again in a second. */
		if (ensure_program(w, st) < 0 && !worker_quit)
			wait_readable(-1, 1000);
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
