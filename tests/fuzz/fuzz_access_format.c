/*
 * libFuzzer harness for the access.format parser and renderer
 * (src/log/access_format.c).
 *
 * The input is split at 0xff bytes: the first field is the format (from the
 * configuration: one line, so CR and LF are dropped from it), the others are
 * the request's values — remote address, user, method, URI, query, script,
 * the value of every %{NAME}e param and of every %{Header}o header (the
 * header may hold NUL bytes: its length is passed).  The first 8 bytes are
 * the numbers (times, sizes, pid, status); the format follows them.
 *
 * What must hold:
 *   - access_format_check never crashes, and when it accepts a format the
 *     renderer produces a line;
 *   - the line ends in '\n', its length is what *len says, no NUL inside;
 *   - request values never add a line or a control character: the line has
 *     as many LF and as many C0 bytes as the same format rendered with every
 *     value replaced by "x" (a format may itself print one, through
 *     strftime's %n in %{...}t: the configuration is trusted, requests not).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log/access_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NFIELDS 9

struct vals {
	const char *s[NFIELDS];
	size_t len[NFIELDS];
};

static const char *param(void *ctx, const char *name)
{
	const struct vals *v = ctx;

	(void)name;
	return v->s[6];
}

static const char *header(void *ctx, const char *name, size_t *len)
{
	const struct vals *v = ctx;

	if (name[0] == 'z')            /* an absent header */
		return NULL;
	*len = v->len[7];
	return v->s[7];
}

static void count(const char *line, size_t len, size_t *lf, size_t *ctl)
{
	*lf = *ctl = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == '\0')
			abort();
		if (c == '\n')
			++*lf;
		else if (c < 0x20 || c == 0x7f)
			++*ctl;
	}
}

static char *render(const char *fmt, const struct vals *v, uint64_t num, size_t *len)
{
	struct access_entry e;

	memset(&e, 0, sizeof(e));
	e.remote_addr = v->s[0];
	e.remote_user = v->s[1];
	e.method = v->s[2];
	e.uri = v->s[3];
	e.query = v->s[4];
	e.script = v->s[5];
	e.pool = "www";
	e.pid = (int)(num & 0xffff);
	e.master_pid = 1;
	e.status = (int)(num % 600);
	e.content_length = num;
	e.duration_us = num >> 3;
	e.cpu_user_us = num >> 5;
	e.cpu_system_us = num >> 7;
	e.memory = num;
	/* The worker's clock: a real time, never a value localtime_r refuses, and
	 * one second later still a time_t where it has 32 bits (i386: make fuzz-m32). */
	e.start.tv_sec = (time_t)(num % 0x7fffffffu);
	e.now.tv_sec = e.start.tv_sec + 1;
	e.param = param;
	e.header = header;
	e.ctx = (void *)v;
	return access_format(fmt, &e, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *fmt;
	struct vals v, benign;
	uint64_t num = 0;
	size_t i, nf = 0;

	if (!copy)
		abort();
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (i = 0; i < 8 && i < size; i++)
		num = num << 8 | data[i];
	memset(&v, 0, sizeof(v));
	/* Fields: NUL-terminated in place; the header keeps inner NULs through its length. */
	fmt = copy + (size < 8 ? size : 8);
	char *p = fmt, *end = copy + size;
	while (nf < NFIELDS) {
		char *sep = memchr(p, 0xff, (size_t)(end - p));
		if (!sep)
			break;
		*sep = '\0';
		p = sep + 1;
		v.s[nf] = p;
		v.len[nf] = (size_t)(end - p);
		char *next = memchr(p, 0xff, (size_t)(end - p));
		if (next)
			v.len[nf] = (size_t)(next - p);
		nf++;
	}
	if (!v.s[7]) {
		v.s[7] = "";
		v.len[7] = 0;
	}
	/* The format is one configuration line. */
	for (char *q = fmt; *q; q++)
		if (*q == '\n' || *q == '\r')
			*q = ' ';

	char err[256];
	int ok = access_format_check(fmt, err, sizeof(err)) == 0;
	if (!ok && !memchr(err, '\0', sizeof(err)))
		abort();

	size_t len, blen, lf, ctl, blf, bctl;
	char *line = render(fmt, &v, num, &len);
	if (!line)
		abort();
	if (len == 0 || line[len - 1] != '\n' || line[len] != '\0')
		abort();
	count(line, len, &lf, &ctl);

	for (i = 0; i < NFIELDS; i++) {
		benign.s[i] = v.s[i] ? "x" : NULL;
		benign.len[i] = v.s[i] ? 1 : 0;
	}
	benign.s[7] = "x";
	benign.len[7] = 1;
	char *bline = render(fmt, &benign, num, &blen);
	if (!bline)
		abort();
	count(bline, blen, &blf, &bctl);
	if (lf != blf || ctl != bctl)
		abort();
	free(line);
	free(bline);
	free(copy);
	return 0;
}
