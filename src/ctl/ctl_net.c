/*
 * Socket helpers shared by fpmctl's subcommands: address parsing and a
 * connect that honours a deadline, for unix and TCP sockets alike.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctl/ctl.h"

static int set_unix(struct ctl_addr *a, const char *path)
{
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(a->path))
		return -1;
	a->is_unix = 1;
	memcpy(a->path, path, n + 1);
	snprintf(a->text, sizeof(a->text), "unix:%s", path);
	return 0;
}

/* HOST:PORT, the last ':' separating; an IPv6 host is written [addr]. */
static int set_tcp(struct ctl_addr *a, const char *spec)
{
	const char *colon = strrchr(spec, ':'), *host = spec, *p;
	size_t hl;
	long port;
	char *end;

	if (!colon || colon == spec)
		return -1;
	hl = (size_t)(colon - spec);
	if (spec[0] == '[' && hl >= 2 && colon[-1] == ']') {
		host++;
		hl -= 2;
	}
	for (p = colon + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return -1;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (hl == 0 || hl >= sizeof(a->host) || end == colon + 1 || errno || port < 1 ||
	    port > 65535)
		return -1;
	memcpy(a->host, host, hl);
	a->host[hl] = '\0';
	snprintf(a->port, sizeof(a->port), "%ld", port);
	snprintf(a->text, sizeof(a->text), "tcp:%s", spec);
	return 0;
}

int ctl_addr_parse(const char *spec, struct ctl_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (strncmp(spec, "unix:", 5) == 0)
		return set_unix(a, spec + 5);
	if (strncmp(spec, "tcp:", 4) == 0)
		return set_tcp(a, spec + 4);
	if (strchr(spec, '/') || !strchr(spec, ':'))
		return set_unix(a, spec);
	return set_tcp(a, spec);
}

int64_t ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(int64_t deadline)
{
	int64_t left = deadline - ctl_now_ms();

	if (left <= 0)
		return 0;
	return left > 60000 ? 60000 : (int)left;
}

static int fail(char *err, size_t errlen, int e)
{
	snprintf(err, errlen, "%s", strerror(e));
	errno = e;
	return -1;
}

/*
 * A unix connect never goes "in progress": a full listen backlog gives
 * EAGAIN at once on a non-blocking socket, so retry until the deadline.
 */
static int connect_unix(const struct ctl_addr *a, int64_t deadline, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int fd, e;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, a->path, strlen(a->path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(err, errlen, errno);
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		e = errno;
		if (e == EINTR)
			continue;
		if (e != EAGAIN || left_ms(deadline) == 0) {
			close(fd);
			return fail(err, errlen, e == EAGAIN ? ETIMEDOUT : e);
		}
		poll(NULL, 0, 10);
	}
	return fd;
}

/* One TCP address: non-blocking connect, then wait for writability. */
static int connect_one(const struct addrinfo *ai, int64_t deadline, int *e)
{
	struct pollfd pfd;
	socklen_t sl = sizeof(*e);
	int fd, r;

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*e = errno;
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	*e = errno;
	if (*e != EINPROGRESS)
		goto out_close;
	pfd.fd = fd;
	pfd.events = POLLOUT;
	do {
		r = poll(&pfd, 1, left_ms(deadline));
	} while (r < 0 && errno == EINTR && left_ms(deadline) > 0);
	if (r <= 0) {
		*e = ETIMEDOUT;
		goto out_close;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, e, &sl) == 0 && *e == 0)
		return fd;
out_close:
	close(fd);
	return -1;
}

int ctl_connect(const struct ctl_addr *a, int64_t deadline, char *err, size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	int fd = -1, e = ECONNREFUSED, r;

	if (a->is_unix)
		return connect_unix(a, deadline, err, errlen);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	r = getaddrinfo(a->host, a->port, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "%s", gai_strerror(r));
		errno = ENOENT;
		return -1;
	}
	for (ai = res; ai && fd < 0 && e != ETIMEDOUT; ai = ai->ai_next)
		fd = connect_one(ai, deadline, &e);
	freeaddrinfo(res);
	return fd >= 0 ? fd : fail(err, errlen, e);
}

int ctl_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
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
