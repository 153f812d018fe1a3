/* cgi.fix_pathinfo resolution (src/pathinfo): php-fpm's rules, hostile inputs included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "pathinfo/pathinfo.h"

/* The fake file system: a NULL-terminated list of regular files. */
static int is_file(const char *path, void *ctx)
{
	for (const char *const *f = ctx; *f; f++)
		if (strcmp(*f, path) == 0)
			return 1;
	return 0;
}

static const char *const files[] = { "/srv/www/index.php", "/srv/www/app/x.php", NULL };

static struct pathinfo resolve(const char *sf, const char *sn, const char *pi, int fix)
{
	struct pathinfo_in in = {
		.script_filename = sf, .script_name = sn, .path_info = pi,
		.document_root = "/srv/www/", .fix_pathinfo = fix, .is_file = is_file,
		.ctx = (void *)files,
	};
	struct pathinfo out;
	assert_int_equal(pathinfo_resolve(&in, &out), 0);
	return out;
}

static void test_plain_script(void **state)
{
	(void)state;
	struct pathinfo p = resolve("/srv/www/index.php", "/index.php", NULL, 1);
	assert_true(p.found);
	assert_string_equal(p.script, "/srv/www/index.php");
	assert_string_equal(p.script_name, "/index.php");
	assert_null(p.path_info);
	assert_string_equal(p.php_self, "/index.php");
	pathinfo_free(&p);
}

static void test_fix_pathinfo_splits(void **state)
{
	(void)state;
	struct pathinfo p = resolve("/srv/www/index.php/a/b", "/index.php/a/b", NULL, 1);
	assert_true(p.found);
	assert_string_equal(p.script, "/srv/www/index.php");
	assert_string_equal(p.path_info, "/a/b");
	assert_string_equal(p.script_name, "/index.php");
	assert_string_equal(p.path_translated, "/srv/www/a/b");
	assert_string_equal(p.php_self, "/index.php/a/b");
	pathinfo_free(&p);
}

static void test_server_path_info_is_kept(void **state)
{
	(void)state;
	struct pathinfo p = resolve("/srv/www/index.php", "/index.php", "/c", 1);
	assert_string_equal(p.path_info, "/c");
	assert_string_equal(p.php_self, "/index.php/c");
	pathinfo_free(&p);
}

static void test_no_fix_pathinfo(void **state)
{
	(void)state;
	struct pathinfo p = resolve("/srv/www/index.php/a", "/index.php/a", NULL, 0);
	assert_false(p.found);
	assert_string_equal(p.script, "/srv/www/index.php/a");
	pathinfo_free(&p);
}

/* CVE-2019-11043's shape: empty PATH_INFO, SCRIPT_NAME shorter than the extra path. */
static void test_no_underflow(void **state)
{
	(void)state;
	struct pathinfo p = resolve("/srv/www/index.php/very/long/extra/path", "/x", "", 1);
	assert_true(p.found);
	assert_string_equal(p.script_name, "/x");
	assert_string_equal(p.path_info, "/very/long/extra/path");
	pathinfo_free(&p);
	p = resolve("/srv/www/index.php/", "", NULL, 1);
	assert_string_equal(p.script_name, "");
	pathinfo_free(&p);
	p = resolve("/", "/", NULL, 1);
	assert_false(p.found);
	pathinfo_free(&p);
	p = resolve("////", "", NULL, 1);
	assert_false(p.found);
	pathinfo_free(&p);
}

static void test_missing_and_proxy(void **state)
{
	(void)state;
	struct pathinfo p = resolve(NULL, "/index.php", NULL, 1);
	assert_null(p.script);
	assert_false(p.found);
	pathinfo_free(&p);
	p = resolve("proxy:fcgi://127.0.0.1:9000/srv/www/app/x.php", "/app/x.php", NULL, 1);
	assert_true(p.found);
	assert_string_equal(p.script, "/srv/www/app/x.php");
	pathinfo_free(&p);
	p = resolve("proxy:fcgi://nohost", "/", NULL, 1);
	assert_false(p.found);
	pathinfo_free(&p);
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
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_script),
		cmocka_unit_test(test_fix_pathinfo_splits),
		cmocka_unit_test(test_server_path_info_is_kept),
		cmocka_unit_test(test_no_fix_pathinfo),
		cmocka_unit_test(test_no_underflow),
		cmocka_unit_test(test_missing_and_proxy),
		cmocka_unit_test(test_extensions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
