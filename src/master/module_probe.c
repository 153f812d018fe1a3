/*
 * module.path checked before any worker needs it (`fpmd -t`, start, the
 * reload check): the file loads, exports fpmd_module, speaks this ABI and
 * has a handle function.  Loading runs the module's constructors, which must
 * never happen in the master (root, owner of every socket): a process of its
 * own does it (fpmd itself exec'd with --probe-module, holding nothing of the
 * master's but the pipe it answers on), as the pool's user when the master is
 * root, and only reports back.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fpmd/module.h"
#include "master/ids.h"
#include "shm/scoreboard.h"

#define PROBE_TIMEOUT_MS 5000

#define PROBE_ARG "--probe-module"
#define PROBE_ANSWER_FD 3

/*
 * The probe process (fpmd --probe-module PATH USER GROUP, exec'd by
 * module_probe): the answer goes to PROBE_ANSWER_FD, nothing else leaves it.
 */
static void probe_run(const char *path, const char *user, const char *group)
{
	int fd = PROBE_ANSWER_FD;
	char msg[512] = "";
	uid_t uid;
	gid_t gid;
	char name[64];
	if (geteuid() == 0 && *user) {
		/* never loaded as root: a user that does not resolve is an answer, not a fallback */
		if (ids_user(user, &uid, &gid, name, sizeof(name)) < 0 ||
		    (*group && ids_group(group, &gid) < 0)) {
			snprintf(msg, sizeof(msg), "not checked: its pool's user or group does not resolve");
			goto out;
		}
		if (gid == (gid_t)-1)
			gid = (gid_t)uid;    /* a bare uid: its own number as the group, as the workers get */
		if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
			snprintf(msg, sizeof(msg), "cannot switch to user '%s' to load it: %s", user,
				 strerror(errno));
			goto out;
		}
	}
	/*
	 * Looked at here, as the pool's user and under the master's time limit,
	 * never in the master: a path the pool's user can write may be a FIFO
	 * (an open that waits for a writer) or a file of a FUSE mount it runs.
	 */
	int mf = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	unsigned char magic[4] = { 0 };
	if (mf < 0) {
		snprintf(msg, sizeof(msg), "cannot be opened: %s", strerror(errno));
		goto out;
	}
	if (fstat(mf, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(mf);
		snprintf(msg, sizeof(msg), "is not a regular file");
		goto out;
	}
	ssize_t n = read(mf, magic, sizeof(magic));
	close(mf);
	if (n != 4 || memcmp(magic, "\177ELF", 4) != 0) {
		snprintf(msg, sizeof(msg), "is not a shared object (ELF)");
		goto out;
	}
	/* no user as root: only with -R, where the pool's workers run it as root too */
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
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

int module_probe_main(int argc, char **argv)
{
	if (argc != 5 || strcmp(argv[1], PROBE_ARG) != 0)
		return -1;
	probe_run(argv[2], argv[3], argv[4]);
	return 0;
}

/*
 * In the forked child: a session of its own (so whatever the module's code
 * leaves behind is killed with it), the answer's pipe at PROBE_ANSWER_FD,
 * nothing else of the master's: no descriptor (pool sockets, the control
 * socket, logs, children's pipes) and, by exec, no mapping (scoreboards).
 */
static void probe_exec(const struct pool_conf *p, int answer)
{
	setsid();
	if (answer != PROBE_ANSWER_FD) {
		if (dup2(answer, PROBE_ANSWER_FD) < 0)
			_exit(2);
	} else {
		fcntl(answer, F_SETFD, 0);
	}
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
		_exit(2);
	/* 2 too: it may be the master's error log; what fails is said on the answer's pipe */
	close_range(PROBE_ANSWER_FD + 1, ~0U, 0);
	char *argv[] = { (char *)"fpmd", (char *)PROBE_ARG, p->module_path,
			 (char *)(p->user ? p->user : ""), (char *)(p->group ? p->group : ""), NULL };
	execv("/proc/self/exe", argv);
	_exit(2);
}

int module_probe(const struct pool_conf *p, char *err, size_t cap)
{
	err[0] = '\0';
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
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		probe_exec(p, pp[1]);
	}
	close(pp[1]);
	fcntl(pp[0], F_SETFL, O_NONBLOCK);
	/*
	 * The answer, until the probe exits (a child the module's constructor
	 * forked may hold the pipe open: its end is not awaited); a constructor
	 * that hangs is cut short.
	 */
	char buf[512];
	size_t len = 0;
	uint64_t t0 = sb_mono_us();
	int timed_out = 0, status = 0, exited = 0;
	for (;;) {
		ssize_t got;
		while (len < sizeof(buf) - 1 && (got = read(pp[0], buf + len, sizeof(buf) - 1 - len)) > 0)
			len += (size_t)got;
		if (exited)
			break;
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			exited = 1;          /* one more read: what it wrote before it left */
			continue;
		}
		long left = PROBE_TIMEOUT_MS - (long)((sb_mono_us() - t0) / 1000u);
		if (left <= 0) {
			timed_out = 1;
			break;
		}
		struct pollfd pf = { .fd = pp[0], .events = POLLIN };
		poll(&pf, 1, left < 20 ? (int)left : 20);
	}
	close(pp[0]);
	buf[len] = '\0';
	/* the probe's session: the probe itself if it hangs, and whatever it left behind */
	kill(-pid, SIGKILL);
	if (!exited)
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
