/*
 * libFuzzer harness for the status page renderer (src/status/).
 *
 * The input becomes a pool snapshot and up to four process records whose
 * strings (method, URI, query, user, script, state, pool, pm) are arbitrary
 * bytes.  Every format is rendered with full, and compared with the same
 * snapshot whose strings are all "x": escaping must keep the page's shape.
 *   JSON, HTML, XML: well-formed UTF-8, whatever bytes the strings hold.
 *   JSON: parses, no raw control character, as many keys as the benign page.
 *   HTML/XML: as many '<', '>' and line breaks as the benign page, every
 *     '&' starts one of the entities the renderer writes, no C0 control but
 *     tab and LF (XML 1.0 forbids the others).
 *   text/OpenMetrics: as many lines as the benign page, no CR.  Pool and pm
 *     names come from the configuration, which allows only [A-Za-z0-9._-@+:],
 *     and state from the scoreboard's fixed names, so for these two formats
 *     they are drawn from those sets.
 * Times stay in what the worker can produce (seconds from a uint64_t of
 * microseconds), cpu is finite, as in handlers/status.c.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "status/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NPROC_MAX 4
#define NSTR (2 + NPROC_MAX * 6)

struct in {
	const uint8_t *p;
	size_t n;
};

static uint64_t take_u64(struct in *in)
{
	uint64_t v = 0;

	for (int i = 0; i < 8 && in->n; i++, in->p++, in->n--)
		v = v << 8 | *in->p;
	return v;
}

/* A string of up to 4 KiB (a NUL inside just ends it early); NULL sometimes. */
static char *take_str(struct in *in)
{
	size_t len = (size_t)(take_u64(in) % 4099);
	char *s;

	if (len == 4098)
		return NULL;
	if (len > in->n)
		len = in->n;
	s = malloc(len + 1);
	if (!s)
		abort();
	memcpy(s, in->p, len);
	s[len] = '\0';
	in->p += len;
	in->n -= len;
	return s;
}

/* ---- JSON validator (RFC 8259 grammar), counting object keys -------------- */

static size_t js_keys;

static const char *js_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *js_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	for (;;) {
		unsigned char c = (unsigned char)*p++;

		if (c == '"')
			return p;
		if (c < 0x20)
			return NULL;
		if (c != '\\')
			continue;
		c = (unsigned char)*p++;
		if (c == 'u') {
			for (int i = 0; i < 4; i++, p++)
				if (!*p || !strchr("0123456789abcdefABCDEF", *p))
					return NULL;
		} else if (!c || !strchr("\"\\/bfnrt", c)) {
			return NULL;
		}
	}
}

static const char *js_number(const char *p)
{
	const char *s;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (*p == '.') {
		s = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p == s)
			return NULL;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		s = p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p == s)
			return NULL;
	}
	return p;
}

static const char *js_value(const char *p, int depth)
{
	if (depth > 16)
		return NULL;
	p = js_ws(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		int obj = *p == '{';

		p = js_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				p = js_string(js_ws(p));
				if (!p)
					return NULL;
				js_keys++;
				p = js_ws(p);
				if (*p++ != ':')
					return NULL;
			}
			p = js_value(p, depth + 1);
			if (!p)
				return NULL;
			p = js_ws(p);
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	if (*p == '"')
		return js_string(p);
	if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4))
		return p + 4;
	if (!strncmp(p, "false", 5))
		return p + 5;
	return js_number(p);
}

/* Number of keys of a valid document; aborts on anything else. */
static size_t json_keys(const char *s)
{
	const char *e;

	js_keys = 0;
	e = js_value(s, 0);
	if (!e || *js_ws(e) != '\0')
		abort();
	for (; *s; s++)
		if ((unsigned char)*s < 0x20)
			abort();
	return js_keys;
}

/* Aborts unless s is well-formed UTF-8 (RFC 3629): JSON and XML must be. */
static void utf8_check(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;

	for (size_t i = 0; i < len;) {
		unsigned c = s[i], n, cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			abort();
		for (unsigned k = 1; k <= n; k++) {
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				abort();
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			abort();
		i += n + 1;
	}
}

/* ---- shape of a page ------------------------------------------------------ */

static size_t count_ch(const char *s, size_t len, char c)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += s[i] == c;
	return n;
}

/* Hostile strings add no tag and no line, and no raw control character. */
static void check_shape(const char *s, size_t len, const char *benign, size_t blen)
{
	if (count_ch(s, len, '<') != count_ch(benign, blen, '<') ||
	    count_ch(s, len, '>') != count_ch(benign, blen, '>') ||
	    count_ch(s, len, '\n') != count_ch(benign, blen, '\n'))
		abort();
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 && c != '\n' && c != '\t')
			abort();
	}
}

static void check_markup(const char *s, size_t len, const char *benign, size_t blen)
{
	static const char *const ents[] = { "&lt;", "&gt;", "&amp;", "&quot;", "&#039;",
					    "&#10;", "&#13;", "&#xFFFD;" };

	check_shape(s, len, benign, blen);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '&') {
			size_t k, nk = sizeof(ents) / sizeof(ents[0]);

			for (k = 0; k < nk; k++)
				if (!strncmp(s + i, ents[k], strlen(ents[k])))
					break;
			if (k == nk)
				abort();
		}
	}
}

static void check_lines(const char *s, size_t len, const char *benign, size_t blen)
{
	if (count_ch(s, len, '\n') != count_ch(benign, blen, '\n') || memchr(s, '\r', len))
		abort();
}

/* ---- snapshot ------------------------------------------------------------- */

static const char *const stage_names[] = {
	"Idle", "Reading headers", "Getting request informations", "Running", "Finishing",
	"Ending",
};

static const char *benign(const char *s)
{
	return s && *s ? "x" : s;
}

/* Maps s into the pool-name alphabet the configuration allows (in place). */
static void conf_name(char *s)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@+:";

	for (; s && *s; s++)
		*s = ok[(unsigned char)*s % (sizeof(ok) - 1)];
}

static char *render(const struct status_pool *p, const struct status_proc *pr, size_t n,
		    enum status_format f, size_t *len)
{
	char *s = status_render(p, pr, n, f, 1, len);

	if (!s || strlen(s) != *len)
		abort();
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct status_pool p, pb;
	struct status_proc pr[NPROC_MAX], prb[NPROC_MAX];
	char *strs[NSTR];
	size_t ns = 0, nproc;
	uint64_t *nums[] = { &p.accepted_conn, &p.listen_queue, &p.max_listen_queue,
			     &p.listen_queue_len, &p.idle, &p.active, &p.total, &p.max_active,
			     &p.max_children_reached, &p.slow_requests, &p.memory_peak };

	memset(&p, 0, sizeof(p));
	memset(pr, 0, sizeof(pr));
	nproc = (size_t)(take_u64(&in) % (NPROC_MAX + 1));
	p.start_time = (time_t)(take_u64(&in) % (UINT64_MAX / 1000000u));
	p.now = (time_t)(take_u64(&in) % (UINT64_MAX / 1000000u));
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		*nums[i] = take_u64(&in);
	p.pool = strs[ns++] = take_str(&in);
	p.pm = strs[ns++] = take_str(&in);
	for (size_t i = 0; i < nproc; i++) {
		uint64_t bits = take_u64(&in);
		double cpu;

		pr[i].pid = (int)take_u64(&in);
		pr[i].start_time = (time_t)(take_u64(&in) % (UINT64_MAX / 1000000u));
		pr[i].requests = take_u64(&in);
		pr[i].request_duration_us = take_u64(&in);
		pr[i].content_length = take_u64(&in);
		pr[i].last_memory = take_u64(&in);
		memcpy(&cpu, &bits, sizeof(cpu));
		pr[i].last_cpu = isfinite(cpu) ? cpu : 0;
		pr[i].state = strs[ns++] = take_str(&in);
		pr[i].method = strs[ns++] = take_str(&in);
		pr[i].uri = strs[ns++] = take_str(&in);
		pr[i].query = strs[ns++] = take_str(&in);
		pr[i].user = strs[ns++] = take_str(&in);
		pr[i].script = strs[ns++] = take_str(&in);
	}
	/* The renderer prints these without a NULL check; the worker never passes NULL. */
	if (!p.pool)
		p.pool = "";
	if (!p.pm)
		p.pm = "";
	for (size_t i = 0; i < nproc; i++)
		if (!pr[i].state)
			pr[i].state = "";

	pb = p;
	pb.pool = benign(p.pool);
	pb.pm = benign(p.pm);
	for (size_t i = 0; i < nproc; i++) {
		prb[i] = pr[i];
		prb[i].state = benign(pr[i].state);
		prb[i].method = benign(pr[i].method);
		prb[i].uri = benign(pr[i].uri);
		prb[i].query = benign(pr[i].query);
		prb[i].user = benign(pr[i].user);
		prb[i].script = benign(pr[i].script);
	}

	/* JSON, HTML, XML: every string hostile. */
	for (int f = STATUS_JSON; f <= STATUS_HTML; f++) {
		size_t len, blen;
		char *s = render(&p, pr, nproc, (enum status_format)f, &len);
		char *b = render(&pb, prb, nproc, (enum status_format)f, &blen);

		utf8_check(s, len);
		if (f == STATUS_JSON) {
			if (json_keys(s) != json_keys(b))
				abort();
		} else {
			check_markup(s, len, b, blen);
		}
		free(s);
		free(b);
	}

	/* The live page: its script has '&' of its own; only the pool name comes in. */
	{
		size_t len, blen;
		char *s = render(&p, pr, nproc, STATUS_LIVE, &len);
		char *b = render(&pb, prb, nproc, STATUS_LIVE, &blen);

		check_shape(s, len, b, blen);
		free(s);
		free(b);
	}

	/* Text and OpenMetrics: request strings hostile, configuration names valid. */
	conf_name(strs[0]);
	conf_name(strs[1]);
	for (size_t i = 0; i < nproc; i++)
		pr[i].state = stage_names[(unsigned)pr[i].pid % 6];
	for (size_t i = 0; i < nproc; i++)
		prb[i].state = pr[i].state;
	pb.pool = benign(p.pool);
	pb.pm = benign(p.pm);
	{
		size_t len, blen;
		char *s = render(&p, pr, nproc, STATUS_TEXT, &len);
		char *b = render(&pb, prb, nproc, STATUS_TEXT, &blen);

		check_lines(s, len, b, blen);
		free(s);
		free(b);
		s = render(&p, pr, nproc, STATUS_OPENMETRICS, &len);
		b = render(&pb, prb, nproc, STATUS_OPENMETRICS, &blen);
		check_lines(s, len, b, blen);
		if (len < 6 || strcmp(s + len - 6, "# EOF\n") != 0)
			abort();
		free(s);
		free(b);
	}

	/* Format selection from a hostile query. */
	if (nproc && pr[0].query) {
		int full = -1;
		enum status_format f = status_format_from_query(pr[0].query, &full);

		if ((full != 0 && full != 1) || f < STATUS_TEXT || f > STATUS_LIVE)
			abort();
	}

	for (size_t i = 0; i < ns; i++)
		free(strs[i]);
	return 0;
}
