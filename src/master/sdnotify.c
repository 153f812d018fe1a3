/*
 * systemd notify protocol (sd_notify(3)), spoken directly.
 */
#include "master/sdnotify.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct sockaddr_un addr;
static socklen_t addr_len;

uint64_t sdnotify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	addr_len = 0;
	if (path && (path[0] == '/' || path[0] == '@') && strlen(path) < sizeof(addr.sun_path)) {
		memset(&addr, 0, sizeof(addr));
		addr.sun_family = AF_UNIX;
		memcpy(addr.sun_path, path, strlen(path));
		if (path[0] == '@')
			addr.sun_path[0] = '\0';      /* abstract namespace */
		addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	}
	const char *wd = getenv("WATCHDOG_USEC");
	const char *wp = getenv("WATCHDOG_PID");
	if (!wd || (wp && atol(wp) != (long)getpid()))
		return 0;
	return strtoull(wd, NULL, 10);
}

int sdnotify_enabled(void)
{
	return addr_len != 0;
}

int sdnotify(const char *fmt, ...)
{
	if (!addr_len)
		return 0;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	ssize_t r = sendto(fd, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1,
			   MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len);
	close(fd);
	return r < 0 ? -1 : 0;
}
