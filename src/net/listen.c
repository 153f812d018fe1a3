/*
 * Listening sockets (see listen.h).
 */
#include "net/listen.h"

#include <arpa/inet.h>
#include "log/log.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse_port(const char *s, unsigned *port)
{
	char *end;
	if (!*s)
		return -1;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return -1;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || v == 0 || v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

static int set_any(struct listen_addr *a, unsigned port)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
	a->family = AF_INET6;
	a->any = 1;
	s6->sin6_family = AF_INET6;
	s6->sin6_addr = in6addr_any;
	s6->sin6_port = htons((uint16_t)port);
	a->len = sizeof(*s6);
	snprintf(a->text, sizeof(a->text), "[::]:%u", port);
	return 0;
}

static int parse_spec(const char *spec, struct listen_addr *a, char *err, size_t errlen);

int listen_parse(const char *spec, struct listen_addr *a, char *err, size_t errlen)
{
	int rc = parse_spec(spec, a, err, errlen);
	if (spec)
		snprintf(a->spec, sizeof(a->spec), "%s", spec);
	return rc;
}

static int parse_spec(const char *spec, struct listen_addr *a, char *err, size_t errlen)
{
	unsigned port;
	memset(a, 0, sizeof(*a));
	if (!spec || !*spec) {
		snprintf(err, errlen, "empty listen address");
		return -1;
	}
	if (parse_port(spec, &port) == 0)
		return set_any(a, port);

	const char *colon = strrchr(spec, ':');
	if (spec[0] == '/' || spec[0] == '.' || !colon) {
		if (strlen(spec) >= sizeof(a->path)) {
			snprintf(err, errlen, "unix socket path '%s' is longer than %zu bytes", spec,
				 sizeof(a->path) - 1);
			return -1;
		}
		struct sockaddr_un *su = (struct sockaddr_un *)&a->ss;
		a->family = AF_UNIX;
		su->sun_family = AF_UNIX;
		memcpy(su->sun_path, spec, strlen(spec) + 1);
		memcpy(a->path, spec, strlen(spec) + 1);
		a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(spec) + 1);
		snprintf(a->text, sizeof(a->text), "%s", spec);
		return 0;
	}

	if (parse_port(colon + 1, &port) < 0) {
		snprintf(err, errlen, "invalid port in '%s' (expected 1-65535)", spec);
		return -1;
	}
	size_t hostlen = (size_t)(colon - spec);
	char host[INET6_ADDRSTRLEN + 2];
	if (hostlen == 0 || hostlen >= sizeof(host)) {
		snprintf(err, errlen, "invalid address in '%s'", spec);
		return -1;
	}
	memcpy(host, spec, hostlen);
	host[hostlen] = '\0';
	if (strcmp(host, "*") == 0 || strcmp(host, "[::]") == 0)
		return set_any(a, port);
	if (host[0] == '[') {
		if (host[hostlen - 1] != ']') {
			snprintf(err, errlen, "invalid IPv6 address in '%s' (expected [addr]:port)", spec);
			return -1;
		}
		host[hostlen - 1] = '\0';
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1) {
			snprintf(err, errlen, "invalid IPv6 address '%s'", host + 1);
			return -1;
		}
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		a->family = AF_INET6;
		a->len = sizeof(*s6);
		snprintf(a->text, sizeof(a->text), "[%s]:%u", host + 1, port);
		return 0;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
		snprintf(err, errlen, "invalid IPv4 address '%s'", host);
		return -1;
	}
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	a->family = AF_INET;
	a->len = sizeof(*s4);
	snprintf(a->text, sizeof(a->text), "%s:%u", host, port);
	return 0;
}

int listen_somaxconn(void)
{
	int v = 4096;
	FILE *f = fopen("/proc/sys/net/core/somaxconn", "re");
	if (f) {
		if (fscanf(f, "%d", &v) != 1 || v <= 0)
			v = 4096;
		fclose(f);
	}
	return v;
}

/*
 * A unix socket path left behind by a crash is removed; one a live server
 * still answers on is not (two daemons on one path would split traffic).
 */
static int unix_path_free(const struct listen_addr *a, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(a->path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "'%s' exists and is not a socket", a->path);
		errno = EEXIST;
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int r = connect(fd, (const struct sockaddr *)&a->ss, a->len);
	close(fd);
	if (r == 0) {
		snprintf(err, errlen, "another process is already listening on '%s'", a->path);
		errno = EADDRINUSE;
		return -1;
	}
	if (unlink(a->path) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

/*
 * The socket's own directory (/run/fpmd after a reboot empties /run) is made,
 * as systemd's RuntimeDirectory= would; one level only, so a typo in a parent
 * is reported with the directory that is missing rather than built.
 */
static int unix_dir_ensure(const struct listen_addr *a, char *err, size_t errlen)
{
	char dir[sizeof(a->path)];
	snprintf(dir, sizeof(dir), "%s", a->path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	struct stat st;
	if (stat(dir, &st) == 0 || errno != ENOENT)
		return 0;               /* there, or bind() will say what is wrong with it */
	if (mkdir(dir, 0755) == 0) {
		/* mkdir's mode went through the umask; the web server must reach the socket */
		if (chmod(dir, 0755) < 0) {
			snprintf(err, errlen, "failed to chmod() the socket directory '%s': %s", dir,
				 strerror(errno));
			return -1;
		}
		log_notice("created the socket directory '%s'", dir);
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	int e = errno;
	if (e == ENOENT) {
		char *up = strrchr(dir, '/');
		if (up && up != dir)
			*up = '\0';
		/* php-fpm's words first, which scripts match; then the directory to create */
		snprintf(err, errlen, "unable to bind listening socket for address '%s': %s (%d): "
			 "the directory '%s' does not exist (fpmd creates the socket's own directory, "
			 "not its parents)", a->spec[0] ? a->spec : a->path, strerror(e), e, dir);
	} else {
		snprintf(err, errlen, "unable to bind listening socket for address '%s': cannot "
			 "create its directory '%s': %s (%d)", a->spec[0] ? a->spec : a->path, dir,
			 strerror(e), e);
	}
	errno = e;
	return -1;
}

/* A bare port on a host where [::] cannot be had: every IPv4 address instead. */
static void bare_port_to_ipv4(struct listen_addr *a)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
	unsigned port = ntohs(s6->sin6_port);
	struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
	memset(&a->ss, 0, sizeof(a->ss));
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	s4->sin_addr.s_addr = htonl(INADDR_ANY);
	a->family = AF_INET;
	a->len = sizeof(*s4);
	snprintf(a->text, sizeof(a->text), "0.0.0.0:%u", port);
}

int listen_path_pin(const char *path, char *proc)
{
	int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		close(fd);
		errno = ENOTSOCK;
		return -1;
	}
	snprintf(proc, LISTEN_PROC_PATH_MAX, "/proc/self/fd/%d", fd);
	return fd;
}

int listen_path_apply(const char *path, const struct listen_perms *perms, char *err, size_t errlen)
{
	char proc[LISTEN_PROC_PATH_MAX];
	int pin = listen_path_pin(path, proc);
	if (pin < 0) {
		snprintf(err, errlen, "'%s' is not the pool's socket any more (%s): its owner and "
			 "mode were left alone", path, errno == ENOTSOCK ? "not a socket" :
			 strerror(errno));
		return -1;
	}
	int rc = 0;
	if ((perms->owner != (uid_t)-1 || perms->group != (gid_t)-1) &&
	    chown(proc, perms->owner, perms->group) < 0) {
		snprintf(err, errlen, "failed to chown() the socket '%s': %s", path, strerror(errno));
		rc = -1;
	} else if (chmod(proc, (mode_t)(perms->mode >= 0 ? perms->mode : 0660)) < 0) {
		snprintf(err, errlen, "failed to chmod() the socket '%s': %s", path, strerror(errno));
		rc = -1;
	}
	int e = errno;
	close(pin);
	errno = e;
	return rc;
}

int listen_open(struct listen_addr *a, int backlog, const struct listen_perms *perms,
		char *err, size_t errlen)
{
	int fd = -1, one = 1, e;
	snprintf(err, errlen, "%s", "");
	if (a->family == AF_UNIX &&
	    (unix_dir_ensure(a, err, errlen) < 0 || unix_path_free(a, err, errlen) < 0))
		goto fail;
	fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 && a->any && errno == EAFNOSUPPORT) {
		/* No IPv6 on this host: the bare port means every IPv4 address. */
		bare_port_to_ipv4(a);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	}
	if (fd < 0) {
		snprintf(err, errlen, "socket() failed: %s", strerror(errno));
		goto fail;
	}
	if (a->family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->family == AF_INET6) {
		int v6only = a->any ? 0 : 1;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
	}

	/* The socket file is created with no access at all and opened up by
	 * chmod below, so no client can connect through a too-wide mode. */
	mode_t old = 0;
	if (a->family == AF_UNIX)
		old = umask(0777);
	int r = bind(fd, (const struct sockaddr *)&a->ss, a->len);
	if (r < 0 && a->any && a->family == AF_INET6) {
		/* [::] is taken or refused: IPv4 alone may still be had (php-fpm's fallback) */
		log_notice("Failed implicitly binding to ::, retrying with 0.0.0.0");
		close(fd);
		bare_port_to_ipv4(a);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			snprintf(err, errlen, "socket() failed: %s", strerror(errno));
			goto fail;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		r = bind(fd, (const struct sockaddr *)&a->ss, a->len);
	}
	if (a->family == AF_UNIX)
		umask(old);
	if (r < 0) {
		/* php-fpm's words, which scripts match; the address as configured */
		snprintf(err, errlen, "unable to bind listening socket for address '%s': %s (%d)",
			 a->spec[0] ? a->spec : a->text, strerror(errno), errno);
		goto fail;
	}
	if (a->family == AF_UNIX && perms && listen_path_apply(a->path, perms, err, errlen) < 0)
		goto fail_unlink;
	if (listen(fd, backlog < 0 ? listen_somaxconn() : backlog) < 0) {
		snprintf(err, errlen, "listen() for address '%s' failed: %s", a->text, strerror(errno));
		goto fail_unlink;
	}
	return fd;

fail_unlink:
	e = errno;
	if (a->family == AF_UNIX)
		unlink(a->path);
	errno = e;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	if (!err[0])
		snprintf(err, errlen, "%s: %s", a->text, strerror(e));
	errno = e;
	return -1;
}

int allowed_clients_parse(const char *list, struct allowed_clients *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!list || !*list)
		return 0;
	char *copy = strdup(list);
	if (!copy)
		return -1;
	size_t cap = 1;
	for (const char *p = list; *p; p++)
		cap += (*p == ',');
	out->addrs = calloc(cap, sizeof(*out->addrs));
	if (!out->addrs) {
		free(copy);
		return -1;
	}
	char *save = NULL;
	for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		struct sockaddr_storage *ss = &out->addrs[out->n];
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		if (strcmp(tok, "any") == 0) {
			allowed_clients_free(out);
			free(copy);
			return 0;
		}
		if (inet_pton(AF_INET, tok, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
		} else if (inet_pton(AF_INET6, tok, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
		} else {
			snprintf(err, errlen, "wrong IP address '%s' in listen.allowed_clients", tok);
			allowed_clients_free(out);
			free(copy);
			errno = EINVAL;
			return -1;
		}
		out->n++;
	}
	free(copy);
	return 0;
}

int allowed_clients_match(const struct allowed_clients *ac, const struct sockaddr *sa)
{
	if (!ac || ac->n == 0 || sa->sa_family == AF_UNIX)
		return 1;
	struct in_addr v4;
	int is_v4 = 0;
	if (sa->sa_family == AF_INET) {
		v4 = ((const struct sockaddr_in *)sa)->sin_addr;
		is_v4 = 1;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(&v4, &a6->s6_addr[12], 4);
			is_v4 = 1;
		}
	}
	for (size_t i = 0; i < ac->n; i++) {
		const struct sockaddr_storage *ss = &ac->addrs[i];
		if (ss->ss_family == AF_INET && is_v4 &&
		    ((const struct sockaddr_in *)ss)->sin_addr.s_addr == v4.s_addr)
			return 1;
		if (ss->ss_family == AF_INET6 && sa->sa_family == AF_INET6 &&
		    memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr,
			   &((const struct sockaddr_in6 *)sa)->sin6_addr, 16) == 0)
			return 1;
	}
	return 0;
}

void allowed_clients_free(struct allowed_clients *ac)
{
	free(ac->addrs);
	ac->addrs = NULL;
	ac->n = 0;
}

void sockaddr_text(const struct sockaddr *sa, char *buf, size_t cap)
{
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)cap);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)cap);
	else
		snprintf(buf, cap, "unix");
}
