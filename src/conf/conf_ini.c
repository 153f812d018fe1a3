/*
 * The INI reader: php-fpm.conf's dialect, one line at a time.
 *
 *   ; comment            # comment (full lines)
 *   [global]   [pool]    (a repeated pool name, in any case, reopens the pool)
 *   key = value ; comment
 *   key = "double quoted: \" \\ \$ are escapes, ${VAR} and $pool expand"
 *   key = 'single quoted: taken literally'
 *   name[key] = value    name[] = value
 *   include = pool.d/www*.conf   (a glob(3) pattern)
 *
 * ${VAR} comes from the environment given in the options, $pool is the
 * current pool's name (an error in [global]); both expand in unquoted and
 * double-quoted values.  A literal '$' that must stay one is written "\$".
 *
 * An included file continues the section it was included from and may open
 * others; the section it ends in stays current afterwards, as in php-fpm,
 * where one "current section" runs through every file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf_internal.h"
#include "buf/buf.h"

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static int is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* The position of one line while it is read. */
struct line {
	const char *file;
	int lineno;
	const char *key;            /* for messages; "" before the key is known */
};

static const char *env_get(const struct conf_ctx *x, const char *name, size_t n)
{
	if (!x->opt || !x->opt->environ)
		return NULL;
	for (char *const *e = x->opt->environ; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/*
 * Expands the '$' at *pp into b: ${VAR}, $pool, or a literal '$'.  Returns
 * -1 after an error diagnostic.
 */
static int expand(struct conf_ctx *x, const struct line *ln, const char **pp, const char *end,
		  struct buf *b, int *lead_dollar)
{
	const char *p = *pp;

	if (p + 1 < end && p[1] == '{') {
		const char *name = p + 2, *q = name, *val;

		while (q < end && is_name_char(*q))
			q++;
		if (q == end || *q != '}' || q == name || (*name >= '0' && *name <= '9')) {
			conf_diag_add(x, 1, ln->file, ln->lineno,
				      "%s: '${' must be followed by a variable name and '}'", ln->key);
			return -1;
		}
		val = env_get(x, name, (size_t)(q - name));
		if (!val) {
			conf_diag_add(x, 0, ln->file, ln->lineno,
				      "%s: environment variable '%.*s' is not set; using an empty value",
				      ln->key, (int)(q - name), name);
			val = "";
		} else if (strchr(val, '\n')) {
			conf_diag_add(x, 1, ln->file, ln->lineno,
				      "%s: environment variable '%.*s' contains a newline", ln->key,
				      (int)(q - name), name);
			return -1;
		}
		buf_put(b, val, strlen(val));
		*pp = q + 1;
		return 0;
	}
	if ((size_t)(end - p) >= 5 && strncmp(p, "$pool", 5) == 0) {
		if (x->sec != SEC_POOL) {
			conf_diag_add(x, 1, ln->file, ln->lineno,
				      "%s: '$pool' can only be used in a pool section", ln->key);
			return -1;
		}
		buf_put(b, x->c->pools[x->pool]->name, strlen(x->c->pools[x->pool]->name));
		*pp = p + 5;
		return 0;
	}
	if (b->len == 0)
		*lead_dollar = 1;
	buf_putc(b, '$');
	*pp = p + 1;
	return 0;
}

/* After a closing quote only blanks and a ';' comment may follow. */
static int after_quote(struct conf_ctx *x, const struct line *ln, const char *p, const char *end)
{
	while (p < end && is_space(*p))
		p++;
	if (p < end && *p != ';') {
		conf_diag_add(x, 1, ln->file, ln->lineno, "%s: unexpected text after the closing quote",
			      ln->key);
		return -1;
	}
	return 0;
}

/*
 * Reads the value from p to the end of the line into b.  Returns 0, or -1
 * after an error diagnostic.
 */
static int lex_value(struct conf_ctx *x, const struct line *ln, const char *p, const char *end,
		     struct buf *b, int *lead_dollar, int *quoted)
{
	*lead_dollar = 0;
	*quoted = 0;
	buf_put(b, "", 0);
	while (p < end && is_space(*p))
		p++;

	if (p < end && *p == '\'') {
		*quoted = 1;
		const char *close = memchr(p + 1, '\'', (size_t)(end - p - 1));

		if (!close) {
			conf_diag_add(x, 1, ln->file, ln->lineno, "%s: unterminated quoted value",
				      ln->key);
			return -1;
		}
		buf_put(b, p + 1, (size_t)(close - p - 1));
		return after_quote(x, ln, close + 1, end);
	}

	if (p < end && *p == '"') {
		*quoted = 1;
		for (p++; p < end && *p != '"';) {
			if (*p == '\\' && p + 1 < end && (p[1] == '"' || p[1] == '\\' || p[1] == '$')) {
				buf_putc(b, p[1]);
				p += 2;
			} else if (*p == '$') {
				if (expand(x, ln, &p, end, b, lead_dollar) < 0)
					return -1;
			} else {
				buf_putc(b, *p++);
			}
		}
		if (p == end) {
			conf_diag_add(x, 1, ln->file, ln->lineno, "%s: unterminated quoted value",
				      ln->key);
			return -1;
		}
		return after_quote(x, ln, p + 1, end);
	}

	/* Unquoted: up to a ';' comment, blanks trimmed. */
	{
		const char *stop = p;

		while (stop < end && *stop != ';')
			stop++;
		end = stop;
		while (end > p && is_space(end[-1]))
			end--;
		while (p < end) {
			if (*p == '$') {
				if (expand(x, ln, &p, end, b, lead_dollar) < 0)
					return -1;
			} else {
				buf_putc(b, *p++);
			}
		}
	}
	return 0;
}

/* Pool names end up in paths and log lines: keep them plain. */
static int pool_name_ok(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!is_name_char(*s) && !strchr(".-@+:", *s))
			return 0;
	return 1;
}

static void section(struct conf_ctx *x, const struct line *ln, const char *p, const char *end)
{
	const char *close = memchr(p, ']', (size_t)(end - p)), *q, *s, *e;
	char *name;

	x->sec = SEC_SKIP;
	if (!close) {
		conf_diag_add(x, 1, ln->file, ln->lineno, "expected ']' to close the section name");
		return;
	}
	for (q = close + 1; q < end && is_space(*q); q++)
		;
	if (q < end && *q != ';' && *q != '#') {
		conf_diag_add(x, 1, ln->file, ln->lineno,
			      "unexpected text after the section name");
		return;
	}
	for (s = p + 1; s < close && is_space(*s); s++)
		;
	for (e = close; e > s && is_space(e[-1]); e--)
		;
	name = conf_strndup(s, (size_t)(e - s));
	if (!name) {
		x->oom = 1;
		return;
	}
	if (strcasecmp(name, "global") == 0) {
		x->sec = SEC_GLOBAL;
	} else if (!pool_name_ok(name)) {
		conf_diag_add(x, 1, ln->file, ln->lineno,
			      "invalid pool name '%s' (use letters, digits and . _ - @ + :)", name);
	} else if (conf_pool_open(x, name, ln->file, ln->lineno, &x->pool) == 0) {
		x->sec = SEC_POOL;
	}
	free(name);
}

static void include(struct conf_ctx *x, const struct line *ln, const char *value, int depth)
{
	struct conf_str_list paths = { 0 };
	char *pattern;

	if (!*value) {
		conf_diag_add(x, 1, ln->file, ln->lineno, "include: a file or pattern is needed");
		return;
	}
	if (value[0] == '/' || !x->base_dir)
		pattern = strdup(value);
	else
		pattern = conf_path_join(x->base_dir, value);
	if (!pattern) {
		x->oom = 1;
		return;
	}
	if (depth + 1 > CONF_MAX_INCLUDE_DEPTH) {
		conf_diag_add(x, 1, ln->file, ln->lineno,
			      "include '%s': too many nested includes (at most %d)", pattern,
			      CONF_MAX_INCLUDE_DEPTH);
		goto out_free_pattern;
	}
	errno = 0;
	if (x->io->glob(pattern, &paths, x->io->ctx) < 0) {
		if (errno == ENOENT)
			conf_diag_add(x, 1, ln->file, ln->lineno, "include '%s': its directory does "
				      "not exist (create it, or remove the include line)", pattern);
		else
			conf_diag_add(x, 1, ln->file, ln->lineno, "include '%s': %s", pattern,
				      errno ? strerror(errno) : "cannot expand the pattern");
		goto out_free_pattern;
	}
	if (paths.n == 0)
		conf_diag_add(x, 0, ln->file, ln->lineno, "include '%s' matched no files", pattern);
	for (size_t i = 0; i < paths.n && !x->oom; i++) {
		size_t len = 0;
		char *text;

		if (++x->nfiles > CONF_MAX_FILES) {
			conf_diag_add(x, 1, ln->file, ln->lineno,
				      "include '%s': more than %d files included in all", pattern,
				      CONF_MAX_FILES);
			break;
		}
		errno = 0;
		text = x->io->read(paths.items[i], &len, x->io->ctx);
		if (!text) {
			conf_diag_add(x, 1, ln->file, ln->lineno, "include: cannot read '%s': %s",
				      paths.items[i], errno ? strerror(errno) : "unknown error");
			continue;
		}
		conf_read_text(x, paths.items[i], text, depth + 1);
		free(text);
	}
	conf_str_list_free(&paths);
out_free_pattern:
	free(pattern);
}

/* Looks the key up for the current section and stores the value. */
static void entry(struct conf_ctx *x, const struct line *ln, const char *name, const char *key,
		  int has_brackets, const struct conf_value *v)
{
	unsigned here = x->sec == SEC_GLOBAL ? CF_GLOBAL : CF_POOL;
	const struct conf_directive *d = conf_directive_find(name, here);

	if (!d) {
		const struct conf_directive *other = conf_directive_find(name, here ^ (CF_GLOBAL | CF_POOL));
		const char *hint;

		if (other && here == CF_GLOBAL) {
			conf_diag_add(x, 1, ln->file, ln->lineno,
				      "'%s' belongs in a pool section, not [global]", other->name);
			return;
		}
		if (other) {
			conf_diag_add(x, 1, ln->file, ln->lineno,
				      "'%s' belongs in [global], not in pool %s", other->name,
				      x->c->pools[x->pool]->name);
			return;
		}
		hint = conf_suggest(name, here);
		if (!hint)
			hint = conf_suggest(name, 0);
		if (hint)
			conf_diag_add(x, 1, ln->file, ln->lineno,
				      "unknown entry '%s' (did you mean '%s'?)", name, hint);
		else
			conf_diag_add(x, 1, ln->file, ln->lineno, "unknown entry '%s'", name);
		return;
	}
	conf_directive_apply(x, d, key, has_brackets, v);
}

/* One `name[key] = value` line, p at the name. */
static void key_line(struct conf_ctx *x, struct line *ln, const char *p, const char *end,
		     int depth)
{
	const char *ns = p, *ne, *ks = NULL, *ke = NULL;
	char *name, *key = NULL;
	struct buf val = { 0 };
	struct conf_value v;
	int has_brackets = 0, lead = 0;

	while (p < end && !is_space(*p) && !strchr("=[];\"'", *p))
		p++;
	ne = p;
	name = conf_strndup(ns, (size_t)(ne - ns));
	if (!name) {
		x->oom = 1;
		return;
	}
	ln->key = name;
	if (p < end && *p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));

		if (!close || ne == ns) {
			conf_diag_add(x, 1, ln->file, ln->lineno, "%s: expected ']' after the key",
				      name);
			goto out_free;
		}
		for (ks = p + 1; ks < close && is_space(*ks); ks++)
			;
		for (ke = close; ke > ks && is_space(ke[-1]); ke--)
			;
		has_brackets = 1;
		p = close + 1;
	}
	while (p < end && is_space(*p))
		p++;
	if (ne == ns || p == end || *p != '=') {
		if (ne == ns)
			conf_diag_add(x, 1, ln->file, ln->lineno, "expected 'key = value'");
		else
			conf_diag_add(x, 1, ln->file, ln->lineno,
				      "expected 'key = value' after '%s'", name);
		goto out_free;
	}
	key = has_brackets ? conf_strndup(ks, (size_t)(ke - ks)) : strdup("");
	if (!key) {
		x->oom = 1;
		goto out_free;
	}
	if (x->sec == SEC_SKIP)
		goto out_free;
	int quoted = 0;
	if (lex_value(x, ln, p + 1, end, &val, &lead, &quoted) < 0)
		goto out_free;
	if (val.oom) {
		x->oom = 1;
		goto out_free;
	}
	if (strcasecmp(name, "include") == 0 && !has_brackets) {
		include(x, ln, val.p, depth);
		goto out_free;
	}
	if (x->sec == SEC_NONE) {
		conf_diag_add(x, 1, ln->file, ln->lineno,
			      "'%s' appears before any section; start with [global] or [POOLNAME]",
			      name);
		goto out_free;
	}
	v.text = val.p;
	v.lead_dollar = lead;
	v.quoted = quoted;
	v.file = ln->file;
	v.line = ln->lineno;
	entry(x, ln, name, key, has_brackets, &v);
out_free:
	buf_free(&val);
	free(key);
	free(name);
	ln->key = "";
}

/* Reads one file's text (the main file at depth 0, includes deeper). */
void conf_read_text(struct conf_ctx *x, const char *file, const char *text, int depth)
{
	struct line ln = { .file = file, .lineno = 0, .key = "" };
	const char *p = text;

	while (*p && !x->oom) {
		const char *eol = strchr(p, '\n'), *end = eol ? eol : p + strlen(p);
		const char *s = p;

		ln.lineno++;
		while (s < end && is_space(*s))
			s++;
		if (s == end || *s == ';' || *s == '#')
			;
		else if (*s == '[')
			section(x, &ln, s, end);
		else
			key_line(x, &ln, s, end, depth);
		if (!eol)
			break;
		p = eol + 1;
	}
}
