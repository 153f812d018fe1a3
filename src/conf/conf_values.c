/*
 * Value parsers (booleans, integers, times, sizes, rlimits, modes, enums)
 * and the small list and string helpers the rest of src/conf shares.
 *
 * Every parser takes the whole value and accepts it only when all of it is
 * used: "10x" is not ten.  Numbers are decimal; overflow is an error, never
 * a silent wrap.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf_internal.h"
#include "fcgi/fcgi.h"

const char *const conf_pm_choices[] = { "static", "dynamic", "ondemand", NULL };
const char *const conf_app_choices[] = { "none", "cgi", "module", "exec", "php", NULL };
const char *const conf_level_choices[] = { "debug", "notice", "warning", "error", "alert",
					   NULL };

const char *conf_pm_name(enum conf_pm pm)
{
	return (unsigned)pm < 3 ? conf_pm_choices[pm] : "?";
}

const char *conf_app_name(enum conf_app app)
{
	return (unsigned)app < 5 ? conf_app_choices[app] : "?";
}

const char *conf_log_level_name(enum conf_log_level l)
{
	return (unsigned)l < 5 ? conf_level_choices[l] : "?";
}

/* php-fpm's words; an empty value is false, as an unset INI value is. */
int conf_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "1", "yes", "on", "true", NULL };
	/* "none" is false in PHP's INI syntax, which php-fpm.conf shares */
	static const char *const no[] = { "", "0", "no", "off", "false", "none", NULL };

	for (size_t i = 0; yes[i]; i++)
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
	for (size_t i = 0; no[i]; i++)
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	return -1;
}

/*
 * Leading digits of s as an unsigned value; *end is set past them.  Returns
 * -1 when there is no digit or the number does not fit in a long long.
 */
static int digits(const char *s, const char **end, long long *out)
{
	long long v = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		int d = *s - '0';

		if (v > (LLONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*end = s;
	*out = v;
	return 0;
}

int conf_parse_int(const char *s, long long min, long long max, long long *out)
{
	const char *end;
	long long v;
	int neg = 0;

	if (*s == '-') {
		neg = 1;
		s++;
	}
	if (digits(s, &end, &v) < 0 || *end)
		return -1;
	if (neg)
		v = -v;
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Seconds, with an optional suffix s, m, h or d (php-fpm's units). */
int conf_parse_time(const char *s, int *seconds)
{
	const char *end;
	long long v, mul = 1;

	if (digits(s, &end, &v) < 0)
		return -1;
	switch (*end) {
	case '\0':
	case 's':
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	default:
		return -1;
	}
	if (*end && end[1])
		return -1;
	if (v > INT_MAX / mul)
		return -1;
	*seconds = (int)(v * mul);
	return 0;
}

/* Bytes, with an optional K, M or G (either case), powers of 1024. */
int conf_parse_size(const char *s, long long *bytes)
{
	const char *end;
	long long v, mul = 1;

	if (digits(s, &end, &v) < 0)
		return -1;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mul = 1024LL;
		break;
	case 'm':
	case 'M':
		mul = 1024LL * 1024;
		break;
	case 'g':
	case 'G':
		mul = 1024LL * 1024 * 1024;
		break;
	default:
		return -1;
	}
	if (*end && end[1])
		return -1;
	if (v > LLONG_MAX / mul)
		return -1;
	*bytes = v * mul;
	return 0;
}

int conf_parse_rlimit(const char *s, long long *out)
{
	const char *end;
	long long v;

	if (strcasecmp(s, "unlimited") == 0 || strcasecmp(s, "infinity") == 0) {
		*out = -2;
		return 0;
	}
	if (digits(s, &end, &v) < 0 || *end)
		return -1;
	*out = v;
	return 0;
}

/* A file mode such as 0660 or 660; at most 07777. */
int conf_parse_octal(const char *s, int *out)
{
	int v = 0;

	if (!*s || strlen(s) > 5)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '7')
			return -1;
		v = v * 8 + (*s - '0');
	}
	if (v > 07777)
		return -1;
	*out = v;
	return 0;
}

int conf_parse_enum(const char *s, const char *const *choices, int *out)
{
	for (int i = 0; choices[i]; i++)
		if (strcasecmp(s, choices[i]) == 0) {
			*out = i;
			return 0;
		}
	return -1;
}

/* "a, b or c" for messages, starting at choices[first]. */
char *conf_join_choices(const char *const *choices, int first)
{
	size_t len = 1, n = 0;
	char *s;

	for (int i = first; choices[i]; i++, n++)
		len += strlen(choices[i]) + 2;
	s = malloc(len);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (int i = first; choices[i]; i++) {
		if (i > first)
			strcat(s, ", ");
		strcat(s, choices[i]);
	}
	return s;
}

char *conf_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

char *conf_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* dir + "/" + path, without doubling the slash. */
char *conf_path_join(const char *dir, const char *path)
{
	size_t dl = strlen(dir), pl = strlen(path);
	char *p;

	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	p = malloc(dl + pl + 2);
	if (!p)
		return NULL;
	memcpy(p, dir, dl);
	if (!(dl == 1 && dir[0] == '/'))
		p[dl++] = '/';
	memcpy(p + dl, path, pl + 1);
	return p;
}

/* The directory part of path: "." when there is none. */
char *conf_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return conf_strndup(path, (size_t)(slash - path));
}

int conf_str_list_add(struct conf_str_list *l, const char *s)
{
	char *copy;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;
		char **items = realloc(l->items, cap * sizeof(*items));

		if (!items)
			return -1;
		l->items = items;
		l->cap = cap;
	}
	copy = strdup(s);
	if (!copy)
		return -1;
	l->items[l->n++] = copy;
	return 0;
}

void conf_str_list_free(struct conf_str_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = l->cap = 0;
}

/* Sets key to value: a repeated key replaces the value and keeps its place. */
int conf_kv_list_set(struct conf_kv_list *l, const char *key, const char *value, int quoted,
		     const char *file, int line)
{
	struct conf_kv *kv = NULL;
	char *v, *f;

	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i].key, key) == 0) {
			kv = &l->items[i];
			break;
		}
	v = strdup(value);
	f = file ? strdup(file) : NULL;
	if (!v || (file && !f))
		goto out_free;
	if (!kv) {
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 4;
			struct conf_kv *items = realloc(l->items, cap * sizeof(*items));

			if (!items)
				goto out_free;
			l->items = items;
			l->cap = cap;
		}
		kv = &l->items[l->n];
		kv->key = strdup(key);
		if (!kv->key)
			goto out_free;
		l->n++;
	} else {
		free(kv->value);
		free(kv->file);
	}
	kv->value = v;
	kv->quoted = quoted;
	kv->file = f;
	kv->line = line;
	return 0;

out_free:
	free(v);
	free(f);
	return -1;
}

void conf_kv_list_free(struct conf_kv_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].key);
		free(l->items[i].value);
		free(l->items[i].file);
	}
	free(l->items);
	l->items = NULL;
	l->n = l->cap = 0;
}

const char *conf_kv_get(const struct conf_kv_list *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i].key, key) == 0)
			return l->items[i].value;
	return NULL;
}

void conf_where(const struct conf_kv_list *where, const char *directive, const char *file,
		int line, const char **file_out, int *line_out)
{
	*file_out = file;
	*line_out = line;
	for (size_t i = 0; i < where->n; i++)
		if (strcmp(where->items[i].key, directive) == 0) {
			*file_out = where->items[i].file;
			*line_out = where->items[i].line;
			return;
		}
}

int conf_names_php_cgi(const char *base, size_t len)
{
	if (len >= 7 && strncmp(base, "php-cgi", 7) == 0)
		return 1;
	if (len < 3 || strncmp(base, "php", 3) != 0)
		return 0;
	for (size_t i = 3; i < len; i++)
		if (!((base[i] >= '0' && base[i] <= '9') || base[i] == '.'))
			return 0;
	return 1;
}

void conf_fcgi_limits(const struct pool_conf *pc, struct fcgi_limits *lim)
{
	fcgi_limits_default(lim);
	if (pc->request_max_params_size)
		lim->max_params_size = pc->request_max_params_size;
	if (pc->request_max_params_count > 0)
		lim->max_params_count = (size_t)pc->request_max_params_count;
	if (pc->request_max_param_name_size)
		lim->max_name_len = pc->request_max_param_name_size;
}
