/*
 * Accept-queue length of a listening socket (see queue.h).
 */
#include "net/queue.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int tcp_queue(int fd, unsigned *pending, unsigned *backlog)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -1;
	/* For a listening socket the kernel reports the queue in these two fields. */
	*pending = ti.tcpi_unacked;
	*backlog = ti.tcpi_sacked;
	return 0;
}

/* Asks sock_diag about the one unix socket with this inode. */
static int unix_queue(int fd, unsigned *pending, unsigned *backlog)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -1;
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req req;
	} msg;
	memset(&msg, 0, sizeof(msg));
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST;
	msg.req.sdiag_family = AF_UNIX;
	msg.req.udiag_states = 1u << 10;         /* TCP_LISTEN */
	msg.req.udiag_ino = (__u32)st.st_ino;
	msg.req.udiag_show = UDIAG_SHOW_RQLEN;
	msg.req.udiag_cookie[0] = msg.req.udiag_cookie[1] = ~0U;

	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int rc = -1;
	if (sendto(nl, &msg, sizeof(msg), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out;
	char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
	ssize_t n = recv(nl, buf, sizeof(buf), 0);
	if (n <= 0)
		goto out;
	for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
	     h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE)
			break;
		struct unix_diag_msg *m = NLMSG_DATA(h);
		int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
		struct rtattr *a = (struct rtattr *)(m + 1);
		for (; RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
			if (a->rta_type == UNIX_DIAG_RQLEN &&
			    RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen)) {
				struct unix_diag_rqlen *q = RTA_DATA(a);
				*pending = q->udiag_rqueue;
				*backlog = q->udiag_wqueue;
				rc = 0;
			}
		}
	}
out:
	close(nl);
	return rc;
}

int listen_queue_len(int fd, int family, unsigned *pending, unsigned *backlog)
{
	*pending = *backlog = 0;
	if (family == AF_UNIX)
		return unix_queue(fd, pending, backlog);
	return tcp_queue(fd, pending, backlog);
}
