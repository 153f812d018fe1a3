/*
 * The directive table: every key fpmd accepts, where it belongs, how its
 * value is read, where it is stored and its default.  Reading, defaults,
 * dumping and comparing all walk this one table, so a directive added here
 * is complete.  The order of the table is the order of `fpmd -T`.
 *
 * Defaults are written as the text a user would put in the file and go
 * through the same parser, so a default can never be a value the parser
 * would refuse.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf_internal.h"

/* Enum fields are written through an int. */
_Static_assert(sizeof(enum conf_pm) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_app) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_cgi_stderr) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_php_ini_params) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_exec_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_php_zygote) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_php_worker_boot) == sizeof(int), "enum size");

#define NOSTORE SIZE_MAX

static const char *const facilities[] = {
	"auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog",
	"user", "uucp", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
	"local7", NULL
};
static const char *const mechanisms[] = {
	"epoll", "poll", "select", "kqueue", "/dev/poll", "port", NULL
};
static const char *const log_formats[] = { "plain", "json", NULL };
static const char *const cgi_stderrs[] = { "log", "client", "both", NULL };
static const char *const php_ini_params[] = { "user", "all", "none", NULL };
static const char *const exec_modes[] = { "managed", "direct", NULL };
static const char *const php_zygotes[] = { "shared", "pool", NULL };
static const char *const php_worker_boots[] = { "worker", "zygote", NULL };

static const char *check_log_limit(const char *value, long long num)
{
	(void)value;
	return num > 0 && num < 512 ? "must be 0 (unlimited) or at least 512" : NULL;
}

static const char *check_port(const char *p)
{
	long long port;

	if (conf_parse_int(p, 1, 65535, &port) < 0)
		return "has an invalid port (use 1 to 65535)";
	return NULL;
}

/* A unix socket path, PORT, IP:PORT or [IPV6]:PORT; whether it binds is for later. */
static const char *check_listen(const char *value, long long num)
{
	const char *colon;

	(void)num;
	if (value[0] == '/')
		return NULL;
	if (value[0] == '[') {
		const char *close = strchr(value, ']');

		if (!close || close == value + 1 || close[1] != ':')
			return "is not a valid address (use [IPV6]:PORT)";
		return check_port(close + 2);
	}
	if (value[strspn(value, "0123456789")] == '\0')
		return check_port(value);
	colon = strrchr(value, ':');
	if (colon) {
		if (colon == value)
			return "is not a valid address (use IP:PORT)";
		return check_port(colon + 1);
	}
	return NULL;
}

static const char *warn_mechanism(const char *value)
{
	return strcmp(value, "epoll") == 0 ? NULL : "fpmd always uses epoll on Linux";
}

#define G(f) offsetof(struct fpmd_conf, f)
#define P(f) offsetof(struct pool_conf, f)

const struct conf_directive conf_directives[] = {
	/* [global] */
	{ .name = "pid", .type = CT_STR, .flags = CF_GLOBAL | CF_PATH, .offset = G(pid) },
	{ .name = "error_log", .type = CT_STR, .flags = CF_GLOBAL | CF_PATH,
	  .offset = G(error_log), .def = "log/fpmd.log" },
	{ .name = "syslog.facility", .type = CT_CHOICE, .flags = CF_GLOBAL,
	  .offset = G(syslog_facility), .def = "daemon", .choices = facilities },
	{ .name = "syslog.ident", .type = CT_STR, .flags = CF_GLOBAL,
	  .offset = G(syslog_ident), .def = "fpmd" },
	{ .name = "log_level", .type = CT_ENUM, .flags = CF_GLOBAL, .offset = G(log_level),
	  .def = "notice", .choices = conf_level_choices },
	/* 0 = unlimited is fpmd's addition; php-fpm wants at least 512. */
	{ .name = "log_limit", .type = CT_INT, .flags = CF_GLOBAL, .offset = G(log_limit),
	  .def = "1024", .min = 0, .max = INT_MAX, .check = check_log_limit },
	{ .name = "log_buffering", .type = CT_BOOL, .flags = CF_GLOBAL,
	  .offset = G(log_buffering), .def = "yes" },
	{ .name = "log_format", .type = CT_CHOICE, .flags = CF_GLOBAL, .offset = G(log_format),
	  .def = "plain", .choices = log_formats },
	{ .name = "control_socket", .type = CT_STR, .flags = CF_GLOBAL | CF_PATH,
	  .offset = G(control_socket) },
	{ .name = "emergency_restart_threshold", .type = CT_INT, .flags = CF_GLOBAL,
	  .offset = G(emergency_restart_threshold), .def = "0", .min = 0, .max = INT_MAX },
	{ .name = "emergency_restart_interval", .type = CT_TIME, .flags = CF_GLOBAL,
	  .offset = G(emergency_restart_interval), .def = "0", .min = 0, .max = INT_MAX },
	/*
	 * php-fpm's default is 0, which lets a reload or stop cut running
	 * requests off at once; fpmd gives them 10 seconds.
	 */
	{ .name = "process_control_timeout", .type = CT_TIME, .flags = CF_GLOBAL,
	  .offset = G(process_control_timeout), .def = "10", .min = 0, .max = INT_MAX },
	/*
	 * For orchestrators, which send TERM and then remove the endpoint: TERM
	 * fails readiness and keeps serving this long, then finishes as QUIT.
	 * 0 keeps php-fpm's TERM for drop-in users.  A day at most: a typo in
	 * the unit must not make a stop hang.
	 */
	{ .name = "sigterm_drain", .type = CT_TIME, .flags = CF_GLOBAL,
	  .offset = G(sigterm_drain), .def = "0", .min = 0, .max = 86400 },
	{ .name = "process.max", .type = CT_INT, .flags = CF_GLOBAL, .offset = G(process_max),
	  .def = "0", .min = 0, .max = INT_MAX },
	{ .name = "process.priority", .type = CT_INT, .flags = CF_GLOBAL | CF_UNSET_OK,
	  .offset = G(process_priority), .min = -19, .max = 20 },
	{ .name = "daemonize", .type = CT_BOOL, .flags = CF_GLOBAL, .offset = G(daemonize),
	  .def = "yes" },
	{ .name = "rlimit_files", .type = CT_RLIMIT, .flags = CF_GLOBAL | CF_UNSET_OK,
	  .offset = G(rlimit_files) },
	{ .name = "rlimit_core", .type = CT_RLIMIT, .flags = CF_GLOBAL | CF_UNSET_OK,
	  .offset = G(rlimit_core) },
	{ .name = "events.mechanism", .type = CT_CHOICE, .flags = CF_GLOBAL,
	  .offset = G(events_mechanism), .def = "epoll", .choices = mechanisms,
	  .warn = warn_mechanism },
	{ .name = "systemd_interval", .type = CT_TIME, .flags = CF_GLOBAL,
	  .offset = G(systemd_interval), .def = "10", .min = 0, .max = INT_MAX },

	/* pools */
	{ .name = "app.type", .type = CT_ENUM, .flags = CF_POOL, .offset = P(app_type),
	  .min = 1, .choices = conf_app_choices },
	{ .name = "prefix", .type = CT_STR, .flags = CF_POOL | CF_PATH, .offset = P(prefix) },
	{ .name = "user", .type = CT_STR, .flags = CF_POOL, .offset = P(user) },
	{ .name = "group", .type = CT_STR, .flags = CF_POOL, .offset = P(group) },
	{ .name = "listen", .type = CT_STR, .flags = CF_POOL | CF_LISTEN, .offset = P(listen),
	  .check = check_listen },
	{ .name = "listen.backlog", .type = CT_INT, .flags = CF_POOL,
	  .offset = P(listen_backlog), .def = "-1", .min = -1, .max = INT_MAX },
	{ .name = "listen.owner", .type = CT_STR, .flags = CF_POOL, .offset = P(listen_owner) },
	{ .name = "listen.group", .type = CT_STR, .flags = CF_POOL, .offset = P(listen_group) },
	{ .name = "listen.mode", .type = CT_OCTAL, .flags = CF_POOL, .offset = P(listen_mode),
	  .def = "0660" },
	{ .name = "listen.acl_users", .type = CT_STR, .flags = CF_POOL,
	  .offset = P(listen_acl_users) },
	{ .name = "listen.acl_groups", .type = CT_STR, .flags = CF_POOL,
	  .offset = P(listen_acl_groups) },
	{ .name = "listen.allowed_clients", .type = CT_STR, .flags = CF_POOL,
	  .offset = P(listen_allowed_clients) },
	{ .name = "listen.setfib", .type = CT_STR, .flags = CF_POOL | CF_NOEFFECT,
	  .offset = NOSTORE, .note = "has no effect on this platform (it is FreeBSD's); ignored" },
	{ .name = "process.priority", .type = CT_INT, .flags = CF_POOL | CF_UNSET_OK,
	  .offset = P(process_priority), .min = -19, .max = 20 },
	{ .name = "process.dumpable", .type = CT_BOOL, .flags = CF_POOL,
	  .offset = P(process_dumpable), .def = "no" },
	{ .name = "process.start_timeout", .type = CT_TIME, .flags = CF_POOL,
	  .offset = P(process_start_timeout), .def = "60s", .min = 0, .max = 86400 },
	{ .name = "pm", .type = CT_ENUM, .flags = CF_POOL, .offset = P(pm),
	  .choices = conf_pm_choices },
	{ .name = "pm.max_children", .type = CT_INT, .flags = CF_POOL,
	  .offset = P(pm_max_children), .min = 1, .max = INT_MAX },
	{ .name = "pm.start_servers", .type = CT_INT, .flags = CF_POOL,
	  .offset = P(pm_start_servers), .min = 0, .max = INT_MAX },
	{ .name = "pm.min_spare_servers", .type = CT_INT, .flags = CF_POOL,
	  .offset = P(pm_min_spare_servers), .min = 0, .max = INT_MAX },
	{ .name = "pm.max_spare_servers", .type = CT_INT, .flags = CF_POOL,
	  .offset = P(pm_max_spare_servers), .min = 0, .max = INT_MAX },
	{ .name = "pm.max_spawn_rate", .type = CT_INT, .flags = CF_POOL,
	  .offset = P(pm_max_spawn_rate), .def = "32", .min = 1, .max = INT_MAX },
	{ .name = "pm.process_idle_timeout", .type = CT_TIME, .flags = CF_POOL,
	  .offset = P(pm_process_idle_timeout), .def = "10s", .min = 1, .max = INT_MAX },
	{ .name = "pm.max_requests", .type = CT_INT, .flags = CF_POOL,
	  .offset = P(pm_max_requests), .def = "0", .min = 0, .max = INT_MAX },
	{ .name = "pm.max_requests_jitter", .type = CT_INT, .flags = CF_POOL,
	  .offset = P(pm_max_requests_jitter), .def = "0", .min = 0, .max = INT_MAX },
	{ .name = "pm.max_memory", .type = CT_SIZE_LL, .flags = CF_POOL,
	  .offset = P(pm_max_memory), .def = "0", .min = 0, .max = LLONG_MAX },
	{ .name = "pm.max_idle_memory", .type = CT_SIZE_LL, .flags = CF_POOL,
	  .offset = P(pm_max_idle_memory), .def = "0", .min = 0, .max = LLONG_MAX },
	{ .name = "pm.status_path", .type = CT_STR, .flags = CF_POOL | CF_URI,
	  .offset = P(pm_status_path) },
	{ .name = "pm.status_listen", .type = CT_STR, .flags = CF_POOL | CF_LISTEN,
	  .offset = P(pm_status_listen), .check = check_listen },
	{ .name = "ping.path", .type = CT_STR, .flags = CF_POOL | CF_URI,
	  .offset = P(ping_path) },
	{ .name = "ping.response", .type = CT_STR, .flags = CF_POOL, .offset = P(ping_response),
	  .def = "pong" },
	{ .name = "access.log", .type = CT_STR, .flags = CF_POOL | CF_PATH,
	  .offset = P(access_log) },
	{ .name = "access.format", .type = CT_STR, .flags = CF_POOL, .offset = P(access_format),
	  .def = "%R - %u %t \"%m %r\" %s" },
	{ .name = "access.suppress_path", .type = CT_LIST, .flags = CF_POOL | CF_SLASH,
	  .offset = P(access_suppress_path) },
	{ .name = "slowlog", .type = CT_STR, .flags = CF_POOL | CF_PATH, .offset = P(slowlog) },
	{ .name = "request_slowlog_timeout", .type = CT_TIME, .flags = CF_POOL,
	  .offset = P(request_slowlog_timeout), .def = "0", .min = 0, .max = INT_MAX },
	{ .name = "request_slowlog_trace_depth", .type = CT_INT, .flags = CF_POOL,
	  .offset = P(request_slowlog_trace_depth), .def = "20", .min = 1, .max = INT_MAX },
	{ .name = "request_terminate_timeout", .type = CT_TIME, .flags = CF_POOL,
	  .offset = P(request_terminate_timeout), .def = "0", .min = 0, .max = INT_MAX },
	{ .name = "request_terminate_timeout_track_finished", .type = CT_BOOL, .flags = CF_POOL,
	  .offset = P(request_terminate_timeout_track_finished), .def = "no" },
	{ .name = "request_header_timeout", .type = CT_TIME, .flags = CF_POOL,
	  .offset = P(request_header_timeout), .def = "60s", .min = 0, .max = INT_MAX },
	{ .name = "request_body_timeout", .type = CT_TIME, .flags = CF_POOL,
	  .offset = P(request_body_timeout), .def = "60s", .min = 0, .max = INT_MAX },
	{ .name = "request_keepalive_timeout", .type = CT_TIME, .flags = CF_POOL,
	  .offset = P(request_keepalive_timeout), .def = "0", .min = 0, .max = INT_MAX },
	{ .name = "request_send_timeout", .type = CT_TIME, .flags = CF_POOL,
	  .offset = P(request_send_timeout), .def = "60s", .min = 0, .max = INT_MAX },
	{ .name = "rlimit_files", .type = CT_RLIMIT, .flags = CF_POOL | CF_UNSET_OK,
	  .offset = P(rlimit_files) },
	{ .name = "rlimit_core", .type = CT_RLIMIT, .flags = CF_POOL | CF_UNSET_OK,
	  .offset = P(rlimit_core) },
	{ .name = "chroot", .type = CT_STR, .flags = CF_POOL | CF_DOLLAR_PFX | CF_ABS,
	  .offset = P(chroot) },
	{ .name = "chdir", .type = CT_STR, .flags = CF_POOL | CF_DOLLAR_PFX, .offset = P(chdir) },
	{ .name = "catch_workers_output", .type = CT_BOOL, .flags = CF_POOL,
	  .offset = P(catch_workers_output), .def = "no" },
	{ .name = "decorate_workers_output", .type = CT_BOOL, .flags = CF_POOL,
	  .offset = P(decorate_workers_output), .def = "yes" },
	{ .name = "clear_env", .type = CT_BOOL, .flags = CF_POOL, .offset = P(clear_env),
	  .def = "yes" },
	{ .name = "security.limit_extensions", .type = CT_WORDS, .flags = CF_POOL,
	  .offset = P(security_limit_extensions) },
	{ .name = "apparmor_hat", .type = CT_STR, .flags = CF_POOL, .offset = P(apparmor_hat) },
	{ .name = "env", .type = CT_KV, .flags = CF_POOL | CF_ENV, .offset = P(env) },
	{ .name = "php_value", .type = CT_KV, .flags = CF_POOL | CF_PHP_ONLY,
	  .offset = P(php_value) },
	{ .name = "php_flag", .type = CT_KV, .flags = CF_POOL | CF_PHP_ONLY,
	  .offset = P(php_flag) },
	{ .name = "php_admin_value", .type = CT_KV, .flags = CF_POOL | CF_PHP_ONLY,
	  .offset = P(php_admin_value) },
	{ .name = "php_admin_flag", .type = CT_KV, .flags = CF_POOL | CF_PHP_ONLY,
	  .offset = P(php_admin_flag) },

	/* fpmd's own pool directives */
	{ .name = "cgi.root", .type = CT_LIST, .flags = CF_POOL | CF_ABS | CF_BARE,
	  .offset = P(cgi_root) },
	{ .name = "cgi.allow", .type = CT_LIST, .flags = CF_POOL | CF_ABS,
	  .offset = P(cgi_allow) },
	{ .name = "cgi.pass_params", .type = CT_WORDS, .flags = CF_POOL,
	  .offset = P(cgi_pass_params) },
	{ .name = "cgi.interpreter", .type = CT_KV, .flags = CF_POOL | CF_ABS | CF_KEY_OPTIONAL,
	  .offset = P(cgi_interpreter) },
	{ .name = "php.ini_params", .type = CT_ENUM, .flags = CF_POOL | CF_PHP_ONLY,
	  .offset = P(php_ini_params), .def = "user", .choices = php_ini_params },
	{ .name = "php.zygote", .type = CT_ENUM, .flags = CF_POOL | CF_PHP_ONLY,
	  .offset = P(php_zygote), .def = "shared", .choices = php_zygotes },
	{ .name = "php.worker", .type = CT_STR, .flags = CF_POOL | CF_PHP_ONLY | CF_ABS,
	  .offset = P(php_worker) },
	{ .name = "php.worker_boot", .type = CT_ENUM, .flags = CF_POOL | CF_PHP_ONLY,
	  .offset = P(php_worker_boot), .def = "worker", .choices = php_worker_boots },
	{ .name = "cgi.stderr", .type = CT_ENUM, .flags = CF_POOL, .offset = P(cgi_stderr),
	  .def = "log", .choices = cgi_stderrs },
	{ .name = "cgi.landlock", .type = CT_BOOL, .flags = CF_POOL, .offset = P(cgi_landlock),
	  .def = "no" },
	{ .name = "module.path", .type = CT_STR, .flags = CF_POOL | CF_ABS,
	  .offset = P(module_path) },
	{ .name = "module.param", .type = CT_KV, .flags = CF_POOL, .offset = P(module_param) },
	{ .name = "exec.command", .type = CT_STR, .flags = CF_POOL, .offset = P(exec_command) },
	{ .name = "exec.mode", .type = CT_ENUM, .flags = CF_POOL, .offset = P(exec_mode),
	  .def = "managed", .choices = exec_modes },
	{ .name = "request.max_params_size", .type = CT_SIZE_Z, .flags = CF_POOL,
	  .offset = P(request_max_params_size), .def = "128K", .min = 1024, .max = INT_MAX },
	{ .name = "request.max_params_count", .type = CT_INT, .flags = CF_POOL,
	  .offset = P(request_max_params_count), .def = "8192", .min = 16, .max = 1000000 },
	{ .name = "request.max_param_name_size", .type = CT_SIZE_Z, .flags = CF_POOL,
	  .offset = P(request_max_param_name_size), .def = "8K", .min = 64, .max = INT_MAX },
	{ .name = "request.max_body_size", .type = CT_SIZE_LL, .flags = CF_POOL,
	  .offset = P(request_max_body_size), .def = "0", .min = 0, .max = LLONG_MAX },
};

const size_t conf_ndirectives = sizeof(conf_directives) / sizeof(conf_directives[0]);

_Static_assert(sizeof(conf_directives) / sizeof(conf_directives[0]) <= CONF_MAX_DIRECTIVES,
	       "raise CONF_MAX_DIRECTIVES");

/* Finds a directive of a section (CF_GLOBAL, CF_POOL, 0 = either) by name. */
const struct conf_directive *conf_directive_find(const char *name, unsigned section_flag)
{
	for (size_t i = 0; i < conf_ndirectives; i++) {
		const struct conf_directive *d = &conf_directives[i];

		if ((!section_flag || (d->flags & section_flag)) && strcasecmp(d->name, name) == 0)
			return d;
	}
	return NULL;
}

size_t conf_directive_index(const struct conf_directive *d)
{
	return (size_t)(d - conf_directives);
}

int conf_directive_stores_nothing(const struct conf_directive *d)
{
	return d->offset == NOSTORE;
}

void *conf_field(void *base, const struct conf_directive *d)
{
	return (char *)base + d->offset;
}

const void *conf_cfield(const void *base, const struct conf_directive *d)
{
	return (const char *)base + d->offset;
}

static const char *uri_problem(const char *v)
{
	if (v[0] != '/')
		return "must start with '/'";
	if (v[strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_.~-")])
		return "may only contain letters, digits and / _ . ~ -";
	return NULL;
}

static const char *int_problem(const struct conf_directive *d, char *buf, size_t len)
{
	if (d->min == 1 && d->max == INT_MAX)
		return "must be a positive integer";
	if (d->min == 0 && d->max == INT_MAX)
		return "must be a non-negative integer";
	if (d->min == -1 && d->max == INT_MAX)
		return "must be -1 or a non-negative integer";
	snprintf(buf, len, "must be an integer between %lld and %lld", d->min, d->max);
	return buf;
}

static const char *choice_problem(const struct conf_directive *d, char *buf, size_t len)
{
	char *all = conf_join_choices(d->choices, (int)d->min);

	snprintf(buf, len, "is not one of %s", all ? all : "the accepted values");
	free(all);
	return buf;
}

/*
 * Reads text into d's field of base.  Returns NULL when stored, else the
 * end of an error message ("must be ...") — in buf when it needs a number.
 * Lists and key/value directives are not handled here.
 */
static const char *store(const struct conf_directive *d, void *base, const char *text,
			 char *buf, size_t len, int *oom)
{
	void *f = conf_field(base, d);
	long long n = 0;
	int i;

	switch (d->type) {
	case CT_STR:
	case CT_CHOICE: {
		char *s = NULL, **slot = f;

		/* An empty value for a string with a default means the default. */
		if (!*text && d->def)
			text = d->def;
		if (d->type == CT_CHOICE) {
			if (conf_parse_enum(text, d->choices, &i) < 0)
				return choice_problem(d, buf, len);
			text = d->choices[i];
		}
		if (*text) {
			s = strdup(text);
			if (!s) {
				*oom = 1;
				return NULL;
			}
		}
		free(*slot);
		*slot = s;
		return NULL;
	}
	case CT_BOOL:
		if (conf_parse_bool(text, &i) < 0)
			return "is not a valid boolean (use yes or no)";
		*(int *)f = i;
		return NULL;
	case CT_INT:
		if (conf_parse_int(text, d->min, d->max, &n) < 0)
			return int_problem(d, buf, len);
		*(int *)f = (int)n;
		return NULL;
	case CT_TIME:
		if (conf_parse_time(text, &i) < 0)
			return "is not a valid time (use a number with s, m, h or d)";
		if (i < d->min) {
			snprintf(buf, len, "must be at least %llds", d->min);
			return buf;
		}
		if (d->max && i > d->max) {
			snprintf(buf, len, "must be at most %llds", d->max);
			return buf;
		}
		*(int *)f = i;
		return NULL;
	case CT_SIZE_Z:
	case CT_SIZE_LL:
		if (conf_parse_size(text, &n) < 0)
			return "is not a valid size (use a number with K, M or G)";
		if (n < d->min) {
			snprintf(buf, len, "must be at least %lldK", d->min / 1024);
			return buf;
		}
		if (n > d->max) {
			snprintf(buf, len, "must be at most %lld", d->max);
			return buf;
		}
		if (d->type == CT_SIZE_Z)
			*(size_t *)f = (size_t)n;
		else
			*(long long *)f = n;
		return NULL;
	case CT_RLIMIT:
		if (conf_parse_rlimit(text, &n) < 0)
			return "must be a non-negative integer or 'unlimited'";
		*(long long *)f = n;
		return NULL;
	case CT_OCTAL:
		if (conf_parse_octal(text, &i) < 0)
			return "is not a valid octal mode (such as 0660)";
		*(int *)f = i;
		return NULL;
	case CT_ENUM:
		if (conf_parse_enum(text, d->choices, &i) < 0 || i < d->min)
			return choice_problem(d, buf, len);
		*(int *)f = i;
		return NULL;
	case CT_LIST:
	case CT_WORDS:
	case CT_KV:
		break;
	}
	return "cannot be stored";
}

/* Fills base with the defaults of the directives of one section. */
int conf_set_defaults(struct conf_ctx *x, void *base, unsigned section_flag)
{
	char buf[128];
	int oom = 0;

	for (size_t i = 0; i < conf_ndirectives; i++) {
		const struct conf_directive *d = &conf_directives[i];

		if (!(d->flags & section_flag) || d->offset == NOSTORE)
			continue;
		if (d->flags & CF_UNSET_OK) {
			if (d->type == CT_RLIMIT)
				*(long long *)conf_field(base, d) = CONF_UNSET;
			else
				*(int *)conf_field(base, d) = CONF_UNSET;
		}
		if (d->def && store(d, base, d->def, buf, sizeof(buf), &oom) != NULL)
			oom = 1;    /* a bad default is a bug; never silently */
	}
	if (oom)
		x->oom = 1;
	return oom ? -1 : 0;
}

/* Looks NAME up in the environment given in the options. */
static const char *env_lookup(const struct conf_ctx *x, const char *name)
{
	size_t n = strlen(name);

	if (!x->opt || !x->opt->environ)
		return NULL;
	for (char *const *e = x->opt->environ; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static int is_env_name(const char *s)
{
	if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
		return 0;
	for (s++; *s; s++)
		if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9')))
			return 0;
	return 1;
}

/* Path-shape rules shared by strings, lists and key/value values. */
static const char *shape_problem(const struct conf_directive *d, const char *v)
{
	if ((d->flags & CF_ABS) && v[0] != '/')
		return "must be an absolute path";
	if ((d->flags & CF_SLASH) && v[0] != '/')
		return "must start with '/'";
	if ((d->flags & CF_URI) && *v)
		return uri_problem(v);
	return NULL;
}

static void kv_apply(struct conf_ctx *x, const struct conf_directive *d, void *base,
		     const char *key, const struct conf_value *v)
{
	const char *value = v->text;

	if (d->flags & CF_ENV) {
		if (!is_env_name(key) && (!*key || strchr(key, '='))) {
			conf_diag_add(x, 1, v->file, v->line,
				      "env[%s]: '%s' is not a valid environment variable name", key,
				      key);
			return;
		}
		if (v->lead_dollar && is_env_name(value + 1)) {
			const char *from = env_lookup(x, value + 1);

			if (!from) {
				conf_diag_add(x, 0, v->file, v->line,
					      "env[%s]: environment variable '%s' is not set; "
					      "using an empty value", key, value + 1);
				from = "";
			} else if (strchr(from, '\n')) {
				conf_diag_add(x, 1, v->file, v->line,
					      "env[%s]: environment variable '%s' contains a newline",
					      key, value + 1);
				return;
			}
			value = from;
		}
	}
	if (*value || (d->flags & CF_ABS)) {
		const char *why = shape_problem(d, value);

		if (why) {
			conf_diag_add(x, 1, v->file, v->line, "%s[%s]: '%s' %s", d->name, key, value,
				      why);
			return;
		}
	}
	if (conf_kv_list_set(conf_field(base, d), key, value, v->quoted, v->file, v->line) < 0)
		x->oom = 1;
}

static void list_apply(struct conf_ctx *x, const struct conf_directive *d, void *base,
		       const struct conf_value *v)
{
	struct conf_str_list *l = conf_field(base, d);
	const char *p = v->text;

	if (d->type == CT_LIST) {
		const char *why = shape_problem(d, p);

		if (!*p && !why)
			why = "must not be empty";
		if (why && (d->flags & CF_SLASH) && *p != '/') {
			/* php-fpm's words, which scripts match */
			conf_diag_add(x, 1, v->file, v->line,
				      "Values provided to field '%s' must begin with '/'", d->name);
			return;
		}
		if (why) {
			conf_diag_add(x, 1, v->file, v->line, "%s: '%s' %s", d->name, p, why);
			return;
		}
		if (conf_str_list_add(l, p) < 0)
			x->oom = 1;
		return;
	}
	/* CT_WORDS: the value replaces the list. */
	conf_str_list_free(l);
	while (*p) {
		size_t n;
		char *w;

		p += strspn(p, " \t");
		n = strcspn(p, " \t");
		if (!n)
			break;
		w = conf_strndup(p, n);
		if (!w || conf_str_list_add(l, w) < 0)
			x->oom = 1;
		free(w);
		p += n;
	}
}

/*
 * Sets directive d from one `key = value` line in the current section (the
 * reader has already checked that d belongs there).
 */
/*
 * Where d was set, for later checks (conf_where).  A scalar given twice in
 * one file, same section, is worth a word: the first value is lost, and a
 * copied line is the likelier reason than a deliberate override (which
 * lives in another file, as pool.d/ overrides do).
 */
static void note_where(struct conf_ctx *x, const struct conf_directive *d,
		       const struct conf_value *v, int repeatable)
{
	struct conf_kv_list *where = x->sec == SEC_GLOBAL ? &x->c->where
							   : &x->c->pools[x->pool]->where;
	for (size_t i = 0; i < where->n && !repeatable; i++) {
		const struct conf_kv *kv = &where->items[i];
		if (strcmp(kv->key, d->name) != 0)
			continue;
		if (kv->file && v->file && strcmp(kv->file, v->file) == 0 && kv->line != v->line)
			conf_diag_add(x, 0, v->file, v->line, "%s is set again (first at line %d); the "
				      "last value counts", d->name, kv->line);
		break;
	}
	if (conf_kv_list_set(where, d->name, "", 0, v->file, v->line) < 0)
		x->oom = 1;
}

void conf_directive_apply(struct conf_ctx *x, const struct conf_directive *d,
			  const char *key, int has_brackets, const struct conf_value *v)
{
	void *base;
	unsigned char *set;
	size_t idx = conf_directive_index(d);
	const char *why;
	char buf[160];
	int oom = 0, dollar;

	if (x->sec == SEC_GLOBAL) {
		base = x->c;
		set = &x->gset[idx];
	} else {
		base = x->c->pools[x->pool];
		set = &x->ps[x->pool].set[idx];
	}

	if (d->type == CT_KV) {
		if (!has_brackets && !(d->flags & CF_KEY_OPTIONAL)) {
			conf_diag_add(x, 1, v->file, v->line,
				      "'%s' needs a key: %s[KEY] = value", d->name, d->name);
			return;
		}
		if (has_brackets && !*key && !(d->flags & CF_KEY_OPTIONAL)) {
			conf_diag_add(x, 1, v->file, v->line,
				      "You must provide a key for field '%s'", d->name);
			return;
		}
		kv_apply(x, d, base, key, v);
		*set |= CS_SET;
		note_where(x, d, v, 1);
		return;
	}
	if (d->type == CT_LIST) {
		if (has_brackets && *key) {
			conf_diag_add(x, 1, v->file, v->line,
				      "Keys provided to field '%s' are ignored", d->name);
			return;
		}
	} else if (has_brackets) {
		conf_diag_add(x, 1, v->file, v->line, "'%s' does not take a [key]", d->name);
		return;
	}

	if (d->flags & CF_NOEFFECT) {
		conf_diag_add(x, 0, v->file, v->line, "%s %s", d->name, d->note);
		return;
	}
	if (d->type == CT_LIST || d->type == CT_WORDS) {
		list_apply(x, d, base, v);
		*set |= CS_SET;
		note_where(x, d, v, d->type == CT_LIST);
		return;
	}

	dollar = (d->flags & CF_DOLLAR_PFX) && v->lead_dollar && strncmp(v->text, "$prefix", 7) == 0;
	why = *v->text && !dollar ? shape_problem(d, v->text) : NULL;
	if (!why && d->check && *v->text) {
		long long num = 0;

		if (d->type == CT_INT && conf_parse_int(v->text, d->min, d->max, &num) < 0)
			num = 0;
		why = d->check(v->text, num);
	}
	if (!why)
		why = store(d, base, v->text, buf, sizeof(buf), &oom);
	if (oom)
		x->oom = 1;
	if (why) {
		conf_diag_add(x, 1, v->file, v->line, "%s: '%s' %s", d->name, v->text, why);
		*set |= CS_REFUSED;
		return;
	}
	*set |= CS_SET;
	*set &= (unsigned char)~(CS_DOLLAR | CS_REFUSED);
	note_where(x, d, v, 0);
	if (dollar)
		*set |= CS_DOLLAR;
	if (d->warn && *v->text) {
		const char *w = d->warn(*(char **)conf_field(base, d));

		if (w)
			conf_diag_add(x, 0, v->file, v->line, "%s = %s: %s", d->name, v->text, w);
	}
}
