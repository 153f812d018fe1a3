/*
 * libFuzzer harness for the CGI response header parser (src/cgi/).
 *
 * The input is a script's stdout.  It is fed in one call and in chunks
 * whose sizes come from the input's own bytes; both must come to the same
 * result, section length, flags, error and output block.  The block is then
 * checked as what goes to the web server: it fits the worker's buffer
 * (CGI_HEADERS_MAX + 64), never runs past the capacity it is given, and
 * every line is "name: value" ending in CRLF (a bare LF or CR would let a
 * script's output be read as more headers than the parser accepted).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cgi/cgi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WORKER_BLOCK (CGI_HEADERS_MAX + 64)   /* handlers/cgi.c's output buffer */

struct result {
	int rc;
	size_t consumed;
};

static struct cgi_headers h1, h2;

static struct result feed(struct cgi_headers *h, const uint8_t *data, size_t size, int chunked)
{
	struct result r = { 0, size };
	size_t off = 0, i = 0;

	cgi_headers_init(h);
	while (off < size) {
		size_t c = chunked ? (size_t)(data[i++ % size] & 31) + 1 : size;
		size_t n = c < size - off ? c : size - off;
		size_t used = (size_t)-1;
		int rc = cgi_headers_feed(h, (const char *)data + off, n, &used);

		if (rc == 0) {
			if (used != n)
				abort();
			off += n;
			continue;
		}
		if (rc != 1 && rc != -1)
			abort();
		if (rc == 1 && used > n)
			abort();
		r.rc = rc;
		r.consumed = rc == 1 ? off + used : 0;
		return r;
	}
	return r;
}

static int is_token(unsigned char c)
{
	return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* The block as sent: token ':' value CRLF lines, then CRLF. */
static void check_block(const struct cgi_headers *h, const char *b, size_t n)
{
	size_t i = 0, lines = 0;

	if (n < 2 || b[n - 2] != '\r' || b[n - 1] != '\n')
		abort();
	while (i < n - 2) {
		size_t s = i;

		while (i < n && is_token((unsigned char)b[i]))
			i++;
		if (i == s || i >= n || b[i] != ':')
			abort();
		for (i++; i < n && b[i] != '\r' && b[i] != '\n'; i++)
			if ((unsigned char)b[i] < 32 && b[i] != '\t')
				abort();
		if (i + 1 >= n || b[i] != '\r' || b[i + 1] != '\n')
			abort();
		i += 2;
		lines++;
	}
	if (i != n - 2)
		abort();
	if (h->has_location && !h->has_status && memcmp(b, "Status: 302 Found\r\n", 19) != 0)
		abort();
	(void)lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result a = feed(&h1, data, size, 0);
	struct result b = feed(&h2, data, size, 1);

	if (a.rc != b.rc || a.consumed != b.consumed || h1.status != h2.status ||
	    h1.has_status != h2.has_status || h1.has_location != h2.has_location ||
	    h1.has_content_type != h2.has_content_type || h1.error != h2.error)
		abort();
	if (a.rc == -1) {
		if (!h1.error || !*h1.error)
			abort();
		return 0;
	}
	if (a.rc == 0)
		return 0;

	/* Complete: the section ends with its blank line, the rest is body. */
	if (a.consumed == 0 || a.consumed > size || data[a.consumed - 1] != '\n' || h1.error)
		abort();
	if (h1.status < 100 || h1.status > 599)
		abort();
	if (!h1.has_status && h1.status != (h1.has_location ? 302 : 200))
		abort();

	/* Exactly sized buffers, so ASan sees any write past cap. */
	char *o1 = malloc(WORKER_BLOCK), *o2 = malloc(WORKER_BLOCK);
	if (!o1 || !o2)
		abort();
	size_t n1 = cgi_headers_output(&h1, o1, WORKER_BLOCK);
	size_t n2 = cgi_headers_output(&h2, o2, WORKER_BLOCK);
	if (n1 == 0 || n1 > WORKER_BLOCK || n1 != n2 || memcmp(o1, o2, n1) != 0)
		abort();
	check_block(&h1, o1, n1);

	/* A smaller capacity from the input: all or nothing, never past it. */
	size_t cap = size ? ((size_t)data[0] << 8 | data[size - 1]) % (n1 + 8) : 0;
	char *o3 = malloc(cap ? cap : 1);
	if (!o3)
		abort();
	size_t n3 = cgi_headers_output(&h1, o3, cap);
	if (cap >= n1 ? (n3 != n1 || memcmp(o3, o1, n1) != 0) : n3 != 0)
		abort();
	free(o3);
	free(o1);
	free(o2);
	return 0;
}
