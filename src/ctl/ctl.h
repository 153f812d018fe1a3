/*
 * fpmctl: the command-line client.  Each subcommand lives in its own file
 * (ctl_request.c ...) and is reached through the table in fpmctl.c; shared
 * socket code is in ctl_net.c.  No subcommand calls exit(): each returns
 * one of the codes below to main.
 */
#ifndef FPMD_CTL_H
#define FPMD_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#ifndef FPMD_VERSION
#define FPMD_VERSION "0.1.0"
#endif

/* Exit codes, documented in `fpmctl --help` and docs/fpmctl.md. */
enum ctl_exit {
	CTL_OK       = 0,
	CTL_EFAIL    = 1,  /* anything else: out of memory, cannot write output */
	CTL_EUSAGE   = 2,
	CTL_ECONNECT = 3,
	CTL_ETIMEOUT = 4,
	CTL_EPROTO   = 5,
	CTL_EHTTP    = 6,  /* --fail and an HTTP status >= 400 */
};

#define CTL_DEFAULT_SOCKET "unix:/run/fpmd/www.sock"
/* contrib/fpmd.conf's control_socket: reload, quit ... without -c or -g. */
#define CTL_DEFAULT_CONTROL "/run/fpmd.ctl"

/* Where to connect: a unix path or a TCP host and port. */
struct ctl_addr {
	int  is_unix;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char host[256];
	char port[16];
	char text[320];   /* "unix:PATH" or "tcp:HOST:PORT", for messages */
};

/*
 * Parses unix:PATH, tcp:HOST:PORT ([v6]:PORT too), a bare PATH (has a '/'
 * or no ':'), or a bare HOST:PORT.  Returns 0, or -1 when malformed.
 */
int ctl_addr_parse(const char *spec, struct ctl_addr *a);

/* Monotonic clock in milliseconds: deadlines are absolute values of it. */
int64_t ctl_now_ms(void);

/*
 * Connects without blocking past the deadline.  Returns a non-blocking,
 * close-on-exec socket, or -1 with the reason in err and errno set
 * (ETIMEDOUT when time ran out).
 */
int ctl_connect(const struct ctl_addr *a, int64_t deadline, char *err, size_t errlen);

/* Writes all of buf to a blocking fd (stdout, stderr); 0 or -1. */
int ctl_write_all(int fd, const void *buf, size_t len);

/* CGI params to send, in order; names unique (a second set replaces). */
struct ctl_param {
	char *name;
	char *value;
};

struct ctl_params {
	struct ctl_param *v;
	size_t n;
};

/* Adds name (nl bytes) = value, or replaces its value; 0 or -1 (ENOMEM). */
int ctl_params_set(struct ctl_params *ps, const char *name, size_t nl, const char *value);
void ctl_params_free(struct ctl_params *ps);

/*
 * The bytes of a whole request: BEGIN_REQUEST (RESPONDER, no keep-alive),
 * PARAMS and STDIN streams with their empty terminators.  Returns a malloc'd
 * buffer (length in *len), or NULL when out of memory.
 */
uint8_t *ctl_fcgi_encode(const struct ctl_params *ps, uint16_t request_id,
			 const void *body, size_t body_len, size_t *len);

/*
 * The CGI response in a FastCGI STDOUT stream (RFC 3875 §6): header lines up
 * to an empty line, then the body.  Headers are held back until complete so
 * that the Status: line is known; -i prints them as received, otherwise only
 * the body reaches stdout.
 */
#define CTL_CGI_HMAX 65536

struct ctl_cgi {
	int    include;        /* print the headers too */
	int    in_headers;
	int    status;         /* from Status:, else 200 */
	size_t hlen;
	size_t out;            /* bytes written to stdout */
	char   last;           /* the last of them */
	char   hbuf[CTL_CGI_HMAX];
};

void ctl_cgi_init(struct ctl_cgi *c, int include);
/* Passes STDOUT content on to fd 1; 0, or -1 when writing fails. */
int ctl_cgi_feed(struct ctl_cgi *c, const uint8_t *d, size_t n);
/* End of the response: prints headers that never ended, as they are. */
int ctl_cgi_finish(struct ctl_cgi *c);

int ctl_request_main(int argc, char **argv);
/*
 * `fpmctl request` under another command's name (ping, status): messages say
 * "fpmctl NAME:"; hint follows an HTTP status >= 400; newline ends a body that
 * has none, so a shell prompt or an error does not run into it.
 */
int ctl_request_as(int argc, char **argv, const char *name, const char *hint, int newline);
/* reload, reopen, quit, stop, pools: to the master (ctl_control.c). */
int ctl_master_main(int argc, char **argv);
/* ping, status: request shortcuts on ping.path and pm.status_path. */
int ctl_shortcut_main(int argc, char **argv);
/* top: a live view of a pool (ctl_top.c). */
int ctl_top_main(int argc, char **argv);
void ctl_request_usage(void);

#endif
