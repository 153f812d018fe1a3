/*
 * The master's control socket (control.c): commands from fpmctl, answered
 * with their outcome.
 */
#ifndef FPMD_CONTROL_H
#define FPMD_CONTROL_H

#include "master/master.h"

int  control_open(struct master *m);
/*
 * A reload's caller handed over by the previous master (FPMD_CTL_CLIENT)
 * becomes m->ctl_client: control_open does it, and so must a start that
 * fails before it, so the caller gets its answer and no later master
 * inherits a client nobody answers.
 */
void control_adopt_client(struct master *m);
void control_close(struct master *m);
/* One line to the waiting fpmctl, if any (the log gets its own line separately). */
void control_say(struct master *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The command is answered: close the connection (unless keep_open). */
void control_done(struct master *m, int keep_open);
/* Before a reload's exec: the waiting caller is handed to the new master. */
int  control_pass_on_exec(struct master *m);
/* The listening control socket a reload's previous master passed on: first thing at start. */
void control_adopt_listener(void);
/* The exec after control_pass_on_exec failed: the socket is close-on-exec again. */
void control_exec_failed(struct master *m);

#endif
