/*
 * PHP's request paths (src/pathinfo) on hostile params: SCRIPT_FILENAME,
 * SCRIPT_NAME, PATH_INFO, PATH_TRANSLATED, DOCUMENT_ROOT, REDIRECT_URL and
 * SERVER_SOFTWARE cut from the input at NUL bytes, against a fake file
 * system where a prefix is a file when its length is odd.  ASan and UBSan
 * judge every length php-fpm's code once got wrong (CVE-2019-11043).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pathinfo/pathinfo.h"

#define NPARAMS 7
static const char *const names[NPARAMS] = { "SCRIPT_FILENAME", "SCRIPT_NAME", "PATH_INFO",
	"PATH_TRANSLATED", "DOCUMENT_ROOT", "REDIRECT_URL", "SERVER_SOFTWARE" };

struct world {
	const char *values[NPARAMS];
	unsigned present;
};

static const char *param(const char *name, void *ctx)
{
	const struct world *w = ctx;
	for (int i = 0; i < NPARAMS; i++)
		if (strcmp(name, names[i]) == 0)
			return (w->present >> i) & 1 ? w->values[i] : NULL;
	return NULL;
}

static int is_file(const char *path, void *ctx)
{
	(void)ctx;
	return strlen(path) % 2 == 1 && path[0] == '/';
}

static int exists(const char *path, void *ctx)
{
	(void)ctx;
	return strlen(path) % 3 == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	struct world w = { .present = data[0] };
	char *p = buf, *end = buf + size - 1;
	for (int i = 0; i < NPARAMS; i++) {
		w.values[i] = p;
		p += strlen(p);
		if (p < end)
			p++;
	}
	struct pathinfo_in in = { .param = param, .is_file = is_file, .exists = exists, .ctx = &w,
				  .fix_pathinfo = data[0] & 0x80 ? 0 : 1, .discard_path = data[0] & 0x40,
				  .doc_root = data[0] & 0x20 ? "/srv/" : NULL };
	struct pathinfo out;
	if (pathinfo_resolve(&in, &out) == 0) {
		/* Everything produced is a proper string, within bounds. */
		if (out.script)
			(void)strlen(out.script);
		if (out.request_uri)
			(void)strlen(out.request_uri);
		for (size_t i = 0; i < out.nvars; i++) {
			(void)strlen(out.vars[i].name);
			if (out.vars[i].value)
				(void)strlen(out.vars[i].value);
		}
		(void)pathinfo_var(&out, &in, "PATH_INFO", NULL);
		pathinfo_free(&out);
	}
	free(buf);
	return 0;
}
