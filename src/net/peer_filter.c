/*
 * listen.allowed_clients enforced by the kernel: a classic BPF socket filter
 * on a listening TCP socket sees every SYN before a connection exists, so a
 * program that accepts on the pool socket itself (exec.mode = direct) never
 * gets a connection from a peer outside the list, whatever it checks.
 *
 * The filter reads the source address from the network header (SKF_NET_OFF),
 * IPv4 or IPv6 by the version nibble, so an IPv6 socket's IPv4-mapped
 * clients are matched by their IPv4 address, as allowed_clients_match does.
 * A dropped SYN gets no answer: the client times out (the kernel cannot
 * reset from a filter).  Accepted sockets inherit the filter; their packets
 * come from the same, allowed, peer.
 */
#include "net/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NET(off) ((uint32_t)(SKF_NET_OFF + (off)))

struct prog {
	struct sock_filter *ins;
	size_t n, cap;
};

static int emit(struct prog *p, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 32;
		struct sock_filter *ni = realloc(p->ins, cap * sizeof(*ni));
		if (!ni)
			return -1;
		p->ins = ni;
		p->cap = cap;
	}
	p->ins[p->n++] = (struct sock_filter){ code, jt, jf, k };
	return 0;
}

/* A word of an address as BPF loads it (network order read as a number). */
static uint32_t word(const void *p)
{
	uint32_t w;
	memcpy(&w, p, 4);
	return ntohl(w);
}

/*
 * Each address is a run of compares ending in "ret accept" when all match;
 * a mismatch jumps over the rest of the run.  Runs are at most 9
 * instructions, so the 8-bit jump offsets always suffice.
 */
static int build(struct prog *p, const struct allowed_clients *ac)
{
	int rc = 0;
	/* A = IP version */
	rc |= emit(p, BPF_LD | BPF_B | BPF_ABS, 0, 0, NET(0));
	rc |= emit(p, BPF_ALU | BPF_RSH | BPF_K, 0, 0, 4);
	size_t v6_jump = p->n;
	rc |= emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 4);   /* jf set below: to the IPv6 part */
	for (size_t i = 0; i < ac->n; i++) {
		const struct sockaddr_storage *ss = &ac->addrs[i];
		const uint8_t *a = NULL;
		if (ss->ss_family == AF_INET)
			a = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
		else if (IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)ss)->sin6_addr))
			a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr + 12;
		if (!a)
			continue;
		rc |= emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, NET(12));
		rc |= emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, word(a));
		rc |= emit(p, BPF_RET | BPF_K, 0, 0, 0xffffffffu);
	}
	rc |= emit(p, BPF_RET | BPF_K, 0, 0, 0);
	if (rc)
		return -1;
	size_t v6_start = p->n;
	/* A is the version here: anything but IPv6 is dropped */
	rc |= emit(p, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 6);
	rc |= emit(p, BPF_RET | BPF_K, 0, 0, 0);
	for (size_t i = 0; i < ac->n; i++) {
		const struct sockaddr_storage *ss = &ac->addrs[i];
		if (ss->ss_family != AF_INET6)
			continue;
		const uint8_t *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
		/* 4 × (load, compare): a mismatch skips to the next address's run */
		for (int w = 0; w < 4; w++) {
			uint8_t skip = (uint8_t)(2 * (3 - w) + 1);
			rc |= emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, NET(8 + 4 * w));
			rc |= emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, skip, word(a + 4 * w));
		}
		rc |= emit(p, BPF_RET | BPF_K, 0, 0, 0xffffffffu);
	}
	rc |= emit(p, BPF_RET | BPF_K, 0, 0, 0);
	if (rc)
		return -1;
	size_t dist = v6_start - v6_jump - 1;
	if (dist > 255) {
		errno = E2BIG;
		return -1;
	}
	p->ins[v6_jump].jf = (uint8_t)dist;
	return 0;
}

int allowed_clients_attach(int fd, const struct allowed_clients *ac)
{
	if (!ac || ac->n == 0) {
		/* A socket inherited across a reload may carry the last configuration's filter. */
		int unused = 0;   /* the kernel wants an int's length, whatever it holds */
		if (setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof(unused)) < 0 &&
		    errno != ENOENT)
			return -1;
		return 0;
	}
	struct prog p = { 0 };
	if (build(&p, ac) < 0) {
		int e = errno;
		free(p.ins);
		errno = e ? e : ENOMEM;
		return -1;
	}
	struct sock_fprog fp = { .len = (unsigned short)p.n, .filter = p.ins };
	int rc = p.n > BPF_MAXINSNS ? (errno = E2BIG, -1) :
		 setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp));
	int e = errno;
	free(p.ins);
	errno = e;
	return rc;
}
