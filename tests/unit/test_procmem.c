/*
 * procmem: the smaps_rollup parser (pure) and the /proc readers on this
 * process.  procmem.c depends on libc only and is not in the pure library
 * (it reads /proc), so it is compiled into this test directly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/worker/procmem.c"

static const char ROLLUP[] =
	"564ae9eeb000-7ffc73b84000 ---p 00000000 00:00 0                          [rollup]\n"
	"Rss:                1696 kB\n"
	"Pss:                 210 kB\n"
	"Pss_Dirty:           112 kB\n"
	"Pss_Anon:            112 kB\n"
	"Shared_Clean:       1544 kB\n"
	"Private_Clean:        40 kB\n"
	"Private_Dirty:       112 kB\n"
	"Private_Hugetlb:       0 kB\n"
	"Swap:                  8 kB\n"
	"SwapPss:               4 kB\n";

static void test_parse(void **state)
{
	(void)state;
	struct procmem_rollup r;
	assert_int_equal(procmem_rollup_parse(ROLLUP, strlen(ROLLUP), &r), 0);
	/* Pss + SwapPss; Private_Clean + Private_Dirty + SwapPss (not Pss_*, not _Hugetlb) */
	assert_int_equal(r.pss, (210 + 4) * 1024);
	assert_int_equal(r.private_, (40 + 112 + 4) * 1024);
}

static void test_parse_refuses_what_is_not_a_rollup(void **state)
{
	(void)state;
	struct procmem_rollup r;
	static const char none[] = "Rss: 10 kB\nPrivate_Dirty: 5 kB\n";
	assert_int_equal(procmem_rollup_parse(none, strlen(none), &r), -1);
	assert_int_equal(procmem_rollup_parse("", 0, &r), -1);
	/* no newline at the end, a huge number clamped, a line without a colon */
	static const char odd[] = "junk\nPss: 99999999999999999999 kB\nPrivate_Dirty: 7 kB";
	assert_int_equal(procmem_rollup_parse(odd, strlen(odd), &r), 0);
	assert_true(r.pss == (1ull << 40) * 1024);
	assert_int_equal(r.private_, 7 * 1024);
}

static void test_this_process(void **state)
{
	(void)state;
	/* touched, so resident and private */
	size_t n = 8u << 20;
	char *p = malloc(n);
	assert_non_null(p);
	memset(p, 1, n);
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	uint64_t res = 0, shr = 0, res2 = 0;
	assert_int_equal(procmem_statm_fd(fd, &res, &shr), 0);
	assert_true(res >= n && shr <= res);
	assert_int_equal(procmem_statm_fd(fd, &res2, NULL), 0);   /* pread: again and again */
	assert_true(res2 >= n);
	close(fd);
	assert_int_equal(procmem_statm(getpid(), &res2, NULL), 0);
	struct procmem_rollup r;
	assert_int_equal(procmem_rollup(0, &r), 0);
	assert_true(r.private_ >= n && r.private_ <= res2 + (1u << 20));
	assert_true(r.pss >= r.private_);
	assert_int_equal(procmem_statm(-5, &res, NULL), -1);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_refuses_what_is_not_a_rollup),
		cmocka_unit_test(test_this_process),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
