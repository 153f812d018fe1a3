/*
 * echo: reflects the request — every param, then the body — and shows
 * module.param settings.  Used by fpmd's tests; a template for real modules.
 * Special requests: QUERY_STRING=crash segfaults (tests the respawn),
 * QUERY_STRING=fail returns -1 before any output (a 500), and the setting
 * fail_init=yes makes init fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fpmd/module.h>

static const struct fpmd_host *host;

struct echo {
	char greeting[128];
	unsigned long served;
};

static int echo_init(const struct fpmd_host *h, const struct fpmd_setting *s, size_t n, void **state)
{
	struct echo *e = calloc(1, sizeof(*e));
	if (!e)
		return -1;
	host = h;
	snprintf(e->greeting, sizeof(e->greeting), "echo");
	for (size_t i = 0; i < n; i++) {
		if (strcmp(s[i].key, "greeting") == 0)
			snprintf(e->greeting, sizeof(e->greeting), "%s", s[i].value);
		if (strcmp(s[i].key, "fail_init") == 0 && strcmp(s[i].value, "yes") == 0) {
			host->log(FPMD_LOG_ERROR, "fail_init is set: refusing to start");
			free(e);
			return -1;
		}
	}
	*state = e;
	return 0;
}

static int echo_handle(void *state, struct fpmd_request *r)
{
	struct echo *e = state;
	const char *q = host->param(r, "QUERY_STRING");
	if (q && strcmp(q, "crash") == 0) {
		volatile int *p = NULL;
		*p = 1;
	}
	if (q && strcmp(q, "fail") == 0)
		return -1;
	e->served++;
	host->add_header(r, "Content-Type", "text/plain");
	host->add_header(r, "X-Echo-Served", q && *q ? q : "-");
	char line[256];
	int len = snprintf(line, sizeof(line), "%s #%lu\n", e->greeting, e->served);
	host->write(r, line, (size_t)len);
	const char *name, *value;
	for (size_t i = 0; host->param_at(r, i, &name, &value) == 0; i++) {
		len = snprintf(line, sizeof(line), "%s=%s\n", name, value);
		host->write(r, line, (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1);
	}
	host->write(r, "\n", 1);
	char buf[65536];
	long got;
	while ((got = host->read_body(r, buf, sizeof(buf))) > 0)
		if (host->write(r, buf, (size_t)got) < 0)
			return -1;
	return got < 0 ? -1 : 0;
}

static void echo_shutdown(void *state)
{
	free(state);
}

const struct fpmd_module fpmd_module = {
	.abi = FPMD_MODULE_ABI,
	.name = "echo",
	.init = echo_init,
	.handle = echo_handle,
	.shutdown = echo_shutdown,
};
