/*
 * Status page formats (see status.h).  Every string that came from a request
 * (URI, query, script, user) is escaped for the format it goes into.
 */
#include "status/status.h"
#include "status/sha256.h"
#include "buf/buf.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Length of the well-formed UTF-8 sequence at s (RFC 3629 §4: no overlong
 * form, no surrogate, nothing above U+10FFFF), or 0.  The strings come from
 * requests through the scoreboard: any bytes at all.  JSON must be UTF-8
 * (RFC 8259 §8.1) and so must XML, so an invalid byte becomes U+FFFD.
 */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	unsigned lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)      /* a NUL stops here: it is not a continuation */
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

static void put_json_str(struct buf *b, const char *s)
{
	buf_puts(b, "\"");
	while (s && *s) {
		unsigned char c = (unsigned char)*s;
		size_t n = utf8_len((const unsigned char *)s);
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			buf_put(b, e, 2);
		} else if (c < 0x20 || c == 0x7f) {
			buf_printf(b, "\\u%04x", c);
		} else if (n == 0) {
			buf_puts(b, "\\ufffd");
			n = 1;
		} else {
			buf_put(b, s, n);
		}
		s += n ? n : 1;
	}
	buf_puts(b, "\"");
}

/*
 * For HTML and XML text and attribute content.  XML 1.0 (§2.2, §4.1) allows
 * no C0 control but tab, LF and CR, not even as a character reference, so
 * the others become U+FFFD rather than make the page ill-formed.
 */
static void put_markup(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		size_t n = utf8_len((const unsigned char *)s);
		if (n == 0) {
			buf_puts(b, "&#xFFFD;");      /* not UTF-8: ill-formed XML otherwise */
			continue;
		}
		if (n > 1) {
			buf_put(b, s, n);
			s += n - 1;
			continue;
		}
		switch (*s) {
		case '<': buf_puts(b, "&lt;"); break;
		case '>': buf_puts(b, "&gt;"); break;
		case '&': buf_puts(b, "&amp;"); break;
		case '"': buf_puts(b, "&quot;"); break;
		case '\'': buf_puts(b, "&#039;"); break;
		case '\n': buf_puts(b, "&#10;"); break;
		case '\r': buf_puts(b, "&#13;"); break;
		default:
			if ((unsigned char)*s < 0x20 && *s != '\t')
				buf_puts(b, "&#xFFFD;");
			else
				buf_put(b, s, 1);
		}
	}
}

/* Plain text: control characters would forge lines; show them escaped. */
static void put_text(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			buf_printf(b, "\\x%02x", c);
		else
			buf_put(b, (const char *)&c, 1);
	}
}

/*
 * Seconds from start to now.  start comes from a worker-writable slot, so it
 * can be anything: widen before subtracting (a 32-bit time_t overflows).
 */
static long long seconds_since(time_t now, time_t start)
{
	return (long long)now - (long long)start;
}

static void fmt_time(char *out, size_t cap, time_t t)
{
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(out, cap, "%d/%b/%Y:%H:%M:%S %z", &tm);
}

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

static char *full_uri(const struct status_proc *pr, char *tmp, size_t cap)
{
	if (pr->query && *pr->query)
		snprintf(tmp, cap, "%s?%s", pr->uri ? pr->uri : "", pr->query);
	else
		snprintf(tmp, cap, "%s", or_dash(pr->uri));
	return tmp;
}

enum status_format status_format_from_query(const char *q, int *full)
{
	/* Parameters are present or not (php-fpm looks for the words anywhere). */
	*full = q && strstr(q, "full") != NULL;
	if (!q)
		return STATUS_TEXT;
	if (strstr(q, "html"))
		return strstr(q, "live") ? STATUS_LIVE : STATUS_HTML;
	if (strstr(q, "xml"))
		return STATUS_XML;
	if (strstr(q, "json"))
		return STATUS_JSON;
	if (strstr(q, "openmetrics"))
		return STATUS_OPENMETRICS;
	return STATUS_TEXT;
}

const char *status_content_type(enum status_format f)
{
	switch (f) {
	case STATUS_JSON: return "application/json";
	case STATUS_XML: return "text/xml;charset=UTF-8";
	case STATUS_HTML: return "text/html;charset=UTF-8";
	case STATUS_LIVE: return "text/html; charset=utf-8";
	case STATUS_OPENMETRICS: return "application/openmetrics-text; version=1.0.0; charset=utf-8";
	default: return "text/plain;charset=UTF-8";
	}
}

static void render_text(struct buf *b, const struct status_pool *p, const struct status_proc *procs,
			size_t n, int full)
{
	char t[64], uri[2048];
	fmt_time(t, sizeof(t), p->start_time);
	buf_printf(b, "pool:                 %s\n", p->pool);
	buf_printf(b, "process manager:      %s\n", p->pm);
	buf_printf(b, "start time:           %s\n", t);
	buf_printf(b, "start since:          %lld\n", seconds_since(p->now, p->start_time));
	buf_printf(b, "accepted conn:        %" PRIu64 "\n", p->accepted_conn);
	buf_printf(b, "listen queue:         %" PRIu64 "\n", p->listen_queue);
	buf_printf(b, "max listen queue:     %" PRIu64 "\n", p->max_listen_queue);
	buf_printf(b, "listen queue len:     %" PRIu64 "\n", p->listen_queue_len);
	buf_printf(b, "idle processes:       %" PRIu64 "\n", p->idle);
	buf_printf(b, "active processes:     %" PRIu64 "\n", p->active);
	buf_printf(b, "total processes:      %" PRIu64 "\n", p->total);
	buf_printf(b, "max active processes: %" PRIu64 "\n", p->max_active);
	buf_printf(b, "max children reached: %" PRIu64 "\n", p->max_children_reached);
	buf_printf(b, "slow requests:        %" PRIu64 "\n", p->slow_requests);
	if (!full)
		return;
	if (p->pool_memory)
		buf_printf(b, "pool memory:          %" PRIu64 "\n", p->pool_memory);
	for (size_t i = 0; i < n; i++) {
		const struct status_proc *pr = &procs[i];
		fmt_time(t, sizeof(t), pr->start_time);
		buf_puts(b, "\n************************\n");
		buf_printf(b, "pid:                  %d\n", pr->pid);
		buf_printf(b, "state:                %s\n", pr->state);
		buf_printf(b, "start time:           %s\n", t);
		buf_printf(b, "start since:          %lld\n", seconds_since(p->now, pr->start_time));
		buf_printf(b, "requests:             %" PRIu64 "\n", pr->requests);
		buf_printf(b, "request duration:     %" PRIu64 "\n", pr->request_duration_us);
		buf_puts(b, "request method:       "); put_text(b, or_dash(pr->method)); buf_puts(b, "\n");
		buf_puts(b, "request URI:          "); put_text(b, full_uri(pr, uri, sizeof(uri))); buf_puts(b, "\n");
		buf_printf(b, "content length:       %" PRIu64 "\n", pr->content_length);
		buf_puts(b, "user:                 "); put_text(b, or_dash(pr->user)); buf_puts(b, "\n");
		buf_puts(b, "script:               "); put_text(b, or_dash(pr->script)); buf_puts(b, "\n");
		buf_printf(b, "last request cpu:     %.2f\n", pr->last_cpu);
		buf_printf(b, "last request memory:  %" PRIu64 "\n", pr->last_memory);
	}
}

static void render_json(struct buf *b, const struct status_pool *p, const struct status_proc *procs,
			size_t n, int full)
{
	char uri[2048];
	buf_puts(b, "{\"pool\":");
	put_json_str(b, p->pool);
	buf_puts(b, ",\"process manager\":");
	put_json_str(b, p->pm);
	buf_printf(b, ",\"start time\":%lld,\"start since\":%lld,\"accepted conn\":%" PRIu64
		",\"listen queue\":%" PRIu64 ",\"max listen queue\":%" PRIu64
		",\"listen queue len\":%" PRIu64 ",\"idle processes\":%" PRIu64
		",\"active processes\":%" PRIu64 ",\"total processes\":%" PRIu64
		",\"max active processes\":%" PRIu64 ",\"max children reached\":%" PRIu64
		",\"slow requests\":%" PRIu64,
		(long long)p->start_time, seconds_since(p->now, p->start_time), p->accepted_conn,
		p->listen_queue, p->max_listen_queue, p->listen_queue_len, p->idle, p->active,
		p->total, p->max_active, p->max_children_reached, p->slow_requests);
	if (full) {
		if (p->pool_memory)
			buf_printf(b, ",\"pool memory\":%" PRIu64, p->pool_memory);
		buf_puts(b, ",\"processes\":[");
		for (size_t i = 0; i < n; i++) {
			const struct status_proc *pr = &procs[i];
			buf_printf(b, "%s{\"pid\":%d,\"state\":", i ? "," : "", pr->pid);
			put_json_str(b, pr->state);
			buf_printf(b, ",\"start time\":%lld,\"start since\":%lld,\"requests\":%" PRIu64
				",\"request duration\":%" PRIu64 ",\"request method\":",
				(long long)pr->start_time, seconds_since(p->now, pr->start_time),
				pr->requests, pr->request_duration_us);
			put_json_str(b, or_dash(pr->method));
			buf_puts(b, ",\"request uri\":");
			put_json_str(b, full_uri(pr, uri, sizeof(uri)));
			buf_printf(b, ",\"content length\":%" PRIu64 ",\"user\":", pr->content_length);
			put_json_str(b, or_dash(pr->user));
			buf_puts(b, ",\"script\":");
			put_json_str(b, or_dash(pr->script));
			buf_printf(b, ",\"last request cpu\":%.2f,\"last request memory\":%" PRIu64 "}",
				pr->last_cpu, pr->last_memory);
		}
		buf_puts(b, "]");
	}
	buf_puts(b, "}");
}

static void xml_num(struct buf *b, const char *tag, uint64_t v)
{
	buf_printf(b, "<%s>%" PRIu64 "</%s>\n", tag, v, tag);
}

static void xml_str(struct buf *b, const char *tag, const char *v)
{
	buf_printf(b, "<%s>", tag);
	put_markup(b, v);
	buf_printf(b, "</%s>\n", tag);
}

static void render_xml(struct buf *b, const struct status_pool *p, const struct status_proc *procs,
		       size_t n, int full)
{
	char uri[2048];
	buf_puts(b, "<?xml version=\"1.0\" ?>\n<status>\n");
	xml_str(b, "pool", p->pool);
	xml_str(b, "process-manager", p->pm);
	xml_num(b, "start-time", (uint64_t)p->start_time);
	xml_num(b, "start-since", (uint64_t)seconds_since(p->now, p->start_time));
	xml_num(b, "accepted-conn", p->accepted_conn);
	xml_num(b, "listen-queue", p->listen_queue);
	xml_num(b, "max-listen-queue", p->max_listen_queue);
	xml_num(b, "listen-queue-len", p->listen_queue_len);
	xml_num(b, "idle-processes", p->idle);
	xml_num(b, "active-processes", p->active);
	xml_num(b, "total-processes", p->total);
	xml_num(b, "max-active-processes", p->max_active);
	xml_num(b, "max-children-reached", p->max_children_reached);
	xml_num(b, "slow-requests", p->slow_requests);
	if (full) {
		if (p->pool_memory)
			xml_num(b, "pool-memory", p->pool_memory);
		buf_puts(b, "<processes>\n");
		for (size_t i = 0; i < n; i++) {
			const struct status_proc *pr = &procs[i];
			buf_puts(b, "<process>");
			xml_num(b, "pid", (uint64_t)pr->pid);
			xml_str(b, "state", pr->state);
			xml_num(b, "start-time", (uint64_t)pr->start_time);
			xml_num(b, "start-since", (uint64_t)seconds_since(p->now, pr->start_time));
			xml_num(b, "requests", pr->requests);
			xml_num(b, "request-duration", pr->request_duration_us);
			xml_str(b, "request-method", or_dash(pr->method));
			xml_str(b, "request-uri", full_uri(pr, uri, sizeof(uri)));
			xml_num(b, "content-length", pr->content_length);
			xml_str(b, "user", or_dash(pr->user));
			xml_str(b, "script", or_dash(pr->script));
			buf_printf(b, "<last-request-cpu>%.2f</last-request-cpu>", pr->last_cpu);
			xml_num(b, "last-request-memory", pr->last_memory);
			buf_puts(b, "</process>\n");
		}
		buf_puts(b, "</processes>\n");
	}
	buf_puts(b, "</status>\n");
}

static void html_row(struct buf *b, const char *name, const char *v)
{
	buf_printf(b, "<tr><th>%s</th><td>", name);
	put_markup(b, v);
	buf_puts(b, "</td></tr>\n");
}

static void html_num(struct buf *b, const char *name, uint64_t v)
{
	buf_printf(b, "<tr><th>%s</th><td>%" PRIu64 "</td></tr>\n", name, v);
}

static void render_html(struct buf *b, const struct status_pool *p, const struct status_proc *procs,
			size_t n, int full)
{
	char t[64], uri[2048];
	buf_puts(b, "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" "
		"\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\n"
		"<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n"
		"<head><title>PHP-FPM Status Page</title></head>\n<body>\n<table>\n");
	fmt_time(t, sizeof(t), p->start_time);
	html_row(b, "pool", p->pool);
	html_row(b, "process manager", p->pm);
	html_row(b, "start time", t);
	html_num(b, "start since", (uint64_t)seconds_since(p->now, p->start_time));
	html_num(b, "accepted conn", p->accepted_conn);
	html_num(b, "listen queue", p->listen_queue);
	html_num(b, "max listen queue", p->max_listen_queue);
	html_num(b, "listen queue len", p->listen_queue_len);
	html_num(b, "idle processes", p->idle);
	html_num(b, "active processes", p->active);
	html_num(b, "total processes", p->total);
	html_num(b, "max active processes", p->max_active);
	html_num(b, "max children reached", p->max_children_reached);
	html_num(b, "slow requests", p->slow_requests);
	buf_puts(b, "</table>\n");
	if (full) {
		buf_puts(b, "<table border=\"1\">\n<tr><th>pid</th><th>state</th><th>start time</th>"
			"<th>start since</th><th>requests</th><th>request duration</th>"
			"<th>request method</th><th>request uri</th><th>content length</th>"
			"<th>user</th><th>script</th><th>last request cpu</th>"
			"<th>last request memory</th></tr>\n");
		for (size_t i = 0; i < n; i++) {
			const struct status_proc *pr = &procs[i];
			fmt_time(t, sizeof(t), pr->start_time);
			buf_printf(b, "<tr><td>%d</td><td>", pr->pid);
			put_markup(b, pr->state);
			buf_printf(b, "</td><td>%s</td><td>%lld</td><td>%" PRIu64 "</td><td>%" PRIu64
				"</td><td>", t, seconds_since(p->now, pr->start_time), pr->requests,
				pr->request_duration_us);
			put_markup(b, or_dash(pr->method));
			buf_puts(b, "</td><td>");
			put_markup(b, full_uri(pr, uri, sizeof(uri)));
			buf_printf(b, "</td><td>%" PRIu64 "</td><td>", pr->content_length);
			put_markup(b, or_dash(pr->user));
			buf_puts(b, "</td><td>");
			put_markup(b, or_dash(pr->script));
			buf_printf(b, "</td><td>%.2f</td><td>%" PRIu64 "</td></tr>\n", pr->last_cpu,
				pr->last_memory);
		}
		buf_puts(b, "</table>");
	}
	buf_puts(b, "</body></html>");   /* php-fpm's bytes, no newline at the end */
}

/*
 * The live dashboard (?html&live): a page with no external asset that reads
 * this same path's ?json&full every few seconds (?refresh=N, default 2) and
 * draws the pool's counters, its workers by state, one row per worker and
 * the requests per second over the last five minutes.  php-fpm ships the same
 * idea as a separate status.html; here it is served by the pool itself, so
 * it always matches the JSON it reads.  When a fetch fails, the page says so
 * and keeps showing the last data it had.
 *
 * CSP: the page carries its own policy in a <meta> tag: nothing may load but
 * this script and this style, named by their SHA-256 (CSP Level 2 hash
 * sources), and fetch() may only reach the same origin.  The script builds
 * the DOM with textContent only, never HTML from the JSON.
 */
static const char live_style[] =
	"body { font: 14px/1.4 system-ui, sans-serif; margin: 1em 2em; color: #222; background: #fafafa; }\n"
	"h1 { font-size: 1.3em; margin: 0 0 .5em; }\n"
	"#updated { color: #666; font-size: .9em; }\n"
	"#error { background: #fdd; border: 1px solid #c33; padding: .5em; }\n"
	"body.stale #counters, body.stale #workers { opacity: .6; }\n"
	"dl { display: flex; flex-wrap: wrap; gap: .5em; margin: 0; }\n"
	".kv { background: #fff; border: 1px solid #ddd; border-radius: 4px; padding: .3em .7em; }\n"
	"dt { font-size: .8em; color: #666; }\n"
	"dd { margin: 0; font-weight: 600; }\n"
	"dl.queued .kv-listen-queue, dl.slow .kv-slow-requests { border-color: #c60; background: #fff3e0; }\n"
	"#states ul { list-style: none; display: flex; gap: 1em; padding: 0; }\n"
	"#states li { padding: .1em .5em; border-radius: 3px; background: #eee; }\n"
	"svg { background: #fff; border: 1px solid #ddd; width: 100%; max-width: 600px; height: 100px; }\n"
	"polyline { fill: none; stroke: #36c; stroke-width: 1.5; }\n"
	"svg text { font-size: 10px; fill: #666; }\n"
	"table { border-collapse: collapse; background: #fff; margin-top: .5em; }\n"
	"th, td { border: 1px solid #ddd; padding: .2em .5em; text-align: left; }\n"
	"td.path { font-family: monospace; max-width: 30em; overflow-wrap: anywhere; }\n"
	"tr.state-idle { color: #888; }\n"
	"tr.state-running, li.state-running { background: #e3f2e3; }\n"
	"tr.state-reading-headers, tr.state-finishing { background: #fffbe0; }\n";

static const char live_script[] =
	"(function () {\n"
	"'use strict';\n"
	"var q = new URLSearchParams(location.search);\n"
	"var period = Math.min(3600, Math.max(0.5, parseFloat(q.get('refresh')) || 2));\n"
	"var url = location.pathname + '?json&full';\n"
	"var keep = 300;\n"
	"var samples = [];\n"
	"var last = null;\n"
	"var updates = 0;\n"
	"function $(id) { return document.getElementById(id); }\n"
	"function el(tag, cls, text) {\n"
	"  var e = document.createElement(tag);\n"
	"  if (cls) e.className = cls;\n"
	"  if (text !== undefined) e.textContent = String(text);\n"
	"  return e;\n"
	"}\n"
	"function dur(us) {\n"
	"  if (us < 1000) return us + ' \\u00b5s';\n"
	"  if (us < 1e6) return (us / 1e3).toFixed(1) + ' ms';\n"
	"  return (us / 1e6).toFixed(2) + ' s';\n"
	"}\n"
	"function bytes(n) {\n"
	"  if (n < 1024) return n + ' B';\n"
	"  if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';\n"
	"  return (n / 1048576).toFixed(1) + ' MiB';\n"
	"}\n"
	"function since(s) {\n"
	"  var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);\n"
	"  return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + m + 'm ' + s % 60 + 's';\n"
	"}\n"
	"function slug(s) { return String(s).toLowerCase().replace(/[^a-z0-9]+/g, '-'); }\n"
	"function counters(d, rate) {\n"
	"  var rows = [\n"
	"    ['pool', d['pool']], ['process manager', d['process manager']],\n"
	"    ['up', since(d['start since'])], ['accepted conn', d['accepted conn']],\n"
	"    ['requests/s', rate === null ? '\\u2026' : rate.toFixed(1)],\n"
	"    ['listen queue', d['listen queue'] + ' (max ' + d['max listen queue'] + ', len ' + d['listen queue len'] + ')'],\n"
	"    ['processes', d['active processes'] + ' active, ' + d['idle processes'] + ' idle, ' + d['total processes'] + ' total'],\n"
	"    ['max active processes', d['max active processes']],\n"
	"    ['max children reached', d['max children reached']],\n"
	"    ['slow requests', d['slow requests']]\n"
	"  ];\n"
	"  if ('memory peak' in d) rows.push(['memory peak', bytes(d['memory peak'])]);\n"
	"  var dl = el('dl');\n"
	"  rows.forEach(function (r) {\n"
	"    var box = el('div', 'kv kv-' + slug(r[0]));\n"
	"    box.appendChild(el('dt', null, r[0]));\n"
	"    box.appendChild(el('dd', null, r[1]));\n"
	"    dl.appendChild(box);\n"
	"  });\n"
	"  if (d['listen queue'] > 0) dl.classList.add('queued');\n"
	"  if (d['slow requests'] > 0) dl.classList.add('slow');\n"
	"  $('counters').replaceChildren(dl);\n"
	"}\n"
	"function states(procs) {\n"
	"  var n = {};\n"
	"  procs.forEach(function (p) { n[p.state] = (n[p.state] || 0) + 1; });\n"
	"  var ul = el('ul');\n"
	"  Object.keys(n).sort().forEach(function (s) {\n"
	"    var li = el('li', 'state-' + slug(s), s + ': ' + n[s]);\n"
	"    li.dataset.state = s;\n"
	"    li.dataset.count = n[s];\n"
	"    ul.appendChild(li);\n"
	"  });\n"
	"  $('states').replaceChildren(ul);\n"
	"}\n"
	"function workers(procs) {\n"
	"  var body = document.createDocumentFragment();\n"
	"  procs.slice().sort(function (a, b) { return a.pid - b.pid; }).forEach(function (p) {\n"
	"    var tr = el('tr', 'state-' + slug(p.state));\n"
	"    tr.dataset.pid = p.pid;\n"
	"    var busy = p.state !== 'Idle';\n"
	"    [p.pid, p.state, p.requests, dur(p['request duration']), p['request method'],\n"
	"     p['request uri'], p.script, busy ? '-' : p['last request cpu'].toFixed(2) + '%',\n"
	"     busy ? '-' : bytes(p['last request memory']), since(p['start since'])].forEach(function (v, i) {\n"
	"      tr.appendChild(el('td', i === 5 || i === 6 ? 'path' : null, v));\n"
	"    });\n"
	"    body.appendChild(tr);\n"
	"  });\n"
	"  $('workers').replaceChildren(body);\n"
	"}\n"
	"function chart() {\n"
	"  var svg = $('chart'), ns = 'http://www.w3.org/2000/svg';\n"
	"  var w = 600, h = 100, pts = [], max = 1;\n"
	"  for (var i = 1; i < samples.length; i++) {\n"
	"    var dt = samples[i].t - samples[i - 1].t;\n"
	"    var r = dt > 0 ? Math.max(0, samples[i].n - samples[i - 1].n) / dt : 0;\n"
	"    pts.push({ t: samples[i].t, r: r });\n"
	"    if (r > max) max = r;\n"
	"  }\n"
	"  var now = samples.length ? samples[samples.length - 1].t : 0;\n"
	"  var line = document.createElementNS(ns, 'polyline');\n"
	"  line.setAttribute('points', pts.map(function (p) {\n"
	"    return (w - (now - p.t) / keep * w).toFixed(1) + ',' + (h - p.r / max * (h - 4)).toFixed(1);\n"
	"  }).join(' '));\n"
	"  var label = document.createElementNS(ns, 'text');\n"
	"  label.setAttribute('x', '4');\n"
	"  label.setAttribute('y', '12');\n"
	"  label.textContent = 'max ' + max.toFixed(1) + ' req/s, last ' + Math.round(keep / 60) + ' min';\n"
	"  svg.replaceChildren(line, label);\n"
	"}\n"
	"function render(d) {\n"
	"  var t = Date.now() / 1000, rate = null;\n"
	"  if (samples.length && d['accepted conn'] < samples[samples.length - 1].n) samples = [];\n"
	"  samples.push({ t: t, n: d['accepted conn'] });\n"
	"  while (samples.length > 2 && t - samples[0].t > keep) samples.shift();\n"
	"  if (samples.length > 1) {\n"
	"    var a = samples[samples.length - 2], b = samples[samples.length - 1];\n"
	"    rate = b.t > a.t ? Math.max(0, b.n - a.n) / (b.t - a.t) : 0;\n"
	"  }\n"
	"  document.title = 'fpmd status: pool ' + d['pool'];\n"
	"  counters(d, rate);\n"
	"  states(d.processes || []);\n"
	"  workers(d.processes || []);\n"
	"  chart();\n"
	"  last = new Date();\n"
	"  updates++;\n"
	"  $('updated').textContent = 'updated ' + last.toLocaleTimeString() + ', every ' + period + ' s';\n"
	"  $('updated').dataset.updates = updates;\n"
	"}\n"
	"function fail(e) {\n"
	"  var err = $('error');\n"
	"  err.textContent = 'Cannot read ' + url + ': ' + (e && e.message ? e.message : e) +\n"
	"    (last ? '. Showing the data of ' + last.toLocaleTimeString() + '.' : '.');\n"
	"  err.hidden = false;\n"
	"  document.body.classList.add('stale');\n"
	"  document.body.dataset.state = 'error';\n"
	"}\n"
	"function tick() {\n"
	"  fetch(url, { cache: 'no-store', credentials: 'same-origin' }).then(function (r) {\n"
	"    if (!r.ok) throw new Error('HTTP ' + r.status);\n"
	"    return r.json();\n"
	"  }).then(function (d) {\n"
	"    if (typeof d !== 'object' || d === null || !('accepted conn' in d)) throw new Error('not a status page');\n"
	"    render(d);\n"
	"    $('error').hidden = true;\n"
	"    document.body.classList.remove('stale');\n"
	"    document.body.dataset.state = 'ok';\n"
	"  }).catch(fail).then(function () { setTimeout(tick, period * 1000); });\n"
	"}\n"
	"tick();\n"
	"})();\n";

static void render_live(struct buf *b, const struct status_pool *p)
{
	char script_src[52], style_src[52];
	sha256_csp_source(live_script, sizeof(live_script) - 1, script_src);
	sha256_csp_source(live_style, sizeof(live_style) - 1, style_src);
	buf_printf(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
		"script-src '%s'; style-src '%s'; connect-src 'self'; img-src 'self'; "
		"base-uri 'none'; form-action 'none'\">\n", script_src, style_src);
	buf_puts(b, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		 "<title>fpmd status: pool ");
	put_markup(b, p->pool);
	buf_puts(b, "</title>\n<style>");
	buf_puts(b, live_style);
	buf_puts(b, "</style>\n</head>\n<body data-state=\"loading\">\n<h1>fpmd status: pool ");
	put_markup(b, p->pool);
	buf_puts(b, "</h1>\n<p id=\"updated\" data-updates=\"0\">loading&#8230;</p>\n"
		 "<p id=\"error\" role=\"alert\" hidden></p>\n"
		 "<noscript><p>This page needs JavaScript; <a href=\"?html&amp;full\">the static "
		 "status page</a> does not.</p></noscript>\n"
		 "<section id=\"counters\"></section>\n<h2>Requests per second</h2>\n"
		 "<svg id=\"chart\" viewBox=\"0 0 600 100\" preserveAspectRatio=\"none\" role=\"img\" "
		 "aria-label=\"requests per second\"></svg>\n<h2>Workers</h2>\n<div id=\"states\"></div>\n"
		 "<table>\n<thead><tr><th>pid</th><th>state</th><th>requests</th><th>duration</th>"
		 "<th>method</th><th>request uri</th><th>script</th><th>last cpu</th>"
		 "<th>last memory</th><th>up</th></tr></thead>\n<tbody id=\"workers\"></tbody>\n</table>\n"
		 "<script>");
	buf_puts(b, live_script);
	buf_puts(b, "</script>\n</body>\n</html>\n");
}

static void om_metric(struct buf *b, const char *name, const char *type, const char *help,
		      uint64_t v)
{
	buf_printf(b, "# HELP phpfpm_%s %s\n# TYPE phpfpm_%s %s\nphpfpm_%s %" PRIu64 "\n", name, help,
		name, type, name, v);
}

const double status_hist_bounds[STATUS_HIST_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

const char *const status_exit_reason_names[EXIT_REASONS] = {
	[EXIT_MAX_REQUESTS] = "max_requests", [EXIT_QUIT] = "quit", [EXIT_IDLE] = "idle",
	[EXIT_TIMEOUT] = "timeout", [EXIT_CRASH] = "crash", [EXIT_SIGNAL] = "signal",
	[EXIT_ERROR] = "error", [EXIT_MAX_MEMORY] = "max_memory",
};

static void render_fpmd_metrics(struct buf *b, const struct status_pool *p)
{
	const struct status_extra *x = p->extra;
	static const struct { const char *name, *help; size_t off; } limits[] = {
		{ "pm_max_children", "The pool's pm.max_children.", offsetof(struct status_extra, max_children) },
		{ "pm_min_spare_servers", "The pool's pm.min_spare_servers (dynamic).",
		  offsetof(struct status_extra, min_spare) },
		{ "pm_max_spare_servers", "The pool's pm.max_spare_servers (dynamic).",
		  offsetof(struct status_extra, max_spare) },
		{ "pm_max_requests", "The pool's pm.max_requests (0: none).",
		  offsetof(struct status_extra, max_requests) },
	};
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
		buf_printf(b, "# HELP fpmd_%s %s\n# TYPE fpmd_%s gauge\nfpmd_%s %" PRIu64 "\n", limits[i].name,
			limits[i].help, limits[i].name, limits[i].name,
			*(const uint64_t *)(const void *)((const char *)x + limits[i].off));
	buf_puts(b, "# HELP fpmd_worker_exits Workers that exited, by reason.\n"
		 "# TYPE fpmd_worker_exits counter\n");
	for (int r = 0; r < EXIT_REASONS; r++)
		buf_printf(b, "fpmd_worker_exits_total{reason=\"%s\"} %" PRIu64 "\n",
			status_exit_reason_names[r], x->exits[r]);
	if (p->pool_memory)
		buf_printf(b, "# HELP fpmd_pool_memory_bytes The pool's workers' memory now: the sum of their "
			"PSS (kind=pss), or of their anonymous resident memory where their smaps_rollup "
			"cannot be read (kind=anon).\n# TYPE fpmd_pool_memory_bytes gauge\n"
			"fpmd_pool_memory_bytes{kind=\"%s\"} %" PRIu64 "\n",
			p->pool_memory_kind ? p->pool_memory_kind : "pss", p->pool_memory);
	buf_printf(b, "# HELP fpmd_respawns Workers started again after one died.\n"
		"# TYPE fpmd_respawns counter\nfpmd_respawns_total %" PRIu64 "\n", x->respawns);
	buf_puts(b, "# HELP fpmd_request_duration_seconds Time from a request's first byte to its end.\n"
		 "# TYPE fpmd_request_duration_seconds histogram\n");
	uint64_t cum = 0;
	for (int i = 0; i < STATUS_HIST_BUCKETS; i++) {
		cum += x->hist[i];
		buf_printf(b, "fpmd_request_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
			status_hist_bounds[i], cum);
	}
	cum += x->hist[STATUS_HIST_BUCKETS];
	buf_printf(b, "fpmd_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
		"fpmd_request_duration_seconds_count %" PRIu64 "\n"
		"fpmd_request_duration_seconds_sum %.6f\n", cum, cum, (double)x->hist_sum_us / 1e6);
}

static void render_openmetrics(struct buf *b, const struct status_pool *p)
{
	/*
	 * fpmd's own families first: php-fpm's block stays byte for byte what
	 * php-fpm 8.2 prints, up to "# EOF", where checks and parsers expect it.
	 */
	om_metric(b, "memory_peak", "gauge", "The memory usage peak since FPM has started.",
		  p->memory_peak);
	if (p->extra)
		render_fpmd_metrics(b, p);
	buf_printf(b, "# HELP phpfpm_up Could pool %s using a %s PM on PHP-FPM be reached?\n"
		"# TYPE phpfpm_up gauge\nphpfpm_up 1\n", p->pool, p->pm);
	om_metric(b, "start_since", "counter", "The number of seconds since FPM has started.",
		  (uint64_t)seconds_since(p->now, p->start_time));
	om_metric(b, "accepted_connections", "counter",
		  "The number of requests accepted by the pool.", p->accepted_conn);
	om_metric(b, "listen_queue", "gauge",
		  "The number of requests in the queue of pending connections.", p->listen_queue);
	om_metric(b, "max_listen_queue", "counter",
		  "The maximum number of requests in the queue of pending connections since FPM has started.",
		  p->max_listen_queue);
	buf_printf(b, "# TYPE phpfpm_listen_queue_length gauge\n"
		"# HELP phpfpm_listen_queue_length The size of the socket queue of pending connections.\n"
		"phpfpm_listen_queue_length %" PRIu64 "\n", p->listen_queue_len);
	om_metric(b, "idle_processes", "gauge", "The number of idle processes.", p->idle);
	om_metric(b, "active_processes", "gauge", "The number of active processes.", p->active);
	om_metric(b, "total_processes", "gauge", "The number of idle + active processes.", p->total);
	om_metric(b, "max_active_processes", "counter",
		  "The maximum number of active processes since FPM has started.", p->max_active);
	om_metric(b, "max_children_reached", "counter",
		  "The number of times, the process limit has been reached, when pm tries to start more children (works only for pm 'dynamic' and 'ondemand').",
		  p->max_children_reached);
	om_metric(b, "slow_requests", "counter", "The number of requests that exceeded your 'request_slowlog_timeout' value.",
		  p->slow_requests);
	buf_puts(b, "# EOF\n");
}

void status_ready_parse(const char *query, struct status_ready_query *q)
{
	q->asked = 0;
	q->max_queue = 0;
	/* Split on '&' exactly: "queue=N" must not be read out of another word. */
	for (const char *s = query; s && *s;) {
		const char *end = strchr(s, '&');
		size_t n = end ? (size_t)(end - s) : strlen(s);
		if (n == 5 && strncmp(s, "ready", 5) == 0) {
			q->asked = 1;
		} else if (n > 6 && strncmp(s, "queue=", 6) == 0) {
			uint64_t v = 0;
			size_t i = 6;
			for (; i < n && s[i] >= '0' && s[i] <= '9' && v < (UINT64_MAX - 9) / 10; i++)
				v = v * 10 + (uint64_t)(s[i] - '0');
			if (i == n)
				q->max_queue = v;
		}
		s = end ? end + 1 : s + n;
	}
}

int status_ready(const struct status_pool *p, uint64_t max_children, uint64_t max_queue, char *why,
		 size_t cap)
{
	int full = p->idle == 0 && p->total >= max_children;
	int ready = !(full && p->listen_queue > max_queue);
	snprintf(why, cap, "%s: pool %s, %" PRIu64 " of %" PRIu64 " workers busy (max_children %" PRIu64
		 "), %" PRIu64 " connections waiting (limit %" PRIu64 ")\n",
		 ready ? "ready" : "saturated", p->pool ? p->pool : "-", p->active, p->total,
		 max_children, p->listen_queue, max_queue);
	return ready;
}

char *status_render(const struct status_pool *p, const struct status_proc *procs, size_t nprocs,
		    enum status_format f, int full, size_t *len)
{
	struct buf b = { 0 };
	switch (f) {
	case STATUS_JSON: render_json(&b, p, procs, nprocs, full); break;
	case STATUS_XML: render_xml(&b, p, procs, nprocs, full); break;
	case STATUS_HTML: render_html(&b, p, procs, nprocs, full); break;
	case STATUS_LIVE: render_live(&b, p); break;
	case STATUS_OPENMETRICS: render_openmetrics(&b, p); break;
	default: render_text(&b, p, procs, nprocs, full); break;
	}
	return buf_take(&b, len);
}
