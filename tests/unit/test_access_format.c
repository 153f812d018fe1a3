/* Unit tests for src/log/access_format.c: every code, modifiers, escaping, checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log/access_format.h"

static const char *param(void *ctx, const char *name)
{
	(void)ctx;
	return strcmp(name, "HTTP_HOST") == 0 ? "example.org" : NULL;
}

static const char *header(void *ctx, const char *name, size_t *len)
{
	(void)ctx;
	if (strcmp(name, "Content-Type") != 0)
		return NULL;
	*len = 10;
	return "text/plainJUNK";
}

static struct access_entry entry(void)
{
	struct access_entry e = {
		.pool = "www", .pid = 42, .master_pid = 1, .remote_addr = "10.0.0.1",
		.remote_user = NULL, .method = "GET", .uri = "/x.php", .query = "a=1",
		.script = "/srv/x.php", .status = 404, .content_length = 7,
		.duration_us = 1500000, .cpu_user_us = 300000, .cpu_system_us = 450000,
		.memory = 3 * 1024 * 1024, .param = param, .header = header,
	};
	e.start.tv_sec = 0;
	e.now.tv_sec = 86400 * 365;
	return e;
}

static void expect(const char *fmt, const char *want)
{
	struct access_entry e = entry();
	size_t len;
	char *line = access_format(fmt, &e, &len);
	assert_non_null(line);
	assert_int_equal(len, strlen(line));
	assert_string_equal(line, want);
	free(line);
}

static void test_codes(void **state)
{
	(void)state;
	expect("%%", "%\n");
	expect("%C %{user}C %{system}C %{total}C", "50.00 20.00 30.00 50.00\n");
	expect("%d %{seconds}d %{milli}d %{milliseconds}d %{micro}d %{microseconds}d",
	       "1.500 1.500 1500.000 1500.000 1500000 1500000\n");
	expect("%{HTTP_HOST}e %{NOPE}e", "example.org -\n");
	expect("%f %l %m", "/srv/x.php 7 GET\n");
	expect("%M %{bytes}M %{kilo}M %{mega}M", "3145728 3145728 3072 3\n");
	expect("%n %p %P", "www 42 1\n");
	expect("%{Content-Type}o %{X}o", "text/plain -\n");
	expect("%q %Q %r %R %s %u", "a=1 ? /x.php 10.0.0.1 404 \n");   /* %u: php-fpm's empty */
	expect("%{%Y}t", "1970\n");
	expect("%{%Y}T", "1971\n");
	expect("plain text only", "plain text only\n");
}

static void test_escaping(void **state)
{
	(void)state;
	struct access_entry e = entry();
	e.uri = "/a\nb\"c\\";
	size_t len;
	char *line = access_format("%r", &e, &len);
	assert_string_equal(line, "/a\\x0ab\\x22c\\x5c\n");
	free(line);
}

static void test_default_and_long(void **state)
{
	(void)state;
	struct access_entry e = entry();
	e.remote_user = "bob";
	size_t len;
	char *line = access_format(NULL, &e, &len);
	assert_non_null(strstr(line, "10.0.0.1 - bob "));
	assert_non_null(strstr(line, "\"GET /x.php\" 404\n"));
	free(line);
	char *big = malloc(20001);
	memset(big, 'z', 20000);
	big[20000] = '\0';
	e.uri = big;
	line = access_format("%r", &e, &len);
	assert_int_equal(len, 20001);
	free(line);
	free(big);
}

static void test_check(void **state)
{
	(void)state;
	char err[128];
	assert_int_equal(access_format_check("%R - %u %t \"%m %r\" %s", err, sizeof(err)), 0);
	assert_int_equal(access_format_check("%{HTTP_HOST}e %{kilo}M %{milli}d %{Server}o", err, sizeof(err)), 0);
	assert_int_equal(access_format_check("%Z", err, sizeof(err)), -1);
	assert_string_equal(err, "unknown code '%Z' in access.format");
	assert_int_equal(access_format_check("%{parsecs}d", err, sizeof(err)), -1);
	assert_int_equal(access_format_check("%e", err, sizeof(err)), -1);
	assert_int_equal(access_format_check("%{unterminated", err, sizeof(err)), -1);
	assert_int_equal(access_format_check("trailing %", err, sizeof(err)), -1);
}

static void test_uses(void **state)
{
	(void)state;
	assert_true(access_format_uses("%r %M", 'M'));
	assert_true(access_format_uses("%{kilo}M %s", 'M'));
	assert_false(access_format_uses("%r %m %s", 'M'));
	assert_false(access_format_uses(NULL, 'M'));            /* the default has no %M */
	assert_false(access_format_uses("100%% Memory %{M}e", 'M'));
	assert_false(access_format_uses("%{unterminated M", 'M'));
	assert_false(access_format_uses("trailing %", 'M'));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codes),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_default_and_long),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_uses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
