/*
 * A pool as its workers and handlers see it: its configuration, listening
 * socket, scoreboard, handler and user.  What only the master keeps of a
 * pool (its children, timers, zygote, counters) is behind own, a type
 * defined in master/pool.h that nothing outside src/master/ sees (make
 * check-layers).
 *
 * Ownership: the master owns every pool (master.c creates and frees them,
 * own with it).  A pool owns its listening fd, its scoreboard mapping and
 * its allowed-clients list.  conf and copt are borrowed from the master's
 * configuration.  A worker gets its pool from the master by fork or clone
 * and only reads it.
 */
#ifndef FPMD_POOL_H
#define FPMD_POOL_H

#include <stdint.h>
#include <sys/types.h>

#include "conf/conf.h"
#include "net/listen.h"
#include "shm/scoreboard.h"

struct handler;
struct pool_master;

struct pool {
	struct pool_conf *conf;
	const struct conf_options *copt;  /* the command line's PHP options (-c, -n, -d) */
	const struct handler *handler;
	struct listen_addr addr;
	int listen_fd;
	struct scoreboard sb;
	struct allowed_clients allowed;
	uid_t uid;                   /* -1 when not switching user */
	gid_t gid;
	char user_name[64];
	char user_home[256];         /* its passwd entry's home: HOME in its workers, as php-fpm sets it */
	/*
	 * The user's supplementary groups, resolved by the master as it reads
	 * the configuration (getgrouplist: NSS, the host's files), set by the
	 * workers with setgroups(): never looked up in a worker, which may
	 * already be in its chroot, whose /etc/group and NSS modules
	 * (dlopen'ed as root) the pool's user may have written.  Owned by the
	 * pool (freed with it); NULL with ngroups 0: none.
	 */
	gid_t *groups;
	int ngroups;
	int wake_fd;                 /* eventfd a worker pokes while the master sleeps */
	int access_fd;               /* access.log, opened by the master; -1 = none */
	/*
	 * The pool's handoff pair (master/kept.h): a worker sends a kept
	 * connection it lets go on handoff_worker_fd, the master holds it and
	 * sends it back on handoff_fd when its next request arrives, for an
	 * idle worker to take from handoff_worker_fd.  -1 when none.
	 */
	int handoff_fd;              /* the master's end */
	/* the byte each message carries: a connection to serve, or a descriptor to close */
#define KEPT_MARK_SERVE 'k'
#define KEPT_MARK_CLOSE 'x'
	int handoff_worker_fd;       /* the workers' end: WORKER_FD_HANDOFF in a worker */
	struct pool *next;           /* the master's pools, in configuration order */
	struct pool_master *own;     /* the master's own part (master/pool.h) */
};

/*
 * The descriptor limit fpmd was started with.  The master raises its own
 * (every pool holds a socket, an eventfd, a zygote's pipes...); workers go
 * back to this one unless rlimit_files says otherwise.  0 = not raised.
 */
extern unsigned long long master_nofile_soft;

/* php.zygote = shared: the pool's workers are cloned from the one shared PHP zygote. */
int pool_shares_zygote(const struct pool *p);
/*
 * php.zygote = shared with php.worker_boot = zygote: the pool's own zygote
 * (its booted application, which clones the workers) is itself cloned from
 * the shared PHP zygote, so PHP's start-up and opcache are the shared ones.
 */
int pool_app_zygote_from_shared(const struct pool *p);
/* Either of the two: the pool's PHP is the shared zygote's (its fds, its opcache guard). */
int pool_uses_shared_php(const struct pool *p);

/*
 * In a pool's child: moves want[i] to descriptor i (0..n-1, n <= 8; 1 and 2
 * inheritable, the rest close-on-exec), closes every other descriptor but
 * keep[] (PHP's own, in a worker cloned from the shared zygote), and unmaps
 * the other pools' scoreboards (pools: the list).  Temporaries are made from
 * tmp_from up, past all that is kept.  Exits 70 when it cannot.
 */
void pool_child_fd_layout(struct pool *pools, struct pool *p, const int *want, int n, int tmp_from,
			  const int *keep, size_t nkeep);
/* Closes every descriptor but those in keep (sorted in place). */
void pool_close_all_fds_but(int *keep, size_t n);

/*
 * The answer to a request over a pool's params limits (conf_fcgi_limits), a worker's and status_listen's alike:
 * 431, as a web server answers headers it will not take (a dropped
 * connection is nginx's 502).
 */
#define POOL_PARAMS_REFUSAL "Status: 431 Request Header Fields Too Large\r\n" \
			    "Content-Type: text/plain\r\n\r\n" \
			    "431 Request Header Fields Too Large\n"

#endif
