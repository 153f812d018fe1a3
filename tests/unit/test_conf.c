/*
 * Unit tests for src/conf: the INI reader, every directive (a valid value,
 * boundaries, invalid values with their exact message), the cross-field
 * rules, include/glob/${VAR}/$pool handling through an in-memory conf_io,
 * conf_dump round trips and Debian's php-fpm 8.2 configuration.
 */
#include <errno.h>
#include <fnmatch.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "conf/conf_internal.h"   /* conf_suggest */
#include "fcgi/fcgi.h"

/* ---- an in-memory file system for includes ---- */

struct mem_file {
	const char *path;
	const char *text;
};

struct mem_fs {
	const struct mem_file *files;
	size_t n;
	int reads;
};

static char *mem_read(const char *path, size_t *len, void *ctx)
{
	struct mem_fs *fs = ctx;

	for (size_t i = 0; i < fs->n; i++)
		if (strcmp(fs->files[i].path, path) == 0) {
			fs->reads++;
			*len = strlen(fs->files[i].text);
			return strdup(fs->files[i].text);
		}
	errno = ENOENT;
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int mem_glob(const char *pattern, struct conf_str_list *out, void *ctx)
{
	struct mem_fs *fs = ctx;

	for (size_t i = 0; i < fs->n; i++) {
		if (fnmatch(pattern, fs->files[i].path, FNM_PATHNAME) != 0)
			continue;
		if (out->n == out->cap) {
			out->cap = out->cap ? out->cap * 2 : 4;
			out->items = realloc(out->items, out->cap * sizeof(char *));
		}
		out->items[out->n++] = strdup(fs->files[i].path);
	}
	if (out->n)
		qsort(out->items, out->n, sizeof(char *), cmp_str);
	return 0;
}

/* ---- helpers ---- */

struct loaded {
	struct fpmd_conf *c;
	struct conf_diags d;
	struct mem_fs fs;
	struct conf_io io;
	struct conf_options opt;
};

static void opts_default(struct conf_options *o)
{
	memset(o, 0, sizeof(*o));
	o->daemonize = CONF_UNSET;
	o->running_as_root = 1;
	o->prefix = "/opt/fpmd";
}

static void load_fs(struct loaded *l, const char *name, const char *text,
		    const struct mem_file *files, size_t nfiles)
{
	memset(&l->d, 0, sizeof(l->d));
	l->fs.files = files;
	l->fs.n = nfiles;
	l->fs.reads = 0;
	l->io.read = mem_read;
	l->io.glob = mem_glob;
	l->io.ctx = &l->fs;
	l->c = conf_load_string(name, text, &l->opt, &l->io, &l->d);
	assert_non_null(l->c);
}

static void load(struct loaded *l, const char *text)
{
	opts_default(&l->opt);
	load_fs(l, "/etc/fpmd/fpmd.conf", text, NULL, 0);
}

static void unload(struct loaded *l)
{
	conf_free(l->c);
	conf_diags_free(&l->d);
	l->c = NULL;
}

static void print_diags(const struct conf_diags *d)
{
	for (size_t i = 0; i < d->n; i++) {
		char *s = conf_diag_format(&d->items[i]);

		fprintf(stderr, "  %s: %s\n", d->items[i].severity ? "error" : "warning", s);
		free(s);
	}
}

/* Index of the diagnostic whose message equals msg, or -1. */
static int find_diag(const struct conf_diags *d, int severity, const char *msg)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->items[i].severity == severity && strcmp(d->items[i].msg, msg) == 0)
			return (int)i;
	return -1;
}

static void expect_diag(const struct conf_diags *d, int severity, const char *file, int line,
			const char *msg)
{
	int i = find_diag(d, severity, msg);

	if (i < 0) {
		fprintf(stderr, "missing %s \"%s\"; got:\n", severity ? "error" : "warning", msg);
		print_diags(d);
		fail();
	}
	if (file)
		assert_string_equal(d->items[i].file, file);
	if (line >= 0)
		assert_int_equal(d->items[i].line, line);
}

static void expect_no_errors(const struct conf_diags *d)
{
	if (d->errors) {
		print_diags(d);
		fail();
	}
}

static void expect_one_error(const struct conf_diags *d, int line, const char *msg)
{
	if (d->errors != 1) {
		fprintf(stderr, "expected one error \"%s\", got %zu:\n", msg, d->errors);
		print_diags(d);
		fail();
	}
	expect_diag(d, 1, NULL, line, msg);
}

#define MAIN "/etc/fpmd/fpmd.conf"

/* A valid pool: after "[global]\n" these are lines 2-8; an extra pool line is line 9. */
#define POOL_LINES \
	"[www]\n" \
	"app.type = cgi\n" \
	"cgi.root = /srv/cgi\n" \
	"pm = static\n" \
	"pm.max_children = 4\n" \
	"listen = /run/fpmd/www.sock\n" \
	"user = nobody\n"

/* ---- value parsers ---- */

static void test_parse_bool(void **state)
{
	static const struct { const char *s; int ok, v; } t[] = {
		{ "yes", 1, 1 }, { "YES", 1, 1 }, { "on", 1, 1 }, { "true", 1, 1 }, { "1", 1, 1 },
		{ "no", 1, 0 }, { "off", 1, 0 }, { "false", 1, 0 }, { "0", 1, 0 }, { "", 1, 0 },
		{ "maybe", 0, 0 }, { "2", 0, 0 }, { "yess", 0, 0 }, { " yes", 0, 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int v = -1;

		assert_int_equal(conf_parse_bool(t[i].s, &v), t[i].ok ? 0 : -1);
		if (t[i].ok)
			assert_int_equal(v, t[i].v);
	}
}

static void test_parse_time(void **state)
{
	static const struct { const char *s; int ok, v; } t[] = {
		{ "0", 1, 0 }, { "10", 1, 10 }, { "10s", 1, 10 }, { "5m", 1, 300 },
		{ "2h", 1, 7200 }, { "1d", 1, 86400 }, { "2147483647", 1, 2147483647 },
		{ "2147483648", 0, 0 }, { "24856d", 0, 0 }, { "24855d", 1, 24855 * 86400 },
		{ "", 0, 0 }, { "s", 0, 0 }, { "10x", 0, 0 }, { "10ss", 0, 0 }, { "-1", 0, 0 },
		{ "10S", 0, 0 }, { "1.5m", 0, 0 }, { "99999999999999999999", 0, 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int v = -1;

		if (conf_parse_time(t[i].s, &v) != (t[i].ok ? 0 : -1))
			fail_msg("conf_parse_time(\"%s\")", t[i].s);
		if (t[i].ok)
			assert_int_equal(v, t[i].v);
	}
}

static void test_parse_size(void **state)
{
	static const struct { const char *s; int ok; long long v; } t[] = {
		{ "0", 1, 0 }, { "512", 1, 512 }, { "4K", 1, 4096 }, { "4k", 1, 4096 },
		{ "10M", 1, 10485760 }, { "10m", 1, 10485760 }, { "1G", 1, 1073741824 },
		{ "2g", 1, 2147483648LL }, { "", 0, 0 }, { "K", 0, 0 }, { "4KB", 0, 0 },
		{ "4T", 0, 0 }, { "-4K", 0, 0 }, { "9223372036854775807", 1, 9223372036854775807LL },
		{ "9223372036854775807K", 0, 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		long long v = -1;

		if (conf_parse_size(t[i].s, &v) != (t[i].ok ? 0 : -1))
			fail_msg("conf_parse_size(\"%s\")", t[i].s);
		if (t[i].ok)
			assert_true(v == t[i].v);
	}
}

static void test_parse_rlimit(void **state)
{
	long long v;

	(void)state;
	assert_int_equal(conf_parse_rlimit("unlimited", &v), 0);
	assert_true(v == -2);
	assert_int_equal(conf_parse_rlimit("UNLIMITED", &v), 0);
	assert_int_equal(conf_parse_rlimit("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(conf_parse_rlimit("65536", &v), 0);
	assert_true(v == 65536);
	assert_int_equal(conf_parse_rlimit("-1", &v), -1);
	assert_int_equal(conf_parse_rlimit("lots", &v), -1);
	assert_int_equal(conf_parse_rlimit("", &v), -1);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(conf_pm_name(PM_STATIC), "static");
	assert_string_equal(conf_pm_name(PM_DYNAMIC), "dynamic");
	assert_string_equal(conf_pm_name(PM_ONDEMAND), "ondemand");
	assert_string_equal(conf_app_name(APP_CGI), "cgi");
	assert_string_equal(conf_app_name(APP_MODULE), "module");
	assert_string_equal(conf_app_name(APP_EXEC), "exec");
	assert_string_equal(conf_app_name(APP_PHP), "php");
	assert_string_equal(conf_log_level_name(LOG_LVL_ALERT), "alert");
	assert_string_equal(conf_log_level_name(LOG_LVL_DEBUG), "debug");
	assert_string_equal(conf_log_level_name(LOG_LVL_NOTICE), "notice");
}

static void test_diag_format(void **state)
{
	struct conf_diag d = { .severity = 1, .file = "/a.conf", .line = 3, .msg = "boom" };
	char *s;

	(void)state;
	s = conf_diag_format(&d);
	assert_string_equal(s, "[/a.conf:3] boom");
	free(s);
	d.line = 0;
	s = conf_diag_format(&d);
	assert_string_equal(s, "[/a.conf] boom");
	free(s);
	d.file = NULL;
	s = conf_diag_format(&d);
	assert_string_equal(s, "boom");
	free(s);
}

/* ---- every directive: valid values, boundaries, invalid ones ---- */

/*
 * One line added to a valid configuration: to [global] (line 2) or to the
 * pool (line 9).  err: the exact message expected (NULL = accepted); dump: a
 * line conf_dump must then contain (the effective value).
 */
struct dcase {
	char sec;                   /* 'g' or 'p' */
	const char *line;
	const char *err;
	const char *dump;
};

static const struct dcase dcases[] = {
	/* pid / error_log: relative paths resolved against the prefix */
	{ 'g', "pid = run/fpmd.pid", NULL, "pid = /opt/fpmd/run/fpmd.pid\n" },
	{ 'g', "pid = /run/fpmd.pid", NULL, "pid = /run/fpmd.pid\n" },
	{ 'g', "error_log = /var/log/fpmd.log", NULL, "error_log = /var/log/fpmd.log\n" },
	{ 'g', "error_log = syslog", NULL, "error_log = syslog\n" },
	{ 'g', "error_log = log/x.log", NULL, "error_log = /opt/fpmd/log/x.log\n" },
	{ 'g', "syslog.facility = local3", NULL, "syslog.facility = local3\n" },
	{ 'g', "syslog.facility = LOCAL7", NULL, "syslog.facility = local7\n" },
	{ 'g', "syslog.facility = local8",
	  "syslog.facility: 'local8' is not one of auth, authpriv, cron, daemon, ftp, kern, lpr, "
	  "mail, news, syslog, user, uucp, local0, local1, local2, local3, local4, local5, local6, "
	  "local7", NULL },
	{ 'g', "syslog.ident = php-fpm", NULL, "syslog.ident = php-fpm\n" },
	{ 'g', "log_level = debug", NULL, "log_level = debug\n" },
	{ 'g', "log_level = ALERT", NULL, "log_level = alert\n" },
	{ 'g', "log_level = warning", NULL, "log_level = warning\n" },
	{ 'g', "log_level = error", NULL, "log_level = error\n" },
	{ 'g', "log_level = verbose",
	  "log_level: 'verbose' is not one of debug, notice, warning, error, alert", NULL },
	{ 'g', "log_limit = 0", NULL, "log_limit = 0\n" },
	{ 'g', "log_limit = 512", NULL, "log_limit = 512\n" },
	{ 'g', "log_limit = 511", "log_limit: '511' must be 0 (unlimited) or at least 512", NULL },
	{ 'g', "log_limit = 1", "log_limit: '1' must be 0 (unlimited) or at least 512", NULL },
	{ 'g', "log_limit = -1", "log_limit: '-1' must be a non-negative integer", NULL },
	{ 'g', "log_limit = 4k", "log_limit: '4k' must be a non-negative integer", NULL },
	{ 'g', "log_buffering = no", NULL, "log_buffering = no\n" },
	{ 'g', "log_buffering = maybe",
	  "log_buffering: 'maybe' is not a valid boolean (use yes or no)", NULL },
	{ 'g', "log_format = json", NULL, "log_format = json\n" },
	{ 'g', "log_format = xml", "log_format: 'xml' is not one of plain, json", NULL },
	{ 'g', "control_socket = run/fpmd.ctl", NULL, "control_socket = /opt/fpmd/run/fpmd.ctl\n" },
	{ 'g', "control_socket = /run/fpmd.ctl", NULL, "control_socket = /run/fpmd.ctl\n" },
	{ 'g', "emergency_restart_threshold = 10", NULL, "emergency_restart_threshold = 10\n" },
	{ 'g', "emergency_restart_threshold = -1",
	  "emergency_restart_threshold: '-1' must be a non-negative integer", NULL },
	{ 'g', "emergency_restart_interval = 1m", NULL, "emergency_restart_interval = 60s\n" },
	{ 'g', "emergency_restart_interval = 1w",
	  "emergency_restart_interval: '1w' is not a valid time (use a number with s, m, h or d)",
	  NULL },
	{ 'g', "process_control_timeout = 0", NULL, "process_control_timeout = 0s\n" },
	{ 'g', "process_control_timeout = 2h", NULL, "process_control_timeout = 7200s\n" },
	{ 'g', "process_control_timeout = soon",
	  "process_control_timeout: 'soon' is not a valid time (use a number with s, m, h or d)",
	  NULL },
	{ 'g', "sigterm_drain = 5", NULL, "sigterm_drain = 5s\n" },
	{ 'g', "sigterm_drain = 1m", NULL, "sigterm_drain = 60s\n" },
	{ 'g', "sigterm_drain = 2d", "sigterm_drain: '2d' must be at most 86400s", NULL },
	{ 'g', "process.max = 128", NULL, "process.max = 128\n" },
	{ 'g', "process.max = x", "process.max: 'x' must be a non-negative integer", NULL },
	{ 'g', "process.priority = -19", NULL, "process.priority = -19\n" },
	{ 'g', "process.priority = 20", NULL, "process.priority = 20\n" },
	{ 'g', "process.priority = -20",
	  "process.priority: '-20' must be an integer between -19 and 20", NULL },
	{ 'g', "process.priority = 21",
	  "process.priority: '21' must be an integer between -19 and 20", NULL },
	{ 'g', "daemonize = off", NULL, "daemonize = no\n" },
	{ 'g', "daemonize = 2", "daemonize: '2' is not a valid boolean (use yes or no)", NULL },
	{ 'g', "rlimit_files = 65536", NULL, "rlimit_files = 65536\n" },
	{ 'g', "rlimit_files = unlimited", NULL, "rlimit_files = unlimited\n" },
	{ 'g', "rlimit_files = many",
	  "rlimit_files: 'many' must be a non-negative integer or 'unlimited'", NULL },
	{ 'g', "rlimit_core = 0", NULL, "rlimit_core = 0\n" },
	{ 'g', "rlimit_core = unlimited", NULL, "rlimit_core = unlimited\n" },
	{ 'g', "rlimit_core = -5",
	  "rlimit_core: '-5' must be a non-negative integer or 'unlimited'", NULL },
	{ 'g', "events.mechanism = epoll", NULL, "events.mechanism = epoll\n" },
	{ 'g', "events.mechanism = poll", NULL, "events.mechanism = poll\n" },
	{ 'g', "events.mechanism = io_uring",
	  "events.mechanism: 'io_uring' is not one of epoll, poll, select, kqueue, /dev/poll, port",
	  NULL },
	{ 'g', "systemd_interval = 0", NULL, "systemd_interval = 0s\n" },
	{ 'g', "systemd_interval = 30s", NULL, "systemd_interval = 30s\n" },
	{ 'g', "systemd_interval = 30q",
	  "systemd_interval: '30q' is not a valid time (use a number with s, m, h or d)", NULL },

	/* pool */
	{ 'p', "app.type = php", NULL, "app.type = php\n" },
	{ 'p', "app.type = exec\nexec.command = /usr/bin/app", NULL, "app.type = exec\n" },
	{ 'p', "app.type = fastcgi",
	  "app.type: 'fastcgi' is not one of cgi, module, exec, php", NULL },
	{ 'p', "app.type = none", "app.type: 'none' is not one of cgi, module, exec, php", NULL },
	{ 'p', "prefix = /srv/www", NULL, "prefix = /srv/www\n" },
	{ 'p', "prefix = www", NULL, "prefix = /opt/fpmd/www\n" },
	{ 'p', "user = www-data", NULL, "user = www-data\n" },
	{ 'p', "group = www-data", NULL, "group = www-data\n" },
	{ 'p', "listen = 9000", NULL, "listen = 9000\n" },
	{ 'p', "listen = 127.0.0.1:9000", NULL, "listen = 127.0.0.1:9000\n" },
	{ 'p', "listen = [::1]:9000", NULL, "listen = [::1]:9000\n" },
	{ 'p', "listen = 65535", NULL, "listen = 65535\n" },
	{ 'p', "listen = run/www.sock", NULL, "listen = /opt/fpmd/run/www.sock\n" },
	{ 'p', "listen = 65536", "listen: '65536' has an invalid port (use 1 to 65535)", NULL },
	{ 'p', "listen = 0", "listen: '0' has an invalid port (use 1 to 65535)", NULL },
	{ 'p', "listen = 127.0.0.1:http",
	  "listen: '127.0.0.1:http' has an invalid port (use 1 to 65535)", NULL },
	{ 'p', "listen = [::1", "listen: '[::1' is not a valid address (use [IPV6]:PORT)", NULL },
	{ 'p', "listen.backlog = 511", NULL, "listen.backlog = 511\n" },
	{ 'p', "listen.backlog = -1", NULL, "listen.backlog = -1\n" },
	{ 'p', "listen.backlog = -2", "listen.backlog: '-2' must be -1 or a non-negative integer",
	  NULL },
	{ 'p', "listen.owner = www-data", NULL, "listen.owner = www-data\n" },
	{ 'p', "listen.group = www-data", NULL, "listen.group = www-data\n" },
	{ 'p', "listen.mode = 0600", NULL, "listen.mode = 0600\n" },
	{ 'p', "listen.mode = 666", NULL, "listen.mode = 0666\n" },
	{ 'p', "listen.mode = 0680",
	  "listen.mode: '0680' is not a valid octal mode (such as 0660)", NULL },
	{ 'p', "listen.mode = 17777",
	  "listen.mode: '17777' is not a valid octal mode (such as 0660)", NULL },
	{ 'p', "listen.acl_users = alice,bob", NULL, "listen.acl_users = alice,bob\n" },
	{ 'p', "listen.acl_groups = web", NULL, "listen.acl_groups = web\n" },
	{ 'p', "listen.allowed_clients = 127.0.0.1,::1", NULL,
	  "listen.allowed_clients = 127.0.0.1,::1\n" },
	{ 'p', "process.priority = -5", NULL, "process.priority = -5\n" },
	{ 'p', "process.priority = 99",
	  "process.priority: '99' must be an integer between -19 and 20", NULL },
	{ 'p', "process.dumpable = yes", NULL, "process.dumpable = yes\n" },
	{ 'p', "process.start_timeout = 2m", NULL, "process.start_timeout = 120s\n" },
	{ 'p', "process.start_timeout = 0", NULL, "process.start_timeout = 0s\n" },
	{ 'p', "process.start_timeout = 2d",
	  "process.start_timeout: '2d' must be at most 86400s", NULL },
	{ 'p', "process.dumpable = 5",
	  "process.dumpable: '5' is not a valid boolean (use yes or no)", NULL },
	{ 'p', "pm = ondemand", NULL, "pm = ondemand\n" },
	{ 'p', "pm = Static", NULL, "pm = static\n" },
	{ 'p', "pm = adaptive", "pm: 'adaptive' is not one of static, dynamic, ondemand", NULL },
	{ 'p', "pm.max_children = 1", NULL, "pm.max_children = 1\n" },
	{ 'p', "pm.max_children = 2147483647", NULL, "pm.max_children = 2147483647\n" },
	{ 'p', "pm.max_children = 0", "pm.max_children: '0' must be a positive integer", NULL },
	{ 'p', "pm.max_children = abc", "pm.max_children: 'abc' must be a positive integer", NULL },
	{ 'p', "pm.max_children = 2147483648",
	  "pm.max_children: '2147483648' must be a positive integer", NULL },
	{ 'p', "pm.max_children = 5x", "pm.max_children: '5x' must be a positive integer", NULL },
	{ 'p', "pm.start_servers = x", "pm.start_servers: 'x' must be a non-negative integer",
	  NULL },
	{ 'p', "pm.min_spare_servers = -1",
	  "pm.min_spare_servers: '-1' must be a non-negative integer", NULL },
	{ 'p', "pm.max_spare_servers = 1.5",
	  "pm.max_spare_servers: '1.5' must be a non-negative integer", NULL },
	{ 'p', "pm.max_spawn_rate = 1", NULL, "pm.max_spawn_rate = 1\n" },
	{ 'p', "pm.max_spawn_rate = 0", "pm.max_spawn_rate: '0' must be a positive integer", NULL },
	{ 'p', "pm.process_idle_timeout = 1", NULL, "pm.process_idle_timeout = 1s\n" },
	{ 'p', "pm.process_idle_timeout = 2m", NULL, "pm.process_idle_timeout = 120s\n" },
	{ 'p', "pm.process_idle_timeout = 0", "pm.process_idle_timeout: '0' must be at least 1s",
	  NULL },
	{ 'p', "pm.process_idle_timeout = 10ms",
	  "pm.process_idle_timeout: '10ms' is not a valid time (use a number with s, m, h or d)",
	  NULL },
	{ 'p', "pm.max_requests = 500", NULL, "pm.max_requests = 500\n" },
	{ 'p', "pm.max_requests = -1", "pm.max_requests: '-1' must be a non-negative integer",
	  NULL },
	{ 'p', "pm.max_requests_jitter = 50", NULL, "pm.max_requests_jitter = 50\n" },
	{ 'p', "pm.max_requests_jitter = -3",
	  "pm.max_requests_jitter: '-3' must be a non-negative integer", NULL },
	{ 'p', "pm.status_path = /status", NULL, "pm.status_path = /status\n" },
	{ 'p', "pm.status_path = /fpm-status_1.~x", NULL, "pm.status_path = /fpm-status_1.~x\n" },
	{ 'p', "pm.status_path = status", "pm.status_path: 'status' must start with '/'", NULL },
	{ 'p', "pm.status_path = /st atus",
	  "pm.status_path: '/st atus' may only contain letters, digits and / _ . ~ -", NULL },
	{ 'p', "pm.status_path = /status?x",
	  "pm.status_path: '/status?x' may only contain letters, digits and / _ . ~ -", NULL },
	{ 'p', "pm.status_listen = 127.0.0.1:9001", NULL, "pm.status_listen = 127.0.0.1:9001\n" },
	{ 'p', "pm.status_listen = :x",
	  "pm.status_listen: ':x' is not a valid address (use IP:PORT)", NULL },
	{ 'p', "ping.path = /ping", NULL, "ping.path = /ping\n" },
	{ 'p', "ping.path = ping", "ping.path: 'ping' must start with '/'", NULL },
	{ 'p', "ping.path = /p%69ng",
	  "ping.path: '/p%69ng' may only contain letters, digits and / _ . ~ -", NULL },
	{ 'p', "ping.response = alive", NULL, "ping.response = alive\n" },
	{ 'p', "ping.response = \"I am alive\"", NULL, "ping.response = \"I am alive\"\n" },
	{ 'p', "access.log = /var/log/$pool.access.log", NULL,
	  "access.log = /var/log/www.access.log\n" },
	{ 'p', "access.log = log/$pool.access.log", NULL,
	  "access.log = /opt/fpmd/log/www.access.log\n" },
	{ 'p', "access.format = \"%R %m %r%Q%q %s %{mili}d\"", NULL,
	  "access.format = \"%R %m %r%Q%q %s %{mili}d\"\n" },
	{ 'p', "access.suppress_path[] = /ping", NULL, "access.suppress_path[] = /ping\n" },
	{ 'p', "access.suppress_path[] = ping",
	  "Values provided to field 'access.suppress_path' must begin with '/'", NULL },
	{ 'p', "access.suppress_path[x] = /ping",
	  "Keys provided to field 'access.suppress_path' are ignored", NULL },
	{ 'p', "slowlog = /var/log/slow.log", NULL, "slowlog = /var/log/slow.log\n" },
	{ 'p', "slowlog = log/$pool.slow", NULL, "slowlog = /opt/fpmd/log/www.slow\n" },
	{ 'p', "request_slowlog_timeout = 0", NULL, "request_slowlog_timeout = 0s\n" },
	{ 'p', "request_slowlog_timeout = -1",
	  "request_slowlog_timeout: '-1' is not a valid time (use a number with s, m, h or d)",
	  NULL },
	{ 'p', "request_slowlog_trace_depth = 1", NULL, "request_slowlog_trace_depth = 1\n" },
	{ 'p', "request_slowlog_trace_depth = 0",
	  "request_slowlog_trace_depth: '0' must be a positive integer", NULL },
	{ 'p', "request_terminate_timeout = 30s", NULL, "request_terminate_timeout = 30s\n" },
	{ 'p', "request_terminate_timeout = 1d", NULL, "request_terminate_timeout = 86400s\n" },
	{ 'p', "request_terminate_timeout = 5x",
	  "request_terminate_timeout: '5x' is not a valid time (use a number with s, m, h or d)",
	  NULL },
	{ 'p', "request_terminate_timeout_track_finished = true", NULL,
	  "request_terminate_timeout_track_finished = yes\n" },
	{ 'p', "cgi.landlock = yes", NULL, "cgi.landlock = yes\n" },
	{ 'p', "cgi.landlock = maybe",
	  "cgi.landlock: 'maybe' is not a valid boolean (use yes or no)", NULL },
	{ 'p', "request_header_timeout = 0", NULL, "request_header_timeout = 0s\n" },
	{ 'p', "request_header_timeout = 2m", NULL, "request_header_timeout = 120s\n" },
	{ 'p', "request_body_timeout = 90", NULL, "request_body_timeout = 90s\n" },
	{ 'p', "request_body_timeout = soon",
	  "request_body_timeout: 'soon' is not a valid time (use a number with s, m, h or d)", NULL },
	{ 'p', "request_keepalive_timeout = 1h", NULL, "request_keepalive_timeout = 3600s\n" },
	{ 'p', "request_send_timeout = 5", NULL, "request_send_timeout = 5s\n" },
	{ 'p', "request.max_params_count = 100", NULL, "request.max_params_count = 100\n" },
	{ 'p', "request.max_params_count = 1", "request.max_params_count: '1' must be an integer between 16 and 1000000", NULL },
	{ 'p', "request.max_param_name_size = 1K", NULL, "request.max_param_name_size = 1K\n" },
	{ 'p', "request_terminate_timeout_track_finished = nope",
	  "request_terminate_timeout_track_finished: 'nope' is not a valid boolean (use yes or no)",
	  NULL },
	{ 'p', "rlimit_files = 1024", NULL, "rlimit_files = 1024\n" },
	{ 'p', "rlimit_files = lots",
	  "rlimit_files: 'lots' must be a non-negative integer or 'unlimited'", NULL },
	{ 'p', "rlimit_core = unlimited", NULL, "rlimit_core = unlimited\n" },
	{ 'p', "chroot = /srv/jail", NULL, "chroot = /srv/jail\n" },
	{ 'p', "chroot = jail", "chroot: 'jail' must be an absolute path", NULL },
	{ 'p', "chroot = $prefix/jail", NULL, "chroot = /opt/fpmd/jail\n" },
	{ 'p', "chdir = /srv", NULL, "chdir = /srv\n" },
	{ 'p', "chdir = $prefix/htdocs", NULL, "chdir = /opt/fpmd/htdocs\n" },
	{ 'p', "catch_workers_output = yes", NULL, "catch_workers_output = yes\n" },
	{ 'p', "catch_workers_output = maybe",
	  "catch_workers_output: 'maybe' is not a valid boolean (use yes or no)", NULL },
	{ 'p', "decorate_workers_output = no", NULL, "decorate_workers_output = no\n" },
	{ 'p', "decorate_workers_output = x",
	  "decorate_workers_output: 'x' is not a valid boolean (use yes or no)", NULL },
	{ 'p', "clear_env = no", NULL, "clear_env = no\n" },
	{ 'p', "clear_env = ja", "clear_env: 'ja' is not a valid boolean (use yes or no)", NULL },
	{ 'p', "security.limit_extensions = .cgi .pl", NULL,
	  "security.limit_extensions = \".cgi .pl\"\n" },
	{ 'p', "security.limit_extensions =", NULL, "security.limit_extensions = \"\"\n" },
	{ 'p', "env[PATH] = /usr/bin:/bin", NULL, "env[PATH] = /usr/bin:/bin\n" },
	{ 'p', "env[TMP] = /tmp/$pool", NULL, "env[TMP] = /tmp/www\n" },
	{ 'p', "env[] = x", "You must provide a key for field 'env'", NULL },
	{ 'p', "env = x", "'env' needs a key: env[KEY] = value", NULL },
	{ 'p', "env[A=B] = x", "env[A=B]: 'A=B' is not a valid environment variable name", NULL },
	{ 'p', "php_value[memory_limit] = 32M", NULL, "php_value[memory_limit] = 32M\n" },
	{ 'p', "php_flag[display_errors] = off", NULL, "php_flag[display_errors] = off\n" },
	{ 'p', "php_admin_value[error_log] = /var/log/php.log", NULL,
	  "php_admin_value[error_log] = /var/log/php.log\n" },
	{ 'p', "php_admin_flag[log_errors] = on", NULL, "php_admin_flag[log_errors] = on\n" },
	{ 'p', "php_value = 1", "'php_value' needs a key: php_value[KEY] = value", NULL },
	{ 'p', "cgi.root = /srv/more", NULL, "cgi.root = /srv/cgi\ncgi.root = /srv/more\n" },
	{ 'p', "cgi.root = srv", "cgi.root: 'srv' must be an absolute path", NULL },
	{ 'p', "cgi.root =", "cgi.root: '' must be an absolute path", NULL },
	{ 'p', "cgi.allow[] = /usr/lib/cgit/cgit.cgi", NULL,
	  "cgi.allow[] = /usr/lib/cgit/cgit.cgi\n" },
	{ 'p', "cgi.allow[] = cgit.cgi", "cgi.allow: 'cgit.cgi' must be an absolute path", NULL },
	{ 'p', "cgi.pass_params = GIT_PROJECT_ROOT GIT_HTTP_EXPORT_ALL", NULL,
	  "cgi.pass_params = \"GIT_PROJECT_ROOT GIT_HTTP_EXPORT_ALL\"\n" },
	{ 'p', "cgi.interpreter = /usr/bin/env", NULL, "cgi.interpreter = /usr/bin/env\n" },
	{ 'p', "cgi.interpreter[.py] = /usr/bin/python3", NULL,
	  "cgi.interpreter[.py] = /usr/bin/python3\n" },
	{ 'p', "cgi.interpreter[.py] = python3",
	  "cgi.interpreter[.py]: 'python3' must be an absolute path", NULL },
	{ 'p', "cgi.stderr = client", NULL, "cgi.stderr = client\n" },
	{ 'p', "php.ini_params = all", NULL, "php.ini_params = all\n" },
	{ 'p', "php.zygote = pool", NULL, "php.zygote = pool\n" },
	{ 'p', "php.zygote = each", "php.zygote: 'each' is not one of shared, pool", NULL },
	{ 'p', "php.worker = /srv/app/public/index.php", NULL,
	  "php.worker = /srv/app/public/index.php\n" },
	{ 'p', "php.worker = index.php", "php.worker: 'index.php' must be an absolute path", NULL },
	{ 'p', "php.worker_boot = zygote", NULL, "php.worker_boot = zygote\n" },
	{ 'p', "php.worker_boot = master", "php.worker_boot: 'master' is not one of worker, zygote",
	  NULL },
	{ 'p', "apparmor_hat = web", NULL, "apparmor_hat = web\n" },
	{ 'p', "php.ini_params = none", NULL, "php.ini_params = none\n" },
	{ 'p', "php.ini_params = root", "php.ini_params: 'root' is not one of user, all, none", NULL },
	{ 'p', "cgi.stderr = both", NULL, "cgi.stderr = both\n" },
	{ 'p', "cgi.stderr = syslog", "cgi.stderr: 'syslog' is not one of log, client, both",
	  NULL },
	{ 'p', "module.path = /usr/lib/fpmd/hello.so", NULL,
	  "module.path = /usr/lib/fpmd/hello.so\n" },
	{ 'p', "module.path = hello.so", "module.path: 'hello.so' must be an absolute path", NULL },
	{ 'p', "module.param[greeting] = \"hi there\"", NULL,
	  "module.param[greeting] = \"hi there\"\n" },
	{ 'p', "exec.command = \"/usr/bin/app --fcgi\"", NULL,
	  "exec.command = \"/usr/bin/app --fcgi\"\n" },
	{ 'p', "exec.mode = direct", NULL, "exec.mode = direct\n" },
	{ 'p', "exec.mode = managed", NULL, "exec.mode = managed\n" },
	{ 'p', "exec.mode = spawn", "exec.mode: 'spawn' is not one of managed, direct", NULL },
	{ 'p', "request.max_params_size = 1K", NULL, "request.max_params_size = 1K\n" },
	{ 'p', "request.max_params_size = 1M", NULL, "request.max_params_size = 1M\n" },
	{ 'p', "request.max_params_size = 1023",
	  "request.max_params_size: '1023' must be at least 1K", NULL },
	{ 'p', "request.max_params_size = big",
	  "request.max_params_size: 'big' is not a valid size (use a number with K, M or G)",
	  NULL },
	{ 'p', "pm.max_memory = 64M", NULL, "pm.max_memory = 64M\n" },
	{ 'p', "pm.max_memory = 0", NULL, "pm.max_memory = 0\n" },
	{ 'p', "pm.max_memory = 1g", NULL, "pm.max_memory = 1G\n" },
	{ 'p', "pm.max_memory = -1",
	  "pm.max_memory: '-1' is not a valid size (use a number with K, M or G)", NULL },
	{ 'p', "pm.max_idle_memory = 32M", NULL, "pm.max_idle_memory = 32M\n" },
	{ 'p', "pm.max_idle_memory = lots",
	  "pm.max_idle_memory: 'lots' is not a valid size (use a number with K, M or G)", NULL },
	{ 'p', "request.max_body_size = 0", NULL, "request.max_body_size = 0\n" },
	{ 'p', "request.max_body_size = 10m", NULL, "request.max_body_size = 10M\n" },
	{ 'p', "request.max_body_size = 1000", NULL, "request.max_body_size = 1000\n" },
	{ 'p', "request.max_body_size = -1",
	  "request.max_body_size: '-1' is not a valid size (use a number with K, M or G)", NULL },
	/* keys in the wrong place */
	{ 'p', "pm[x] = static", "'pm' does not take a [key]", NULL },
	{ 'g', "pm = static", "'pm' belongs in a pool section, not [global]", NULL },
	{ 'p', "pid = /run/x.pid", "'pid' belongs in [global], not in pool www", NULL },
	{ 'p', "log_level = debug", "'log_level' belongs in [global], not in pool www", NULL },
	{ 'g', "listen = 9000", "'listen' belongs in a pool section, not [global]", NULL },
	{ 'p', "pm.max_childs = 5", "unknown entry 'pm.max_childs' (did you mean 'pm.max_children'?)",
	  NULL },
	{ 'g', "daemonise = no", "unknown entry 'daemonise' (did you mean 'daemonize'?)", NULL },
	{ 'p', "xyzzy = 1", "unknown entry 'xyzzy'", NULL },
	{ 'p', "PM.Max_Children = 3", NULL, "pm.max_children = 3\n" },
};

static void run_dcase(const struct dcase *t)
{
	struct loaded l;
	char text[1024];
	int line;

	if (t->sec == 'g') {
		snprintf(text, sizeof(text), "[global]\n%s\n" POOL_LINES, t->line);
		line = 2;
	} else {
		snprintf(text, sizeof(text), "[global]\n" POOL_LINES "%s\n", t->line);
		line = 9;
	}
	load(&l, text);
	if (t->err) {
		if (l.d.errors != 1 || find_diag(&l.d, 1, t->err) < 0) {
			fprintf(stderr, "case \"%s\": expected \"%s\", got:\n", t->line, t->err);
			print_diags(&l.d);
			fail();
		}
		expect_diag(&l.d, 1, MAIN, line, t->err);
	} else {
		char *dump;

		if (l.d.errors) {
			fprintf(stderr, "case \"%s\":\n", t->line);
			print_diags(&l.d);
			fail();
		}
		dump = conf_dump(l.c);
		if (t->dump && !strstr(dump, t->dump)) {
			fprintf(stderr, "case \"%s\": dump lacks \"%s\":\n%s", t->line, t->dump, dump);
			fail();
		}
		free(dump);
	}
	unload(&l);
}

static void test_directives(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++)
		run_dcase(&dcases[i]);
}

/* Every directive named in the dump is one the table knows and has a case above. */
static void test_every_directive_has_a_case(void **state)
{
	struct loaded l;
	char *dump, *p;

	(void)state;
	load(&l, "[global]\n" POOL_LINES);
	expect_no_errors(&l.d);
	dump = conf_dump(l.c);
	for (p = dump; *p;) {
		char *eol = strchr(p, '\n'), name[80];
		size_t n;
		int found = 0;

		if (*p == '[' || *p == '\n') {
			p = eol + 1;
			continue;
		}
		if (*p == ';')
			p += 2;
		n = strcspn(p, " [:");
		assert_true(n < sizeof(name));
		memcpy(name, p, n);
		name[n] = '\0';
		for (size_t i = 0; i < sizeof(dcases) / sizeof(dcases[0]) && !found; i++)
			if (strncmp(dcases[i].line, name, n) == 0 &&
			    strchr(" [", dcases[i].line[n]))
				found = 1;
		if (!found)
			fail_msg("no test case for directive %s", name);
		p = eol + 1;
	}
	free(dump);
	unload(&l);
}

static void test_defaults(void **state)
{
	struct loaded l;
	const struct pool_conf *p;
	const struct fpmd_conf *c;

	(void)state;
	load(&l, "[global]\n" POOL_LINES);
	expect_no_errors(&l.d);
	c = l.c;
	assert_string_equal(c->file, MAIN);
	assert_string_equal(c->prefix, "/opt/fpmd");
	assert_null(c->pid);
	assert_string_equal(c->error_log, "/opt/fpmd/log/fpmd.log");
	assert_string_equal(c->syslog_facility, "daemon");
	assert_string_equal(c->syslog_ident, "fpmd");
	assert_int_equal(c->log_level, LOG_LVL_NOTICE);
	assert_int_equal(c->log_limit, 1024);
	assert_int_equal(c->log_buffering, 1);
	assert_string_equal(c->log_format, "plain");
	assert_int_equal(c->emergency_restart_threshold, 0);
	assert_int_equal(c->emergency_restart_interval, 0);
	assert_int_equal(c->process_control_timeout, 10);
	assert_int_equal(c->process_max, 0);
	assert_int_equal(c->process_priority, CONF_UNSET);
	assert_int_equal(c->daemonize, 1);
	assert_true(c->rlimit_files == CONF_UNSET);
	assert_true(c->rlimit_core == CONF_UNSET);
	assert_string_equal(c->events_mechanism, "epoll");
	assert_int_equal(c->systemd_interval, 10);
	assert_int_equal(c->npools, 1);

	p = c->pools[0];
	assert_string_equal(p->name, "www");
	assert_string_equal(p->file, MAIN);
	assert_int_equal(p->line, 2);
	assert_null(p->prefix);
	assert_string_equal(p->user, "nobody");
	assert_null(p->group);
	assert_string_equal(p->listen, "/run/fpmd/www.sock");
	assert_int_equal(p->listen_backlog, -1);
	assert_null(p->listen_owner);
	assert_null(p->listen_group);
	assert_int_equal(p->listen_mode, 0660);
	assert_null(p->listen_acl_users);
	assert_null(p->listen_acl_groups);
	assert_null(p->listen_allowed_clients);
	assert_int_equal(p->process_priority, CONF_UNSET);
	assert_int_equal(p->process_dumpable, 0);
	assert_int_equal(p->process_start_timeout, 60);   /* docs/configuration.md */
	assert_int_equal(p->pm, PM_STATIC);
	assert_int_equal(p->pm_max_children, 4);
	assert_int_equal(p->pm_max_spawn_rate, 32);
	assert_int_equal(p->pm_process_idle_timeout, 10);
	assert_int_equal(p->pm_max_requests, 0);
	assert_int_equal(p->pm_max_requests_jitter, 0);
	assert_null(p->pm_status_path);
	assert_null(p->pm_status_listen);
	assert_null(p->ping_path);
	assert_string_equal(p->ping_response, "pong");
	assert_null(p->access_log);
	assert_string_equal(p->access_format, "%R - %u %t \"%m %r\" %s");
	assert_int_equal(p->access_suppress_path.n, 0);
	assert_null(p->slowlog);
	assert_int_equal(p->request_slowlog_timeout, 0);
	assert_int_equal(p->request_slowlog_trace_depth, 20);
	assert_int_equal(p->request_terminate_timeout, 0);
	assert_int_equal(p->request_terminate_timeout_track_finished, 0);
	assert_int_equal(p->request_header_timeout, 60);
	assert_int_equal(p->request_body_timeout, 60);
	assert_int_equal(p->request_keepalive_timeout, 0);
	assert_int_equal(p->request_send_timeout, 60);
	assert_true(p->rlimit_files == CONF_UNSET);
	assert_true(p->rlimit_core == CONF_UNSET);
	assert_null(p->chroot);
	assert_null(p->chdir);
	assert_int_equal(p->catch_workers_output, 0);
	assert_int_equal(p->decorate_workers_output, 1);
	assert_int_equal(p->clear_env, 1);
	assert_int_equal(p->security_limit_extensions.n, 4);  /* cgi's */
	assert_string_equal(p->security_limit_extensions.items[0], ".cgi");
	assert_string_equal(p->security_limit_extensions.items[3], ".py");
	assert_int_equal(p->env.n, 0);
	assert_int_equal(p->app_type, APP_CGI);
	assert_int_equal(p->cgi_root.n, 1);
	assert_string_equal(p->cgi_root.items[0], "/srv/cgi");
	assert_int_equal(p->cgi_allow.n, 0);
	assert_int_equal(p->cgi_interpreter.n, 0);
	assert_int_equal(p->cgi_stderr, CGI_STDERR_LOG);
	assert_null(p->module_path);
	assert_null(p->exec_command);
	assert_int_equal(p->request_max_params_size, 128 * 1024);
	assert_true(p->request_max_body_size == 0);
	assert_true(p->pm_max_memory == 0);
	assert_true(p->pm_max_idle_memory == 0);
	unload(&l);
}

/* ---- cross-field rules ---- */

struct xcase {
	const char *text;
	int line;
	const char *err;            /* NULL = valid */
};

#define XG "[global]\n"
#define XP "[www]\napp.type = cgi\ncgi.root = /srv\nlisten = /run/w.sock\nuser = nobody\n"

static const struct xcase xcases[] = {
	{ XG "[www]\nlisten = /run/w.sock\nuser = nobody\npm = static\npm.max_children = 1\n"
	  "php.worker_boot = zygote\n", 2,
	  "pool www: php.worker_boot = zygote boots the application of php.worker, which is not set" },
	{ XG "[www]\nlisten = /run/w.sock\nuser = nobody\npm = static\npm.max_children = 1\n"
	  "php.worker_boot = zygote\nphp.worker = /srv/app/worker.php\n", 0, NULL },
	{ XG XP "pm = dynamic\npm.max_children = 5\npm.min_spare_servers = 5\n"
	  "pm.max_spare_servers = 3\n", 2,
	  "pool www: pm.min_spare_servers (5) must not be greater than pm.max_spare_servers (3)" },
	{ XG XP "pm = dynamic\npm.max_children = 5\npm.min_spare_servers = 1\n"
	  "pm.max_spare_servers = 10\n", 2,
	  "pool www: pm.max_spare_servers (10) must not be greater than pm.max_children (5)" },
	{ XG XP "pm = dynamic\npm.max_children = 5\npm.max_spare_servers = 3\n", 2,
	  "pool www: pm.min_spare_servers (0) must be a positive integer with pm = dynamic" },
	{ XG XP "pm = dynamic\npm.max_children = 5\npm.min_spare_servers = 1\n", 2,
	  "pool www: pm.max_spare_servers (0) must be a positive integer with pm = dynamic" },
	{ XG XP "pm = dynamic\npm.max_children = 9\npm.min_spare_servers = 2\n"
	  "pm.max_spare_servers = 6\npm.start_servers = 1\n", 2,
	  "pool www: pm.start_servers (1) must not be less than pm.min_spare_servers (2)" },
	{ XG XP "pm = dynamic\npm.max_children = 9\npm.min_spare_servers = 2\n"
	  "pm.max_spare_servers = 6\npm.start_servers = 7\n", 2,
	  "pool www: pm.start_servers (7) must not be greater than pm.max_spare_servers (6)" },
	{ XG XP "pm = dynamic\npm.max_children = 5\npm.min_spare_servers = 1\n"
	  "pm.max_spare_servers = 5\npm.start_servers = 5\n", 2, NULL },
	{ XG XP "pm.max_children = 5\n", 2,
	  "pool www: pm is not set; choose one of static, dynamic, ondemand" },
	{ XG XP "pm = static\n", 2,
	  "pool www: pm.max_children is not set; it must be a positive integer" },
	{ XG XP "pm = ondemand\npm.max_children = 5\n", 2, NULL },
	{ XG "[www]\napp.type = cgi\ncgi.root = /srv\nuser = nobody\npm = static\n"
	  "pm.max_children = 1\n", 2, "pool www: listen is not set" },
	/* no app.type: php, as in a php-fpm pool (cgi.root then draws a warning only) */
	{ XG "\n[www]\nlisten = /run/w.sock\nuser = nobody\npm = static\n"
	  "pm.max_children = 1\n", 3, NULL },
	{ XG "[www]\napp.type = cgi\nlisten = /run/w.sock\nuser = nobody\npm = static\n"
	  "pm.max_children = 1\n", 2,
	  "pool www: app.type = cgi needs at least one cgi.root or cgi.allow[]" },
	{ XG "[www]\napp.type = cgi\ncgi.allow[] = /usr/lib/cgit/cgit.cgi\nlisten = /run/w.sock\n"
	  "user = nobody\npm = static\npm.max_children = 1\n", 2, NULL },
	{ XG "[www]\napp.type = module\nlisten = /run/w.sock\nuser = nobody\npm = static\n"
	  "pm.max_children = 1\n", 2, "pool www: app.type = module needs module.path" },
	{ XG "[www]\napp.type = exec\nlisten = /run/w.sock\nuser = nobody\npm = static\n"
	  "pm.max_children = 1\n", 2, "pool www: app.type = exec needs exec.command" },
	{ XG "[www]\napp.type = exec\nexec.command = /bin/app\nexec.mode = direct\n"
	  "listen = /run/w.sock\nuser = nobody\npm = static\npm.max_children = 1\n", 2, NULL },
	{ XG "[www]\napp.type = exec\nexec.command = /bin/app\nexec.mode = direct\n"
	  "listen = /run/w.sock\nuser = nobody\npm = ondemand\npm.max_children = 1\n", 2, NULL },
	{ XG "[www]\napp.type = exec\nexec.command = /bin/app\nexec.mode = direct\n"
	  "listen = /run/w.sock\nuser = nobody\npm = dynamic\npm.max_children = 2\n"
	  "pm.start_servers = 1\npm.min_spare_servers = 1\npm.max_spare_servers = 1\n", 2,
	  "pool www: exec.mode = direct needs pm = static or ondemand (fpmd cannot count the spare "
	  "programs of pm = dynamic)" },
	{ XG "[www]\napp.type = exec\nexec.command = /bin/app\nexec.mode = direct\n"
	  "listen = /run/w.sock\nuser = nobody\npm = static\npm.max_children = 1\nping.path = /ping\n",
	  2, "pool www: ping.path and pm.status_path are not answered with exec.mode = direct "
	  "(the program accepts the connections); use pm.status_listen" },
	{ XG "[www]\napp.type = php\nlisten = /run/w.sock\nuser = nobody\npm = static\n"
	  "pm.max_children = 1\n", 2, NULL },
	{ XG "[www]\napp.type = php\nlisten = /run/w.sock\npm = static\npm.max_children = 1\n", 2,
	  "pool www: user is not set; fpmd is running as root, so the workers need a user to run "
	  "as (or pass -R to let them run as root)" },
	{ XG "[www]\napp.type = php\nlisten = /run/w.sock\nuser = root\npm = static\n"
	  "pm.max_children = 1\n", 2, NULL },   /* refused once resolved: conf_check.c */
	{ XG XP "pm = static\npm.max_children = 1\nrequest_slowlog_timeout = 5s\n", 2,
	  "pool www: slowlog must be set when request_slowlog_timeout (5s) is greater than 0" },
	{ XG XP "pm = static\npm.max_children = 1\nrequest_slowlog_timeout = 5s\n"
	  "slowlog = /var/log/slow\n", 2, NULL },
	{ XG XP "pm = static\npm.max_children = 1\n"
	  "[two]\napp.type = php\nuser = nobody\npm = static\npm.max_children = 1\n"
	  "listen = /run/w.sock\n", 14,
	  "pool two: listen '/run/w.sock' is already used by pool www (its listen)" },
	{ XG XP "pm = static\npm.max_children = 1\npm.status_listen = 9001\n"
	  "[two]\napp.type = php\nuser = nobody\npm = static\npm.max_children = 1\n"
	  "listen = 9001\n", 15,
	  "pool two: listen '9001' is already used by pool www (its pm.status_listen)" },
	{ XG XP "pm = static\npm.max_children = 1\npm.status_listen = /run/w.sock\n", 2,
	  "pool www: pm.status_listen '/run/w.sock' is the same address as listen" },
	{ XG, 0, "no pool defined; add at least one [POOLNAME] section" },
	{ "", 0, "no pool defined; add at least one [POOLNAME] section" },
	{ XG XP "pm = static\npm.max_children = 1\n[WWW]\npm.max_children = 3\n", 2, NULL },
};

static void test_cross_field(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(xcases) / sizeof(xcases[0]); i++) {
		struct loaded l;

		load(&l, xcases[i].text);
		if (xcases[i].err) {
			if (l.d.errors != 1) {
				fprintf(stderr, "case %zu: expected \"%s\"\n", i, xcases[i].err);
				print_diags(&l.d);
				fail();
			}
			expect_diag(&l.d, 1, MAIN, xcases[i].line, xcases[i].err);
		} else {
			if (l.d.errors)
				fprintf(stderr, "case %zu:\n", i);
			expect_no_errors(&l.d);
		}
		unload(&l);
	}
}

static void test_start_servers_default(void **state)
{
	struct loaded l;

	(void)state;
	load(&l, XG XP "pm = dynamic\npm.max_children = 20\npm.min_spare_servers = 2\n"
		 "pm.max_spare_servers = 7\n");
	expect_no_errors(&l.d);
	assert_int_equal(l.c->pools[0]->pm_start_servers, 4);   /* 2 + (7 - 2) / 2 */
	unload(&l);
}

static void test_reopen_pool(void **state)
{
	struct loaded l;

	(void)state;
	load(&l, XG XP "pm = static\npm.max_children = 1\n[global]\nlog_level = debug\n"
		 "[WWW]\npm.max_children = 3\n");
	expect_no_errors(&l.d);
	assert_int_equal(l.c->npools, 1);
	assert_string_equal(l.c->pools[0]->name, "www");
	assert_int_equal(l.c->pools[0]->pm_max_children, 3);
	assert_int_equal(l.c->log_level, LOG_LVL_DEBUG);
	unload(&l);
}

/*
 * In one file, a section opened again and a value given twice are worth a
 * warning (the first value is lost); the pool and its last values stand.
 * Where each directive was last set is kept for later checks.
 */
static void test_repeats_in_one_file(void **state)
{
	struct loaded l;
	const char *f;
	int line;

	(void)state;
	/* lines: 1 [global], 2 [www], 5 listen, 7 pm, 8 max_children, 9 listen, 10 [www], 11 max */
	load(&l, XG XP "pm = static\npm.max_children = 1\nlisten = /run/x.sock\n"
		 "[www]\npm.max_children = 3\n");
	expect_no_errors(&l.d);
	assert_int_equal(l.c->npools, 1);
	assert_int_equal(l.c->pools[0]->pm_max_children, 3);
	assert_string_equal(l.c->pools[0]->listen, "/run/x.sock");
	expect_diag(&l.d, 0, MAIN, 9, "listen is set again (first at line 5); the last value counts");
	expect_diag(&l.d, 0, MAIN, 10, "[www] opened again (first at line 2): its directives go to "
		    "the same pool, the last value of each counts; rename one of them if they are "
		    "two pools");
	expect_diag(&l.d, 0, MAIN, 11,
		    "pm.max_children is set again (first at line 8); the last value counts");
	conf_where(&l.c->pools[0]->where, "listen", "x", 1, &f, &line);
	assert_string_equal(f, MAIN);
	assert_int_equal(line, 9);
	conf_where(&l.c->pools[0]->where, "chdir", "x", 1, &f, &line);     /* a default */
	assert_string_equal(f, "x");
	assert_int_equal(line, 1);
	unload(&l);
}

static void test_root_options(void **state)
{
	struct loaded l;
	const char *text = XG "[www]\napp.type = php\nlisten = /run/w.sock\nuser = root\n"
			   "pm = static\npm.max_children = 1\n";

	(void)state;
	opts_default(&l.opt);
	l.opt.allow_root = 1;
	load_fs(&l, MAIN, text, NULL, 0);
	expect_no_errors(&l.d);
	unload(&l);

	opts_default(&l.opt);
	l.opt.running_as_root = 0;
	load_fs(&l, MAIN, text, NULL, 0);
	expect_no_errors(&l.d);
	expect_diag(&l.d, -1, NULL, 0,
		    "[pool www] 'user' directive is ignored when FPM is not running as root");
	unload(&l);
}

static void test_options_override(void **state)
{
	struct loaded l;

	(void)state;
	opts_default(&l.opt);
	l.opt.pid = "run/cli.pid";
	l.opt.daemonize = 0;
	load_fs(&l, MAIN, "[global]\npid = /run/file.pid\ndaemonize = yes\n" POOL_LINES, NULL, 0);
	expect_no_errors(&l.d);
	assert_string_equal(l.c->pid, "/opt/fpmd/run/cli.pid");
	assert_int_equal(l.c->daemonize, 0);
	unload(&l);

	/* no prefix: the compiled-in one, includes relative to the main file */
	opts_default(&l.opt);
	l.opt.prefix = NULL;
	l.opt.daemonize = 1;
	load_fs(&l, MAIN, "[global]\ndaemonize = no\n" POOL_LINES, NULL, 0);
	expect_no_errors(&l.d);
	assert_int_equal(l.c->daemonize, 1);
	assert_true(l.c->prefix[0] == '/');
	unload(&l);
}

static void test_limit_extensions(void **state)
{
	struct loaded l;

	(void)state;
	load(&l, XG "[www]\napp.type = php\nlisten = /run/w.sock\nuser = nobody\npm = static\n"
		 "pm.max_children = 1\n");
	expect_no_errors(&l.d);
	assert_int_equal(l.c->pools[0]->security_limit_extensions.n, 2);
	assert_string_equal(l.c->pools[0]->security_limit_extensions.items[0], ".php");
	assert_string_equal(l.c->pools[0]->security_limit_extensions.items[1], ".phar");
	unload(&l);

	load(&l, XG XP "pm = static\npm.max_children = 1\nsecurity.limit_extensions = \"\"\n");
	expect_no_errors(&l.d);
	assert_int_equal(l.c->pools[0]->security_limit_extensions.n, 0);
	unload(&l);

	load(&l, XG XP "pm = static\npm.max_children = 1\n"
		 "security.limit_extensions = \t.sh   .cgi \n");
	expect_no_errors(&l.d);
	assert_int_equal(l.c->pools[0]->security_limit_extensions.n, 2);
	assert_string_equal(l.c->pools[0]->security_limit_extensions.items[0], ".sh");
	assert_string_equal(l.c->pools[0]->security_limit_extensions.items[1], ".cgi");
	unload(&l);

	load(&l, XG "[m]\napp.type = module\nmodule.path = /x.so\nlisten = /run/w.sock\n"
		 "user = nobody\npm = static\npm.max_children = 1\n");
	expect_no_errors(&l.d);
	assert_int_equal(l.c->pools[0]->security_limit_extensions.n, 0);
	unload(&l);
}

static void test_php_values_ignored_warning(void **state)
{
	struct loaded l;

	(void)state;
	load(&l, XG XP "pm = static\npm.max_children = 1\nphp_value[memory_limit] = 32M\n"
		 "php_admin_flag[log_errors] = on\n");
	expect_no_errors(&l.d);
	expect_diag(&l.d, 0, MAIN, 9,
		    "pool www: php_value[memory_limit] is ignored for app.type = cgi");
	expect_diag(&l.d, 0, MAIN, 10,
		    "pool www: php_admin_flag[log_errors] is ignored for app.type = cgi");
	assert_string_equal(conf_kv_get(&l.c->pools[0]->php_value, "memory_limit"), "32M");
	unload(&l);

	load(&l, XG "[www]\napp.type = php\nlisten = /run/w.sock\nuser = nobody\npm = static\n"
		 "pm.max_children = 1\nphp_value[memory_limit] = 32M\n");
	expect_no_errors(&l.d);
	assert_int_equal(l.d.n, 0);
	unload(&l);
}

static void test_noeffect_warnings(void **state)
{
	struct loaded l;

	(void)state;
	load(&l, "[global]\nevents.mechanism = select\n" POOL_LINES
		 "listen.setfib = 1\napparmor_hat = x\n");
	expect_no_errors(&l.d);
	expect_diag(&l.d, 0, MAIN, 2,
		    "events.mechanism = select: fpmd always uses epoll on Linux");
	expect_diag(&l.d, 0, MAIN, 10,
		    "listen.setfib has no effect on this platform (it is FreeBSD's); ignored");
	assert_int_equal(l.d.n, 2);     /* apparmor_hat is applied: no warning */
	unload(&l);
}

/* ---- the INI syntax ---- */

static void test_ini_syntax(void **state)
{
	struct loaded l;
	const struct pool_conf *p;

	(void)state;
	load(&l, "; comment\n# another\n\n  [ global ]   ; trailing\n"
		 "   log_level=debug   ; why not\n"
		 "syslog.ident = 'a ; b \\ $pool'\n"
		 "[www]  # hash after a header\n"
		 "app.type=cgi\r\n"
		 "cgi.root = \"/srv/with space\"  ; quoted then a comment\n"
		 "pm = static\npm.max_children = 2\n"
		 "listen = /run/fpmd/www.sock\nuser = nobody\n"
		 "access.format = %R \"%m %r\" #not a comment\n"
		 "ping.response = \"say \\\"pong\\\" \\\\ \\$pool $pool\"\n"
		 "env[ HOME ] = /home/x\n"
		 "module.param[a=b] = c\n"
		 "ping.path = \"\"\n");
	expect_no_errors(&l.d);
	assert_int_equal(l.c->log_level, LOG_LVL_DEBUG);
	assert_string_equal(l.c->syslog_ident, "a ; b \\ $pool");
	p = l.c->pools[0];
	assert_string_equal(p->cgi_root.items[0], "/srv/with space");
	assert_string_equal(p->access_format, "%R \"%m %r\" #not a comment");
	assert_string_equal(p->ping_response, "say \"pong\" \\ $pool www");
	assert_string_equal(conf_kv_get(&p->env, "HOME"), "/home/x");
	assert_string_equal(conf_kv_get(&p->module_param, "a=b"), "c");
	assert_null(p->ping_path);
	unload(&l);
}

static void test_ini_errors(void **state)
{
	static const struct { const char *text; int line; const char *err; } t[] = {
		{ "pm = static\n[global]\n" POOL_LINES, 1,
		  "'pm' appears before any section; start with [global] or [POOLNAME]" },
		{ "[global]\nlog_level debug\n" POOL_LINES, 2,
		  "expected 'key = value' after 'log_level'" },
		{ "[global]\n= debug\n" POOL_LINES, 2, "expected 'key = value'" },
		{ "[global]\n" POOL_LINES "ping.response = \"pong\n", 9,
		  "ping.response: unterminated quoted value" },
		{ "[global]\n" POOL_LINES "ping.response = 'pong\n", 9,
		  "ping.response: unterminated quoted value" },
		{ "[global]\n" POOL_LINES "ping.response = \"pong\" x\n", 9,
		  "ping.response: unexpected text after the closing quote" },
		{ "[global\n" POOL_LINES, 1, "expected ']' to close the section name" },
		{ "[global] x\n" POOL_LINES, 1, "unexpected text after the section name" },
		{ "[global]\n" POOL_LINES "[]\n", 9,
		  "invalid pool name '' (use letters, digits and . _ - @ + :)" },
		{ "[global]\n" POOL_LINES "[a b]\npm = 1\n", 9,
		  "invalid pool name 'a b' (use letters, digits and . _ - @ + :)" },
		{ "[global]\nerror_log = /var/log/$pool.log\n" POOL_LINES, 2,
		  "error_log: '$pool' can only be used in a pool section" },
		{ "[global]\n" POOL_LINES "env[X = 1\n", 9, "env: expected ']' after the key" },
		{ "[global]\n" POOL_LINES "listen = ${PORT\n", 9,
		  "listen: '${' must be followed by a variable name and '}'" },
		{ "[global]\n" POOL_LINES "listen = ${}\n", 9,
		  "listen: '${' must be followed by a variable name and '}'" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct loaded l;

		load(&l, t[i].text);
		if (l.d.errors != 1)
			fprintf(stderr, "case %zu:\n", i);
		expect_one_error(&l.d, t[i].line, t[i].err);
		unload(&l);
	}
}

/* Every error is reported, not only the first. */
static void test_all_errors_collected(void **state)
{
	struct loaded l;

	(void)state;
	load(&l, "[global]\nlog_level = loud\ndaemonize = perhaps\n"
		 "[www]\napp.type = cgi\ncgi.root = /srv\npm = static\npm.max_children = 0\n"
		 "listen = /run/w.sock\nuser = nobody\npm.max_childs = 3\nfoo\n");
	assert_int_equal(l.d.errors, 5);
	expect_diag(&l.d, 1, MAIN, 2,
		    "log_level: 'loud' is not one of debug, notice, warning, error, alert");
	expect_diag(&l.d, 1, MAIN, 3, "daemonize: 'perhaps' is not a valid boolean (use yes or no)");
	expect_diag(&l.d, 1, MAIN, 8, "pm.max_children: '0' must be a positive integer");
	expect_diag(&l.d, 1, MAIN, 11,
		    "unknown entry 'pm.max_childs' (did you mean 'pm.max_children'?)");
	expect_diag(&l.d, 1, MAIN, 12, "expected 'key = value' after 'foo'");
	/* refused at its line, not also "not set" at the section's */
	assert_int_equal(find_diag(&l.d, 1, "pool www: pm.max_children is not set; it must be a "
				   "positive integer"), -1);
	unload(&l);
}

static void test_suggestions(void **state)
{
	(void)state;
	assert_string_equal(conf_suggest("pm.max_childs", 0), "pm.max_children");
	assert_string_equal(conf_suggest("lisen", 0), "listen");
	assert_string_equal(conf_suggest("includ", 0), "include");
	assert_string_equal(conf_suggest("PM.MAX_CHILDREN", 0), "pm.max_children");
	assert_null(conf_suggest("zzzzzzzz", 0));
}

/* ---- ${VAR}, env[X] = $X, $pool, $prefix ---- */

static void test_env_expansion(void **state)
{
	static char *const environ_[] = { "PORT=9123", "HOME=/home/fpm", "EMPTY=", NULL };
	struct loaded l;
	const struct pool_conf *p;

	(void)state;
	opts_default(&l.opt);
	l.opt.environ = environ_;
	load_fs(&l, MAIN, "[global]\nsyslog.ident = id-${PORT}\n"
		"[www]\napp.type = cgi\ncgi.root = /srv\npm = static\npm.max_children = 1\n"
		"listen = \"127.0.0.1:${PORT}\"\nuser = nobody\n"
		"env[HOME] = $HOME\nenv[MISSING] = $NOPE\nenv[LIT] = '$HOME'\n"
		"env[ESC] = \"\\$HOME\"\nenv[BOTH] = ${HOME}/$pool\nenv[E] = x${EMPTY}y\n"
		"env[U] = ${UNSET_VAR}\nchdir = ${HOME}\n", NULL, 0);
	expect_no_errors(&l.d);
	p = l.c->pools[0];
	assert_string_equal(l.c->syslog_ident, "id-9123");
	assert_string_equal(p->listen, "127.0.0.1:9123");
	assert_string_equal(conf_kv_get(&p->env, "HOME"), "/home/fpm");
	assert_string_equal(conf_kv_get(&p->env, "MISSING"), "");
	assert_string_equal(conf_kv_get(&p->env, "LIT"), "$HOME");
	assert_string_equal(conf_kv_get(&p->env, "ESC"), "$HOME");
	assert_string_equal(conf_kv_get(&p->env, "BOTH"), "/home/fpm/www");
	assert_string_equal(conf_kv_get(&p->env, "E"), "xy");
	assert_string_equal(conf_kv_get(&p->env, "U"), "");
	assert_string_equal(p->chdir, "/home/fpm");
	expect_diag(&l.d, 0, MAIN, 11,
		    "env[MISSING]: environment variable 'NOPE' is not set; using an empty value");
	expect_diag(&l.d, 0, MAIN, 16,
		    "env: environment variable 'UNSET_VAR' is not set; using an empty value");
	unload(&l);
}

static void test_env_repeated_key(void **state)
{
	struct loaded l;

	(void)state;
	load(&l, "[global]\n" POOL_LINES "env[A] = 1\nenv[B] = 2\nenv[A] = 3\n");
	expect_no_errors(&l.d);
	assert_int_equal(l.c->pools[0]->env.n, 2);
	assert_string_equal(l.c->pools[0]->env.items[0].key, "A");
	assert_string_equal(l.c->pools[0]->env.items[0].value, "3");
	assert_int_equal(l.c->pools[0]->env.items[0].line, 11);
	unload(&l);
}

static void test_pool_prefix(void **state)
{
	struct loaded l;
	const struct pool_conf *p;

	(void)state;
	load(&l, "[global]\n" POOL_LINES "prefix = /srv/$pool\nchroot = $prefix\n"
		 "chdir = $prefix/htdocs\naccess.log = log/access.log\nslowlog = /abs/slow\n"
		 "request_slowlog_timeout = 1\n");
	expect_no_errors(&l.d);
	p = l.c->pools[0];
	assert_string_equal(p->prefix, "/srv/www");
	assert_string_equal(p->chroot, "/srv/www");
	assert_string_equal(p->chdir, "/srv/www/htdocs");
	assert_string_equal(p->access_log, "/srv/www/log/access.log");
	assert_string_equal(p->slowlog, "/abs/slow");
	unload(&l);

	/* an escaped $prefix is literal, and then chroot is not absolute */
	load(&l, "[global]\n" POOL_LINES "chroot = \"\\$prefix\"\n");
	expect_one_error(&l.d, 9, "chroot: '$prefix' must be an absolute path");
	unload(&l);

	/* the pool prefix may come after chroot in the section */
	load(&l, "[global]\n" POOL_LINES "chroot = $prefix/j\nprefix = rel\n");
	expect_no_errors(&l.d);
	assert_string_equal(l.c->pools[0]->chroot, "/opt/fpmd/rel/j");
	unload(&l);
}

/* ---- include ---- */

static void test_include_basic(void **state)
{
	static const struct mem_file files[] = {
		{ "/opt/fpmd/pool.d/b.conf",
		  "[b]\napp.type = php\nuser = nobody\npm = static\npm.max_children = 1\n"
		  "listen = /run/b.sock\n" },
		{ "/opt/fpmd/pool.d/a.conf",
		  "[a]\napp.type = php\nuser = nobody\npm = static\npm.max_children = 1\n"
		  "listen = /run/$pool.sock\n" },
		{ "/opt/fpmd/pool.d/a.txt", "garbage\n" },
	};
	struct loaded l;

	(void)state;
	opts_default(&l.opt);
	load_fs(&l, MAIN, "[global]\ninclude = pool.d/*.conf\n", files, 3);
	expect_no_errors(&l.d);
	assert_int_equal(l.c->npools, 2);
	assert_string_equal(l.c->pools[0]->name, "a");   /* glob order */
	assert_string_equal(l.c->pools[0]->file, "/opt/fpmd/pool.d/a.conf");
	assert_string_equal(l.c->pools[0]->listen, "/run/a.sock");
	assert_string_equal(l.c->pools[1]->name, "b");
	unload(&l);

	/* without a prefix, relative to the main file's directory */
	opts_default(&l.opt);
	l.opt.prefix = NULL;
	load_fs(&l, "/opt/fpmd/main.conf", "[global]\ninclude = pool.d/a.conf\n", files, 3);
	expect_no_errors(&l.d);
	assert_int_equal(l.c->npools, 1);
	unload(&l);
}

static void test_include_error_location(void **state)
{
	static const struct mem_file files[] = {
		{ "/etc/fpmd/pool.d/www.conf",
		  "; the www pool\n[www]\napp.type = php\nuser = nobody\npm = static\n"
		  "pm.max_children = -4\nlisten = /run/b.sock\n" },
	};
	struct loaded l;

	(void)state;
	opts_default(&l.opt);
	load_fs(&l, MAIN, "[global]\ninclude = /etc/fpmd/pool.d/*.conf\nlog_level = foo\n",
		files, 1);
	assert_int_equal(l.d.errors, 2);
	expect_diag(&l.d, 1, "/etc/fpmd/pool.d/www.conf", 6,
		    "pm.max_children: '-4' must be a positive integer");
	/* the include opened [www]: the main file's next line is in that pool */
	expect_diag(&l.d, 1, MAIN, 3, "'log_level' belongs in [global], not in pool www");
	unload(&l);
}

static void test_include_no_match_and_unreadable(void **state)
{
	struct loaded l;

	(void)state;
	load(&l, "[global]\ninclude = /nowhere/*.conf\n" POOL_LINES);
	expect_no_errors(&l.d);
	expect_diag(&l.d, 0, MAIN, 2, "include '/nowhere/*.conf' matched no files");
	unload(&l);
}

/* a.conf includes b.conf includes ... : five levels are fine, six are not. */
static void test_include_depth(void **state)
{
	static const struct mem_file ok[] = {
		{ "/i/1.conf", "include = /i/2.conf\n" },
		{ "/i/2.conf", "include = /i/3.conf\n" },
		{ "/i/3.conf", "include = /i/4.conf\n" },
		{ "/i/4.conf", "include = /i/5.conf\n" },
		{ "/i/5.conf", "[global]\nlog_level = debug\n" },
	};
	static const struct mem_file loop[] = {
		{ "/i/self.conf", "include = /i/self.conf\n" },
	};
	struct loaded l;

	(void)state;
	opts_default(&l.opt);
	load_fs(&l, MAIN, "include = /i/1.conf\n" POOL_LINES, ok, 5);
	expect_no_errors(&l.d);
	assert_int_equal(l.c->log_level, LOG_LVL_DEBUG);
	unload(&l);

	opts_default(&l.opt);
	load_fs(&l, MAIN, "[global]\ninclude = /i/self.conf\n" POOL_LINES, loop, 1);
	expect_one_error(&l.d, 1, "include '/i/self.conf': too many nested includes (at most 5)");
	assert_string_equal(l.d.items[0].file, "/i/self.conf");
	assert_int_equal(l.fs.reads, 5);
	unload(&l);
}

/* ---- conf_dump round trips ---- */

static void round_trip(const char *text, char *const *environ_)
{
	struct loaded a, b, c;
	char *d1, *d2, *d3;

	opts_default(&a.opt);
	a.opt.environ = environ_;
	load_fs(&a, MAIN, text, NULL, 0);
	expect_no_errors(&a.d);
	d1 = conf_dump(a.c);
	assert_non_null(d1);

	opts_default(&b.opt);
	load_fs(&b, "/tmp/dump.conf", d1, NULL, 0);
	if (b.d.errors)
		fprintf(stderr, "%s", d1);
	expect_no_errors(&b.d);
	d2 = conf_dump(b.c);
	assert_string_equal(d1, d2);
	assert_true(conf_equal(a.c, b.c));

	opts_default(&c.opt);
	load_fs(&c, "/tmp/dump2.conf", d2, NULL, 0);
	d3 = conf_dump(c.c);
	assert_string_equal(d2, d3);
	assert_true(conf_equal(b.c, c.c));

	free(d1);
	free(d2);
	free(d3);
	unload(&a);
	unload(&b);
	unload(&c);
}

static void test_round_trip(void **state)
{
	static char *const environ_[] = { "WEIRD=a\"b\\c$pool ${X} ;d", "DOLLAR=$HOME", NULL };

	(void)state;
	round_trip("[global]\n" POOL_LINES, NULL);
	round_trip("[global]\npid = run/x.pid\nerror_log = syslog\nlog_level = debug\n"
		   "log_limit = 0\nlog_buffering = no\nlog_format = json\n"
		   "emergency_restart_threshold = 3\nemergency_restart_interval = 1m\n"
		   "process_control_timeout = 0\nprocess.max = 9\nprocess.priority = -3\n"
		   "daemonize = no\nrlimit_files = 4096\nrlimit_core = unlimited\n"
		   "events.mechanism = poll\nsystemd_interval = 0\nsyslog.facility = local1\n"
		   "syslog.ident = \"my ident\"\n"
		   "[www]\napp.type = cgi\ncgi.root = /srv/a\ncgi.root = \"/srv/b c\"\n"
		   "cgi.allow[] = /usr/lib/cgit/cgit.cgi\ncgi.interpreter = /usr/bin/env\n"
		   "cgi.interpreter[.py] = /usr/bin/python3\ncgi.stderr = both\n"
		   "pm = dynamic\npm.max_children = 10\npm.min_spare_servers = 2\n"
		   "pm.max_spare_servers = 5\npm.max_spawn_rate = 4\npm.process_idle_timeout = 1m\n"
		   "pm.max_requests = 100\npm.max_requests_jitter = 10\npm.status_path = /status\n"
		   "pm.status_listen = 127.0.0.1:9001\nping.path = /ping\nping.response = \"\"\n"
		   "listen = [::1]:9000\nlisten.backlog = 128\nlisten.owner = www-data\n"
		   "listen.group = www-data\nlisten.mode = 0600\nlisten.acl_users = a,b\n"
		   "listen.acl_groups = c\nlisten.allowed_clients = 127.0.0.1\nuser = nobody\n"
		   "group = nogroup\nprefix = /srv/$pool\nprocess.priority = 5\n"
		   "process.dumpable = yes\naccess.log = log/$pool.log\n"
		   "access.format = \"%R - %u %t \\\"%m %r%Q%q\\\" %s %f %{mili}d %{kilo}M %C%%\"\n"
		   "access.suppress_path[] = /ping\naccess.suppress_path[] = /status\n"
		   "slowlog = slow.log\nrequest_slowlog_timeout = 5s\n"
		   "request_slowlog_trace_depth = 7\nrequest_terminate_timeout = 1h\n"
		   "request_terminate_timeout_track_finished = yes\nrlimit_files = 100\n"
		   "rlimit_core = 0\nchroot = $prefix\nchdir = /\ncatch_workers_output = yes\n"
		   "decorate_workers_output = no\nclear_env = no\n"
		   "security.limit_extensions = \".cgi .x\"\nenv[PATH] = /bin\n"
		   "env[W] = $WEIRD\nenv[D] = $DOLLAR\nenv[Q] = \"x;y\"\n"
		   "php_value[a] = 1\nphp_flag[b] = on\nphp_admin_value[c] = \"x y\"\n"
		   "php_admin_flag[d] = off\nmodule.param[k] = v\nrequest.max_params_size = 3000\n"
		   "request.max_body_size = 1G\n"
		   "[second]\napp.type = module\nmodule.path = /usr/lib/m.so\nuser = nobody\n"
		   "pm = ondemand\npm.max_children = 3\nlisten = 9002\nsecurity.limit_extensions =\n"
		   "[third]\napp.type = exec\nexec.command = \"/bin/app --x='1'\"\nuser = nobody\n"
		   "pm = static\npm.max_children = 1\nlisten = /run/third.sock\n"
		   "[fourth]\napp.type = php\nuser = nobody\npm = static\npm.max_children = 1\n"
		   "listen = /run/4.sock\nphp_admin_value[open_basedir] = /srv:/tmp\n",
		   environ_);
}

/* ---- Debian's php-fpm 8.2 configuration, plus app.type ---- */

/* /etc/php/8.2/fpm/php-fpm.conf without its comments */
static const char debian_main[] =
	"[global]\n"
	"pid = /run/php/php8.2-fpm.pid\n"
	"error_log = /var/log/php8.2-fpm.log\n"
	"include=/etc/php/8.2/fpm/pool.d/*.conf\n";

/* /etc/php/8.2/fpm/pool.d/www.conf without its comments, and app.type */
static const char debian_www[] =
	"[www]\n"
	"user = www-data\n"
	"group = www-data\n"
	"listen = /run/php/php8.2-fpm.sock\n"
	"listen.owner = www-data\n"
	"listen.group = www-data\n"
	"pm = dynamic\n"
	"pm.max_children = 5\n"
	"pm.start_servers = 2\n"
	"pm.min_spare_servers = 1\n"
	"pm.max_spare_servers = 3\n"
	"app.type = php\n";

static void test_debian_php_fpm(void **state)
{
	static const struct mem_file files[] = {
		{ "/etc/php/8.2/fpm/pool.d/www.conf", debian_www },
	};
	struct loaded l;
	const struct pool_conf *p;

	(void)state;
	opts_default(&l.opt);
	l.opt.prefix = NULL;
	load_fs(&l, "/etc/php/8.2/fpm/php-fpm.conf", debian_main, files, 1);
	expect_no_errors(&l.d);
	assert_int_equal(l.d.n, 0);
	assert_string_equal(l.c->pid, "/run/php/php8.2-fpm.pid");
	assert_string_equal(l.c->error_log, "/var/log/php8.2-fpm.log");
	assert_int_equal(l.c->npools, 1);
	p = l.c->pools[0];
	assert_string_equal(p->name, "www");
	assert_string_equal(p->file, "/etc/php/8.2/fpm/pool.d/www.conf");
	assert_string_equal(p->user, "www-data");
	assert_string_equal(p->listen, "/run/php/php8.2-fpm.sock");
	assert_string_equal(p->listen_owner, "www-data");
	assert_int_equal(p->pm, PM_DYNAMIC);
	assert_int_equal(p->pm_max_children, 5);
	assert_int_equal(p->pm_start_servers, 2);
	assert_int_equal(p->pm_min_spare_servers, 1);
	assert_int_equal(p->pm_max_spare_servers, 3);
	assert_int_equal(p->app_type, APP_PHP);
	unload(&l);
}

/* ---- the default conf_io, against real files ---- */

static void test_default_io(void **state)
{
	char dir[] = "/tmp/test_conf.XXXXXX", path[64], inc[64];
	struct conf_diags d = { 0 };
	struct conf_options o;
	struct fpmd_conf *c;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	snprintf(inc, sizeof(inc), "%s/www.conf", dir);
	f = fopen(path, "w");
	fprintf(f, "[global]\ninclude = w*.conf\n");
	fclose(f);
	f = fopen(inc, "w");
	fprintf(f, POOL_LINES);
	fclose(f);
	opts_default(&o);
	o.prefix = NULL;
	c = conf_load(path, &o, &conf_io_default, &d);
	assert_non_null(c);
	expect_no_errors(&d);
	assert_int_equal(c->npools, 1);
	assert_string_equal(c->pools[0]->file, inc);
	conf_free(c);
	conf_diags_free(&d);

	c = conf_load("/nonexistent/fpmd.conf", &o, NULL, &d);
	assert_non_null(c);
	assert_int_equal(d.errors, 1);
	assert_string_equal(d.items[0].msg,
			    "cannot read '/nonexistent/fpmd.conf': No such file or directory");
	conf_free(c);
	conf_diags_free(&d);
	unlink(inc);
	unlink(path);
	rmdir(dir);
}


/* A pool's params limits reach the FastCGI parser as written, the parser's defaults where unset. */
static void test_fcgi_limits(void **state)
{
	(void)state;
	struct loaded l;
	load(&l, "[a]\nlisten = /run/a.sock\nrequest.max_params_size = 1M\n"
		 "request.max_params_count = 100\nrequest.max_param_name_size = 2K\n"
		 "[b]\nlisten = /run/b.sock\n");
	struct fcgi_limits def, a, b;
	fcgi_limits_default(&def);
	assert_int_equal(l.c->npools, 2);
	const struct pool_conf *pa = l.c->pools[0], *pb = l.c->pools[1];
	assert_string_equal(pa->name, "a");
	conf_fcgi_limits(pa, &a);
	conf_fcgi_limits(pb, &b);
	assert_int_equal(a.max_params_size, 1024 * 1024);
	assert_int_equal(a.max_params_count, 100);
	assert_int_equal(a.max_name_len, 2048);
	/* [b] has the pool defaults the configuration gives, or the parser's */
	assert_int_equal(b.max_params_size, pb->request_max_params_size ? pb->request_max_params_size
									 : def.max_params_size);
	assert_int_equal(b.max_name_len, pb->request_max_param_name_size
						 ? pb->request_max_param_name_size : def.max_name_len);
	assert_int_equal(b.max_params_count, pb->request_max_params_count > 0
						     ? (size_t)pb->request_max_params_count
						     : def.max_params_count);
	assert_true(b.max_params_count >= 1024);
	unload(&l);
}

static void test_split_argv(void **state)
{
	(void)state;
	struct conf_str_list l;
	char err[64];
	assert_int_equal(conf_split_argv("/usr/bin/php-cgi8.2 -d 'a=b c' \"x \\\"y\\\"\" z\\ w", &l,
					 err, sizeof(err)), 0);
	assert_int_equal(l.n, 5);
	assert_string_equal(l.items[0], "/usr/bin/php-cgi8.2");
	assert_string_equal(l.items[1], "-d");
	assert_string_equal(l.items[2], "a=b c");
	assert_string_equal(l.items[3], "x \"y\"");
	assert_string_equal(l.items[4], "z w");
	assert_null(l.items[5]);
	conf_str_list_free(&l);
	assert_int_equal(conf_split_argv("  app   ", &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0], "app");
	conf_str_list_free(&l);
	assert_int_equal(conf_split_argv("app 'open", &l, err, sizeof(err)), -1);
	assert_string_equal(err, "unterminated ' quote");
	assert_int_equal(conf_split_argv("app \"open", &l, err, sizeof(err)), -1);
	assert_int_equal(conf_split_argv("   ", &l, err, sizeof(err)), -1);
	assert_string_equal(err, "empty command");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_argv),
		cmocka_unit_test(test_fcgi_limits),
		cmocka_unit_test(test_parse_bool),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_rlimit),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_diag_format),
		cmocka_unit_test(test_directives),
		cmocka_unit_test(test_every_directive_has_a_case),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_cross_field),
		cmocka_unit_test(test_start_servers_default),
		cmocka_unit_test(test_reopen_pool),
		cmocka_unit_test(test_root_options),
		cmocka_unit_test(test_options_override),
		cmocka_unit_test(test_limit_extensions),
		cmocka_unit_test(test_php_values_ignored_warning),
		cmocka_unit_test(test_noeffect_warnings),
		cmocka_unit_test(test_ini_syntax),
		cmocka_unit_test(test_ini_errors),
		cmocka_unit_test(test_all_errors_collected),
		cmocka_unit_test(test_repeats_in_one_file),
		cmocka_unit_test(test_suggestions),
		cmocka_unit_test(test_env_expansion),
		cmocka_unit_test(test_env_repeated_key),
		cmocka_unit_test(test_pool_prefix),
		cmocka_unit_test(test_include_basic),
		cmocka_unit_test(test_include_error_location),
		cmocka_unit_test(test_include_no_match_and_unreadable),
		cmocka_unit_test(test_include_depth),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_debian_php_fpm),
		cmocka_unit_test(test_default_io),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
