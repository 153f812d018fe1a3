/*
 * The master process: owns the configuration, the pools (sockets,
 * scoreboards, children), the event loop and its timers.  It never runs
 * application code and never trusts what a worker wrote.
 *
 * States (one place moves between them: master_stop in master.c):
 *   RUNNING      serving; dead children are respawned (also while draining:
 *                SIGTERM with sigterm_drain fails readiness, then FINISHING)
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
	const struct conf_options *copt;   /* to read the configuration again on reload */
	/* configuration warnings, logged once the pools are up (after php-fpm's start lines) */
	const struct conf_diags *warnings;
};

struct master {
	struct fpmd_conf *conf;
	struct master_options opt;
	struct ev_loop *loop;
	enum master_state state;
	/* The start is over (ev_run): php-fpm logs a child's start at NOTICE only from then on. */
	int in_loop;
	struct pool *pools;
	unsigned total_children;
	int process_max_warned;
	pid_t pid;

	/* escalation of a stop: QUIT → TERM → KILL */
	struct ev_watch *stop_timer;
	int stop_step;
	/* sigterm_drain: readiness fails, the pools still serve until drain_timer */
	int draining;
	struct ev_watch *drain_timer;

	/* emergency restart: times of recent SIGSEGV/SIGBUS deaths */
	uint64_t *crash_times;
	unsigned crash_n;

	/* reload (reload.c) */
	char exe[4096];              /* the binary to re-exec: a new one on disk is picked up */
	struct conf_options copt;    /* how the configuration was read, to read it again */
	struct child *old;           /* previous generation's children, draining */
	unsigned old_children;
	struct inherited_socket {
		int fd;
		char text[160];
		int used;
		int systemd;         /* from socket activation: systemd owns its path */
	} *inherited;
	size_t ninherited;
	/* handoff pairs (kept.h) of the previous master, by their pool's listen address */
	struct inherited_handoff {
		int fd[2];
		char text[160];
		int used;
	} *handoffs;
	size_t nhandoffs;
	int reloaded;                /* this master was re-exec'd by a reload */
	struct ev_watch *reload_timer;
	uint64_t reload_started_us;
	uint64_t handover_us;        /* the new generation serves; the previous one was told */
	int reload_failed;
	int prev_conf_fd;            /* memfd: the previous master's configuration (conf_dump), -1 */
	int rolled_back;             /* this master runs prev_conf_fd's configuration: a reload failed */
	struct ev_watch *old_stop_timer;
	int old_stop_step;
	int ctl_client;              /* fpmctl connection waiting for an answer, -1 */
	int ctl_fd;                  /* control_socket, -1 when none */
	struct ev_watch *sd_timer;   /* systemd STATUS= / WATCHDOG=1, only under systemd */
	uint64_t sd_watchdog_us;
	uint64_t sd_last_requests, sd_last_us;
	struct ev_watch *ctl_watch;

	/* php.zygote = shared (zygote.c): the one PHP every shared pool's zygote is cloned from */
	struct child *shared_zygote;     /* its pid and output pipes; NULL when not running */
	int shared_zygote_fd;            /* SOCK_SEQPACKET to it, -1 */
	int shared_zygote_ready;
	unsigned shared_zygote_failures;
	struct ev_watch *shared_zygote_watch, *shared_zygote_timer;
	struct spawn_queue shared_spawnq;    /* asked of it, not answered yet */
	/*
	 * Children reaped that nobody owned yet: a zygote's clone that died
	 * before its zygote's answer was read (children.c records, zygote.c
	 * looks them up), so that answer is a worker that ended, not a lie.
	 * Kept for an answer's time (ZYGOTE_ANSWER_MS), as many as end in it:
	 * a fixed ring forgot one still awaited when many ended at once, and
	 * its answer restarted the zygote.  Owned by the master (free at exit).
	 */
	struct reaped_unowned { pid_t pid; int status; uint64_t at_us; } *reaped_unowned;
	size_t reaped_unowned_n, reaped_unowned_cap;

	int daemon_pipe;             /* write end to the launching process, -1 when none */
	int pid_file_written;
	int exit_code;
};

/* Runs the master until it stops; returns the process exit code. */
int master_run(struct fpmd_conf *conf, const struct master_options *opt);

/* children.c */
int  children_spawn(struct master *m, struct pool *p, unsigned count);
int  children_spawn_pm(struct master *m, struct pool *p, unsigned count);   /* logged at DEBUG */
void children_reap(struct master *m);
void children_signal_all(struct master *m, int signo);
void children_close_pipes(struct master *m, struct child *c);
/* A worker exists (forked, or cloned by a zygote): the master's record of it. 0 / -1 */
int  children_adopt(struct master *m, struct pool *p, unsigned slot, pid_t pid, const int rfds[3]);
/* A requested worker that will not be: its slot and pipes back. */
void children_spawn_failed(struct master *m, struct pool *p, unsigned slot, const int rfds[3]);
/* One cloned that ended (status: its wait status) before it was adopted: a worker's end, replaced. */
void children_spawn_died(struct master *m, struct pool *p, unsigned slot, pid_t pid,
			 const int rfds[3], int status);
/*
 * A spawn that failed (a zygote could not clone): asked again after the
 * back-off of a worker that died at start, or a static pool stays short.
 */
void children_respawn_later(struct master *m, struct pool *p);
unsigned children_total(const struct master *m);

/* The pool a child's name belongs to, or NULL. */
int  children_read_pipe_fds(struct child *c, int fds[3]);
void children_watch_pipes(struct master *m, struct child *c, int log_fd, int out_fd, int err_fd);
const char *child_pool_name(const struct child *c);
void children_log_exit(struct master *m, struct child *c, int status);

/* A pool's live counts from the scoreboard (slots copied and clamped). */
struct pool_counts {
	unsigned active, idle;
	uint64_t requests;           /* served so far, by living and exited children */
};
void pool_count(const struct pool *p, struct pool_counts *out);

/* The same fd layout a worker gets, plus a zygote's control socket at 6. */
void children_zygote_layout(struct master *m, struct pool *p, int out_w, int err_w, int log_w,
			    int ctl_fd);

/* zygote.c: php pools' workers are cloned by a per-pool zygote */
int  zygote_start(struct master *m, struct pool *p, int wait_ready);
int  zygote_wait_ready(struct master *m, struct pool *p);   /* after zygote_start(.., 0) */
int  zygote_wait_spawned(struct master *m);   /* at start: the first spawn requests answered */
/*
 * Asks the pool's zygote (or the shared one) for a worker in slot with those
 * pipes; returns at once.  On 0 the request owns rfds (log, stdout, stderr
 * read ends): children_adopt() or children_spawn_failed() gets them when
 * the answer comes, fails, or is overdue.
 */
int  zygote_request(struct master *m, struct pool *p, unsigned slot, int out_w, int err_w,
		    int log_w, const int rfds[3]);
int  zygote_reaped(struct master *m, pid_t pid, int status);  /* 1 if pid was a zygote */
/* A child nobody owned was reaped: remembered, for an answer naming it may still come. */
void zygote_reaped_unowned(struct master *m, pid_t pid, int status);
void zygote_stop(struct master *m, struct pool *p);
/* php.zygote = shared */
int  zygote_shared_start(struct master *m, int wait_ready);   /* 0 also when no pool shares */
void zygote_shared_stop(struct master *m);
/* SIGKILL to every zygote, nothing else (a reload's exec: the next master starts its own). */
void zygote_kill_all(const struct master *m);
/* An idle ondemand pool lets its zygote go; the next connection starts it again. */
void zygote_retire(struct master *m, struct pool *p);

/* reload.c */
void reload_init(struct master *m);                   /* adopt what a reload passed on */
int  reload_take_socket(struct master *m, const char *text, int *systemd);
/*
 * A start that fails gives back what it took from the previous master
 * (a listening socket, a status socket, a handoff pair by its master end):
 * 1 when fd was one, which the caller then leaves open, for the rollback's
 * exec to pass on (closing it and removing its path lost the pool's socket).
 */
int  reload_give_back(struct master *m, int fd);
/* The previous master's handoff pair of the pool listening at `text`: 0, or -1 when none. */
int  reload_take_handoff(struct master *m, const char *text, int fds[2]);
void reload_after_start(struct master *m);            /* close unused sockets, watch canaries */
void reload_request(struct master *m);                /* USR2 / HUP */
int  reload_reap(struct master *m, pid_t pid, int status);  /* 1 if pid was a previous child */
void reload_stop_old(struct master *m, int signo);
/*
 * Where to read the configuration from when this process was started by a
 * rollback (a reload whose new workers never came up): a /proc/self/fd path
 * into buf, or NULL for the configuration file.
 */
const char *reload_rollback_source(char *buf, size_t cap);
/*
 * A master started by a reload failed to start its pools: back to the
 * previous configuration (re-exec).  Returns only when that is not possible.
 */
void reload_start_failed(struct master *m);

/* daemon.c */
int  daemonize_start(int *notify_fd);        /* returns only in the daemon */
void daemonize_notify(int *notify_fd, int ok);
int  pidfile_write(const char *path);
void pidfile_remove(const char *path);

#endif
