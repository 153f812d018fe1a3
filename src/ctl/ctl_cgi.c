/*
 * Splits the CGI response headers from the body for `fpmctl request`, and
 * reads the Status: header (RFC 3875 §6.3.3) for --fail.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl/ctl.h"

void ctl_cgi_init(struct ctl_cgi *c, int include)
{
	c->include = include;
	c->in_headers = 1;
	c->status = 200;
	c->hlen = 0;
	c->out = 0;
	c->last = 0;
}

/* Offset just past the empty line ("\n\n" or "\n\r\n"), or 0 if none yet. */
static size_t headers_end(const char *h, size_t len, size_t from)
{
	size_t i;

	for (i = from; i < len; i++) {
		if (h[i] != '\n')
			continue;
		if (i + 1 < len && h[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && h[i + 1] == '\r' && h[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static void parse_status(struct ctl_cgi *c, size_t end)
{
	size_t i = 0;

	while (i < end) {
		const char *line = c->hbuf + i, *nl = memchr(line, '\n', end - i);
		size_t len = nl ? (size_t)(nl - line) : end - i;

		if (len > 7 && strncasecmp(line, "Status:", 7) == 0) {
			const char *p = line + 7;

			while (*p == ' ' || *p == '\t')
				p++;
			if (p[0] >= '1' && p[0] <= '9')
				c->status = (int)strtol(p, NULL, 10);
		}
		i += len + 1;
	}
}

static int out(struct ctl_cgi *c, const void *d, size_t n)
{
	if (n == 0)
		return 0;
	c->out += n;
	c->last = ((const char *)d)[n - 1];
	return ctl_write_all(1, d, n);
}

/* Headers complete (or given up on): print what is due, then pass through. */
static int release(struct ctl_cgi *c, size_t end)
{
	size_t from = c->include ? 0 : end;

	c->in_headers = 0;
	return out(c, c->hbuf + from, c->hlen - from);
}

int ctl_cgi_feed(struct ctl_cgi *c, const uint8_t *d, size_t n)
{
	while (c->in_headers && n > 0) {
		size_t take = CTL_CGI_HMAX - c->hlen < n ? CTL_CGI_HMAX - c->hlen : n;
		size_t from = c->hlen > 2 ? c->hlen - 2 : 0, end;

		memcpy(c->hbuf + c->hlen, d, take);
		c->hlen += take;
		d += take;
		n -= take;
		end = headers_end(c->hbuf, c->hlen, from);
		if (end) {
			parse_status(c, end);
			if (release(c, end) < 0)
				return -1;
		} else if (c->hlen == CTL_CGI_HMAX && release(c, 0) < 0) {
			return -1;   /* no header block: printed as it is */
		}
	}
	return out(c, d, n);
}

int ctl_cgi_finish(struct ctl_cgi *c)
{
	return c->in_headers ? release(c, 0) : 0;
}
