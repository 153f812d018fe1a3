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
 * Orphans.  A worker that made itself a child subreaper (session_adopt_orphans)
 * becomes the parent of what its requests' processes leave behind when their
 * own parent dies: one that left the script's session with setsid() included,
 * which session_kill cannot find.
 */
#define SESSION_KNOWN_MAX 64
struct session_known {
	pid_t pid[SESSION_KNOWN_MAX];
	int n;
};
/* PR_SET_CHILD_SUBREAPER for this process.  0, or -1 with errno. */
int session_adopt_orphans(void);
/*
 * Reaps the orphans that ended and notes the living ones: what earlier
 * requests left running on purpose (a background job of a script that ended
 * well), for session_kill_orphans to spare.  Call with no script running.
 */
void session_note_orphans(struct session_known *known);
/*
 * SIGKILLs every child of this process not in known and reaps it, in rounds
 * (their own orphans come in turn), bounded.  Async-signal-safe.
 */
void session_kill_orphans(const struct session_known *known);

#endif
