/*
 * php.worker: the application keeps itself between requests (FrankenPHP's
 * worker mode).  The worker script boots the application once, then calls
 * fpmd_handle_request($handler) in a loop; each call waits for the next
 * request (the worker's own loop, host->next_request: ping, status, limits,
 * keep-alive, accounting and the access log stay fpmd's), runs the handler
 * with that request's superglobals, headers, output, body, session and
 * timeouts, and ends the request on the wire.  false: the worker must leave
 * (pm.max_requests, a graceful stop, a reload), so the script ends.
 *
 * php.worker_boot = zygote: the script boots in the pool's zygote; its first
 * fpmd_handle_request() turns into the zygote's clone loop, and every worker
 * is a fork of the booted application that returns from that call.  Such a
 * worker leaves with _exit(), without PHP's shutdown of what its zygote
 * built (the engine's shutdown costs more than the request).
 *
 * Between handled requests PHP is in the worker script's own context (no
 * request: output goes to the worker's stdout, as the boot's does).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <limits.h>
#include <locale.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <php.h>
#include <php_main.h>
#include <php_ini.h>
#include <php_variables.h>
#include <SAPI.h>
#include <main/php_output.h>
#include <ext/date/php_date.h>
#include <ext/random/php_random.h>
#include <ext/session/php_session.h>
#include <ext/standard/basic_functions.h>
#include <zend_exceptions.h>
#include <zend_ini.h>

#include "conf/conf.h"
#include "php/php_host.h"
#include "php/php_sapi.h"
#include "worker/request.h"
#include "worker/worker.h"

/* The worker script's state in this process. */
static struct {
	time_t boot_time;        /* the request time PHP's request start (the boot) gave opcache */
	int in_script;           /* the worker script runs: fpmd_handle_request() may be called */
	int zygote_boot;         /* in the zygote, before the first fpmd_handle_request() */
	int forked;              /* a clone of a booted zygote: leaves without PHP's shutdown */
	struct worker *w;
	int fatal;               /* the handler died (fatal error, uncaught exception) */
	int exited;              /* exit() in the handler */
} wm;

/* What a handled request saved of the script's context, to give it back. */
struct handled {
	zend_fcall_info *fci;
	zend_fcall_info_cache *fcc;
	HashTable *shutdown_functions;   /* the script's own register_shutdown_function()s */
	HashTable *ini_before;           /* name → value of settings the script had changed */
	/* what PHP's own request end puts back (ext/standard's, ext/date's): the script's */
	char cwd[PATH_MAX];              /* "" when unknown: left as the request leaves it */
	zend_string *ctype;              /* BG(ctype_string), a reference held */
	int umask;                       /* BG(umask): the umask before the first umask() */
	char *timezone;                  /* date_default_timezone_set()'s, emalloc'd copy */
	HashTable putenv;                /* BG(putenv_ht): the script's putenv()s */
};

/* An extension's module entry by name, looked up once; NULL if it is not loaded. */
static zend_module_entry *module_named(const char *name, zend_module_entry **cache, int *looked)
{
	if (!*looked) {
		*looked = 1;
		*cache = zend_hash_str_find_ptr(&module_registry, name, strlen(name));
	}
	return *cache;
}

/*
 * ext/filter keeps a raw copy of every request variable (filter_input()'s),
 * and each sapi_activate() forgets them without freeing (its request
 * shutdown frees them, once per PHP request): a handled request, with two
 * activations of its own, would leak its $_SERVER's size and hand its
 * variables to the next request's filter_input().  Freed at every end.
 */
static void filter_vars_end(void)
{
	static zend_module_entry *filter;
	static int looked;
	if (module_named("filter", &filter, &looked) && filter->request_shutdown_func)
		filter->request_shutdown_func(filter->type, filter->module_number);
}

/*
 * zlib.output_compression starts its output handler at PHP's request start,
 * by the request's Accept-Encoding, and forgets it at the end: each handled
 * request's, as ext/zlib's own request start and end do.
 */
static zend_module_entry *zlib_module;
static int zlib_looked;

static void zlib_begin(void)
{
	zend_module_entry *z = module_named("zlib", &zlib_module, &zlib_looked);
	if (z && z->request_startup_func)
		z->request_startup_func(z->type, z->module_number);
}

static void zlib_end(void)
{
	zend_module_entry *z = module_named("zlib", &zlib_module, &zlib_looked);
	if (z && z->request_shutdown_func)
		z->request_shutdown_func(z->type, z->module_number);
}

/*
 * sapi_deactivate() frees what the request's activation allocated without
 * forgetting it (PHP's next request startup overwrites the pointers): the
 * script's own activation, which reads no request, would free them again.
 */
static void sapi_end(void)
{
	zend_try {
		sapi_deactivate();
	} zend_end_try();
	SG(request_info).content_type_dup = NULL;
	SG(request_info).auth_user = NULL;
	SG(request_info).auth_password = NULL;
	SG(request_info).auth_digest = NULL;
	SG(request_info).current_user = NULL;
}

/* --- the script's context between requests ------------------------------- */

/* SAPI's request info of no request: the worker script itself. */
static void request_info_of_script(void)
{
	SG(server_context) = NULL;
	SG(request_info).request_method = NULL;
	SG(request_info).query_string = NULL;
	SG(request_info).request_uri = NULL;
	SG(request_info).content_type = NULL;
	SG(request_info).content_length = 0;
	SG(request_info).path_translated = (char *)php_pool->conf->php_worker;
}

static void script_context_begin(void)
{
	request_info_of_script();
	php_output_activate();
	sapi_activate();
	/* nobody to send headers to: output between requests goes to stdout, bare */
	SG(request_info).no_headers = 1;
}

static void script_context_end(void)
{
	filter_vars_end();
	zend_try {
		php_output_end_all();
	} zend_end_try();
	zend_try {
		php_output_deactivate();
	} zend_end_try();
	sapi_end();
}

/* --- ini_set() lasts for the request that made it -------------------------- */

static void ini_value_dtor(zval *zv)
{
	if (Z_PTR_P(zv))
		zend_string_release((zend_string *)Z_PTR_P(zv));
}

/* The values of the settings the script changed before this request (usually none). */
static HashTable *ini_snapshot(void)
{
	HashTable *mod = EG(modified_ini_directives);
	if (!mod || !zend_hash_num_elements(mod))
		return NULL;
	HashTable *h = emalloc(sizeof(*h));
	zend_hash_init(h, zend_hash_num_elements(mod), NULL, ini_value_dtor, 0);
	zend_ini_entry *e;
	ZEND_HASH_MAP_FOREACH_PTR(mod, e) {
		zend_hash_add_ptr(h, e->name, e->value ? zend_string_copy(e->value) : NULL);
	} ZEND_HASH_FOREACH_END();
	return h;
}

/*
 * Back to the snapshot, in PHP's request-end stage (DEACTIVATE: what a
 * request's end may undo, whatever level set it, and no timer re-armed):
 * settings first changed by the request return to php.ini's values, those
 * the script had changed (its boot) to the script's, even after the
 * request's ini_restore() dropped them.
 */
static void ini_restore(HashTable *before)
{
	HashTable *mod = EG(modified_ini_directives);
	uint32_t n = mod ? zend_hash_num_elements(mod) : 0, k = 0;
	if (!n && !before)
		return;
	zend_string **names = n ? emalloc(n * sizeof(*names)) : NULL;
	zend_ini_entry *e;
	if (n) {
		ZEND_HASH_MAP_FOREACH_PTR(mod, e) {
			names[k++] = zend_string_copy(e->name);
		} ZEND_HASH_FOREACH_END();
	}
	for (uint32_t i = 0; i < k; i++) {
		if (!before || !zend_hash_exists(before, names[i]))
			zend_restore_ini_entry(names[i], ZEND_INI_STAGE_DEACTIVATE);
		zend_string_release(names[i]);
	}
	if (names)
		efree(names);
	if (before) {
		zend_string *name;
		zval *was;
		ZEND_HASH_MAP_FOREACH_STR_KEY_VAL(before, name, was) {
			zend_ini_entry *now = zend_hash_find_ptr(EG(ini_directives), name);
			zend_string *v = Z_PTR_P(was);
			if (now && v && now->value != v && (!now->value || !zend_string_equals(now->value, v)))
				zend_alter_ini_entry_ex(name, v, ZEND_INI_SYSTEM, ZEND_INI_STAGE_DEACTIVATE, 1);
		} ZEND_HASH_FOREACH_END();
	}
	/* memory_limit's value is back; the heap takes it when it can (PHP's way at DEACTIVATE) */
	zend_set_memory_limit(PG(memory_limit));
}

static void ini_snapshot_free(HashTable *h)
{
	if (!h)
		return;
	zend_hash_destroy(h);
	efree(h);
}

/* --- one handled request --------------------------------------------------- */

/* $_GET, $_POST, $_COOKIE, $_FILES, $_SERVER, $_REQUEST of this request. */
static void superglobals_build(void)
{
	for (int i = 0; i < NUM_TRACK_VARS; i++) {
		zval_ptr_dtor(&PG(http_globals)[i]);
		ZVAL_UNDEF(&PG(http_globals)[i]);
	}
	php_hash_environment();
	/* created on first use when the script is compiled (auto_globals_jit): it was, at boot */
	zend_is_auto_global_str(ZEND_STRL("_SERVER"));
	zend_is_auto_global_str(ZEND_STRL("_REQUEST"));
}

/*
 * A clone of the booted zygote, and every handled request as PHP's own request
 * start does, draws its own random numbers: mt_rand(), rand(), lcg_value() and
 * what uses them seed again on first use (random_int() and random_bytes()
 * read the kernel's, never a seed).  A request's mt_srand() would otherwise
 * make the next client's numbers known.
 */
static void random_unseed(void)
{
	RANDOM_G(mt19937_seeded) = false;
	RANDOM_G(combined_lcg_seeded) = false;
}

static void last_error_clear(void)
{
	PG(last_error_type) = 0;
	PG(last_error_lineno) = 0;
	if (PG(last_error_message)) {
		zend_string_release(PG(last_error_message));
		PG(last_error_message) = NULL;
	}
	if (PG(last_error_file)) {
		zend_string_release(PG(last_error_file));
		PG(last_error_file) = NULL;
	}
}

/* ext/date's globals are not exported; its module entry points at them. */
static zend_date_globals *date_globals_of_module(void)
{
	static zend_module_entry *date;
	static int looked;
	zend_module_entry *m = module_named("date", &date, &looked);
	return m && m->globals_size == sizeof(zend_date_globals) ? m->globals_ptr : NULL;
}

/* The locale the script's context had, kept across requests (it rarely changes). */
static char *script_locale;

/*
 * Process state PHP's request end gives back (the working directory PHP
 * changed to, setlocale(), umask(), date_default_timezone_set(), putenv()), saved as
 * the script's context has it, so that a user's locale or time zone is not
 * the next user's.
 */
static void process_state_save(struct handled *h)
{
	if (!getcwd(h->cwd, sizeof h->cwd))
		h->cwd[0] = '\0';
	const char *loc = setlocale(LC_ALL, NULL);
	if (loc && (!script_locale || strcmp(loc, script_locale) != 0)) {
		free(script_locale);
		script_locale = strdup(loc);
	}
	h->ctype = BG(ctype_string) ? zend_string_copy(BG(ctype_string)) : NULL;
	h->umask = BG(umask);
	BG(umask) = -1;
	zend_date_globals *dg = date_globals_of_module();
	h->timezone = dg && dg->timezone ? estrdup(dg->timezone) : NULL;
	/* the request's putenv()s in a table of their own: destroying it puts
	 * each variable back as it was (the table's destructor is PHP's) */
	h->putenv = BG(putenv_ht);
	zend_hash_init(&BG(putenv_ht), 1, NULL, h->putenv.pDestructor, 0);
}

static void process_state_restore(struct handled *h)
{
	char now[PATH_MAX];
	if (h->cwd[0] && (!getcwd(now, sizeof now) || strcmp(now, h->cwd) != 0) && chdir(h->cwd) < 0)
		php_host->log(LOG_L_WARNING, "[pool %s] cannot return to '%s' after a request: %s",
			      php_pool_name(), h->cwd, strerror(errno));
	const char *loc = setlocale(LC_ALL, NULL);
	if (script_locale && (!loc || strcmp(loc, script_locale) != 0)) {
		setlocale(LC_ALL, script_locale);
		zend_update_current_locale();
	}
	if (BG(ctype_string) != h->ctype) {
		if (BG(ctype_string))
			zend_string_release(BG(ctype_string));
		BG(ctype_string) = h->ctype;
	} else if (h->ctype) {
		zend_string_release(h->ctype);
	}
	h->ctype = NULL;
	if (BG(umask) != -1)
		umask((mode_t)BG(umask));
	BG(umask) = h->umask;
	zend_date_globals *dg = date_globals_of_module();
	if (dg) {
		int same = (!dg->timezone && !h->timezone) ||
			   (dg->timezone && h->timezone && strcmp(dg->timezone, h->timezone) == 0);
		if (!same) {
			if (dg->timezone)
				efree(dg->timezone);
			dg->timezone = h->timezone;
			h->timezone = NULL;
		}
	}
	if (h->timezone)
		efree(h->timezone);
	h->timezone = NULL;
	zend_hash_destroy(&BG(putenv_ht));
	BG(putenv_ht) = h->putenv;
}

/*
 * opcache takes the request time once, at PHP's request start, which in
 * worker mode is the script's boot, and does not cache a file changed
 * within opcache.file_update_protection seconds of it (it may be half
 * written): every file written after the boot, a template's or a
 * container's cache, stayed "too new" for good, compiled again by every
 * request of every worker.  The setting less the boot's age makes
 * opcache's test the one a request starting now makes; the request's end
 * puts it back with its other settings.
 */
static void opcache_protection_follow(void)
{
	static const char name[] = "opcache.file_update_protection";
	time_t age = time(NULL) - wm.boot_time;
	if (!wm.boot_time || age <= 0)
		return;
	zend_ini_entry *e = zend_hash_str_find_ptr(EG(ini_directives), name, sizeof(name) - 1);
	/* the script's or this request's (PHP_VALUE) if either set it: the previous request's
	 * shift was put back with its other settings */
	zend_long protection = e && e->value ? ZEND_STRTOL(ZSTR_VAL(e->value), NULL, 10) : 0;
	if (protection <= 0)
		return;
	zend_long shifted = protection - (zend_long)age;
	if (shifted == 0)
		shifted = 1;             /* 0 would turn the test off: a second stricter instead */
	char v[32];
	int n = snprintf(v, sizeof(v), ZEND_LONG_FMT, shifted);
	zend_alter_ini_entry_chars_ex(e->name, v, (size_t)n, PHP_INI_SYSTEM, PHP_INI_STAGE_RUNTIME, 0);
}

static void request_begin(struct php_request *pr, struct handled *h)
{
	last_error_clear();              /* before the body is read: its warning is this request's */
	php_fill_request_info(pr);
	int proto = SG(request_info).proto_num;
	php_output_activate();
	PG(header_is_being_sent) = 0;
	PG(connection_status) = PHP_CONNECTION_NORMAL;
	/* the request's PHP_VALUE first: post_max_size and upload_max_filesize hold for its body */
	h->ini_before = ini_snapshot();
	php_apply_request_ini(pr->req);
	opcache_protection_follow();
	sapi_activate();                 /* the POST body, cookies, headers, status 200 */
	SG(request_info).proto_num = proto;
	zend_memory_reset_peak_usage();
	if (PG(expose_php))
		sapi_add_header(SAPI_PHP_VERSION_HEADER, sizeof(SAPI_PHP_VERSION_HEADER) - 1, 1);
	if (PG(output_handler) && PG(output_handler)[0]) {
		zval oh;
		ZVAL_STRING(&oh, PG(output_handler));
		php_output_start_user(&oh, 0, PHP_OUTPUT_HANDLER_STDFLAGS);
		zval_ptr_dtor(&oh);
	} else if (PG(output_buffering)) {
		php_output_start_user(NULL, PG(output_buffering) > 1 ? PG(output_buffering) : 0,
				      PHP_OUTPUT_HANDLER_STDFLAGS);
	} else if (PG(implicit_flush)) {
		php_output_set_implicit_flush(1);
	}
	superglobals_build();
	zlib_begin();
	h->shutdown_functions = BG(user_shutdown_function_names);
	BG(user_shutdown_function_names) = NULL;
	process_state_save(h);
	random_unseed();
	EG(exit_status) = 0;
	zend_set_timeout(EG(timeout_seconds), 0);
}

/*
 * The session a request started is written and forgotten: the next request
 * must not find its id (another client's session) or its $_SESSION.
 */
static void session_end(void)
{
	if (PS(session_status) == php_session_active) {
		zend_try {
			php_session_flush(1);
		} zend_catch {
			wm.fatal = 1;
		} zend_end_try();
	}
	/* the SID constant names the session of the request that started it */
	zend_hash_str_del(EG(zend_constants), ZEND_STRL("SID"));
	if (PS(id)) {
		zend_string_release_ex(PS(id), 0);
		PS(id) = NULL;
	}
	if (PS(session_vars)) {
		zend_string_release_ex(PS(session_vars), 0);
		PS(session_vars) = NULL;
	}
	if (!Z_ISUNDEF(PS(http_session_vars))) {
		zval_ptr_dtor(&PS(http_session_vars));
		ZVAL_UNDEF(&PS(http_session_vars));
	}
	zend_hash_str_del(&EG(symbol_table), ZEND_STRL("_SESSION"));
}

/*
 * The request body's stream (SAPI's copy of a POST body, or the one
 * php://input makes) is no one's to free but PHP's request shutdown: left
 * to a handled request's end it would stay, with the body's bytes, for the
 * life of the worker.  php://input streams the handler left open (also
 * under php://filter) point into it: closed first, their resources kept for
 * the variables that hold them (a later read finds a closed resource, as
 * after fclose()).
 */
static void request_body_end(void)
{
	php_stream *body = SG(request_info).request_body;
	if (!body)
		return;
	zend_resource *res;
	ZEND_HASH_FOREACH_PTR(&EG(regular_list), res) {
		if (res->type != php_file_le_stream() || !res->ptr)
			continue;
		php_stream *s = res->ptr;
		if (s != body && s->ops && s->ops->label && strcmp(s->ops->label, "Input") == 0)
			php_stream_free(s, PHP_STREAM_FREE_CLOSE | PHP_STREAM_FREE_KEEP_RSRC);
	} ZEND_HASH_FOREACH_END();
	SG(request_info).request_body = NULL;
	php_stream_close(body);
}

/*
 * The user code a request's end runs (shutdown functions, session save
 * handlers, output callbacks) runs as at PHP's own request end, outside any
 * PHP frame: an uncaught exception there is PHP's fatal error, not an
 * exception thrown into the worker script's loop.  1 if one happened.
 */
static int end_phase_failed(void)
{
	if (!EG(exception))
		return 0;
	if (zend_is_unwind_exit(EG(exception)) || zend_is_graceful_exit(EG(exception))) {
		zend_clear_exception();
		wm.exited = 1;
		return 0;
	}
	zend_try {
		zend_exception_error(EG(exception), E_ERROR);
	} zend_end_try();
	zend_clear_exception();
	return 1;
}

static void request_end(struct php_request *pr, struct handled *h)
{
	struct request *r = pr->req;
	zend_execute_data *frame = EG(current_execute_data);
	volatile int failed = 0;      /* set across longjmp (zend_catch) */
	EG(current_execute_data) = NULL;
	/* register_shutdown_function() in the handler: at the end of its request */
	if (BG(user_shutdown_function_names)) {
		zend_try {
			php_call_shutdown_functions();
		} zend_catch {
			failed = 1;
		} zend_end_try();
		failed |= end_phase_failed();
		php_free_shutdown_functions();
	}
	BG(user_shutdown_function_names) = h->shutdown_functions;
	session_end();
	failed |= end_phase_failed();
	zend_try {
		php_output_end_all();
	} zend_catch {
		failed = 1;
	} zend_end_try();
	failed |= end_phase_failed();
	zlib_end();
	EG(current_execute_data) = frame;
	/* any fatal error of the request's, caught where it happened (php_call_shutdown_functions) */
	if (failed || EG(exit_status) == 255)
		wm.fatal = 1;
	zend_unset_timeout();
	php_error_header();
	zend_try {
		php_output_deactivate();     /* the headers, if nothing was written */
	} zend_end_try();
	r->memory_peak = zend_memory_peak_usage(1);
	if (SG(sapi_headers).http_response_code)
		r->status = SG(sapi_headers).http_response_code;
	ini_restore(h->ini_before);
	ini_snapshot_free(h->ini_before);
	process_state_restore(h);
	last_error_clear();
	filter_vars_end();
	request_body_end();
	sapi_end();                          /* uploaded files, the headers */
	SG(server_context) = NULL;
}

static int handle_one(struct worker *w, struct request *r, void *ctx)
{
	(void)w;
	struct handled *h = ctx;
	struct php_request pr = { .req = r };
	/*
	 * $_SERVER holds the params as the web server sent them: no script is
	 * looked up, so cgi.fix_pathinfo has nothing to fix.  PHP_SELF is CGI's
	 * SCRIPT_NAME + PATH_INFO.
	 */
	const char *sn = php_host->param(r, "SCRIPT_NAME"), *pi = php_host->param(r, "PATH_INFO");
	size_t snl = sn ? strlen(sn) : 0, pil = pi ? strlen(pi) : 0;
	pr.self = malloc(snl + pil + 1);
	if (pr.self) {
		memcpy(pr.self, sn ? sn : "", snl);
		memcpy(pr.self + snl, pi ? pi : "", pil);
		pr.self[snl + pil] = '\0';
	}
	script_context_end();
	php_current = &pr;
	request_begin(&pr, h);

	zend_execute_data *frame = EG(current_execute_data);
	volatile int fatal = 0;       /* set across longjmp (zend_catch) */
	zend_try {
		zval rv;
		ZVAL_UNDEF(&rv);
		h->fci->retval = &rv;
		h->fci->param_count = 0;
		h->fci->named_params = NULL;
		/* session.auto_start: PHP's request start starts it, by this request's cookie */
		if (PS(auto_start) && PS(session_status) != php_session_active)
			php_session_start();
		if (!EG(exception))
			zend_call_function(h->fci, h->fcc);
		zval_ptr_dtor(&rv);
		if (EG(exception)) {
			if (zend_is_unwind_exit(EG(exception)) || zend_is_graceful_exit(EG(exception))) {
				/* exit(): this answer as it is, then the script ends */
				wm.exited = 1;
				zend_clear_exception();
			} else {
				/*
				 * As PHP does with a classic request's uncaught exception:
				 * the application's own handler, when it set one at boot
				 * (Symfony's ErrorHandler renders its error page and logs
				 * it), else PHP's "Uncaught ..." fatal error, logged, 500
				 * when nothing was sent.  The worker is replaced either way.
				 */
				if (Z_TYPE(EG(user_exception_handler)) != IS_UNDEF)
					zend_user_exception_handler();
				if (EG(exception))
					zend_exception_error(EG(exception), E_ERROR);
				fatal = 1;
			}
		}
	} zend_catch {
		fatal = 1;
		/*
		 * A client gone with ignore_user_abort = Off: PHP stops the handler
		 * (php_handle_aborted_connection) by the same bailout as a fatal
		 * error, and the frames it cut short cannot be unwound: the worker
		 * is replaced, which costs a boot.  Said, so it can be told apart.
		 */
		if ((PG(connection_status) & PHP_CONNECTION_ABORTED) && EG(exit_status) != 255)
			php_host->log(LOG_L_NOTICE, "[pool %s] child %d: the client went away while the "
				      "handler ran and ignore_user_abort is off: PHP stopped it, so the worker "
				      "is replaced", php_pool_name(), (int)getpid());
	} zend_end_try();
	/* a bailout left the frames of the code it cut short */
	EG(current_execute_data) = frame;
	if (fatal)
		wm.fatal = 1;
	request_end(&pr, h);
	php_current = NULL;
	php_end_paths(&pr);
	script_context_begin();
	return 0;
}

/*
 * Sockets the boot opened (a database or cache connection made at boot) are
 * shared by every fork of the zygote: two workers talking on one connection
 * corrupt it.  The zygote's descriptors before the boot are remembered, and
 * each socket the boot added is named in a warning before the first fork.
 */
#define BOOT_FDS_MAX 1024
static unsigned char fds_before_boot[BOOT_FDS_MAX / 8];

static void boot_fds_remember(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	memset(fds_before_boot, 0, sizeof fds_before_boot);
	while (d && (e = readdir(d))) {
		int fd = atoi(e->d_name);
		/* not the listing's own descriptor: closed below, the boot's next one may be it */
		if (e->d_name[0] != '.' && fd >= 0 && fd < BOOT_FDS_MAX && fd != dirfd(d))
			fds_before_boot[fd / 8] |= (unsigned char)(1u << (fd % 8));
	}
	if (d)
		closedir(d);
}

static void socket_peer(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char ip[INET6_ADDRSTRLEN];
	const char *to = "to";
	snprintf(out, len, "a socket");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
		to = "on";                   /* not connected: a listener, say */
		sl = sizeof ss;
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
			return;
	}
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
		snprintf(out, len, "a socket %s %s:%u", to,
			 inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip) ? ip : "?", ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
		snprintf(out, len, "a socket %s [%s]:%u", to,
			 inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip) ? ip : "?",
			 ntohs(in6->sin6_port));
	} else if (ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
		if (sl > offsetof(struct sockaddr_un, sun_path) && un->sun_path[0])
			snprintf(out, len, "a unix socket %.*s",
				 (int)(sl - offsetof(struct sockaddr_un, sun_path)), un->sun_path);
		else
			snprintf(out, len, "an unnamed unix socket");
	}
}

static void boot_sockets_warn(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int fd = atoi(e->d_name);
		struct stat st;
		if (e->d_name[0] == '.' || fd < 0 || fd == dirfd(d))
			continue;
		if (fd < BOOT_FDS_MAX && (fds_before_boot[fd / 8] & (1u << (fd % 8))))
			continue;
		if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
			continue;
		char peer[160];
		socket_peer(fd, peer, sizeof peer);
		php_host->log(LOG_L_WARNING, "[pool %s] php.worker '%s' holds %s (fd %d) opened at "
			      "boot: with php.worker_boot = zygote every worker shares it, and two "
			      "workers on one connection corrupt it; open connections in the first "
			      "request that needs them", php_pool_name(), php_pool->conf->php_worker,
			      peer, fd);
	}
	if (d)
		closedir(d);
}

/*
 * The booted state every clone starts from, settled once here rather than in
 * each clone.  The cycle collector's candidates from the boot are what the
 * clone's first gc_collect_cycles() (the runners call it after each request)
 * would walk, writing to each candidate: a copy-on-write fault per page,
 * several hundred per clone of a framework.
 */
static void zygote_settle(void)
{
	boot_sockets_warn();
	if (gc_enabled())
		zend_gc_collect_cycles();
	zend_mm_gc(zend_mm_get_heap());
}

/* What the script wrote outside any request, out to the worker's stdout now. */
static void script_output_flush(void)
{
	zend_try {
		php_output_end_all();
	} zend_end_try();
	fflush(stdout);
}

ZEND_FUNCTION(fpmd_handle_request)
{
	zend_fcall_info fci;
	zend_fcall_info_cache fcc;
	ZEND_PARSE_PARAMETERS_START(1, 1)
		Z_PARAM_FUNC(fci, fcc)
	ZEND_PARSE_PARAMETERS_END();
	if (!wm.in_script) {
		zend_throw_error(NULL, "%s() is for the worker script of a pool with php.worker",
				 get_active_function_name());
		RETURN_THROWS();
	}
	if (php_current) {
		zend_throw_error(NULL, "%s() cannot be called while a request is handled",
				 get_active_function_name());
		RETURN_THROWS();
	}
	/* Waiting for a request is not execution: max_execution_time is each request's. */
	zend_unset_timeout();
	if (wm.zygote_boot) {
		wm.zygote_boot = 0;
		script_output_flush();      /* the boot's, once, by the zygote (a fork would repeat it) */
		zygote_settle();
		/* the zygote stays in here; the clones come back as workers */
		wm.w = php_host->zygote_serve();
		wm.forked = 1;
		random_unseed();
	}
	struct handled h = { .fci = &fci, .fcc = &fcc };
	int more = wm.w ? php_host->next_request(wm.w, handle_one, &h) : 0;
	if (wm.fatal || wm.exited) {
		if (wm.forked)
			php_host->leave(wm.w, 0);
		if (wm.exited) {
			zend_throw_unwind_exit();
			RETURN_THROWS();
		}
		/* the engine's state after a fatal error is not fit to run on: PHP's own end */
		zend_bailout();
	}
	if (!more && wm.forked)
		php_host->leave(wm.w, 0);
	RETURN_BOOL(more > 0);
}

/* --- the worker script ------------------------------------------------------ */

/* Runs php.worker to its end: the boot, then its loop.  0 / -1 (did not start). */
static int run_worker_script(void)
{
	const char *script = php_pool->conf->php_worker;
	/* FrankenPHP's runners (runtime/frankenphp-symfony, Octane) look for it */
	setenv("FRANKENPHP_WORKER", "1", 1);
	setenv("FPMD_WORKER", "1", 1);
	request_info_of_script();
	SG(request_info).no_headers = 1;
	/* the script runs from its directory, and so does everything it handles */
	SG(options) &= ~SAPI_OPTION_NO_CHDIR;
	/* the script's own context is no client's: session.auto_start is for the requests */
	bool auto_start = PS(auto_start);
	PS(auto_start) = 0;
	int started = php_request_startup();
	PS(auto_start) = auto_start;
	if (started == FAILURE) {
		php_host->log(LOG_L_ERROR, "[pool %s] PHP request startup failed for php.worker '%s'",
			      php_pool_name(), script);
		return -1;
	}
	/* opcache's, if it took one (its start asks SAPI for it) */
	wm.boot_time = SG(global_request_time) > 0 ? (time_t)SG(global_request_time) : 0;
	wm.in_script = 1;
	zend_file_handle fh;
	zend_stream_init_filename(&fh, script);
	zend_first_try {
		php_execute_script(&fh);
	} zend_end_try();
	wm.in_script = 0;
	if (wm.forked) {
		/* a fork of the booted zygote: not PHP's shutdown of what the zygote built */
		script_output_flush();
		php_host->leave(wm.w, 0);
	}
	zend_destroy_file_handle(&fh);
	php_request_shutdown(NULL);
	fflush(stdout);
	return 0;
}

void php_worker_serve(struct worker *w)
{
	wm.w = w;
	run_worker_script();
}

int php_worker_zygote_run(struct pool *pool)
{
	(void)pool;
	wm.zygote_boot = 1;
	boot_fds_remember();
	run_worker_script();
	if (wm.forked)
		php_host->leave(wm.w, 0);      /* a clone whose script ended: not the zygote's way out */
	php_host->log(LOG_L_ERROR, "[pool %s] php.worker '%s' ended before its first "
		      "fpmd_handle_request(): nothing to clone workers from (see the PHP "
		      "messages above)", php_pool_name(), php_pool->conf->php_worker);
	return -1;
}
