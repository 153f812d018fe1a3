/*
 * Unit tests for src/cgi/: the CGI response header parser (RFC 3875 §6.2),
 * its output block, the environment filter and the extension check.
 * Every header input is also fed one byte at a time and in every two-chunk
 * split: the outcome must not depend on how the script's writes were cut.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cgi/cgi.h"

/* The output block can be longer than the section: LF line ends become CRLF. */
#define OUT_CAP (2 * CGI_HEADERS_MAX + 64)

/* What one parse came to: compared between feeding patterns. */
struct outcome {
	int rc;
	size_t consumed;        /* bytes of the input that belong to the header section */
	int status, has_status, has_location, has_content_type;
	const char *error;
	char *out;              /* cgi_headers_output, when rc == 1 */
	size_t out_len;
};

static struct cgi_headers *hdr_new(void)
{
	struct cgi_headers *h = malloc(sizeof(*h));

	assert_non_null(h);
	cgi_headers_init(h);
	return h;
}

/*
 * Feeds in[0..len) cut at the offsets in cuts[0..ncuts) (ascending), stopping
 * at the first non-zero result, as the worker does.
 */
static void parse_cut(const char *in, size_t len, const size_t *cuts, size_t ncuts,
		      struct outcome *o)
{
	struct cgi_headers *h = hdr_new();
	size_t off = 0;

	memset(o, 0, sizeof(*o));
	o->consumed = len;
	for (size_t k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : len;
		size_t used = 12345;
		int rc;

		if (end < off)
			end = off;
		rc = cgi_headers_feed(h, in + off, end - off, &used);
		if (rc == 0) {
			assert_int_equal(used, end - off);
			off = end;
			continue;
		}
		if (rc == 1)
			assert_true(used <= end - off);
		o->rc = rc;
		o->consumed = rc == 1 ? off + used : 0;   /* meaningless on -1 */
		break;
	}
	o->status = h->status;
	o->has_status = h->has_status;
	o->has_location = h->has_location;
	o->has_content_type = h->has_content_type;
	o->error = h->error;
	if (o->rc == 1) {
		o->out = malloc(OUT_CAP);
		assert_non_null(o->out);
		o->out_len = cgi_headers_output(h, o->out, OUT_CAP);
		assert_true(o->out_len >= 2);
	}
	free(h);
}

static void parse_once(const char *in, size_t len, struct outcome *o)
{
	parse_cut(in, len, NULL, 0, o);
}

static void outcome_free(struct outcome *o)
{
	free(o->out);
	o->out = NULL;
}

static void assert_same(const struct outcome *a, const struct outcome *b)
{
	assert_int_equal(a->rc, b->rc);
	assert_int_equal(a->consumed, b->consumed);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->has_status, b->has_status);
	assert_int_equal(a->has_location, b->has_location);
	assert_int_equal(a->has_content_type, b->has_content_type);
	assert_ptr_equal(a->error, b->error);
	assert_int_equal(a->out_len, b->out_len);
	if (a->out_len)
		assert_memory_equal(a->out, b->out, a->out_len);
}

/* One call, one byte per call, and every split into two calls: all the same. */
static void assert_split_invariant(const char *in, size_t len)
{
	struct outcome whole, part;
	size_t *cuts = malloc((len + 1) * sizeof(*cuts));

	assert_non_null(cuts);
	parse_once(in, len, &whole);
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	parse_cut(in, len, cuts, len, &part);
	assert_same(&whole, &part);
	outcome_free(&part);
	for (size_t cut = 0; cut <= len; cut++) {
		parse_cut(in, len, &cut, 1, &part);
		assert_same(&whole, &part);
		outcome_free(&part);
	}
	outcome_free(&whole);
	free(cuts);
}

/* Parses a C string; expects success and returns the output block. */
static void expect_ok(const char *in, size_t body_len, int status, const char *out)
{
	struct outcome o;
	size_t len = strlen(in);

	parse_once(in, len, &o);
	assert_int_equal(o.rc, 1);
	assert_null(o.error);
	assert_int_equal(o.consumed, len - body_len);
	assert_int_equal(o.status, status);
	if (out) {
		assert_int_equal(o.out_len, strlen(out));
		assert_memory_equal(o.out, out, o.out_len);
	}
	outcome_free(&o);
	assert_split_invariant(in, len);
}

static void expect_bad(const char *in, size_t len)
{
	struct outcome o;

	parse_once(in, len, &o);
	assert_int_equal(o.rc, -1);
	assert_non_null(o.error);
	assert_true(strlen(o.error) > 0);
	outcome_free(&o);
	assert_split_invariant(in, len);
}

/* ---- line endings and splitting ------------------------------------------ */

static void test_lf_endings(void **state)
{
	(void)state;
	expect_ok("Content-Type: text/html\nX-A: b\n\nBODY", 4, 200,
		  "Content-Type: text/html\r\nX-A: b\r\n\r\n");
}

/* A non-parsed-header script's status line is its Status (RFC 3875 §5), first line only. */
static void test_nph_status_line(void **state)
{
	(void)state;
	expect_ok("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno", 2, 404,
		  "Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\n");
	expect_ok("HTTP/1.0 200 OK\nX-A: b\n\n", 0, 200, "Status: 200 OK\r\nX-A: b\r\n\r\n");
	expect_ok("HTTP/1.1 204\n\n", 0, 204, "Status: 204\r\n\r\n");
	/* only first, and only a version and a code */
	expect_bad("X-A: b\nHTTP/1.1 404 Not Found\n\n", strlen("X-A: b\nHTTP/1.1 404 Not Found\n\n"));
	expect_bad("HTTP/1.1 abc\n\n", strlen("HTTP/1.1 abc\n\n"));
	expect_bad("HTTP/x 200\n\n", strlen("HTTP/x 200\n\n"));
}

static void test_crlf_endings(void **state)
{
	(void)state;
	expect_ok("Content-Type: text/html\r\nX-A: b\r\n\r\nBODY", 4, 200,
		  "Content-Type: text/html\r\nX-A: b\r\n\r\n");
}

static void test_mixed_endings(void **state)
{
	(void)state;
	expect_ok("Content-Type: text/plain\r\nX-A: b\n\r\n", 0, 200,
		  "Content-Type: text/plain\r\nX-A: b\r\n\r\n");
	expect_ok("Content-Type: text/plain\nX-A: b\r\n\n", 0, 200,
		  "Content-Type: text/plain\r\nX-A: b\r\n\r\n");
}

static void test_flags_and_values(void **state)
{
	struct outcome o;
	const char *in = "content-type:text/plain\nX-Tab: a\tb\nX-Empty:\n\n";

	(void)state;
	parse_once(in, strlen(in), &o);
	assert_int_equal(o.rc, 1);
	assert_int_equal(o.has_content_type, 1);
	assert_int_equal(o.has_status, 0);
	assert_int_equal(o.has_location, 0);
	assert_int_equal(o.status, 200);
	assert_int_equal(o.out_len, strlen("content-type:text/plain\r\nX-Tab: a\tb\r\nX-Empty:\r\n\r\n"));
	assert_memory_equal(o.out, "content-type:text/plain\r\nX-Tab: a\tb\r\nX-Empty:\r\n\r\n", o.out_len);
	outcome_free(&o);
	assert_split_invariant(in, strlen(in));
}

/* Bytes after the blank line are the body: never consumed, and fed again they stay body. */
static void test_body_not_consumed(void **state)
{
	struct cgi_headers *h = hdr_new();
	const char in[] = "Content-Type: text/plain\r\n\r\nline1\nX: y\n\n";
	size_t used = 0;

	(void)state;
	assert_int_equal(cgi_headers_feed(h, in, sizeof(in) - 1, &used), 1);
	assert_int_equal(used, strlen("Content-Type: text/plain\r\n\r\n"));
	/* Once done, further output is body: nothing more is taken. */
	assert_int_equal(cgi_headers_feed(h, "more: x\n\n", 9, &used), 1);
	assert_int_equal(used, 0);
	free(h);
	expect_ok(in, strlen("line1\nX: y\n\n"), 200, "Content-Type: text/plain\r\n\r\n");
}

/* A blank line first: a complete, empty section (the caller decides if that is enough). */
static void test_empty_section(void **state)
{
	(void)state;
	expect_ok("\nbody", 4, 200, "\r\n");
	expect_ok("\r\nbody", 4, 200, "\r\n");
}

static void test_incomplete_needs_more(void **state)
{
	struct cgi_headers *h = hdr_new();
	size_t used = 0;

	(void)state;
	assert_int_equal(cgi_headers_feed(h, "Content-Type: text/plain\r\n", 26, &used), 0);
	assert_int_equal(used, 26);
	assert_int_equal(cgi_headers_feed(h, "\r", 1, &used), 0);
	assert_int_equal(cgi_headers_feed(h, "", 0, &used), 0);
	assert_int_equal(used, 0);
	assert_int_equal(cgi_headers_feed(h, "\nB", 2, &used), 1);
	assert_int_equal(used, 1);
	free(h);
}

/* ---- Status and Location ------------------------------------------------- */

static void test_status_valid(void **state)
{
	(void)state;
	expect_ok("Status: 404 Not Found\n\n", 0, 404, "Status: 404 Not Found\r\n\r\n");
	expect_ok("Status: 201\r\n\r\n", 0, 201, "Status: 201\r\n\r\n");     /* no reason */
	expect_ok("Status: 503 \r\n\r\n", 0, 503, NULL);
	expect_ok("status:   500 Oops\n\n", 0, 500, NULL);
	expect_ok("STATUS:\t302 Moved\nLocation: http://x/\n\n", 0, 302,
		  "STATUS:\t302 Moved\r\nLocation: http://x/\r\n\r\n");
	expect_ok("Status: 100 Continue\n\n", 0, 100, NULL);
	expect_ok("Status: 599 Last\n\n", 0, 599, NULL);
}

static void test_status_invalid(void **state)
{
	static const char *const bad[] = {
		"Status: 99\n\n", "Status: 099 X\n\n", "Status: 600 X\n\n", "Status: 2000\n\n",
		"Status: 200OK\n\n", "Status: abc\n\n", "Status:\n\n", "Status: \n\n",
		"Status: 20x OK\n\n", "Status: -200\n\n", "Status: 2 0 0\n\n",
		"Status: 200\tOK\n\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad(bad[i], strlen(bad[i]));
}

static void test_status_has_flag(void **state)
{
	struct outcome o;

	(void)state;
	parse_once("Status: 418 Teapot\n\n", 20, &o);
	assert_int_equal(o.rc, 1);
	assert_int_equal(o.has_status, 1);
	assert_int_equal(o.status, 418);
	outcome_free(&o);
}

static void test_location_without_status(void **state)
{
	struct outcome o;
	const char *in = "Location: /elsewhere\r\n\r\n";

	(void)state;
	parse_once(in, strlen(in), &o);
	assert_int_equal(o.rc, 1);
	assert_int_equal(o.has_location, 1);
	assert_int_equal(o.has_status, 0);
	assert_int_equal(o.status, 302);
	outcome_free(&o);
	expect_ok(in, 0, 302, "Status: 302 Found\r\nLocation: /elsewhere\r\n\r\n");
	expect_ok("location: http://example.com/\nContent-Type: text/html\n\n<a>", 3, 302,
		  "Status: 302 Found\r\nlocation: http://example.com/\r\n"
		  "Content-Type: text/html\r\n\r\n");
}

static void test_location_with_status(void **state)
{
	(void)state;
	expect_ok("Location: /x\nStatus: 301 Moved Permanently\n\n", 0, 301,
		  "Location: /x\r\nStatus: 301 Moved Permanently\r\n\r\n");
	expect_ok("Status: 200 OK\nLocation: /x\n\n", 0, 200,
		  "Status: 200 OK\r\nLocation: /x\r\n\r\n");
}

/* Names that only start like a known header are not that header. */
static void test_header_name_exact(void **state)
{
	struct outcome o;
	const char *in = "Statusx: 999 no\nLocationX: /a\nContent-Types: x\n\n";

	(void)state;
	parse_once(in, strlen(in), &o);
	assert_int_equal(o.rc, 1);
	assert_int_equal(o.status, 200);
	assert_int_equal(o.has_status, 0);
	assert_int_equal(o.has_location, 0);
	assert_int_equal(o.has_content_type, 0);
	outcome_free(&o);
}

/* ---- malformed input ----------------------------------------------------- */

static void test_malformed_lines(void **state)
{
	static const char *const bad[] = {
		"NoColon\n\n",
		"Bad Name: x\n\n",
		": empty name\n\n",
		"Name : space before colon\n\n",
		" folded: x\n\n",
		"Content-Type: text/plain\n\tcontinued\n\n",
		"Na(me: x\n\n",
		"Na/me: x\n\n",
		"Content-Type: text/plain\nbroken\r\n\r\n",
		"X\r\n\r\n",
		"X-A: b\r\nHTTP/1.1 200 OK\r\n\r\n",   /* a status line is the first line or none */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad(bad[i], strlen(bad[i]));
}

static void test_control_chars_in_value(void **state)
{
	static const char *const bad[] = {
		"X: a\x01" "b\n\n",
		"X: a\rb\n\n",           /* a bare CR could end the line for someone */
		"X: a\r\r\n\r\n",
		"X: \x1b[31mred\n\n",
		"X: a\x1f\n\n",
		"Location: /a\rSet-Cookie: x=y\n\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad(bad[i], strlen(bad[i]));
	/* A NUL inside a value (the header is not a C string). */
	expect_bad("X: a\0b\n\n", 8);
	/* And one in a name. */
	expect_bad("X\0Y: b\n\n", 8);
}

static void test_error_after_valid_line(void **state)
{
	struct cgi_headers *h = hdr_new();
	const char in[] = "Content-Type: text/plain\nbad line\n\nbody";
	size_t used = 0;

	(void)state;
	assert_int_equal(cgi_headers_feed(h, in, sizeof(in) - 1, &used), -1);
	assert_non_null(h->error);
	free(h);
}

/* Builds a section of exactly total bytes (blank line included), lines of "X-Pad: aaa". */
static char *build_section(size_t total, const char *eol)
{
	size_t el = strlen(eol);
	char *s = malloc(total + 16);
	size_t o = 0;

	assert_non_null(s);
	while (total - o - el > 80 + el) {
		memcpy(s + o, "X-Pad: ", 7);
		memset(s + o + 7, 'a', 64 - 7);
		memcpy(s + o + 64, eol, el);
		o += 64 + el;
	}
	/* Last line takes what is left before the blank line. */
	size_t last = total - o - 2 * el;
	memcpy(s + o, "Y:", 2);
	memset(s + o + 2, 'b', last - 2);
	o += last;
	memcpy(s + o, eol, el);
	o += el;
	memcpy(s + o, eol, el);
	o += el;
	assert_int_equal(o, total);
	memcpy(s + o, "BODY", 4);
	return s;
}

static void test_oversized_section(void **state)
{
	struct outcome o;
	char *s;

	(void)state;
	/* 64 KiB and more of header lines, no blank line: refused. */
	s = build_section(CGI_HEADERS_MAX + 1000, "\r\n");
	s[CGI_HEADERS_MAX + 1000 - 2] = 'Z';    /* no blank line at the end */
	parse_once(s, CGI_HEADERS_MAX + 1000, &o);
	assert_int_equal(o.rc, -1);
	assert_non_null(o.error);
	assert_non_null(strstr(o.error, "64 KiB"));
	outcome_free(&o);
	free(s);

	/* Exactly CGI_HEADERS_MAX bytes including the blank line: refused. */
	s = build_section(CGI_HEADERS_MAX, "\r\n");
	parse_once(s, CGI_HEADERS_MAX + 4, &o);
	assert_int_equal(o.rc, -1);
	outcome_free(&o);
	free(s);

	/* One byte less fits, body untouched. */
	s = build_section(CGI_HEADERS_MAX - 1, "\r\n");
	parse_once(s, CGI_HEADERS_MAX - 1 + 4, &o);
	assert_int_equal(o.rc, 1);
	assert_int_equal(o.consumed, CGI_HEADERS_MAX - 1);
	assert_int_equal(o.out_len, CGI_HEADERS_MAX - 1);
	assert_memory_equal(o.out, s, o.out_len);
	outcome_free(&o);

	/* The same fed one byte at a time. */
	{
		size_t n = CGI_HEADERS_MAX - 1 + 4;
		size_t *cuts = malloc(n * sizeof(*cuts));
		struct outcome p;

		assert_non_null(cuts);
		for (size_t i = 0; i < n; i++)
			cuts[i] = i + 1;
		parse_cut(s, n, cuts, n, &p);
		assert_int_equal(p.rc, 1);
		assert_int_equal(p.consumed, CGI_HEADERS_MAX - 1);
		outcome_free(&p);
		free(cuts);
	}
	free(s);
}

/*
 * LF line ends become CRLF on output, so an accepted section must still fit
 * the worker's output block (CGI_HEADERS_MAX + 64 in handlers/cgi.c): many
 * short LF-terminated lines must be counted as their CRLF form.
 */
static void test_lf_section_output_bounded(void **state)
{
	char *s = malloc(CGI_HEADERS_MAX);
	char *out = malloc(OUT_CAP);
	struct cgi_headers *h = hdr_new();

	(void)state;
	assert_non_null(s);
	assert_non_null(out);
	for (int with_location = 0; with_location < 2; with_location++) {
		size_t used = 0, o = 0;
		int rc;

		cgi_headers_init(h);
		if (with_location) {
			memcpy(s, "Location: /x\n", 13);
			o = 13;
		}
		while (o + 3 < CGI_HEADERS_MAX - 1) {
			memcpy(s + o, "a:\n", 3);
			o += 3;
		}
		s[o++] = '\n';
		rc = cgi_headers_feed(h, s, o, &used);
		if (rc == 1) {
			size_t len = cgi_headers_output(h, out, OUT_CAP);

			assert_true(len > 0);
			assert_true(len <= CGI_HEADERS_MAX + 64);
		} else {
			assert_int_equal(rc, -1);
			assert_non_null(h->error);
		}
	}
	/* A short LF section is of course still accepted. */
	cgi_headers_init(h);
	{
		size_t used;

		assert_int_equal(cgi_headers_feed(h, "a:\n\n", 4, &used), 1);
	}
	free(h);
	free(out);
	free(s);
}

/* ---- output -------------------------------------------------------------- */

static void test_output_too_small(void **state)
{
	struct cgi_headers *h = hdr_new();
	const char in[] = "Content-Type: text/plain\nX: y\n\n";
	const char want[] = "Content-Type: text/plain\r\nX: y\r\n\r\n";
	char out[128];
	size_t used;

	(void)state;
	assert_int_equal(cgi_headers_feed(h, in, sizeof(in) - 1, &used), 1);
	for (size_t cap = 0; cap < sizeof(want) - 1; cap++) {
		memset(out, 'Q', sizeof(out));
		assert_int_equal(cgi_headers_output(h, out, cap), 0);
		for (size_t k = cap; k < sizeof(out); k++)
			assert_int_equal(out[k], 'Q');      /* nothing written past cap */
	}
	assert_int_equal(cgi_headers_output(h, out, sizeof(want) - 1), sizeof(want) - 1);
	assert_memory_equal(out, want, sizeof(want) - 1);

	/* With the added Status line. */
	cgi_headers_init(h);
	assert_int_equal(cgi_headers_feed(h, "Location: /a\n\n", 15, &used), 1);
	const char want302[] = "Status: 302 Found\r\nLocation: /a\r\n\r\n";
	for (size_t cap = 0; cap < sizeof(want302) - 1; cap++) {
		memset(out, 'Q', sizeof(out));
		assert_int_equal(cgi_headers_output(h, out, cap), 0);
		for (size_t k = cap; k < sizeof(out); k++)
			assert_int_equal(out[k], 'Q');
	}
	assert_int_equal(cgi_headers_output(h, out, sizeof(want302) - 1), sizeof(want302) - 1);
	assert_memory_equal(out, want302, sizeof(want302) - 1);
	free(h);
}

/* ---- environment filter -------------------------------------------------- */

static void test_env_refused(void **state)
{
	/* Loader, shell, interpreter and tool switches, and anything not on the list. */
	static const char *const no[] = {
		"HTTP_PROXY", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "BASH_ENV",
		"BASH_FUNC_x%%", "BASH_FUNC_foo()", "PATH", "PYTHONPATH", "PYTHONSTARTUP",
		"PYTHONHOME", "PERL5OPT", "PERL5LIB", "IFS", "ENV", "SHELLOPTS", "NODE_OPTIONS",
		"RUBYOPT", "GCONV_PATH", "GLIBC_TUNABLES", "MALLOC_CHECK_", "PHPRC",
		"GIT_SSH_COMMAND", "GIT_CONFIG_PARAMETERS", "HOME", "TMPDIR", "",
		/* the ones a denylist missed (issue 20) */
		"GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0", "GIT_DIR",
		"GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_PROXY_COMMAND", "GIT_EXTERNAL_DIFF",
		"OPENSSL_CONF", "SSLKEYLOGFILE", "JAVA_TOOL_OPTIONS", "LESSOPEN", "PERLDB_OPTS",
		"GEM_PATH", "http_proxy", "HTTPS_PROXY", "ALL_PROXY", "https_proxy", "no_proxy",
		"SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_PROJECT_ROOT", "GIT_HTTP_EXPORT_ALL",
		/* HTTP_ names a web server would never make */
		"HTTP_", "HTTP_a", "HTTP_X=Y", "HTTP_X-Y", "SSL_CLIENT_x",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		if (cgi_env_allowed(no[i], NULL, 0))
			fail_msg("cgi_env_allowed(\"%s\") should be 0", no[i]);
	}
	assert_int_equal(cgi_env_allowed(NULL, NULL, 0), 0);
}

static void test_env_allowed(void **state)
{
	static const char *const yes[] = {
		"HTTP_HOST", "QUERY_STRING", "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO",
		"CONTENT_LENGTH", "CONTENT_TYPE", "HTTP_USER_AGENT", "HTTP_PROXY_AUTHORIZATION",
		"REMOTE_USER", "HTTPS", "PATH_TRANSLATED", "AUTH_TYPE", "REMOTE_HOST", "REMOTE_IDENT",
		"SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "SERVER_SOFTWARE", "GATEWAY_INTERFACE",
		"REMOTE_ADDR", "REQUEST_URI", "DOCUMENT_ROOT", "DOCUMENT_URI", "REDIRECT_STATUS",
		"REQUEST_SCHEME", "REMOTE_PORT", "SERVER_ADDR", "HTTP_X_FORWARDED_FOR",
		"SSL_CLIENT_S_DN", "SSL_PROTOCOL",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!cgi_env_allowed(yes[i], NULL, 0))
			fail_msg("cgi_env_allowed(\"%s\") should be 1", yes[i]);
	}
}

/* cgi.pass_params: exact names and PREFIX* */
static void test_env_pass_params(void **state)
{
	static const char *const extra[] = { "GIT_PROJECT_ROOT", "GIT_HTTP_EXPORT_ALL", "APP_*" };

	(void)state;
	assert_int_equal(cgi_env_allowed("GIT_PROJECT_ROOT", extra, 3), 1);
	assert_int_equal(cgi_env_allowed("GIT_HTTP_EXPORT_ALL", extra, 3), 1);
	assert_int_equal(cgi_env_allowed("APP_ENV", extra, 3), 1);
	assert_int_equal(cgi_env_allowed("GIT_PROJECT_ROOTX", extra, 3), 0);
	assert_int_equal(cgi_env_allowed("GIT_CONFIG_COUNT", extra, 3), 0);
	assert_int_equal(cgi_env_allowed("APP", extra, 3), 0);
	assert_int_equal(cgi_env_allowed("A=B", extra, 3), 0);
}

/* ---- extension check ----------------------------------------------------- */

static void test_extension(void **state)
{
	const char *const one[] = { ".cgi" };
	const char *const two[] = { ".sh", ".cgi" };
	const char *const with_empty[] = { "", ".py" };

	(void)state;
	/* Empty list: everything goes. */
	assert_int_equal(cgi_extension_allowed("/srv/anything", NULL, 0), 1);
	assert_int_equal(cgi_extension_allowed("/srv/x.php", one, 0), 1);
	/* Match. */
	assert_int_equal(cgi_extension_allowed("/srv/cgi-bin/hello.cgi", one, 1), 1);
	assert_int_equal(cgi_extension_allowed("/srv/run.sh", two, 2), 1);
	assert_int_equal(cgi_extension_allowed("/srv/run.cgi", two, 2), 1);
	assert_int_equal(cgi_extension_allowed("a.cgi", one, 1), 1);
	/* No match. */
	assert_int_equal(cgi_extension_allowed("/srv/hello.pl", one, 1), 0);
	assert_int_equal(cgi_extension_allowed("/srv/hello.cgi.bak", one, 1), 0);
	assert_int_equal(cgi_extension_allowed("/srv/hello.CGI", one, 1), 0);
	assert_int_equal(cgi_extension_allowed("/srv/hellocgi", one, 1), 0);
	assert_int_equal(cgi_extension_allowed("", one, 1), 0);
	/* A name that is only the extension is not a script with that extension. */
	assert_int_equal(cgi_extension_allowed("/dir/.sh", two, 2), 0);
	assert_int_equal(cgi_extension_allowed(".sh", two, 2), 0);
	assert_int_equal(cgi_extension_allowed("/.cgi", one, 1), 0);
	/* An empty entry matches nothing by itself. */
	assert_int_equal(cgi_extension_allowed("/srv/x.rb", with_empty, 2), 0);
	assert_int_equal(cgi_extension_allowed("/srv/x.py", with_empty, 2), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lf_endings),
		cmocka_unit_test(test_crlf_endings),
		cmocka_unit_test(test_nph_status_line),
		cmocka_unit_test(test_mixed_endings),
		cmocka_unit_test(test_flags_and_values),
		cmocka_unit_test(test_body_not_consumed),
		cmocka_unit_test(test_empty_section),
		cmocka_unit_test(test_incomplete_needs_more),
		cmocka_unit_test(test_status_valid),
		cmocka_unit_test(test_status_invalid),
		cmocka_unit_test(test_status_has_flag),
		cmocka_unit_test(test_location_without_status),
		cmocka_unit_test(test_location_with_status),
		cmocka_unit_test(test_header_name_exact),
		cmocka_unit_test(test_malformed_lines),
		cmocka_unit_test(test_control_chars_in_value),
		cmocka_unit_test(test_error_after_valid_line),
		cmocka_unit_test(test_oversized_section),
		cmocka_unit_test(test_lf_section_output_bounded),
		cmocka_unit_test(test_output_too_small),
		cmocka_unit_test(test_env_refused),
		cmocka_unit_test(test_env_allowed),
		cmocka_unit_test(test_env_pass_params),
		cmocka_unit_test(test_extension),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
