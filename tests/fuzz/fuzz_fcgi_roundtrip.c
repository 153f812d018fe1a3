/*
 * libFuzzer harness: encode → decode round trip of the FastCGI codec.
 *
 * The input is cut into a request: a request id, flags, name-value pairs
 * (fields separated by 0xff bytes: name, value, name, value, ...) and a body.
 * The request is encoded with the codec's writer side (fcgi_begin_request_encode,
 * fcgi_nv_encode, fcgi_header_encode, fcgi_stream_encode; PARAMS and STDIN split
 * at record sizes taken from the input, with padding taken from the input), then
 * parsed back by fcgi_parser_feed in chunks whose sizes come from the input.
 * What must hold (spec §3.3, §3.4):
 *   - exactly one PARAMS_DONE and one STDIN_END, no error;
 *   - every valid pair comes back with the same bytes (first position, last
 *     value for a duplicate name, as fcgi.h promises), and nothing else;
 *   - the body comes back byte for byte.
 * Pairs the parser must refuse (empty name, NUL or '=' in the name) are not
 * generated: this harness is about what is valid surviving the trip; the
 * parser harness covers rejection.  Then the same body goes out as STDOUT
 * records (fcgi_stream_encode) plus END_REQUEST and through the response
 * reader, which must give back the body, the app status and nothing more.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi/fcgi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PAIRS 32

struct pair {
	const uint8_t *name, *value;
	size_t name_len, value_len;
};

struct buf {
	uint8_t *b;
	size_t len, cap;
};

static void put(struct buf *o, const void *d, size_t n)
{
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2 + 64;
		o->b = realloc(o->b, o->cap);
		if (!o->b)
			abort();
	}
	if (n)
		memcpy(o->b + o->len, d, n);
	o->len += n;
}

/* Writes content as records of type, each at most max bytes, padding from pad. */
static void put_stream(struct buf *o, uint8_t type, uint16_t id, const uint8_t *d, size_t n,
		       size_t max, uint8_t pad)
{
	static const uint8_t zeros[255];
	uint8_t h[FCGI_HEADER_LEN];

	while (n) {
		size_t c = n < max ? n : max;

		fcgi_header_encode(h, type, id, (uint16_t)c, pad);
		put(o, h, sizeof(h));
		put(o, d, c);
		put(o, zeros, pad);
		d += c;
		n -= c;
	}
	fcgi_header_encode(h, type, id, 0, 0);
	put(o, h, sizeof(h));
}

static int valid_name(const uint8_t *n, size_t len)
{
	return len > 0 && !memchr(n, '\0', len) && !memchr(n, '=', len);
}

/* Index of the last pair named like pairs[i] (its value is the one kept). */
static size_t last_of(const struct pair *pairs, size_t n, size_t i)
{
	size_t last = i;

	for (size_t j = i + 1; j < n; j++)
		if (pairs[j].name_len == pairs[i].name_len &&
		    memcmp(pairs[j].name, pairs[i].name, pairs[i].name_len) == 0)
			last = j;
	return last;
}

static int first_of(const struct pair *pairs, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (pairs[j].name_len == pairs[i].name_len &&
		    memcmp(pairs[j].name, pairs[i].name, pairs[i].name_len) == 0)
			return 0;
	return 1;
}

static void check_response(const uint8_t *body, size_t body_len, uint16_t id, uint32_t app,
			   const uint8_t *chunks, size_t nchunks)
{
	struct buf o = { 0 }, got = { 0 };
	struct fcgi_resp_reader r;
	size_t need = fcgi_stream_size(body_len), off = 0, k = 0;
	int ends = 0;

	if (body_len) {
		o.b = malloc(need);
		if (!o.b)
			abort();
		o.cap = need;
		o.len = fcgi_stream_encode(o.b, need, FCGI_STDOUT, id, body, body_len);
		if (o.len != need)
			abort();
	}
	uint8_t term[FCGI_HEADER_LEN], end[FCGI_END_REQUEST_LEN];
	size_t t = fcgi_stream_encode(term, sizeof(term), FCGI_STDOUT, id, NULL, 0);
	if (t != sizeof(term))
		abort();
	put(&o, term, t);
	fcgi_end_request_encode(end, id, app, FCGI_REQUEST_COMPLETE);
	put(&o, end, sizeof(end));

	fcgi_resp_reader_init(&r);
	while (off < o.len) {
		size_t c = nchunks ? (size_t)chunks[k++ % nchunks] + 1 : o.len;
		size_t stop = off + (c < o.len - off ? c : o.len - off);

		while (off < stop) {
			struct fcgi_resp_event ev;
			ssize_t n = fcgi_resp_reader_feed(&r, o.b + off, stop - off, &ev);

			if (n < 0 || (size_t)n > stop - off)
				abort();
			off += (size_t)n;
			if (ev.kind == FCGI_RESP_STDOUT)
				put(&got, ev.data, ev.len);
			else if (ev.kind == FCGI_RESP_END) {
				if (ev.app_status != app || ev.protocol_status != 0 || ends++)
					abort();
			} else if (ev.kind != FCGI_RESP_NONE)
				abort();
		}
	}
	if (ends != 1 || got.len != body_len || (body_len && memcmp(got.b, body, body_len)))
		abort();
	free(o.b);
	free(got.b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pair pairs[MAX_PAIRS];
	size_t npairs = 0;

	if (size < 8)
		return 0;
	uint16_t id = (uint16_t)(data[0] << 8 | data[1]);
	uint8_t flags = data[2] & FCGI_KEEP_CONN;
	size_t rec_max = (size_t)(data[3] << 8 | data[4]) % FCGI_MAX_CONTENT + 1;
	uint8_t pad = data[5];
	const uint8_t *chunks = data + 6;
	size_t nchunks = 2;
	const uint8_t *p = data + 8, *end = data + size;

	if (id == 0)
		id = 1;
	/* Pairs up to a 0xfe byte, fields separated by 0xff; the rest is the body. */
	const uint8_t *pend = memchr(p, 0xfe, (size_t)(end - p));
	if (!pend)
		pend = end;
	while (p < pend && npairs < MAX_PAIRS) {
		const uint8_t *a = memchr(p, 0xff, (size_t)(pend - p));
		const uint8_t *nm = p, *val;
		size_t nl, vl;

		if (!a)
			break;
		nl = (size_t)(a - p);
		val = a + 1;
		const uint8_t *b = memchr(val, 0xff, (size_t)(pend - val));
		vl = b ? (size_t)(b - val) : (size_t)(pend - val);
		p = b ? b + 1 : pend;
		if (!valid_name(nm, nl))
			continue;
		pairs[npairs++] = (struct pair){ nm, val, nl, vl };
	}
	const uint8_t *body = pend < end ? pend + 1 : end;
	size_t body_len = (size_t)(end - body);

	/* Encode. */
	struct buf req = { 0 }, nv = { 0 };
	uint8_t begin[FCGI_BEGIN_REQUEST_LEN];
	fcgi_begin_request_encode(begin, id, FCGI_RESPONDER, flags);
	put(&req, begin, sizeof(begin));
	for (size_t i = 0; i < npairs; i++) {
		size_t need = fcgi_nv_size(pairs[i].name_len, pairs[i].value_len);
		size_t at = nv.len;

		if (nv.len + need > nv.cap) {
			nv.cap = (nv.len + need) * 2;
			nv.b = realloc(nv.b, nv.cap);
			if (!nv.b)
				abort();
		}
		if (fcgi_nv_encode(nv.b + at, need, pairs[i].name, pairs[i].name_len,
				   pairs[i].value, pairs[i].value_len) != need)
			abort();
		/* One byte short must be refused, not overflowed. */
		if (need > 1 && fcgi_nv_encode(nv.b + at, need - 1, pairs[i].name, pairs[i].name_len,
					       pairs[i].value, pairs[i].value_len) != 0)
			abort();
		/* And the pair decodes by itself. */
		const uint8_t *dn, *dv;
		uint32_t dnl, dvl;
		if (fcgi_nv_decode(nv.b + at, need, &dn, &dnl, &dv, &dvl) != (ssize_t)need ||
		    dnl != pairs[i].name_len || dvl != pairs[i].value_len ||
		    memcmp(dn, pairs[i].name, dnl) || (dvl && memcmp(dv, pairs[i].value, dvl)))
			abort();
		if (fcgi_nv_decode(nv.b + at, need - 1, &dn, &dnl, &dv, &dvl) != 0)
			abort();
		nv.len = at + need;
	}
	put_stream(&req, FCGI_PARAMS, id, nv.b, nv.len, rec_max, pad);
	put_stream(&req, FCGI_STDIN, id, body, body_len, rec_max, pad);

	/* Decode in chunks. */
	struct fcgi_limits lim;
	struct fcgi_parser ps;
	struct buf got = { 0 };
	size_t off = 0, k = 0;
	int params_done = 0, stdin_end = 0;

	/* Limits above anything the input can build: refusals are not this harness's subject. */
	fcgi_limits_default(&lim);
	lim.max_params_size = 1u << 24;
	lim.max_name_len = 1u << 24;
	fcgi_parser_init(&ps, &lim);
	while (off < req.len) {
		size_t c = (size_t)chunks[k++ % nchunks] * 7 + 1;
		size_t stop = off + (c < req.len - off ? c : req.len - off);

		while (off < stop) {
			struct fcgi_event ev;
			ssize_t n = fcgi_parser_feed(&ps, req.b + off, stop - off, &ev);

			if (n < 0 || (size_t)n > stop - off)
				abort();
			off += (size_t)n;
			switch (ev.kind) {
			case FCGI_EV_NONE:
				break;
			case FCGI_EV_PARAMS_DONE:
				if (params_done++ || ps.request_id != id || ps.flags != flags ||
				    ps.role != FCGI_RESPONDER)
					abort();
				break;
			case FCGI_EV_STDIN:
				if (!params_done || stdin_end)
					abort();
				put(&got, ev.data, ev.len);
				break;
			case FCGI_EV_STDIN_END:
				if (stdin_end++)
					abort();
				break;
			default:
				abort();
			}
		}
	}
	if (params_done != 1 || stdin_end != 1)
		abort();
	if (got.len != body_len || (body_len && memcmp(got.b, body, body_len)))
		abort();

	/* Distinct names, in first-seen order, each with its last value. */
	size_t want = 0;
	for (size_t i = 0; i < npairs; i++) {
		if (!first_of(pairs, i))
			continue;
		const struct pair *v = &pairs[last_of(pairs, npairs, i)];
		if (want >= ps.nparams)
			abort();
		const struct fcgi_param *g = &ps.params[want++];
		if (g->name_len != pairs[i].name_len || memcmp(g->name, pairs[i].name, g->name_len) ||
		    g->value_len != v->value_len || (v->value_len && memcmp(g->value, v->value, v->value_len)))
			abort();
	}
	if (want != ps.nparams)
		abort();
	fcgi_parser_free(&ps);

	check_response(body, body_len, id, (uint32_t)data[6] << 24 | data[7], chunks, nchunks);
	free(req.b);
	free(nv.b);
	free(got.b);
	return 0;
}
