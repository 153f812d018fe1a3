/*
 * Unit tests for src/fcgi/: records, name-value pairs, the request parser
 * and the response reader.  Streams are built by hand, byte by byte, so a
 * bug shared by the codec and its tests cannot hide.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fcgi/fcgi.h"

/* ---- stream builder ------------------------------------------------------ */

struct sb {
	uint8_t *b;
	size_t len, cap;
};

static void sb_put(struct sb *s, const void *d, size_t n)
{
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2 + 64;
		s->b = realloc(s->b, s->cap);
		assert_non_null(s->b);
	}
	if (n)
		memcpy(s->b + s->len, d, n);
	s->len += n;
}

static void sb_byte(struct sb *s, uint8_t c)
{
	sb_put(s, &c, 1);
}

static void sb_free(struct sb *s)
{
	free(s->b);
	memset(s, 0, sizeof(*s));
}

/* A record with any version and padding; padding bytes are junk on purpose. */
static void rec_raw(struct sb *s, uint8_t ver, uint8_t type, uint16_t id,
		    const void *content, size_t clen, uint8_t pad)
{
	uint8_t h[8] = { ver, type, (uint8_t)(id >> 8), (uint8_t)id,
			 (uint8_t)(clen >> 8), (uint8_t)clen, pad, 0 };
	size_t i;

	sb_put(s, h, 8);
	sb_put(s, content, clen);
	for (i = 0; i < pad; i++)
		sb_byte(s, 0xAA);
}

static void rec(struct sb *s, uint8_t type, uint16_t id, const void *content, size_t clen)
{
	rec_raw(s, 1, type, id, content, clen, (uint8_t)((8 - (clen & 7)) & 7));
}

static void begin(struct sb *s, uint16_t id, uint16_t role, uint8_t flags)
{
	uint8_t b[8] = { (uint8_t)(role >> 8), (uint8_t)role, flags, 0, 0, 0, 0, 0 };

	rec(s, FCGI_BEGIN_REQUEST, id, b, 8);
}

/* Appends one pair with the given length forms (4 = force the long form). */
static void nv_raw(struct sb *s, const char *n, size_t nl, const char *v, size_t vl, int force4)
{
	size_t lens[2] = { nl, vl };
	int i;

	for (i = 0; i < 2; i++) {
		if (lens[i] < 128 && !force4) {
			sb_byte(s, (uint8_t)lens[i]);
		} else {
			sb_byte(s, (uint8_t)((lens[i] >> 24) | 0x80));
			sb_byte(s, (uint8_t)(lens[i] >> 16));
			sb_byte(s, (uint8_t)(lens[i] >> 8));
			sb_byte(s, (uint8_t)lens[i]);
		}
	}
	sb_put(s, n, nl);
	sb_put(s, v, vl);
}

static void nv(struct sb *s, const char *n, const char *v)
{
	nv_raw(s, n, strlen(n), v, strlen(v), 0);
}

/* BEGIN + one PARAMS record with the pairs in pairs + empty PARAMS. */
static void head(struct sb *s, uint16_t id, const struct sb *pairs)
{
	begin(s, id, FCGI_RESPONDER, FCGI_KEEP_CONN);
	if (pairs && pairs->len)
		rec(s, FCGI_PARAMS, id, pairs->b, pairs->len);
	rec(s, FCGI_PARAMS, id, NULL, 0);
}

static void stdin_str(struct sb *s, uint16_t id, const char *d)
{
	rec(s, FCGI_STDIN, id, d, strlen(d));
}

/* ---- event log ----------------------------------------------------------- */

/*
 * The events of a run as text: P params done, I:<body>; stdin, E stdin end,
 * D:<data>; F data end, A abort, R:<hex>; reply, X<n> error.  Consecutive
 * stream pieces are merged, since how they split depends on the feeding.
 */
struct evlog {
	char s[8192];
	size_t len;
	int last;
};

static void log_put(struct evlog *l, const char *d, size_t n)
{
	assert_true(l->len + n < sizeof(l->s));
	memcpy(l->s + l->len, d, n);
	l->len += n;
	l->s[l->len] = '\0';
}

static void log_event(struct evlog *l, const struct fcgi_event *ev)
{
	char tok[8];
	size_t i;

	if ((ev->kind == FCGI_EV_STDIN || ev->kind == FCGI_EV_DATA) && l->last == (int)ev->kind) {
		log_put(l, (const char *)ev->data, ev->len);
		return;
	}
	if (l->last == FCGI_EV_STDIN || l->last == FCGI_EV_DATA || l->last == FCGI_EV_REPLY)
		log_put(l, ";", 1);
	l->last = ev->kind;
	switch (ev->kind) {
	case FCGI_EV_PARAMS_DONE: log_put(l, "P", 1); break;
	case FCGI_EV_STDIN:       log_put(l, "I:", 2); log_put(l, (const char *)ev->data, ev->len); break;
	case FCGI_EV_STDIN_END:   log_put(l, "E", 1); break;
	case FCGI_EV_DATA:        log_put(l, "D:", 2); log_put(l, (const char *)ev->data, ev->len); break;
	case FCGI_EV_DATA_END:    log_put(l, "F", 1); break;
	case FCGI_EV_ABORT:       log_put(l, "A", 1); break;
	case FCGI_EV_REPLY:
		log_put(l, "R:", 2);
		for (i = 0; i < ev->len; i++) {
			snprintf(tok, sizeof(tok), "%02x", ev->data[i]);
			log_put(l, tok, 2);
		}
		break;
	default:
		fail_msg("unexpected event %d", ev->kind);
	}
}

/*
 * Feeds in at most chunk bytes at a time (chunk 0: pseudo-random sizes from
 * seed).  Returns 0 when all was consumed, -1 on error (logged as X<n>).
 */
static int run_chunks(struct fcgi_parser *p, const uint8_t *in, size_t len, size_t chunk,
		      unsigned seed, struct evlog *l)
{
	size_t off = 0;

	while (off < len) {
		size_t c = chunk ? chunk : (size_t)((seed = seed * 1103515245u + 12345u) >> 16) % 17 + 1;
		size_t end = off + (c < len - off ? c : len - off);

		while (off < end) {
			struct fcgi_event ev;
			ssize_t n = fcgi_parser_feed(p, in + off, end - off, &ev);
			char e[16];

			if (n < 0) {
				if (l->last == FCGI_EV_STDIN || l->last == FCGI_EV_DATA ||
				    l->last == FCGI_EV_REPLY)
					log_put(l, ";", 1);
				snprintf(e, sizeof(e), "X%d", (int)p->error);
				log_put(l, e, strlen(e));
				l->last = -1;
				return -1;
			}
			assert_true((size_t)n <= end - off);
			off += (size_t)n;
			if (ev.kind != FCGI_EV_NONE)
				log_event(l, &ev);
			else
				assert_int_equal(off, end);
		}
	}
	if (l->last == FCGI_EV_STDIN || l->last == FCGI_EV_DATA || l->last == FCGI_EV_REPLY)
		log_put(l, ";", 1);
	l->last = 0;
	return 0;
}

/* One-shot run with a fresh parser; the parser is left for inspection. */
static int run1(struct fcgi_parser *p, const struct fcgi_limits *lim, const struct sb *s,
		struct evlog *l)
{
	memset(l, 0, sizeof(*l));
	fcgi_parser_init(p, lim);
	return run_chunks(p, s->b, s->len, SIZE_MAX, 0, l);
}

/* Asserts the stream gives want for one-shot, byte-by-byte and odd chunkings. */
static void expect_all(const struct fcgi_limits *lim, const struct sb *s, const char *want)
{
	static const size_t chunks[] = { SIZE_MAX, 1, 2, 3, 7, 8, 9, 64, 0, 0, 0 };
	size_t i;

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		struct fcgi_parser p;
		struct evlog l;

		memset(&l, 0, sizeof(l));
		fcgi_parser_init(&p, lim);
		run_chunks(&p, s->b, s->len, chunks[i], (unsigned)i * 7919u, &l);
		if (strcmp(l.s, want) != 0)
			fail_msg("chunk %zu: got '%s' want '%s'", chunks[i], l.s, want);
		fcgi_parser_free(&p);
	}
}

static void sb_pairs_basic(struct sb *pairs)
{
	nv(pairs, "SCRIPT_FILENAME", "/srv/index.php");
	nv(pairs, "REQUEST_METHOD", "POST");
	nv(pairs, "QUERY_STRING", "");
}

/* ---- records --------------------------------------------------------------- */

static void test_header_roundtrip(void **state)
{
	uint8_t b[8];
	struct fcgi_header h;

	(void)state;
	fcgi_header_encode(b, FCGI_STDOUT, 0xBEEF, 0xFFFF, 255);
	assert_memory_equal(b, "\x01\x06\xBE\xEF\xFF\xFF\xFF\x00", 8);
	fcgi_header_decode(b, &h);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.type, FCGI_STDOUT);
	assert_int_equal(h.request_id, 0xBEEF);
	assert_int_equal(h.content_length, 0xFFFF);
	assert_int_equal(h.padding_length, 255);
	assert_int_equal(fcgi_padding_for(0), 0);
	assert_int_equal(fcgi_padding_for(1), 7);
	assert_int_equal(fcgi_padding_for(8), 0);
	assert_int_equal(fcgi_padding_for(65535), 1);
}

static void test_begin_end_encode(void **state)
{
	uint8_t b[16];

	(void)state;
	fcgi_begin_request_encode(b, 0x0102, FCGI_FILTER, FCGI_KEEP_CONN);
	assert_memory_equal(b, "\x01\x01\x01\x02\x00\x08\x00\x00" "\x00\x03\x01\x00\x00\x00\x00\x00", 16);
	fcgi_end_request_encode(b, 7, 0x11223344, FCGI_OVERLOADED);
	assert_memory_equal(b, "\x01\x03\x00\x07\x00\x08\x00\x00" "\x11\x22\x33\x44\x02\x00\x00\x00", 16);
}

static void test_strerror(void **state)
{
	int e;

	(void)state;
	for (e = FCGI_OK; e <= FCGI_E_END_BODY; e++) {
		assert_non_null(fcgi_strerror((enum fcgi_error)e));
		assert_string_not_equal(fcgi_strerror((enum fcgi_error)e), "unknown FastCGI error");
	}
	assert_string_equal(fcgi_strerror(FCGI_E_VERSION), "bad FastCGI version");
	assert_string_equal(fcgi_strerror((enum fcgi_error)999), "unknown FastCGI error");
	assert_string_equal(fcgi_strerror((enum fcgi_error)-1), "unknown FastCGI error");
}

/* Walks encoded records: each at most 65535 bytes, padded to 8, none empty. */
static void check_stream(const uint8_t *b, size_t n, const uint8_t *data, size_t len)
{
	size_t off = 0, got = 0;

	while (off < n) {
		struct fcgi_header h;

		fcgi_header_decode(b + off, &h);
		assert_int_equal(h.version, 1);
		assert_int_equal(h.type, FCGI_STDOUT);
		assert_int_equal(h.request_id, 3);
		assert_true(h.content_length > 0);
		assert_int_equal((h.content_length + h.padding_length) % 8, 0);
		assert_memory_equal(b + off + 8, data + got, h.content_length);
		got += h.content_length;
		off += 8 + h.content_length + h.padding_length;
	}
	assert_int_equal(off, n);
	assert_int_equal(got, len);
}

static void test_stream_encode(void **state)
{
	static const size_t sizes[] = { 1, 7, 8, 9, 65534, 65535, 65536, 131070, 131071, 200001 };
	size_t i, cap = 300000;
	uint8_t *out = malloc(cap), *data = malloc(cap), hdr[8], pad;

	(void)state;
	for (i = 0; i < cap; i++)
		data[i] = (uint8_t)(i * 31 + 7);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t need = fcgi_stream_size(sizes[i]);
		size_t n = fcgi_stream_encode(out, cap, FCGI_STDOUT, 3, data, sizes[i]);

		assert_int_equal(n, need);
		check_stream(out, n, data, sizes[i]);
		assert_int_equal(fcgi_stream_encode(out, need - 1, FCGI_STDOUT, 3, data, sizes[i]), 0);
	}
	assert_int_equal(fcgi_stream_size(65535), 65544);
	assert_int_equal(fcgi_stream_size(65536), 65544 + 16);
	assert_int_equal(fcgi_stream_size(SIZE_MAX), SIZE_MAX);
	/* only the explicit empty call gives the terminator */
	assert_int_equal(fcgi_stream_size(0), 8);
	assert_int_equal(fcgi_stream_encode(out, cap, FCGI_STDERR, 3, NULL, 0), 8);
	assert_memory_equal(out, "\x01\x07\x00\x03\x00\x00\x00\x00", 8);
	assert_int_equal(fcgi_stream_encode(out, 7, FCGI_STDERR, 3, NULL, 0), 0);

	assert_int_equal(fcgi_stream_header(hdr, FCGI_STDOUT, 1, 100000, &pad), 65535);
	assert_int_equal(pad, 1);
	assert_memory_equal(hdr, "\x01\x06\x00\x01\xFF\xFF\x01\x00", 8);
	assert_int_equal(fcgi_stream_header(hdr, FCGI_STDOUT, 1, 5, &pad), 5);
	assert_int_equal(pad, 3);
	assert_int_equal(fcgi_stream_header(hdr, FCGI_STDOUT, 1, 0, &pad), 0);
	assert_int_equal(pad, 0);
	assert_memory_equal(fcgi_zero_pad, "\0\0\0\0\0\0\0\0", 8);
	free(out);
	free(data);
}

/* ---- name-value pairs ------------------------------------------------------ */

static void test_nv_roundtrip(void **state)
{
	static const size_t lens[] = { 0, 1, 127, 128, 129, 1000, 70000 };
	uint8_t *buf = malloc(200000);
	char *big = malloc(70000);
	size_t i, j;

	(void)state;
	memset(big, 'x', 70000);
	for (i = 0; i < 7; i++) {
		for (j = 0; j < 7; j++) {
			const uint8_t *n, *v;
			uint32_t nl, vl;
			size_t w = fcgi_nv_encode(buf, 200000, big, lens[i], big, lens[j]), k;

			assert_int_equal(w, fcgi_nv_size(lens[i], lens[j]));
			assert_int_equal(fcgi_nv_decode(buf, w, &n, &nl, &v, &vl), (ssize_t)w);
			assert_int_equal(nl, lens[i]);
			assert_int_equal(vl, lens[j]);
			assert_ptr_equal(v, n + nl);
			/* every proper prefix is incomplete, never an error */
			for (k = 0; k < w; k += (w > 300 ? 97 : 1))
				assert_int_equal(fcgi_nv_decode(buf, k, &n, &nl, &v, &vl), 0);
			assert_int_equal(fcgi_nv_encode(buf, w - 1, big, lens[i], big, lens[j]), 0);
		}
	}
	assert_int_equal(fcgi_nv_size(127, 128), 1 + 4 + 127 + 128);
	assert_int_equal(fcgi_nv_size(SIZE_MAX, 1), SIZE_MAX);
	assert_int_equal(fcgi_nv_size(SIZE_MAX - 5, 0), SIZE_MAX);
	assert_int_equal(fcgi_nv_encode(buf, 200000, big, 0x80000000u, big, 0), 0);
	assert_int_equal(fcgi_nv_encode(buf, 200000, big, 0, big, 0x80000000u), 0);
	free(buf);
	free(big);
}

static void test_nv_decode_edges(void **state)
{
	const uint8_t *n, *v;
	uint32_t nl, vl;

	(void)state;
	/* long form with the flag bit: 0xFFFFFFFF is 2^31-1, never complete here */
	assert_int_equal(fcgi_nv_decode((const uint8_t *)"\xFF\xFF\xFF\xFF\x00" "abc", 8,
					&n, &nl, &v, &vl), 0);
	/* both lengths near 2^31: the sum must not wrap */
	assert_int_equal(fcgi_nv_decode((const uint8_t *)"\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF" "ab", 10,
					&n, &nl, &v, &vl), 0);
	assert_int_equal(fcgi_nv_decode((const uint8_t *)"\x80\x00\x00\x01\x80\x00\x00\x01" "ab", 10,
					&n, &nl, &v, &vl), 10);
	assert_int_equal(nl, 1);
	assert_int_equal(vl, 1);
	/* truncated long-form lengths */
	assert_int_equal(fcgi_nv_decode((const uint8_t *)"\x80\x00\x00", 3, &n, &nl, &v, &vl), 0);
	assert_int_equal(fcgi_nv_decode((const uint8_t *)"\x01\x80\x00", 3, &n, &nl, &v, &vl), 0);
	assert_int_equal(fcgi_nv_decode((const uint8_t *)"", 0, &n, &nl, &v, &vl), 0);
	/* big-endian, not little-endian (slowcgi's 2013 bug) */
	assert_int_equal(fcgi_nv_decode((const uint8_t *)"\x80\x00\x01\x00\x00", 5,
					&n, &nl, &v, &vl), 0);
	/* empty name and value */
	assert_int_equal(fcgi_nv_decode((const uint8_t *)"\x00\x00", 2, &n, &nl, &v, &vl), 2);
	assert_int_equal(nl, 0);
	assert_int_equal(vl, 0);
}

/* ---- parser: the normal path ----------------------------------------------- */

static void test_parser_basic(void **state)
{
	struct sb s = { 0 }, pairs = { 0 };
	struct fcgi_parser p;
	struct evlog l;

	(void)state;
	sb_pairs_basic(&pairs);
	head(&s, 1, &pairs);
	stdin_str(&s, 1, "hello ");
	stdin_str(&s, 1, "world");
	rec(&s, FCGI_STDIN, 1, NULL, 0);
	assert_int_equal(run1(&p, NULL, &s, &l), 0);
	assert_string_equal(l.s, "PI:hello world;E");
	assert_int_equal(p.request_id, 1);
	assert_int_equal(p.role, FCGI_RESPONDER);
	assert_int_equal(p.flags, FCGI_KEEP_CONN);
	assert_true(p.params_done);
	assert_true(p.stdin_done);
	assert_false(p.aborted);
	assert_int_equal(p.nparams, 3);
	assert_string_equal(fcgi_param_value(&p, "SCRIPT_FILENAME"), "/srv/index.php");
	assert_string_equal(fcgi_param_value(&p, "REQUEST_METHOD"), "POST");
	assert_string_equal(fcgi_param_value(&p, "QUERY_STRING"), "");
	assert_int_equal(fcgi_param_get(&p, "REQUEST_METHOD")->value_len, 4);
	assert_int_equal(fcgi_param_get(&p, "REQUEST_METHOD")->name_len, 14);
	assert_null(fcgi_param_get(&p, "REQUEST"));
	assert_null(fcgi_param_value(&p, "request_method"));
	expect_all(NULL, &s, "PI:hello world;E");
	fcgi_parser_free(&p);
	fcgi_parser_free(&p);  /* idempotent */
	sb_free(&s);
	sb_free(&pairs);
}

static void test_parser_stdin_zero_copy(void **state)
{
	struct sb s = { 0 };
	struct fcgi_parser p;
	struct fcgi_event ev;
	size_t off = 0;
	ssize_t n;

	(void)state;
	head(&s, 9, NULL);
	stdin_str(&s, 9, "abc");
	fcgi_parser_init(&p, NULL);
	n = fcgi_parser_feed(&p, s.b, s.len, &ev);
	assert_int_equal(ev.kind, FCGI_EV_PARAMS_DONE);
	assert_int_equal(p.nparams, 0);
	off += (size_t)n;
	n = fcgi_parser_feed(&p, s.b + off, s.len - off, &ev);
	assert_int_equal(ev.kind, FCGI_EV_STDIN);
	assert_int_equal(ev.len, 3);
	assert_ptr_equal(ev.data, s.b + s.len - 8);  /* into the fed buffer */
	off += (size_t)n;
	/* padding left: consumed without an event */
	n = fcgi_parser_feed(&p, s.b + off, s.len - off, &ev);
	assert_int_equal(n, 5);
	assert_int_equal(ev.kind, FCGI_EV_NONE);
	/* feeding nothing is harmless */
	assert_int_equal(fcgi_parser_feed(&p, s.b, 0, &ev), 0);
	assert_int_equal(ev.kind, FCGI_EV_NONE);
	fcgi_parser_free(&p);
	sb_free(&s);
}

static void test_parser_max_content(void **state)
{
	struct sb s = { 0 };
	char *big = malloc(65535 + 1);
	struct fcgi_parser p;
	struct evlog l;

	(void)state;
	memset(big, 'z', 65535);
	big[65535] = '\0';
	head(&s, 1, NULL);
	rec(&s, FCGI_STDIN, 1, big, 65535);
	rec(&s, FCGI_STDIN, 1, NULL, 0);
	memset(&l, 0, sizeof(l));
	fcgi_parser_init(&p, NULL);
	/* log would overflow: count the bytes by hand */
	{
		size_t off = 0, body = 0;
		int ends = 0;

		while (off < s.len) {
			struct fcgi_event ev;
			ssize_t n = fcgi_parser_feed(&p, s.b + off, s.len - off > 1000 ? 1000 : s.len - off, &ev);

			assert_true(n >= 0);
			off += (size_t)n;
			if (ev.kind == FCGI_EV_STDIN)
				body += ev.len;
			ends += ev.kind == FCGI_EV_STDIN_END;
		}
		assert_int_equal(body, 65535);
		assert_int_equal(ends, 1);
	}
	fcgi_parser_free(&p);
	free(big);
	sb_free(&s);
}

/* Padding of 255 on every record, and zero-length records of every kind. */
static void test_parser_padding_and_empty(void **state)
{
	struct sb s = { 0 }, pairs = { 0 };
	uint8_t b[8] = { 0, FCGI_RESPONDER, 0, 0, 0, 0, 0, 0 };

	(void)state;
	nv(&pairs, "A", "1");
	rec_raw(&s, 1, FCGI_BEGIN_REQUEST, 4, b, 8, 255);
	rec_raw(&s, 1, FCGI_PARAMS, 4, pairs.b, pairs.len, 255);
	rec_raw(&s, 1, FCGI_PARAMS, 4, NULL, 0, 255);
	rec_raw(&s, 1, FCGI_STDIN, 4, "xy", 2, 255);
	rec_raw(&s, 1, FCGI_STDOUT, 4, NULL, 0, 255);     /* never received: skipped */
	rec_raw(&s, 1, 200, 4, "junk", 4, 255);           /* unknown type on a request */
	rec_raw(&s, 1, FCGI_STDIN, 4, NULL, 0, 255);
	rec_raw(&s, 1, FCGI_ABORT_REQUEST, 4, NULL, 0, 255);
	expect_all(NULL, &s, "PI:xy;EA");
	sb_free(&s);
	sb_free(&pairs);
}

static void test_parser_truncated_header(void **state)
{
	struct sb s = { 0 };
	struct fcgi_parser p;
	struct fcgi_event ev;

	(void)state;
	begin(&s, 1, FCGI_RESPONDER, 0);
	fcgi_parser_init(&p, NULL);
	assert_int_equal(fcgi_parser_feed(&p, s.b, 5, &ev), 5);
	assert_int_equal(ev.kind, FCGI_EV_NONE);
	assert_int_equal(p.hdr_have, 5);
	assert_int_equal(fcgi_parser_feed(&p, s.b + 5, 7, &ev), 7);
	assert_int_equal(ev.kind, FCGI_EV_NONE);
	assert_false(p.active);
	assert_int_equal(fcgi_parser_feed(&p, s.b + 12, 4, &ev), 4);
	assert_true(p.active);
	fcgi_parser_free(&p);
	sb_free(&s);
}

static void test_parser_bad_version(void **state)
{
	static const uint8_t vers[] = { 0, 2, 0xFF };
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		struct sb s = { 0 };
		char want[16];

		begin(&s, 1, FCGI_RESPONDER, 0);
		rec_raw(&s, vers[i], FCGI_PARAMS, 1, NULL, 0, 0);
		snprintf(want, sizeof(want), "X%d", FCGI_E_VERSION);
		expect_all(NULL, &s, want);
		sb_free(&s);
	}
}

/* The error is sticky: nothing more is parsed on that connection. */
static void test_parser_error_sticky(void **state)
{
	struct sb s = { 0 };
	struct fcgi_parser p;
	struct fcgi_event ev;

	(void)state;
	rec_raw(&s, 2, FCGI_BEGIN_REQUEST, 1, "\0\1\0\0\0\0\0\0", 8, 0);
	fcgi_parser_init(&p, NULL);
	assert_int_equal(fcgi_parser_feed(&p, s.b, s.len, &ev), -1);
	assert_int_equal(p.error, FCGI_E_VERSION);
	sb_free(&s);
	head(&s, 1, NULL);
	assert_int_equal(fcgi_parser_feed(&p, s.b, s.len, &ev), -1);
	fcgi_parser_reset(&p);
	assert_int_equal(fcgi_parser_feed(&p, s.b, s.len, &ev), -1);
	fcgi_parser_free(&p);
	sb_free(&s);
}

static void test_parser_begin_body(void **state)
{
	struct sb s = { 0 };
	char want[16];

	(void)state;
	snprintf(want, sizeof(want), "X%d", FCGI_E_BEGIN_BODY);
	rec(&s, FCGI_BEGIN_REQUEST, 1, "\0\1\0\0\0\0\0", 7);
	expect_all(NULL, &s, want);
	sb_free(&s);
	rec(&s, FCGI_BEGIN_REQUEST, 1, "\0\1\0\0\0\0\0\0\0", 9);
	expect_all(NULL, &s, want);
	sb_free(&s);
	rec(&s, FCGI_BEGIN_REQUEST, 1, NULL, 0);
	expect_all(NULL, &s, want);
	sb_free(&s);
}

static void test_parser_roles(void **state)
{
	struct sb s = { 0 };
	struct fcgi_parser p;
	struct evlog l;

	(void)state;
	/* unknown role: refused, then a good request on the same connection */
	begin(&s, 5, 0, 0);
	begin(&s, 6, 4, 0);
	begin(&s, 7, 0xFFFF, 0);
	rec(&s, FCGI_PARAMS, 5, NULL, 0);    /* id 5 is not active: ignored */
	begin(&s, 8, FCGI_AUTHORIZER, 0);
	rec(&s, FCGI_PARAMS, 8, NULL, 0);
	expect_all(NULL, &s,
		   "R:0103000500080000" "0000000003000000;"
		   "R:0103000600080000" "0000000003000000;"
		   "R:0103000700080000" "0000000003000000;"
		   "P");
	assert_int_equal(run1(&p, NULL, &s, &l), 0);
	assert_int_equal(p.role, FCGI_AUTHORIZER);
	assert_int_equal(p.request_id, 8);
	assert_int_equal(p.flags, 0);
	fcgi_parser_free(&p);
	sb_free(&s);
}

/* ---- parser: management records ------------------------------------------- */

static void test_parser_get_values(void **state)
{
	struct sb s = { 0 }, q = { 0 };
	struct fcgi_limits lim;

	(void)state;
	fcgi_limits_default(&lim);
	lim.max_conns = 50;
	lim.max_reqs = 1234567890;
	nv(&q, "FCGI_MAX_CONNS", "");
	nv(&q, "FCGI_UNKNOWN_THING", "");
	nv(&q, "FCGI_MAX_REQS", "");
	nv(&q, "FCGI_MPXS_CONNS", "");
	nv(&q, "FCGI_MAX_CONNS", "");     /* asked twice: answered once */
	rec(&s, FCGI_GET_VALUES, 0, q.b, q.len);
	/* 16+2 + 13+10+2 + 15+1+2 = 61 bytes of content, 3 of padding */
	expect_all(&lim, &s,
		   "R:010a0000003d0300"
		   "0e02" "464347495f4d41585f434f4e4e53" "3530"
		   "0d0a" "464347495f4d41585f52455153" "31323334353637383930"
		   "0f01" "464347495f4d5058535f434f4e4e53" "30"
		   "000000;");
	sb_free(&s);
	sb_free(&q);

	/* only what is asked; an empty query gets an empty result */
	nv(&q, "FCGI_MPXS_CONNS", "");
	rec(&s, FCGI_GET_VALUES, 0, q.b, q.len);
	rec(&s, FCGI_GET_VALUES, 0, NULL, 0);
	expect_all(NULL, &s,
		   "R:010a000000120600" "0f01" "464347495f4d5058535f434f4e4e53" "30" "000000000000;"
		   "R:010a000000000000;");
	sb_free(&s);
	sb_free(&q);
}

static void test_parser_get_values_bad(void **state)
{
	struct sb s = { 0 };
	uint8_t big[FCGI_MGMT_MAX + 1];
	char want[16];

	(void)state;
	memset(big, 0, sizeof(big));
	rec(&s, FCGI_GET_VALUES, 0, big, sizeof(big));
	snprintf(want, sizeof(want), "X%d", FCGI_E_MGMT_TOO_LARGE);
	expect_all(NULL, &s, want);
	sb_free(&s);
	/* a pair running past the record */
	rec(&s, FCGI_GET_VALUES, 0, "\x0e\x00" "FCGI_MAX", 10);
	snprintf(want, sizeof(want), "X%d", FCGI_E_NV_MALFORMED);
	expect_all(NULL, &s, want);
	sb_free(&s);
}

static void test_parser_unknown_mgmt(void **state)
{
	struct sb s = { 0 };

	(void)state;
	rec(&s, 42, 0, "whatever", 8);
	rec(&s, FCGI_BEGIN_REQUEST, 0, "\0\1\0\0\0\0\0\0", 8);  /* id 0 is management */
	rec(&s, FCGI_GET_VALUES_RESULT, 0, NULL, 0);
	rec_raw(&s, 1, 0xFF, 0, NULL, 0, 255);
	expect_all(NULL, &s,
		   "R:010b000000080000" "2a00000000000000;"
		   "R:010b000000080000" "0100000000000000;"
		   "R:010b000000080000" "0a00000000000000;"
		   "R:010b000000080000" "ff00000000000000;");
	sb_free(&s);
}

/* Management records may come at any time, even in the middle of streams. */
static void test_parser_mgmt_mid_request(void **state)
{
	struct sb s = { 0 }, pairs = { 0 }, q = { 0 };

	(void)state;
	nv(&pairs, "NAME", "value");
	nv(&q, "FCGI_MPXS_CONNS", "");
	begin(&s, 1, FCGI_RESPONDER, 0);
	rec(&s, FCGI_PARAMS, 1, pairs.b, 3);
	rec(&s, 99, 0, NULL, 0);
	rec(&s, FCGI_PARAMS, 1, pairs.b + 3, pairs.len - 3);
	rec(&s, FCGI_PARAMS, 1, NULL, 0);
	stdin_str(&s, 1, "ab");
	rec(&s, FCGI_GET_VALUES, 0, q.b, q.len);
	stdin_str(&s, 1, "cd");
	rec(&s, FCGI_STDIN, 1, NULL, 0);
	expect_all(NULL, &s,
		   "R:010b000000080000" "6300000000000000;"
		   "PI:ab;"
		   "R:010a000000120600" "0f01" "464347495f4d5058535f434f4e4e53" "30" "000000000000;"
		   "I:cd;E");
	sb_free(&s);
	sb_free(&pairs);
	sb_free(&q);
}

/* ---- parser: multiplexing and abort --------------------------------------- */

static void test_parser_cant_mpx(void **state)
{
	struct sb s = { 0 }, pairs = { 0 };
	char want[128];

	(void)state;
	nv(&pairs, "X", "1");
	begin(&s, 1, FCGI_RESPONDER, 0);
	rec(&s, FCGI_PARAMS, 1, pairs.b, pairs.len);
	begin(&s, 2, FCGI_RESPONDER, 0);             /* refused */
	rec(&s, FCGI_PARAMS, 2, "\x01\x01YZ", 4);     /* ignored: id 2 inactive */
	rec(&s, FCGI_STDIN, 2, "nope", 4);
	rec(&s, FCGI_ABORT_REQUEST, 2, NULL, 0);
	rec(&s, FCGI_PARAMS, 1, NULL, 0);
	rec(&s, FCGI_STDIN, 3, "nope", 4);
	stdin_str(&s, 1, "yes");
	rec(&s, FCGI_STDIN, 1, NULL, 0);
	expect_all(NULL, &s, "R:0103000200080000" "0000000001000000;" "PI:yes;E");
	/* the same id again while active is a broken peer */
	begin(&s, 1, FCGI_RESPONDER, 0);
	snprintf(want, sizeof(want),
		 "R:0103000200080000" "0000000001000000;" "PI:yes;EX%d", FCGI_E_UNEXPECTED);
	expect_all(NULL, &s, want);
	sb_free(&s);
	sb_free(&pairs);
}

static void test_parser_inactive_ignored(void **state)
{
	struct sb s = { 0 };

	(void)state;
	/* before any BEGIN_REQUEST every request record is ignored */
	rec(&s, FCGI_PARAMS, 1, "\x01\x01YZ", 4);
	rec(&s, FCGI_PARAMS, 1, NULL, 0);
	rec(&s, FCGI_STDIN, 1, "data", 4);
	rec(&s, FCGI_STDIN, 1, NULL, 0);
	rec(&s, FCGI_ABORT_REQUEST, 1, NULL, 0);
	rec(&s, FCGI_DATA, 1, "d", 1);
	head(&s, 1, NULL);
	expect_all(NULL, &s, "P");
	sb_free(&s);
}

static void test_parser_abort(void **state)
{
	struct sb s = { 0 };

	(void)state;
	head(&s, 1, NULL);
	stdin_str(&s, 1, "part");
	rec(&s, FCGI_ABORT_REQUEST, 1, NULL, 0);
	rec(&s, FCGI_ABORT_REQUEST, 1, "xx", 2);  /* reported once */
	stdin_str(&s, 1, "more");
	expect_all(NULL, &s, "PI:part;AI:more;");
	sb_free(&s);
	/* abort before params ended */
	begin(&s, 1, FCGI_RESPONDER, 0);
	rec(&s, FCGI_ABORT_REQUEST, 1, NULL, 0);
	expect_all(NULL, &s, "A");
	sb_free(&s);
}

/* ---- parser: stream order ----------------------------------------------- */

static void test_parser_order_errors(void **state)
{
	struct sb s = { 0 };
	char want[16];

	(void)state;
	snprintf(want, sizeof(want), "X%d", FCGI_E_UNEXPECTED);
	/* STDIN before PARAMS ended */
	begin(&s, 1, FCGI_RESPONDER, 0);
	stdin_str(&s, 1, "x");
	expect_all(NULL, &s, want);
	sb_free(&s);
	/* empty STDIN before PARAMS ended */
	begin(&s, 1, FCGI_RESPONDER, 0);
	rec(&s, FCGI_STDIN, 1, NULL, 0);
	expect_all(NULL, &s, want);
	sb_free(&s);

	snprintf(want, sizeof(want), "PX%d", FCGI_E_UNEXPECTED);
	/* PARAMS after the empty PARAMS */
	head(&s, 1, NULL);
	rec(&s, FCGI_PARAMS, 1, "\x01\x01YZ", 4);
	expect_all(NULL, &s, want);
	sb_free(&s);
	head(&s, 1, NULL);
	rec(&s, FCGI_PARAMS, 1, NULL, 0);
	expect_all(NULL, &s, want);
	sb_free(&s);
	/* DATA to a RESPONDER */
	head(&s, 1, NULL);
	rec(&s, FCGI_DATA, 1, "d", 1);
	expect_all(NULL, &s, want);
	sb_free(&s);

	/* STDIN after its end */
	snprintf(want, sizeof(want), "PEX%d", FCGI_E_UNEXPECTED);
	head(&s, 1, NULL);
	rec(&s, FCGI_STDIN, 1, NULL, 0);
	stdin_str(&s, 1, "late");
	expect_all(NULL, &s, want);
	sb_free(&s);
}

static void test_parser_filter_data(void **state)
{
	struct sb s = { 0 };
	char want[32];

	(void)state;
	begin(&s, 3, FCGI_FILTER, 0);
	rec(&s, FCGI_PARAMS, 3, NULL, 0);
	stdin_str(&s, 3, "in");
	rec(&s, FCGI_STDIN, 3, NULL, 0);
	rec(&s, FCGI_DATA, 3, "file", 4);
	rec(&s, FCGI_DATA, 3, "data", 4);
	rec(&s, FCGI_DATA, 3, NULL, 0);
	expect_all(NULL, &s, "PI:in;ED:filedata;F");
	rec(&s, FCGI_DATA, 3, "x", 1);
	snprintf(want, sizeof(want), "PI:in;ED:filedata;FX%d", FCGI_E_UNEXPECTED);
	expect_all(NULL, &s, want);
	sb_free(&s);
}

/* ---- parser: params -------------------------------------------------------- */

/* A pair cut at every possible byte between two PARAMS records. */
static void test_parser_params_split(void **state)
{
	struct sb pairs = { 0 };
	char big[300];
	size_t cut;

	(void)state;
	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	nv(&pairs, "SHORT", "1");
	nv(&pairs, "LONG_VALUE", big);                      /* 4-byte value length */
	nv_raw(&pairs, "FORCED", 6, "four", 4, 1);          /* long form, short lengths */
	for (cut = 1; cut < pairs.len; cut++) {  /* an empty record would end the stream */
		struct sb s = { 0 };
		struct fcgi_parser p;
		struct evlog l;

		begin(&s, 1, FCGI_RESPONDER, 0);
		rec(&s, FCGI_PARAMS, 1, pairs.b, cut);
		rec(&s, FCGI_PARAMS, 1, pairs.b + cut, pairs.len - cut);
		rec(&s, FCGI_PARAMS, 1, NULL, 0);
		if (cut % 37 == 0)
			expect_all(NULL, &s, "P");
		memset(&l, 0, sizeof(l));
		fcgi_parser_init(&p, NULL);
		assert_int_equal(run_chunks(&p, s.b, s.len, 1 + cut % 5, 0, &l), 0);
		assert_string_equal(l.s, "P");
		assert_int_equal(p.nparams, 3);
		assert_string_equal(fcgi_param_value(&p, "SHORT"), "1");
		assert_string_equal(fcgi_param_value(&p, "LONG_VALUE"), big);
		assert_string_equal(fcgi_param_value(&p, "FORCED"), "four");
		fcgi_parser_free(&p);
		sb_free(&s);
	}
	sb_free(&pairs);
}

static void test_parser_params_duplicate(void **state)
{
	struct sb s = { 0 }, pairs = { 0 };
	struct fcgi_parser p;
	struct evlog l;

	(void)state;
	nv(&pairs, "A", "first");
	nv(&pairs, "B", "b");
	nv(&pairs, "A", "last");
	nv_raw(&pairs, "NUL", 3, "x\0y", 3, 0);   /* values may hold NUL */
	head(&s, 1, &pairs);
	assert_int_equal(run1(&p, NULL, &s, &l), 0);
	assert_int_equal(p.nparams, 3);
	assert_string_equal(p.params[0].name, "A");
	assert_string_equal(p.params[0].value, "last");
	assert_int_equal(p.params[0].value_len, 4);
	assert_string_equal(p.params[1].name, "B");
	assert_int_equal(fcgi_param_get(&p, "NUL")->value_len, 3);
	assert_memory_equal(fcgi_param_get(&p, "NUL")->value, "x\0y", 4);
	fcgi_parser_free(&p);
	sb_free(&s);
	sb_free(&pairs);
}

/*
 * The lookup index: every name of a request with many params (lengths
 * around the hash's 8-byte words, names that are prefixes of one another)
 * is found with its value, near misses are not, and a duplicate keeps its
 * first position and its last value as the linear scan did.
 */
static void test_parser_params_index(void **state)
{
	struct sb s = { 0 }, pairs = { 0 };
	struct fcgi_parser p;
	struct evlog l;
	char name[64], val[64];
	size_t i;

	(void)state;
	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "HTTP_X_%zu", i);
		snprintf(val, sizeof(val), "v%zu", i);
		nv(&pairs, name, val);
	}
	for (i = 1; i <= 20; i++) {      /* "P", "PP", ... 20 x "P": every length to 20 */
		memset(name, 'P', i);
		name[i] = '\0';
		snprintf(val, sizeof(val), "len%zu", i);
		nv(&pairs, name, val);
	}
	nv(&pairs, "HTTP_X_7", "seven again");   /* duplicate: position 7, this value */
	nv(&pairs, "PPPPPPPPP", "nine again");
	head(&s, 1, &pairs);
	assert_int_equal(run1(&p, NULL, &s, &l), 0);
	assert_string_equal(l.s, "P");
	assert_int_equal(p.nparams, 320);
	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "HTTP_X_%zu", i);
		snprintf(val, sizeof(val), "v%zu", i);
		if (i == 7)
			snprintf(val, sizeof(val), "seven again");
		assert_string_equal(fcgi_param_value(&p, name), val);
		/* the one found is the param at the name's first position */
		assert_ptr_equal(fcgi_param_get(&p, name), &p.params[i]);
	}
	for (i = 1; i <= 20; i++) {
		memset(name, 'P', i);
		name[i] = '\0';
		snprintf(val, sizeof(val), i == 9 ? "nine again" : "len%zu", i);
		assert_string_equal(fcgi_param_value(&p, name), val);
		assert_int_equal(fcgi_param_get(&p, name)->name_len, i);
	}
	assert_null(fcgi_param_get(&p, "PPPPPPPPPPPPPPPPPPPPP"));   /* 21 */
	assert_null(fcgi_param_get(&p, "HTTP_X_300"));
	assert_null(fcgi_param_get(&p, "HTTP_X_"));
	assert_null(fcgi_param_get(&p, "HTTP_X_1 "));
	assert_null(fcgi_param_get(&p, "http_x_1"));
	assert_null(fcgi_param_get(&p, "p"));
	assert_null(fcgi_param_get(&p, ""));
	fcgi_parser_free(&p);
	sb_free(&s);
	sb_free(&pairs);
}

/* The index of a kept connection's previous request answers nothing for the next. */
static void test_parser_params_index_keepalive(void **state)
{
	struct sb s1 = { 0 }, s2 = { 0 }, pairs = { 0 };
	struct fcgi_parser p;
	struct evlog l;
	char name[32];
	size_t i;

	(void)state;
	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "FIRST_%zu", i);
		nv(&pairs, name, "1");
	}
	head(&s1, 1, &pairs);
	sb_free(&pairs);
	nv(&pairs, "SECOND", "2");
	nv(&pairs, "SECOND", "3");
	head(&s2, 2, &pairs);
	assert_int_equal(run1(&p, NULL, &s1, &l), 0);
	assert_int_equal(p.nparams, 40);
	assert_string_equal(fcgi_param_value(&p, "FIRST_39"), "1");
	fcgi_parser_reset(&p);
	assert_null(fcgi_param_get(&p, "FIRST_0"));
	memset(&l, 0, sizeof(l));
	assert_int_equal(run_chunks(&p, s2.b, s2.len, 2, 0, &l), 0);
	assert_int_equal(p.nparams, 1);
	assert_string_equal(fcgi_param_value(&p, "SECOND"), "3");
	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "FIRST_%zu", i);
		assert_null(fcgi_param_get(&p, name));
	}
	fcgi_parser_free(&p);
	sb_free(&s1);
	sb_free(&s2);
	sb_free(&pairs);
}

static void expect_params_error(const struct fcgi_limits *lim, const struct sb *pairs,
				enum fcgi_error err)
{
	struct sb s = { 0 };
	char want[16];
	size_t off = 0;

	begin(&s, 1, FCGI_RESPONDER, 0);
	while (off < pairs->len) {  /* records of at most 65535 bytes */
		size_t n = pairs->len - off > 65535 ? 65535 : pairs->len - off;

		rec(&s, FCGI_PARAMS, 1, pairs->b + off, n);
		off += n;
	}
	rec(&s, FCGI_PARAMS, 1, NULL, 0);
	snprintf(want, sizeof(want), "X%d", err);
	expect_all(lim, &s, want);
	sb_free(&s);
}

static void test_parser_params_malformed(void **state)
{
	struct sb pairs = { 0 };

	(void)state;
	/* a pair running past the end of the stream */
	nv(&pairs, "OK", "1");
	sb_put(&pairs, "\x05\x05" "ab", 4);
	expect_params_error(NULL, &pairs, FCGI_E_NV_MALFORMED);
	sb_free(&pairs);
	/* 4-byte lengths with the high bit: 2^31-1 */
	sb_put(&pairs, "\xFF\xFF\xFF\xFF\x01" "abc", 8);
	expect_params_error(NULL, &pairs, FCGI_E_NV_MALFORMED);
	sb_free(&pairs);
	/* both lengths near 2^31, would wrap a 32-bit sum */
	sb_put(&pairs, "\xFF\xFF\xFF\xF0\x80\x00\x00\x20" "abcdefgh", 16);
	expect_params_error(NULL, &pairs, FCGI_E_NV_MALFORMED);
	sb_free(&pairs);
	/* a truncated long-form length */
	sb_put(&pairs, "\x01\x80\x00", 3);
	expect_params_error(NULL, &pairs, FCGI_E_NV_MALFORMED);
	sb_free(&pairs);
	/* a lone length byte */
	sb_put(&pairs, "\x03", 1);
	expect_params_error(NULL, &pairs, FCGI_E_NV_MALFORMED);
	sb_free(&pairs);
}

static void test_parser_bad_names(void **state)
{
	struct sb pairs = { 0 };

	(void)state;
	nv(&pairs, "", "empty name");
	expect_params_error(NULL, &pairs, FCGI_E_BAD_NAME);
	sb_free(&pairs);
	nv_raw(&pairs, "A\0B", 3, "v", 1, 0);
	expect_params_error(NULL, &pairs, FCGI_E_BAD_NAME);
	sb_free(&pairs);
	nv(&pairs, "A=B", "v");
	expect_params_error(NULL, &pairs, FCGI_E_BAD_NAME);
	sb_free(&pairs);
	nv(&pairs, "=", "");
	expect_params_error(NULL, &pairs, FCGI_E_BAD_NAME);
	sb_free(&pairs);
}

static void test_parser_limits(void **state)
{
	struct sb pairs = { 0 };
	struct fcgi_limits lim;
	char *big = malloc(200000);
	char name[16];
	int i;

	(void)state;
	memset(big, 'n', 199999);
	big[199999] = '\0';

	/* name too long: default 1024 */
	big[1025] = '\0';
	nv(&pairs, big, "v");
	expect_params_error(NULL, &pairs, FCGI_E_NAME_TOO_LONG);
	sb_free(&pairs);
	big[1024] = '\0';
	{
		struct sb s = { 0 };

		nv(&pairs, big, "v");   /* exactly the limit is fine */
		head(&s, 1, &pairs);
		expect_all(NULL, &s, "P");
		sb_free(&s);
		sb_free(&pairs);
	}
	memset(big, 'n', 199999);

	/* one value over 128 KiB: refused while the raw bytes still arrive */
	nv(&pairs, "BIG", big);
	expect_params_error(NULL, &pairs, FCGI_E_PARAMS_TOO_LARGE);
	sb_free(&pairs);

	/* names + values just over a small limit, found at decode time */
	fcgi_limits_default(&lim);
	lim.max_params_size = 100;
	nv(&pairs, "AAAAAAAAAA", "0123456789012345678901234567890123456789");
	nv(&pairs, "BBBBBBBBBB", "0123456789012345678901234567890123456789a");
	expect_params_error(&lim, &pairs, FCGI_E_PARAMS_TOO_LARGE);
	sb_free(&pairs);
	nv(&pairs, "AAAAAAAAAA", "0123456789012345678901234567890123456789");
	nv(&pairs, "BBBBBBBBBB", "0123456789012345678901234567890123456789");
	{
		struct sb s = { 0 };

		head(&s, 1, &pairs);
		expect_all(&lim, &s, "P");
		sb_free(&s);
	}
	sb_free(&pairs);

	/* too many: 1025 distinct small pairs */
	for (i = 0; i < 1025; i++) {
		snprintf(name, sizeof(name), "N%d", i);
		nv(&pairs, name, "");
	}
	expect_params_error(NULL, &pairs, FCGI_E_PARAMS_TOO_MANY);
	sb_free(&pairs);
	/* duplicates count as pairs too */
	lim.max_params_size = 0;    /* zero takes the default */
	lim.max_params_count = 3;
	for (i = 0; i < 4; i++)
		nv(&pairs, "SAME", "");
	expect_params_error(&lim, &pairs, FCGI_E_PARAMS_TOO_MANY);
	sb_free(&pairs);
	free(big);
}

/* Raw bytes are bounded while they accumulate: the buffer never grows past the limit. */
static void test_parser_params_raw_bound(void **state)
{
	struct sb s = { 0 };
	struct fcgi_limits lim;
	struct fcgi_parser p;
	struct fcgi_event ev;
	uint8_t junk[1000];
	size_t off = 0;
	ssize_t n = 0;
	int i;

	(void)state;
	memset(junk, 0x01, sizeof(junk));
	fcgi_limits_default(&lim);
	lim.max_params_size = 1000;
	lim.max_params_count = 10;    /* raw bound 1000 + 80 */
	begin(&s, 1, FCGI_RESPONDER, 0);
	for (i = 0; i < 5; i++)
		rec(&s, FCGI_PARAMS, 1, junk, sizeof(junk));
	fcgi_parser_init(&p, &lim);
	while (off < s.len && (n = fcgi_parser_feed(&p, s.b + off, s.len - off, &ev)) > 0)
		off += (size_t)n;
	assert_int_equal(n, -1);
	assert_int_equal(p.error, FCGI_E_PARAMS_TOO_LARGE);
	assert_true(p.nvbuf_cap <= 1080);
	assert_true(off < 16 + 2 * 1008);
	fcgi_parser_free(&p);
	sb_free(&s);
}

/* ---- parser: keep-alive ------------------------------------------------- */

static void test_parser_keepalive(void **state)
{
	struct sb s1 = { 0 }, s2 = { 0 }, pairs = { 0 };
	struct fcgi_parser p;
	struct evlog l;
	uint8_t *nvbuf;

	(void)state;
	sb_pairs_basic(&pairs);
	head(&s1, 1, &pairs);
	stdin_str(&s1, 1, "one");
	rec(&s1, FCGI_STDIN, 1, NULL, 0);
	sb_free(&pairs);
	nv(&pairs, "REQUEST_METHOD", "GET");
	head(&s2, 2, &pairs);
	rec(&s2, FCGI_STDIN, 2, NULL, 0);

	assert_int_equal(run1(&p, NULL, &s1, &l), 0);
	assert_string_equal(l.s, "PI:one;E");
	nvbuf = p.nvbuf;
	fcgi_parser_reset(&p);
	assert_false(p.active);
	assert_int_equal(p.nparams, 0);
	assert_null(fcgi_param_get(&p, "REQUEST_METHOD"));
	memset(&l, 0, sizeof(l));
	assert_int_equal(run_chunks(&p, s2.b, s2.len, 3, 0, &l), 0);
	assert_string_equal(l.s, "PE");
	assert_ptr_equal(p.nvbuf, nvbuf);    /* buffers kept */
	assert_int_equal(p.request_id, 2);
	assert_int_equal(p.nparams, 1);
	assert_string_equal(fcgi_param_value(&p, "REQUEST_METHOD"), "GET");
	assert_null(fcgi_param_value(&p, "SCRIPT_FILENAME"));
	/* after the request ends, the old id's records are ignored */
	fcgi_parser_reset(&p);
	memset(&l, 0, sizeof(l));
	assert_int_equal(run_chunks(&p, s1.b + 16, s1.len - 16, 5, 0, &l), 0);
	assert_string_equal(l.s, "");
	fcgi_parser_free(&p);
	sb_free(&s1);
	sb_free(&s2);
	sb_free(&pairs);
}

/* A request finished early (body not read): the rest of its record is skipped. */
static void test_parser_reset_mid_record(void **state)
{
	struct sb s = { 0 };
	struct fcgi_parser p;
	struct fcgi_event ev;
	struct evlog l;
	size_t off = 0;
	ssize_t n;

	(void)state;
	head(&s, 1, NULL);
	stdin_str(&s, 1, "0123456789");
	head(&s, 2, NULL);
	fcgi_parser_init(&p, NULL);
	n = fcgi_parser_feed(&p, s.b, s.len, &ev);
	assert_int_equal(ev.kind, FCGI_EV_PARAMS_DONE);
	off += (size_t)n;
	n = fcgi_parser_feed(&p, s.b + off, 12, &ev);   /* header + 4 body bytes */
	assert_int_equal(ev.kind, FCGI_EV_STDIN);
	assert_int_equal(ev.len, 4);
	off += (size_t)n;
	fcgi_parser_reset(&p);
	memset(&l, 0, sizeof(l));
	assert_int_equal(run_chunks(&p, s.b + off, s.len - off, SIZE_MAX, 0, &l), 0);
	assert_string_equal(l.s, "P");
	assert_int_equal(p.request_id, 2);
	fcgi_parser_free(&p);
	sb_free(&s);
}

/* ---- parser: feeding equivalence on assorted streams ------------------- */

static void test_parser_equivalence(void **state)
{
	struct sb s = { 0 }, pairs = { 0 }, q = { 0 };
	char want[512];

	(void)state;
	sb_pairs_basic(&pairs);
	nv(&q, "FCGI_MAX_REQS", "");
	/* a busy connection: refusals, management, two requests in a row */
	begin(&s, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
	rec(&s, FCGI_GET_VALUES, 0, q.b, q.len);
	rec(&s, FCGI_PARAMS, 1, pairs.b, 10);
	begin(&s, 2, FCGI_RESPONDER, 0);
	rec(&s, FCGI_PARAMS, 1, pairs.b + 10, pairs.len - 10);
	rec_raw(&s, 1, FCGI_PARAMS, 1, NULL, 0, 17);
	rec_raw(&s, 1, FCGI_STDIN, 1, "body-1", 6, 0);
	rec(&s, FCGI_UNKNOWN_TYPE, 0, NULL, 0);
	rec(&s, FCGI_STDIN, 1, "body-2", 6);
	rec(&s, FCGI_STDIN, 1, NULL, 0);
	rec(&s, FCGI_ABORT_REQUEST, 1, NULL, 0);
	expect_all(NULL, &s,
		   "R:010a000000100000" "0d01" "464347495f4d41585f52455153" "31;"
		   "R:0103000200080000" "0000000001000000;"
		   "PI:body-1;"
		   "R:010b000000080000" "0b00000000000000;"
		   "I:body-2;EA");
	/* and an error at the end of it */
	rec(&s, FCGI_PARAMS, 1, "\x01\x01YZ", 4);
	snprintf(want, sizeof(want), "%s%d",
		 "R:010a000000100000" "0d01" "464347495f4d41585f52455153" "31;"
		 "R:0103000200080000" "0000000001000000;"
		 "PI:body-1;"
		 "R:010b000000080000" "0b00000000000000;"
		 "I:body-2;EAX", FCGI_E_UNEXPECTED);
	expect_all(NULL, &s, want);
	sb_free(&s);
	sb_free(&pairs);
	sb_free(&q);
}

static void test_limits_default(void **state)
{
	struct fcgi_limits l;
	struct fcgi_parser p;

	(void)state;
	fcgi_limits_default(&l);
	assert_int_equal(l.max_params_size, 128 * 1024);
	assert_int_equal(l.max_params_count, 1024);
	assert_int_equal(l.max_name_len, 1024);
	memset(&l, 0, sizeof(l));
	fcgi_parser_init(&p, &l);
	assert_int_equal(p.limits.max_params_size, FCGI_DEFAULT_MAX_PARAMS_SIZE);
	assert_int_equal(p.limits.max_params_count, FCGI_DEFAULT_MAX_PARAMS_COUNT);
	assert_int_equal(p.limits.max_name_len, FCGI_DEFAULT_MAX_NAME_LEN);
	fcgi_parser_free(&p);
}

/* ---- response reader ------------------------------------------------------- */

struct resp_log {
	struct sb out, err;
	int ends, others;
	uint32_t app_status;
	uint8_t protocol_status, other_type;
	enum fcgi_error error;
};

static int resp_run(const struct sb *s, size_t chunk, struct resp_log *rl)
{
	struct fcgi_resp_reader r;
	size_t off = 0;

	memset(rl, 0, sizeof(*rl));
	fcgi_resp_reader_init(&r);
	while (off < s->len) {
		struct fcgi_resp_event ev;
		size_t c = s->len - off < chunk ? s->len - off : chunk;
		ssize_t n = fcgi_resp_reader_feed(&r, s->b + off, c, &ev);

		if (n < 0) {
			rl->error = r.error;
			return -1;
		}
		off += (size_t)n;
		switch (ev.kind) {
		case FCGI_RESP_STDOUT: sb_put(&rl->out, ev.data, ev.len); break;
		case FCGI_RESP_STDERR: sb_put(&rl->err, ev.data, ev.len); break;
		case FCGI_RESP_END:
			rl->ends++;
			rl->app_status = ev.app_status;
			rl->protocol_status = ev.protocol_status;
			assert_int_equal(ev.request_id, 1);
			break;
		case FCGI_RESP_OTHER:
			rl->others++;
			rl->other_type = ev.other_type;
			break;
		default:
			assert_int_equal(n, (ssize_t)c);
		}
	}
	return 0;
}

static void resp_log_free(struct resp_log *rl)
{
	sb_free(&rl->out);
	sb_free(&rl->err);
}

static void test_resp_reader(void **state)
{
	static const size_t chunks[] = { SIZE_MAX, 1, 2, 5, 8, 13 };
	struct sb s = { 0 };
	uint8_t end[16], *big = malloc(70000);
	size_t i, n;

	(void)state;
	memset(big, 'B', 70000);
	n = fcgi_stream_size(70000);
	sb_put(&s, NULL, 0);
	{
		uint8_t *tmp = malloc(n);

		assert_int_equal(fcgi_stream_encode(tmp, n, FCGI_STDOUT, 1, big, 70000), n);
		rec(&s, FCGI_STDOUT, 1, "Status: 200\r\n\r\n", 15);
		sb_put(&s, tmp, n);
		free(tmp);
	}
	rec_raw(&s, 1, FCGI_STDERR, 1, "warn", 4, 255);
	rec(&s, FCGI_GET_VALUES_RESULT, 0, "\x01\x01" "ab", 4);
	rec(&s, FCGI_STDERR, 1, NULL, 0);
	rec(&s, FCGI_STDOUT, 1, NULL, 0);
	fcgi_end_request_encode(end, 1, 0x01020304, FCGI_REQUEST_COMPLETE);
	sb_put(&s, end, 16);
	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		struct resp_log rl;

		assert_int_equal(resp_run(&s, chunks[i], &rl), 0);
		assert_int_equal(rl.out.len, 15 + 70000);
		assert_memory_equal(rl.out.b, "Status: 200\r\n\r\n", 15);
		assert_memory_equal(rl.out.b + 15, big, 70000);
		assert_int_equal(rl.err.len, 4);
		assert_memory_equal(rl.err.b, "warn", 4);
		assert_int_equal(rl.ends, 1);
		assert_int_equal(rl.app_status, 0x01020304);
		assert_int_equal(rl.protocol_status, FCGI_REQUEST_COMPLETE);
		assert_int_equal(rl.others, 1);
		assert_int_equal(rl.other_type, FCGI_GET_VALUES_RESULT);
		resp_log_free(&rl);
	}
	sb_free(&s);
	free(big);
}

static void test_limit_errors_are_told_apart(void **state)
{
	(void)state;
	assert_true(fcgi_error_is_limit(FCGI_E_PARAMS_TOO_LARGE));
	assert_true(fcgi_error_is_limit(FCGI_E_PARAMS_TOO_MANY));
	assert_true(fcgi_error_is_limit(FCGI_E_NAME_TOO_LONG));
	assert_false(fcgi_error_is_limit(FCGI_E_NV_MALFORMED));
	assert_false(fcgi_error_is_limit(FCGI_E_VERSION));
	assert_false(fcgi_error_is_limit(FCGI_E_NO_MEMORY));
}

static void test_resp_reader_errors(void **state)
{
	struct sb s = { 0 };
	struct resp_log rl;
	uint8_t end[16];

	(void)state;
	rec_raw(&s, 0, FCGI_STDOUT, 1, "x", 1, 0);
	assert_int_equal(resp_run(&s, SIZE_MAX, &rl), -1);
	assert_int_equal(rl.error, FCGI_E_VERSION);
	resp_log_free(&rl);
	sb_free(&s);

	rec(&s, FCGI_END_REQUEST, 1, "\0\0\0\0\0\0\0", 7);
	assert_int_equal(resp_run(&s, 1, &rl), -1);
	assert_int_equal(rl.error, FCGI_E_END_BODY);
	resp_log_free(&rl);
	sb_free(&s);

	/* refused by protocol status, and a truncated stream (no END yet) */
	fcgi_end_request_encode(end, 1, 0, FCGI_OVERLOADED);
	sb_put(&s, end, 16);
	rec(&s, FCGI_STDOUT, 1, "abc", 3);
	s.len -= 6;     /* cut inside the content */
	assert_int_equal(resp_run(&s, 3, &rl), 0);
	assert_int_equal(rl.ends, 1);
	assert_int_equal(rl.protocol_status, FCGI_OVERLOADED);
	assert_int_equal(rl.out.len, 2);
	resp_log_free(&rl);
	sb_free(&s);
}


/*
 * A connection that ends in the middle of a record (or after an error) must
 * leave nothing to the next connection the same parser serves.
 */
static void test_restart_after_cut_and_error(void **state)
{
	(void)state;
	struct sb pairs = { 0 }, first = { 0 }, second = { 0 }, bad = { 0 };
	sb_pairs_basic(&pairs);
	head(&first, 1, &pairs);
	stdin_str(&first, 1, "0123456789abcdef");
	head(&second, 1, &pairs);
	stdin_str(&second, 1, "ok");
	rec(&second, FCGI_STDIN, 1, NULL, 0);
	rec_raw(&bad, 7, FCGI_STDIN, 1, NULL, 0, 0);

	struct fcgi_parser p;
	struct evlog l;
	fcgi_parser_init(&p, NULL);
	/* Cut inside the STDIN record's content. */
	memset(&l, 0, sizeof(l));
	assert_int_equal(run_chunks(&p, first.b, first.len - 5, SIZE_MAX, 0, &l), 0);
	fcgi_parser_restart(&p);
	memset(&l, 0, sizeof(l));
	assert_int_equal(run_chunks(&p, second.b, second.len, SIZE_MAX, 0, &l), 0);
	assert_string_equal(l.s, "PI:ok;E");
	/* After a protocol error too. */
	fcgi_parser_restart(&p);
	memset(&l, 0, sizeof(l));
	assert_int_equal(run_chunks(&p, bad.b, bad.len, SIZE_MAX, 0, &l), -1);
	fcgi_parser_restart(&p);
	memset(&l, 0, sizeof(l));
	assert_int_equal(run_chunks(&p, second.b, second.len, 1, 0, &l), 0);
	assert_string_equal(l.s, "PI:ok;E");
	fcgi_parser_free(&p);
	sb_free(&pairs);
	sb_free(&first);
	sb_free(&second);
	sb_free(&bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_restart_after_cut_and_error),
		cmocka_unit_test(test_begin_end_encode),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_stream_encode),
		cmocka_unit_test(test_nv_roundtrip),
		cmocka_unit_test(test_nv_decode_edges),
		cmocka_unit_test(test_parser_basic),
		cmocka_unit_test(test_parser_stdin_zero_copy),
		cmocka_unit_test(test_parser_max_content),
		cmocka_unit_test(test_parser_padding_and_empty),
		cmocka_unit_test(test_parser_truncated_header),
		cmocka_unit_test(test_parser_bad_version),
		cmocka_unit_test(test_parser_error_sticky),
		cmocka_unit_test(test_parser_begin_body),
		cmocka_unit_test(test_parser_roles),
		cmocka_unit_test(test_parser_get_values),
		cmocka_unit_test(test_parser_get_values_bad),
		cmocka_unit_test(test_parser_unknown_mgmt),
		cmocka_unit_test(test_parser_mgmt_mid_request),
		cmocka_unit_test(test_parser_cant_mpx),
		cmocka_unit_test(test_parser_inactive_ignored),
		cmocka_unit_test(test_parser_abort),
		cmocka_unit_test(test_parser_order_errors),
		cmocka_unit_test(test_parser_filter_data),
		cmocka_unit_test(test_parser_params_split),
		cmocka_unit_test(test_parser_params_duplicate),
		cmocka_unit_test(test_parser_params_index),
		cmocka_unit_test(test_parser_params_index_keepalive),
		cmocka_unit_test(test_parser_params_malformed),
		cmocka_unit_test(test_parser_bad_names),
		cmocka_unit_test(test_parser_limits),
		cmocka_unit_test(test_parser_params_raw_bound),
		cmocka_unit_test(test_parser_keepalive),
		cmocka_unit_test(test_parser_reset_mid_record),
		cmocka_unit_test(test_parser_equivalence),
		cmocka_unit_test(test_limits_default),
		cmocka_unit_test(test_resp_reader),
		cmocka_unit_test(test_resp_reader_errors),
		cmocka_unit_test(test_limit_errors_are_told_apart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
