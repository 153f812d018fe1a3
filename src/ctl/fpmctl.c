/*
 * fpmctl: talks to fpmd (or any FastCGI server) from the command line.
 * main() only dispatches: every subcommand is one entry in the table below
 * with its own file, so status/ping/top/reload slot in without touching the
 * others.
 */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);   /* argv[0] is the subcommand name */
	const char *summary;
};

static const struct command commands[] = {
	{ "request", ctl_request_main, "send one FastCGI request and print the response" },
	{ "ping", ctl_shortcut_main, "liveness: a pool's ping.path answers; --ready: readiness (not saturated)" },
	{ "status", ctl_shortcut_main, "print a pool's status page (--json, --full, ...)" },
	{ "top", ctl_top_main, "a live view of a pool's workers, refreshed every second" },
	{ "reload", ctl_master_main, "reload fpmd and wait until the new generation serves" },
	{ "reopen", ctl_master_main, "reopen fpmd's log files" },
	{ "quit", ctl_master_main, "stop fpmd gracefully and wait until it has exited" },
	{ "stop", ctl_master_main, "stop fpmd now" },
	{ "pools", ctl_master_main, "each pool's processes and counters, from the master" },
	{ "scale", ctl_master_main, "keep at least N workers in a pool: POOL +N|-N|=N" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: fpmctl [-h | --help | -v | --version]\n"
		   "       fpmctl COMMAND [OPTIONS]\n\ncommands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'fpmctl COMMAND --help' describes a command.\n"
		   "\nExit status: 0 success, 1 other error, 2 usage error, 3 cannot connect,\n"
		   "4 timeout, 5 protocol error, 6 HTTP status >= 400 with --fail;\n"
		   "master commands: 1 when fpmd answered with an error.\n");
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return CTL_EUSAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return CTL_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0 ||
	    strcmp(argv[1], "-v") == 0) {
		printf("fpmctl %s\n", FPMD_VERSION);
		return CTL_OK;
	}
	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "fpmctl: unknown command '%s'\nTry 'fpmctl --help'.\n", argv[1]);
	return CTL_EUSAGE;
}
