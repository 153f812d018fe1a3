/*
 * app.type = exec: any FastCGI program (php-cgi, a libfcgi app, Perl FCGI,
 * Python flup) run and supervised by each worker.
 *
 * The worker starts the program with a listening unix socket as its fd 0
 * (the FastCGI convention, FCGI_LISTENSOCK_FILENO), in a directory only the
 * pool's user can enter, and relays each request to it: params as parsed
 * (limits enforced, scoreboard filled, ping/status answered by fpmd), the
 * body streamed in, the program's STDOUT/STDERR streamed back.  The program
 * dies with its worker (PDEATHSIG) and is restarted by it if it exits.
 *
 * exec.command is split into words without a shell ('…' and "…" quote);
 * php_value and php_admin_value lines become `-d key=value` for php-cgi.
 */
#include "handlers/handler.h"

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

#define EXEC_BUF (64u * 1024u)

struct exec_state {
	char dir[64];
	struct sockaddr_un addr;
	int listen_fd;
	pid_t pid;
	int pidfd;                   /* readable when the program exits (-1: not available) */
	struct conf_str_list argv;   /* exec.command's words plus -d KEY=VALUE */
	uint8_t *buf;
	uint64_t restarts;
	struct cgi_headers *hdr;     /* to learn the status for logs; bytes pass unchanged */
};

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
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		sigaction(SIGPIPE, &dfl, NULL);
		sigaction(SIGINT, &dfl, NULL);
		sigaction(SIGQUIT, &dfl, NULL);
		if (dup2(st->listen_fd, 0) < 0)
			_exit(127);
		/* 1 and 2 stay the worker's: catch_workers_output applies to the program too. */
		close_range(3, ~0U, 0);
		/* php-cgi: one process, no internal manager, no request limit of its own. */
		setenv("PHP_FCGI_CHILDREN", "0", 1);
		setenv("PHP_FCGI_MAX_REQUESTS", "0", 1);
		execvp(st->argv.items[0], st->argv.items);
		_exit(127);
	}
	st->pid = pid;
	if (st->pidfd >= 0)
		close(st->pidfd);
	st->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	return 0;
}

/* Restarts the program if it has exited; logs how it ended. */
static int ensure_program(struct worker *w, struct exec_state *st)
{
	int status;
	if (st->pid > 0 && waitpid(st->pid, &status, WNOHANG) == 0)
		return 0;
	if (st->pid > 0) {
		if (WIFSIGNALED(status))
			log_warning("[pool %s] child %d: exec.command exited on signal %d; restarting it",
				    w->pool->conf->name, (int)getpid(), WTERMSIG(status));
		else
			log_warning("[pool %s] child %d: exec.command exited with code %d; restarting it",
				    w->pool->conf->name, (int)getpid(), WEXITSTATUS(status));
		st->restarts++;
	}
	st->pid = 0;
	return start_program(w, st);
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

static int exec_worker_init(struct worker *w)
{
	const struct pool_conf *pc = w->pool->conf;
	struct exec_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -1;
	w->handler_data = st;
	st->listen_fd = -1;
	st->pidfd = -1;
	st->buf = malloc(EXEC_BUF);
	st->hdr = malloc(sizeof(*st->hdr));
	if (!st->buf || !st->hdr || build_argv(pc, &st->argv) < 0)
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
	if (st->pid > 0) {
		kill(st->pid, SIGTERM);
		for (int i = 0; i < 100 && waitpid(st->pid, NULL, WNOHANG) == 0; i++)
			usleep(10000);
		kill(st->pid, SIGKILL);
		waitpid(st->pid, NULL, WNOHANG);
	}
	if (st->listen_fd >= 0)
		close(st->listen_fd);
	if (st->pidfd >= 0)
		close(st->pidfd);
	if (st->dir[0]) {
		unlink(st->addr.sun_path);
		rmdir(st->dir);
	}
	free(st->buf);
	free(st->hdr);
	conf_str_list_free(&st->argv);
	free(st);
	w->handler_data = NULL;
}

/* --- one request ------------------------------------------------------- */

static int send_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* BEGIN_REQUEST and every param, as the program expects them. */
static int send_head(int fd, const struct request *r)
{
	uint8_t begin[FCGI_BEGIN_REQUEST_LEN];
	fcgi_begin_request_encode(begin, 1, FCGI_RESPONDER, 0);
	if (send_all(fd, begin, sizeof(begin)) < 0)
		return -1;
	size_t total = 0;
	for (size_t i = 0; i < req_param_count(r); i++) {
		const struct fcgi_param *p = req_param_at(r, i);
		total += fcgi_nv_size(p->name_len, p->value_len);
	}
	uint8_t *nv = malloc(total ? total : 1);
	if (!nv)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < req_param_count(r); i++) {
		const struct fcgi_param *p = req_param_at(r, i);
		o += fcgi_nv_encode(nv + o, total - o, p->name, p->name_len, p->value, p->value_len);
	}
	size_t need = fcgi_stream_size(o) + fcgi_stream_size(0);
	uint8_t *rec = malloc(need);
	int rc = -1;
	if (rec) {
		size_t n = fcgi_stream_encode(rec, need, FCGI_PARAMS, 1, nv, o);
		n += fcgi_stream_encode(rec + n, need - n, FCGI_PARAMS, 1, NULL, 0);
		rc = send_all(fd, rec, n);
	}
	free(rec);
	free(nv);
	return rc;
}

static int send_stdin(int fd, const void *data, size_t len)
{
	uint8_t hdr[FCGI_HEADER_LEN], pad;
	const uint8_t *p = data;
	do {
		size_t n = fcgi_stream_header(hdr, FCGI_STDIN, 1, len, &pad);
		if (send_all(fd, hdr, sizeof(hdr)) < 0 || (n && send_all(fd, p, n) < 0) ||
		    (pad && send_all(fd, fcgi_zero_pad, pad) < 0))
			return -1;
		p += n;
		len -= n;
	} while (len);
	return 0;
}

struct relay {
	int ended;
	uint32_t app_status;
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

static int exec_handle(struct worker *w, struct request *r)
{
	struct exec_state *st = w->handler_data;
	const char *pool = w->pool->conf->name;
	struct relay rl = { 0 };
	struct fcgi_resp_reader rd;
	fcgi_resp_reader_init(&rd);
	cgi_headers_init(st->hdr);

	if (ensure_program(w, st) < 0)
		return resp_simple(r, 503, "503 Service Unavailable\n") < 0 ? -1 : 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&st->addr, sizeof(st->addr)) < 0 ||
	    send_head(fd, r) < 0) {
		log_sys(LL_ERROR, "[pool %s] child %d: cannot reach exec.command", pool, (int)getpid());
		if (fd >= 0)
			close(fd);
		return resp_simple(r, 502, "502 Bad Gateway\n") < 0 ? -1 : 0;
	}

	int body_done = 0, rc = 0;
	while (!rl.ended) {
		int body = body_done ? 2 : req_body_next(r, 0);
		if (body < 0) {
			rc = -1;             /* client gone or aborted: drop the program's request */
			break;
		}
		if (body == 1) {
			if (send_stdin(fd, r->pending, r->pending_len) < 0) {
				body_done = 1;   /* the program stopped reading: answer is coming */
			}
			r->pending_len = 0;
			continue;
		}
		if (body == 2 && !body_done) {
			send_stdin(fd, NULL, 0);
			body_done = 1;
		}
		/*
		 * The program's exit is watched too: a program that exits by itself
		 * (after N requests, as php-cgi and Perl FCGI apps do) is restarted,
		 * and the restarted one accepts the request still queued on the
		 * worker's socket — no 502, no hang.
		 */
		struct pollfd pfd[3] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = r->conn->fd, .events = body_done ? POLLRDHUP : POLLIN },
			{ .fd = rl.got_output ? -1 : st->pidfd, .events = POLLIN },
		};
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = -1;
			break;
		}
		if (pfd[2].revents && !pfd[0].revents) {
			if (ensure_program(w, st) < 0) {
				rc = 0;
				break;
			}
			continue;
		}
		if (pfd[1].revents) {
			if (!body_done) {
				if (req_body_next(r, 1) < 0) {
					rc = -1;
					break;
				}
			} else if (pfd[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
				rc = -1;
				break;
			}
		}
		if (pfd[0].revents) {
			ssize_t n = recv(fd, st->buf, EXEC_BUF, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;           /* the program closed without END_REQUEST */
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

const struct handler handler_exec = {
	.name = "exec",
	.worker_init = exec_worker_init,
	.handle = exec_handle,
	.worker_exit = exec_worker_exit,
};
