/*
 * daemonize = yes: the launching process waits (up to 10 s) until the
 * master says whether it started, so `fpmd && echo ok` means it is serving.
 * Pid file written atomically (temp file + rename).
 */
#include "master/master.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"

int daemonize_start(int *notify_fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(p[1]);
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		char status = 0;
		int r;
		do
			r = poll(&pfd, 1, 10000);
		while (r < 0 && errno == EINTR);
		if (r == 0) {
			fprintf(stderr, "fpmd: the master did not report its start within 10 s; "
				"see the error log\n");
			_exit(70);
		}
		if (read(p[0], &status, 1) != 1 || status != '1')
			_exit(78);
		_exit(0);
	}
	close(p[0]);
	setsid();
	*notify_fd = p[1];
	return 0;
}

/*
 * Called once startup has succeeded or failed.  On success the daemon lets
 * go of the terminal: stdin/stdout to /dev/null, stderr to the error log.
 */
void daemonize_notify(int *notify_fd, int ok)
{
	if (*notify_fd < 0)
		return;
	char c = ok ? '1' : '0';
	if (write(*notify_fd, &c, 1) < 0) {
		/* The launcher is gone; nothing to tell. */
	}
	close(*notify_fd);
	*notify_fd = -1;
	if (!ok)
		return;
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(log_fd() >= 0 ? log_fd() : null, 2);
		if (null > 2)
			close(null);
	}
}

int pidfile_write(const char *path)
{
	/*
	 * A new file of an unpredictable name (O_EXCL: never through a symlink),
	 * renamed over the path: its directory may be a pool user's (Debian's
	 * /run/php), who could otherwise have the root master truncate any file.
	 */
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fchmod(fd, 0644) < 0) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n || fsync(fd) < 0) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

void pidfile_remove(const char *path)
{
	if (path)
		unlink(path);
}
