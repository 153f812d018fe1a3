/*
 * What `fpmd -t` checks beyond the text, as php-fpm does at start: users
 * and groups exist, listen addresses parse, log directories are writable,
 * and the pool's app.type is part of this build.  Not pure (it asks the
 * system), which is why it lives here and not in src/conf/.
 */
#include "master/conf_check.h"

#include <errno.h>
#include <glob.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handlers/handler.h"
#include "master/ids.h"
#include "master/module_probe.h"
#include "master/socket_acl.h"
#include "log/access_format.h"
#include "net/listen.h"

static void diag_push(struct conf_diags *d, int severity, const char *file, int line,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void diag_push(struct conf_diags *d, int severity, const char *file, int line,
		      const char *fmt, ...)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		struct conf_diag *ni = realloc(d->items, cap * sizeof(*ni));
		if (!ni)
			return;
		d->items = ni;
		d->cap = cap;
	}
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	struct conf_diag *x = &d->items[d->n++];
	x->severity = severity;
	x->file = file ? strdup(file) : NULL;
	x->line = line;
	x->msg = strdup(buf);
	if (severity)
		d->errors++;
}

/* where: the [global] or pool where-list the directive what was set in, with its section's place */
/* A diagnostic at the line that set directive in pool p (its section's, for a default). */
static void diag_at(struct conf_diags *d, int severity, const struct pool_conf *p,
		    const char *directive, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void diag_at(struct conf_diags *d, int severity, const struct pool_conf *p,
		    const char *directive, const char *fmt, ...)
{
	const char *file;
	int line;
	char buf[1024];
	va_list ap;
	conf_where(&p->where, directive, p->file, p->line, &file, &line);
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	diag_push(d, severity, file, line, "%s", buf);
}

/* An executable regular file, as the worker's execvp() looks for it. */
static int executable_file(const char *path, char *why, size_t cap)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		snprintf(why, cap, "cannot be found (%s)", strerror(errno));
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, cap, "is not a file");
		return 0;
	}
	if (access(path, X_OK) < 0) {
		snprintf(why, cap, "is not executable (%s)", strerror(errno));
		return 0;
	}
	return 1;
}

/*
 * 1 with why set when the worker could not run exec.command's program: a
 * path that is no executable file, or a bare name found in no directory of
 * the PATH the worker's execvp() searches (the pool's env[PATH]; the
 * master's with clear_env = no; else the C library's default).  A chroot'ed
 * pool's program is inside its chroot: not checked from here.
 */
static int exec_command_problem(const struct pool_conf *p, const char *prog, char *why, size_t cap)
{
	if (p->chroot && *p->chroot)
		return 0;
	if (strchr(prog, '/'))
		return !executable_file(prog, why, cap);
	const char *path = NULL;
	for (size_t i = 0; i < p->env.n; i++)
		if (strcmp(p->env.items[i].key, "PATH") == 0)
			path = p->env.items[i].value;
	if (!path && !p->clear_env)
		path = getenv("PATH");
	if (!path)
		path = "/bin:/usr/bin";
	char dirs[4096], file[PATH_MAX], scratch[256];
	snprintf(dirs, sizeof(dirs), "%s", path);
	char *save = NULL;
	for (char *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(file, sizeof(file), "%s/%s", *dir ? dir : ".", prog);
		if (executable_file(file, scratch, sizeof(scratch)))
			return 0;
	}
	snprintf(why, cap, "is in no directory of PATH=%s (give its full path, or set env[PATH])",
		 path);
	return 1;
}

static void check_dir_writable(struct conf_diags *d, const char *what, const char *path,
			       const struct conf_kv_list *where, const char *file, int line)
{
	if (!path || !*path || strcmp(path, "syslog") == 0)
		return;
	/* a file that exists and takes writes (/dev/stderr, a log made by hand) is fine as it is */
	if (access(path, W_OK) == 0)
		return;
	char *copy = strdup(path);
	if (!copy)
		return;
	const char *dir = dirname(copy);
	if (access(dir, W_OK) < 0) {
		const char *f;
		int l;
		conf_where(where, what, file, line, &f, &l);
		diag_push(d, 1, f, l, "%s: the directory '%s' of '%s' %s; create it (fpmd opens "
			  "the file, it does not make directories)", what, dir, path,
			  errno == ENOENT ? "does not exist" : "is not writable by fpmd");
	}
	free(copy);
}

/*
 * cgi.root and cgi.allow[]: the worker resolves them (realpath, inside the
 * chroot) and ignores one it cannot; with none left it refuses every
 * request and exits, and the pool would say it is ready while no worker can
 * ever serve.  So: each must exist (a warning when others remain), and at
 * least one must (an error).
 */
static void check_cgi_paths(struct conf_diags *d, const struct pool_conf *p)
{
	const char *chroot_dir = p->chroot && *p->chroot ? p->chroot : "";
	const struct conf_str_list *lists[2] = { &p->cgi_root, &p->cgi_allow };
	const char *names[2] = { "cgi.root", "cgi.allow" };
	size_t total = p->cgi_root.n + p->cgi_allow.n, missing = 0;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < lists[k]->n; i++) {
			char path[4096];
			struct stat st;
			snprintf(path, sizeof(path), "%s%s", chroot_dir, lists[k]->items[i]);
			int ok = stat(path, &st) == 0 && (k == 1 || S_ISDIR(st.st_mode));
			if (ok)
				continue;
			missing++;
			diag_at(d, missing == total ? 1 : 0, p, names[k], "pool %s: %s '%s'%s %s", p->name,
				  names[k], lists[k]->items[i], *chroot_dir ? " (inside the chroot)" : "",
				  k == 0 ? "does not exist or is not a directory" : "does not exist");
		}
	if (missing && missing == total && total > 1)
		diag_push(d, 1, p->file, p->line, "pool %s: no cgi.root or cgi.allow[] exists: its "
			  "workers could run no script", p->name);
	/*
	 * Debian's php8.2-cgi installs /usr/lib/cgi-bin/php8.2: with no extension
	 * list, a client names it as the script and php-cgi runs whatever file
	 * PATH_TRANSLATED names (an upload) as PHP.
	 */
	if (p->security_limit_extensions.n == 0)
		for (size_t i = 0; i < p->cgi_root.n; i++) {
			char pattern[4096];
			snprintf(pattern, sizeof(pattern), "%s%s/php*", chroot_dir, p->cgi_root.items[i]);
			glob_t g;
			if (glob(pattern, 0, NULL, &g) != 0)
				continue;
			for (size_t k = 0; k < g.gl_pathc; k++) {
				const char *base = strrchr(g.gl_pathv[k], '/');
				base = base ? base + 1 : g.gl_pathv[k];
				if (!conf_names_php_cgi(base, strlen(base)))
					continue;
				if (access(g.gl_pathv[k], X_OK) < 0)
					continue;
				diag_at(d, 0, p, "security.limit_extensions", "pool %s: cgi.root '%s' "
					"holds php-cgi (%s) and security.limit_extensions allows every "
					"name: a client can run it on any file it names as PHP; list the "
					"extensions to run", p->name, p->cgi_root.items[i], base);
				break;
			}
			globfree(&g);
		}
}

/*
 * apparmor_hat: the workers change to PROFILE//HAT through the LSM's
 * /proc/self/attr files, which only AppArmor answers; without it every
 * worker fails at start, in a loop: said before it happens.
 */
static void check_apparmor(struct conf_diags *d, const struct pool_conf *p)
{
	if (!p->apparmor_hat || !*p->apparmor_hat)
		return;
	char buf[8] = "";
	FILE *f = fopen("/sys/module/apparmor/parameters/enabled", "re");
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	if (buf[0] == 'Y')
		return;
	/* a warning, as php-fpm starts such a pool too (php-src's own test expects it to) */
	diag_at(d, 0, p, "apparmor_hat", "pool %s: apparmor_hat = %s needs AppArmor, which is not "
		"enabled on this system (/sys/module/apparmor/parameters/enabled): every worker "
		"will fail its setup and exit with 70; remove the line or enable AppArmor", p->name,
		p->apparmor_hat);
}

/*
 * A unix socket's directory is made by fpmd (one level, as a runtime
 * directory), not its parents: a missing parent fails the bind at start.
 */
static void check_listen_dir(struct conf_diags *d, const struct pool_conf *p,
			     const struct listen_addr *a)
{
	if (a->family != AF_UNIX || !p->listen || p->listen[0] != '/')
		return;
	char *copy = strdup(p->listen);
	if (!copy)
		return;
	char *dir = dirname(copy);
	struct stat st;
	if (stat(dir, &st) < 0) {
		char *copy2 = strdup(dir);
		const char *parent = copy2 ? dirname(copy2) : NULL;
		if (parent && stat(parent, &st) < 0) {
			diag_at(d, 1, p, "listen", "pool %s: unable to bind listening socket for address "
				  "'%s': the directory '%s' does not exist (fpmd creates the socket's "
				  "own directory, not its parents)", p->name, p->listen, parent);
		}
		free(copy2);
	}
	free(copy);
}

/*
 * A TCP address other than loopback: FastCGI has no authentication, so the
 * network is the only guard (php-fpm's PHP_VALUE lets a client run code).
 */
static int reachable_by_anyone(const struct listen_addr *a)
{
	if (a->family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
		return (ntohl(in->sin_addr.s_addr) >> 24) != 127;
	}
	if (a->family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return in6->sin6_addr.s6_addr[12] != 127;
		return !IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return 0;
}

/* A cgi pool's workers need CGI_WORKER_MIN_FILES descriptors (conf.h says why). */
static void check_cgi_files(struct conf_diags *d, const struct fpmd_conf *c,
			    const struct pool_conf *p)
{
	long long files = p->rlimit_files != CONF_UNSET ? p->rlimit_files : c->rlimit_files;
	const char *from = p->rlimit_files != CONF_UNSET ? "rlimit_files" : "the global rlimit_files";
	struct rlimit rl;
	if (files == CONF_UNSET) {
		/* workers keep the limit fpmd was started with */
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
			return;
		files = (long long)rl.rlim_cur;
		from = "the inherited open files limit (ulimit -n)";
	}
	if (files == -2 || files >= CGI_WORKER_MIN_FILES)
		return;
	diag_push(d, 1, p->file, p->line, "pool %s: %s = %lld is too low for a cgi pool: a worker "
		  "holds up to %d descriptors with its connection and a CGI request needs %d more "
		  "(the script and three pipes); set rlimit_files to at least %d", p->name, from,
		  files, CGI_WORKER_MIN_FILES - CGI_REQUEST_FDS, CGI_REQUEST_FDS,
		  CGI_WORKER_MIN_FILES);
}

/*
 * chroot and chdir must be directories that exist (php-fpm's -t says so
 * too): a worker that cannot enter them exits at once, and the pool would
 * say it is ready while no worker can ever serve.  chdir is inside chroot.
 */
static void check_dirs(struct conf_diags *d, const struct pool_conf *p)
{
	struct stat st;
	if (p->chroot && *p->chroot && (stat(p->chroot, &st) < 0 || !S_ISDIR(st.st_mode)))
		diag_push(d, 1, p->file, p->line, "pool %s: the chroot path '%s' does not exist or is "
			  "not a directory", p->name, p->chroot);
	if (p->chdir && *p->chdir) {
		char path[4096];
		snprintf(path, sizeof(path), "%s%s", p->chroot && *p->chroot ? p->chroot : "",
			 p->chdir);
		if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			diag_push(d, 1, p->file, p->line, "pool %s: the chdir path '%s'%s does not "
				  "exist or is not a directory", p->name, p->chdir,
				  p->chroot && *p->chroot ? " (inside the chroot)" : "");
	}
}

/* A pool's PHP is the shared zygote's (php.zygote = shared): its user and group, or -1. */
static int shared_php_ids(const struct pool_conf *p, uid_t *uid, gid_t *gid)
{
	const struct handler *h = handler_for_pool(p);
	if (!h || !h->shared_start || p->php_zygote != PHP_ZYGOTE_SHARED)
		return -1;
	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (p->user && *p->user && ids_user(p->user, uid, gid, NULL, 0) < 0)
		return -1;
	if (p->group && *p->group && ids_group(p->group, gid) < 0)
		return -1;
	return 0;
}

/*
 * The shared PHP zygote's pools share one opcache, mapped writable in all
 * their workers (as in php-fpm): validate_permission guards include, not
 * memory.  A pool whose PHP may write its own process memory
 * (process.dumpable: /proc/self/mem) could read and rewrite the cached
 * scripts of pools of other users: refused, php.zygote = pool suggested.
 */
static void check_shared_php_trust(struct conf_diags *d, const struct fpmd_conf *c)
{
	for (size_t i = 0; i < c->npools; i++) {
		const struct pool_conf *p = c->pools[i];
		uid_t uid, ou;
		gid_t gid, og;
		if (!p->process_dumpable || shared_php_ids(p, &uid, &gid) < 0)
			continue;
		for (size_t j = 0; j < c->npools; j++) {
			const struct pool_conf *o = c->pools[j];
			if (j == i || shared_php_ids(o, &ou, &og) < 0 || (ou == uid && og == gid))
				continue;
			diag_push(d, 1, p->file, p->line, "pool %s: process.dumpable = yes with the "
				  "shared PHP zygote, which pool %s of another user shares: its PHP "
				  "could read and rewrite that pool's scripts in the shared opcache; set "
				  "php.zygote = pool for it (or for the other pools)", p->name, o->name);
			break;
		}
	}
}

int conf_check_system(const struct fpmd_conf *c, struct conf_diags *d, int check_users)
{
	size_t before = d->errors;
	check_dir_writable(d, "error_log", c->error_log, &c->where, c->file, 0);
	check_dir_writable(d, "pid", c->pid, &c->where, c->file, 0);
	if (check_users)
		check_shared_php_trust(d, c);
	for (size_t i = 0; i < c->npools; i++) {
		const struct pool_conf *p = c->pools[i];
		struct listen_addr a;
		char err[256];
		/* php-fpm's words for these: scripts and tests match them. */
		uid_t uid;
		gid_t gid;
		/* as php-fpm: not root and starting, user and group are ignored (a notice says so) */
		if (check_users && p->user && *p->user && ids_user(p->user, &uid, &gid, NULL, 0) < 0)
			diag_push(d, 1, NULL, 0, "[pool %s] cannot get uid for user '%s'", p->name, p->user);
		if (check_users && p->group && *p->group && ids_group(p->group, &gid) < 0)
			diag_push(d, 1, NULL, 0, "[pool %s] cannot get gid for group '%s'", p->name,
				  p->group);
		if (p->listen_owner && *p->listen_owner && ids_user(p->listen_owner, &uid, &gid, NULL, 0) < 0)
			diag_push(d, 1, NULL, 0, "[pool %s] cannot get uid for user '%s': no such user "
				  "(listen.owner)", p->name, p->listen_owner);
		if (p->listen_group && *p->listen_group && ids_group(p->listen_group, &gid) < 0)
			diag_push(d, 1, NULL, 0, "[pool %s] cannot get gid for group '%s': no such group "
				  "(listen.group)", p->name, p->listen_group);
		if (((p->listen_acl_users && *p->listen_acl_users) ||
		     (p->listen_acl_groups && *p->listen_acl_groups)) &&
		    socket_acl_check(p->listen_acl_users, p->listen_acl_groups, err, sizeof(err)) < 0)
			diag_push(d, 1, p->file, p->line, "pool %s: %s: no such user or group", p->name, err);
		check_dirs(d, p);
		check_apparmor(d, p);
		int listen_ok = p->listen && listen_parse(p->listen, &a, err, sizeof(err)) == 0;
		if (listen_ok)
			check_listen_dir(d, p, &a);
		if (p->listen_allowed_clients && *p->listen_allowed_clients) {
			struct allowed_clients ac;
			char why[256];
			if (allowed_clients_parse(p->listen_allowed_clients, &ac, why, sizeof(why)) == 0) {
				allowed_clients_free(&ac);
			} else {
				diag_at(d, 1, p, "listen.allowed_clients", "pool %s: %s (IPv4 or IPv6 "
					"addresses, or 'any', separated by commas)", p->name, why);
			}
		}
		if (p->listen && !listen_ok)
			diag_at(d, 1, p, "listen", "pool %s: listen = '%s': %s", p->name, p->listen, err);
		else if (p->listen && reachable_by_anyone(&a) &&
			 !(p->listen_allowed_clients && *p->listen_allowed_clients))
			diag_push(d, 0, p->file, p->line, "pool %s: listen = '%s' accepts FastCGI from "
				  "other hosts and listen.allowed_clients is not set: anyone who "
				  "reaches it runs the pool's code", p->name, p->listen);
		if (p->app_type != APP_NONE && !handler_for_app(p->app_type))
			diag_push(d, 1, p->file, p->line, "pool %s: app.type = %s is not available in "
				  "this build", p->name, conf_app_name(p->app_type));
		if (p->app_type == APP_EXEC && p->exec_command) {
			struct conf_str_list words;
			if (conf_split_argv(p->exec_command, &words, err, sizeof(err)) < 0) {
				diag_at(d, 1, p, "exec.command", "pool %s: exec.command: %s", p->name, err);
			} else {
				char why[PATH_MAX + 64];
				if (exec_command_problem(p, words.items[0], why, sizeof(why)))
					diag_at(d, 1, p, "exec.command", "pool %s: exec.command: '%s' %s",
						p->name, words.items[0], why);
				conf_str_list_free(&words);
			}
		}
		/* a chroot'ed pool's path is inside its chroot: not checked from here */
		if (p->app_type == APP_PHP && p->php_worker && !(p->chroot && *p->chroot) &&
		    access(p->php_worker, R_OK) < 0)
			diag_at(d, 1, p, "php.worker", "pool %s: php.worker '%s': %s", p->name,
				p->php_worker, strerror(errno));
		if (p->app_type == APP_CGI) {
			check_cgi_files(d, c, p);
			check_cgi_paths(d, p);
		}
		/* not after an error: a pool refused as root must not have its module run as root */
		if (p->app_type == APP_MODULE && p->module_path && d->errors == 0 &&
		    module_probe(p, err, sizeof(err)) < 0)
			diag_at(d, 1, p, "module.path", "pool %s: module.path '%s' %s", p->name,
				p->module_path, err);
		check_dir_writable(d, "access.log", p->access_log, &p->where, p->file, p->line);
		if (p->access_format && access_format_check(p->access_format, err, sizeof(err)) < 0)
			diag_push(d, 1, p->file, p->line, "pool %s: %s", p->name, err);
		check_dir_writable(d, "slowlog", p->slowlog, &p->where, p->file, p->line);
	}
	return d->errors > before ? -1 : 0;
}

/* Pools that would run as root need -R, as php-fpm requires. */
void conf_check_root_pools(const struct fpmd_conf *c, int allow_root, struct conf_diags *d)
{
	if (geteuid() != 0 || allow_root)
		return;
	for (size_t i = 0; i < c->npools; i++) {
		const struct pool_conf *p = c->pools[i];
		uid_t uid;
		gid_t gid;
		if (!p->user || ids_user(p->user, &uid, &gid, NULL, 0) < 0)
			continue;
		/* the group too, as php-fpm: a worker of gid 0 writes every root-group file */
		if (p->group && *p->group && ids_group(p->group, &gid) < 0)
			continue;
		/*
		 * An unknown listen.owner or listen.group refuses the pool already
		 * (conf_check_system), and php-fpm names only that: its own tests
		 * expect that one line.
		 */
		uid_t lu;
		gid_t lg;
		if ((p->listen_owner && *p->listen_owner && ids_user(p->listen_owner, &lu, &lg, NULL, 0) < 0) ||
		    (p->listen_group && *p->listen_group && ids_group(p->listen_group, &lg) < 0))
			continue;
		if (uid == 0 || gid == 0) {
			char *msg = NULL;
			if (asprintf(&msg, "[pool %s] please specify user and group other than root "
				     "(or start fpmd with -R to allow it)", p->name) < 0)
				return;
			struct conf_diag *ni = realloc(d->items, (d->n + 1) * sizeof(*ni));
			if (!ni) {
				free(msg);
				return;
			}
			d->items = ni;
			d->cap = d->n + 1;
			d->items[d->n++] = (struct conf_diag){ 1, NULL, 0, msg };
			d->errors++;
		}
	}
}

