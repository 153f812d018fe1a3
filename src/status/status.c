/*
 * Status page formats (see status.h).  Every string that came from a request
 * (URI, query, script, user) is escaped for the format it goes into.
 */
#include "status/status.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
	char *p;
	size_t len, cap;
	int oom;
};

static void bput(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void bputs(struct buf *b, const char *s)
{
	bput(b, s, strlen(s));
}

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(tmp)) {
		bput(b, tmp, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		b->oom = 1;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	bput(b, big, (size_t)n);
	free(big);
}

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
	bputs(b, "\"");
	while (s && *s) {
		unsigned char c = (unsigned char)*s;
		size_t n = utf8_len((const unsigned char *)s);
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			bput(b, e, 2);
		} else if (c < 0x20 || c == 0x7f) {
			bprintf(b, "\\u%04x", c);
		} else if (n == 0) {
			bputs(b, "\\ufffd");
			n = 1;
		} else {
			bput(b, s, n);
		}
		s += n ? n : 1;
	}
	bputs(b, "\"");
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
			bputs(b, "&#xFFFD;");      /* not UTF-8: ill-formed XML otherwise */
			continue;
		}
		if (n > 1) {
			bput(b, s, n);
			s += n - 1;
			continue;
		}
		switch (*s) {
		case '<': bputs(b, "&lt;"); break;
		case '>': bputs(b, "&gt;"); break;
		case '&': bputs(b, "&amp;"); break;
		case '"': bputs(b, "&quot;"); break;
		case '\'': bputs(b, "&#039;"); break;
		case '\n': bputs(b, "&#10;"); break;
		case '\r': bputs(b, "&#13;"); break;
		default:
			if ((unsigned char)*s < 0x20 && *s != '\t')
				bputs(b, "&#xFFFD;");
			else
				bput(b, s, 1);
		}
	}
}

/* Plain text: control characters would forge lines; show them escaped. */
static void put_text(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			bprintf(b, "\\x%02x", c);
		else
			bput(b, (const char *)&c, 1);
	}
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
		return STATUS_HTML;
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
	case STATUS_XML: return "text/xml";
	case STATUS_HTML: return "text/html";
	case STATUS_OPENMETRICS: return "application/openmetrics-text; version=1.0.0; charset=utf-8";
	default: return "text/plain;charset=UTF-8";
	}
}

static void render_text(struct buf *b, const struct status_pool *p, const struct status_proc *procs,
			size_t n, int full)
{
	char t[64], uri[2048];
	fmt_time(t, sizeof(t), p->start_time);
	bprintf(b, "pool:                 %s\n", p->pool);
	bprintf(b, "process manager:      %s\n", p->pm);
	bprintf(b, "start time:           %s\n", t);
	bprintf(b, "start since:          %lld\n", (long long)(p->now - p->start_time));
	bprintf(b, "accepted conn:        %" PRIu64 "\n", p->accepted_conn);
	bprintf(b, "listen queue:         %" PRIu64 "\n", p->listen_queue);
	bprintf(b, "max listen queue:     %" PRIu64 "\n", p->max_listen_queue);
	bprintf(b, "listen queue len:     %" PRIu64 "\n", p->listen_queue_len);
	bprintf(b, "idle processes:       %" PRIu64 "\n", p->idle);
	bprintf(b, "active processes:     %" PRIu64 "\n", p->active);
	bprintf(b, "total processes:      %" PRIu64 "\n", p->total);
	bprintf(b, "max active processes: %" PRIu64 "\n", p->max_active);
	bprintf(b, "max children reached: %" PRIu64 "\n", p->max_children_reached);
	bprintf(b, "slow requests:        %" PRIu64 "\n", p->slow_requests);
	bprintf(b, "memory peak:          %" PRIu64 "\n", p->memory_peak);
	if (!full)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct status_proc *pr = &procs[i];
		fmt_time(t, sizeof(t), pr->start_time);
		bputs(b, "\n************************\n");
		bprintf(b, "pid:                  %d\n", pr->pid);
		bprintf(b, "state:                %s\n", pr->state);
		bprintf(b, "start time:           %s\n", t);
		bprintf(b, "start since:          %lld\n", (long long)(p->now - pr->start_time));
		bprintf(b, "requests:             %" PRIu64 "\n", pr->requests);
		bprintf(b, "request duration:     %" PRIu64 "\n", pr->request_duration_us);
		bputs(b, "request method:       "); put_text(b, or_dash(pr->method)); bputs(b, "\n");
		bputs(b, "request URI:          "); put_text(b, full_uri(pr, uri, sizeof(uri))); bputs(b, "\n");
		bprintf(b, "content length:       %" PRIu64 "\n", pr->content_length);
		bputs(b, "user:                 "); put_text(b, or_dash(pr->user)); bputs(b, "\n");
		bputs(b, "script:               "); put_text(b, or_dash(pr->script)); bputs(b, "\n");
		bprintf(b, "last request cpu:     %.2f\n", pr->last_cpu);
		bprintf(b, "last request memory:  %" PRIu64 "\n", pr->last_memory);
	}
}

static void render_json(struct buf *b, const struct status_pool *p, const struct status_proc *procs,
			size_t n, int full)
{
	char uri[2048];
	bputs(b, "{\"pool\":");
	put_json_str(b, p->pool);
	bputs(b, ",\"process manager\":");
	put_json_str(b, p->pm);
	bprintf(b, ",\"start time\":%lld,\"start since\":%lld,\"accepted conn\":%" PRIu64
		",\"listen queue\":%" PRIu64 ",\"max listen queue\":%" PRIu64
		",\"listen queue len\":%" PRIu64 ",\"idle processes\":%" PRIu64
		",\"active processes\":%" PRIu64 ",\"total processes\":%" PRIu64
		",\"max active processes\":%" PRIu64 ",\"max children reached\":%" PRIu64
		",\"slow requests\":%" PRIu64 ",\"memory peak\":%" PRIu64,
		(long long)p->start_time, (long long)(p->now - p->start_time), p->accepted_conn,
		p->listen_queue, p->max_listen_queue, p->listen_queue_len, p->idle, p->active,
		p->total, p->max_active, p->max_children_reached, p->slow_requests, p->memory_peak);
	if (full) {
		bputs(b, ",\"processes\":[");
		for (size_t i = 0; i < n; i++) {
			const struct status_proc *pr = &procs[i];
			bprintf(b, "%s{\"pid\":%d,\"state\":", i ? "," : "", pr->pid);
			put_json_str(b, pr->state);
			bprintf(b, ",\"start time\":%lld,\"start since\":%lld,\"requests\":%" PRIu64
				",\"request duration\":%" PRIu64 ",\"request method\":",
				(long long)pr->start_time, (long long)(p->now - pr->start_time),
				pr->requests, pr->request_duration_us);
			put_json_str(b, or_dash(pr->method));
			bputs(b, ",\"request uri\":");
			put_json_str(b, full_uri(pr, uri, sizeof(uri)));
			bprintf(b, ",\"content length\":%" PRIu64 ",\"user\":", pr->content_length);
			put_json_str(b, or_dash(pr->user));
			bputs(b, ",\"script\":");
			put_json_str(b, or_dash(pr->script));
			bprintf(b, ",\"last request cpu\":%.2f,\"last request memory\":%" PRIu64 "}",
				pr->last_cpu, pr->last_memory);
		}
		bputs(b, "]");
	}
	bputs(b, "}");
}

static void xml_num(struct buf *b, const char *tag, uint64_t v)
{
	bprintf(b, "<%s>%" PRIu64 "</%s>\n", tag, v, tag);
}

static void xml_str(struct buf *b, const char *tag, const char *v)
{
	bprintf(b, "<%s>", tag);
	put_markup(b, v);
	bprintf(b, "</%s>\n", tag);
}

static void render_xml(struct buf *b, const struct status_pool *p, const struct status_proc *procs,
		       size_t n, int full)
{
	char uri[2048];
	bputs(b, "<?xml version=\"1.0\" ?>\n<status>\n");
	xml_str(b, "pool", p->pool);
	xml_str(b, "process-manager", p->pm);
	xml_num(b, "start-time", (uint64_t)p->start_time);
	xml_num(b, "start-since", (uint64_t)(p->now - p->start_time));
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
	xml_num(b, "memory-peak", p->memory_peak);
	if (full) {
		bputs(b, "<processes>\n");
		for (size_t i = 0; i < n; i++) {
			const struct status_proc *pr = &procs[i];
			bputs(b, "<process>");
			xml_num(b, "pid", (uint64_t)pr->pid);
			xml_str(b, "state", pr->state);
			xml_num(b, "start-time", (uint64_t)pr->start_time);
			xml_num(b, "start-since", (uint64_t)(p->now - pr->start_time));
			xml_num(b, "requests", pr->requests);
			xml_num(b, "request-duration", pr->request_duration_us);
			xml_str(b, "request-method", or_dash(pr->method));
			xml_str(b, "request-uri", full_uri(pr, uri, sizeof(uri)));
			xml_num(b, "content-length", pr->content_length);
			xml_str(b, "user", or_dash(pr->user));
			xml_str(b, "script", or_dash(pr->script));
			bprintf(b, "<last-request-cpu>%.2f</last-request-cpu>", pr->last_cpu);
			xml_num(b, "last-request-memory", pr->last_memory);
			bputs(b, "</process>\n");
		}
		bputs(b, "</processes>\n");
	}
	bputs(b, "</status>\n");
}

static void html_row(struct buf *b, const char *name, const char *v)
{
	bprintf(b, "<tr><th>%s</th><td>", name);
	put_markup(b, v);
	bputs(b, "</td></tr>\n");
}

static void html_num(struct buf *b, const char *name, uint64_t v)
{
	bprintf(b, "<tr><th>%s</th><td>%" PRIu64 "</td></tr>\n", name, v);
}

static void render_html(struct buf *b, const struct status_pool *p, const struct status_proc *procs,
			size_t n, int full)
{
	char t[64], uri[2048];
	bputs(b, "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" "
		"\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\n"
		"<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n"
		"<head><title>PHP-FPM Status Page</title></head>\n<body>\n<table>\n");
	fmt_time(t, sizeof(t), p->start_time);
	html_row(b, "pool", p->pool);
	html_row(b, "process manager", p->pm);
	html_row(b, "start time", t);
	html_num(b, "start since", (uint64_t)(p->now - p->start_time));
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
	html_num(b, "memory peak", p->memory_peak);
	bputs(b, "</table>\n");
	if (full) {
		bputs(b, "<table border=\"1\">\n<tr><th>pid</th><th>state</th><th>start time</th>"
			"<th>start since</th><th>requests</th><th>request duration</th>"
			"<th>request method</th><th>request uri</th><th>content length</th>"
			"<th>user</th><th>script</th><th>last request cpu</th>"
			"<th>last request memory</th></tr>\n");
		for (size_t i = 0; i < n; i++) {
			const struct status_proc *pr = &procs[i];
			fmt_time(t, sizeof(t), pr->start_time);
			bprintf(b, "<tr><td>%d</td><td>", pr->pid);
			put_markup(b, pr->state);
			bprintf(b, "</td><td>%s</td><td>%lld</td><td>%" PRIu64 "</td><td>%" PRIu64
				"</td><td>", t, (long long)(p->now - pr->start_time), pr->requests,
				pr->request_duration_us);
			put_markup(b, or_dash(pr->method));
			bputs(b, "</td><td>");
			put_markup(b, full_uri(pr, uri, sizeof(uri)));
			bprintf(b, "</td><td>%" PRIu64 "</td><td>", pr->content_length);
			put_markup(b, or_dash(pr->user));
			bputs(b, "</td><td>");
			put_markup(b, or_dash(pr->script));
			bprintf(b, "</td><td>%.2f</td><td>%" PRIu64 "</td></tr>\n", pr->last_cpu,
				pr->last_memory);
		}
		bputs(b, "</table>\n");
	}
	bputs(b, "</body>\n</html>\n");
}

static void om_metric(struct buf *b, const char *name, const char *type, const char *help,
		      uint64_t v)
{
	bprintf(b, "# HELP phpfpm_%s %s\n# TYPE phpfpm_%s %s\nphpfpm_%s %" PRIu64 "\n", name, help,
		name, type, name, v);
}

const double status_hist_bounds[STATUS_HIST_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

const char *const status_exit_reason_names[EXIT_REASONS] = {
	[EXIT_MAX_REQUESTS] = "max_requests", [EXIT_QUIT] = "quit", [EXIT_IDLE] = "idle",
	[EXIT_TIMEOUT] = "timeout", [EXIT_CRASH] = "crash", [EXIT_SIGNAL] = "signal",
	[EXIT_ERROR] = "error",
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
		bprintf(b, "# HELP fpmd_%s %s\n# TYPE fpmd_%s gauge\nfpmd_%s %" PRIu64 "\n", limits[i].name,
			limits[i].help, limits[i].name, limits[i].name,
			*(const uint64_t *)(const void *)((const char *)x + limits[i].off));
	bputs(b, "# HELP fpmd_worker_exits Workers that exited, by reason.\n"
		 "# TYPE fpmd_worker_exits counter\n");
	for (int r = 0; r < EXIT_REASONS; r++)
		bprintf(b, "fpmd_worker_exits_total{reason=\"%s\"} %" PRIu64 "\n",
			status_exit_reason_names[r], x->exits[r]);
	bprintf(b, "# HELP fpmd_respawns Workers started again after one died.\n"
		"# TYPE fpmd_respawns counter\nfpmd_respawns_total %" PRIu64 "\n", x->respawns);
	bputs(b, "# HELP fpmd_request_duration_seconds Time from a request's first byte to its end.\n"
		 "# TYPE fpmd_request_duration_seconds histogram\n");
	uint64_t cum = 0;
	for (int i = 0; i < STATUS_HIST_BUCKETS; i++) {
		cum += x->hist[i];
		bprintf(b, "fpmd_request_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
			status_hist_bounds[i], cum);
	}
	cum += x->hist[STATUS_HIST_BUCKETS];
	bprintf(b, "fpmd_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
		"fpmd_request_duration_seconds_count %" PRIu64 "\n"
		"fpmd_request_duration_seconds_sum %.6f\n", cum, cum, (double)x->hist_sum_us / 1e6);
}

static void render_openmetrics(struct buf *b, const struct status_pool *p)
{
	bprintf(b, "# HELP phpfpm_up Could pool %s using a %s PM on PHP-FPM be reached?\n"
		"# TYPE phpfpm_up gauge\nphpfpm_up 1\n", p->pool, p->pm);
	om_metric(b, "start_since", "counter", "The number of seconds since FPM has started.",
		  (uint64_t)(p->now - p->start_time));
	om_metric(b, "accepted_connections", "counter",
		  "The number of requests accepted by the pool.", p->accepted_conn);
	om_metric(b, "listen_queue", "gauge",
		  "The number of requests in the queue of pending connections.", p->listen_queue);
	om_metric(b, "max_listen_queue", "counter",
		  "The maximum number of requests in the queue of pending connections since FPM has started.",
		  p->max_listen_queue);
	bprintf(b, "# TYPE phpfpm_listen_queue_length gauge\n"
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
	om_metric(b, "memory_peak", "gauge", "The memory usage peak since FPM has started.",
		  p->memory_peak);
	if (p->extra)
		render_fpmd_metrics(b, p);
	bputs(b, "# EOF\n");
}

char *status_render(const struct status_pool *p, const struct status_proc *procs, size_t nprocs,
		    enum status_format f, int full, size_t *len)
{
	struct buf b = { 0 };
	switch (f) {
	case STATUS_JSON: render_json(&b, p, procs, nprocs, full); break;
	case STATUS_XML: render_xml(&b, p, procs, nprocs, full); break;
	case STATUS_HTML: render_html(&b, p, procs, nprocs, full); break;
	case STATUS_OPENMETRICS: render_openmetrics(&b, p); break;
	default: render_text(&b, p, procs, nprocs, full); break;
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	if (!b.p)
		bput(&b, "", 0);
	*len = b.len;
	return b.p;
}
