/*
 * module.path checked before any worker needs it (`fpmd -t`, start, the
 * reload check): the file loads, exports fpmd_module, speaks this ABI and
 * has a handle function.  Loading runs the module's constructors, which must
 * never happen in the master (root, owner of every socket): a child does it,
 * as the pool's user when the master is root, and only reports back.
 */
#include "master/module_probe.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fpmd/module.h"
#include "master/ids.h"
#include "shm/scoreboard.h"

#define PROBE_TIMEOUT_MS 5000

/* In the child: the answer goes to fd, nothing else leaves the process. */
static void probe_child(const struct pool_conf *p, int fd)
{
	char msg[512] = "";
	uid_t uid;
	gid_t gid;
	char name[64];
	if (geteuid() == 0 && p->user && *p->user &&
	    ids_user(p->user, &uid, &gid, name, sizeof(name)) == 0) {
		if (p->group && *p->group)
			ids_group(p->group, &gid);
		if ((gid != (gid_t)-1 && (setgroups(0, NULL) < 0 || setgid(gid) < 0)) || setuid(uid) < 0) {
			snprintf(msg, sizeof(msg), "cannot switch to user '%s' to load it: %s", p->user,
				 strerror(errno));
			goto out;
		}
	}
	void *dl = dlopen(p->module_path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		const char *e = dlerror();
		snprintf(msg, sizeof(msg), "cannot be loaded: %s", e ? e : "?");
		goto out;
	}
	const struct fpmd_module *mod = dlsym(dl, "fpmd_module");
	if (!mod)
		snprintf(msg, sizeof(msg), "does not export 'fpmd_module' (see fpmd/module.h)");
	else if (mod->abi != FPMD_MODULE_ABI)
		snprintf(msg, sizeof(msg), "was built for module ABI %u, this fpmd speaks %u", mod->abi,
			 (unsigned)FPMD_MODULE_ABI);
	else if (!mod->handle)
		snprintf(msg, sizeof(msg), "has no handle function");
out:
	if (write(fd, msg, strlen(msg)) < 0)
		_exit(2);
	_exit(msg[0] ? 1 : 0);
}

int module_probe(const struct pool_conf *p, char *err, size_t cap)
{
	err[0] = '\0';
	int fd = open(p->module_path, O_RDONLY | O_CLOEXEC);
	unsigned char magic[4] = { 0 };
	if (fd < 0) {
		snprintf(err, cap, "cannot be opened: %s", strerror(errno));
		return -1;
	}
	ssize_t n = read(fd, magic, sizeof(magic));
	close(fd);
	if (n != 4 || memcmp(magic, "\177ELF", 4) != 0) {
		snprintf(err, cap, "is not a shared object (ELF)");
		return -1;
	}
	int pp[2];
	if (pipe2(pp, O_CLOEXEC) < 0) {
		snprintf(err, cap, "cannot be checked: pipe: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, cap, "cannot be checked: fork: %s", strerror(errno));
		close(pp[0]);
		close(pp[1]);
		return -1;
	}
	if (pid == 0) {
		close(pp[0]);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		probe_child(p, pp[1]);
	}
	close(pp[1]);
	/* The answer, or EOF when the child exits; a constructor that hangs is cut short. */
	char buf[512];
	size_t len = 0;
	uint64_t t0 = sb_mono_us();
	int timed_out = 0;
	for (;;) {
		long left = PROBE_TIMEOUT_MS - (long)((sb_mono_us() - t0) / 1000u);
		struct pollfd pf = { .fd = pp[0], .events = POLLIN };
		if (left <= 0) {
			timed_out = 1;
			break;
		}
		int r = poll(&pf, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			timed_out = r == 0;
			break;
		}
		ssize_t got = read(pp[0], buf + len, sizeof(buf) - 1 - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
		if (len == sizeof(buf) - 1)
			break;
	}
	close(pp[0]);
	buf[len] = '\0';
	if (timed_out)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out) {
		snprintf(err, cap, "did not finish loading within %d s", PROBE_TIMEOUT_MS / 1000);
		return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && len == 0)
		return 0;
	if (len)
		snprintf(err, cap, "%s", buf);
	else if (WIFSIGNALED(status))
		snprintf(err, cap, "crashed while loading (signal %d)", WTERMSIG(status));
	else
		snprintf(err, cap, "exited with code %d while loading", WEXITSTATUS(status));
	return -1;
}
