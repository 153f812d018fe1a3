/*
 * Length of a listening socket's accept queue, for unix sockets too
 * (php-fpm reports 0 for them): sock_diag netlink for AF_UNIX
 * (UNIX_DIAG_RQLEN), TCP_INFO for TCP.
 */
#ifndef FPMD_NET_QUEUE_H
#define FPMD_NET_QUEUE_H

/* Returns 0 and fills *pending (connections waiting) and *backlog, or -1. */
int listen_queue_len(int fd, int family, unsigned *pending, unsigned *backlog);

#endif
