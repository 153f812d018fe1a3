/*
 * Listening sockets: parse php-fpm's `listen` forms, open them, and check
 * listen.allowed_clients.
 *
 *   /run/fpmd/www.sock    unix socket (relative paths are relative to the cwd,
 *                         already resolved against the prefix by the caller)
 *   9000                  every address, IPv6 with IPv4-mapped (0.0.0.0 fallback)
 *   127.0.0.1:9000        IPv4
 *   [::1]:9000            IPv6
 *   *:9000 / [::]:9000    every address
 */
#ifndef FPMD_NET_LISTEN_H
#define FPMD_NET_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

struct listen_addr {
	int family;                      /* AF_UNIX, AF_INET, AF_INET6 */
	struct sockaddr_storage ss;
	socklen_t len;
	int any;                         /* bare port: dual-stack wildcard */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char text[160];                  /* as php-fpm prints it: path or ip:port */
	char spec[160];                  /* as configured (`listen = ...`) */
};

/* Returns 0, or -1 with a reason in err. */
int listen_parse(const char *spec, struct listen_addr *out, char *err, size_t errlen);

struct listen_perms {
	uid_t owner;                     /* (uid_t)-1 = leave */
	gid_t group;
	int mode;                        /* -1 = leave */
};

/*
 * Opens, binds and listens (SO_REUSEADDR, close-on-exec, non-blocking).
 * A unix path that exists is removed only when no live server answers on it.
 * Returns the fd, or -1 with errno set and a reason in err.
 */
int listen_open(struct listen_addr *a, int backlog, const struct listen_perms *perms,
		char *err, size_t errlen);

/*
 * A unix socket's path, for changing its owner, mode or ACL: the socket's
 * directory may be writable by a pool's user, who could put a symlink there
 * for the root master to hand over whatever it points to.  The path is
 * opened O_PATH|O_NOFOLLOW and must be a socket; proc (at least
 * LISTEN_PROC_PATH_MAX bytes) names that very inode (/proc/self/fd/N) for
 * chown(), chmod() and setxattr().  Returns the descriptor to close after,
 * or -1 with errno (ENOTSOCK: not a socket, a symlink included).
 */
#define LISTEN_PROC_PATH_MAX 32
int listen_path_pin(const char *path, char *proc);
/*
 * Owner (when perms->owner or group is set) and mode of the socket at path,
 * through listen_path_pin.  0, or -1 with errno and a reason in err.
 */
int listen_path_apply(const char *path, const struct listen_perms *perms, char *err, size_t errlen);

/* The kernel's somaxconn, for listen.backlog = -1. */
int listen_somaxconn(void);

/* listen.allowed_clients: a parsed list of addresses. */
struct allowed_clients {
	size_t n;
	struct sockaddr_storage *addrs;
};

int  allowed_clients_parse(const char *list, struct allowed_clients *out, char *err, size_t errlen);
/* 1 if sa is allowed (an empty list allows all), 0 otherwise. */
int  allowed_clients_match(const struct allowed_clients *ac, const struct sockaddr *sa);
void allowed_clients_free(struct allowed_clients *ac);
/*
 * peer_filter.c: drops, in the kernel, connections to a listening TCP socket
 * from peers not in the list (an empty list removes the filter).  0, or -1
 * with errno.
 */
int  allowed_clients_attach(int fd, const struct allowed_clients *ac);

/* Formats a peer address as text ("127.0.0.1", "::1", "unix"). */
void sockaddr_text(const struct sockaddr *sa, char *buf, size_t cap);

#endif
