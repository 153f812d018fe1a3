/*
 * After every file is read: the command line's overrides, defaults that
 * depend on other values (pm.start_servers, security.limit_extensions),
 * relative paths resolved against the prefix, and the rules that tie
 * several directives together.  Pool-level messages name the pool and carry
 * the line of its section header.
 */
#ifndef FPMD_DEFAULT_STATEDIR
#define FPMD_DEFAULT_STATEDIR "/var"
#endif

#include <stdlib.h>
#include <string.h>

#include "conf/conf_internal.h"

#define POOL_ERR(x, p, ...) conf_diag_add((x), 1, (p)->file, (p)->line, __VA_ARGS__)

static int is_set(const unsigned char *set, const char *name, unsigned section_flag)
{
	const struct conf_directive *d = conf_directive_find(name, section_flag);

	return d && (set[conf_directive_index(d)] & CS_SET);
}

/* Given with a value that was refused: that error is the one to read, not "not set". */
static int was_refused(const unsigned char *set, const char *name, unsigned section_flag)
{
	const struct conf_directive *d = conf_directive_find(name, section_flag);

	return d && (set[conf_directive_index(d)] & CS_REFUSED);
}

/* Makes *path absolute against dir when it is relative. */
static void resolve(struct conf_ctx *x, char **path, const char *dir)
{
	char *full;

	if (!*path || (*path)[0] == '/' || !dir)
		return;
	full = conf_path_join(dir, *path);
	if (!full) {
		x->oom = 1;
		return;
	}
	free(*path);
	*path = full;
}

static void replace_str(struct conf_ctx *x, char **slot, const char *value)
{
	char *s = strdup(value);

	if (!s) {
		x->oom = 1;
		return;
	}
	free(*slot);
	*slot = s;
}

static void validate_global(struct conf_ctx *x)
{
	struct fpmd_conf *c = x->c;

	if (x->opt->pid)
		replace_str(x, &c->pid, x->opt->pid);
	if (x->opt->daemonize != CONF_UNSET)
		c->daemonize = x->opt->daemonize ? 1 : 0;
	/*
	 * As php-fpm: without -p, the pid file and the error log live under the
	 * local state directory (/var for a /usr install), not the install prefix.
	 */
	const char *state = x->opt->prefix ? c->prefix : FPMD_DEFAULT_STATEDIR;
	resolve(x, &c->pid, state);
	resolve(x, &c->control_socket, state);
	if (c->error_log && strcmp(c->error_log, "syslog") != 0)
		resolve(x, &c->error_log, state);
}

/* exec.command's program is php-cgi (conf_names_php_cgi): its first word, quoted or not. */
static int exec_runs_php_cgi(const char *command)
{
	const char *p = command + strspn(command, " \t\"'");
	size_t n = strcspn(p, " \t\"'");
	const char *base = p;
	for (size_t i = 0; i < n; i++)
		if (p[i] == '/')
			base = p + i + 1;
	return conf_names_php_cgi(base, n - (size_t)(base - p));
}

/* The pm rules, php-fpm's, for pool p. */
static void validate_pm(struct conf_ctx *x, struct pool_conf *p, const unsigned char *set)
{
	int min, max;

	if (!is_set(set, "pm", CF_POOL)) {
		if (!was_refused(set, "pm", CF_POOL))
			POOL_ERR(x, p, "pool %s: pm is not set; choose one of static, dynamic, "
				 "ondemand", p->name);
		return;
	}
	if (p->pm_max_children < 1) {
		if (!was_refused(set, "pm.max_children", CF_POOL))
			POOL_ERR(x, p, "pool %s: pm.max_children is not set; it must be a positive "
				 "integer", p->name);
		return;
	}
	if (p->pm != PM_DYNAMIC)
		return;

	min = p->pm_min_spare_servers;
	max = p->pm_max_spare_servers;
	if (min < 1)
		POOL_ERR(x, p, "pool %s: pm.min_spare_servers (%d) must be a positive integer "
			 "with pm = dynamic", p->name, min);
	if (max < 1)
		POOL_ERR(x, p, "pool %s: pm.max_spare_servers (%d) must be a positive integer "
			 "with pm = dynamic", p->name, max);
	if (min < 1 || max < 1)
		return;
	if (min > max) {
		POOL_ERR(x, p, "pool %s: pm.min_spare_servers (%d) must not be greater than "
			 "pm.max_spare_servers (%d)", p->name, min, max);
		return;
	}
	if (max > p->pm_max_children) {
		POOL_ERR(x, p, "pool %s: pm.max_spare_servers (%d) must not be greater than "
			 "pm.max_children (%d)", p->name, max, p->pm_max_children);
		return;
	}
	/* 0 means unset, as in php-fpm. */
	if (p->pm_start_servers == 0) {
		p->pm_start_servers = min + (max - min) / 2;
		/* php-fpm's notice, word for word */
		conf_diag_add(x, -1, NULL, 0, "[pool %s] pm.start_servers is not set. It's been set to %d.",
			      p->name, p->pm_start_servers);
	}
	if (p->pm_start_servers < min)
		POOL_ERR(x, p, "pool %s: pm.start_servers (%d) must not be less than "
			 "pm.min_spare_servers (%d)", p->name, p->pm_start_servers, min);
	else if (p->pm_start_servers > max)
		POOL_ERR(x, p, "pool %s: pm.start_servers (%d) must not be greater than "
			 "pm.max_spare_servers (%d)", p->name, p->pm_start_servers, max);
}

static void validate_user(struct conf_ctx *x, struct pool_conf *p)
{
	if (x->opt->running_as_root && !x->opt->allow_root) {
		if (!p->user)
			POOL_ERR(x, p, "pool %s: user is not set; fpmd is running as root, so the "
				 "workers need a user to run as (or pass -R to let them run as root)",
				 p->name);
		/* user = root is refused after the user is resolved (master/conf_check.c). */
	} else if (!x->opt->running_as_root) {
		/* php-fpm's notices, word for word */
		if (p->user)
			conf_diag_add(x, -1, NULL, 0, "[pool %s] 'user' directive is ignored when FPM is "
				      "not running as root", p->name);
		if (p->group)
			conf_diag_add(x, -1, NULL, 0, "[pool %s] 'group' directive is ignored when FPM is "
				      "not running as root", p->name);
	}
}

static void warn_php_list(struct conf_ctx *x, const struct pool_conf *p,
			  const struct conf_kv_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		conf_diag_add(x, 0, l->items[i].file, l->items[i].line,
			      "pool %s: %s[%s] is ignored for app.type = %s", p->name, name,
			      l->items[i].key, conf_app_name(p->app_type));
}

static void validate_app(struct conf_ctx *x, struct pool_conf *p, const unsigned char *set)
{
	static const char *const php_exts = ".php .phar";
	static const char *const cgi_exts = ".cgi .sh .pl .py";
	const char *exts = NULL;

	switch (p->app_type) {
	case APP_NONE:
		/* php-fpm's configurations name no type: they run PHP. */
		p->app_type = APP_PHP;
		exts = php_exts;
		break;
	case APP_CGI:
		if (p->cgi_root.n == 0 && p->cgi_allow.n == 0)
			POOL_ERR(x, p, "pool %s: app.type = cgi needs at least one cgi.root or "
				 "cgi.allow[]", p->name);
		exts = cgi_exts;
		break;
	case APP_MODULE:
		if (!p->module_path)
			POOL_ERR(x, p, "pool %s: app.type = module needs module.path", p->name);
		break;
	case APP_EXEC:
		if (!p->exec_command)
			POOL_ERR(x, p, "pool %s: app.type = exec needs exec.command", p->name);
		/*
		 * php-cgi runs whatever file SCRIPT_FILENAME (or its longest
		 * existing prefix: cgi.fix_pathinfo) names: an uploaded
		 * /uploads/a.jpg/x.php is PHP to it.  php-fpm and php pools limit
		 * that to .php .phar by default; a php-cgi exec pool does too.
		 */
		else if (exec_runs_php_cgi(p->exec_command))
			exts = php_exts;
		/*
		 * They reach the program as php-cgi's -d, the level of php.ini:
		 * php-cgi has no admin level, so a script's ini_set() or a
		 * .user.ini overrides them.  Said once, not passed off as a lock.
		 */
		for (size_t i = 0; i < p->php_admin_value.n + p->php_admin_flag.n; i++) {
			int flag = i >= p->php_admin_value.n;
			const struct conf_kv *kv = flag ? &p->php_admin_flag.items[i - p->php_admin_value.n]
						       : &p->php_admin_value.items[i];
			conf_diag_add(x, 0, kv->file, kv->line,
				      "pool %s: %s[%s] is passed to exec.command as -d, a default: "
				      "php-cgi cannot lock it, so ini_set() and .user.ini override it "
				      "(app.type = php locks it)", p->name,
				      flag ? "php_admin_flag" : "php_admin_value", kv->key);
		}
		/*
		 * Direct: the programs accept on the pool socket, so no worker sees a
		 * request: dynamic's spare-server counting has nothing to count, and
		 * nobody answers ping.path or pm.status_path (pm.status_listen still
		 * works).  ondemand needs only "is a program waiting in accept()",
		 * which the master reads from /proc (pm.c).
		 */
		if (p->exec_mode == EXEC_DIRECT && p->pm == PM_DYNAMIC)
			POOL_ERR(x, p, "pool %s: exec.mode = direct needs pm = static or ondemand "
				 "(fpmd cannot count the spare programs of pm = dynamic)", p->name);
		if (p->exec_mode == EXEC_DIRECT && (p->ping_path || p->pm_status_path))
			POOL_ERR(x, p, "pool %s: ping.path and pm.status_path are not answered with "
				 "exec.mode = direct (the program accepts the connections); use "
				 "pm.status_listen", p->name);
		break;
	case APP_PHP:
		exts = php_exts;
		break;
	}
	if (p->app_type == APP_PHP && p->php_worker_boot == PHP_WORKER_BOOT_ZYGOTE && !p->php_worker)
		POOL_ERR(x, p, "pool %s: php.worker_boot = zygote boots the application of "
			 "php.worker, which is not set", p->name);
	/* It confines scripts; in any other pool it would protect nothing, silently. */
	if (p->cgi_landlock && p->app_type != APP_CGI)
		POOL_ERR(x, p, "pool %s: cgi.landlock applies to app.type = cgi pools only", p->name);
	if (p->request_max_body_size > 0 && p->app_type == APP_EXEC && p->exec_mode == EXEC_DIRECT)
		POOL_ERR(x, p, "pool %s: request.max_body_size cannot be enforced with exec.mode = "
			 "direct (the program reads the connections itself); use exec.mode = managed "
			 "or limit the body in the web server (nginx: client_max_body_size)", p->name);
	if ((p->pm_max_memory > 0 || p->pm_max_idle_memory > 0) && p->app_type == APP_EXEC &&
	    p->exec_mode == EXEC_DIRECT)
		POOL_ERR(x, p, "pool %s: pm.max_memory and pm.max_idle_memory cannot be applied with "
			 "exec.mode = direct (the worker never sees a request end, which is when it "
			 "measures); use exec.mode = managed", p->name);
	if (p->cgi_pass_params.n && p->app_type != APP_CGI)
		POOL_ERR(x, p, "pool %s: cgi.pass_params applies to app.type = cgi pools only (the "
			 "params of other pools never reach a process environment)", p->name);
	if (p->app_type == APP_CGI || p->app_type == APP_MODULE) {
		warn_php_list(x, p, &p->php_value, "php_value");
		warn_php_list(x, p, &p->php_flag, "php_flag");
		warn_php_list(x, p, &p->php_admin_value, "php_admin_value");
		warn_php_list(x, p, &p->php_admin_flag, "php_admin_flag");
	}
	/* An explicit empty value means no restriction; unset takes the type's list. */
	if (exts && !is_set(set, "security.limit_extensions", CF_POOL)) {
		const char *s = exts;

		while (*s) {
			size_t n = strcspn(s, " ");
			char *w = conf_strndup(s, n);

			if (!w || conf_str_list_add(&p->security_limit_extensions, w) < 0)
				x->oom = 1;
			free(w);
			s += n;
			s += strspn(s, " ");
		}
	}
}

/* Paths: the pool prefix, then the paths under it, then $prefix in chroot/chdir. */
static void resolve_pool_paths(struct conf_ctx *x, struct pool_conf *p, const unsigned char *set)
{
	const char *pfx;

	resolve(x, &p->prefix, x->c->prefix);
	pfx = p->prefix ? p->prefix : x->c->prefix;
	for (size_t i = 0; i < conf_ndirectives; i++) {
		const struct conf_directive *d = &conf_directives[i];
		char **slot;

		/* listen.setfib is accepted and stored nowhere: no field to point at. */
		if (!(d->flags & CF_POOL) || d->type != CT_STR || conf_directive_stores_nothing(d))
			continue;
		slot = conf_field(p, d);
		if ((d->flags & CF_PATH) && slot != &p->prefix)
			resolve(x, slot, pfx);
		/* listen too, when it names a unix socket (php-fpm's pool prefix rule). */
		if (slot == &p->listen && *slot && !strchr(*slot, ':') &&
		    strspn(*slot, "0123456789") != strlen(*slot))
			resolve(x, slot, pfx);
		if ((d->flags & CF_DOLLAR_PFX) && (set[i] & CS_DOLLAR) && *slot) {
			char *full = malloc(strlen(pfx) + strlen(*slot + 7) + 1);

			if (!full) {
				x->oom = 1;
				return;
			}
			strcpy(full, pfx);
			strcat(full, *slot + 7);
			free(*slot);
			*slot = full;
			if ((d->flags & CF_ABS) && full[0] != '/')
				POOL_ERR(x, p, "pool %s: %s '%s' must be an absolute path", p->name,
					 d->name, full);
		}
	}
}

static void validate_pool(struct conf_ctx *x, struct pool_conf *p, const unsigned char *set)
{
	validate_app(x, p, set);
	validate_pm(x, p, set);
	if (!p->listen)
		POOL_ERR(x, p, "pool %s: listen is not set", p->name);
	validate_user(x, p);
	if (p->request_slowlog_timeout > 0 && !p->slowlog)
		POOL_ERR(x, p, "pool %s: slowlog must be set when request_slowlog_timeout (%ds) is "
			 "greater than 0", p->name, p->request_slowlog_timeout);
	/* php-fpm refuses it too: such a request is killed before it could be slow-logged */
	if (p->request_terminate_timeout > 0 &&
	    p->request_slowlog_timeout > p->request_terminate_timeout)
		POOL_ERR(x, p, "pool %s: 'request_slowlog_timeout' (%d) can't be greater than "
			 "'request_terminate_timeout' (%d)", p->name, p->request_slowlog_timeout,
			 p->request_terminate_timeout);
	resolve_pool_paths(x, p, set);
}

/* An address may be bound once: listen and pm.status_listen across all pools. */
static void validate_addresses(struct conf_ctx *x)
{
	struct fpmd_conf *c = x->c;

	for (size_t i = 0; i < c->npools; i++) {
		const char *mine[2] = { c->pools[i]->listen, c->pools[i]->pm_status_listen };
		static const char *const what[2] = { "listen", "pm.status_listen" };

		for (size_t k = 0; k < 2; k++) {
			int dup = 0;

			if (!mine[k])
				continue;
			if (k == 1 && mine[0] && strcmp(mine[0], mine[1]) == 0) {
				POOL_ERR(x, c->pools[i], "pool %s: pm.status_listen '%s' is the same "
					 "address as listen", c->pools[i]->name, mine[1]);
				continue;
			}
			for (size_t j = 0; j < i && !dup; j++) {
				const char *theirs[2] = { c->pools[j]->listen,
							  c->pools[j]->pm_status_listen };

				for (size_t m = 0; m < 2 && !dup; m++) {
					if (!theirs[m] || strcmp(theirs[m], mine[k]) != 0)
						continue;
					const char *file;
					int line;
					conf_where(&c->pools[i]->where, what[k], c->pools[i]->file,
						   c->pools[i]->line, &file, &line);
					conf_diag_add(x, 1, file, line, "pool %s: %s '%s' is already used "
						      "by pool %s (its %s)", c->pools[i]->name, what[k],
						      mine[k], c->pools[j]->name, what[m]);
					dup = 1;
				}
			}
		}
	}
}

void conf_validate(struct conf_ctx *x)
{
	struct fpmd_conf *c = x->c;

	validate_global(x);
	if (c->npools == 0)
		conf_diag_add(x, 1, c->file, 0,
			      "no pool defined; add at least one [POOLNAME] section");
	for (size_t i = 0; i < c->npools && !x->oom; i++)
		validate_pool(x, c->pools[i], x->ps[i].set);
	validate_addresses(x);
}
