/*
 * Private to src/conf: the directive table, the loader's state and the
 * helpers the conf_*.c files share.  Nothing here is part of the contract in
 * conf.h.
 */
#ifndef FPMD_CONF_INTERNAL_H
#define FPMD_CONF_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include "conf/conf.h"

#ifndef FPMD_DEFAULT_PREFIX
#define FPMD_DEFAULT_PREFIX "/usr/local"
#endif

#define CONF_MAX_INCLUDE_DEPTH 5     /* php-fpm's limit */
#define CONF_MAX_FILES         1000  /* included files in one load, against glob fan-out */
#define CONF_MAX_DIRECTIVES    128

/* How a directive's value is read and stored. */
enum conf_type {
	CT_STR,       /* char *, empty = NULL */
	CT_BOOL,      /* int 0/1 */
	CT_INT,       /* int within [min, max] */
	CT_TIME,      /* int seconds */
	CT_SIZE_Z,    /* size_t bytes */
	CT_SIZE_LL,   /* long long bytes */
	CT_RLIMIT,    /* long long, -2 = unlimited */
	CT_OCTAL,     /* int file mode */
	CT_ENUM,      /* int index into choices */
	CT_CHOICE,    /* char *, one of choices (stored as spelled in the table) */
	CT_LIST,      /* struct conf_str_list, each occurrence appends */
	CT_WORDS,     /* struct conf_str_list, space separated, replaces */
	CT_KV,        /* struct conf_kv_list, name[key] = value */
};

/* Flags. */
#define CF_GLOBAL       0x0001u  /* belongs in [global] */
#define CF_POOL         0x0002u  /* belongs in a pool section */
#define CF_PATH         0x0004u  /* relative paths are resolved against the prefix */
#define CF_ABS          0x0008u  /* must be an absolute path */
#define CF_URI          0x0010u  /* starts with '/', only [A-Za-z0-9/_.~-] */
#define CF_SLASH        0x0020u  /* must start with '/' */
#define CF_KEY_OPTIONAL 0x0040u  /* CT_KV: a bare name means key "" */
#define CF_NOEFFECT     0x0080u  /* accepted with a warning */
#define CF_DOLLAR_PFX   0x0100u  /* a leading $prefix is replaced by the pool prefix */
#define CF_ENV          0x0200u  /* env[]: NAME = $NAME copies from the environment */
#define CF_UNSET_OK     0x0400u  /* CONF_UNSET is a legal stored value (not dumped) */
#define CF_LISTEN       0x0800u  /* an address: path, port, ip:port, [ipv6]:port */
#define CF_PHP_ONLY     0x1000u  /* php_value[] and friends */
#define CF_BARE         0x2000u  /* CT_LIST: dumped as `name = v`, not `name[] = v` */

struct conf_directive {
	const char *name;
	enum conf_type type;
	unsigned flags;
	size_t offset;              /* in struct fpmd_conf or struct pool_conf */
	const char *def;            /* default, in the file's syntax; NULL = none */
	long long min, max;         /* CT_INT/CT_TIME/CT_SIZE_*: bounds */
	const char *const *choices; /* CT_ENUM/CT_CHOICE, NULL-terminated */
	const char *note;           /* CF_NOEFFECT: why */
	/* Extra per-value rule: NULL when fine, else the end of the message. */
	const char *(*check)(const char *value, long long num);
	/* Accepted but worth a word: NULL, or the warning's text. */
	const char *(*warn)(const char *value);
};

extern const struct conf_directive conf_directives[];
extern const size_t conf_ndirectives;

/* Bits of the per-directive state the loader keeps. */
#define CS_SET       0x01  /* given in the file */
#define CS_DOLLAR    0x02  /* value began with an unescaped "$prefix" */
#define CS_REFUSED   0x04  /* given, and its value refused (reported there, not as "not set") */

/* Loader state for one pool, parallel to c->pools. */
struct conf_pool_state {
	unsigned char set[CONF_MAX_DIRECTIVES];
};

/* SEC_SKIP: after a broken section header, lines are ignored until the next one. */
enum conf_section { SEC_NONE = 0, SEC_GLOBAL, SEC_POOL, SEC_SKIP };

struct conf_ctx {
	struct fpmd_conf *c;
	const struct conf_options *opt;
	const struct conf_io *io;
	struct conf_diags *diags;
	int oom;

	unsigned char gset[CONF_MAX_DIRECTIVES];
	struct conf_pool_state *ps;
	size_t nps;

	enum conf_section sec;
	size_t pool;                /* index into c->pools when sec == SEC_POOL */
	char *base_dir;             /* relative include patterns start here */
	size_t nfiles;
};

/* A value as the reader hands it over. */
struct conf_value {
	const char *text;
	int lead_dollar;            /* first character is an unescaped '$' */
	int quoted;                 /* written in quotes: a literal, never an expression */
	const char *file;
	int line;
};

/* conf_diag.c */
void conf_diag_add(struct conf_ctx *x, int severity, const char *file, int line,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void conf_diag_vadd(struct conf_ctx *x, int severity, const char *file, int line,
		    const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
const char *conf_suggest(const char *name, unsigned section_flag);
size_t conf_edit_distance(const char *a, const char *b);

/* conf_directives.c */
const struct conf_directive *conf_directive_find(const char *name, unsigned section_flag);
size_t conf_directive_index(const struct conf_directive *d);
void conf_directive_apply(struct conf_ctx *x, const struct conf_directive *d,
			  const char *key, int has_brackets, const struct conf_value *v);
int conf_set_defaults(struct conf_ctx *x, void *base, unsigned section_flag);
/* 1 for a directive accepted and stored nowhere (listen.setfib): it has no field. */
int conf_directive_stores_nothing(const struct conf_directive *d);
void *conf_field(void *base, const struct conf_directive *d);
const void *conf_cfield(const void *base, const struct conf_directive *d);

/* conf_values.c */
extern const char *const conf_pm_choices[];
extern const char *const conf_app_choices[];
extern const char *const conf_level_choices[];
int conf_parse_int(const char *s, long long min, long long max, long long *out);
int conf_parse_octal(const char *s, int *out);
int conf_parse_enum(const char *s, const char *const *choices, int *out);
char *conf_join_choices(const char *const *choices, int first);
int conf_str_list_add(struct conf_str_list *l, const char *s);
int conf_kv_list_set(struct conf_kv_list *l, const char *key, const char *value, int quoted,
		     const char *file, int line);
char *conf_strdup(const char *s);
char *conf_strndup(const char *s, size_t n);
char *conf_path_join(const char *dir, const char *path);
char *conf_dirname(const char *path);

/* conf_ini.c */
void conf_read_text(struct conf_ctx *x, const char *file, const char *text, int depth);

/* conf_load.c */
int conf_pool_open(struct conf_ctx *x, const char *name, const char *file, int line,
		   size_t *index);

/* conf_validate.c */
void conf_validate(struct conf_ctx *x);

#endif
