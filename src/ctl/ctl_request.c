/*
 * `fpmctl request`: sends one FastCGI request the way a web server would
 * and prints the response.  In the order data flows: options, CGI params
 * (RFC 3875 §4.1), encoding (ctl_fcgi.c), then one poll loop that writes
 * the request and reads the response until END_REQUEST or the deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "fcgi/fcgi.h"

#define REQ_ID 1

/* Everything one request needs; freed by req_free(). */
struct req {
	struct ctl_addr addr;
	const char *method;
	char   *body;
	size_t  body_len;
	int     has_body;
	const char *root;
	const char *uri;
	double  timeout;
	int     include, fail, verbose;
	char  **overrides;          /* -p NAME=VALUE, in order */
	size_t  noverrides;
	struct ctl_params params;
};

void ctl_request_usage(void)
{
	printf("usage: fpmctl request [-s SOCKET] [-X METHOD] [-d DATA | -d @FILE]\n"
	       "                      [-p NAME=VALUE]... [--root DIR] [--timeout SECONDS]\n"
	       "                      [-i] [--fail] [-v] URI\n"
	       "\n"
	       "Sends one FastCGI request and prints the response body on stdout and the\n"
	       "application's FCGI_STDERR on stderr.\n"
	       "\n"
	       "  -s, --socket SOCKET   unix:PATH, tcp:HOST:PORT, PATH or HOST:PORT\n"
	       "                        (default %s)\n"
	       "  -X, --method METHOD   request method (default GET, or POST with -d)\n"
	       "  -d, --data DATA       request body; @FILE reads it from FILE, @- from stdin\n"
	       "  -p, --param N=V       add or override a CGI param (repeatable)\n"
	       "      --root DIR        document root for SCRIPT_FILENAME (default: cwd)\n"
	       "      --timeout SECS    for connect and the whole response (default 30)\n"
	       "  -i, --include         print the response headers too, as received\n"
	       "      --fail            exit 6 when the Status: header is 400 or more\n"
	       "  -v, --verbose         show params and record details on stderr\n"
	       "\n"
	       "Exit status: 0 success, 1 other error, 2 usage error, 3 cannot connect,\n"
	       "4 timeout, 5 protocol error (malformed response, connection closed before\n"
	       "END_REQUEST, request not completed), 6 --fail and HTTP status >= 400.\n",
	       CTL_DEFAULT_SOCKET);
}

static void req_free(struct req *r)
{
	ctl_params_free(&r->params);
	free(r->overrides);
	free(r->body);
}

/* The command the user typed: request, or the ping/status shortcut built on it. */
static const char *cmd_name = "request";
static const char *status_hint = "";
static int end_newline;

static int usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "fpmctl %s: %s%s%s\n", cmd_name, msg, arg ? ": " : "", arg ? arg : "");
	fprintf(stderr, "Try 'fpmctl %s --help'.\n", cmd_name);
	return CTL_EUSAGE;
}

/* ---- options ------------------------------------------------------------ */

/* -d @FILE (or @- for stdin): the whole file becomes the body. */
static int read_body(struct req *r, const char *arg)
{
	int fd = strcmp(arg, "-") == 0 ? 0 : open(arg, O_RDONLY | O_CLOEXEC);
	size_t cap = 65536;
	ssize_t n;

	if (fd < 0)
		return -1;
	r->body = malloc(cap);
	while (r->body) {
		if (r->body_len == cap) {
			char *nb = realloc(r->body, cap * 2);

			if (!nb)
				break;
			r->body = nb;
			cap *= 2;
		}
		n = read(fd, r->body + r->body_len, cap - r->body_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (fd)
				close(fd);
			return n < 0 ? -1 : 0;
		}
		r->body_len += (size_t)n;
	}
	if (fd)
		close(fd);
	errno = ENOMEM;
	return -1;
}

static int set_data(struct req *r, const char *arg)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
	r->has_body = 1;
	if (arg[0] == '@') {
		if (read_body(r, arg + 1) < 0) {
			fprintf(stderr, "fpmctl %s: cannot read %s: %s\n", cmd_name, arg + 1,
				strerror(errno));
			return CTL_EUSAGE;
		}
		return 0;
	}
	r->body_len = strlen(arg);
	r->body = strdup(arg);
	return r->body ? 0 : CTL_EFAIL;
}

static int parse_timeout(struct req *r, const char *arg)
{
	char *end;

	errno = 0;
	r->timeout = strtod(arg, &end);
	if (errno || end == arg || *end || !isfinite(r->timeout) || r->timeout <= 0 ||
	    r->timeout > 86400.0 * 365)
		return usage_error("bad --timeout", arg);
	return 0;
}

/* Returns 0 to go on, or an exit code (CTL_OK after --help). */
static int parse_args(int argc, char **argv, struct req *r)
{
	static const struct option longopts[] = {
		{ "socket",  required_argument, NULL, 's' },
		{ "method",  required_argument, NULL, 'X' },
		{ "data",    required_argument, NULL, 'd' },
		{ "param",   required_argument, NULL, 'p' },
		{ "root",    required_argument, NULL, 'R' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "include", no_argument,       NULL, 'i' },
		{ "fail",    no_argument,       NULL, 'f' },
		{ "verbose", no_argument,       NULL, 'v' },
		{ "help",    no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = CTL_DEFAULT_SOCKET;
	int c, rc;

	r->timeout = 30;
	r->overrides = calloc((size_t)argc + 1, sizeof(*r->overrides));
	if (!r->overrides)
		return CTL_EFAIL;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":s:X:d:p:ivh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': sock = optarg; break;
		case 'X': r->method = optarg; break;
		case 'R': r->root = optarg; break;
		case 'i': r->include = 1; break;
		case 'f': r->fail = 1; break;
		case 'v': r->verbose = 1; break;
		case 'h': ctl_request_usage(); return CTL_OK;
		case 'd':
			if ((rc = set_data(r, optarg)) != 0)
				return rc;
			break;
		case 'p':
			if (!strchr(optarg, '=') || optarg[0] == '=')
				return usage_error("-p wants NAME=VALUE", optarg);
			r->overrides[r->noverrides++] = optarg;
			break;
		case 'T':
			if ((rc = parse_timeout(r, optarg)) != 0)
				return rc;
			break;
		case ':':
			return usage_error("option needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return usage_error(optind == argc ? "missing URI" : "more than one URI", NULL);
	r->uri = argv[optind];
	if (ctl_addr_parse(sock, &r->addr) < 0)
		return usage_error("bad socket address", sock);
	if (!r->method)
		r->method = r->has_body ? "POST" : "GET";
	return 0;
}

/* ---- params ------------------------------------------------------------- */

static int set(struct req *r, const char *name, const char *value)
{
	return ctl_params_set(&r->params, name, strlen(name), value);
}

/*
 * The CGI meta-variables a web server would send for this URI (RFC 3875
 * §4.1), then the -p overrides in order.  fd is the connected socket: over
 * TCP, REMOTE_PORT is our real local port.
 */
static int build_params(struct req *r, int fd)
{
	char root[4096], cwd[4096], *uri, *q, num[32];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const char *script;
	int rc = 0;
	size_t i;

	if (!r->root && !getcwd(cwd, sizeof(cwd)))
		return -1;
	snprintf(root, sizeof(root), "%s", r->root ? r->root : cwd);
	for (i = strlen(root); i > 1 && root[i - 1] == '/'; i--)
		root[i - 1] = '\0';
	if (asprintf(&uri, "%s%s", r->uri[0] == '/' ? "" : "/", r->uri) < 0)
		return -1;
	if ((q = strchr(uri, '#')))
		*q = '\0';
	q = strchr(uri, '?');
	rc |= set(r, "REQUEST_URI", uri);
	if (q)
		*q++ = '\0';
	script = uri;
	rc |= set(r, "GATEWAY_INTERFACE", "CGI/1.1");
	rc |= set(r, "SERVER_SOFTWARE", "fpmctl/" FPMD_VERSION);
	rc |= set(r, "SERVER_PROTOCOL", "HTTP/1.1");
	rc |= set(r, "REQUEST_SCHEME", "http");
	rc |= set(r, "REQUEST_METHOD", r->method);
	rc |= set(r, "SCRIPT_NAME", script);
	rc |= set(r, "DOCUMENT_URI", script);
	rc |= set(r, "QUERY_STRING", q ? q : "");
	rc |= set(r, "DOCUMENT_ROOT", root);
	{
		char *sf;

		if (asprintf(&sf, "%s%s", strcmp(root, "/") == 0 ? "" : root, script) < 0) {
			free(uri);
			return -1;
		}
		rc |= set(r, "SCRIPT_FILENAME", sf);
		free(sf);
	}
	free(uri);
	snprintf(num, sizeof(num), "%zu", r->body_len);
	rc |= set(r, "CONTENT_LENGTH", num);
	if (r->has_body)
		rc |= set(r, "CONTENT_TYPE", "application/x-www-form-urlencoded");
	strcpy(num, "0");
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET)
		snprintf(num, sizeof(num), "%u", ntohs(((struct sockaddr_in *)&ss)->sin_port));
	else if (ss.ss_family == AF_INET6)
		snprintf(num, sizeof(num), "%u", ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	rc |= set(r, "REMOTE_ADDR", "127.0.0.1");
	rc |= set(r, "REMOTE_PORT", num);
	rc |= set(r, "SERVER_ADDR", "127.0.0.1");
	rc |= set(r, "SERVER_PORT", "80");
	rc |= set(r, "SERVER_NAME", "localhost");
	rc |= set(r, "HTTP_HOST", "localhost");
	for (i = 0; i < r->noverrides; i++) {
		const char *o = r->overrides[i], *eq = strchr(o, '=');

		rc |= ctl_params_set(&r->params, o, (size_t)(eq - o), eq + 1);
	}
	return rc ? -1 : 0;
}

/* ---- the exchange ------------------------------------------------------- */

struct resp {
	struct ctl_cgi cgi;
	struct fcgi_resp_reader rd;
	int ended;
	uint32_t app_status;
	uint8_t protocol_status;
	char err_last;          /* the application's last FCGI_STDERR byte, 0 if none */
};

static int proto_error(const char *what, const char *detail)
{
	fprintf(stderr, "fpmctl: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	return CTL_EPROTO;
}

/* Feeds what was read to the reader; returns 0 or an exit code. */
static int on_bytes(const struct req *r, struct resp *s, const uint8_t *buf, size_t len)
{
	while (len > 0 && !s->ended) {
		struct fcgi_resp_event ev;
		ssize_t n = fcgi_resp_reader_feed(&s->rd, buf, len, &ev);

		if (n < 0)
			return proto_error("malformed response", fcgi_strerror(s->rd.error));
		buf += n;
		len -= (size_t)n;
		if (ev.kind == FCGI_RESP_NONE)
			continue;
		if (ev.kind == FCGI_RESP_OTHER) {
			if (r->verbose)
				fprintf(stderr, "< record type %u ignored\n", ev.other_type);
			continue;
		}
		if (ev.request_id != REQ_ID)
			return proto_error("response for another request id", NULL);
		if (ev.kind == FCGI_RESP_STDOUT && ctl_cgi_feed(&s->cgi, ev.data, ev.len) < 0) {
			fprintf(stderr, "fpmctl: cannot write output: %s\n", strerror(errno));
			return CTL_EFAIL;
		}
		if (ev.kind == FCGI_RESP_STDERR && ev.len) {
			ctl_write_all(2, ev.data, ev.len);
			s->err_last = ((const char *)ev.data)[ev.len - 1];
		}
		if (ev.kind == FCGI_RESP_END) {
			s->ended = 1;
			s->app_status = ev.app_status;
			s->protocol_status = ev.protocol_status;
		}
	}
	return 0;
}

/*
 * Writes the request and reads the response in one loop, so that an
 * application answering before it read the whole body cannot deadlock us.
 */
static int exchange(const struct req *r, struct resp *s, int fd, const uint8_t *out,
		    size_t out_len, int64_t deadline)
{
	static uint8_t buf[65536];
	size_t off = 0;
	int rc;

	while (!s->ended) {
		struct pollfd pfd = { fd, POLLIN | (off < out_len ? POLLOUT : 0), 0 };
		int64_t left = deadline - ctl_now_ms();
		ssize_t n;

		if (left <= 0)
			return CTL_ETIMEOUT;
		n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (n == 0)
			continue;   /* the deadline check above ends it */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return proto_error("poll", strerror(errno));
		}
		if (pfd.revents & POLLOUT) {
			n = send(fd, out + off, out_len - off, MSG_NOSIGNAL);
			if (n > 0)
				off += (size_t)n;
			else if (errno != EAGAIN && errno != EINTR)
				off = out_len;   /* peer gone: reading will say how */
		}
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return proto_error("connection closed before END_REQUEST",
					   n < 0 ? strerror(errno) : NULL);
		if ((rc = on_bytes(r, s, buf, (size_t)n)) != 0)
			return rc;
	}
	return CTL_OK;
}

/* Builds the request, runs the exchange, and turns its outcome into an exit code. */
static int run(struct req *r, int fd, int64_t deadline)
{
	static struct resp s;
	uint8_t *out;
	size_t out_len = 0, i;
	int rc;

	if (build_params(r, fd) < 0 ||
	    !(out = ctl_fcgi_encode(&r->params, REQ_ID, r->body, r->body_len, &out_len))) {
		fprintf(stderr, "fpmctl: out of memory\n");
		return CTL_EFAIL;
	}
	if (r->verbose) {
		for (i = 0; i < r->params.n; i++)
			fprintf(stderr, "> %s=%s\n", r->params.v[i].name, r->params.v[i].value);
		fprintf(stderr, "> %zu body bytes, %zu bytes in all\n", r->body_len, out_len);
	}
	ctl_cgi_init(&s.cgi, r->include);
	s.err_last = 0;
	fcgi_resp_reader_init(&s.rd);
	rc = exchange(r, &s, fd, out, out_len, deadline);
	free(out);
	if (rc == CTL_ETIMEOUT) {
		fprintf(stderr, "fpmctl: timed out after %gs waiting for %s\n", r->timeout,
			r->addr.text);
		return CTL_ETIMEOUT;
	}
	if (rc != CTL_OK)
		return rc;
	if (ctl_cgi_finish(&s.cgi) < 0) {
		fprintf(stderr, "fpmctl: cannot write output: %s\n", strerror(errno));
		return CTL_EFAIL;
	}
	if (r->verbose)
		fprintf(stderr, "< END_REQUEST app_status=%u protocol_status=%u status=%d\n",
			s.app_status, s.protocol_status, s.cgi.status);
	if (s.protocol_status != FCGI_REQUEST_COMPLETE) {
		fprintf(stderr, "fpmctl: request not completed: protocol status %u\n",
			s.protocol_status);
		return CTL_EPROTO;
	}
	int failed = r->fail && s.cgi.status >= 400;
	/* A body without its last newline would run into the prompt, or into the error below. */
	if (s.cgi.out && s.cgi.last != '\n' && (end_newline || failed) &&
	    ctl_write_all(1, "\n", 1) < 0) {
		fprintf(stderr, "fpmctl: cannot write output: %s\n", strerror(errno));
		return CTL_EFAIL;
	}
	if (failed) {
		/* php's "Primary script unknown" has no newline: ours starts on a line of its own */
		if (s.err_last && s.err_last != '\n')
			fputc('\n', stderr);
		fprintf(stderr, "fpmctl %s: HTTP status %d%s\n", cmd_name, s.cgi.status,
			s.cgi.status == 404 ? status_hint : "");
		return CTL_EHTTP;
	}
	return CTL_OK;
}

int ctl_request_as(int argc, char **argv, const char *name, const char *hint, int newline)
{
	cmd_name = name;
	status_hint = hint ? hint : "";
	end_newline = newline;
	return ctl_request_main(argc, argv);
}

int ctl_request_main(int argc, char **argv)
{
	struct req r;
	char err[256];
	int64_t deadline;
	int fd, rc;

	memset(&r, 0, sizeof(r));
	rc = parse_args(argc, argv, &r);
	if (rc != 0 || !r.uri) {
		req_free(&r);
		return rc;
	}
	deadline = ctl_now_ms() + (int64_t)(r.timeout * 1000);
	fd = ctl_connect(&r.addr, deadline, err, sizeof(err));
	if (fd < 0) {
		rc = errno == ETIMEDOUT ? CTL_ETIMEOUT : CTL_ECONNECT;
		fprintf(stderr, "fpmctl: cannot connect to %s: %s\n", r.addr.text, err);
	} else {
		if (r.verbose)
			fprintf(stderr, "* connected to %s\n", r.addr.text);
		rc = run(&r, fd, deadline);
		close(fd);
	}
	req_free(&r);
	return rc;
}
