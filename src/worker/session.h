/*
 * The processes a request started: a CGI script (or a supervised program)
 * runs as the leader of its own session, so nothing it starts can join the
 * worker's process group, and whatever it starts stays findable by its
 * session id even after leaving the script's process group.
 */
#ifndef FPMD_SESSION_H
#define FPMD_SESSION_H

#include <stdint.h>
#include <sys/types.h>

/*
 * Sends sig to the session leader sid, its process group, and every other
 * process whose session id is sid (read from /proc: a process that moved
 * to another group of the session is still in it).  Returns how many
 * processes besides the leader's group were signalled.
 */
int session_kill(pid_t sid, int sig);

/* How many processes of session sid are alive (zombies not counted). */
int session_count(pid_t sid);

/*
 * Waits for the child pid to exit, at most until deadline_ms (conn_now_ms()
 * clock; 0 = no deadline), and while the peer on watch_fd is still there
 * (-1 = none): a script may close its output and linger, and nobody should
 * wait for it once its client has gone.  Returns 1 with *status when it
 * exited, 0 when the deadline passed, -1 when the peer went away.
 */
int session_wait_leader(pid_t pid, int *status, uint64_t deadline_ms, int watch_fd);

/*
 * Orphans.  While a request's script runs its worker is a child subreaper
 * (session_adopt_orphans): what the script's processes leave behind when
 * their own parent dies comes to the worker, one that left the script's
 * session with setsid() included (which session_kill cannot find).  Those
 * started since the script (its start time, /proc's clock ticks) are the
 * request's; background jobs of earlier requests are older and spared.
 */
/*
 * PR_SET_CHILD_SUBREAPER on or off; 0, or -1 with errno (on, but no
 * /proc/.../children to find them by: ENOENT).
 */
int session_adopt_orphans(int on);
/* The start time of pid in clock ticks since boot (/proc/PID/stat), 0 if unknown.  Async-signal-safe. */
unsigned long long session_start_ticks(pid_t pid);
/* Reaps every child that ended, but never keep (the script, waited for by its caller; 0: none). */
void session_reap_orphans(pid_t keep);
/*
 * This process's children before a script starts: earlier requests' jobs,
 * spared even when they started in the script's clock tick (10 ms).
 */
#define SESSION_KNOWN_MAX 64
struct session_known {
	pid_t pid[SESSION_KNOWN_MAX];
	int n;
};
void session_note_children(struct session_known *known);
/*
 * SIGKILLs every child of this process started at or after since (clock
 * ticks) and not in known, and reaps it, in rounds (their own orphans come
 * in turn), bounded.  Async-signal-safe.
 */
void session_kill_orphans(unsigned long long since, const struct session_known *known);
/* The same for every child, whenever it started (an exec worker's, at the program's end). */
void session_kill_children(void);

#endif
