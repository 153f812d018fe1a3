/*
 * Rewrites argv for ps(1).  The environment strings sit right after argv in
 * memory; they are moved to the heap first so the title can use that room.
 * Call before option parsing, so that getopt hands out pointers to the copies.
 */
#include "proc/proctitle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

static char *title_area;
static size_t title_len;
/* The moved environment lives as long as the process: kept reachable here
 * (a global, so the store is not optimised away). */
char **proctitle_environ;
/* unsetenv() drops entries from the array: the strings stay listed here. */
char **proctitle_env_strings;

void proctitle_init(int argc, char **argv)
{
	if (argc <= 0 || !argv || !argv[0])
		return;
	char *start = argv[0];
	char *end = start + strlen(start) + 1;
	for (int i = 1; i < argc; i++)
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	size_t n = 0;
	while (environ && environ[n])
		n++;
	char **copy = calloc(n + 1, sizeof(*copy));
	proctitle_env_strings = calloc(n + 1, sizeof(*proctitle_env_strings));
	if (!copy || !proctitle_env_strings)
		return;
	for (size_t i = 0; i < n; i++) {
		if (environ[i] == end)
			end = environ[i] + strlen(environ[i]) + 1;
		copy[i] = proctitle_env_strings[i] = strdup(environ[i]);
		if (!copy[i])
			return;
	}
	environ = proctitle_environ = copy;
	for (int i = 0; i < argc; i++) {
		char *dup = strdup(argv[i]);
		if (!dup)
			return;
		argv[i] = dup;
	}
	title_area = start;
	title_len = (size_t)(end - start);
}

void proctitle_set(const char *fmt, ...)
{
	char title[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(title, sizeof(title), fmt, ap);
	va_end(ap);
	prctl(PR_SET_NAME, title, 0, 0, 0);
	if (!title_area || title_len < 2)
		return;
	size_t n = strlen(title);
	if (n >= title_len)
		n = title_len - 1;
	memcpy(title_area, title, n);
	memset(title_area + n, '\0', title_len - n);
}
