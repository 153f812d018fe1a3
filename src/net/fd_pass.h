/*
 * One descriptor over a unix socket with SCM_RIGHTS, one byte of mark with
 * it: how the pool's handoff pair carries kept connections (master/kept.h).
 */
#ifndef FPMD_NET_FD_PASS_H
#define FPMD_NET_FD_PASS_H

/* Sends fd on via without blocking; 0, or -1 with errno (EAGAIN: the queue is full). */
int fd_pass_send(int via, int fd, char mark);

#endif
