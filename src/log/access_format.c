/*
 * access.format rendering (see access_format.h).  Values that come from the
 * request are escaped so one request is always one line.
 */
#include "log/access_format.h"
#include "buf/buf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Request data: control characters, quotes and backslashes escaped. */
static void put_value(struct buf *o, const char *s, size_t n)
{
	if (!s || n == 0) {
		buf_put(o, "-", 1);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
			buf_printf(o, "\\x%02x", c);
		else
			buf_put(o, (const char *)&c, 1);
	}
}

static void put_str(struct buf *o, const char *s)
{
	put_value(o, s, s ? strlen(s) : 0);
}

static void put_time(struct buf *o, const struct timespec *ts, const char *arg)
{
	struct tm tm;
	char buf[256];
	localtime_r(&ts->tv_sec, &tm);
	size_t n = strftime(buf, sizeof(buf), arg && *arg ? arg : "%d/%b/%Y:%H:%M:%S %z", &tm);
	buf_put(o, buf, n);
}

static double cpu_percent(uint64_t cpu_us, uint64_t duration_us)
{
	return duration_us ? (double)cpu_us * 100.0 / (double)duration_us : 0.0;
}

/* Returns 0, or -1 for an unknown modifier. */
static int render(struct buf *o, char code, const char *arg, const struct access_entry *e)
{
	switch (code) {
	case '%':
		buf_put(o, "%", 1);
		return 0;
	case 'C': {
		uint64_t cpu = e->cpu_user_us + e->cpu_system_us;
		if (arg && strcasecmp(arg, "user") == 0)
			cpu = e->cpu_user_us;
		else if (arg && strcasecmp(arg, "system") == 0)
			cpu = e->cpu_system_us;
		else if (arg && *arg && strcasecmp(arg, "total") != 0)
			return -1;
		buf_printf(o, "%.2f", cpu_percent(cpu, e->duration_us));
		return 0;
	}
	case 'd':
		if (!arg || !*arg || strcasecmp(arg, "seconds") == 0)
			buf_printf(o, "%.3f", (double)e->duration_us / 1e6);
		else if (strcasecmp(arg, "milliseconds") == 0 || strcasecmp(arg, "milli") == 0 ||
			 /* php-fpm's spelling, kept by its users' formats */
			 strcasecmp(arg, "miliseconds") == 0 || strcasecmp(arg, "mili") == 0)
			buf_printf(o, "%.3f", (double)e->duration_us / 1e3);
		else if (strcasecmp(arg, "microseconds") == 0 || strcasecmp(arg, "micro") == 0)
			buf_printf(o, "%" PRIu64, e->duration_us);
		else
			return -1;
		return 0;
	case 'e':
		if (!arg || !*arg)
			return -1;
		put_str(o, e->param ? e->param(e->ctx, arg) : NULL);
		return 0;
	case 'f':
		put_str(o, e->script);
		return 0;
	case 'l':
		buf_printf(o, "%" PRIu64, e->content_length);
		return 0;
	case 'm':
		put_str(o, e->method);
		return 0;
	case 'M':
		if (!arg || !*arg || strcasecmp(arg, "bytes") == 0)
			buf_printf(o, "%" PRIu64, e->memory);
		else if (strcasecmp(arg, "kilo") == 0 || strcasecmp(arg, "kilobytes") == 0)
			buf_printf(o, "%" PRIu64, e->memory / 1024);
		else if (strcasecmp(arg, "mega") == 0 || strcasecmp(arg, "megabytes") == 0)
			buf_printf(o, "%" PRIu64, e->memory / (1024 * 1024));
		else
			return -1;
		return 0;
	case 'n':
		put_str(o, e->pool);
		return 0;
	case 'o': {
		if (!arg || !*arg)
			return -1;
		size_t n = 0;
		const char *v = e->header ? e->header(e->ctx, arg, &n) : NULL;
		put_value(o, v, v ? n : 0);
		return 0;
	}
	case 'p':
		buf_printf(o, "%d", e->pid);
		return 0;
	case 'P':
		buf_printf(o, "%d", e->master_pid);
		return 0;
	case 'q':
		if (e->query && *e->query)
			put_str(o, e->query);
		return 0;
	case 'Q':
		if (e->query && *e->query)
			buf_put(o, "?", 1);
		return 0;
	case 'r':
		put_str(o, e->uri);
		return 0;
	case 'R':
		put_str(o, e->remote_addr);
		return 0;
	case 's':
		buf_printf(o, "%d", e->status ? e->status : 200);
		return 0;
	case 't':
		put_time(o, &e->start, arg);
		return 0;
	case 'T':
		put_time(o, &e->now, arg);
		return 0;
	case 'u':
		/* php-fpm's: nothing at all without a user ("%R - %u %t" reads "ip -  [time]"),
		 * which log parsers written for its default format count on */
		if (e->remote_user && *e->remote_user)
			put_str(o, e->remote_user);
		return 0;
	default:
		return -1;
	}
}

/*
 * Walks the format: literal text, %X or %{arg}X.  Calls render for each code
 * (or only checks it when e is NULL).  Returns 0 or -1 with a reason.
 */
static int walk(const char *fmt, const struct access_entry *e, struct buf *o, char *err,
		size_t errlen)
{
	static const char known[] = "%CdefhlmMnopPqQrRstTu";
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			if (o)
				buf_put(o, p, 1);
			continue;
		}
		const char *start = p;
		char arg[256] = "";
		if (p[1] == '{') {
			const char *close = strchr(p + 2, '}');
			if (!close) {
				if (err)
					snprintf(err, errlen, "missing '}' after '%%{' in access.format");
				return -1;
			}
			size_t n = (size_t)(close - (p + 2));
			if (n >= sizeof(arg))
				n = sizeof(arg) - 1;
			memcpy(arg, p + 2, n);
			arg[n] = '\0';
			p = close;
		}
		char code = p[1];
		if (!code || !strchr(known, code) || code == 'h') {
			if (err) {
				snprintf(err, errlen, "unknown code '%%%c' in access.format", code ? code : ' ');
				return -1;
			}
			if (o)
				buf_put(o, start, (size_t)(p - start) + (code ? 2 : 1));
			if (!code)
				break;
			p++;
			continue;
		}
		p++;
		if (e && o) {
			if (render(o, code, arg[0] ? arg : NULL, e) < 0)
				buf_put(o, start, (size_t)(p - start) + 1);
		} else if (err) {
			struct access_entry dummy;
			struct buf sink = { 0 };
			memset(&dummy, 0, sizeof(dummy));
			int bad = render(&sink, code, arg[0] ? arg : NULL, &dummy) < 0;
			buf_free(&sink);
			if (bad) {
				snprintf(err, errlen, "invalid modifier '{%s}' for '%%%c' in access.format", arg,
					 code);
				return -1;
			}
		}
	}
	return 0;
}

char *access_format(const char *fmt, const struct access_entry *e, size_t *len)
{
	struct buf o = { 0 };
	walk(fmt && *fmt ? fmt : ACCESS_FORMAT_DEFAULT, e, &o, NULL, 0);
	buf_put(&o, "\n", 1);
	return buf_take(&o, len);
}

int access_format_check(const char *fmt, char *err, size_t errlen)
{
	return walk(fmt ? fmt : ACCESS_FORMAT_DEFAULT, NULL, NULL, err, errlen);
}

int access_format_uses(const char *fmt, char code)
{
	for (const char *p = fmt && *fmt ? fmt : ACCESS_FORMAT_DEFAULT; *p; p++) {
		if (*p != '%')
			continue;
		if (p[1] == '{') {
			const char *close = strchr(p + 2, '}');
			if (!close)
				return 0;
			p = close;
		}
		if (!p[1])
			return 0;
		if (p[1] == code)
			return 1;
		p++;
	}
	return 0;
}
