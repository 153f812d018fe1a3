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
#include "buf/buf.h"

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

static void value_quoted(struct buf *o, const char *s, int force)
{
	if (!force && plain(s)) {
		buf_puts(o, s);
		return;
	}
	buf_put(o, "\"", 1);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\' || *s == '$')
			buf_put(o, "\\", 1);
		buf_put(o, s, 1);
	}
	buf_put(o, "\"", 1);
}

static void value(struct buf *o, const char *s)
{
	value_quoted(o, s, 0);
}

/* `name = value` */
static void line(struct buf *o, const char *name, const char *v)
{
	buf_puts(o, name);
	buf_puts(o, " = ");
	value(o, v);
	buf_puts(o, "\n");
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

static void directive(struct buf *o, const struct conf_directive *d, const void *base)
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
			buf_printf(o, "; %s is not set\n", d->name);
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
			buf_printf(o, "; %s is not set\n", d->name);
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
			buf_printf(o, "; %s%s: none\n", d->name, (d->flags & CF_BARE) ? "" : "[]");
		for (size_t i = 0; i < l->n; i++) {
			buf_puts(o, d->name);
			buf_puts(o, (d->flags & CF_BARE) ? " = " : "[] = ");
			value(o, l->items[i]);
			buf_puts(o, "\n");
		}
		return;
	}
	case CT_WORDS: {
		const struct conf_str_list *l = f;
		struct buf w = { 0 };

		buf_puts(&w, "");
		for (size_t i = 0; i < l->n; i++) {
			if (i)
				buf_puts(&w, " ");
			buf_puts(&w, l->items[i]);
		}
		if (w.oom)
			o->oom = 1;
		else
			line(o, d->name, w.p);
		buf_free(&w);
		return;
	}
	case CT_KV: {
		const struct conf_kv_list *l = f;

		if (l->n == 0)
			buf_printf(o, "; %s[]: none\n", d->name);
		for (size_t i = 0; i < l->n; i++) {
			buf_puts(o, d->name);
			if (*l->items[i].key || !(d->flags & CF_KEY_OPTIONAL)) {
				buf_puts(o, "[");
				buf_puts(o, l->items[i].key);
				buf_puts(o, "]");
			}
			buf_puts(o, " = ");
			/* quoted as written: a quoted php_value[] is a literal, not an expression */
			value_quoted(o, l->items[i].value, l->items[i].quoted);
			buf_puts(o, "\n");
		}
		return;
	}
	}
}

static void section(struct buf *o, const void *base, unsigned section_flag)
{
	for (size_t i = 0; i < conf_ndirectives; i++) {
		const struct conf_directive *d = &conf_directives[i];

		if ((d->flags & section_flag) && !(d->flags & CF_NOEFFECT))
			directive(o, d, base);
	}
}

char *conf_dump(const struct fpmd_conf *c)
{
	struct buf o = { 0 };

	buf_puts(&o, "[global]\n");
	section(&o, c, CF_GLOBAL);
	for (size_t i = 0; i < c->npools; i++) {
		buf_puts(&o, "\n[");
		buf_puts(&o, c->pools[i]->name);
		buf_puts(&o, "]\n");
		section(&o, c->pools[i], CF_POOL);
	}
	return buf_take(&o, NULL);
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
