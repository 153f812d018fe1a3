/* The smallest fpmd module: answers every request with a line of text. */
#include <fpmd/module.h>

static const struct fpmd_host *host;

static int hello_init(const struct fpmd_host *h, const struct fpmd_setting *s, size_t n, void **state)
{
	(void)s;
	(void)n;
	(void)state;
	host = h;
	return 0;
}

static int hello_handle(void *state, struct fpmd_request *r)
{
	static const char body[] = "Hello from an fpmd module\n";
	(void)state;
	host->add_header(r, "Content-Type", "text/plain");
	return host->write(r, body, sizeof(body) - 1);
}

const struct fpmd_module fpmd_module = {
	.abi = FPMD_MODULE_ABI,
	.name = "hello",
	.init = hello_init,
	.handle = hello_handle,
};
