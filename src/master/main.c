/*
 * fpmd's command line, php-fpm's flags: read and check the configuration,
 * then hand over to the master.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "log/log.h"
#include "handlers/handler.h"
#include "master/conf_check.h"
#include "master/master.h"
#include "master/module_probe.h"
#include "master/stacktrace.h"
#include "proc/proctitle.h"

#ifndef FPMD_VERSION
#define FPMD_VERSION "0.1.0"
#endif
#ifndef FPMD_DEFAULT_PREFIX
#define FPMD_DEFAULT_PREFIX "/usr/local"
#endif

#define EX_USAGE_ 64
#define EX_SOFTWARE_ 70
#define EX_CONFIG_ 78

extern char **environ;

static char *default_config(void);

static void usage(FILE *out, const char *prog)
{
	char *dflt = default_config();
	fprintf(out,
		"Usage: %s [-h] [-v] [-t] [-T] [-p PREFIX] [-g PID] [-y FILE] [-D | -F [-O]] [-R]\n"
		"       %*s [-c PATH|DIR] [-n] [-d KEY=VALUE]... [-i] [-m]\n"
		"\n"
		"fpmd is a FastCGI process manager: php-fpm's model and configuration, for PHP and\n"
		"for any application (cgi, module, exec and php pools).\n"
		"\n"
		"  -y, --fpm-config FILE   configuration file (default %s)\n"
		"  -p, --prefix DIR        prefix for relative paths in the configuration\n"
		"  -g, --pid FILE          pid file (overrides 'pid')\n"
		"  -t, --test              check the configuration and exit (78 on errors);\n"
		"                          -tt also logs the effective configuration, as php-fpm's\n"
		"  -T, --dump              print the effective configuration, defaults included, in\n"
		"                          the same INI syntax, and exit\n"
		"  -D, --daemonize         run in the background (overrides 'daemonize')\n"
		"  -F, --nodaemonize       stay in the foreground (overrides 'daemonize')\n"
		"  -O, --force-stderr      log to stderr, even with an error_log file or daemonized\n"
		"  -R, --allow-to-run-as-root  allow pools to run as root\n"
		"  -c, --php-ini PATH|DIR, -n, --no-php-ini, -d, --define KEY=VALUE\n"
		"                          php pools: another php.ini, none, one entry (default:\n"
		"                          /etc/php/8.2/fpm/php.ini and conf.d, as php-fpm's)\n"
		"  -i, --info, -m, --modules  PHP's information or module list, and exit\n"
		"  --module-cflags         compiler flags to build an app.type = module .so\n"
		"  -v, --version           print PHP's version block (php-fpm's) naming fpmd, and exit\n"
		"  -h, --help              this help\n"
		"\n"
		"Signals: TERM/INT stop now, QUIT stops gracefully (requests finish, then\n"
		"SIGTERM/SIGKILL after process_control_timeout), USR1 reopens the logs,\n"
		"USR2/HUP reload the configuration and the binary without dropping a request\n"
		"(refused, with every error logged, when the new configuration is invalid).\n"
		"`fpmctl reload -c CONTROL_SOCKET` waits for a reload's outcome.\n"
		"Exit status: 0 ok, 64 usage error, 70 internal error, 78 configuration error.\n",
		prog, (int)strlen(prog), "", dflt ? dflt : "?");
	free(dflt);
}

/* fds 0-2 must be open, or the first socket opened would become stdout. */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int n = open("/dev/null", O_RDWR);
			if (n >= 0 && n != fd) {
				dup2(n, fd);
				close(n);
			}
		}
	}
}

static char *default_config(void)
{
	const char *prefix = FPMD_DEFAULT_PREFIX;
	char buf[PATH_MAX];
	if (strcmp(prefix, "/usr") == 0)
		prefix = "";
	snprintf(buf, sizeof(buf), "%s/etc/fpmd/fpmd.conf", prefix);
	return strdup(buf);
}

static char *absolute(const char *path)
{
	if (path[0] == '/')
		return strdup(path);
	char cwd[PATH_MAX], buf[PATH_MAX * 2];
	if (!getcwd(cwd, sizeof(cwd)))
		return strdup(path);
	snprintf(buf, sizeof(buf), "%s/%s", cwd, path);
	return strdup(buf);
}

/*
 * Errors, warnings, notices (severity 1, 0, -1) at the configured log_level.
 * warnings = 0 leaves them to the master, which logs them once it is up.
 */
static void print_diags(const struct conf_diags *d, enum log_level level, int warnings)
{
	for (size_t i = 0; i < d->n; i++) {
		int sev = d->items[i].severity;
		enum log_level l = sev > 0 ? LL_ERROR : sev == 0 ? LL_WARNING : LL_NOTICE;
		/* notices are for a start (php-fpm's -t prints none) */
		if (l < level || (sev == 0 && !warnings) || (sev < 0 && warnings))
			continue;
		char *line = conf_diag_format(&d->items[i]);
		log_msg(l, "%s", line ? line : "?");
		free(line);
	}
}

/*
 * A start refused by the system checks (an unknown user, a missing directory)
 * is an operator's first look in the error log, as php-fpm's is: the log is
 * opened for it, the terminal keeps the lines too.  A text error is not: the
 * file that names the log is the thing in doubt.
 */
static void start_failure_log(const struct fpmd_conf *conf)
{
	struct log_settings ls = {
		.path = conf->error_log,
		.syslog_ident = conf->syslog_ident,
		.syslog_facility = conf->syslog_facility,
		/* log_level = alert must not hide why fpmd did not start */
		.level = (enum log_level)conf->log_level > LL_ERROR ? LL_ERROR
								   : (enum log_level)conf->log_level,
		.limit = conf->log_limit,
		.force_stderr = 0,
		.json = conf->log_format && strcmp(conf->log_format, "json") == 0,
	};
	if (log_open(&ls) == 0)
		log_set_starting(1);
	else
		log_open(&(struct log_settings){ .level = LL_NOTICE, .force_stderr = 1 });
}

int main(int argc, char **argv)
{
	module_probe_main(argc, argv);
	stacktrace_helper_main(argc, argv);
	static const struct option longopts[] = {
		{ "fpm-config", required_argument, NULL, 'y' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "pid", required_argument, NULL, 'g' },
		{ "test", no_argument, NULL, 't' },
		{ "dump", no_argument, NULL, 'T' },
		{ "daemonize", no_argument, NULL, 'D' },
		{ "nodaemonize", no_argument, NULL, 'F' },
		{ "force-stderr", no_argument, NULL, 'O' },
		{ "allow-to-run-as-root", no_argument, NULL, 'R' },
		{ "php-ini", required_argument, NULL, 'c' },
		{ "no-php-ini", no_argument, NULL, 'n' },
		{ "define", required_argument, NULL, 'd' },
		{ "info", no_argument, NULL, 'i' },
		{ "modules", no_argument, NULL, 'm' },
		{ "version", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "module-cflags", no_argument, NULL, 'M' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *prefix = NULL, *pid = NULL;
	int test = 0, dump = 0, daemonize = CONF_UNSET, force_stderr = 0, allow_root = 0;
	int php_only = 0;
	struct conf_options copt;
	memset(&copt, 0, sizeof(copt));

	ensure_std_fds();
	/*
	 * First: it moves argv and the environment to the heap, so every option
	 * value and ${VAR} below points at the copies, not at the area the
	 * process title overwrites.
	 */
	proctitle_init(argc, argv);
	int opt;
	/* Usage first, our word after: php-fpm's first line, which scripts check, is "Usage:". */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "y:p:g:tTDFORc:nd:imvh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'y': config = optarg; break;
		case 'p': prefix = optarg; break;
		case 'g': pid = optarg; break;
		case 't': test++; break;
		case 'T': dump = 1; break;
		case 'D': daemonize = 1; break;
		case 'F': daemonize = 0; break;
		case 'O': force_stderr = 1; break;
		case 'R': allow_root = 1; break;
		case 'c': copt.php_ini = optarg; break;     /* php.ini choice: used by php pools */
		case 'n': copt.php_ini_ignore = 1; break;
		case 'd': {
			const char *eq = strchr(optarg, '=');
			struct conf_kv_list *l = &copt.php_defines;
			struct conf_kv *ni = realloc(l->items, (l->n + 1) * sizeof(*ni));
			if (!ni)
				return EX_SOFTWARE_;
			l->items = ni;
			l->items[l->n].key = eq ? strndup(optarg, (size_t)(eq - optarg)) : strdup(optarg);
			l->items[l->n].value = strdup(eq ? eq + 1 : "1");
			l->items[l->n].file = NULL;
			l->items[l->n].line = 0;
			l->n++;
			l->cap = l->n;
			break;
		}
		case 'i': case 'm': php_only = opt; break;
		case 'M':
			/* What a module needs to compile: fpmd/module.h's directory. */
			printf("-I%s/include\n", FPMD_DEFAULT_PREFIX);
			return 0;
		case 'v': php_only = 'v'; break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			if (optopt == 'e')
				fprintf(stderr, "%s: -e (php-fpm's extended information for debuggers) is "
					"not supported: remove it\n", argv[0]);
			else if (optopt)
				fprintf(stderr, "%s: -%c: unknown option or missing value\n", argv[0], optopt);
			else
				fprintf(stderr, "%s: unknown option '%s'\n", argv[0], argv[optind - 1]);
			return EX_USAGE_;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
		usage(stderr, argv[0]);
		return EX_USAGE_;
	}
	copt.php_rc = getenv("PHPRC");
	copt.php_ini_scan_dir = getenv("PHP_INI_SCAN_DIR");
	if (php_only == 'v') {
		/* php-fpm's -v is PHP's version block; scripts parse it.  fpmd's own line follows. */
		char so[PATH_MAX];
		int prc = 0;
		copt.version = FPMD_VERSION;
		if (php_library_path(so, sizeof(so)) == 0)
			prc = php_cli_info(&copt, 'v');
		else
			printf("fpmd %s (fpm-fcgi)\n", FPMD_VERSION);
		conf_kv_list_free(&copt.php_defines);
		return prc;
	}
	if (php_only) {
		/* PHP's own answer: fpmd-php.so is loaded for it, in this short-lived process. */
		int prc = php_cli_info(&copt, php_only);
		conf_kv_list_free(&copt.php_defines);
		return prc;
	}

	char *config_path = config ? absolute(config) : default_config();
	copt.prefix = prefix;
	copt.pid = pid;
	copt.daemonize = daemonize;
	copt.allow_root = allow_root;
	copt.running_as_root = geteuid() == 0;
	copt.environ = environ;


	struct log_settings ls = { .level = LL_NOTICE, .limit = 0, .force_stderr = 1 };
	log_open(&ls);

	struct conf_diags diags;
	memset(&diags, 0, sizeof(diags));
	/* After a failed reload: the configuration that ran before it, not the file. */
	char rollback[64];
	const char *source = test || dump ? NULL : reload_rollback_source(rollback, sizeof(rollback));
	struct fpmd_conf *conf = conf_load(source ? source : config_path, &copt, &conf_io_default,
					   &diags);
	if (!conf) {
		log_error("out of memory reading '%s'", config_path);
		return EX_SOFTWARE_;
	}
	/* The text first; then what the system says of it (users, paths), as php-fpm orders them. */
	size_t text_errors = diags.errors;
	/* root pools first: the module check must not load a module as a root it will refuse */
	if (text_errors == 0) {
		conf_check_root_pools(conf, allow_root, &diags);
		conf_check_system(conf, &diags, test || dump || geteuid() == 0);
	}
	/* Running: warnings wait for the master's start lines (scripts match those first). */
	int running = !diags.errors && !dump && !test;
	if (diags.errors && !text_errors && !dump && !test && conf->error_log)
		start_failure_log(conf);
	print_diags(&diags, diags.errors ? LL_DEBUG : (enum log_level)conf->log_level, !running);
	int rc = 0;
	if (diags.errors) {
		if (text_errors)
			log_error("failed to load configuration file '%s'", config_path);
		log_error("FPM initialization failed");
		rc = EX_CONFIG_;
		/*
		 * The text was read: -T still shows it, resolved, when only the
		 * system refused it (a relative path, a missing directory), which
		 * is when the resolved paths are worth seeing.
		 */
		char *text = dump && !text_errors ? conf_dump(conf) : NULL;
		if (text) {
			fputs(text, stdout);
			free(text);
		}
	} else if (dump) {
		char *text = conf_dump(conf);
		if (text) {
			fputs(text, stdout);
			free(text);
		}
	} else if (test) {
		if (test > 1) {
			/* -tt: the effective configuration in the log, php-fpm's way */
			char *text = conf_dump(conf);
			for (char *save = NULL, *l = text ? strtok_r(text, "\n", &save) : NULL; l;
			     l = strtok_r(NULL, "\n", &save))
				log_notice("%s%s", l[0] == '[' || l[0] == ';' ? "" : "\t", l);
			free(text);
		}
		log_notice("configuration file %s test is successful", config_path);
	} else {
		struct master_options mo = { .config = config_path, .force_stderr = force_stderr,
					     .allow_root = allow_root, .argc = argc, .argv = argv,
					     .copt = &copt, .warnings = &diags };
		rc = master_run(conf, &mo);
	}
	conf_diags_free(&diags);
	conf_free(conf);
	conf_kv_list_free(&copt.php_defines);
	free(config_path);
	return rc;
}
