/*
 * prefork: the physical limit of `make bench`.
 *
 * The least a process-per-connection FastCGI server can do: N processes
 * blocked in accept() on one unix socket; each reads a request with fpmd's
 * parser (src/fcgi), answers "Hello, world!" in a single write (STDOUT,
 * empty STDOUT, END_REQUEST), and closes the connection or, with
 * FCGI_KEEP_CONN, waits for the next request.  No manager, no scoreboard, no
 * logging, no timeouts: bench only, never a server to deploy.
 *
 *   prefork -s PATH [-n PROCESSES] [-b BACKLOG]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fcgi/fcgi.h"

static const char body[] = "Content-Type: text/plain\r\n\r\nHello, world!\n";

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* STDOUT record(s) with the body, the empty STDOUT, END_REQUEST: one write. */
static int respond(int fd, uint16_t id)
{
	uint8_t out[256];
	size_t n;

	n = fcgi_stream_encode(out, sizeof(out), FCGI_STDOUT, id, body, sizeof(body) - 1);
	n += fcgi_stream_encode(out + n, sizeof(out) - n, FCGI_STDOUT, id, "", 0);
	fcgi_end_request_encode(out + n, id, 0, FCGI_REQUEST_COMPLETE);
	n += FCGI_END_REQUEST_LEN;
	return write_all(fd, out, n);
}

/*
 * One connection: feed the parser until the request's STDIN ends, answer,
 * then either close or (FCGI_KEEP_CONN) reset the parser and go on.
 */
static void serve(int fd, struct fcgi_parser *p)
{
	uint8_t buf[16384];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		size_t off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		while (off < (size_t)n) {
			struct fcgi_event ev;
			ssize_t used = fcgi_parser_feed(p, buf + off, (size_t)n - off, &ev);

			if (used < 0)
				return;
			off += (size_t)used;
			if (ev.kind == FCGI_EV_REPLY && write_all(fd, ev.data, ev.len) < 0)
				return;
			if (ev.kind == FCGI_EV_ABORT)
				return;
			if (ev.kind != FCGI_EV_STDIN_END)
				continue;
			if (respond(fd, p->request_id) < 0 || !(p->flags & FCGI_KEEP_CONN))
				return;
			fcgi_parser_reset(p);
		}
	}
}

static void child(int lfd)
{
	struct fcgi_parser p;

	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("prefork: accept");
			_exit(1);
		}
		fcgi_parser_init(&p, NULL);
		serve(fd, &p);
		fcgi_parser_free(&p);
		close(fd);
	}
}

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sun;
	struct sigaction sa;
	const char *path = NULL;
	int ch, n = 2, backlog = 1024, lfd, i;
	pid_t *kids;

	while ((ch = getopt(argc, argv, "s:n:b:")) != -1) {
		switch (ch) {
		case 's': path = optarg; break;
		case 'n': n = atoi(optarg); break;
		case 'b': backlog = atoi(optarg); break;
		default: path = NULL; n = 0; break;
		}
	}
	if (!path || n < 1 || n > 1024 || strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "usage: prefork -s PATH [-n PROCESSES] [-b BACKLOG]\n");
		return 2;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	unlink(path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(lfd, backlog) < 0) {
		perror("prefork: socket/bind/listen");
		return 1;
	}
	kids = calloc((size_t)n, sizeof(*kids));
	if (!kids)
		return 1;
	for (i = 0; i < n; i++) {
		kids[i] = fork();
		if (kids[i] < 0) {
			perror("prefork: fork");
			return 1;
		}
		if (kids[i] == 0)
			child(lfd);
	}
	/* The parent only waits; TERM/INT take the children with it. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	while (!stopping && wait(NULL) > 0)
		;
	for (i = 0; i < n; i++)
		kill(kids[i], SIGTERM);
	while (wait(NULL) > 0)
		;
	unlink(path);
	free(kids);
	return 0;
}
