/*
 * The master's control socket (control_socket = PATH, mode 0600): fpmctl's
 * way to ask for something and hear how it went, which signals cannot do.
 *
 * One command per connection, one line ("reload\n"); the answer is lines of
 * text ending with a line that starts with "OK" or "ERROR".  A reload keeps
 * the connection open across the re-exec (FPMD_CTL_CLIENT) so that the new
 * master tells the caller whether the new generation is serving.  quit and
 * stop answer "OK", then the connection closes when the master has exited.
 *
 * Commands: ping, pools (status is its other name), reopen, reload, quit, stop.
 */
#include "master/control.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ev/ev.h"
#include "log/log.h"

#define CTL_LINE_MAX 256
#define ENV_CTL_CLIENT "FPMD_CTL_CLIENT"

struct ctl_conn {
	int fd;
	struct ev_watch *watch;
	char buf[CTL_LINE_MAX];
	size_t len;
	struct master *m;
};

void control_say(struct master *m, const char *fmt, ...)
{
	if (m->ctl_client < 0)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* A client that does not read loses its answer, never the master's time. */
	if (send(m->ctl_client, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		close(m->ctl_client);
		m->ctl_client = -1;
	}
}

void control_done(struct master *m, int keep_open)
{
	if (m->ctl_client >= 0 && !keep_open) {
		close(m->ctl_client);
		m->ctl_client = -1;
	}
}

static void ctl_conn_free(struct ctl_conn *c)
{
	if (c->watch)
		ev_fd_del(c->m->loop, c->watch);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

static void status_lines(struct master *m)
{
	for (struct pool *p = m->pools; p; p = p->next) {
		struct pool_counts n;
		pool_count(p, &n);
		control_say(m, "pool %s: pm %s, listen %s, processes %u (active %u, idle %u), "
			    "requests %llu, max children reached %llu, slow requests %llu",
			    p->conf->name, conf_pm_name(p->conf->pm), p->addr.text, p->own->running, n.active,
			    n.idle, (unsigned long long)n.requests,
			    (unsigned long long)p->own->max_children_reached,
			    (unsigned long long)p->own->slow_requests);
	}
	if (m->old_children)
		control_say(m, "previous generation: %u processes finishing", m->old_children);
}

/*
 * scale POOL +N | -N | =N: a floor of workers a dynamic or ondemand pool
 * keeps (spawned now, never retired below), within pm.max_children, until
 * the next reload.  Static pools have their size in the configuration.
 */
static void scale(struct master *m, const char *args)
{
	char name[64], spec[32];
	if (sscanf(args, "%63s %31s", name, spec) != 2 || !strchr("+-=", spec[0])) {
		control_say(m, "ERROR usage: scale POOL +N|-N|=N");
		return;
	}
	struct pool *p = m->pools;
	while (p && strcmp(p->conf->name, name) != 0)
		p = p->next;
	if (!p) {
		control_say(m, "ERROR no pool named '%s'", name);
		return;
	}
	if (p->conf->pm == PM_STATIC) {
		control_say(m, "ERROR pool %s is pm = static: it keeps pm.max_children (%d) workers; "
			    "change the configuration and reload", name, p->conf->pm_max_children);
		return;
	}
	char *end;
	long n = strtol(spec + 1, &end, 10);
	if (*end || n < 0 || n > 100000) {
		control_say(m, "ERROR '%s' is not +N, -N or =N", spec);
		return;
	}
	long base = spec[0] == '=' ? 0 : (long)(p->own->floor > p->own->running ? p->own->floor : p->own->running);
	long floor = spec[0] == '=' ? n : spec[0] == '+' ? base + n : base - n;
	if (floor < 0)
		floor = 0;
	if (floor > p->conf->pm_max_children)
		floor = p->conf->pm_max_children;
	p->own->floor = (unsigned)floor;
	log_notice("[pool %s] scaled: at least %u workers (running %u)", name, p->own->floor, p->own->running);
	pm_mark(p, 0);
	control_say(m, "OK pool %s: at least %u workers (running %u, pm.max_children %d)", name,
		    p->own->floor, p->own->running, p->conf->pm_max_children);
}

/* Runs one command; the connection becomes m->ctl_client while it does. */
static void run_command(struct ctl_conn *c, const char *cmd)
{
	struct master *m = c->m;
	if (m->ctl_client >= 0) {
		const char busy[] = "ERROR busy: another command is in progress\n";
		if (send(c->fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			/* The client is gone already. */
		}
		return;
	}
	m->ctl_client = c->fd;
	c->fd = -1;                    /* now owned by the master's reply channel */
	log_notice("control: '%s' requested", cmd);
	if (strcmp(cmd, "ping") == 0) {
		control_say(m, "OK pong, pid %d", (int)m->pid);
		control_done(m, 0);
	} else if (strcmp(cmd, "status") == 0 || strcmp(cmd, "pools") == 0) {
		status_lines(m);
		control_say(m, "OK");
		control_done(m, 0);
	} else if (strcmp(cmd, "reopen") == 0) {
		kill(m->pid, SIGUSR1);
		control_say(m, "OK reopening logs");
		control_done(m, 0);
	} else if (strcmp(cmd, "reload") == 0) {
		/* On success the process is replaced and the new master answers. */
		reload_request(m);
		control_done(m, 0);
	} else if (strncmp(cmd, "scale ", 6) == 0) {
		scale(m, cmd + 6);
		control_done(m, 0);
	} else if (strcmp(cmd, "quit") == 0 || strcmp(cmd, "stop") == 0) {
		if (cmd[0] == 's' && m->conf->sigterm_drain > 0 && !m->draining)
			control_say(m, "OK draining for %ds (sigterm_drain), then finishing",
				    m->conf->sigterm_drain);
		else
			control_say(m, "OK %s", cmd[0] == 'q' ? "finishing" : "terminating");
		kill(m->pid, cmd[0] == 'q' ? SIGQUIT : SIGTERM);
		/* Kept open: it closes when the master exits. */
	} else {
		control_say(m, "ERROR unknown command '%.64s' (ping, pools, reopen, reload, quit, stop, scale)",
			    cmd);
		control_done(m, 0);
	}
}

static void on_client(struct ev_loop *loop, int fd, uint32_t events, void *data)
{
	struct ctl_conn *c = data;
	(void)loop;
	(void)events;
	ssize_t n = recv(fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, MSG_DONTWAIT);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		ctl_conn_free(c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	char *nl = strchr(c->buf, '\n');
	if (!nl) {
		if (c->len >= sizeof(c->buf) - 1)
			ctl_conn_free(c);      /* no command is that long */
		return;
	}
	*nl = '\0';
	if (nl > c->buf && nl[-1] == '\r')
		nl[-1] = '\0';
	ev_fd_del(c->m->loop, c->watch);
	c->watch = NULL;
	run_command(c, c->buf);
	ctl_conn_free(c);
}

static void on_accept(struct ev_loop *loop, int fd, uint32_t events, void *data)
{
	struct master *m = data;
	(void)events;
	int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (cfd < 0)
		return;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	/* The socket's mode already limits who connects; check the peer anyway. */
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid != 0 &&
	    cred.uid != geteuid()) {
		log_warning("control: connection from uid %d refused", (int)cred.uid);
		close(cfd);
		return;
	}
	struct ctl_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return;
	}
	c->fd = cfd;
	c->m = m;
	c->watch = ev_fd_add(loop, cfd, EPOLLIN, on_client, c);
	if (!c->watch)
		ctl_conn_free(c);
}

void control_adopt_client(struct master *m)
{
	const char *env = getenv(ENV_CTL_CLIENT);
	if (env) {
		/* A reload's caller, waiting for the outcome from this new master. */
		long fd = strtol(env, NULL, 10);
		if (m->ctl_client < 0 && fd > 2 && fcntl((int)fd, F_GETFD) >= 0) {
			fcntl((int)fd, F_SETFD, FD_CLOEXEC);
			m->ctl_client = (int)fd;
		}
		unsetenv(ENV_CTL_CLIENT);
	}
}

/*
 * The previous master's listening control socket, across a reload's exec
 * (FPMD_CTL_LISTEN): closed and made again, it refused every fpmctl command
 * sent while the new master started (a second reload, a status, exit 3 "is
 * fpmd running?").  Kept open, what comes meanwhile waits in its backlog.
 * Taken first thing at start, close-on-exec again before any fork.
 */
#define ENV_CTL_LISTEN "FPMD_CTL_LISTEN"
static int ctl_inherited = -1;

void control_adopt_listener(void)
{
	const char *env = getenv(ENV_CTL_LISTEN);
	if (!env)
		return;
	long fd = strtol(env, NULL, 10);
	if (fd > 2 && fcntl((int)fd, F_SETFD, FD_CLOEXEC) == 0)
		ctl_inherited = (int)fd;
	unsetenv(ENV_CTL_LISTEN);
}

/* The inherited socket when it listens at path still; else it is closed (its file removed). */
static int take_inherited(const char *path)
{
	int fd = ctl_inherited;
	ctl_inherited = -1;
	if (fd < 0)
		return -1;
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	int listening = 0;
	socklen_t il = sizeof(listening);
	memset(&sa, 0, sizeof(sa));
	if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0 && sa.sun_family == AF_UNIX &&
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &il) == 0 && listening &&
	    path && strncmp(sa.sun_path, path, sizeof(sa.sun_path)) == 0) {
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		return fd;
	}
	/* another path now (or none): the old one goes, file and all */
	if (sa.sun_family == AF_UNIX && sa.sun_path[0] == '/')
		unlink(sa.sun_path);
	close(fd);
	return -1;
}

int control_open(struct master *m)
{
	control_adopt_client(m);
	m->ctl_fd = -1;
	const char *path = m->conf->control_socket;
	int inherited = take_inherited(path && *path ? path : NULL);
	if (inherited >= 0) {
		m->ctl_fd = inherited;
		m->ctl_watch = ev_fd_add(m->loop, inherited, EPOLLIN, on_accept, m);
		return m->ctl_watch ? 0 : -1;
	}
	if (!path || !*path)
		return 0;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("control_socket '%s' is too long", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	/* A stale socket from a crash is replaced; a live master's is not. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		log_error("control_socket '%s' is in use by another running fpmd", path);
		close(fd);
		return -1;
	}
	unlink(path);
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, 16) < 0) {
		log_sys(LL_ERROR, "cannot listen on control_socket '%s'", path);
		close(fd);
		return -1;
	}
	m->ctl_fd = fd;
	m->ctl_watch = ev_fd_add(m->loop, fd, EPOLLIN, on_accept, m);
	return m->ctl_watch ? 0 : -1;
}

void control_close(struct master *m)
{
	if (m->ctl_watch)
		ev_fd_del(m->loop, m->ctl_watch);
	m->ctl_watch = NULL;
	if (m->ctl_fd >= 0) {
		close(m->ctl_fd);
		unlink(m->conf->control_socket);
	}
	m->ctl_fd = -1;
	if (m->ctl_client >= 0)
		close(m->ctl_client);
	m->ctl_client = -1;
}

void control_exec_failed(struct master *m)
{
	int fd = m->ctl_fd >= 0 ? m->ctl_fd : ctl_inherited;
	if (fd >= 0)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	unsetenv(ENV_CTL_LISTEN);
}

int control_pass_on_exec(struct master *m)
{
	/* the listening socket: this master's, or the one it inherited and had not taken yet */
	int lfd = m->ctl_fd >= 0 ? m->ctl_fd : ctl_inherited;
	if (lfd >= 0) {
		char lbuf[16];
		fcntl(lfd, F_SETFD, 0);
		snprintf(lbuf, sizeof(lbuf), "%d", lfd);
		setenv(ENV_CTL_LISTEN, lbuf, 1);
	}
	if (m->ctl_client < 0)
		return 0;
	int fl = fcntl(m->ctl_client, F_GETFD);
	fcntl(m->ctl_client, F_SETFD, fl & ~FD_CLOEXEC);
	char buf[16];
	snprintf(buf, sizeof(buf), "%d", m->ctl_client);
	return setenv(ENV_CTL_CLIENT, buf, 1);
}
