/*
 * Configuration: php-fpm.conf's INI dialect read into plain structs.
 *
 * Pure code apart from reading the files named by include globs (through a
 * small reader callback, so the tests can feed text): no logging, no exit.
 * Every problem found becomes one entry in a conf_diag list with file, line
 * and a message; loading goes on after an error so that `fpmd -t` reports
 * them all.
 *
 * Ownership: struct fpmd_conf owns everything below it (pools, strings,
 * key/value lists); conf_free() releases it all.
 */
#ifndef FPMD_CONF_H
#define FPMD_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONF_UNSET (-1)

/* A list of key = value pairs (env[], php_value[], module.param[], ...), in file order. */
struct conf_kv {
	char *key;
	char *value;
	int   quoted;    /* written in quotes (php_value[]: not read as a PHP INI expression) */
	char *file;      /* where it was set, for later diagnostics */
	int   line;
};

struct conf_kv_list {
	struct conf_kv *items;
	size_t n, cap;
};

struct conf_str_list {
	char **items;
	size_t n, cap;
};

enum conf_pm { PM_STATIC = 0, PM_DYNAMIC, PM_ONDEMAND };
enum conf_app { APP_NONE = 0, APP_CGI, APP_MODULE, APP_EXEC, APP_PHP };
enum conf_log_level { LOG_LVL_DEBUG = 0, LOG_LVL_NOTICE, LOG_LVL_WARNING, LOG_LVL_ERROR,
		      LOG_LVL_ALERT };

/* Where the stderr of a cgi script goes. */
enum conf_cgi_stderr { CGI_STDERR_LOG = 0, CGI_STDERR_CLIENT, CGI_STDERR_BOTH };
/* php.ini_params: what the PHP_VALUE / PHP_ADMIN_VALUE FastCGI params may do */
enum conf_php_ini_params { PHP_INI_PARAMS_USER = 0, PHP_INI_PARAMS_ALL, PHP_INI_PARAMS_NONE };
/* exec pools: each worker relays to its program, or the programs accept on the pool socket. */
enum conf_exec_mode { EXEC_MANAGED = 0, EXEC_DIRECT };
/* php pools: workers from the PHP all shared pools share (php-fpm's model), or the pool's own */
enum conf_php_zygote { PHP_ZYGOTE_SHARED = 0, PHP_ZYGOTE_POOL };
/* php.worker: the application boots in each worker, or once in the pool's zygote */
enum conf_php_worker_boot { PHP_WORKER_BOOT_WORKER = 0, PHP_WORKER_BOOT_ZYGOTE };

struct pool_conf {
	char *name;
	char *file;                 /* where the section first opened */
	int   line;
	/* directive name -> where it was last set (file, line; value unused): conf_where() */
	struct conf_kv_list where;

	char *prefix;
	char *user, *group;
	char *listen;               /* as written: path, port, ip:port, [ipv6]:port */
	int   listen_backlog;       /* -1 = kernel's somaxconn */
	char *listen_owner, *listen_group;
	int   listen_mode;          /* octal value, default 0660 */
	char *listen_acl_users, *listen_acl_groups;
	char *listen_allowed_clients;  /* comma separated, NULL = any */
	int   process_priority;     /* CONF_UNSET = leave */
	int   process_dumpable;
	/* a worker not ready this long after its start (a module's init, PHP's, the
	 * program's) is killed, a failed start; 0 = wait for ever */
	int   process_start_timeout;

	enum conf_pm pm;
	int   pm_max_children;
	int   pm_start_servers;
	int   pm_min_spare_servers;
	int   pm_max_spare_servers;
	int   pm_max_spawn_rate;    /* default 32 */
	int   pm_process_idle_timeout; /* seconds, default 10 */
	int   pm_max_requests;
	int   pm_max_requests_jitter;
	long long pm_max_memory;      /* bytes; 0 = no limit (recycle after a request over it) */
	long long pm_max_idle_memory; /* bytes; 0 = no limit (recycle an idle worker over it) */
	char *pm_status_path;
	char *pm_status_listen;
	char *ping_path;
	char *ping_response;        /* default "pong" */

	char *access_log;
	char *access_format;        /* default "%R - %u %t \"%m %r\" %s" */
	struct conf_str_list access_suppress_path;
	char *slowlog;
	int   request_slowlog_timeout;   /* seconds (ms precision is not offered, as php-fpm) */
	int   request_slowlog_trace_depth;
	int   request_terminate_timeout;
	int   request_terminate_timeout_track_finished;
	/* fpmd's read timeouts, seconds, 0 = off (nginx's client_header_timeout,
	 * client_body_timeout and keepalive_timeout; see docs/configuration.md) */
	int   request_header_timeout;    /* accept (a kept connection: first byte) → PARAMS complete */
	int   request_body_timeout;      /* longest wait for the next piece of the body */
	int   request_keepalive_timeout; /* a kept connection idle between requests */
	int   request_send_timeout;      /* longest wait for the client to take output (nginx's send_timeout) */
	long long rlimit_files;     /* CONF_UNSET = leave; -2 = unlimited */
	long long rlimit_core;
	char *chroot;
	char *chdir;
	int   catch_workers_output;
	int   decorate_workers_output;  /* default yes */
	int   clear_env;                /* default yes */
	struct conf_str_list security_limit_extensions;
	char *apparmor_hat;         /* workers change to PROFILE//HAT */
	struct conf_kv_list env;
	struct conf_kv_list php_value, php_flag, php_admin_value, php_admin_flag;

	/* fpmd's own */
	enum conf_app app_type;
	struct conf_str_list cgi_root;
	struct conf_str_list cgi_allow;
	struct conf_str_list cgi_pass_params;  /* more FastCGI params a script may see (cgi/cgi_env.c) */
	struct conf_kv_list cgi_interpreter;   /* key = ".py" (or "" for the default), value = path */
	enum conf_cgi_stderr cgi_stderr;
	int   cgi_landlock;             /* Landlock: reads and exec limited (handlers/cgi_landlock.c) */
	char *module_path;
	struct conf_kv_list module_param;
	char *exec_command;
	enum conf_php_ini_params php_ini_params;
	enum conf_php_zygote php_zygote;       /* default shared */
	char *php_worker;               /* the application's worker script; NULL: a script per request */
	enum conf_php_worker_boot php_worker_boot;
	enum conf_exec_mode exec_mode;
	size_t request_max_params_size; /* default 128 KiB */
	int   request_max_params_count; /* default 8192: what nginx's header buffers can carry */
	size_t request_max_param_name_size; /* default 8 KiB: nginx's large_client_header_buffers line */
	long long request_max_body_size; /* 0 = unlimited */
};

/*
 * Descriptors a cgi worker needs (handlers/cgi.c).  A worker serves one
 * connection at a time, so the count is fixed: up to 8 held between
 * requests (0-5 and 7 of the worker layout, the epoll set it waits on), 1 for the
 * connection, CGI_REQUEST_FDS for a request (the script, opened to check and
 * execute it, and three pipes).  A lower rlimit_files is refused by fpmd -t
 * and at start, so a cgi worker never accepts a request it cannot run.
 */
#define CGI_REQUEST_FDS 7
#define CGI_WORKER_MIN_FILES (8 + 1 + CGI_REQUEST_FDS)

struct fpmd_conf {
	char *file;                 /* the main config file, absolute */
	char *prefix;               /* -p, or the directory fpmd was installed into */
	struct conf_kv_list where;  /* [global] directives: where each was last set */

	char *pid;
	char *error_log;            /* path, "syslog", or NULL = stderr-only */
	char *syslog_facility;
	char *syslog_ident;
	enum conf_log_level log_level;
	int   log_limit;            /* 0 = unlimited; default 1024 */
	int   log_buffering;
	int   emergency_restart_threshold;
	int   emergency_restart_interval;  /* seconds */
	int   process_control_timeout;     /* seconds; fpmd's default is 10 */
	int   sigterm_drain;               /* seconds; 0 = php-fpm's TERM (stop now) */
	int   process_max;
	int   process_priority;     /* CONF_UNSET = leave */
	int   daemonize;
	long long rlimit_files;
	long long rlimit_core;
	char *events_mechanism;
	int   systemd_interval;
	char *log_format;           /* "plain" (php-fpm's) or "json" */
	char *control_socket;       /* fpmctl's unix socket (mode 0600); NULL = none */

	struct pool_conf **pools;
	size_t npools;
};

/* One diagnostic.  severity: 0 = warning, 1 = error. */
struct conf_diag {
	int   severity;             /* 1 error, 0 warning, -1 notice */
	char *file;                 /* NULL when not tied to a place */
	int   line;
	char *msg;                  /* "[FILE:LINE] " is NOT included; conf_diag_format adds it */
};

struct conf_diags {
	struct conf_diag *items;
	size_t n, cap;
	size_t errors;
};

/* Options from the command line that change how the files are read. */
struct conf_options {
	const char *prefix;         /* -p */
	const char *pid;            /* -g, overrides `pid` */
	int daemonize;              /* -D = 1, -F = 0, CONF_UNSET = from the file */
	int allow_root;             /* -R */
	int running_as_root;        /* geteuid() == 0, passed in so the parser stays pure */
	char *const *environ;       /* for ${VAR} and env[X] = $X; NULL = none */
	struct conf_kv_list php_defines; /* -d key=value, kept for php pools */
	const char *php_ini;        /* -c: php.ini file or directory */
	const char *version;        /* fpmd's, for -v */
	int php_ini_ignore;         /* -n: no php.ini at all */
	const char *php_rc;         /* $PHPRC and $PHP_INI_SCAN_DIR at start (a pool's */
	const char *php_ini_scan_dir; /* environment may be cleared before PHP starts) */
};

/*
 * Reads a file's whole text.  Returns a malloc'ed NUL-terminated buffer and
 * its length, or NULL with errno set.  The default reads from disk.
 */
typedef char *(*conf_read_fn)(const char *path, size_t *len, void *ctx);

/*
 * Expands an include pattern into a sorted list of paths (glob(3) order).
 * Returns 0 and fills out (caller frees with conf_str_list_free), or -1.
 */
typedef int (*conf_glob_fn)(const char *pattern, struct conf_str_list *out, void *ctx);

struct conf_io {
	conf_read_fn read;
	conf_glob_fn glob;
	void *ctx;
};

/* Default I/O: open/read and glob(3). */
extern const struct conf_io conf_io_default;

/*
 * Loads path (and its includes) into a new configuration, applies defaults,
 * then validates every pool and the global section.  Returns the config
 * (even when diagnostics contain errors: the caller looks at diags->errors)
 * or NULL only when memory runs out.
 */
struct fpmd_conf *conf_load(const char *path, const struct conf_options *opt,
			    const struct conf_io *io, struct conf_diags *diags);

/* Same from text in memory; name is used as the file name in diagnostics. */
struct fpmd_conf *conf_load_string(const char *name, const char *text,
				   const struct conf_options *opt,
				   const struct conf_io *io, struct conf_diags *diags);

void conf_free(struct fpmd_conf *c);

/*
 * Writes the effective configuration, defaults included, in the same INI
 * syntax (it reads back to the same configuration).  Returns a malloc'ed
 * string.
 */
char *conf_dump(const struct fpmd_conf *c);

/*
 * 1 when a and b hold the same settings (every directive's value, pool names
 * and order, the prefix); where each was read from is not compared.
 */
int conf_equal(const struct fpmd_conf *a, const struct fpmd_conf *b);

/* Formats "[FILE:LINE] msg" (or just msg) into a malloc'ed string. */
char *conf_diag_format(const struct conf_diag *d);
void conf_diags_free(struct conf_diags *d);

void conf_kv_list_free(struct conf_kv_list *l);
void conf_str_list_free(struct conf_str_list *l);
const char *conf_kv_get(const struct conf_kv_list *l, const char *key);
/*
 * Where a directive was last set, from a pool's or [global]'s where list:
 * *file and *line, or file and line (the section's place) when it was not
 * written (a default).
 */
void conf_where(const struct conf_kv_list *where, const char *directive, const char *file,
		int line, const char **file_out, int *line_out);
/*
 * A program's file name (len bytes at base) is php-cgi's: php-cgi, php-cgi8.2, or
 * Debian's /usr/lib/cgi-bin/php8.2 (php and a version only: the CLI serves no FastCGI).
 */
int conf_names_php_cgi(const char *base, size_t len);

const char *conf_pm_name(enum conf_pm pm);
const char *conf_app_name(enum conf_app app);
const char *conf_log_level_name(enum conf_log_level l);

/* Parsers for values, shared with the tests: 0 ok, -1 invalid. */
int conf_parse_bool(const char *s, int *out);
int conf_parse_time(const char *s, int *seconds);      /* 10, 10s, 5m, 2h, 1d */
int conf_parse_size(const char *s, long long *bytes);  /* 512, 4K, 10M, 1G */
int conf_parse_rlimit(const char *s, long long *out);  /* number or "unlimited" (-2) */

/*
 * exec.command as words, without a shell ('…', "…", backslash).  Returns 0
 * and a NULL-terminated list (out->items), or -1 with a reason in err.
 */
int conf_split_argv(const char *s, struct conf_str_list *out, char *err, size_t errlen);

struct fcgi_limits;
/*
 * The pool's request.max_params_* as the FastCGI parser takes them (unset:
 * its defaults).  Pure, so the worker, status_listen and the fuzzers share it.
 */
void conf_fcgi_limits(const struct pool_conf *pc, struct fcgi_limits *lim);

#endif
