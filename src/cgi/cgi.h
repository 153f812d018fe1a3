/*
 * Pure helpers of the CGI gateway (RFC 3875): the script's response header
 * parser and the environment filter.  No I/O; unit-tested and fuzzed.
 */
#ifndef FPMD_CGI_H
#define FPMD_CGI_H

#include <stddef.h>

#define CGI_HEADERS_MAX (64u * 1024u)

/*
 * Incremental parser of a CGI response's header section (RFC 3875 §6.2).
 * Owns a fixed buffer; nothing is allocated.
 */
struct cgi_headers {
	char buf[CGI_HEADERS_MAX];
	size_t len;
	int done;
	int status;          /* from Status:, or 302 for a bare Location, else 200 */
	int has_status;
	int has_location;
	int has_content_type;
	const char *error;   /* why the header was refused */
};

void cgi_headers_init(struct cgi_headers *h);

/*
 * Feeds script output.  Returns 1 when the header section is complete
 * (*consumed bytes of data belong to it; the rest is body), 0 when more is
 * needed (all consumed), -1 when it is malformed or too large (h->error).
 */
int cgi_headers_feed(struct cgi_headers *h, const char *data, size_t len, size_t *consumed);

/*
 * Writes the header block to send on (CRLF line ends, blank line included),
 * adding "Status: 302 Found" for a local redirect without a status.
 * Returns its length, or 0 if cap is too small.
 */
size_t cgi_headers_output(const struct cgi_headers *h, char *out, size_t cap);

/*
 * May a request parameter of this name be passed to a script's environment?
 * An allowlist (cgi_env.c): RFC 3875's meta-variables and what web servers
 * commonly add, HTTP_* (never HTTP_PROXY: httpoxy), and the names the pool's
 * cgi.pass_params lists ("NAME", or "PREFIX*").  Everything else is dropped:
 * a denylist of loader, shell, interpreter and tool switches (LD_*,
 * GIT_CONFIG_*, OPENSSL_CONF, JAVA_TOOL_OPTIONS ...) can never be complete.
 */
int cgi_env_allowed(const char *name, const char *const *extra, size_t nextra);

/* Does name end with one of the extensions (space-separated list)? Empty list = yes. */
int cgi_extension_allowed(const char *path, const char *const *exts, size_t n);

#endif
