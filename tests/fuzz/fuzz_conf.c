/*
 * libFuzzer harness for the configuration reader: any text through
 * conf_load_string (includes find no files), and when it loads without
 * errors, conf_dump must read back to an equal configuration whose dump is
 * byte-identical.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

static char *no_read(const char *path, size_t *len, void *ctx)
{
	(void)path;
	(void)len;
	(void)ctx;
	errno = ENOENT;
	return NULL;
}

static int no_glob(const char *pattern, struct conf_str_list *out, void *ctx)
{
	(void)pattern;
	(void)out;
	(void)ctx;
	return 0;
}

static const struct conf_io no_files = { .read = no_read, .glob = no_glob, .ctx = NULL };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *const env[] = { "PORT=9000", "ODD=$pool \"${X}\" ;\\", NULL };
	struct conf_options opt = { .daemonize = CONF_UNSET, .prefix = "/srv/fpmd",
				    .environ = env };
	struct conf_diags d1 = { 0 }, d2 = { 0 };
	struct fpmd_conf *c1, *c2 = NULL;
	char *text, *dump1 = NULL, *dump2 = NULL;

	if (size > 65536)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	c1 = conf_load_string("fuzz.conf", text, &opt, &no_files, &d1);
	for (size_t i = 0; i < d1.n; i++)
		free(conf_diag_format(&d1.items[i]));
	if (c1 && d1.errors == 0) {
		dump1 = conf_dump(c1);
		if (!dump1)
			abort();
		c2 = conf_load_string("dump.conf", dump1, &opt, &no_files, &d2);
		if (!c2 || d2.errors)
			abort();
		dump2 = conf_dump(c2);
		if (!dump2 || strcmp(dump1, dump2) != 0 || !conf_equal(c1, c2))
			abort();
	}
	free(dump1);
	free(dump2);
	conf_free(c1);
	conf_free(c2);
	conf_diags_free(&d1);
	conf_diags_free(&d2);
	free(text);
	return 0;
}
