/*
 * Which handler serves which app.type.  A type whose handler is not part of
 * this build is refused when the configuration is checked, never at request
 * time.
 */
#include "handlers/handler.h"

#include <stddef.h>

extern const struct handler handler_cgi;
extern const struct handler handler_module;
extern const struct handler handler_exec;
extern const struct handler handler_php;
extern const struct handler handler_exec_direct;
extern const struct handler handler_php_worker;
extern const struct handler handler_php_worker_zygote;

const struct handler *handler_for_app(enum conf_app app)
{
	switch (app) {
	case APP_CGI:
		return &handler_cgi;
	case APP_MODULE:
		return &handler_module;
	case APP_EXEC:
		return &handler_exec;
	case APP_PHP:
		return &handler_php;
	default:
		return NULL;
	}
}

const struct handler *handler_for_pool(const struct pool_conf *pc)
{
	if (pc->app_type == APP_EXEC && pc->exec_mode == EXEC_DIRECT)
		return &handler_exec_direct;
	if (pc->app_type == APP_PHP && pc->php_worker)
		return pc->php_worker_boot == PHP_WORKER_BOOT_ZYGOTE ? &handler_php_worker_zygote
								     : &handler_php_worker;
	return handler_for_app(pc->app_type);
}
