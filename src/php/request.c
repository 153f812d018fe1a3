/*
 * One PHP request: resolve the script (cgi.fix_pathinfo,
 * security.limit_extensions), fill SAPI's request info from the FastCGI
 * params, run the script, shut the request down.  A fatal error, exit() or
 * an uncaught exception ends the script, never the worker.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <php.h>
#include <php_main.h>
#include <php_ini.h>
#include <SAPI.h>
#include <zend_ini.h>
#include <zend_ini_scanner.h>

#include "conf/conf.h"
#include "php/php_host.h"
#include "php/php_sapi.h"
#include "pathinfo/pathinfo.h"
#include "worker/request.h"
#include "worker/worker.h"


static const char *param_cb(const char *name, void *ctx)
{
	return php_host->param(ctx, name);
}

const struct pathinfo *php_request_pathinfo(void)
{
	return php_current && php_current->have_paths ? &php_current->paths : NULL;
}

const char *php_request_var(const char *name, int *changed)
{
	if (!php_current || !php_current->have_paths) {
		if (changed)
			*changed = 0;
		return php_current ? php_host->param(php_current->req, name) : NULL;
	}
	return pathinfo_var(&php_current->paths, &php_current->in, name, changed);
}

const char *php_request_self(void)
{
	return php_current ? php_current->self : NULL;
}

/*
 * php.ini booleans: "1", "on", "yes", "true" (OnUpdateBool's words).  The
 * entry is looked up once per worker: entries live as long as PHP, only
 * their value changes (per directory, per request).
 */
static int ini_bool(zend_ini_entry **cache, const char *name, size_t len)
{
	if (!*cache)
		*cache = zend_hash_str_find_ptr(EG(ini_directives), name, len);
	const zend_string *zv = *cache ? (*cache)->value : NULL;
	const char *v = zv ? ZSTR_VAL(zv) : NULL;
	return v && (!strcmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") ||
		     !strcasecmp(v, "true"));
}
static zend_ini_entry *ini_fix_pathinfo, *ini_discard_path;

/*
 * --- what the file system said of a script, this second ---------------------
 *
 * Each request asked stat() (a regular file? cgi.fix_pathinfo's walk and
 * "Primary script unknown") and access() (readable? php-fpm's 403 "Access
 * denied" for a script it cannot open) of the same few paths, two system
 * calls of the fifteen a hello-world request made.  A yes is remembered for
 * the rest of the current second (time(): the vDSO's, no system call), a no
 * never: a new script is found at once, a removed or unreadable one within a
 * second.  PHP trusts what it saw for longer than that: opcache re-reads a
 * changed script after opcache.revalidate_freq (2 s), and php-fpm finds the
 * script through PHP's realpath cache (realpath_cache_ttl, 120 s).
 * Direct-mapped by a hash of the path, so a worker remembers at most
 * SCRIPT_SEEN_SLOTS paths and looks one up in one string comparison.
 */
#define SCRIPT_SEEN_SLOTS 64
struct script_seen {
	char *path;             /* malloc'd; NULL: the slot is free */
	time_t regular_when;    /* the second stat() said: a regular file; 0: not said */
	time_t readable_when;   /* the second access(R_OK) said yes; 0: not said */
};
static struct script_seen script_seen[SCRIPT_SEEN_SLOTS];

static struct script_seen *script_seen_slot(const char *path)
{
	uint32_t h = 2166136261u;        /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		h = (h ^ *p) * 16777619u;
	return &script_seen[h % SCRIPT_SEEN_SLOTS];
}

/* The slot that remembers PATH, taken over from another path if need be; NULL: no memory. */
static struct script_seen *script_seen_claim(const char *path)
{
	struct script_seen *s = script_seen_slot(path);
	if (s->path && strcmp(s->path, path) == 0)
		return s;
	char *copy = strdup(path);
	if (!copy)
		return NULL;
	free(s->path);
	*s = (struct script_seen){ .path = copy };
	return s;
}

static const struct script_seen *script_seen_find(const char *path)
{
	const struct script_seen *s = script_seen_slot(path);
	return s->path && strcmp(s->path, path) == 0 ? s : NULL;
}

/* stat(path): 1 a regular file, 0 something else, -1 nothing; a regular file is remembered. */
static int script_kind(const char *path)
{
	time_t now = time(NULL);
	const struct script_seen *seen = script_seen_find(path);
	if (seen && seen->regular_when == now)
		return 1;
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISREG(st.st_mode))
		return 0;
	struct script_seen *s = script_seen_claim(path);
	if (s)
		s->regular_when = now;
	return 1;
}

static int is_regular_file(const char *path, void *ctx)
{
	(void)ctx;
	return script_kind(path) == 1;
}

/* access(path, R_OK), a yes remembered for the rest of this second (above). */
static int script_readable(const char *path)
{
	time_t now = time(NULL);
	const struct script_seen *seen = script_seen_find(path);
	if (seen && seen->readable_when == now)
		return 0;
	if (access(path, R_OK) < 0)
		return -1;
	struct script_seen *s = script_seen_claim(path);
	if (s)
		s->readable_when = now;
	return 0;
}

/* php-fpm asks realpath(); stat() gives the same answer in one system call, not five. */
static int path_exists(const char *path, void *ctx)
{
	(void)ctx;
	return script_kind(path) >= 0;
}

static const char *param(struct request *r, const char *name)
{
	return php_host->param(r, name);
}

/* --- .user.ini (user_ini.filename, user_ini.cache_ttl), php-fpm's way ---------- */

struct user_ini_dir {
	char *dir;
	time_t expires;
	HashTable *config;     /* persistent: lives across requests until its ttl */
	struct user_ini_dir *next;
};
static struct user_ini_dir *user_ini_cache;

static void user_ini_value_dtor(zval *zv)
{
	if (Z_TYPE_P(zv) == IS_STRING)
		zend_string_release_ex(Z_STR_P(zv), 1);
	else if (Z_TYPE_P(zv) == IS_ARRAY) {
		zend_hash_destroy(Z_ARRVAL_P(zv));
		free(Z_ARRVAL_P(zv));
	}
}

static HashTable *user_ini_for(const char *dir)
{
	time_t now = time(NULL);
	struct user_ini_dir *e;
	for (e = user_ini_cache; e; e = e->next)
		if (strcmp(e->dir, dir) == 0)
			break;
	if (e && e->expires > now)
		return e->config;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e || !(e->dir = strdup(dir))) {
			free(e);
			return NULL;
		}
		e->next = user_ini_cache;
		user_ini_cache = e;
	}
	if (e->config) {
		zend_hash_destroy(e->config);
		free(e->config);
		e->config = NULL;
	}
	e->expires = now + (PG(user_ini_cache_ttl) > 0 ? PG(user_ini_cache_ttl) : 0);
	HashTable *h = malloc(sizeof(*h));
	if (!h)
		return NULL;
	zend_hash_init(h, 8, NULL, user_ini_value_dtor, 1);
	php_parse_user_ini_file(dir, PG(user_ini_filename), h);
	e->config = h;
	return h;
}

/* Every directory from DOCUMENT_ROOT down to the script's own, outermost first. */
void php_activate_user_ini(void)
{
	const struct pathinfo *paths = php_request_pathinfo();
	if (!paths || !paths->script || !PG(user_ini_filename) || !*PG(user_ini_filename))
		return;
	char dir[4096];
	/* a copy, truncated as snprintf would (PHP's snprintf costs ~450 instructions here) */
	size_t sl = strnlen(paths->script, sizeof(dir) - 1);
	memcpy(dir, paths->script, sl);
	dir[sl] = '\0';
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return;
	*slash = '\0';
	/*
	 * As php-fpm: no DOCUMENT_ROOT, no .user.ini; a root of "/" (its
	 * trailing slash dropped, nothing left) walks from "/" down.
	 */
	const char *root = param(php_current->req, "DOCUMENT_ROOT");
	if (!root)
		return;
	size_t rl = strlen(root);
	while (rl > 0 && root[rl - 1] == '/')
		rl--;
	size_t start = strlen(dir);
	if (strncmp(dir, root, rl) == 0 && (dir[rl] == '/' || dir[rl] == '\0'))
		start = rl;
	for (size_t i = start;; i++) {
		if (dir[i] == '/' || dir[i] == '\0') {
			char saved = dir[i];
			dir[i] = '\0';
			HashTable *h = user_ini_for(i ? dir : "/");
			if (h && zend_hash_num_elements(h))
				php_ini_activate_config(h, PHP_INI_PERDIR, PHP_INI_STAGE_HTACCESS);
			dir[i] = saved;
			if (!saved)
				break;
		}
	}
}

/*
 * --- the script's directory -------------------------------------------------
 *
 * PHP runs a script from its directory: php_execute_script() calls getcwd(),
 * chdir() to the script's directory and chdir() back at its end, three
 * system calls per request.  With SAPI_OPTION_NO_CHDIR it does none of them
 * and this file does the chdir(), only when the script's directory is not
 * the one the worker is already in: a pool serving one application's
 * directory pays one chdir() per worker, not three calls per request.
 *
 * What stays the same: the script (and what it includes relatively) runs
 * in its own directory.  What differs: the worker stays there after the
 * script, so shutdown functions and destructors run there too (php-fpm runs
 * them in the pool's chdir directory, which PHP's manual leaves to the SAPI).
 * A script that changes directory itself (chdir(), chroot()) makes the
 * directory unknown: the next request chdir()s whatever it is.  A script
 * path that is not absolute takes PHP's own way, from the pool's directory.
 * The same directory is entered again once a second: a path through a
 * symlink that a deployment switches (current -> releases/N) then leads to
 * the new directory within a second, where PHP's chdir() per request found
 * it at once (opcache and PHP's realpath cache lag behind such a switch
 * longer than that by default).
 */
static char base_dir[PATH_MAX];   /* the pool's directory, where the worker started */
static char *cwd_now;             /* where the worker is; NULL: base_dir */
static time_t cwd_when;           /* the second cwd_now was entered */
static int cwd_unknown;           /* a script changed directory itself */
static zif_handler php_chdir_fn, php_chroot_fn;

static ZEND_NAMED_FUNCTION(fpmd_chdir)
{
	cwd_unknown = 1;
	php_chdir_fn(INTERNAL_FUNCTION_PARAM_PASSTHRU);
}

static ZEND_NAMED_FUNCTION(fpmd_chroot)
{
	cwd_unknown = 1;
	php_chroot_fn(INTERNAL_FUNCTION_PARAM_PASSTHRU);
}

/* PHP's own functions that change the directory, wrapped to say so. */
static void wrap_cwd_function(const char *name, zif_handler *orig, zif_handler wrapper)
{
	zend_function *fn = zend_hash_str_find_ptr(CG(function_table), name, strlen(name));
	if (fn && fn->type == ZEND_INTERNAL_FUNCTION && fn->internal_function.handler != wrapper) {
		*orig = fn->internal_function.handler;
		fn->internal_function.handler = wrapper;
	}
}

static int cwd_init(void)
{
	if (!getcwd(base_dir, sizeof(base_dir)))
		return -1;
	wrap_cwd_function("chdir", &php_chdir_fn, fpmd_chdir);
	wrap_cwd_function("chroot", &php_chroot_fn, fpmd_chroot);
	SG(options) |= SAPI_OPTION_NO_CHDIR;
	return 0;
}

static void cwd_forget(void)
{
	free(cwd_now);
	cwd_now = NULL;
}

/* Before the script's path is resolved: relative paths are the pool directory's. */
static void cwd_for_resolve(struct request *r)
{
	if (!base_dir[0] || (!cwd_now && !cwd_unknown))
		return;
	const char *sf = param(r, "SCRIPT_FILENAME");
	const char *dr = PG(doc_root);
	/* Apache's mod_proxy_fcgi prefixes an absolute path with "proxy:fcgi://host:port" */
	if (sf && (sf[0] == '/' || strncmp(sf, "proxy:", 6) == 0) && (!dr || !*dr || dr[0] == '/'))
		return;
	if (chdir(base_dir) < 0)
		php_host->log(LOG_L_WARNING, "[pool %s] chdir(%s) failed: %s", php_pool_name(),
			      base_dir, strerror(errno));
	cwd_forget();
	cwd_unknown = 0;
}

/*
 * Into the script's directory, unless already there.  0: done (PHP must not
 * chdir); -1: let PHP do it its own way for this request (a relative path,
 * or no base directory).
 */
static int cwd_for_script(const char *script)
{
	if (!base_dir[0] || script[0] != '/')
		return -1;
	const char *slash = strrchr(script, '/');
	size_t len = slash == script ? 1 : (size_t)(slash - script);
	time_t now = time(NULL);      /* the vDSO's: no system call */
	if (!cwd_unknown && cwd_now && now == cwd_when && strlen(cwd_now) == len &&
	    memcmp(cwd_now, script, len) == 0)
		return 0;
	cwd_forget();
	cwd_unknown = 0;
	char *dir = malloc(len + 1);
	if (!dir) {
		/* PHP's way for this request, from a directory that is no longer known */
		cwd_unknown = 1;
		return -1;
	}
	memcpy(dir, script, len);
	dir[len] = '\0';
	if (chdir(dir) < 0) {
		/* as PHP does: the script runs where the worker is; the directory is not known */
		free(dir);
		cwd_unknown = 1;
		return 0;
	}
	cwd_now = dir;
	cwd_when = now;
	return 0;
}

static const char *powered_by;

int php_worker_init(struct worker *w)
{
	/* fpmd's own answers (ping, status, refusals) look like PHP's, as php-fpm's do. */
	if (PG(expose_php))
		powered_by = "X-Powered-By: PHP/" PHP_VERSION "\r\n";
	w->extra_headers = powered_by;
	if (cwd_init() < 0)
		php_host->log(LOG_L_WARNING, "[pool %s] getcwd() failed: %s; PHP changes directory "
			      "for every request", php_pool_name(), strerror(errno));
	return 0;
}

/* A short answer of our own, php-fpm's words, before PHP ran. */
static int refuse(struct request *r, int status, const char *body, const char *why)
{
	if (why)
		php_host->write_stderr(r, why, strlen(why));
	char head[256];
	int n = snprintf(head, sizeof(head), "Status: %d %s\r\n%sContent-type: text/html; charset=UTF-8\r\n\r\n",
			 status, php_host->http_reason(status) ? php_host->http_reason(status) : "",
			 powered_by ? powered_by : "");
	r->status = status;
	r->headers_sent = 1;
	php_host->note_headers(r, head, (size_t)n);
	if (php_host->write(r, head, (size_t)n) < 0 || php_host->write(r, body, strlen(body)) < 0)
		return -1;
	return 0;
}

struct param_ini {
	int mode, stage;
};

/*
 * php.ini_params = user: entries a script may ini_set() but a FastCGI param
 * may not, as they name a file to write or include, a handler or code to
 * call, or a mail server: whoever reaches the socket would point PHP at
 * them (error_log aimed at a .php in an upload directory, and a warning
 * quoting the request, is code execution).  The pool's php_value[], or
 * php.ini_params = all for a trusted web server, sets them.
 */
static int user_param_refused(const char *name)
{
	static const char *const exact[] = {
		"error_log", "include_path", "unserialize_callback_func", "error_prepend_string",
		"error_append_string", "docref_root", "docref_ext", "SMTP", "smtp_port",
		"sendmail_from", "url_rewriter.hosts", "url_rewriter.tags",
	};
	static const char *const prefix[] = { "session.", "mail.", "assert.", "xdebug.",
					      "opcache.", "zend_extension" };
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strcasecmp(name, exact[i]) == 0)
			return 1;
	for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++)
		if (strncasecmp(name, prefix[i], strlen(prefix[i])) == 0)
			return 1;
	return 0;
}

static void apply_param_entry(zval *name, zval *value, zval *unused, int type, void *arg)
{
	const struct param_ini *pi = arg;
	static int refused_said;
	(void)unused;
	if (type != ZEND_INI_PARSER_ENTRY || !name || !value || Z_TYPE_P(name) != IS_STRING ||
	    Z_TYPE_P(value) != IS_STRING || !Z_STRLEN_P(name))
		return;
	if (pi->mode == ZEND_INI_USER && user_param_refused(Z_STRVAL_P(name))) {
		/* once per worker at warning level: a web server sends it with every request */
		php_host->log(refused_said++ ? LOG_L_DEBUG : LOG_L_WARNING,
			      "[pool %s] PHP_VALUE: '%s' names a file, a handler or code, which "
			      "php.ini_params = user keeps to the pool: set it with php_value[] (or "
			      "php.ini_params = all to trust every sender of FastCGI params)",
			      php_pool_name(), Z_STRVAL_P(name));
		return;
	}
	zend_result ok = zend_alter_ini_entry_chars_ex(Z_STR_P(name), Z_STRVAL_P(value),
						      Z_STRLEN_P(value), pi->mode, pi->stage, 0);
	if (ok == FAILURE)
		php_host->log(LOG_L_WARNING, "[pool %s] %s: '%s' cannot be set by a FastCGI param",
			      php_pool_name(), pi->mode == ZEND_INI_SYSTEM ? "PHP_ADMIN_VALUE" :
			      "PHP_VALUE", Z_STRVAL_P(name));
}

/*
 * PHP_VALUE / PHP_ADMIN_VALUE params (php.ini_params): "name=value" lines,
 * read by PHP's INI scanner as php-fpm reads them (constants and operators
 * evaluated, quotes honoured).  Applied for this request only, through PHP's
 * own ini machinery, so what the entry's modifiable flags forbid stays
 * forbidden.
 */
static void apply_param_ini(const char *text, int mode, int stage)
{
	if (!text || !*text)
		return;
	size_t n = strlen(text) + 2;
	char *copy = malloc(n);
	if (!copy)
		return;
	snprintf(copy, n, "%s\n", text);
	struct param_ini pi = { mode, stage };
	zend_parse_ini_string(copy, 1, ZEND_INI_SCANNER_NORMAL, apply_param_entry, &pi);
	free(copy);
}

void php_apply_request_ini(struct request *r)
{
	const struct pool_conf *pc = php_pool->conf;
	const char *user = param(r, "PHP_VALUE"), *admin = param(r, "PHP_ADMIN_VALUE");
	switch (pc->php_ini_params) {
	case PHP_INI_PARAMS_NONE:
		break;
	case PHP_INI_PARAMS_USER:
		/* what a script could ini_set() itself, nothing more */
		apply_param_ini(user, ZEND_INI_USER, ZEND_INI_STAGE_RUNTIME);
		break;
	case PHP_INI_PARAMS_ALL:
		apply_param_ini(user, ZEND_INI_PERDIR, ZEND_INI_STAGE_HTACCESS);
		apply_param_ini(admin, ZEND_INI_SYSTEM, ZEND_INI_STAGE_HTACCESS);
		break;
	}
}

void php_fill_request_info(struct php_request *pr)
{
	struct request *r = pr->req;
	const char *method = param(r, "REQUEST_METHOD");
	const char *clen = param(r, "CONTENT_LENGTH");
	const char *proto = param(r, "SERVER_PROTOCOL");
	SG(server_context) = r;        /* non-NULL, or PHP skips POST bodies and cookies */
	SG(request_info).request_method = method;
	SG(request_info).query_string = (char *)param(r, "QUERY_STRING");
	SG(request_info).request_uri = pr->have_paths ? pr->paths.request_uri
						      : (char *)param(r, "REQUEST_URI");
	SG(request_info).content_type = param(r, "CONTENT_TYPE");
	SG(request_info).content_length = clen ? strtoll(clen, NULL, 10) : 0;
	if (SG(request_info).content_length < 0)
		SG(request_info).content_length = 0;
	SG(request_info).path_translated = pr->have_paths ? pr->paths.script
							  : (char *)param(r, "SCRIPT_FILENAME");
	SG(request_info).headers_only = method && strcmp(method, "HEAD") == 0;
	SG(request_info).proto_num = proto && strcmp(proto, "HTTP/1.0") == 0 ? 1000 : 1001;
	SG(request_info).no_headers = 0;
	SG(request_info).auth_user = SG(request_info).auth_password = SG(request_info).auth_digest = NULL;
	const char *auth = param(r, "HTTP_AUTHORIZATION");
	php_handle_auth_data(auth);
}

/* The CGI variables and PHP_SELF from the params, cgi.fix_pathinfo's way. 0 / -1 */
static int request_paths(struct php_request *pr)
{
	struct request *r = pr->req;
	pr->in = (struct pathinfo_in){
		.param = param_cb, .is_file = is_regular_file, .exists = path_exists, .ctx = r,
		.fix_pathinfo = ini_bool(&ini_fix_pathinfo, "cgi.fix_pathinfo",
					 sizeof("cgi.fix_pathinfo") - 1),
		.discard_path = ini_bool(&ini_discard_path, "cgi.discard_path",
					 sizeof("cgi.discard_path") - 1),
		.doc_root = PG(doc_root),
	};
	if (pathinfo_resolve(&pr->in, &pr->paths) < 0)
		return -1;
	pr->have_paths = 1;
	if (pr->paths.script)
		php_host->note_script(r, pr->paths.script);
	/* PHP_SELF: request_uri, plus PATH_INFO with cgi.fix_pathinfo */
	const char *ru = pr->paths.request_uri ? pr->paths.request_uri : "";
	const char *pi = pr->in.fix_pathinfo ? pathinfo_var(&pr->paths, &pr->in, "PATH_INFO", NULL) : NULL;
	size_t rl = strlen(ru), pl = pi ? strlen(pi) : 0;
	pr->self = malloc(rl + pl + 1);
	if (!pr->self)
		return -1;
	memcpy(pr->self, ru, rl);
	if (pl)
		memcpy(pr->self + rl, pi, pl);
	pr->self[rl + pl] = '\0';
	return 0;
}

static int resolve(struct php_request *pr, const char **why)
{
	const struct pool_conf *pc = php_pool->conf;
	*why = NULL;
	if (request_paths(pr) < 0)
		return 500;

	if (!pr->paths.script) {
		*why = "Primary script unknown";
		return 404;
	}
	if (!pathinfo_extension_allowed(pr->paths.script,
					(const char *const *)pc->security_limit_extensions.items,
					(unsigned)pc->security_limit_extensions.n)) {
		php_host->log(LOG_L_WARNING, "[pool %s] Access to the script '%s' has been denied (see "
			      "security.limit_extensions)", php_pool_name(), pr->paths.script);
		/* php-fpm's line to the web server names the script, as it is in nginx's log */
		static char denied[PATH_MAX + 96];
		snprintf(denied, sizeof(denied), "Access to the script '%s' has been denied (see "
			 "security.limit_extensions)", pr->paths.script);
		*why = denied;
		return 403;
	}
	if (script_readable(pr->paths.script) < 0) {
		int e = errno;
		/*
		 * To the web server, as php-fpm's fastcgi.logging sends it (nginx's
		 * error log), and only there, as php-fpm: a client asking again and
		 * again would fill root's log (5,680 lines in 3 s).
		 */
		php_host->log(LOG_L_DEBUG, "[pool %s] Unable to open primary script: %s (%s)",
			      php_pool_name(), pr->paths.script, strerror(e));
		static char unable[PATH_MAX + 96];
		snprintf(unable, sizeof(unable), "Unable to open primary script: %s (%s)",
			 pr->paths.script, strerror(e));
		*why = unable;
		return e == EACCES ? 403 : 4040;
	}
	return 0;
}

void php_end_paths(struct php_request *pr)
{
	pr->have_paths = 0;
	pathinfo_free(&pr->paths);
	free(pr->self);
	pr->self = NULL;
}

/* fastcgi.error_header: php-fpm's header for a script that died before any output */
void php_error_header(void)
{
	if (EG(exit_status) == 255 && !SG(headers_sent)) {
		const char *eh = zend_ini_string("fastcgi.error_header",
						  sizeof("fastcgi.error_header") - 1, 0);
		if (eh && *eh) {
			sapi_header_line ctr = { .line = eh, .line_len = strlen(eh), .response_code = 0 };
			sapi_header_op(SAPI_HEADER_REPLACE, &ctr);
		}
	}
}

int php_handle(struct worker *w, struct request *r)
{
	(void)w;
	const char *why;
	struct php_request pr = { .req = r };
	cwd_for_resolve(r);
	int refused = resolve(&pr, &why);
	if (refused) {
		int rc;
		if (refused == 404)
			rc = refuse(r, 404, "File not found.\n", why);
		else if (refused == 4040)
			rc = refuse(r, 404, "No input file specified.\n", why);
		else if (refused == 403)
			rc = refuse(r, 403, "Access denied.\n", why);
		else
			rc = refuse(r, 500, "Internal Server Error\n", NULL);
		php_end_paths(&pr);
		return rc < 0 ? -1 : 0;
	}

	php_current = &pr;
	php_fill_request_info(&pr);
	/*
	 * A request without a body has no input phase to time: PHP's
	 * max_input_time timer, armed at request startup and re-armed with
	 * max_execution_time before the script, is then one setitimer() too
	 * many.  max_input_time = -1 for the request (what PHP itself does
	 * when it is -1) arms max_execution_time at startup, once.
	 * ini_get() still shows the configured value: it reads the ini
	 * entry, not this global.
	 */
	zend_long max_input_time = PG(max_input_time);
	int untimed_input = SG(request_info).content_length == 0 && max_input_time != -1;
	if (untimed_input)
		PG(max_input_time) = -1;
	/*
	 * Before the request starts, as php-fpm applies them: post_max_size and
	 * upload_max_filesize must hold when PHP reads the body.
	 */
	php_apply_request_ini(r);
	if (php_request_startup() == FAILURE) {
		if (untimed_input && PG(max_input_time) == -1)
			PG(max_input_time) = max_input_time;
		/* no request shutdown will restore what its PHP_VALUE set before the start */
		zend_ini_deactivate();
		SG(server_context) = NULL;
		php_current = NULL;
		php_end_paths(&pr);
		php_host->log(LOG_L_ERROR, "[pool %s] PHP request startup failed", php_pool_name());
		return refuse(r, 500, "Internal Server Error\n", NULL) < 0 ? -1 : 0;
	}

	/* PHP's chdir() for the request unless this one did it (see cwd_for_script) */
	int own_chdir = base_dir[0] && cwd_for_script(pr.paths.script) == 0;
	if (own_chdir)
		SG(options) |= SAPI_OPTION_NO_CHDIR;
	else
		SG(options) &= ~SAPI_OPTION_NO_CHDIR;
	zend_file_handle fh;
	zend_stream_init_filename(&fh, pr.paths.script);
	EG(exit_status) = 0;       /* the previous request's fatal error is not this one's */
	zend_first_try {
		php_execute_script(&fh);
	} zend_end_try();
	/* unless the request's own ini (.user.ini, PHP_VALUE) set it, which shutdown restores */
	if (untimed_input && PG(max_input_time) == -1)
		PG(max_input_time) = max_input_time;

	php_error_header();
	r->memory_peak = zend_memory_peak_usage(1);
	zend_destroy_file_handle(&fh);
	php_request_shutdown(NULL);
	/* the status the script ended with, as php-fpm logs it (http_response_code() after output too) */
	if (SG(sapi_headers).http_response_code)
		r->status = SG(sapi_headers).http_response_code;
	SG(server_context) = NULL;
	SG(request_info).path_translated = NULL;
	SG(request_info).request_uri = NULL;
	php_current = NULL;
	php_end_paths(&pr);
	return 0;
}
