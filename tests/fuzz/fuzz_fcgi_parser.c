/*
 * libFuzzer harness for the FastCGI request parser and response reader.
 *
 * The input is fed twice: in one call, and in small chunks whose sizes come
 * from the input's own bytes.  The two event sequences must be the same
 * (stream pieces merged, since their cut follows the feeding).  Between
 * requests the parser is reset as a keep-alive worker would.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi/fcgi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct trace {
	uint8_t *b;
	size_t len, cap;
	int last;
};

static void put(struct trace *t, const void *d, size_t n)
{
	if (t->len + n > t->cap) {
		t->cap = (t->len + n) * 2 + 256;
		t->b = realloc(t->b, t->cap);
		if (!t->b)
			abort();
	}
	if (n)
		memcpy(t->b + t->len, d, n);
	t->len += n;
}

/* Appends an event; consecutive pieces of one stream are merged. */
static void record(struct trace *t, int kind, const uint8_t *d, size_t n)
{
	uint8_t k = (uint8_t)kind;
	int stream = kind == FCGI_EV_STDIN || kind == FCGI_EV_DATA ||
		     kind == 100 + FCGI_RESP_STDOUT || kind == 100 + FCGI_RESP_STDERR;

	if (!(stream && t->last == kind)) {
		put(t, "|", 1);
		put(t, &k, 1);
	}
	put(t, d, n);
	t->last = kind;
}

static void check_params(const struct fcgi_parser *p)
{
	size_t i;

	if (p->nparams > p->limits.max_params_count)
		abort();
	for (i = 0; i < p->nparams; i++) {
		const struct fcgi_param *pr = &p->params[i];

		if (pr->name_len == 0 || strlen(pr->name) != pr->name_len ||
		    pr->name_len > p->limits.max_name_len || pr->value[pr->value_len] != '\0' ||
		    fcgi_param_get(p, pr->name) != pr)
			abort();
	}
}

static void run_parser(const uint8_t *data, size_t size, int chunked, struct trace *t)
{
	struct fcgi_limits lim;
	struct fcgi_parser p;
	size_t off = 0, i = 0;

	fcgi_limits_default(&lim);
	lim.max_params_size = 4096;   /* small, so the limits are reached */
	lim.max_params_count = 64;
	lim.max_name_len = 256;
	lim.max_conns = 7;
	lim.max_reqs = 9;
	fcgi_parser_init(&p, &lim);
	while (off < size) {
		size_t c = chunked ? (size_t)(data[i++ % size] & 15) + 1 : size;
		size_t end = off + (c < size - off ? c : size - off);

		while (off < end) {
			struct fcgi_event ev;
			ssize_t n = fcgi_parser_feed(&p, data + off, end - off, &ev);

			if (n < 0) {
				record(t, 200 + p.error, NULL, 0);
				goto out;
			}
			if ((size_t)n > end - off)
				abort();
			off += (size_t)n;
			if (ev.kind == FCGI_EV_NONE) {
				if (off != end)
					abort();
				continue;
			}
			record(t, ev.kind, ev.data, ev.len);
			if (ev.kind == FCGI_EV_PARAMS_DONE)
				check_params(&p);
			if (ev.kind == FCGI_EV_STDIN_END || ev.kind == FCGI_EV_ABORT)
				fcgi_parser_reset(&p);
		}
	}
out:
	fcgi_parser_free(&p);
}

static void run_resp(const uint8_t *data, size_t size, int chunked, struct trace *t)
{
	struct fcgi_resp_reader r;
	size_t off = 0, i = 0;

	fcgi_resp_reader_init(&r);
	while (off < size) {
		size_t c = chunked ? (size_t)(data[i++ % size] & 7) + 1 : size;
		size_t end = off + (c < size - off ? c : size - off);

		while (off < end) {
			struct fcgi_resp_event ev;
			ssize_t n = fcgi_resp_reader_feed(&r, data + off, end - off, &ev);
			uint8_t st[6];

			if (n < 0) {
				record(t, 200 + r.error, NULL, 0);
				return;
			}
			off += (size_t)n;
			if (ev.kind == FCGI_RESP_NONE)
				continue;
			st[0] = (uint8_t)(ev.app_status >> 24);
			st[1] = (uint8_t)(ev.app_status >> 16);
			st[2] = (uint8_t)(ev.app_status >> 8);
			st[3] = (uint8_t)ev.app_status;
			st[4] = ev.protocol_status;
			st[5] = ev.other_type;
			if (ev.kind == FCGI_RESP_STDOUT || ev.kind == FCGI_RESP_STDERR)
				record(t, 100 + ev.kind, ev.data, ev.len);
			else
				record(t, 100 + ev.kind, st, sizeof(st));
		}
	}
}

static void same(const struct trace *a, const struct trace *b)
{
	if (a->len != b->len || (a->len && memcmp(a->b, b->b, a->len) != 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace t1 = { 0 }, t2 = { 0 };

	run_parser(data, size, 0, &t1);
	run_parser(data, size, 1, &t2);
	same(&t1, &t2);
	t1.len = t2.len = 0;
	t1.last = t2.last = 0;
	run_resp(data, size, 0, &t1);
	run_resp(data, size, 1, &t2);
	same(&t1, &t2);
	free(t1.b);
	free(t2.b);
	return 0;
}
