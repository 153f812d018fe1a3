/*
 * app.type = cgi: a CGI/1.1 gateway (RFC 3875) in each worker.
 *
 * One request: resolve the script (SCRIPT_FILENAME, or DOCUMENT_ROOT +
 * SCRIPT_NAME, with PATH_INFO split off when the web server did not), check
 * it (inside a cgi.root or named by cgi.allow[], regular file, no
 * setuid/setgid, allowed extension, executable or interpreted), spawn it
 * with vfork as the leader of its own session, then move bytes in one poll loop:
 * request body → script stdin as it arrives, script stdout → client as it is
 * produced (headers checked first), script stderr → log and/or client.
 * Client abort and request_terminate_timeout kill the script's whole session
 * (worker/session.c): a process of it that changed its group is still found.
 */
#include "handlers/handler.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "cgi/cgi.h"
#include "handlers/cgi_landlock.h"
#include "log/log.h"
#include "pool/pool.h"
#include "worker/conn.h"
#include "worker/request.h"
#include "worker/session.h"
#include "worker/worker.h"

extern char **environ;

#define CGI_READ_CHUNK (64u * 1024u)
#define CGI_KILL_GRACE_MS 1000
#define CGI_HEAD_RUN_ON_MS 10000u
/*
 * A request that may change state, its client gone, runs on this long at
 * most without request_terminate_timeout: as long as nginx would have waited
 * for it (fastcgi_read_timeout's default), so a client that posts and hangs
 * up holds a worker no longer than one that stays.
 */
#define CGI_RUN_ON_MS 60000u
#define CGI_REAP_MS 250
/*
 * Output a script writes before it has been given the whole request body is
 * held back, up to this much: nginx stops sending the body once it has the
 * response header, so answering early would leave a script that reads its
 * body afterwards waiting forever.
 */
#define CGI_HOLD_MAX (8u * 1024u * 1024u)

/* Per-worker state, built once in worker_init. */
struct cgi_state {
	int dev_fd;                  /* /dev/fd works here (not a chroot without /proc) */
	char **roots;
	size_t nroots;
	char **allow;
	size_t nallow;
	struct cgi_headers *hdr;
	char *obuf;
	char *errbuf;
	size_t errlen;
	char *hold;                  /* script output held until the body is delivered */
	size_t hold_len, hold_cap;
};

static char **resolve_list(const struct conf_str_list *l, size_t *n, const char *what,
			   const char *pool)
{
	char **out = calloc(l->n ? l->n : 1, sizeof(*out));
	*n = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < l->n; i++) {
		char *real = realpath(l->items[i], NULL);
		if (!real) {
			log_sys(LL_WARNING, "[pool %s] %s '%s' cannot be resolved; ignored", pool, what,
				l->items[i]);
			continue;
		}
		out[(*n)++] = real;
	}
	return out;
}

/*
 * slowcgi's accept_reserve, for a worker that serves one connection at a
 * time: the descriptors a request needs (its connection, the wait set the
 * worker opens next, the script and its pipes) must all be free now, or the
 * worker would accept connections it cannot serve.  Tried for real, as what
 * the worker inherited may differ from the layout fpmd -t assumes.
 */
static int reserve_check(const struct worker *w)
{
	enum { NEED = 1 + 1 + CGI_REQUEST_FDS };
	int fds[NEED], got = 0;
	while (got < NEED && (fds[got] = fcntl(WORKER_FD_LISTEN, F_DUPFD_CLOEXEC, 0)) >= 0)
		got++;
	int e = errno;
	for (int i = 0; i < got; i++)
		close(fds[i]);
	if (got == NEED)
		return 0;
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	errno = e;
	log_sys(LL_ERROR, "[pool %s] child %d: rlimit_files (RLIMIT_NOFILE %llu) leaves %d free "
		"descriptors; a cgi worker needs %d (its connection, its wait set, the script and "
		"three pipes): set rlimit_files to at least %llu", w->pool->conf->name,
		(int)getpid(), (unsigned long long)rl.rlim_cur, got, NEED,
		(unsigned long long)rl.rlim_cur + (unsigned long long)(NEED - got));
	return -1;
}

/*
 * The script running now, for the SIGTERM handler: the leader of its own
 * session (spawn_script), 0 between scripts.
 */
static volatile pid_t running_script;
/*
 * The running request's script's start (clock ticks, session_start_ticks),
 * 0 between requests: orphans started since are the request's, to be killed
 * with it; older ones are background jobs earlier scripts left when they
 * ended well (as fcgiwrap leaves them), which it must not take.
 */
static volatile unsigned long long orphans_since;
/* /proc/.../children is readable: the worker can find and kill a request's orphans */
static int can_adopt;
/* its children when the running script started: theirs, not the request's */
static struct session_known known_children;

/*
 * SIGTERM (a fast stop, or the master stepping in on a request timeout)
 * ends the worker at once: the script's session, out of the worker's
 * process group by design, goes first.  Async-signal-safe calls only.
 * A worker killed outright (SIGKILL) cannot do this: the script then has
 * its parent-death signal (spawn_script).
 */
static void on_sigterm(int signo)
{
	pid_t pid = running_script;
	if (pid > 0) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	session_kill_orphans(orphans_since, &known_children);
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigaction(signo, &dfl, NULL);
	raise(signo);
}

static int cgi_worker_init(struct worker *w)
{
	const struct pool_conf *pc = w->pool->conf;
	struct cgi_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -1;
	st->roots = resolve_list(&pc->cgi_root, &st->nroots, "cgi.root", pc->name);
	st->allow = resolve_list(&pc->cgi_allow, &st->nallow, "cgi.allow[]", pc->name);
	st->hdr = malloc(sizeof(*st->hdr));
	st->obuf = malloc(CGI_READ_CHUNK);
	st->errbuf = malloc(CGI_READ_CHUNK);
	if (!st->roots || !st->allow || !st->hdr || !st->obuf || !st->errbuf)
		return -1;
	if (st->nroots == 0 && st->nallow == 0) {
		log_error("[pool %s] no usable cgi.root or cgi.allow[]: refusing to run any script",
			  pc->name);
		return -1;
	}
	st->dev_fd = access("/dev/fd/0", F_OK) == 0;
	w->handler_data = st;
	/*
	 * What a script starts and leaves in a session of its own (setsid) comes
	 * to this worker when its parent dies, so a stopped request can take it
	 * too (session_kill finds only the script's session).
	 */
	can_adopt = session_adopt_orphans(1) == 0;
	session_adopt_orphans(0);        /* on only while a script runs */
	if (!can_adopt)
		log_sys(LL_WARNING, "[pool %s] child %d: cannot become a child subreaper (no "
			"/proc/self/task/*/children?): what a script starts in a session of its own "
			"outlives a stopped request", pc->name, (int)getpid());
	struct sigaction sa = { .sa_handler = on_sigterm };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	if (pc->cgi_landlock && cgi_landlock_apply(pc, st->roots, st->nroots, st->allow,
						   st->nallow) < 0)
		return -1;
	return reserve_check(w);
}

static void cgi_worker_exit(struct worker *w)
{
	struct cgi_state *st = w->handler_data;
	if (!st)
		return;
	for (size_t i = 0; i < st->nroots; i++)
		free(st->roots[i]);
	for (size_t i = 0; i < st->nallow; i++)
		free(st->allow[i]);
	free(st->roots);
	free(st->allow);
	free(st->hdr);
	free(st->obuf);
	free(st->errbuf);
	free(st->hold);
	free(st);
	w->handler_data = NULL;
}

/* --- finding and checking the script --------------------------------- */

struct script {
	char path[PATH_MAX];         /* as requested, path info removed */
	char real[PATH_MAX];         /* realpath */
	char path_info[PATH_MAX];
	int has_path_info;
	const char *interpreter;
	int fd;
	int allowed_by_list;
	int by_fd;                   /* run through fd (/dev/fd/3 for an interpreter), not by path */
};

/*
 * The checked path, opened refusing any symbolic link on the way: realpath
 * gave a name without one, so a link there now was put in since (a race to
 * run what the checks never saw).  openat2 (Linux 5.6); before it, the
 * descriptor's own name must be the checked one.
 */
static int open_checked(const char *real)
{
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW,
				.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	int fd = (int)syscall(SYS_openat2, AT_FDCWD, real, &how, sizeof(how));
	if (fd >= 0 || errno != ENOSYS)
		return fd;
	fd = open(real, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	char link[64], name[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, name, sizeof(name) - 1);
	if (n < 0 || (size_t)n != strlen(real) || memcmp(name, real, (size_t)n) != 0) {
		close(fd);
		errno = ELOOP;
		return -1;
	}
	return fd;
}

/*
 * A #! script's interpreter opens the script by the name it is given: by
 * its path, it is whatever is at that path then, not the file checked.
 * Safe only when nobody but root can change what the path names: every
 * directory from / to the script's owned by root and not writable by group
 * or others (a sticky one, /tmp, is fine for a root-owned entry in it).
 * Otherwise the script runs through its checked descriptor (/dev/fd/3).
 */
static int path_only_root_can_change(const char *real)
{
	char prefix[PATH_MAX];
	struct stat st, parent;
	if (lstat("/", &parent) < 0 || parent.st_uid != 0 || (parent.st_mode & 022))
		return 0;
	const char *end = strrchr(real, '/');
	for (const char *p = real + 1; end && p <= end; p++) {
		if (*p != '/' && p != end)
			continue;
		size_t n = (size_t)(p - real);
		if (n == 0 || n >= sizeof(prefix))
			break;
		memcpy(prefix, real, n);
		prefix[n] = '\0';
		if (lstat(prefix, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0)
			return 0;
		if ((parent.st_mode & 022) && !(parent.st_mode & S_ISVTX))
			return 0;
		parent = st;
	}
	return !(parent.st_mode & 022);
}

static int under_root(const char *real, const char *root)
{
	size_t n = strlen(root);
	if (n == 1 && root[0] == '/')
		return 1;
	return strncmp(real, root, n) == 0 && real[n] == '/';
}

/*
 * The web server may send SCRIPT_FILENAME with path info still attached
 * (/srv/cgi/app.cgi/extra).  Cut at each '/' from the right until a regular
 * file is found; everything after it is PATH_INFO.  Only lengths that were
 * measured are used: no arithmetic can underflow (CVE-2019-11043).
 */
static int split_path_info(struct script *s)
{
	struct stat st;
	char full[PATH_MAX];
	size_t len = strlen(s->path);
	memcpy(full, s->path, len + 1);
	while (len > 1) {
		char *slash = memrchr(s->path, '/', len);
		if (!slash || slash == s->path)
			break;
		len = (size_t)(slash - s->path);
		s->path[len] = '\0';
		if (stat(s->path, &st) == 0) {
			if (!S_ISREG(st.st_mode))
				break;
			/* Everything cut, with its leading slash, from the original string. */
			snprintf(s->path_info, sizeof(s->path_info), "%s", full + len);
			s->has_path_info = 1;
			return 0;
		}
	}
	/* No script in the path: the caller names the path as it was asked for, not a prefix. */
	memcpy(s->path, full, strlen(full) + 1);
	return -1;
}

static const char *pick_interpreter(const struct pool_conf *pc, const char *path)
{
	const char *dflt = NULL;
	size_t plen = strlen(path);
	for (size_t i = 0; i < pc->cgi_interpreter.n; i++) {
		const char *ext = pc->cgi_interpreter.items[i].key;
		size_t elen = strlen(ext);
		if (elen == 0) {
			dflt = pc->cgi_interpreter.items[i].value;
			continue;
		}
		if (plen > elen && strcmp(path + plen - elen, ext) == 0)
			return pc->cgi_interpreter.items[i].value;
	}
	return dflt;
}

/* Returns 0, or the HTTP status that refuses the request (reason logged). */
static int resolve_script(struct worker *w, struct request *r, struct script *s)
{
	struct cgi_state *st = w->handler_data;
	const struct pool_conf *pc = w->pool->conf;
	const char *pool = pc->name;
	const char *sf = req_param(r, "SCRIPT_FILENAME");
	struct stat sb;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	if (sf && *sf) {
		if (strlen(sf) >= sizeof(s->path))
			goto too_long;
		snprintf(s->path, sizeof(s->path), "%s", sf);
	} else {
		const char *root = req_param(r, "DOCUMENT_ROOT");
		const char *name = req_param(r, "SCRIPT_NAME");
		if (!root || !name || !*name) {
			log_warning("[pool %s] request without SCRIPT_FILENAME (or DOCUMENT_ROOT and "
				    "SCRIPT_NAME): nothing to run", pool);
			return 404;
		}
		if (strlen(root) + strlen(name) + 2 > sizeof(s->path))
			goto too_long;
		size_t rl = strlen(root), nl = strlen(name);
		int sep = !(name[0] == '/' || (rl && root[rl - 1] == '/'));
		memcpy(s->path, root, rl);
		if (sep)
			s->path[rl++] = '/';
		memcpy(s->path + rl, name, nl + 1);
	}
	if (memchr(s->path, '\n', strlen(s->path)) || memchr(s->path, '\r', strlen(s->path))) {
		log_warning("[pool %s] script path with a line break refused", pool);
		return 403;
	}

	if (stat(s->path, &sb) < 0) {
		if ((errno != ENOENT && errno != ENOTDIR) || req_param(r, "PATH_INFO") ||
		    split_path_info(s) < 0) {
			log_notice("[pool %s] script '%s' not found", pool, s->path);
			return 404;
		}
	}
	if (!realpath(s->path, s->real)) {
		log_notice("[pool %s] script '%s' not found", pool, s->path);
		return 404;
	}

	int inside = 0;
	for (size_t i = 0; i < st->nallow && !inside; i++)
		if (strcmp(s->real, st->allow[i]) == 0)
			inside = s->allowed_by_list = 1;
	for (size_t i = 0; i < st->nroots && !inside; i++)
		inside = under_root(s->real, st->roots[i]);
	if (!inside) {
		log_warning("[pool %s] script '%s' (resolved to '%s') is outside every cgi.root and "
			    "not in cgi.allow[]: refused", pool, s->path, s->real);
		return 403;
	}

	s->fd = open_checked(s->real);
	if (s->fd < 0 || fstat(s->fd, &sb) < 0) {
		if (errno == ELOOP)
			log_warning("[pool %s] script '%s' changed into a symbolic link after it was "
				    "checked: refused", pool, s->real);
		else
			log_sys(LL_WARNING, "[pool %s] cannot open script '%s'", pool, s->real);
		return errno == ENOENT ? 404 : 403;
	}
	if (!S_ISREG(sb.st_mode)) {
		log_notice("[pool %s] '%s' is not a regular file", pool, s->real);
		return S_ISDIR(sb.st_mode) ? 403 : 404;
	}
	if (sb.st_mode & (S_ISUID | S_ISGID)) {
		log_warning("[pool %s] script '%s' is setuid or setgid: refused", pool, s->real);
		return 403;
	}
	if (!s->allowed_by_list &&
	    !cgi_extension_allowed(s->real, (const char *const *)pc->security_limit_extensions.items,
				   pc->security_limit_extensions.n)) {
		log_warning("[pool %s] access to the script '%s' has been denied (see "
			    "security.limit_extensions)", pool, s->real);
		return 403;
	}
	s->interpreter = pick_interpreter(pc, s->real);
	if (!s->interpreter && faccessat(s->fd, "", X_OK, AT_EMPTY_PATH) < 0) {
		log_warning("[pool %s] script '%s' is not executable and no cgi.interpreter matches",
			    pool, s->real);
		return 403;
	}
	s->by_fd = !path_only_root_can_change(s->real);
	if (s->by_fd && !st->dev_fd) {
		log_warning("[pool %s] script '%s' is in a directory others than root can change, "
			    "and /dev/fd is missing (a chroot without /proc) to run it through the "
			    "descriptor checked: refused; mount /proc there, or make its directories "
			    "root's", pool, s->real);
		return 403;
	}
	return 0;

too_long:
	log_warning("[pool %s] script path longer than %d bytes refused", pool, PATH_MAX - 1);
	return 404;
}

/* --- environment ------------------------------------------------------- */

static int env_push(char ***env, size_t *n, size_t *cap, const char *name, const char *value)
{
	if (*n + 2 > *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		char **ne = realloc(*env, nc * sizeof(*ne));
		if (!ne)
			return -1;
		*env = ne;
		*cap = nc;
	}
	char *kv;
	if (asprintf(&kv, "%s=%s", name, value) < 0)
		return -1;
	(*env)[(*n)++] = kv;
	(*env)[*n] = NULL;
	return 0;
}

static int env_has(char **env, size_t n, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < n; i++)
		if (strncmp(env[i], name, len) == 0 && env[i][len] == '=')
			return 1;
	return 0;
}

static void env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

/*
 * The script sees: the request's meta-variables that cgi_env_allowed() lets
 * through (an allowlist, widened by cgi.pass_params), then the worker's environment (the pool's env[], clear_env
 * applied), then what CGI requires and the web server did not send.
 */
static char **build_env(const struct pool_conf *pc, struct request *r, const struct script *s)
{
	char **env = NULL;
	size_t n = 0, cap = 0;
	for (size_t i = 0; i < req_param_count(r); i++) {
		const struct fcgi_param *p = req_param_at(r, i);
		/* the operator's env[] wins over what a request sends (GIT_PROJECT_ROOT=/) */
		if (!cgi_env_allowed(p->name, (const char *const *)pc->cgi_pass_params.items,
				     pc->cgi_pass_params.n) || strcmp(p->name, "SCRIPT_FILENAME") == 0 ||
		    (s->has_path_info && strcmp(p->name, "PATH_INFO") == 0) ||
		    conf_kv_get(&pc->env, p->name))
			continue;
		if (env_push(&env, &n, &cap, p->name, p->value) < 0)
			goto fail;
	}
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq)
			continue;
		char name[256];
		size_t len = (size_t)(eq - *e);
		if (len >= sizeof(name))
			continue;
		memcpy(name, *e, len);
		name[len] = '\0';
		if (!env_has(env, n, name) && env_push(&env, &n, &cap, name, eq + 1) < 0)
			goto fail;
	}
	if (env_push(&env, &n, &cap, "SCRIPT_FILENAME", s->real) < 0)
		goto fail;
	if (s->has_path_info && env_push(&env, &n, &cap, "PATH_INFO", s->path_info) < 0)
		goto fail;
	if (!env_has(env, n, "GATEWAY_INTERFACE") &&
	    env_push(&env, &n, &cap, "GATEWAY_INTERFACE", "CGI/1.1") < 0)
		goto fail;
	if (!env_has(env, n, "PATH") &&
	    env_push(&env, &n, &cap, "PATH", "/usr/local/bin:/usr/bin:/bin") < 0)
		goto fail;
	return env;
fail:
	env_free(env);
	return NULL;
}

/* --- spawning ---------------------------------------------------------- */

struct script_proc {
	pid_t pid;
	int in, out, err;            /* our ends; -1 when closed */
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * vfork: the worker is paused until the child has exec'd, so the child may
 * only touch its own stack and report a failed exec through exec_errno.
 * A binary is executed by descriptor (execveat), so the file checked is the
 * file run.  A #! script is run by its checked real path when only root can
 * change what that path names (its interpreter sees its name: $0, FindBin,
 * __file__ work), else by descriptor too, its interpreter reading
 * /dev/fd/3 (fd 3 stays open across the exec for it).
 */
static int spawn_script(const struct script *s, char **env, struct script_proc *sp)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	char dir[PATH_MAX];
	char shebang[2] = { 0, 0 };
	volatile int exec_errno = 0;

	snprintf(dir, sizeof(dir), "%s", s->real);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	int by_fd = !s->interpreter && pread(s->fd, shebang, 2, 0) == 2 &&
		    !(shebang[0] == '#' && shebang[1] == '!');
	if (!s->interpreter && !by_fd && (shebang[0] != '#' || shebang[1] != '!'))
		by_fd = 1;   /* short or empty file: let the kernel judge it */

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		goto fail;

	/* the interpreter reads the checked file: through its descriptor when its path may change */
	char *argv_interp[] = { (char *)s->interpreter, (char *)(s->by_fd ? "/dev/fd/3" : s->real),
				NULL };
	char *argv_plain[] = { (char *)s->real, NULL };
	if (s->by_fd)
		by_fd = 1;      /* a #! script too: the kernel gives its interpreter /dev/fd/3 */
	int script_fd = s->fd;

	pid_t worker = getpid();
	/* earlier requests' ended orphans; then this request's come to the worker */
	session_reap_orphans(0);
	if (can_adopt) {
		session_note_children(&known_children);
		session_adopt_orphans(1);
	}
	pid_t pid = vfork();
	if (pid < 0)
		goto fail;
	if (pid == 0) {
		sigset_t none;
		struct sigaction dfl;
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigaction(SIGPIPE, &dfl, NULL);
		sigaction(SIGQUIT, &dfl, NULL);
		sigaction(SIGINT, &dfl, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/*
		 * A session of its own, not just a group: setpgid() can only move a
		 * process to a group of its own session, so the script cannot join
		 * the worker's group to dodge the kill that ends its request.
		 */
		setsid();
		/* out of the worker's group, but not beyond its life (kill -9, the OOM killer) */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != worker)
			_exit(127);
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0 ||
		    dup2(script_fd, 3) < 0) {
			exec_errno = errno;
			_exit(127);
		}
		close_range(4, ~0U, 0);
		if (chdir(dir) < 0) {
			exec_errno = errno;
			_exit(127);
		}
		if (s->interpreter)
			execve(s->interpreter, argv_interp, env);
		else if (by_fd)
			execveat(3, "", argv_plain, env, AT_EMPTY_PATH);
		else
			execve(s->real, argv_plain, env);
		exec_errno = errno ? errno : ENOEXEC;
		_exit(127);
	}
	/* The child made its own session before exec (vfork ran it first). */
	close(in[0]);
	close(out[1]);
	close(err[1]);
	if (exec_errno) {
		int e = exec_errno;
		close(in[1]);
		close(out[0]);
		close(err[0]);
		waitpid(pid, NULL, 0);
		errno = e;
		return -1;
	}
	sp->pid = pid;
	running_script = pid;
	if (can_adopt)
		orphans_since = session_start_ticks(pid);
	sp->in = in[1];
	sp->out = out[0];
	sp->err = err[0];
	fcntl(sp->in, F_SETFL, O_NONBLOCK);
	fcntl(sp->out, F_SETFL, O_NONBLOCK);
	fcntl(sp->err, F_SETFL, O_NONBLOCK);
	return 0;
fail:;
	int e = errno;
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0) close(in[i]);
		if (out[i] >= 0) close(out[i]);
		if (err[i] >= 0) close(err[i]);
	}
	errno = e;
	return -1;
}

/*
 * Stops the script and everything it started: TERM to its session (the pid,
 * its group, and any process of the session that moved to another group),
 * a grace period for the whole session, then KILL to what is left.  The
 * script's own end does not end the others' grace: git-http-backend dies of
 * TERM at once, while the receive-pack it started is still removing its
 * quarantine directory (killed then, it left it in the repository).  Every
 * wait is bounded: after SIGKILL to the pid itself, waitpid returns.
 */
static int stop_script(struct script_proc *sp)
{
	int status = 0, reaped = 0;
	session_kill(sp->pid, SIGTERM);
	for (int waited = 0; waited < CGI_KILL_GRACE_MS; waited += 10) {
		if (!reaped && waitpid(sp->pid, &status, WNOHANG) == sp->pid)
			reaped = 1;
		if (reaped && session_count(sp->pid) == 0)
			break;
		usleep(10 * 1000);
	}
	session_kill(sp->pid, SIGKILL);   /* what is left of it */
	if (!reaped)
		waitpid(sp->pid, &status, 0);
	running_script = 0;               /* reaped: its pid is not ours to signal any more */
	/*
	 * And what left its session: orphans this request made, never earlier
	 * ones.  They are this worker's once their parents are gone (a process
	 * hands its children on before it is a zombie, which session_count
	 * leaves out): a bounded wait for that first.
	 */
	for (int waited = 0; waited < 200 && session_count(sp->pid) > 0; waited += 5)
		usleep(5 * 1000);
	session_kill_orphans(orphans_since, &known_children);
	sp->pid = 0;
	return status;
}

/* --- the request ------------------------------------------------------- */


/* Script stderr: whole lines to the log (with pool, pid and script), and/or raw to the client. */
static void relay_stderr(struct worker *w, struct request *r, const struct script *s,
			 const char *data, size_t len, int final)
{
	struct cgi_state *st = w->handler_data;
	enum conf_cgi_stderr mode = w->pool->conf->cgi_stderr;
	if (mode != CGI_STDERR_LOG && len)
		resp_stderr(r, data, len);
	if (mode == CGI_STDERR_CLIENT)
		return;
	while (len) {
		size_t room = CGI_READ_CHUNK - st->errlen;
		size_t n = len < room ? len : room;
		memcpy(st->errbuf + st->errlen, data, n);
		st->errlen += n;
		data += n;
		len -= n;
		size_t start = 0;
		for (size_t i = 0; i < st->errlen; i++)
			if (st->errbuf[i] == '\n') {
				log_warning("[pool %s] child %d script '%s' said into stderr: \"%.*s\"",
					    w->pool->conf->name, (int)getpid(), s->real,
					    (int)(i - start), st->errbuf + start);
				start = i + 1;
			}
		if (start == 0 && st->errlen == CGI_READ_CHUNK)
			start = st->errlen;          /* an endless line goes out in pieces */
		memmove(st->errbuf, st->errbuf + start, st->errlen - start);
		st->errlen -= start;
	}
	if (final && st->errlen) {
		log_warning("[pool %s] child %d script '%s' said into stderr: \"%.*s\"",
			    w->pool->conf->name, (int)getpid(), s->real, (int)st->errlen, st->errbuf);
		st->errlen = 0;
	}
}

struct run {
	int holding_done;            /* hold-back is over: output streams directly */
	int status_sent;             /* response headers went to the client */
	uint64_t out_bytes;          /* stdout bytes read from the script */
	uint64_t in_bytes;           /* body bytes passed to the script */
	int timed_out;
	int aborted;
	int bad_headers;
	int too_large;
	int client_quiet;            /* the client half-closed: watched no more (its writes tell) */
	uint64_t started_ms;         /* request_terminate_timeout counts from here */
	int head;                    /* a HEAD request */
	int unsafe;                  /* not GET, HEAD, OPTIONS or TRACE: it may change state */
	int body_delivered;          /* the script has the whole body (or stopped reading it) */
	int client_gone;             /* hung up before its whole body was read from the socket */
	int let_go;                  /* its client gone, the script runs on (run_on) */
	uint64_t deadline_ms;        /* the script's end at the latest, 0 = none */
};

/*
 * The client is gone; whether the script runs on, its output dropped.
 *
 * A HEAD's answer is its header: nginx hangs up once it has it.  That is
 * not a client who left, and the script's work after its header (what it
 * does, what it says on stderr) is done as for a GET, as fcgiwrap and a
 * HEAD in PHP do: within request_terminate_timeout, or CGI_HEAD_RUN_ON_MS
 * without one.
 *
 * A request that may change state (a POST, a PUT…) whose body the script
 * has is not cut either: stopped mid-work, a script leaves what it was
 * changing half-done (hgweb's push: an abandoned transaction, the
 * repository refusing every push until `hg recover`).  It runs within
 * request_terminate_timeout, as if its client were there, or CGI_RUN_ON_MS
 * without one (fcgiwrap never stops one).  A GET's script is stopped at
 * once: nobody wants its answer.
 */
static int run_on(struct request *r, struct run *run)
{
	int head = run->head && run->status_sent;
	/* the whole body is ours (what is left of it goes to the script all the same) */
	if (!head && !(run->unsafe && (run->body_delivered || r->stdin_done)))
		return 0;
	if (!run->let_go) {
		run->let_go = 1;
		run->client_quiet = 1;
		r->aborted = 1;
		uint64_t limit = conn_now_ms() + (head ? CGI_HEAD_RUN_ON_MS : CGI_RUN_ON_MS);
		if (!run->deadline_ms || (head && run->deadline_ms > limit))
			run->deadline_ms = limit;
	}
	return 1;
}

static void log_head_ran_on(const struct worker *w, const struct script *s, const struct run *run)
{
	if (run->head)
		log_warning("[pool %s] child %d, script '%s' of a HEAD ran on for %u sec after its "
			    "answer, terminating", w->pool->conf->name, (int)getpid(), s->real,
			    (unsigned)((run->deadline_ms - run->started_ms) / 1000u));
	else
		log_warning("[pool %s] child %d, script '%s' execution timed out (%u sec) after its "
			    "client left, terminating", w->pool->conf->name, (int)getpid(), s->real,
			    (unsigned)((run->deadline_ms - run->started_ms) / 1000u));
}

/* Handles bytes from the script's stdout. -1 when the response cannot go on. */
static int relay_stdout(struct worker *w, struct request *r, const struct script *s,
			const char *data, size_t len, struct run *run)
{
	struct cgi_state *st = w->handler_data;
	if (run->let_go)
		return 0;
	if (!run->status_sent) {
		size_t used;
		int hr = cgi_headers_feed(st->hdr, data, len, &used);
		if (hr < 0) {
			log_error("[pool %s] script '%s': %s", w->pool->conf->name, s->real,
				  st->hdr->error);
			run->bad_headers = 1;
			return -1;
		}
		if (hr == 0)
			return 0;
		char block[CGI_HEADERS_MAX + 64];
		size_t blen = cgi_headers_output(st->hdr, block, sizeof(block));
		if (blen == 0) {
			log_error("[pool %s] script '%s': header section too large to relay",
				  w->pool->conf->name, s->real);
			run->bad_headers = 1;
			return -1;
		}
		req_note_headers(r, block, blen);
		r->status = st->hdr->status;
		r->headers_sent = 1;
		run->status_sent = 1;
		if (resp_write(r, block, blen) < 0)
			return run_on(r, run) ? 0 : -1;
		data += used;
		len -= used;
	}
	if (len && resp_write(r, data, len) < 0)
		return run_on(r, run) ? 0 : -1;
	/* Streaming: what the script wrote reaches the client now. */
	if (resp_flush(r) < 0)
		return run_on(r, run) ? 0 : -1;
	return 0;
}

/* Keeps early output; 0, or -1 when it must go out now (too much to hold). */
static int hold_output(struct cgi_state *st, const char *data, size_t len)
{
	if (st->hold_len + len > CGI_HOLD_MAX)
		return -1;
	if (st->hold_len + len > st->hold_cap) {
		size_t cap = st->hold_cap ? st->hold_cap : 65536;
		while (cap < st->hold_len + len)
			cap *= 2;
		char *nh = realloc(st->hold, cap);
		if (!nh)
			return -1;
		st->hold = nh;
		st->hold_cap = cap;
	}
	memcpy(st->hold + st->hold_len, data, len);
	st->hold_len += len;
	return 0;
}

/* Ends the hold-back: what was held goes out first. */
static int release_output(struct worker *w, struct request *r, const struct script *s,
			  struct run *run)
{
	struct cgi_state *st = w->handler_data;
	run->holding_done = 1;
	if (!st->hold_len)
		return 0;
	size_t len = st->hold_len;
	st->hold_len = 0;
	return relay_stdout(w, r, s, st->hold, len, run);
}

static int run_script(struct worker *w, struct request *r, const struct script *s,
		      struct script_proc *sp, struct run *run)
{
	struct cgi_state *st = w->handler_data;
	const struct pool_conf *pc = w->pool->conf;
	run->started_ms = conn_now_ms();
	run->deadline_ms = pc->request_terminate_timeout > 0
		? run->started_ms + (uint64_t)pc->request_terminate_timeout * 1000u : 0;
	const char *method = req_param(r, "REQUEST_METHOD");
	run->head = method && strcmp(method, "HEAD") == 0;
	run->unsafe = method && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
		      strcmp(method, "OPTIONS") != 0 && strcmp(method, "TRACE") != 0;

	cgi_headers_init(st->hdr);
	st->errlen = 0;
	st->hold_len = 0;
	for (;;) {
		/* The body is delivered (or the script stopped reading it): stream now. */
		if (sp->in < 0 && !run->holding_done && release_output(w, r, s, run) < 0) {
			if (!run->bad_headers)
				run->aborted = 1;
			return -1;
		}
		if (sp->out < 0 && sp->err < 0)
			break;
		/* orphans of the script's that ended: no zombie piles up under the worker */
		session_reap_orphans(sp->pid);
		/* Move what the client already sent, without blocking. */
		int body = sp->in >= 0 ? req_body_next(r, 0) : 0;
		if (body < 0) {
			if (r->body_too_large)
				run->too_large = 1;
			else
				run->aborted = 1;
			return -1;
		}
		if (body == 2 && sp->in >= 0) {
			close_fd(&sp->in);
			run->body_delivered = 1;
			if (run->client_gone)
				run_on(r, run);
		}

		struct pollfd pfd[4];
		int nfd = 0, i_conn = -1, i_in = -1, i_out = -1, i_err = -1;
		if (sp->in >= 0 && body == 0) {
			i_conn = nfd;
			pfd[nfd++] = (struct pollfd){ .fd = r->conn->fd, .events = POLLIN };
		} else if ((!r->stdin_done || sp->in < 0) && !run->client_quiet) {
			/* Only to notice a client that hangs up while the script runs. */
			i_conn = nfd;
			pfd[nfd++] = (struct pollfd){ .fd = r->conn->fd, .events = POLLRDHUP };
		}
		if (sp->in >= 0 && body == 1) {
			i_in = nfd;
			pfd[nfd++] = (struct pollfd){ .fd = sp->in, .events = POLLOUT };
		}
		if (sp->out >= 0) {
			i_out = nfd;
			pfd[nfd++] = (struct pollfd){ .fd = sp->out, .events = POLLIN };
		}
		if (sp->err >= 0) {
			i_err = nfd;
			pfd[nfd++] = (struct pollfd){ .fd = sp->err, .events = POLLIN };
		}
		int timeout = -1;
		if (run->deadline_ms) {
			uint64_t now = conn_now_ms();
			if (now >= run->deadline_ms) {
				run->timed_out = 1;
				return -1;
			}
			timeout = (int)(run->deadline_ms - now);
		}
		/*
		 * request_body_timeout runs only while the body is awaited: a script
		 * that does not read (a full pipe) does not count against the client.
		 */
		int gap = req_body_gap(r, i_conn >= 0 && pfd[i_conn].events == POLLIN);
		if (gap == -2) {
			run->aborted = 1;
			return -1;
		}
		if (gap >= 0 && (timeout < 0 || gap < timeout))
			timeout = gap;
		/* adopted orphans that end are reaped at each wake: four a second at least */
		if (orphans_since && (timeout < 0 || timeout > CGI_REAP_MS))
			timeout = CGI_REAP_MS;
		int n = poll(pfd, (nfds_t)nfd, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			continue;          /* the deadline and gap checks above end it */

		if (i_conn >= 0 && pfd[i_conn].revents) {
			if (pfd[i_conn].events == POLLIN) {
				if (req_body_next(r, 1) < 0) {
					if (r->body_too_large)
						run->too_large = 1;
					else
						run->aborted = 1;
					return -1;
				}
			} else if (pfd[i_conn].revents & (POLLHUP | POLLERR)) {
				if (run_on(r, run)) {
					/* runs on */
				} else if (run->unsafe && !r->stdin_done && !run->client_gone) {
					/*
					 * Gone, but the rest of its body may be here already
					 * (a request queued while its client gave up): decided
					 * once it is read, or found missing.
					 */
					run->client_gone = 1;
					run->client_quiet = 1;
				} else {
					run->aborted = 1;
					return -1;
				}
			} else {
				/*
				 * A half-close (shutdown(SHUT_WR) after FCGI_STDIN:
				 * POLLRDHUP alone) is the end of its input, as php-fpm,
				 * libfcgi and the other pool kinds take it, not an abort.
				 */
				run->client_quiet = 1;
			}
		}
		if (i_in >= 0 && (pfd[i_in].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t wr = write(sp->in, r->pending, r->pending_len);
			if (wr > 0) {
				r->pending += wr;
				r->pending_len -= (size_t)wr;
				run->in_bytes += (uint64_t)wr;
			} else if (wr < 0 && errno != EAGAIN && errno != EINTR) {
				/* The script stopped reading: the rest of the body is dropped. */
				close_fd(&sp->in);
				run->body_delivered = 1;
			}
		}
		if (i_out >= 0 && pfd[i_out].revents) {
			ssize_t rd = read(sp->out, st->obuf, CGI_READ_CHUNK);
			if (rd > 0) {
				run->out_bytes += (uint64_t)rd;
				int held = !run->holding_done &&
					   hold_output(st, st->obuf, (size_t)rd) == 0;
				if (!held && !run->holding_done && release_output(w, r, s, run) < 0) {
					if (!run->bad_headers)
						run->aborted = 1;
					return -1;
				}
				if (!held && relay_stdout(w, r, s, st->obuf, (size_t)rd, run) < 0) {
					if (!run->bad_headers)
						run->aborted = 1;
					return -1;
				}
			} else if (rd == 0 || (errno != EAGAIN && errno != EINTR)) {
				close_fd(&sp->out);
			}
		}
		if (i_err >= 0 && pfd[i_err].revents) {
			ssize_t rd = read(sp->err, st->obuf, CGI_READ_CHUNK);
			if (rd > 0)
				relay_stderr(w, r, s, st->obuf, (size_t)rd, 0);
			else if (rd == 0 || (errno != EAGAIN && errno != EINTR))
				close_fd(&sp->err);
		}
	}
	if (!run->holding_done && release_output(w, r, s, run) < 0) {
		if (!run->bad_headers)
			run->aborted = 1;
		return -1;
	}
	relay_stderr(w, r, s, NULL, 0, 1);
	return 0;
}

static int refuse(struct request *r, int status)
{
	char body[128];
	const char *reason = http_reason(status);
	snprintf(body, sizeof(body), "%d %s\n", status, reason ? reason : "");
	return resp_simple(r, status, body) < 0 ? -1 : 0;
}

static int cgi_handle(struct worker *w, struct request *r)
{
	const struct pool_conf *pc = w->pool->conf;
	struct script s;
	struct script_proc sp = { .pid = 0, .in = -1, .out = -1, .err = -1 };
	struct run run;
	int rc = 0, status = 0;
	memset(&run, 0, sizeof(run));

	int refused = resolve_script(w, r, &s);
	if (refused) {
		rc = refuse(r, refused);
		goto out;
	}
	/*
	 * A client that hung up while its request waited for a worker (nginx: 499)
	 * wants nothing any more: its script is not started.  Started, a POST's
	 * would run on (run_on), and a client could queue abandoned work.
	 */
	struct pollfd gone = { .fd = r->conn->fd, .events = POLLRDHUP };
	if (!r->conn->dead && poll(&gone, 1, 0) == 1 && (gone.revents & (POLLHUP | POLLERR))) {
		log_notice("[pool %s] client went away before script '%s' started; not run", pc->name,
			   s.real);
		r->aborted = 1;
		rc = -1;
		goto out;
	}
	char **env = build_env(pc, r, &s);
	if (!env) {
		rc = refuse(r, 500);
		goto out;
	}
	int spawned = spawn_script(&s, env, &sp);
	env_free(env);
	if (spawned < 0) {
		/*
		 * Out of processes (RLIMIT_NPROC, a pids cgroup), descriptors or
		 * memory for the pipes or the fork: a temporary condition, so 503,
		 * which a web server or a client may retry; not the script's fault.
		 */
		int e = errno;
		int busy = e == EAGAIN || e == ENOMEM || e == EMFILE || e == ENFILE;
		log_sys(LL_ERROR, "[pool %s] cannot execute script '%s'", pc->name, s.real);
		rc = refuse(r, e == EACCES || e == ENOEXEC ? 403 : busy ? 503 : 500);
		goto out;
	}

	int ran = run_script(w, r, &s, &sp, &run);
	close_fd(&sp.in);
	close_fd(&sp.out);
	close_fd(&sp.err);
	if (ran < 0) {
		status = stop_script(&sp);
		if (run.timed_out && run.let_go) {
			log_head_ran_on(w, &s, &run);
			rc = -1;
		} else if (run.timed_out) {
			log_warning("[pool %s] child %d, script '%s' execution timed out (%d sec), "
				    "terminating", pc->name, (int)getpid(), s.real,
				    pc->request_terminate_timeout);
			if (!run.status_sent)
				rc = refuse(r, 504);
			else
				req_cut(r);      /* not a complete answer: the web server must see it cut */
		} else if (run.too_large) {
			/* logged where the body was cut (request.c): the answer is ours */
			if (!run.status_sent)
				rc = refuse(r, 413);
		} else if (run.bad_headers) {
			rc = refuse(r, 502);
		} else if (r->body_timed_out) {
			/* logged by req_body_gap; the client is given up, the script with it */
			rc = -1;
		} else if (r->protocol_error) {
			/* logged where the record was read (request.c) */
			log_notice("[pool %s] script '%s' stopped: its client broke the protocol",
				   pc->name, s.real);
			r->aborted = 1;
			rc = -1;
		} else {
			log_msg(run.status_sent ? LL_DEBUG : LL_NOTICE,
				"[pool %s] client went away; script '%s' stopped", pc->name, s.real);
			r->aborted = 1;
			rc = -1;
		}
		goto out;
	}
	/*
	 * Its output is over; its exit status is the request's app status.  A
	 * script that closed its output and lingers is waited for only while
	 * request_terminate_timeout allows and its client is still there.
	 */
	int exited = session_wait_leader(sp.pid, &status, run.deadline_ms,
					 r->conn->dead || run.let_go ? -1 : r->conn->fd);
	if (exited <= 0) {
		if (exited == 0 && run.let_go)
			log_head_ran_on(w, &s, &run);
		else if (exited == 0)
			log_warning("[pool %s] child %d, script '%s' execution timed out (%d sec) after "
				    "its output ended, terminating", pc->name, (int)getpid(), s.real,
				    pc->request_terminate_timeout);
		status = stop_script(&sp);
		if (exited < 0) {
			r->aborted = 1;
			rc = -1;
			goto out;
		}
	}
	sp.pid = 0;
	running_script = 0;
	if (run.let_go && !run.head) {
		/* its client left while it worked (run_on): nothing to answer, nobody to blame */
		log_notice("[pool %s] client went away; script '%s' ran on to its end (%s %d)", pc->name,
			   s.real, WIFSIGNALED(status) ? "signal" : "exit status",
			   WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		r->aborted = 1;
		rc = -1;
	} else if (!run.status_sent) {
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
			log_error("[pool %s] script '%s' exited with status %d before any response",
				  pc->name, s.real, WEXITSTATUS(status));
			rc = refuse(r, 500);
		} else if (WIFSIGNALED(status)) {
			log_error("[pool %s] script '%s' was killed by signal %d before any response",
				  pc->name, s.real, WTERMSIG(status));
			rc = refuse(r, 500);
		} else {
			log_error("[pool %s] script '%s' produced %s", pc->name, s.real,
				  run.out_bytes ? "no end of its header section (expected an empty line)"
						: "no output (a CGI response needs at least one header)");
			rc = refuse(r, 502);
		}
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		log_notice("[pool %s] script '%s' exited with status %d", pc->name, s.real,
			   WEXITSTATUS(status));
	}
out:
	if (sp.pid > 0)
		stop_script(&sp);
	if (orphans_since) {
		/* what the request left running is on its own now: no longer adopted, nor killed */
		session_reap_orphans(0);
		session_adopt_orphans(0);
		orphans_since = 0;
	}
	if (s.fd >= 0)
		close(s.fd);
	return rc;
}

const struct handler handler_cgi = {
	.name = "cgi",
	.worker_init = cgi_worker_init,
	.handle = cgi_handle,
	.worker_exit = cgi_worker_exit,
};
