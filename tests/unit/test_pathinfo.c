/*
 * Request path rules (src/pathinfo): php-fpm's cgi.fix_pathinfo behaviour,
 * Apache's forms and hostile inputs (CVE-2019-11043's shape).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "pathinfo/pathinfo.h"

/* The fake world: params as "NAME=value" strings, files as paths. */
struct world {
	const char *const *params;
	const char *const *files;
};

static const char *param(const char *name, void *ctx)
{
	const struct world *w = ctx;
	size_t n = strlen(name);
	for (const char *const *p = w->params; *p; p++)
		if (strncmp(*p, name, n) == 0 && (*p)[n] == '=')
			return *p + n + 1;
	return NULL;
}

static int is_file(const char *path, void *ctx)
{
	const struct world *w = ctx;
	for (const char *const *f = w->files; *f; f++)
		if (strcmp(*f, path) == 0)
			return 1;
	return 0;
}

static const char *const files[] = { "/srv/www/index.php", "/srv/www/app/x.php", NULL };

static struct pathinfo_in in_for(struct world *w, int fix)
{
	return (struct pathinfo_in){ .param = param, .is_file = is_file, .exists = is_file,
				     .ctx = w, .fix_pathinfo = fix };
}

#define VAR(name) pathinfo_var(&out, &in, name, NULL)

static void test_plain_script(void **state)
{
	(void)state;
	const char *const params[] = { "SCRIPT_FILENAME=/srv/www/index.php", "SCRIPT_NAME=/index.php",
				       "DOCUMENT_ROOT=/srv/www", NULL };
	struct world w = { params, files };
	struct pathinfo_in in = in_for(&w, 1);
	struct pathinfo out;
	assert_int_equal(pathinfo_resolve(&in, &out), 0);
	assert_string_equal(out.script, "/srv/www/index.php");
	assert_string_equal(out.request_uri, "/index.php");
	assert_int_equal(out.nvars, 0);
	assert_null(VAR("PATH_INFO"));
	pathinfo_free(&out);
}

static void test_fix_pathinfo_splits_nginx_style(void **state)
{
	(void)state;
	/* nginx with fastcgi_split_path_info not used: everything in SCRIPT_FILENAME,
	 * and PATH_INFO = the URI (a common broken setup php-fpm tolerates) */
	const char *const params[] = { "SCRIPT_FILENAME=/srv/www/index.php/a/b",
				       "SCRIPT_NAME=/index.php/a/b", "PATH_INFO=/index.php/a/b",
				       "DOCUMENT_ROOT=/srv/www/", NULL };
	struct world w = { params, files };
	struct pathinfo_in in = in_for(&w, 1);
	struct pathinfo out;
	assert_int_equal(pathinfo_resolve(&in, &out), 0);
	assert_string_equal(out.script, "/srv/www/index.php");
	assert_string_equal(VAR("PATH_INFO"), "/a/b");
	assert_string_equal(VAR("ORIG_PATH_INFO"), "/index.php/a/b");
	assert_string_equal(VAR("SCRIPT_NAME"), "/index.php");
	assert_string_equal(VAR("SCRIPT_FILENAME"), "/srv/www/index.php");
	assert_string_equal(VAR("ORIG_SCRIPT_FILENAME"), "/srv/www/index.php/a/b");
	assert_string_equal(VAR("PATH_TRANSLATED"), "/srv/www/a/b");
	assert_string_equal(out.request_uri, "/index.php");
	pathinfo_free(&out);
}

static void test_no_fix_pathinfo_runs_path_translated(void **state)
{
	(void)state;
	const char *const params[] = { "SCRIPT_FILENAME=/srv/www/index.php/p", "SCRIPT_NAME=/index.php",
				       "PATH_INFO=/p", "PATH_TRANSLATED=/srv/www/index.php", NULL };
	struct world w = { params, files };
	struct pathinfo_in in = in_for(&w, 0);
	struct pathinfo out;
	assert_int_equal(pathinfo_resolve(&in, &out), 0);
	assert_string_equal(out.script, "/srv/www/index.php");
	assert_string_equal(out.request_uri, "/p");
	assert_int_equal(out.nvars, 0);
	pathinfo_free(&out);
	in.discard_path = 1;
	assert_int_equal(pathinfo_resolve(&in, &out), 0);
	assert_string_equal(out.script, "/srv/www/index.php/p");
	pathinfo_free(&out);
}

/* CVE-2019-11043's shape: PATH_INFO shorter than what is cut off, SCRIPT_NAME short. */
static void test_no_underflow(void **state)
{
	(void)state;
	const char *const params[] = { "SCRIPT_FILENAME=/srv/www/index.php/very/long/extra/path",
				       "SCRIPT_NAME=/x", "PATH_INFO=", NULL };
	struct world w = { params, files };
	struct pathinfo_in in = in_for(&w, 1);
	struct pathinfo out;
	assert_int_equal(pathinfo_resolve(&in, &out), 0);
	assert_string_equal(out.script, "/srv/www/index.php");
	assert_string_equal(VAR("PATH_INFO"), "");       /* untouched: nothing to take it from */
	assert_string_equal(VAR("SCRIPT_NAME"), "/x");
	pathinfo_free(&out);

	const char *const p2[] = { "SCRIPT_FILENAME=////", "SCRIPT_NAME=", NULL };
	w.params = p2;
	assert_int_equal(pathinfo_resolve(&in, &out), 0);
	assert_null(out.script);
	pathinfo_free(&out);
	const char *const p3[] = { "SCRIPT_FILENAME=/srv/www/../../etc/passwd", NULL };
	w.params = p3;
	assert_int_equal(pathinfo_resolve(&in, &out), 0);
	assert_null(out.script);                          /* php-fpm's is_valid_path */
	pathinfo_free(&out);
}

static void test_missing_script(void **state)
{
	(void)state;
	const char *const params[] = { "SCRIPT_NAME=/index.php", NULL };
	struct world w = { params, files };
	struct pathinfo_in in = in_for(&w, 1);
	struct pathinfo out;
	assert_int_equal(pathinfo_resolve(&in, &out), 0);
	assert_null(out.script);
	pathinfo_free(&out);
	const char *const p2[] = { "SCRIPT_FILENAME=/srv/www/nope.php", "SCRIPT_NAME=/nope.php", NULL };
	w.params = p2;
	assert_int_equal(pathinfo_resolve(&in, &out), 0);
	assert_null(out.script);
	assert_null(VAR("SCRIPT_FILENAME"));
	assert_string_equal(VAR("ORIG_SCRIPT_FILENAME"), "/srv/www/nope.php");
	pathinfo_free(&out);
}

static void test_apache_proxy_pass(void **state)
{
	(void)state;
	/* mod_proxy_fcgi + ProxyPass: no PATH_INFO; the path info is in SCRIPT_NAME, encoded */
	const char *const params[] = {
		"SCRIPT_FILENAME=proxy:fcgi://127.0.0.1:9000/srv/www/app/x.php/1%202?q=1",
		"SCRIPT_NAME=/app/x.php/1 2", NULL };
	struct world w = { params, files };
	struct pathinfo_in in = in_for(&w, 1);
	struct pathinfo out;
	assert_int_equal(pathinfo_resolve(&in, &out), 0);
	assert_string_equal(out.script, "/srv/www/app/x.php");
	assert_string_equal(VAR("PATH_INFO"), "/1%202");
	assert_string_equal(VAR("SCRIPT_NAME"), "/app/x.php");
	assert_string_equal(VAR("ORIG_SCRIPT_NAME"), "/app/x.php/1 2");
	assert_string_equal(VAR("SCRIPT_FILENAME"), "/srv/www/app/x.php");
	assert_string_equal(out.request_uri, "/app/x.php");
	pathinfo_free(&out);
}

static void test_extensions(void **state)
{
	(void)state;
	const char *const php[] = { ".php", ".phar" };
	assert_true(pathinfo_extension_allowed("/a/b.php", php, 2));
	assert_true(pathinfo_extension_allowed("/a/b.phar", php, 2));
	assert_false(pathinfo_extension_allowed("/a/b.txt", php, 2));
	assert_false(pathinfo_extension_allowed("/a/php", php, 2));
	assert_false(pathinfo_extension_allowed("/a/b.php.txt", php, 2));
	assert_true(pathinfo_extension_allowed("/a/anything", php, 0));
	const char *const dotted[] = { ".tar.php" };
	assert_true(pathinfo_extension_allowed("/x.tar.php", dotted, 1));
	assert_true(pathinfo_valid("/a/b..c/d"));
	assert_false(pathinfo_valid("/a/../d"));
	assert_false(pathinfo_valid(".."));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_script),
		cmocka_unit_test(test_fix_pathinfo_splits_nginx_style),
		cmocka_unit_test(test_no_fix_pathinfo_runs_path_translated),
		cmocka_unit_test(test_no_underflow),
		cmocka_unit_test(test_missing_script),
		cmocka_unit_test(test_apache_proxy_pass),
		cmocka_unit_test(test_extensions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
