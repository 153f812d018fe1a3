/* The growable buffer every renderer writes into (src/buf). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "buf/buf.h"

static void test_grows_and_stays_terminated(void **state)
{
	(void)state;
	struct buf b = { 0 };
	for (int i = 0; i < 1000; i++) {
		buf_puts(&b, "abc");
		assert_int_equal(b.len, (size_t)(i + 1) * 3);
		assert_int_equal(b.p[b.len], '\0');
	}
	buf_putc(&b, 'x');
	buf_put(&b, "y\0z", 3);                  /* bytes, NULs included */
	assert_int_equal(b.len, 3004);
	assert_memory_equal(b.p + 3000, "xy\0z", 4);
	size_t len = 0;
	char *s = buf_take(&b, &len);
	assert_int_equal(len, 3004);
	assert_null(b.p);
	free(s);
}

static void test_printf_of_any_length(void **state)
{
	(void)state;
	struct buf b = { 0 };
	char big[5000];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_printf(&b, "%d-", 42);
	buf_printf(&b, "[%s]", big);             /* longer than any stack copy */
	assert_int_equal(b.len, 3 + 2 + 4999);
	assert_memory_equal(b.p, "42-[qq", 6);
	assert_int_equal(b.p[b.len - 1], ']');
	assert_int_equal(b.p[b.len], '\0');
	buf_free(&b);
}

static void test_nothing_written_is_an_empty_string(void **state)
{
	(void)state;
	struct buf b = { 0 };
	size_t len = 7;
	char *s = buf_take(&b, &len);
	assert_non_null(s);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);
}

static void test_out_of_memory_is_sticky(void **state)
{
	(void)state;
	struct buf b = { 0 };
	buf_puts(&b, "ok");
	buf_put(&b, "x", (size_t)-1 / 2);        /* cannot be had */
	assert_true(b.oom);
	buf_puts(&b, "more");                    /* dropped */
	assert_int_equal(b.len, 2);
	size_t len = 9;
	assert_null(buf_take(&b, &len));
	assert_int_equal(len, 9);
	assert_null(b.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grows_and_stays_terminated),
		cmocka_unit_test(test_printf_of_any_length),
		cmocka_unit_test(test_nothing_written_is_an_empty_string),
		cmocka_unit_test(test_out_of_memory_is_sticky),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
