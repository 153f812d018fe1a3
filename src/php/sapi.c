/*
 * fpmd-php.so: PHP as a SAPI of fpmd's, over Debian's libphp8.2 (embed).
 *
 * PHP starts once per pool in the pool's zygote (pool_start), which then
 * clones the workers; each request runs through handle().  The SAPI's name
 * is php-fpm's, "fpm-fcgi": opcache enables itself only for known SAPI
 * names, and applications test php_sapi_name() for it.
 *
 * Not php_embed_init(): it fixes the name to "embed", forces
 * max_execution_time to 0 and writes to stdout.  The module is started with
 * sapi_startup() + php_module_startup() and our own module struct.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <php.h>
#include <php_ini.h>
#include <php_ini_builder.h>
#include <php_main.h>
#include <php_variables.h>
#include <SAPI.h>
#include <ext/standard/info.h>
#include <zend_ini.h>
#include <zend_ini_scanner.h>
#include <zend_extensions.h>
#include <zend_smart_str.h>
#include <ext/standard/dl.h>

#include "fcgi/fcgi.h"
#include "pathinfo/pathinfo.h"
#include "php/php_host.h"
#include "php/php_sapi.h"
#include "php/php_trace.h"
#include "worker/request.h"
#include "worker/worker.h"

#ifndef FPMD_PHP_INI_DIR
#define FPMD_PHP_INI_DIR "/etc/php/8.2/fpm"
#endif

const struct fpmd_php_host *php_host;
struct pool *php_pool;
struct php_request *php_current;

/* log levels of log/log.h, without its declarations in PHP's namespace */

/* --- our module: the SAPI's own php.ini settings --------------------------- */

PHP_INI_BEGIN()
	PHP_INI_ENTRY("cgi.fix_pathinfo", "1", PHP_INI_SYSTEM, NULL)
	PHP_INI_ENTRY("cgi.discard_path", "0", PHP_INI_SYSTEM, NULL)
	PHP_INI_ENTRY("fastcgi.logging", "1", PHP_INI_SYSTEM, NULL)
	PHP_INI_ENTRY("fastcgi.error_header", NULL, PHP_INI_SYSTEM, NULL)
	/*
	 * php-fpm's SAPI has these too and applications read them (ini_get()
	 * gives false for a setting nobody registered): the CGI SAPI's, which
	 * a FastCGI answer ignores (its status is always a Status: header), and
	 * fpm.config.  Accepted with php-fpm's defaults, no effect.
	 */
	PHP_INI_ENTRY("cgi.force_redirect", "1", PHP_INI_SYSTEM, NULL)
	PHP_INI_ENTRY("cgi.redirect_status_env", NULL, PHP_INI_SYSTEM, NULL)
	PHP_INI_ENTRY("cgi.nph", "0", PHP_INI_ALL, NULL)
	PHP_INI_ENTRY("cgi.rfc2616_headers", "0", PHP_INI_ALL, NULL)
	PHP_INI_ENTRY("fpm.config", NULL, PHP_INI_SYSTEM, NULL)
PHP_INI_END()

static PHP_MINIT_FUNCTION(fpmd)
{
	(void)type;
	REGISTER_INI_ENTRIES();
	return SUCCESS;
}

static PHP_MSHUTDOWN_FUNCTION(fpmd)
{
	(void)type;
	UNREGISTER_INI_ENTRIES();
	return SUCCESS;
}

static PHP_MINFO_FUNCTION(fpmd)
{
	(void)zend_module;
	DISPLAY_INI_ENTRIES();
}

static zend_module_entry fpmd_module_entry = {
	STANDARD_MODULE_HEADER,
	"cgi-fcgi",
	NULL,
	PHP_MINIT(fpmd),
	PHP_MSHUTDOWN(fpmd),
	NULL,
	NULL,
	PHP_MINFO(fpmd),
	PHP_VERSION,
	STANDARD_MODULE_PROPERTIES
};

/* --- SAPI callbacks ---------------------------------------------------------- */

static int sapi_fpmd_startup(sapi_module_struct *m)
{
	return php_module_startup(m, &fpmd_module_entry);
}

static size_t sapi_fpmd_ub_write(const char *str, size_t len)
{
	struct request *r = php_current ? php_current->req : NULL;
	if (!r) {
		/* fpmd -i / -m, or output at startup */
		return fwrite(str, 1, len, stdout);
	}
	if (r->finished) {
		/*
		 * After fastcgi_finish_request() nobody is listening: as php-fpm's
		 * failed write, the connection is aborted (connection_status() 1),
		 * and the script ends unless ignore_user_abort() asked otherwise.
		 */
		php_handle_aborted_connection();
		return 0;
	}
	if (php_host->write(r, str, len) < 0) {
		php_handle_aborted_connection();
		return 0;
	}
	return len;
}

static void sapi_fpmd_flush(void *ctx)
{
	struct request *r = ctx;
	if (r && !r->finished && php_host->flush(r) < 0)
		php_handle_aborted_connection();
}

static int has_status_header(sapi_headers_struct *h)
{
	zend_llist_position pos;
	for (sapi_header_struct *hd = zend_llist_get_first_ex(&h->headers, &pos); hd;
	     hd = zend_llist_get_next_ex(&h->headers, &pos))
		if (hd->header_len > 7 && strncasecmp(hd->header, "Status:", 7) == 0)
			return 1;
	return 0;
}

/* The code a "Status:" header line gives (100 to 999), or 0. */
static int status_header_code(const char *line, size_t len)
{
	size_t i = 7;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	int code = 0, digits = 0;
	while (i < len && line[i] >= '0' && line[i] <= '9' && digits < 4) {
		code = code * 10 + (line[i++] - '0');
		digits++;
	}
	return digits == 3 && code >= 100 ? code : 0;
}

/*
 * The header block as php-fpm's SAPI writes it, whose rules scripts rely on:
 * a status other than 200 goes first, from a header('HTTP/1.1 404 Not
 * Found') line when there is one (its code and reason win over
 * http_response_code() and over any "Status:" header), else from the
 * script's own "Status:" header, else from the code and PHP's reason for it;
 * one "Status:" line only; no Content-Type on a 304.  r->status is the code
 * sent (the access log's), not the one PHP computed.
 */
static int sapi_fpmd_send_headers(sapi_headers_struct *h)
{
	struct request *r = php_current ? php_current->req : NULL;
	if (!r || r->finished)
		return SAPI_HEADER_SENT_SUCCESSFULLY;
	int code = h->http_response_code ? h->http_response_code : 200;
	int sent = code;
	smart_str buf = { 0 };
	int status_written = 0;
	if (code != 200 || INI_INT("cgi.nph")) {
		const char *sl = h->http_status_line;
		const char *sp = sl ? strchr(sl, ' ') : NULL;
		/* php-fpm's status line is at most 1023 bytes: a longer reason is cut, the line kept */
		char line[1024];
		int n = -1;
		if (sp && sp - sl >= 5 && strncasecmp(sl, "HTTP/", 5) == 0) {
			n = snprintf(line, sizeof(line), "Status:%s", sp);
			int c = atoi(sp + 1);
			if (c >= 100 && c <= 999)
				sent = c;
		} else if (!has_status_header(h)) {
			/* PHP's reason for the code, or none (php-fpm sends a bare "Status: 422") */
			const char *reason = php_host->http_reason(code);
			n = snprintf(line, sizeof(line), "Status: %d%s%s", code, reason ? " " : "",
				     reason ? reason : "");
		}
		if (n >= 0) {
			smart_str_appendl(&buf, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
			smart_str_appendl(&buf, "\r\n", 2);
			status_written = 1;
		}
	}
	int no_type = sent == 304;     /* as php-fpm: the code or the line's, not a Status header's */
	zend_llist_position pos;
	for (sapi_header_struct *hd = zend_llist_get_first_ex(&h->headers, &pos); hd;
	     hd = zend_llist_get_next_ex(&h->headers, &pos)) {
		if (hd->header_len > 7 && strncasecmp(hd->header, "Status:", 7) == 0) {
			if (status_written)
				continue;
			status_written = 1;
			int c = status_header_code(hd->header, hd->header_len);
			if (c)
				sent = c;
		} else if (no_type && hd->header_len > 13 &&
			   strncasecmp(hd->header, "Content-Type:", 13) == 0) {
			continue;
		}
		smart_str_appendl(&buf, hd->header, hd->header_len);
		smart_str_appendl(&buf, "\r\n", 2);
	}
	smart_str_appendl(&buf, "\r\n", 2);
	smart_str_0(&buf);
	r->status = sent;
	r->headers_sent = 1;
	php_host->note_headers(r, ZSTR_VAL(buf.s), ZSTR_LEN(buf.s));
	int rc = php_host->write(r, ZSTR_VAL(buf.s), ZSTR_LEN(buf.s));
	smart_str_free(&buf);
	return rc < 0 ? SAPI_HEADER_SEND_FAILED : SAPI_HEADER_SENT_SUCCESSFULLY;
}

static size_t sapi_fpmd_read_post(char *buf, size_t count)
{
	struct request *r = php_current ? php_current->req : NULL;
	size_t got = 0;
	/* CONTENT_LENGTH bytes and no more, as php-fpm: the rest of a stream is not the body */
	int64_t left = SG(request_info).content_length - SG(read_post_bytes);
	if (left <= 0)
		return 0;
	if ((uint64_t)left < count)
		count = (size_t)left;
	while (r && got < count) {
		ssize_t n = php_host->body_read(r, buf + got, count - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static char *sapi_fpmd_read_cookies(void)
{
	return php_current ? (char *)php_host->param(php_current->req, "HTTP_COOKIE") : NULL;
}

static char *sapi_fpmd_getenv(const char *name, size_t len)
{
	char key[256];
	if (!php_current || len >= sizeof(key))
		return NULL;
	memcpy(key, name, len);
	key[len] = '\0';
	const char *v = php_request_var(key, NULL);
	if (!v && strcmp(key, "FCGI_ROLE") == 0)
		v = "RESPONDER";        /* php-fpm's, when the web server did not send one */
	return (char *)v;
}

/* The environment PHP would import, then the request's params over it (php-fpm's $_SERVER). */
static void (*php_import_env_orig)(zval *array_ptr);

static void register_filtered(const char *name, const char *value, size_t len, zval *arr,
			      int filter_arg)
{
	char *val = (char *)value;
	size_t new_len = len;
	if (sapi_module.input_filter(filter_arg, name, &val, len, &new_len))
		php_register_variable_safe(name, val, new_len, arr);
}

/* The request's variables: params, with what cgi.fix_pathinfo changed or added (ORIG_*). */
static void add_request_vars(zval *arr, int filter_arg, int filtered)
{
	struct request *r = php_current ? php_current->req : NULL;
	const struct pathinfo *pi = php_request_pathinfo();
	if (!r)
		return;
	/* php-fpm's FastCGI layer sets it before the params (which may replace it) */
	if (filtered)
		register_filtered("FCGI_ROLE", "RESPONDER", 9, arr, filter_arg);
	else
		php_register_variable_safe("FCGI_ROLE", "RESPONDER", 9, arr);
	size_t n = php_host->param_count(r);
	for (size_t i = 0; i < n; i++) {
		const struct fcgi_param *p = php_host->param_at(r, i);
		if (!p || !p->name_len)
			continue;
		/* replaced or removed by cgi.fix_pathinfo: a look at its few variables, not a param
		 * lookup per param (that made the import quadratic in the params) */
		int changed = 0;
		for (size_t k = 0; pi && k < pi->nvars && !changed; k++)
			changed = strcmp(pi->vars[k].name, p->name) == 0;
		if (changed)
			continue;
		if (filtered)
			register_filtered(p->name, p->value, p->value_len, arr, filter_arg);
		else
			php_register_variable_safe(p->name, p->value, p->value_len, arr);
	}
	for (size_t i = 0; pi && i < pi->nvars; i++) {
		const char *v = pi->vars[i].value;
		if (!v)
			continue;
		if (filtered)
			register_filtered(pi->vars[i].name, v, strlen(v), arr, filter_arg);
		else
			php_register_variable_safe(pi->vars[i].name, v, strlen(v), arr);
	}
}

/* $_SERVER and $_ENV: the process environment (env[]), then the request's, php-fpm's way. */
static void fpmd_import_environment(zval *arr)
{
	if (php_import_env_orig)
		php_import_env_orig(arr);
	int filter_arg = Z_TYPE(PG(http_globals)[TRACK_VARS_ENV]) == IS_ARRAY &&
			 Z_ARR_P(arr) == Z_ARR(PG(http_globals)[TRACK_VARS_ENV]) ? PARSE_ENV : PARSE_SERVER;
	add_request_vars(arr, filter_arg, 1);
}

/* getenv() without arguments: the same, unfiltered. */
static void fpmd_load_environment(zval *arr)
{
	if (php_import_env_orig)
		php_import_env_orig(arr);
	add_request_vars(arr, PARSE_ENV, 0);
}

/*
 * php.worker's script, outside any request: the variables a CLI script has
 * of itself (front controllers such as Symfony's runtime require
 * SCRIPT_FILENAME).  DOCUMENT_ROOT is the script's directory.
 */
static void register_worker_script_vars(zval *arr)
{
	const char *script = php_pool && php_pool->conf ? php_pool->conf->php_worker : NULL;
	if (!script || !SG(request_info).path_translated)
		return;
	const char *base = strrchr(script, '/');
	size_t dir_len = base && base != script ? (size_t)(base - script) : 1;
	char *name = malloc(strlen(base ? base : script) + 2);
	char *dir = malloc(dir_len + 1);
	if (name && dir) {
		sprintf(name, "%s%s", base ? "" : "/", base ? base : script);
		memcpy(dir, script, dir_len);
		dir[dir_len] = '\0';
		register_filtered("SCRIPT_FILENAME", script, strlen(script), arr, PARSE_SERVER);
		register_filtered("PATH_TRANSLATED", script, strlen(script), arr, PARSE_SERVER);
		register_filtered("SCRIPT_NAME", name, strlen(name), arr, PARSE_SERVER);
		register_filtered("PHP_SELF", name, strlen(name), arr, PARSE_SERVER);
		register_filtered("DOCUMENT_ROOT", dir, strlen(dir), arr, PARSE_SERVER);
	}
	free(name);
	free(dir);
}

static void sapi_fpmd_register_variables(zval *arr)
{
	php_import_environment_variables(arr);
	if (!php_current) {
		register_worker_script_vars(arr);
		return;
	}
	const char *self = php_request_self();
	if (self)
		register_filtered("PHP_SELF", self, strlen(self), arr, PARSE_SERVER);
}

static void sapi_fpmd_log_message(const char *message, int syslog_type)
{
	(void)syslog_type;
	size_t len = strlen(message);
	struct request *r = php_current ? php_current->req : NULL;
	/*
	 * php-fpm's two places: the web server's error log (FastCGI stderr,
	 * fastcgi.logging) and the worker's stderr (catch_workers_output).
	 */
	if (r && !r->finished && len && zend_ini_long("fastcgi.logging", sizeof("fastcgi.logging") - 1, 0)) {
		/* php-fpm's stream: "PHP message: a; PHP message: b" (web servers log it as one line) */
		char *line = malloc(len + 32);
		if (line) {
			int n = snprintf(line, len + 32, "%sPHP message: %s", r->stderr_used ? "; " : "",
					 message);
			php_host->write_stderr(r, line, (size_t)n);
			free(line);
		}
	}
	if (r || !php_pool) {
		/* one write: lines of the same worker never interleave */
		char *line = malloc(len + 32);
		if (line) {
			int n = snprintf(line, len + 32, "NOTICE: PHP message: %s\n", message);
			ssize_t w = write(STDERR_FILENO, line, (size_t)n);
			(void)w;
			free(line);
		}
	} else {
		php_host->log(LOG_L_WARNING, "[pool %s] PHP: %s", php_pool_name(), message);
	}
}

static int sapi_fpmd_activate(void)
{
	/* An answer is a 200 until the script says otherwise: PHP's "fatal error → 500" needs it. */
	SG(sapi_headers).http_response_code = 200;
	php_activate_user_ini();
	return SUCCESS;
}

static sapi_module_struct fpmd_sapi = {
	.name = "fpm-fcgi",
	.pretty_name = "fpmd",
	.startup = sapi_fpmd_startup,
	.shutdown = php_module_shutdown_wrapper,
	.activate = sapi_fpmd_activate,
	.ub_write = sapi_fpmd_ub_write,
	.flush = sapi_fpmd_flush,
	.getenv = sapi_fpmd_getenv,
	.sapi_error = php_error,
	.send_headers = sapi_fpmd_send_headers,
	.read_post = sapi_fpmd_read_post,
	.read_cookies = sapi_fpmd_read_cookies,
	.register_server_variables = sapi_fpmd_register_variables,
	.log_message = sapi_fpmd_log_message,
	.php_ini_ignore_cwd = 1,
	.input_filter = NULL,
};

const char *php_pool_name(void)
{
	return php_pool && php_pool->conf ? php_pool->conf->name : "-";
}

/* --- startup ----------------------------------------------------------------- */

static int php_started;

/*
 * php.ini like php-fpm on Debian: -c, else $PHPRC, else /etc/php/8.2/fpm and its conf.d.
 * guard: one opcache for pools of different users or chroots (the shared
 * zygote's), so a cached script is served only to a worker whose user may
 * read the file, and a chroot'ed pool's scripts are cached under their
 * chroot (what php-fpm operators set).  It costs an access() per cached
 * script per include (a framework page includes hundreds): pools of one
 * user and root go without it.
 */
/*
 * Debian's php-fpm has no pcntl; Debian's libphp8.2-embed has it built in.
 * A script's pcntl_fork() in a worker makes a copy that returns to the
 * worker's loop with the pool's socket and the client's connection: a worker
 * no one supervises, which outlives the master and can write into the next
 * client's answer on a kept connection; pcntl_exec() replaces the worker
 * with another program.  Those are taken away; pcntl's signal functions
 * (pcntl_signal, pcntl_sigprocmask, ...) stay, but for the signals that
 * are fpmd's own (below).
 */
static zif_handler pcntl_signal_handler;

/*
 * SIGQUIT is a worker's graceful stop (a stop, a reload, its master's
 * death), SIGTERM its fast stop, WORKER_SIG_RELEASE the master asking for a
 * kept connection back.  A script's handler for one of them took the
 * signal from the worker: a stop waited for process_control_timeout, a
 * worker outlived its dead master.  php-fpm's workers have no pcntl.
 */
static ZEND_NAMED_FUNCTION(fpmd_pcntl_signal)
{
	if (ZEND_NUM_ARGS() >= 1) {
		zval *arg = ZEND_CALL_ARG(execute_data, 1);
		zend_long signo = Z_TYPE_P(arg) == IS_LONG ? Z_LVAL_P(arg) : zval_get_long(arg);
		const char *name = signo == SIGQUIT ? "SIGQUIT" : signo == SIGTERM ? "SIGTERM" :
				   signo == WORKER_SIG_RELEASE ? "SIGRTMIN+2" : NULL;
		if (name) {
			zend_value_error("pcntl_signal(): %s is fpmd's, to stop or call back its workers: "
					 "it cannot be handled by a script", name);
			RETURN_THROWS();
		}
	}
	pcntl_signal_handler(INTERNAL_FUNCTION_PARAM_PASSTHRU);
}

static void disable_pcntl_process_functions(void)
{
	if (!zend_hash_str_exists(&module_registry, "pcntl", sizeof("pcntl") - 1))
		return;
	zend_disable_functions("pcntl_fork,pcntl_rfork,pcntl_exec,pcntl_unshare");
	zend_function *f = zend_hash_str_find_ptr(CG(function_table), "pcntl_signal",
						  sizeof("pcntl_signal") - 1);
	if (f && f->type == ZEND_INTERNAL_FUNCTION && f->internal_function.handler != fpmd_pcntl_signal) {
		pcntl_signal_handler = f->internal_function.handler;
		f->internal_function.handler = fpmd_pcntl_signal;
	}
}

static int start_php(const struct conf_options *opt, int guard)
{
	static char ini_path[4096];
	sapi_startup(&fpmd_sapi);
	fpmd_sapi.php_ini_ignore = opt && opt->php_ini_ignore;
	const char *ini = opt && opt->php_ini ? opt->php_ini : opt && opt->php_rc ? opt->php_rc
			  : FPMD_PHP_INI_DIR;
	snprintf(ini_path, sizeof(ini_path), "%s", ini);
	/* PHP reads an override even with -n: only -c may name a file then (as php -n -c). */
	if (!fpmd_sapi.php_ini_ignore || (opt && opt->php_ini))
		fpmd_sapi.php_ini_path_override = ini_path;
	const char *scan = opt && opt->php_ini_scan_dir ? opt->php_ini_scan_dir
			   : FPMD_PHP_INI_DIR "/conf.d";
	setenv("PHP_INI_SCAN_DIR", scan, 1);

	struct php_ini_builder b;
	php_ini_builder_init(&b);
	for (size_t i = 0; opt && i < opt->php_defines.n; i++) {
		const struct conf_kv *kv = &opt->php_defines.items[i];
		char *arg = malloc(strlen(kv->key) + strlen(kv->value) + 2);
		if (!arg)
			return -1;
		sprintf(arg, "%s=%s", kv->key, kv->value);
		php_ini_builder_define(&b, arg);
		free(arg);
	}
	if (guard) {
		php_ini_builder_define(&b, "opcache.validate_permission=1");
		php_ini_builder_define(&b, "opcache.validate_root=1");
	}
	fpmd_sapi.ini_entries = php_ini_builder_finish(&b);
	fpmd_sapi.additional_functions = php_fpmd_functions;
	/*
	 * PHP_BINARY: the running server, as php-fpm's is php-fpm (PHP resolves
	 * the link; a binary replaced on disk since leaves it empty).  Set after
	 * the ini path above, which PHP then never looks for next to it.
	 */
	fpmd_sapi.executable_location = (char *)"/proc/self/exe";

	int rc = fpmd_sapi.startup(&fpmd_sapi);
	unsetenv("PHP_INI_SCAN_DIR");
	if (rc == FAILURE)
		return -1;
	/* After startup, as php-fpm does: PHP's own import stays the base of ours. */
	php_import_env_orig = php_import_environment_variables;
	php_import_environment_variables = fpmd_import_environment;
	php_load_environment_variables = fpmd_load_environment;
	disable_pcntl_process_functions();
	php_started = 1;
	return 0;
}

struct ini_eval {
	char *out;
	size_t cap;
	int got;
};

static void ini_eval_entry(zval *name, zval *value, zval *unused, int type, void *arg)
{
	struct ini_eval *e = arg;
	(void)name;
	(void)unused;
	if (type == ZEND_INI_PARSER_ENTRY && value && Z_TYPE_P(value) == IS_STRING && !e->got &&
	    Z_STRLEN_P(value) < e->cap) {
		memcpy(e->out, Z_STRVAL_P(value), Z_STRLEN_P(value) + 1);
		e->got = 1;
	}
}

/*
 * php-fpm reads its configuration with PHP's own INI scanner, so a pool's
 * unquoted `php_value[error_reporting] = E_ALL & ~E_NOTICE` is PHP's
 * constants and operators (24567), `null` and `none` are empty, `on` is 1;
 * a quoted value is a literal.  fpmd's parser keeps values as text and says
 * which were quoted: an unquoted value made only of what such an expression
 * is made of (names, numbers, blanks, & | ^ ~ ! and parentheses) goes through
 * the scanner the same way; any other (a path, a URL, a list) is taken as
 * written, which is what the scanner gives for it too.  Taken as written
 * when the scanner refuses it.
 */
static const char *php_ini_value_eval(const char *value, int quoted, char *out, size_t cap)
{
	int words = 0, operators = 0;
	if (quoted)
		return value;
	for (const char *p = value; *p; p++) {
		if (isalpha((unsigned char)*p))
			words = 1;
		else if (strchr("&|^~!()", *p))
			operators = 1;
		else if (!isdigit((unsigned char)*p) && !strchr("_ \t", *p))
			return value;
	}
	if (!words && !operators)
		return value;            /* a number: nothing to evaluate */
	size_t n = strlen(value) + 4;
	char *src = malloc(n);
	if (!src)
		return value;
	snprintf(src, n, "v=%s\n", value);
	struct ini_eval e = { .out = out, .cap = cap };
	int rc = zend_parse_ini_string(src, 1, ZEND_INI_SCANNER_NORMAL, ini_eval_entry, &e);
	free(src);
	return rc == SUCCESS && e.got ? out : value;
}

/*
 * php_value[] and friends, php-fpm's way: the entry's value itself changes
 * (it survives every request's ini reset); admin ones become PHP_INI_SYSTEM
 * so ini_set() and .user.ini cannot change them.  The value is evaluated as
 * php-fpm's INI scanner would (php_ini_value_eval).
 */
/*
 * A php_value[] PHP refused: said once per pool (with the shared zygote
 * every worker applies them: each would say it again), with where it was
 * written.  The first worker to apply them claims the saying in the pool's
 * scoreboard (its workers' own memory); the others say it at debug.
 */
static int values_level = LOG_L_WARNING;

static void pool_ini_problem(const struct conf_kv *kv, int admin, const char *what)
{
	php_host->log(values_level, "[pool %s] [%s:%d] %s[%s]%s", php_pool_name(),
		      kv->file ? kv->file : "?", kv->line,
		      admin ? "php_admin_value" : "php_value", kv->key, what);
}

static void pool_ini_claim(void)
{
	struct sb_header *hdr = php_pool ? php_pool->sb.hdr : NULL;
	if (hdr && __atomic_exchange_n(&hdr->php_values_warned, 1, __ATOMIC_SEQ_CST))
		values_level = LOG_L_DEBUG;
}

static int apply_pool_ini(const struct conf_kv *kv, const char *written, int quoted, int admin)
{
	char evaluated[4096];
	char what[4200];
	const char *name = kv->key;
	const char *value = php_ini_value_eval(written, quoted, evaluated, sizeof(evaluated));
	if (strcmp(name, "extension") == 0 || strcmp(name, "zend_extension") == 0) {
		zval ok;
		if (strcmp(name, "zend_extension") == 0) {
			pool_ini_problem(kv, admin, " is not supported; load it in php.ini");
			return -1;
		}
		php_dl(value, MODULE_PERSISTENT, &ok, 1);
		return Z_TYPE(ok) == IS_TRUE ? 0 : -1;
	}
	zend_ini_entry *e = zend_hash_str_find_ptr(EG(ini_directives), name, strlen(name));
	if (!e) {
		pool_ini_problem(kv, admin, ": PHP has no such setting (a typo, or its extension is "
				 "not loaded)");
		return -1;
	}
	zend_string *v = zend_string_init(value, strlen(value), 1);
	if (e->on_modify && e->on_modify(e, v, e->mh_arg1, e->mh_arg2, e->mh_arg3,
					 ZEND_INI_STAGE_ACTIVATE) != SUCCESS) {
		zend_string_release(v);
		snprintf(what, sizeof(what), " = '%s' was refused by PHP (written as php.ini would "
			 "have it: sizes 128M, not 128MB)", value);
		pool_ini_problem(kv, admin, what);
		return -1;
	}
	e->value = v;
	if (admin)
		e->modifiable = ZEND_INI_SYSTEM;
	if (strcmp(name, "disable_functions") == 0 && *value)
		zend_disable_functions(value);
	else if (strcmp(name, "disable_classes") == 0 && *value) {
		char *list = strdup(value);
		for (char *save = NULL, *c = list ? strtok_r(list, ", ", &save) : NULL; c;
		     c = strtok_r(NULL, ", ", &save))
			zend_disable_class(c, strlen(c));
		free(list);
	}
	return 0;
}

static const char *flag_value(const char *v)
{
	return (!strcasecmp(v, "on") || !strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
		!strcmp(v, "1")) ? "1" : "0";
}

static void apply_pool_lists(const struct pool_conf *pc)
{
	/*
	 * The request loop's functions, and FrankenPHP's names, exist in worker
	 * mode only: a front controller that asks function_exists('frankenphp_…')
	 * to pick its worker loop must get php-fpm's answer in a classic pool.
	 */
	if (!pc->php_worker)
		zend_disable_functions("fpmd_handle_request,frankenphp_handle_request,"
				       "frankenphp_finish_request,frankenphp_request_headers,"
				       "frankenphp_response_headers");
	/* the embed SAPI's chroot(), which php-fpm's SAPI has not */
	zend_disable_functions("chroot");
	pool_ini_claim();
	for (size_t i = 0; i < pc->php_value.n; i++)
		apply_pool_ini(&pc->php_value.items[i], pc->php_value.items[i].value,
			       pc->php_value.items[i].quoted, 0);
	for (size_t i = 0; i < pc->php_flag.n; i++)
		apply_pool_ini(&pc->php_flag.items[i], flag_value(pc->php_flag.items[i].value), 1, 0);
	for (size_t i = 0; i < pc->php_admin_value.n; i++)
		apply_pool_ini(&pc->php_admin_value.items[i], pc->php_admin_value.items[i].value,
			       pc->php_admin_value.items[i].quoted, 1);
	for (size_t i = 0; i < pc->php_admin_flag.n; i++)
		apply_pool_ini(&pc->php_admin_flag.items[i],
			       flag_value(pc->php_admin_flag.items[i].value), 1, 1);
}

static int pool_start(const struct fpmd_php_host *host, struct pool *pool,
		      const struct conf_options *opt)
{
	php_host = host;
	php_pool = pool;
	if (start_php(opt, 0) < 0) {
		host->log(LOG_L_ERROR, "[pool %s] PHP failed to start", pool->conf->name);
		return -1;
	}
	apply_pool_lists(pool->conf);
	return 0;
}

static int php_start(const struct fpmd_php_host *host, const struct conf_options *opt,
		     int pools_differ)
{
	php_host = host;
	if (start_php(opt, pools_differ) < 0) {
		host->log(LOG_L_ERROR, "PHP failed to start in the shared zygote");
		return -1;
	}
	return 0;
}

static int pool_apply(struct pool *pool)
{
	php_pool = pool;
	apply_pool_lists(pool->conf);
	return 0;
}

static int cli_info(const struct conf_options *opt, int what)
{
	static const struct fpmd_php_host cli_host = { .version = FPMD_PHP_HOST_VERSION };
	php_host = &cli_host;
	fpmd_sapi.phpinfo_as_text = 1;
	if (start_php(opt, 0) < 0)
		return 1;
	SG(server_context) = NULL;
	SG(request_info).no_headers = 1;
	SG(headers_sent) = 1;
	if (php_request_startup() == FAILURE)
		return 1;
	if (what == 'i')
		php_print_info(PHP_INFO_ALL & ~PHP_INFO_CREDITS);
	else if (what == 'v')
		/* php-fpm's block exactly (scripts parse it), fpmd named inside its first line */
		php_printf("PHP %s (%s; fpmd %s) (built: %s %s)\nCopyright (c) The PHP Group\n%s",
			   PHP_VERSION, sapi_module.name, opt && opt->version ? opt->version : "?",
			   __DATE__, __TIME__, get_zend_version());
	else
		php_print_modules();
	php_request_shutdown(NULL);
	fflush(stdout);
	return 0;
}

static size_t trace_layout(void *buf, size_t cap)
{
	struct php_trace_layout l = {
		.magic = PHP_TRACE_MAGIC,
		.call_kind_mask = ZEND_CALL_CODE | ZEND_CALL_TOP,
		.call_top_code = ZEND_CALL_TOP_CODE,
		.call_nested_code = ZEND_CALL_NESTED_CODE,
		.current_execute_data = (uint64_t)(uintptr_t)&EG(current_execute_data),
		.path_translated = (uint64_t)(uintptr_t)&SG(request_info).path_translated,
		.ex_func = offsetof(zend_execute_data, func),
		.ex_prev = offsetof(zend_execute_data, prev_execute_data),
		.ex_opline = offsetof(zend_execute_data, opline),
		.ex_call_info = offsetof(zend_execute_data, This.u1.type_info),
		.fn_type = offsetof(zend_function, type),
		.fn_name = offsetof(zend_function, common.function_name),
		.op_filename = offsetof(zend_op_array, filename),
		.op_lineno = offsetof(zend_op, lineno),
		.str_val = offsetof(zend_string, val),
	};
	if (PG(expose_php))
		snprintf(l.powered_by, sizeof(l.powered_by), "X-Powered-By: PHP/%s\r\n", PHP_VERSION);
	if (cap < sizeof(l))
		return 0;
	memcpy(buf, &l, sizeof(l));
	return sizeof(l);
}

static void worker_exit(struct worker *w)
{
	(void)w;
}

__attribute__((visibility("default")))
const struct fpmd_php_entry fpmd_php_entry = {
	.version = FPMD_PHP_HOST_VERSION,
	.pool_start = pool_start,
	.php_start = php_start,
	.pool_apply = pool_apply,
	.worker_init = php_worker_init,
	.handle = php_handle,
	.worker_exit = worker_exit,
	.worker_serve = php_worker_serve,
	.zygote_run = php_worker_zygote_run,
	.trace_layout = trace_layout,
	.cli_info = cli_info,
};
