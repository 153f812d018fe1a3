/*
 * Which file a PHP request runs, and the CGI variables PHP then sees, from
 * the FastCGI params the web server sent: php-fpm's rules (cgi.fix_pathinfo,
 * cgi.discard_path, Apache's proxy:fcgi:// and REDIRECT_URL forms, IIS's
 * PATH_INFO) with every length checked before it is used.  php-fpm's
 * CVE-2019-11043 was pointer arithmetic on a PATH_INFO shorter than assumed.
 *
 * Pure: params come through a callback, the file system through two more,
 * so hostile inputs are unit-tested and fuzzed.  The result is a list of
 * variables to set or unset over the params ($_SERVER, getenv()), the
 * ORIG_* copies php-fpm keeps, the script to run and SAPI's request_uri.
 *
 * Ownership: every string in struct pathinfo is malloc'ed; pathinfo_free
 * releases them.
 */
#ifndef FPMD_PATHINFO_H
#define FPMD_PATHINFO_H

#include <stddef.h>

#define PATHINFO_MAX_VARS 16

struct pathinfo_in {
	/* a FastCGI param by name, NULL when the server did not send it */
	const char *(*param)(const char *name, void *ctx);
	/* 1 when path is a regular file */
	int (*is_file)(const char *path, void *ctx);
	/* 1 when path resolves (realpath(3) succeeds) */
	int (*exists)(const char *path, void *ctx);
	void *ctx;
	int fix_pathinfo;          /* php.ini cgi.fix_pathinfo (default on) */
	int discard_path;          /* php.ini cgi.discard_path */
	const char *doc_root;      /* php.ini doc_root, NULL when unset */
};

struct pathinfo_var {
	char *name;
	char *value;               /* NULL: the variable is removed */
};

struct pathinfo {
	char *script;              /* the file to run; NULL: 404 "Primary script unknown" */
	char *request_uri;         /* SAPI's request_uri (PHP_SELF's base) */
	struct pathinfo_var vars[PATHINFO_MAX_VARS];
	size_t nvars;
};

/* 0, or -1 when memory runs out (out is freed). */
int pathinfo_resolve(const struct pathinfo_in *in, struct pathinfo *out);
void pathinfo_free(struct pathinfo *pi);

/*
 * A variable as PHP sees it: the resolved value when the resolver set or
 * removed it (*changed = 1), else the param's.
 */
const char *pathinfo_var(const struct pathinfo *pi, const struct pathinfo_in *in,
			 const char *name, int *changed);

/* 1 when the script's name ends with one of the extensions; an empty list allows all. */
int pathinfo_extension_allowed(const char *script, const char *const *exts, unsigned n);

/* php-fpm's is_valid_path: no ".." path component. */
int pathinfo_valid(const char *path);

#endif
