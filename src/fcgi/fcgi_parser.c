/*
 * Incremental server-side request parser.  Bytes go in in pieces of any
 * size; at most one event comes out per call.  The state says what the
 * content of the current record is for; every decision about a record is
 * made once, at its header or at the end of its content, so the events do
 * not depend on how the input was cut.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi/fcgi.h"

enum pstate {
	P_HEADER = 0,  /* reading the 8-byte header */
	P_PADDING,
	P_SKIP,        /* content of a record we ignore */
	P_ABORT,       /* ABORT_REQUEST for the active request */
	P_UNKNOWN,     /* management record of a type we do not know */
	P_BEGIN,
	P_GET_VALUES,
	P_PARAMS,
	P_STDIN,
	P_DATA,
	P_ERROR,       /* sticky: the connection must be closed */
};

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

static int fail(struct fcgi_parser *p, enum fcgi_error e)
{
	p->error = e;
	p->state = P_ERROR;
	return -1;
}

void fcgi_limits_default(struct fcgi_limits *l)
{
	l->max_params_size = FCGI_DEFAULT_MAX_PARAMS_SIZE;
	l->max_params_count = FCGI_DEFAULT_MAX_PARAMS_COUNT;
	l->max_name_len = FCGI_DEFAULT_MAX_NAME_LEN;
	l->max_conns = 1;
	l->max_reqs = 1;
}

int fcgi_error_is_limit(int error)
{
	return error == FCGI_E_PARAMS_TOO_LARGE || error == FCGI_E_PARAMS_TOO_MANY ||
	       error == FCGI_E_NAME_TOO_LONG;
}

void fcgi_parser_init(struct fcgi_parser *p, const struct fcgi_limits *limits)
{
	struct fcgi_limits def;

	fcgi_limits_default(&def);
	memset(p, 0, sizeof(*p));
	p->limits = limits ? *limits : def;
	if (!p->limits.max_params_size)
		p->limits.max_params_size = def.max_params_size;
	if (!p->limits.max_params_count)
		p->limits.max_params_count = def.max_params_count;
	if (!p->limits.max_name_len)
		p->limits.max_name_len = def.max_name_len;
	p->state = P_HEADER;
}

void fcgi_parser_reset(struct fcgi_parser *p)
{
	p->active = 0;
	p->request_id = 0;
	p->role = 0;
	p->flags = 0;
	p->params_done = p->stdin_done = p->data_done = p->aborted = 0;
	p->nvbuf_len = p->arena_len = p->nparams = 0;
	/* The rest of a record of the finished request is no longer ours. */
	if (p->state == P_PARAMS || p->state == P_STDIN || p->state == P_DATA ||
	    p->state == P_ABORT)
		p->state = P_SKIP;
}

void fcgi_parser_restart(struct fcgi_parser *p)
{
	fcgi_parser_reset(p);
	/* A new connection: nothing of the previous one's framing or error remains. */
	p->state = P_HEADER;
	p->hdr_have = 0;
	p->content_left = p->padding_left = 0;
	p->rec_have = 0;
	p->mgmt_have = 0;
	p->reply_len = 0;
	p->error = FCGI_OK;
}

void fcgi_parser_free(struct fcgi_parser *p)
{
	free(p->nvbuf);
	free(p->arena);
	free(p->params);
	free(p->index);
	p->nvbuf = NULL;
	p->arena = NULL;
	p->params = NULL;
	p->index = NULL;
	p->index_cap = 0;
	p->nvbuf_len = p->nvbuf_cap = 0;
	p->arena_len = p->arena_cap = 0;
	p->nparams = p->params_cap = 0;
}

/* ---- replies ------------------------------------------------------------ */

static void reply(struct fcgi_parser *p, struct fcgi_event *ev)
{
	ev->kind = FCGI_EV_REPLY;
	ev->data = p->reply;
	ev->len = p->reply_len;
}

static void reply_end(struct fcgi_parser *p, struct fcgi_event *ev, uint8_t status)
{
	fcgi_end_request_encode(p->reply, p->cur.request_id, 0, status);
	p->reply_len = FCGI_END_REQUEST_LEN;
	reply(p, ev);
}

/* FCGI_UnknownTypeBody (spec §4.2): the type, 7 reserved bytes. */
static void reply_unknown_type(struct fcgi_parser *p, struct fcgi_event *ev)
{
	fcgi_header_encode(p->reply, FCGI_UNKNOWN_TYPE, FCGI_NULL_REQUEST_ID, 8, 0);
	memset(p->reply + FCGI_HEADER_LEN, 0, 8);
	p->reply[FCGI_HEADER_LEN] = p->cur.type;
	p->reply_len = 16;
	reply(p, ev);
}

/*
 * FCGI_GET_VALUES (spec §4.1): answer the variables we know, only those
 * asked, each once.  We never multiplex, so FCGI_MPXS_CONNS is 0.
 */
static int on_get_values(struct fcgi_parser *p, struct fcgi_event *ev)
{
	static const char *const names[] = { "FCGI_MAX_CONNS", "FCGI_MAX_REQS",
					     "FCGI_MPXS_CONNS" };
	unsigned vals[3] = { p->limits.max_conns, p->limits.max_reqs, 0 };
	uint8_t *body = p->reply + FCGI_HEADER_LEN;
	size_t off = 0, len = 0, i;
	unsigned answered = 0;

	while (off < p->mgmt_have) {
		const uint8_t *n, *v;
		uint32_t nl, vl;
		ssize_t r = fcgi_nv_decode(p->mgmt + off, p->mgmt_have - off, &n, &nl, &v, &vl);

		if (r <= 0)
			return fail(p, FCGI_E_NV_MALFORMED);
		off += (size_t)r;
		for (i = 0; i < 3; i++) {
			char num[16];
			int nn;

			if ((answered & (1u << i)) || nl != strlen(names[i]) ||
			    memcmp(n, names[i], nl) != 0)
				continue;
			answered |= 1u << i;
			nn = snprintf(num, sizeof(num), "%u", vals[i]);
			/* 3 pairs of at most 2 + 15 + 10 bytes: always fits in reply */
			len += fcgi_nv_encode(body + len, sizeof(p->reply) - FCGI_HEADER_LEN - 8 - len,
					      names[i], nl, num, (size_t)nn);
		}
	}
	fcgi_header_encode(p->reply, FCGI_GET_VALUES_RESULT, FCGI_NULL_REQUEST_ID,
			   (uint16_t)len, fcgi_padding_for(len));
	memset(body + len, 0, fcgi_padding_for(len));
	p->reply_len = FCGI_HEADER_LEN + len + fcgi_padding_for(len);
	reply(p, ev);
	return 0;
}

/* ---- requests ----------------------------------------------------------- */

/*
 * One request at a time (we answer FCGI_MPXS_CONNS=0): a BEGIN_REQUEST for
 * another id while one is active is refused with FCGI_CANT_MPX_CONN, an
 * unknown role with FCGI_UNKNOWN_ROLE (spec §5.1, §5.5).
 */
static int on_begin(struct fcgi_parser *p, struct fcgi_event *ev)
{
	uint16_t role = (uint16_t)((p->rec[0] << 8) | p->rec[1]);

	if (p->active) {
		if (p->cur.request_id == p->request_id)
			return fail(p, FCGI_E_UNEXPECTED);
		reply_end(p, ev, FCGI_CANT_MPX_CONN);
		return 0;
	}
	if (role != FCGI_RESPONDER && role != FCGI_AUTHORIZER && role != FCGI_FILTER) {
		reply_end(p, ev, FCGI_UNKNOWN_ROLE);
		return 0;
	}
	fcgi_parser_reset(p);
	p->active = 1;
	p->request_id = p->cur.request_id;
	p->role = role;
	p->flags = p->rec[2] & FCGI_KEEP_CONN;
	return 0;
}

/*
 * Raw pair bytes allowed: every pair costs at most 8 length bytes on top of
 * its name and value, so more than this means a limit is exceeded.
 */
static size_t raw_max(const struct fcgi_limits *l)
{
	if (l->max_params_count > (SIZE_MAX - l->max_params_size) / 8)
		return SIZE_MAX;
	return l->max_params_size + 8 * l->max_params_count;
}

/* Makes room for the record's content in nvbuf before any byte arrives. */
static int params_reserve(struct fcgi_parser *p)
{
	size_t max = raw_max(&p->limits), need, cap;
	uint8_t *nb;

	if (p->content_left > max - p->nvbuf_len)
		return fail(p, FCGI_E_PARAMS_TOO_LARGE);
	need = p->nvbuf_len + p->content_left;
	if (need <= p->nvbuf_cap)
		return 0;
	cap = p->nvbuf_cap ? p->nvbuf_cap : 1024;
	while (cap < need)
		cap = cap > max / 2 ? max : cap * 2;
	if (cap > max)
		cap = max;
	nb = realloc(p->nvbuf, cap);
	if (!nb)
		return fail(p, FCGI_E_NO_MEMORY);
	p->nvbuf = nb;
	p->nvbuf_cap = cap;
	return 0;
}

static int name_ok(const uint8_t *n, uint32_t nl)
{
	return nl > 0 && !memchr(n, 0, nl) && !memchr(n, '=', nl);
}

/* First pass: every pair well formed and within the limits. */
static int params_check(struct fcgi_parser *p, size_t *count, size_t *bytes)
{
	const struct fcgi_limits *l = &p->limits;
	size_t off = 0, total = 0, cnt = 0;

	while (off < p->nvbuf_len) {
		const uint8_t *n, *v;
		uint32_t nl, vl;
		ssize_t r = fcgi_nv_decode(p->nvbuf + off, p->nvbuf_len - off, &n, &nl, &v, &vl);

		if (r <= 0)
			return fail(p, FCGI_E_NV_MALFORMED);
		if (nl > l->max_name_len)
			return fail(p, FCGI_E_NAME_TOO_LONG);
		if (!name_ok(n, nl))
			return fail(p, FCGI_E_BAD_NAME);
		if (++cnt > l->max_params_count)
			return fail(p, FCGI_E_PARAMS_TOO_MANY);
		/* nl + vl lie inside nvbuf, so neither sum can overflow */
		total += (size_t)nl + vl;
		if (total > l->max_params_size)
			return fail(p, FCGI_E_PARAMS_TOO_LARGE);
		off += (size_t)r;
	}
	*count = cnt;
	*bytes = total + 2 * cnt;
	return 0;
}

static int params_alloc(struct fcgi_parser *p, size_t count, size_t bytes)
{
	if (bytes > p->arena_cap) {
		char *a = realloc(p->arena, bytes);

		if (!a)
			return fail(p, FCGI_E_NO_MEMORY);
		p->arena = a;
		p->arena_cap = bytes;
	}
	if (count > p->params_cap) {
		struct fcgi_param *np;

		if (count > SIZE_MAX / sizeof(*np))
			return fail(p, FCGI_E_NO_MEMORY);
		np = realloc(p->params, count * sizeof(*np));
		if (!np)
			return fail(p, FCGI_E_NO_MEMORY);
		p->params = np;
		p->params_cap = count;
	}
	/* at most half full: a miss (the usual lookup) ends after a probe or two */
	size_t cap = 16;

	if (count > UINT32_MAX / 4)
		return fail(p, FCGI_E_NO_MEMORY);
	while (cap < 2 * count)
		cap *= 2;
	if (cap > p->index_cap) {
		struct fcgi_param_slot *ni = realloc(p->index, cap * sizeof(*ni));

		if (!ni)
			return fail(p, FCGI_E_NO_MEMORY);
		p->index = ni;
		p->index_cap = cap;
	}
	return 0;
}

static const char *arena_copy(struct fcgi_parser *p, const uint8_t *s, uint32_t n)
{
	char *d = p->arena + p->arena_len;

	if (n)
		memcpy(d, s, n);
	d[n] = '\0';
	p->arena_len += (size_t)n + 1;
	return d;
}

/*
 * The hash of a name: eight bytes at a time (the last word overlapping the
 * one before), so a name costs a few multiplications, not one per byte.
 * Not seeded: a client that makes its names collide gets the linear cost
 * the parser had before the index, bounded by max_params_count.
 */
static uint32_t name_hash(const char *s, size_t n)
{
	uint64_t h = (uint64_t)n * 0x9E3779B97F4A7C15ull, w;

	if (n >= 8) {
		size_t i;

		for (i = 0; i + 8 < n; i += 8) {
			memcpy(&w, s + i, 8);
			h = (h ^ w) * 0xFF51AFD7ED558CCDull;
		}
		memcpy(&w, s + n - 8, 8);
	} else {
		w = 0;
		memcpy(&w, s, n);
	}
	h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
	return (uint32_t)(h >> 32);
}

/* The slot of name in the index: the one holding it, or the empty one it would take. */
static struct fcgi_param_slot *index_slot(const struct fcgi_parser *p, const char *name,
					  size_t len, uint32_t hash)
{
	size_t mask = p->index_cap - 1, i = hash & mask;

	for (;; i = (i + 1) & mask) {
		struct fcgi_param_slot *sl = &p->index[i];
		const struct fcgi_param *pr;

		if (!sl->pos1)
			return sl;
		pr = &p->params[sl->pos1 - 1];
		if (sl->hash == hash && pr->name_len == len && memcmp(pr->name, name, len) == 0)
			return sl;
	}
}

/*
 * The empty PARAMS record ended the stream (spec §5.2): decode every pair
 * into NUL-terminated copies.  A name sent twice keeps its first position
 * and its last value, as a CGI environment would.
 */
static int params_decode(struct fcgi_parser *p, struct fcgi_event *ev)
{
	size_t count, bytes, off = 0;

	if (params_check(p, &count, &bytes) < 0 || params_alloc(p, count, bytes) < 0)
		return -1;
	p->arena_len = 0;
	p->nparams = 0;
	memset(p->index, 0, p->index_cap * sizeof(*p->index));
	while (off < p->nvbuf_len) {
		const uint8_t *n, *v;
		uint32_t nl, vl;
		struct fcgi_param *pr;
		struct fcgi_param_slot *sl;
		uint32_t h;

		off += (size_t)fcgi_nv_decode(p->nvbuf + off, p->nvbuf_len - off,
					      &n, &nl, &v, &vl);
		h = name_hash((const char *)n, nl);
		sl = index_slot(p, (const char *)n, nl, h);
		if (sl->pos1) {
			pr = &p->params[sl->pos1 - 1];
		} else {
			pr = &p->params[p->nparams++];
			pr->name = arena_copy(p, n, nl);
			pr->name_len = nl;
			sl->hash = h;
			sl->pos1 = (uint32_t)p->nparams;
		}
		pr->value = arena_copy(p, v, vl);
		pr->value_len = vl;
	}
	p->nvbuf_len = 0;
	p->params_done = 1;
	ev->kind = FCGI_EV_PARAMS_DONE;
	return 0;
}

const struct fcgi_param *fcgi_param_get(const struct fcgi_parser *p, const char *name)
{
	const struct fcgi_param_slot *sl;
	size_t len;

	/* no params yet (or a reset since): the index holds the previous request's */
	if (!p->nparams)
		return NULL;
	len = strlen(name);
	sl = index_slot(p, name, len, name_hash(name, len));
	return sl->pos1 ? &p->params[sl->pos1 - 1] : NULL;
}

const char *fcgi_param_value(const struct fcgi_parser *p, const char *name)
{
	const struct fcgi_param *pr = fcgi_param_get(p, name);

	return pr ? pr->value : NULL;
}

/* ---- records ------------------------------------------------------------ */

/*
 * Decides what the record's content is for.  Request id 0 is a management
 * record (spec §3.3), whatever its type.  Records for an id that is not the
 * active request are ignored, except BEGIN_REQUEST (spec §3.3); so are
 * types an application never receives.
 */
static int classify(struct fcgi_parser *p)
{
	const struct fcgi_header *h = &p->cur;

	if (h->request_id == FCGI_NULL_REQUEST_ID) {
		if (h->type != FCGI_GET_VALUES)
			return P_UNKNOWN;
		if (h->content_length > FCGI_MGMT_MAX)
			return fail(p, FCGI_E_MGMT_TOO_LARGE);
		return P_GET_VALUES;
	}
	if (h->type == FCGI_BEGIN_REQUEST)
		return h->content_length == 8 ? P_BEGIN : fail(p, FCGI_E_BEGIN_BODY);
	if (!p->active || h->request_id != p->request_id)
		return P_SKIP;
	switch (h->type) {
	case FCGI_ABORT_REQUEST:
		return P_ABORT;
	case FCGI_PARAMS:
		if (p->params_done)
			return fail(p, FCGI_E_UNEXPECTED);
		return params_reserve(p) < 0 ? -1 : P_PARAMS;
	case FCGI_STDIN:
		if (!p->params_done || p->stdin_done)
			return fail(p, FCGI_E_UNEXPECTED);
		return P_STDIN;
	case FCGI_DATA:
		if (!p->params_done || p->data_done || p->role != FCGI_FILTER)
			return fail(p, FCGI_E_UNEXPECTED);
		return P_DATA;
	default:
		return P_SKIP;
	}
}

static void record_done(struct fcgi_parser *p)
{
	p->state = p->padding_left ? P_PADDING : P_HEADER;
}

/* The record's content is complete (or empty): act on it. */
static int on_content_end(struct fcgi_parser *p, struct fcgi_event *ev)
{
	int r = 0;

	switch (p->state) {
	case P_BEGIN:
		r = on_begin(p, ev);
		break;
	case P_GET_VALUES:
		r = on_get_values(p, ev);
		break;
	case P_UNKNOWN:
		reply_unknown_type(p, ev);
		break;
	case P_ABORT:
		if (!p->aborted)
			ev->kind = FCGI_EV_ABORT;
		p->aborted = 1;
		break;
	case P_PARAMS:
		if (p->cur.content_length == 0)
			r = params_decode(p, ev);
		break;
	case P_STDIN:  /* only an empty record gets here */
		p->stdin_done = 1;
		ev->kind = FCGI_EV_STDIN_END;
		break;
	case P_DATA:
		p->data_done = 1;
		ev->kind = FCGI_EV_DATA_END;
		break;
	default:
		break;
	}
	if (r == 0)
		record_done(p);
	return r;
}

static int on_header(struct fcgi_parser *p, struct fcgi_event *ev)
{
	int st;

	fcgi_header_decode(p->hdr, &p->cur);
	p->hdr_have = 0;
	if (p->cur.version != FCGI_VERSION_1)
		return fail(p, FCGI_E_VERSION);
	p->content_left = p->cur.content_length;
	p->padding_left = p->cur.padding_length;
	p->rec_have = 0;
	p->mgmt_have = 0;
	st = classify(p);
	if (st < 0)
		return -1;
	p->state = st;
	return p->content_left ? 0 : on_content_end(p, ev);
}

/* Content bytes of records that are collected or dropped (not streamed). */
static void take_content(struct fcgi_parser *p, const uint8_t *src, size_t n)
{
	switch (p->state) {
	case P_BEGIN:
		memcpy(p->rec + p->rec_have, src, n);
		p->rec_have += n;
		break;
	case P_GET_VALUES:
		memcpy(p->mgmt + p->mgmt_have, src, n);
		p->mgmt_have += n;
		break;
	case P_PARAMS:
		memcpy(p->nvbuf + p->nvbuf_len, src, n);
		p->nvbuf_len += n;
		break;
	default:
		break;
	}
}

ssize_t fcgi_parser_feed(struct fcgi_parser *p, const uint8_t *buf, size_t len,
			 struct fcgi_event *ev)
{
	size_t off = 0, n;

	ev->kind = FCGI_EV_NONE;
	ev->data = NULL;
	ev->len = 0;
	if (p->state == P_ERROR)
		return -1;
	while (off < len && ev->kind == FCGI_EV_NONE) {
		switch (p->state) {
		case P_HEADER:
			n = min_sz(FCGI_HEADER_LEN - p->hdr_have, len - off);
			memcpy(p->hdr + p->hdr_have, buf + off, n);
			p->hdr_have += n;
			off += n;
			if (p->hdr_have == FCGI_HEADER_LEN && on_header(p, ev) < 0)
				return -1;
			break;
		case P_PADDING:
			n = min_sz(p->padding_left, len - off);
			p->padding_left -= n;
			off += n;
			if (!p->padding_left)
				p->state = P_HEADER;
			break;
		case P_STDIN:
		case P_DATA:
			/* zero copy: the piece points into the caller's buffer */
			n = min_sz(p->content_left, len - off);
			ev->kind = p->state == P_STDIN ? FCGI_EV_STDIN : FCGI_EV_DATA;
			ev->data = buf + off;
			ev->len = n;
			off += n;
			p->content_left -= n;
			if (!p->content_left)
				record_done(p);
			break;
		default:
			n = min_sz(p->content_left, len - off);
			take_content(p, buf + off, n);
			off += n;
			p->content_left -= n;
			if (!p->content_left && on_content_end(p, ev) < 0)
				return -1;
			break;
		}
	}
	return (ssize_t)off;
}
