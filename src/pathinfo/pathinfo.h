/*
 * Which file a PHP request runs, and the CGI path variables that go with it,
 * from the FastCGI params the web server sent: php-fpm's rules
 * (cgi.fix_pathinfo) without its pointer arithmetic.  Pure: the file system
 * is asked through a callback, so hostile inputs are unit-tested and fuzzed.
 *
 *   SCRIPT_FILENAME = /srv/www/index.php/a/b  (fix_pathinfo, no PATH_INFO)
 *     → script /srv/www/index.php, PATH_INFO /a/b, SCRIPT_NAME loses "/a/b"
 *       when it ends with it, PATH_TRANSLATED = DOCUMENT_ROOT + PATH_INFO.
 *   SCRIPT_FILENAME = proxy:fcgi://127.0.0.1:9000/srv/www/x.php (Apache)
 *     → /srv/www/x.php
 *
 * Ownership: every string in struct pathinfo is malloc'ed; pathinfo_free
 * releases them.
 */
#ifndef FPMD_PATHINFO_H
#define FPMD_PATHINFO_H

struct pathinfo_in {
	const char *script_filename;   /* may be NULL */
	const char *script_name;
	const char *path_info;         /* NULL when the server sent none */
	const char *path_translated;
	const char *document_root;
	const char *request_uri;
	int fix_pathinfo;              /* php.ini cgi.fix_pathinfo */
	/* 1 when path names a regular file the worker may open */
	int (*is_file)(const char *path, void *ctx);
	void *ctx;
};

struct pathinfo {
	char *script;                  /* the file to run; NULL: none given */
	char *script_name;             /* SCRIPT_NAME as PHP sees it */
	char *path_info;               /* NULL when there is none */
	char *path_translated;         /* NULL when there is none */
	char *php_self;                /* SCRIPT_NAME + PATH_INFO */
	int found;                     /* script names a regular file */
};

/* 0, or -1 when memory runs out (out is freed). */
int pathinfo_resolve(const struct pathinfo_in *in, struct pathinfo *out);
void pathinfo_free(struct pathinfo *pi);

/* 1 when the script's extension is in the list (NULL-terminated); an empty list allows all. */
int pathinfo_extension_allowed(const char *script, const char *const *exts, unsigned n);

#endif
