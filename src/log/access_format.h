/*
 * access.format: php-fpm's access log codes rendered into one line.  Pure:
 * the worker fills a struct access_entry and writes the result with one
 * write().  No line length limit (php-fpm's is 1024 bytes).
 *
 * Codes: %% %C %d %e %f %l %m %M %n %o %p %P %q %Q %r %R %s %t %T %u, with
 * php-fpm's {modifiers}: %{user|system|total}C, %{seconds|milliseconds|milli|
 * microseconds|micro}d, %{NAME}e, %{bytes|kilo|kilobytes|mega|megabytes}M,
 * %{Header}o, %{strftime format}t and T.
 */
#ifndef FPMD_ACCESS_FORMAT_H
#define FPMD_ACCESS_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ACCESS_FORMAT_DEFAULT "%R - %u %t \"%m %r\" %s"

struct access_entry {
	const char *pool;
	int pid, master_pid;
	const char *remote_addr, *remote_user, *method, *uri, *query, *script;
	int status;
	uint64_t content_length;
	struct timespec start;       /* CLOCK_REALTIME when the request began */
	struct timespec now;         /* when the line is written (%T) */
	uint64_t duration_us;
	uint64_t cpu_user_us, cpu_system_us;
	uint64_t memory;             /* bytes */
	/* %e: a request parameter; %o: a response header (value, length). NULL = absent. */
	const char *(*param)(void *ctx, const char *name);
	const char *(*header)(void *ctx, const char *name, size_t *len);
	void *ctx;
};

/*
 * Returns a malloc'ed line ending in '\n' (its length in *len), or NULL when
 * memory runs out.  Unknown codes are copied as they are.
 */
char *access_format(const char *fmt, const struct access_entry *e, size_t *len);

/* 0 if every code in fmt is known, else -1 with a reason. */
int access_format_check(const char *fmt, char *err, size_t errlen);
/* 1 when fmt (NULL: the default) has the code, alone or with an argument (%M, %{kilo}M). */
int access_format_uses(const char *fmt, char code);

#endif
