/*
 * pm.status_listen: the pool's ping and status pages answered by the master
 * itself on their own socket, so a scrape gets an answer while every worker
 * is busy (php-fpm runs a hidden extra pool for this, which saturates too).
 *
 * The master never blocks here: connections are non-blocking, the request
 * goes through the same fuzzed incremental parser the workers use, the
 * answer is built from the scoreboard (copied and clamped) and written as
 * the socket accepts it.  At most STATUS_CONN_MAX connections per listener
 * at once, each closed if it has not finished within STATUS_CONN_TIMEOUT_MS;
 * a new connection over the cap pushes out the oldest that has not sent a
 * whole request, so idle connections to one pool's listener cannot keep a
 * scraper out of it, nor out of any other pool's.
 */
#include "master/status_listen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev/ev.h"
#include "fcgi/fcgi.h"
#include "handlers/handler.h"
#include "log/log.h"

#define STATUS_CONN_MAX 32
#define STATUS_CONN_TIMEOUT_MS 2000u
#define STATUS_MAX_PARAMS (1024u * 1024u)

struct status_conn {
	int fd;
	struct pool *pool;
	struct ev_watch *watch;
	struct fcgi_parser parser;
	uint8_t *out;
	size_t out_len, out_pos;
	uint64_t started_us;
	struct status_conn *next;
};

static struct status_conn *conns;     /* every listener's */
static unsigned nconns;
static struct ev_watch *sweep_timer;

static void status_conn_close(struct master *m, struct status_conn *c)
{
	for (struct status_conn **pc = &conns; *pc; pc = &(*pc)->next)
		if (*pc == c) {
			*pc = c->next;
			break;
		}
	if (c->watch)
		ev_fd_del(m->loop, c->watch);
	close(c->fd);
	fcgi_parser_free(&c->parser);
	free(c->out);
	c->pool->own->status_conns--;
	free(c);
	nconns--;
	if (nconns == 0 && sweep_timer)
		ev_timer_disarm(sweep_timer);
}

/* Appends stream records for data (or the END_REQUEST when end is set). */
static int out_add(struct status_conn *c, uint8_t type, const void *data, size_t len)
{
	size_t need = fcgi_stream_size(len);
	uint8_t *nb = realloc(c->out, c->out_len + need);
	if (!nb)
		return -1;
	c->out = nb;
	c->out_len += fcgi_stream_encode(c->out + c->out_len, need, type, c->parser.request_id, data,
					  len);
	return 0;
}

/* The END_REQUEST that closes the request the parser holds. */
static int out_end(struct status_conn *c)
{
	uint8_t end[FCGI_END_REQUEST_LEN];
	fcgi_end_request_encode(end, c->parser.request_id, 0, FCGI_REQUEST_COMPLETE);
	uint8_t *nb = realloc(c->out, c->out_len + sizeof(end));
	if (!nb)
		return -1;
	c->out = nb;
	memcpy(c->out + c->out_len, end, sizeof(end));
	c->out_len += sizeof(end);
	return 0;
}

/* Builds the whole answer to the request the parser holds. */
static int build_answer(struct status_conn *c)
{
	const struct pool_conf *pc = c->pool->conf;
	const char *script = fcgi_param_value(&c->parser, "SCRIPT_NAME");
	const char *method = fcgi_param_value(&c->parser, "REQUEST_METHOD");
	const char *query = fcgi_param_value(&c->parser, "QUERY_STRING");
	int head = method && strcmp(method, "HEAD") == 0;
	struct status_ready_query ready_q;
	char hdr[600];
	int rc = 0;
	/* a php pool's answers say X-Powered-By, as php-fpm's hidden status pool does */
	const struct handler *h = c->pool->handler;
	const char *pb = h && h->powered_by ? h->powered_by(c->pool->own->zygote_info, c->pool->own->zygote_info_len)
			 : "";

	if (script && pc->pm_status_path && strcmp(script, pc->pm_status_path) == 0) {
		enum status_format f;
		size_t len = 0;
		char *body = status_page(c->pool, c->pool->listen_fd, &c->pool->own->hdr, query, getpid(), &f, &len);
		if (!body)
			return -1;
		int n = snprintf(hdr, sizeof(hdr), "Status: 200 OK\r\n%sContent-type: %s\r\n%s\r\n",
				 pb, status_content_type(f), STATUS_NO_CACHE_HEADERS);
		rc = out_add(c, FCGI_STDOUT, hdr, (size_t)n);
		if (rc == 0 && !head && len)
			rc = out_add(c, FCGI_STDOUT, body, len);
		free(body);
	} else if (script && pc->ping_path && strcmp(script, pc->ping_path) == 0 &&
		   (status_ready_parse(query, &ready_q), ready_q.asked)) {
		/* Readiness from the master: answered at once, saturated or not. */
		char why[512];
		int ready = ping_ready(c->pool, c->pool->listen_fd, &c->pool->own->hdr, query, why, sizeof(why));
		int n = snprintf(hdr, sizeof(hdr), "Status: %s\r\n%sContent-type: text/plain\r\n%s\r\n",
				 ready > 0 ? "200 OK" : "503 Service Unavailable", pb, STATUS_NO_CACHE_HEADERS);
		rc = out_add(c, FCGI_STDOUT, hdr, (size_t)n);
		if (rc == 0 && !head)
			rc = out_add(c, FCGI_STDOUT, why, strlen(why));
	} else if (script && pc->ping_path && strcmp(script, pc->ping_path) == 0) {
		const char *pong = pc->ping_response ? pc->ping_response : "pong";
		int n = snprintf(hdr, sizeof(hdr), "Status: 200 OK\r\n%sContent-type: text/plain\r\n%s\r\n%s",
				 pb, STATUS_NO_CACHE_HEADERS, head ? "" : pong);
		rc = out_add(c, FCGI_STDOUT, hdr, (size_t)n);
	} else {
		static const char nf[] = "Status: 404 Not Found\r\nContent-type: text/plain\r\n\r\n"
					 "File not found.\n";
		rc = out_add(c, FCGI_STDOUT, nf, sizeof(nf) - 1);
	}
	if (rc < 0 || out_add(c, FCGI_STDOUT, NULL, 0) < 0)
		return -1;
	return out_end(c);
}

/* Params over the pool's request.max_params_* limits: as the pool's workers answer them. */
static int build_refusal(struct status_conn *c)
{
	static const char body[] = POOL_PARAMS_REFUSAL;
	if (out_add(c, FCGI_STDOUT, body, sizeof(body) - 1) < 0 ||
	    out_add(c, FCGI_STDOUT, NULL, 0) < 0)
		return -1;
	return out_end(c);
}

static void on_conn(struct ev_loop *loop, int fd, uint32_t events, void *data)
{
	struct status_conn *c = data;
	struct master *m = c->pool->own->master;
	(void)loop;

	if (c->out) {
		/* Writing the answer. */
		while (c->out_pos < c->out_len) {
			ssize_t n = send(fd, c->out + c->out_pos, c->out_len - c->out_pos,
					 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (n <= 0)
				break;
			c->out_pos += (size_t)n;
		}
		status_conn_close(m, c);
		return;
	}
	if (!(events & EPOLLIN)) {
		status_conn_close(m, c);
		return;
	}
	uint8_t buf[4096];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		status_conn_close(m, c);
		return;
	}
	size_t pos = 0;
	while (pos < (size_t)n) {
		struct fcgi_event ev;
		ssize_t used = fcgi_parser_feed(&c->parser, buf + pos, (size_t)n - pos, &ev);
		if (used < 0) {
			const struct pool_conf *pc = c->pool->conf;
			enum fcgi_error e = c->parser.error;
			/* limited across every pool's status_listen: the master's log is one */
			if (fcgi_error_is_limit(e) && c->parser.active) {
				log_limited(LL_WARNING, "[pool %s] status_listen: request refused with 431: "
					    "%s (request.max_params_size %zu, request.max_params_count %d, "
					    "request.max_param_name_size %zu)%s", pc->name,
					    fcgi_strerror(e), pc->request_max_params_size,
					    pc->request_max_params_count, pc->request_max_param_name_size);
				if (build_refusal(c) == 0) {
					ev_fd_mod(m->loop, c->watch, EPOLLOUT);
					return;
				}
			} else {
				log_limited(LL_WARNING, "[pool %s] status_listen: FastCGI protocol error: %s%s",
					    pc->name, fcgi_strerror(e));
			}
			status_conn_close(m, c);
			return;
		}
		pos += (size_t)used;
		if (ev.kind == FCGI_EV_REPLY) {
			/* GET_VALUES and refusals: short, answered in place. */
			if (send(fd, ev.data, ev.len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
				status_conn_close(m, c);
				return;
			}
		} else if (ev.kind == FCGI_EV_PARAMS_DONE || ev.kind == FCGI_EV_ABORT) {
			/*
			 * The body, if any, is not needed: answer now, then close.  An
			 * abort before the params ended is owed its END_REQUEST (spec §5.4).
			 */
			if ((ev.kind == FCGI_EV_ABORT ? out_end(c) : build_answer(c)) < 0) {
				status_conn_close(m, c);
				return;
			}
			ev_fd_mod(m->loop, c->watch, EPOLLOUT);
			return;
		}
	}
}

static void on_sweep(struct ev_loop *loop, struct ev_watch *t, void *data)
{
	struct master *m = data;
	uint64_t now = sb_mono_us();
	(void)loop;
	(void)t;
	for (struct status_conn *c = conns, *next; c; c = next) {
		next = c->next;
		if (now - c->started_us > STATUS_CONN_TIMEOUT_MS * 1000u)
			status_conn_close(m, c);
	}
}

static void on_accept(struct ev_loop *loop, int fd, uint32_t events, void *data)
{
	struct pool *p = data;
	struct master *m = p->own->master;
	(void)events;
	for (int i = 0; i < 16; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (cfd < 0)
			return;
		if (p->own->status_conns >= STATUS_CONN_MAX) {
			/* bounded per listener: the oldest one still silent makes room */
			struct status_conn *oldest = NULL;
			for (struct status_conn *o = conns; o; o = o->next)
				if (o->pool == p && !o->out &&
				    (!oldest || o->started_us < oldest->started_us))
					oldest = o;
			if (!oldest) {
				close(cfd);
				continue;
			}
			status_conn_close(m, oldest);
		}
		struct status_conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(cfd);
			continue;
		}
		/*
		 * The pool's own limits: a request its workers take, its status takes
		 * too; but the root master buffers no more than STATUS_MAX_PARAMS per
		 * connection, whatever the pool allows its workers.
		 */
		struct fcgi_limits lim;
		conf_fcgi_limits(p->conf, &lim);
		if (lim.max_params_size > STATUS_MAX_PARAMS)
			lim.max_params_size = STATUS_MAX_PARAMS;
		lim.max_conns = STATUS_CONN_MAX;
		lim.max_reqs = STATUS_CONN_MAX;
		fcgi_parser_init(&c->parser, &lim);
		c->fd = cfd;
		c->pool = p;
		c->started_us = sb_mono_us();
		c->watch = ev_fd_add(loop, cfd, EPOLLIN | EPOLLRDHUP, on_conn, c);
		c->next = conns;
		conns = c;
		nconns++;
		p->own->status_conns++;
		if (!c->watch) {
			status_conn_close(m, c);
			continue;
		}
		if (!sweep_timer)
			sweep_timer = ev_timer_new(loop, on_sweep, m);
		if (sweep_timer && !ev_timer_armed(sweep_timer))
			ev_timer_arm(sweep_timer, 1000, 1000);
	}
}

int status_listen_open(struct master *m, struct pool *p, const struct listen_perms *perms)
{
	char err[512];
	const char *spec = p->conf->pm_status_listen;
	p->own->status_fd = -1;
	if (!spec || !*spec)
		return 0;
	struct listen_addr a;
	if (listen_parse(spec, &a, err, sizeof(err)) < 0) {
		log_error("[pool %s] pm.status_listen = '%s': %s", p->conf->name, spec, err);
		return -1;
	}
	p->own->status_fd = reload_take_socket(m, a.text, &p->own->status_systemd);
	/* a changed owner, group or mode applies to an inherited socket too, as to the pool's */
	if (p->own->status_fd >= 0 && a.family == AF_UNIX && perms &&
	    listen_path_apply(a.path, perms, err, sizeof(err)) < 0)
		log_warning("[pool %s] pm.status_listen: cannot apply listen.owner/mode: %s",
			    p->conf->name, err);
	if (p->own->status_fd < 0)
		p->own->status_fd = listen_open(&a, 64, perms, err, sizeof(err));
	if (p->own->status_fd < 0) {
		log_error("[pool %s] pm.status_listen: %s", p->conf->name, err);
		return -1;
	}
	p->own->status_addr = a;
	return 0;
}

/* status_pid_is_pools (handler.h): the master's own list of the pool's workers. */
static int pid_is_pools(const struct pool *pool, pid_t pid)
{
	for (const struct child *c = pool->own->children; c; c = c->next)
		if (c->pid == pid)
			return 1;
	return 0;
}

int status_listen_start(struct master *m, struct pool *p)
{
	if (p->own->status_fd < 0)
		return 0;
	status_pid_is_pools = pid_is_pools;
	p->own->status_watch = ev_fd_add(m->loop, p->own->status_fd, EPOLLIN, on_accept, p);
	return p->own->status_watch ? 0 : -1;
}

void status_listen_close(struct master *m, struct pool *p)
{
	for (struct status_conn *c = conns, *next; c; c = next) {
		next = c->next;
		if (c->pool == p)
			status_conn_close(m, c);
	}
	if (p->own->status_watch)
		ev_fd_del(m->loop, p->own->status_watch);
	p->own->status_watch = NULL;
	if (p->own->status_fd >= 0 && !reload_give_back(m, p->own->status_fd)) {
		close(p->own->status_fd);
		if (p->own->status_addr.family == AF_UNIX && !p->own->status_systemd)
			unlink(p->own->status_addr.path);
	}
	p->own->status_fd = -1;
	if (!conns && sweep_timer) {
		ev_timer_free(m->loop, sweep_timer);
		sweep_timer = NULL;
	}
}
