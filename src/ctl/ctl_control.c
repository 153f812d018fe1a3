/*
 * fpmctl reload | reopen | quit | stop | pools: commands to the master.
 *
 * With -c CONTROL_SOCKET (fpmd's control_socket) the command goes over the
 * socket and fpmctl waits for the outcome: a reload exits 0 only once the
 * new generation serves, and prints the errors when it was refused; quit
 * and stop return once the master has exited.  With -g PIDFILE the matching
 * signal is sent and nothing more is known (php-fpm's and nginx's way).
 *
 * fpmctl ping / status: shortcuts for `fpmctl request` on ping.path and
 * pm.status_path; `ping --ready` asks ping.path?ready (readiness).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl/ctl.h"

static const struct {
	const char *name;
	int signo;
	const char *what;
} master_commands[] = {
	{ "reload", SIGUSR2, "reload the configuration (and binary) without dropping a request" },
	{ "reopen", SIGUSR1, "reopen the log files" },
	{ "quit", SIGQUIT, "stop gracefully: requests in flight finish" },
	{ "stop", SIGTERM, "stop now" },
	{ "pools", 0, "show each pool's processes and counters" },
	{ "scale", 0, "keep at least N workers in a dynamic or ondemand pool: POOL +N|-N|=N" },
};

static void master_usage(FILE *f, const char *cmd)
{
	/* pools and scale are questions to the master: no signal says them */
	int signal_too = strcmp(cmd, "pools") != 0 && strcmp(cmd, "scale") != 0;
	fprintf(f, "usage: fpmctl %s [-c CONTROL_SOCKET%s] [--timeout SECONDS]%s\n\n", cmd,
		signal_too ? " | -g PIDFILE" : "", strcmp(cmd, "scale") == 0 ? " POOL +N|-N|=N" : "");
	for (size_t i = 0; i < sizeof(master_commands) / sizeof(master_commands[0]); i++)
		if (strcmp(cmd, master_commands[i].name) == 0)
			fprintf(f, "%s.\n", master_commands[i].what);
	fprintf(f, "\n  -c PATH      fpmd's control_socket: wait for the outcome and print it\n"
		   "               (default " CTL_DEFAULT_CONTROL ", the installed configuration's)\n");
	if (signal_too)
		fprintf(f, "  -g PIDFILE   send the signal to the pid in PIDFILE (no outcome known)\n");
	fprintf(f, "  --timeout S  give up after S seconds (default 60)\n"
		   "\nExit status: 0 done, 1 fpmd answered with an error, 2 usage, 3 cannot connect,\n"
		   "4 timeout, 5 the answer was cut short.\n");
}

/* Its process title (fpmd: master process (...)) or its command name says so. */
static int is_fpmd_master(pid_t pid)
{
	char path[64], buf[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	static const char title[] = "fpmd: master process";
	if (strncmp(buf, title, sizeof(title) - 1) == 0)
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return strcmp(buf, "fpmd") == 0;
}

static int by_signal(const char *pidfile, int signo, const char *cmd)
{
	FILE *f = fopen(pidfile, "re");
	long pid = 0;
	if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
		fprintf(stderr, "fpmctl: cannot read a pid from '%s'%s%s\n", pidfile, f ? "" : ": ",
			f ? "" : strerror(errno));
		if (f)
			fclose(f);
		return CTL_ECONNECT;
	}
	fclose(f);
	if (signo == 0) {
		fprintf(stderr, "fpmctl: '%s' needs the control socket (-c)\n", cmd);
		return CTL_EUSAGE;
	}
	/*
	 * A pid file outlives a master killed with SIGKILL, and its number may
	 * be any process's by now: signal only an fpmd master.
	 */
	if (!is_fpmd_master((pid_t)pid)) {
		fprintf(stderr, "fpmctl: pid %ld from '%s' is not an fpmd master (a stale pid file?); "
			"nothing sent\n", pid, pidfile);
		return CTL_ECONNECT;
	}
	if (kill((pid_t)pid, signo) < 0) {
		fprintf(stderr, "fpmctl: cannot signal pid %ld: %s\n", pid, strerror(errno));
		return CTL_ECONNECT;
	}
	printf("sent SIG%s to fpmd (pid %ld); use -c CONTROL_SOCKET to wait for the outcome\n",
	       sigabbrev_np(signo), pid);
	return CTL_OK;
}

/* Sends the command, prints every line of the answer; the last decides. */
static int by_socket(const char *path, const char *cmd, int timeout_s)
{
	struct ctl_addr a;
	char err[256];
	int64_t deadline = ctl_now_ms() + (int64_t)timeout_s * 1000;
	char spec[300];
	snprintf(spec, sizeof(spec), "unix:%s", path);
	if (ctl_addr_parse(spec, &a) < 0) {
		fprintf(stderr, "fpmctl: bad control socket path '%s'\n", path);
		return CTL_EUSAGE;
	}
	int fd = ctl_connect(&a, deadline, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "fpmctl: cannot connect to %s: %s\n", a.text, err);
		return errno == ETIMEDOUT ? CTL_ETIMEOUT : CTL_ECONNECT;
	}
	char line[256];
	int n = snprintf(line, sizeof(line), "%s\n", cmd);
	if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
		fprintf(stderr, "fpmctl: cannot send to %s: %s\n", path, strerror(errno));
		close(fd);
		return CTL_ECONNECT;
	}
	char buf[8192];
	size_t len = 0;
	int verdict = -1;
	for (;;) {
		int64_t left = deadline - ctl_now_ms();
		if (left <= 0) {
			fprintf(stderr, "fpmctl: no answer from fpmd within %d s\n", timeout_s);
			close(fd);
			return CTL_ETIMEOUT;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		ssize_t r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			break;             /* the master closed: the answer is complete */
		len += (size_t)r;
		buf[len] = '\0';
		char *nl;
		while ((nl = strchr(buf, '\n')) != NULL) {
			*nl = '\0';
			int is_ok = strncmp(buf, "OK", 2) == 0, is_err = strncmp(buf, "ERROR", 5) == 0;
			FILE *out = is_err || strncmp(buf, "error:", 6) == 0 ? stderr : stdout;
			fprintf(out, "%s\n", buf);
			if (is_ok)
				verdict = 0;
			else if (is_err)
				verdict = 1;
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len + 1);
		}
		if (len == sizeof(buf) - 1)
			len = 0;           /* an endless line: drop it */
	}
	close(fd);
	if (verdict < 0) {
		fprintf(stderr, "fpmctl: fpmd closed the connection without an answer\n");
		return CTL_EPROTO;
	}
	return verdict == 0 ? CTL_OK : CTL_EFAIL;
}

int ctl_master_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = argv[0], *sock = NULL, *pidfile = NULL;
	int timeout = 60, signo = -1, opt;
	for (size_t i = 0; i < sizeof(master_commands) / sizeof(master_commands[0]); i++)
		if (strcmp(cmd, master_commands[i].name) == 0)
			signo = master_commands[i].signo;
	/*
	 * scale POOL -N: a negative count is not an option (getopt would take
	 * "-5" for one); it is set aside and put back after the options.
	 */
	int is_scale = strcmp(cmd, "scale") == 0;
	char *negative = NULL;
	if (is_scale)
		for (int i = 1; i < argc; i++)
			if (argv[i][0] == '-' && argv[i][1] >= '0' && argv[i][1] <= '9' &&
			    strspn(argv[i] + 1, "0123456789") == strlen(argv[i] + 1)) {
				negative = argv[i];
				memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(argv[0]));
				argc--;
				break;
			}
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:g:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': sock = optarg; break;
		case 'g': pidfile = optarg; break;
		case 't': timeout = atoi(optarg); break;
		case 'h': master_usage(stdout, cmd); return CTL_OK;
		default: master_usage(stderr, cmd); return CTL_EUSAGE;
		}
	}
	if (negative) {
		argv[argc++] = negative;     /* after the pool's name, which getopt left in order */
		argv[argc] = NULL;
	}
	if (!sock && !pidfile)
		sock = CTL_DEFAULT_CONTROL;
	const char *why = NULL;
	if (sock && pidfile)
		why = "-c and -g: one or the other";
	else if (timeout <= 0)
		why = "--timeout must be a positive number of seconds";
	else if (optind < argc - (is_scale ? 2 : 0))
		why = "unexpected argument";
	else if (optind > argc - (is_scale ? 2 : 0))
		why = "scale needs a pool and a count";
	else if (is_scale && (!strchr("+-=", argv[optind + 1][0]) || !argv[optind + 1][1] ||
			      strspn(argv[optind + 1] + 1, "0123456789") != strlen(argv[optind + 1] + 1)))
		why = "the count must be +N, -N or =N";
	if (signo < 0 || why) {
		if (why)
			fprintf(stderr, "fpmctl %s: %s%s%s%s\n", cmd, why,
				strcmp(why, "unexpected argument") == 0 ? " '" : "",
				strcmp(why, "unexpected argument") == 0 ? argv[optind + (is_scale ? 2 : 0)] : "",
				strcmp(why, "unexpected argument") == 0 ? "'" : "");
		master_usage(stderr, cmd);
		return CTL_EUSAGE;
	}
	char line[200];
	if (is_scale) {
		snprintf(line, sizeof(line), "scale %.64s %.32s", argv[optind], argv[optind + 1]);
		cmd = line;
	}
	return sock ? by_socket(sock, cmd, timeout) : by_signal(pidfile, signo, cmd);
}

/* ping / status: build a `request` command line and run it. */
int ctl_shortcut_main(int argc, char **argv)
{
	int is_ping = strcmp(argv[0], "ping") == 0;
	const char *sock = NULL, *path = is_ping ? "/ping" : "/status";
	char query[64] = "";
	int timeout_set = 0;
	char *timeout = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			sock = argv[++i];
		else if (strcmp(argv[i], "--path") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			timeout = argv[++i], timeout_set = 1;
		else if (is_ping && strcmp(argv[i], "--ready") == 0)
			snprintf(query + strlen(query), sizeof(query) - strlen(query), "%sready",
				 query[0] ? "&" : "");
		else if (is_ping && strcmp(argv[i], "--max-queue") == 0 && i + 1 < argc &&
			 strspn(argv[i + 1], "0123456789") == strlen(argv[i + 1]) && argv[i + 1][0]) {
			snprintf(query + strlen(query), sizeof(query) - strlen(query), "%squeue=%.20s",
				 query[0] ? "&" : "", argv[i + 1]);
			i++;
		} else if (!is_ping && (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "--xml") == 0 ||
				      strcmp(argv[i], "--html") == 0 || strcmp(argv[i], "--openmetrics") == 0 ||
				      strcmp(argv[i], "--live") == 0 ||
				      strcmp(argv[i], "--full") == 0))
			snprintf(query + strlen(query), sizeof(query) - strlen(query), "%s%s",
				 query[0] ? "&" : "", argv[i] + 2);
		else {
			int help = strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
			if (!help)
				fprintf(stderr, "fpmctl %s: %s '%s'\n", argv[0],
					argv[i][0] == '-' ? "unknown option, or one without its value,"
							  : "unexpected argument", argv[i]);
			fprintf(help ? stdout : stderr, "usage: fpmctl %s [-s unix:PATH|tcp:HOST:PORT] [--path PATH] "
				"[--timeout S]%s\n", argv[0],
				is_ping ? " [--ready [--max-queue N]]"
					: " [--json|--xml|--html [--live]|--openmetrics] [--full]");
			if (help && is_ping)
				fputs("\nRequests the pool's ping.path: exit 0 when it answers (liveness).\n"
				      "--ready asks for ping.path?ready instead (readiness): exit 6 while the pool\n"
				      "is saturated, i.e. no worker idle, pm.max_children reached and more than N\n"
				      "connections (--max-queue, default 0) waiting in its listen queue.  Point -s\n"
				      "at the pool's pm.status_listen socket: the master answers there at once,\n"
				      "where a saturated pool's own socket would make the probe wait.\n", stdout);
			return help ? CTL_OK : CTL_EUSAGE;
		}
	}
	char uri[512];
	snprintf(uri, sizeof(uri), "%s%s%s", path, query[0] ? "?" : "", query);
	char *args[10];
	int n = 0;
	args[n++] = argv[0];
	if (sock) {
		args[n++] = (char *)"-s";
		args[n++] = (char *)sock;
	}
	if (timeout_set) {
		args[n++] = (char *)"--timeout";
		args[n++] = timeout;
	}
	args[n++] = (char *)"--fail";
	args[n++] = uri;
	args[n] = NULL;
	optind = 1;
	return ctl_request_as(n, args, argv[0], is_ping ? " (is ping.path set to this path in the pool?)"
						       : " (is pm.status_path set to this path in the pool?)", 1);
}
