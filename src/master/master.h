/*
 * The master process: owns the configuration, the pools (sockets,
 * scoreboards, children), the event loop and its timers.  It never runs
 * application code and never trusts what a worker wrote.
 *
 * States (one place moves between them: master_set_state):
 *   RUNNING      serving; dead children are respawned
 *   FINISHING    QUIT: children finish their request and exit; then the master exits
 *   TERMINATING  TERM/INT: children are stopped now; then the master exits
 */
#ifndef FPMD_MASTER_H
#define FPMD_MASTER_H

#include <stdint.h>
#include <sys/types.h>

#include "conf/conf.h"
#include "master/pool.h"

enum master_state { MASTER_RUNNING = 0, MASTER_FINISHING, MASTER_TERMINATING };

struct ev_loop;
struct ev_watch;

struct master_options {
	const char *config;          /* -y, absolute */
	int force_stderr;            /* -O */
	int allow_root;              /* -R */
	int argc;
	char **argv;
};

struct master {
	struct fpmd_conf *conf;
	struct master_options opt;
	struct ev_loop *loop;
	enum master_state state;
	struct pool *pools;
	unsigned total_children;
	int process_max_warned;
	pid_t pid;

	/* escalation of a stop: QUIT → TERM → KILL */
	struct ev_watch *stop_timer;
	int stop_step;

	/* emergency restart: times of recent SIGSEGV/SIGBUS deaths */
	uint64_t *crash_times;
	unsigned crash_n;

	int daemon_pipe;             /* write end to the launching process, -1 when none */
	int pid_file_written;
	int exit_code;
};

/* Runs the master until it stops; returns the process exit code. */
int master_run(struct fpmd_conf *conf, const struct master_options *opt);

/* children.c */
int  children_spawn(struct master *m, struct pool *p, unsigned count);
void children_reap(struct master *m);
void children_signal_all(struct master *m, int signo);
void children_close_pipes(struct master *m, struct child *c);
unsigned children_total(const struct master *m);

/* daemon.c */
int  daemonize_start(int *notify_fd);        /* returns only in the daemon */
void daemonize_notify(int *notify_fd, int ok);
int  pidfile_write(const char *path);
void pidfile_remove(const char *path);

#endif
