/*
 * fpmctl top: a live view of a pool, refreshed every second from its status
 * page (?full, text format, the one php-fpm's users know): the pool's
 * counters with requests per second, then one line per worker.
 *
 *   fpmctl top [-s SOCKET] [--path /status] [-d SECONDS] [-n COUNT]
 *
 * Point it at a pool socket, or better at the pool's pm.status_listen socket
 * (answered by the master, so top keeps working when every worker is busy).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "fcgi/fcgi.h"

#define TOP_MAX_BODY (4u * 1024u * 1024u)
#define TOP_MAX_PROCS 512

static volatile sig_atomic_t stop;

static void on_signal(int s)
{
	(void)s;
	stop = 1;
}

/* One status request; returns the body (malloc'ed) or NULL with a message in err. */
static char *fetch(const struct ctl_addr *a, const char *uri, char *err, size_t errlen)
{
	struct ctl_params ps = { 0 };
	const char *q = strchr(uri, '?');
	char path[256];
	snprintf(path, sizeof(path), "%.*s", q ? (int)(q - uri) : (int)strlen(uri), uri);
	if (ctl_params_set(&ps, "REQUEST_METHOD", 14, "GET") < 0 ||
	    ctl_params_set(&ps, "SCRIPT_NAME", 11, path) < 0 ||
	    ctl_params_set(&ps, "SCRIPT_FILENAME", 15, path) < 0 ||
	    ctl_params_set(&ps, "REQUEST_URI", 11, uri) < 0 ||
	    ctl_params_set(&ps, "QUERY_STRING", 12, q ? q + 1 : "") < 0 ||
	    ctl_params_set(&ps, "GATEWAY_INTERFACE", 17, "CGI/1.1") < 0) {
		ctl_params_free(&ps);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	size_t len;
	uint8_t *req = ctl_fcgi_encode(&ps, 1, NULL, 0, &len);
	ctl_params_free(&ps);
	if (!req) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	int64_t deadline = ctl_now_ms() + 5000;
	char why[200];
	int fd = ctl_connect(a, deadline, why, sizeof(why));
	if (fd < 0) {
		snprintf(err, errlen, "cannot connect to %.320s: %.200s", a->text, why);
		free(req);
		return NULL;
	}
	size_t sent = 0;
	while (sent < len) {
		ssize_t w = write(fd, req + sent, len - sent);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			poll(&pfd, 1, 100);
			continue;
		}
		if (w <= 0)
			break;
		sent += (size_t)w;
	}
	free(req);
	char *body = malloc(TOP_MAX_BODY + 1);
	size_t blen = 0;
	int ended = 0;
	struct fcgi_resp_reader rd;
	fcgi_resp_reader_init(&rd);
	uint8_t buf[16384];
	while (body && !ended && ctl_now_ms() < deadline) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		size_t off = 0;
		while (off < (size_t)n && !ended) {
			struct fcgi_resp_event ev;
			ssize_t used = fcgi_resp_reader_feed(&rd, buf + off, (size_t)n - off, &ev);
			if (used < 0) {
				ended = -1;
				break;
			}
			off += (size_t)used;
			if (ev.kind == FCGI_RESP_STDOUT && blen + ev.len <= TOP_MAX_BODY) {
				memcpy(body + blen, ev.data, ev.len);
				blen += ev.len;
			} else if (ev.kind == FCGI_RESP_END) {
				ended = 1;
			}
		}
	}
	close(fd);
	if (!body || ended != 1) {
		free(body);
		snprintf(err, errlen, "no complete answer from %.200s", a->text);
		return NULL;
	}
	body[blen] = '\0';
	/* Skip the CGI headers. */
	char *start = strstr(body, "\r\n\r\n");
	size_t skip = start ? (size_t)(start + 4 - body) : 0;
	memmove(body, body + skip, blen - skip + 1);
	return body;
}

struct top_proc {
	char pid[16], state[32], requests[24], duration[24], method[16], uri[96], cpu[16], mem[24];
};

static const char *field(const char *line, const char *name)
{
	size_t n = strlen(name);
	if (strncmp(line, name, n) != 0 || line[n] != ':')
		return NULL;
	line += n + 1;
	while (*line == ' ')
		line++;
	return line;
}

static void render(const char *body, double rate, const char *target)
{
	static struct top_proc procs[TOP_MAX_PROCS];
	size_t np = 0;
	char pool[64] = "?", pm[32] = "?", accepted[32] = "0", idle[16] = "0", active[16] = "0",
	     total[16] = "0", queue[16] = "0", maxq[16] = "0", reached[16] = "0", slow[16] = "0";
	struct top_proc *cur = NULL;
	char *copy = strdup(body);
	char *save = NULL;
	for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *v;
		if (strncmp(line, "****", 4) == 0) {
			cur = np < TOP_MAX_PROCS ? &procs[np++] : NULL;
			if (cur)
				memset(cur, 0, sizeof(*cur));
			continue;
		}
#define TAKE(dst, name) if ((v = field(line, name))) { snprintf(dst, sizeof(dst), "%s", v); continue; }
		if (!cur) {
			TAKE(pool, "pool") TAKE(pm, "process manager") TAKE(accepted, "accepted conn")
			TAKE(idle, "idle processes") TAKE(active, "active processes")
			TAKE(total, "total processes") TAKE(queue, "listen queue")
			TAKE(maxq, "max listen queue") TAKE(reached, "max children reached")
			TAKE(slow, "slow requests")
		} else {
			TAKE(cur->pid, "pid") TAKE(cur->state, "state") TAKE(cur->requests, "requests")
			TAKE(cur->duration, "request duration") TAKE(cur->method, "request method")
			TAKE(cur->uri, "request URI") TAKE(cur->cpu, "last request cpu")
			TAKE(cur->mem, "last request memory")
		}
#undef TAKE
	}
	free(copy);
	char now[32];
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(now, sizeof(now), "%H:%M:%S", &tm);
	/* A terminal is redrawn in place; a pipe or file gets one frame after another. */
	printf("%sfpmctl top - %s - pool %s (pm %s) on %s\n", isatty(1) ? "\x1b[H\x1b[2J" : "",
	       now, pool, pm, target);
	printf("processes: %s total, %s active, %s idle | accepted %s (%.1f req/s) | "
	       "queue %s (max %s) | max children reached %s | slow %s\n\n",
	       total, active, idle, accepted, rate, queue, maxq, reached, slow);
	printf("%-8s %-28s %9s %12s %7s %10s %-7s %s\n", "PID", "STATE", "REQUESTS", "DURATION(us)",
	       "CPU%", "MEM(KB)", "METHOD", "URI");
	for (size_t i = 0; i < np; i++) {
		struct top_proc *p = &procs[i];
		printf("%-8s %-28s %9s %12s %7s %10llu %-7s %s\n", p->pid, p->state, p->requests,
		       p->duration, p->cpu, strtoull(p->mem, NULL, 10) / 1024, p->method, p->uri);
	}
	fflush(stdout);
}

int ctl_top_main(int argc, char **argv)
{
	const char *sock = CTL_DEFAULT_SOCKET, *path = "/status";
	double delay = 1.0;
	long count = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			sock = argv[++i];
		else if (strcmp(argv[i], "--path") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
			delay = atof(argv[++i]);
		else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			count = atol(argv[++i]);
		else {
			fprintf(i < argc && (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
				? stdout : stderr,
				"usage: fpmctl top [-s unix:PATH|tcp:HOST:PORT] [--path /status] "
				"[-d SECONDS] [-n COUNT]\nA live view of a pool's status page; Ctrl-C quits.\n");
			return strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 ? CTL_OK : CTL_EUSAGE;
		}
	}
	if (delay < 0.1)
		delay = 0.1;
	struct ctl_addr a;
	if (ctl_addr_parse(sock, &a) < 0) {
		fprintf(stderr, "fpmctl: bad socket '%s'\n", sock);
		return CTL_EUSAGE;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	char uri[300];
	snprintf(uri, sizeof(uri), "%s?full", path);
	unsigned long long last = 0;
	int64_t last_ms = 0;
	for (long n = 0; !stop && (count == 0 || n < count); n++) {
		char err[640];
		char *body = fetch(&a, uri, err, sizeof(err));
		if (!body) {
			fprintf(stderr, "fpmctl: %s\n", err);
			return CTL_ECONNECT;
		}
		const char *acc = strstr(body, "accepted conn:");
		unsigned long long accepted = acc ? strtoull(acc + 14, NULL, 10) : 0;
		int64_t now = ctl_now_ms();
		double rate = last_ms && now > last_ms && accepted >= last
			? (double)(accepted - last) * 1000.0 / (double)(now - last_ms) : 0.0;
		last = accepted;
		last_ms = now;
		render(body, rate, a.text);
		free(body);
		if (count && n + 1 >= count)
			break;
		struct timespec ts = { (time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9) };
		nanosleep(&ts, NULL);
	}
	printf("\n");
	return CTL_OK;
}
