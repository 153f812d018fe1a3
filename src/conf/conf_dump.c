/*
 * conf_dump: the effective configuration written back in the file's own
 * syntax, every directive of the table with its value, defaults included.
 * What it writes reads back to an equal configuration (conf_equal), and a
 * second dump of that is byte-identical: `fpmd -T` output is a valid file.
 *
 * Values that are not plain words are double-quoted with \" \\ and \$
 * escaped, so nothing in them is expanded again on the way back in.
 * Settings that have no value (an unset rlimit, an empty list) are written
 * as comments naming the directive.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf_internal.h"

struct out {
	char *s;
	size_t n, cap;
	int oom;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->oom)
		return;
	if (o->n + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 1024;
		char *p;

		while (cap < o->n + n + 1)
			cap *= 2;
		p = realloc(o->s, cap);
		if (!p) {
			o->oom = 1;
			return;
		}
		o->s = p;
		o->cap = cap;
	}
	memcpy(o->s + o->n, s, n);
	o->n += n;
	o->s[o->n] = '\0';
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void printf_(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_(struct out *o, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(buf))
		put(o, buf, (size_t)n);
	else
		o->oom = 1;
}

static int plain(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr("/_.:,@+%~*!^-=?[]{}()<>|&", ch)))
			return 0;
	}
	return 1;
}

static void value(struct out *o, const char *s)
{
	if (plain(s)) {
		puts_(o, s);
		return;
	}
	put(o, "\"", 1);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\' || *s == '$')
			put(o, "\\", 1);
		put(o, s, 1);
	}
	put(o, "\"", 1);
}

/* `name = value` */
static void line(struct out *o, const char *name, const char *v)
{
	puts_(o, name);
	puts_(o, " = ");
	value(o, v);
	puts_(o, "\n");
}

static void size_text(char *buf, size_t len, long long n)
{
	static const char units[] = "GMK";
	static const long long mult[] = { 1LL << 30, 1LL << 20, 1LL << 10 };

	for (int i = 0; i < 3; i++)
		if (n > 0 && n % mult[i] == 0) {
			snprintf(buf, len, "%lld%c", n / mult[i], units[i]);
			return;
		}
	snprintf(buf, len, "%lld", n);
}

static void directive(struct out *o, const struct conf_directive *d, const void *base)
{
	const void *f = conf_cfield(base, d);
	char buf[64];

	switch (d->type) {
	case CT_STR:
	case CT_CHOICE: {
		const char *s = *(char *const *)f;

		line(o, d->name, s ? s : "");
		return;
	}
	case CT_BOOL:
		line(o, d->name, *(const int *)f ? "yes" : "no");
		return;
	case CT_INT:
	case CT_TIME:
		if ((d->flags & CF_UNSET_OK) && *(const int *)f == CONF_UNSET) {
			printf_(o, "; %s is not set\n", d->name);
			return;
		}
		snprintf(buf, sizeof(buf), d->type == CT_TIME ? "%ds" : "%d", *(const int *)f);
		line(o, d->name, buf);
		return;
	case CT_SIZE_Z:
		size_text(buf, sizeof(buf), (long long)*(const size_t *)f);
		line(o, d->name, buf);
		return;
	case CT_SIZE_LL:
		size_text(buf, sizeof(buf), *(const long long *)f);
		line(o, d->name, buf);
		return;
	case CT_RLIMIT: {
		long long v = *(const long long *)f;

		if (v == CONF_UNSET) {
			printf_(o, "; %s is not set\n", d->name);
			return;
		}
		if (v == -2)
			line(o, d->name, "unlimited");
		else {
			snprintf(buf, sizeof(buf), "%lld", v);
			line(o, d->name, buf);
		}
		return;
	}
	case CT_OCTAL:
		snprintf(buf, sizeof(buf), "%04o", (unsigned)*(const int *)f);
		line(o, d->name, buf);
		return;
	case CT_ENUM:
		line(o, d->name, d->choices[*(const int *)f]);
		return;
	case CT_LIST: {
		const struct conf_str_list *l = f;

		if (l->n == 0)
			printf_(o, "; %s%s: none\n", d->name, (d->flags & CF_BARE) ? "" : "[]");
		for (size_t i = 0; i < l->n; i++) {
			puts_(o, d->name);
			puts_(o, (d->flags & CF_BARE) ? " = " : "[] = ");
			value(o, l->items[i]);
			puts_(o, "\n");
		}
		return;
	}
	case CT_WORDS: {
		const struct conf_str_list *l = f;
		struct out w = { 0 };

		puts_(&w, "");
		for (size_t i = 0; i < l->n; i++) {
			if (i)
				puts_(&w, " ");
			puts_(&w, l->items[i]);
		}
		if (w.oom)
			o->oom = 1;
		else
			line(o, d->name, w.s);
		free(w.s);
		return;
	}
	case CT_KV: {
		const struct conf_kv_list *l = f;

		if (l->n == 0)
			printf_(o, "; %s[]: none\n", d->name);
		for (size_t i = 0; i < l->n; i++) {
			puts_(o, d->name);
			if (*l->items[i].key || !(d->flags & CF_KEY_OPTIONAL)) {
				puts_(o, "[");
				puts_(o, l->items[i].key);
				puts_(o, "]");
			}
			puts_(o, " = ");
			value(o, l->items[i].value);
			puts_(o, "\n");
		}
		return;
	}
	}
}

static void section(struct out *o, const void *base, unsigned section_flag)
{
	for (size_t i = 0; i < conf_ndirectives; i++) {
		const struct conf_directive *d = &conf_directives[i];

		if ((d->flags & section_flag) && !(d->flags & CF_NOEFFECT))
			directive(o, d, base);
	}
}

char *conf_dump(const struct fpmd_conf *c)
{
	struct out o = { 0 };

	puts_(&o, "[global]\n");
	section(&o, c, CF_GLOBAL);
	for (size_t i = 0; i < c->npools; i++) {
		puts_(&o, "\n[");
		puts_(&o, c->pools[i]->name);
		puts_(&o, "]\n");
		section(&o, c->pools[i], CF_POOL);
	}
	if (o.oom) {
		free(o.s);
		return NULL;
	}
	return o.s;
}

static int str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static int fields_equal(const void *a, const void *b, unsigned section_flag)
{
	for (size_t i = 0; i < conf_ndirectives; i++) {
		const struct conf_directive *d = &conf_directives[i];
		const void *fa, *fb;

		if (!(d->flags & section_flag) || (d->flags & CF_NOEFFECT))
			continue;
		fa = conf_cfield(a, d);
		fb = conf_cfield(b, d);
		switch (d->type) {
		case CT_STR:
		case CT_CHOICE:
			if (!str_eq(*(char *const *)fa, *(char *const *)fb))
				return 0;
			break;
		case CT_BOOL:
		case CT_INT:
		case CT_TIME:
		case CT_OCTAL:
		case CT_ENUM:
			if (*(const int *)fa != *(const int *)fb)
				return 0;
			break;
		case CT_SIZE_Z:
			if (*(const size_t *)fa != *(const size_t *)fb)
				return 0;
			break;
		case CT_SIZE_LL:
		case CT_RLIMIT:
			if (*(const long long *)fa != *(const long long *)fb)
				return 0;
			break;
		case CT_LIST:
		case CT_WORDS: {
			const struct conf_str_list *la = fa, *lb = fb;

			if (la->n != lb->n)
				return 0;
			for (size_t k = 0; k < la->n; k++)
				if (strcmp(la->items[k], lb->items[k]) != 0)
					return 0;
			break;
		}
		case CT_KV: {
			const struct conf_kv_list *la = fa, *lb = fb;

			if (la->n != lb->n)
				return 0;
			for (size_t k = 0; k < la->n; k++)
				if (strcmp(la->items[k].key, lb->items[k].key) != 0 ||
				    strcmp(la->items[k].value, lb->items[k].value) != 0)
					return 0;
			break;
		}
		}
	}
	return 1;
}

int conf_equal(const struct fpmd_conf *a, const struct fpmd_conf *b)
{
	if (!str_eq(a->prefix, b->prefix) || a->npools != b->npools ||
	    !fields_equal(a, b, CF_GLOBAL))
		return 0;
	for (size_t i = 0; i < a->npools; i++)
		if (!str_eq(a->pools[i]->name, b->pools[i]->name) ||
		    !fields_equal(a->pools[i], b->pools[i], CF_POOL))
			return 0;
	return 1;
}
