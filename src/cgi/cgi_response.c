/*
 * CGI response headers (RFC 3875 §6.2-6.3): a header section ends at the
 * first empty line (LF or CRLF), each line is "name: value" with a token
 * name (a non-parsed-header script's "HTTP/1.1 NNN reason" first line is
 * taken as its Status).  Output without a header section is an error (502), as is a section
 * larger than CGI_HEADERS_MAX once its line ends are CRLF (so the block
 * cgi_headers_output writes is at most CGI_HEADERS_MAX + 19 bytes).
 */
#include "cgi/cgi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void cgi_headers_init(struct cgi_headers *h)
{
	h->len = 0;
	h->done = 0;
	h->status = 200;
	h->has_status = h->has_location = h->has_content_type = 0;
	h->error = NULL;
}

static int is_token_char(unsigned char c)
{
	return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* Checks one line (without its line end); 0 ok, -1 malformed. */
static int check_line(struct cgi_headers *h, const char *line, size_t len)
{
	size_t i = 0;
	while (i < len && is_token_char((unsigned char)line[i]))
		i++;
	if (i == 0 || i >= len || line[i] != ':') {
		h->error = "malformed header line from script (expected 'Name: value')";
		return -1;
	}
	const char *v = line + i + 1;
	size_t vlen = len - i - 1;
	while (vlen && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	if (i == 6 && strncasecmp(line, "Status", 6) == 0) {
		if (vlen < 3 || v[0] < '1' || v[0] > '5' || v[1] < '0' || v[1] > '9' ||
		    v[2] < '0' || v[2] > '9' || (vlen > 3 && v[3] != ' ')) {
			h->error = "invalid Status header from script (expected 'Status: NNN reason')";
			return -1;
		}
		h->status = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
		h->has_status = 1;
	} else if (i == 8 && strncasecmp(line, "Location", 8) == 0) {
		h->has_location = 1;
	} else if (i == 12 && strncasecmp(line, "Content-Type", 12) == 0) {
		h->has_content_type = 1;
	}
	for (size_t k = 0; k < vlen; k++)
		if ((unsigned char)v[k] < 32 && v[k] != '\t') {
			h->error = "control character in a header value from script";
			return -1;
		}
	return 0;
}

int cgi_headers_feed(struct cgi_headers *h, const char *data, size_t len, size_t *consumed)
{
	*consumed = 0;
	if (h->done)
		return 1;
	for (size_t i = 0; i < len; i++) {
		char ch = data[i];
		/*
		 * A bare LF is kept as CRLF, the form it is sent on in, so that
		 * the limit also bounds what cgi_headers_output writes.
		 */
		int add_cr = ch == '\n' && (h->len == 0 || h->buf[h->len - 1] != '\r');
		if (h->len + (size_t)add_cr >= sizeof(h->buf) - 1) {
			h->error = "header section from script is larger than 64 KiB";
			return -1;
		}
		if (add_cr)
			h->buf[h->len++] = '\r';
		h->buf[h->len++] = ch;
		if (ch != '\n')
			continue;
		/* A line ended: find where it started. */
		size_t end = h->len - 1;               /* index of '\n' */
		size_t lend = end;
		if (lend > 0 && h->buf[lend - 1] == '\r')
			lend--;
		size_t start = end;
		while (start > 0 && h->buf[start - 1] != '\n')
			start--;
		if (lend == start) {
			/* Empty line: the header section is complete. */
			h->len = start;                /* drop the blank line */
			h->done = 1;
			if (h->has_location && !h->has_status)
				h->status = 302;
			*consumed = i + 1;
			return 1;
		}
		/*
		 * A non-parsed-header script's status line (RFC 3875 §5: nph-
		 * scripts speak HTTP themselves) first: "HTTP/1.1 404 Not Found"
		 * is taken as "Status: 404 Not Found", the only form a FastCGI
		 * answer carries (fcgiwrap passed it on as a header: the web server
		 * then said 200).  "Status:" is one byte shorter than "HTTP/x.y ".
		 */
		if (start == 0 && lend >= 12 && memcmp(h->buf, "HTTP/", 5) == 0 &&
		    h->buf[5] >= '0' && h->buf[5] <= '9' && h->buf[6] == '.' &&
		    h->buf[7] >= '0' && h->buf[7] <= '9' && h->buf[8] == ' ') {
			memcpy(h->buf, "Status:", 7);
			memmove(h->buf + 7, h->buf + 8, h->len - 8);
			h->len--;
			lend--;
		}
		if (check_line(h, h->buf + start, lend - start) < 0)
			return -1;
	}
	*consumed = len;
	return 0;
}

size_t cgi_headers_output(const struct cgi_headers *h, char *out, size_t cap)
{
	size_t o = 0;
	if (h->has_location && !h->has_status) {
		static const char s302[] = "Status: 302 Found\r\n";
		if (sizeof(s302) - 1 > cap)
			return 0;
		memcpy(out, s302, sizeof(s302) - 1);
		o = sizeof(s302) - 1;
	}
	size_t start = 0;
	for (size_t i = 0; i < h->len; i++) {
		if (h->buf[i] != '\n')
			continue;
		size_t lend = i;
		if (lend > start && h->buf[lend - 1] == '\r')
			lend--;
		size_t n = lend - start;
		if (o + n + 2 > cap)
			return 0;
		memcpy(out + o, h->buf + start, n);
		o += n;
		out[o++] = '\r';
		out[o++] = '\n';
		start = i + 1;
	}
	if (o + 2 > cap)
		return 0;
	out[o++] = '\r';
	out[o++] = '\n';
	return o;
}

int cgi_extension_allowed(const char *path, const char *const *exts, size_t n)
{
	if (n == 0)
		return 1;
	size_t plen = strlen(path);
	for (size_t i = 0; i < n; i++) {
		size_t elen = strlen(exts[i]);
		if (elen && plen > elen && strcmp(path + plen - elen, exts[i]) == 0 &&
		    path[plen - elen - 1] != '/')
			return 1;
	}
	return 0;
}
