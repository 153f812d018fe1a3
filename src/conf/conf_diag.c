/*
 * Diagnostics: collecting them, formatting "[FILE:LINE] msg", and the
 * "did you mean" suggestion for a misspelt directive (edit distance against
 * the directive table).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf_internal.h"

void conf_diag_vadd(struct conf_ctx *x, int severity, const char *file, int line,
		    const char *fmt, va_list ap)
{
	struct conf_diags *d = x->diags;
	struct conf_diag *item;
	char *msg;

	if (vasprintf(&msg, fmt, ap) < 0) {
		x->oom = 1;
		return;
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		struct conf_diag *items = realloc(d->items, cap * sizeof(*items));

		if (!items)
			goto out_oom;
		d->items = items;
		d->cap = cap;
	}
	item = &d->items[d->n];
	item->severity = severity > 0 ? 1 : severity < 0 ? -1 : 0;
	item->line = line;
	item->msg = msg;
	item->file = NULL;
	if (file) {
		item->file = strdup(file);
		if (!item->file)
			goto out_oom;
	}
	d->n++;
	if (severity > 0)
		d->errors++;
	return;

out_oom:
	free(msg);
	x->oom = 1;
}

void conf_diag_add(struct conf_ctx *x, int severity, const char *file, int line,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_diag_vadd(x, severity, file, line, fmt, ap);
	va_end(ap);
}

char *conf_diag_format(const struct conf_diag *d)
{
	char *s;
	int r;

	if (d->file && d->line > 0)
		r = asprintf(&s, "[%s:%d] %s", d->file, d->line, d->msg);
	else if (d->file)
		r = asprintf(&s, "[%s] %s", d->file, d->msg);
	else
		r = asprintf(&s, "%s", d->msg);
	return r < 0 ? NULL : s;
}

void conf_diags_free(struct conf_diags *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->items[i].file);
		free(d->items[i].msg);
	}
	free(d->items);
	d->items = NULL;
	d->n = d->cap = d->errors = 0;
}

/*
 * Levenshtein distance, ignoring case.  b is a directive name (short), so
 * one row of its length is enough; a may be anything the user wrote.
 */
size_t conf_edit_distance(const char *a, const char *b)
{
	size_t row[64], lb = strlen(b);

	if (lb >= sizeof(row) / sizeof(row[0]))
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; a[i - 1]; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best;
			int same = tolower((unsigned char)a[i - 1]) ==
				   tolower((unsigned char)b[j - 1]);

			best = diag + (same ? 0 : 1);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

/*
 * The directive of the given section closest to name, or NULL when none is
 * close enough to be a plausible typo (a third of the name, at most 4 edits).
 */
const char *conf_suggest(const char *name, unsigned section_flag)
{
	size_t len = strlen(name), limit, best = (size_t)-1;
	const char *found = NULL;

	limit = len / 3;
	if (limit < 1)
		limit = 1;
	if (limit > 4)
		limit = 4;
	for (size_t i = 0; i < conf_ndirectives; i++) {
		const struct conf_directive *d = &conf_directives[i];
		size_t dl = strlen(d->name), dist;

		if (section_flag && !(d->flags & section_flag))
			continue;
		if ((dl > len ? dl - len : len - dl) > limit)
			continue;
		dist = conf_edit_distance(name, d->name);
		if (dist <= limit && dist < best) {
			best = dist;
			found = d->name;
		}
	}
	if ((len > 7 ? len - 7 : 7 - len) <= limit &&
	    conf_edit_distance(name, "include") <= limit && conf_edit_distance(name, "include") < best)
		found = "include";
	return found;
}
