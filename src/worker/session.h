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

#endif
