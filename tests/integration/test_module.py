"""app.type = module: the public module ABI, the example modules, crashes and init failures."""
import hashlib
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import basic_conf, children_of, fcgi_request, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    out = tmp_path_factory.mktemp("modules")
    os.chmod(out, 0o755)
    for name in ("hello", "echo", "notes"):
        subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                        f"-I{TOP}/include", "-o", f"{out}/{name}.so",
                        f"{TOP}/examples/modules/{name}.c"] + (["-lsqlite3"] if name == "notes" else []),
                       check=True)
    # pytest's base temp dir is root-only: let the pool user reach the .so files.
    p = str(out)
    while p != "/":
        os.chmod(p, os.stat(p).st_mode | 0o011)
        p = os.path.dirname(p)
    return str(out)


def module_pool(workdir, so, extra="", children=2):
    return (f"[app]\nuser = nobody\nlisten = {workdir}/app.sock\npm = static\n"
            f"pm.max_children = {children}\napp.type = module\nmodule.path = {so}\n"
            f"ping.path = /ping\n{extra}")


def test_hello_module(fpmd, workdir, modules):
    fpmd.start(basic_conf(workdir, module_pool(workdir, f"{modules}/hello.so")))
    r = fcgi_request(f"{workdir}/app.sock", "/anything")
    assert r.status == 200 and r.headers["content-type"] == "text/plain"
    assert r.body == b"Hello from an fpmd module\n"
    assert fcgi_request(f"{workdir}/app.sock", "/ping").body == b"pong"


def test_echo_params_body_and_settings(fpmd, workdir, modules):
    fpmd.start(basic_conf(workdir, module_pool(workdir, f"{modules}/echo.so",
                                               "module.param[greeting] = hi there\n", children=1)))
    body = os.urandom(1024 * 1024)
    r = fcgi_request(f"{workdir}/app.sock", "/e?x=1", method="POST", body=body,
                     extra={"HTTP_X_TEST": "yes"}, timeout=30)
    head, _, echoed = r.body.partition(b"\n\n")
    assert head.startswith(b"hi there #1\n")
    assert b"\nHTTP_X_TEST=yes" in head and b"\nQUERY_STRING=x=1" in head
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(body).digest()
    assert r.headers["x-echo-served"] == "x=1"
    # State survives between requests of one worker.
    assert fcgi_request(f"{workdir}/app.sock", "/e").body.startswith(b"hi there #2\n")


def test_module_failure_is_a_500(fpmd, workdir, modules):
    fpmd.start(basic_conf(workdir, module_pool(workdir, f"{modules}/echo.so")))
    assert fcgi_request(f"{workdir}/app.sock", "/e?fail").status == 500
    fpmd.wait_log(r"module echo failed on GET /e\?fail")


def test_a_crash_kills_one_worker_which_is_respawned(fpmd, workdir, modules):
    fpmd.start(basic_conf(workdir, module_pool(workdir, f"{modules}/echo.so")))
    with pytest.raises(ConnectionError):
        fcgi_request(f"{workdir}/app.sock", "/e?crash")   # nginx answers 502 here
    fpmd.wait_log(r"\[pool app\] child \d+ exited on signal 11 \(SIGSEGV")
    assert wait_for(lambda: len(fpmd.workers()) == 2, 5)
    assert fcgi_request(f"{workdir}/app.sock", "/e").status == 200


def test_init_failure_backs_off_instead_of_a_fork_storm(fpmd, workdir, modules):
    fpmd.start(basic_conf(workdir, module_pool(workdir, f"{modules}/echo.so",
                                               "module.param[fail_init] = yes\n")))
    time.sleep(3)
    log = fpmd.log()
    assert "fail_init is set: refusing to start" in log
    assert "module echo (" in log and "failed to initialise" in log
    starts = len(re.findall(r"child \d+ started", log))
    print(f"module failing at init: {starts} forks in 3 s")
    assert starts < 40, "respawn must back off"
    assert "children keep dying right after start" in log


def test_bad_module_path_and_abi(fpmd, workdir, modules, tmp_path):
    """A module that cannot load stops fpmd at start (issue 27 item 8), not each worker."""
    fpmd.start(basic_conf(workdir, module_pool(workdir, "/nonexistent/app.so", children=1)),
               wait_ready=False)
    assert fpmd.wait() != 0
    assert "module.path '/nonexistent/app.so' cannot be opened" in fpmd.log()
    bad = os.path.join(workdir, "bad.c")
    with open(bad, "w") as f:
        f.write("int fpmd_module_nope;\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", f"{workdir}/bad.so", bad], check=True)
    other = fpmd.make()
    other.log_path = os.path.join(workdir, "second.log")
    other.start(basic_conf(workdir, module_pool(workdir, f"{workdir}/bad.so", children=1)),
                wait_ready=False)
    assert other.wait() != 0
    assert "does not export 'fpmd_module'" in other.log()


def test_module_cflags():
    from conftest import FPMD
    out = subprocess.run([FPMD, "--module-cflags"], capture_output=True, text=True).stdout
    assert out.startswith("-I") and out.strip().endswith("/include")


def test_notes_sqlite_json_api(fpmd, workdir, modules):
    import json
    import signal
    db_dir = os.path.join(workdir, "db")
    os.makedirs(db_dir)
    os.chown(db_dir, 65534, 65534)          # the pool's user writes the database
    fpmd.start(basic_conf(workdir, module_pool(workdir, f"{modules}/notes.so",
                                               f"module.param[database] = {db_dir}/notes.db\n")))
    sock = f"{workdir}/app.sock"

    def call(method, uri, body=b""):
        r = fcgi_request(sock, uri, method=method, body=body, extra={"DOCUMENT_URI": uri})
        return r.status, (json.loads(r.body) if r.body else None)

    assert call("GET", "/notes") == (200, {"notes": []})
    assert call("POST", "/notes", b"first") == (201, {"id": 1})
    assert call("POST", "/notes", 'quote " and\nnewline'.encode()) == (201, {"id": 2})
    assert call("GET", "/notes/2") == (200, {"id": 2, "text": 'quote " and\nnewline'})
    assert call("GET", "/notes")[1]["notes"][0] == {"id": 1, "text": "first"}
    assert call("DELETE", "/notes/1") == (204, None)
    assert call("GET", "/notes/1")[0] == 404
    assert call("POST", "/notes")[0] == 400
    assert call("PUT", "/notes")[0] == 405
    # The data outlives the workers.
    for w in fpmd.workers():
        os.kill(w, signal.SIGKILL)
    assert wait_for(lambda: len(fpmd.workers()) == 2, 5)
    assert call("GET", "/notes") == (200, {"notes": [{"id": 2, "text": 'quote " and\nnewline'}]})


def test_notes_without_database_setting_refuses_to_start(fpmd, workdir, modules):
    fpmd.start(basic_conf(workdir, module_pool(workdir, f"{modules}/notes.so", children=1)))
    fpmd.wait_log("notes: module.param\\[database\\] is not set")


def _so(workdir, name, code):
    src = os.path.join(workdir, f"{name}.c")
    with open(src, "w") as f:
        f.write(code)
    subprocess.run(["cc", "-shared", "-fPIC", f"-I{TOP}/include", "-o", f"{workdir}/{name}.so", src],
                   check=True)
    return f"{workdir}/{name}.so"


def _so_on_scoreboard(workdir, name, code):
    """A module built with fpmd's scoreboard layout (src/shm) and SCOREBOARD_C's finder."""
    src = os.path.join(workdir, f"{name}.c")
    with open(src, "w") as f:
        f.write(SCOREBOARD_C + code)
    so = f"{workdir}/{name}.so"
    subprocess.run(["cc", "-shared", "-fPIC", f"-I{TOP}/include", f"-I{TOP}/src", "-o", so, src],
                   check=True)
    return so


def _t(workdir, so):
    from conftest import FPMD
    conf = os.path.join(workdir, "t.conf")
    with open(conf, "w") as f:
        f.write(basic_conf(workdir, module_pool(workdir, so, children=1)))
    return subprocess.run([FPMD, "-t", "-y", conf], capture_output=True, text=True, timeout=30)


def test_t_checks_module_path(workdir, modules):
    """Issue 27 item 8: a module that cannot load is a configuration error, found by -t."""
    with open(f"{workdir}/text.so", "w") as f:
        f.write("not a shared object\n")
    nosym = _so(workdir, "nosym", "int fpmd_module_nope;\n")
    abi = _so(workdir, "abi", '#include "fpmd/module.h"\n'
              "static int h(void *s, struct fpmd_request *r) { (void)s; (void)r; return 0; }\n"
              "const struct fpmd_module fpmd_module = { .abi = 99, .name = \"old\", .handle = h };\n")
    cases = [("/nonexistent/app.so", "cannot be opened"), (f"{workdir}/text.so", "is not a shared object"),
             (nosym, "does not export 'fpmd_module'"), (abi, "built for module ABI 99")]
    for so, want in cases:
        r = _t(workdir, so)
        assert r.returncode != 0, (so, r.stderr)
        assert f"module.path '{so}' " in r.stderr and want in r.stderr, (so, r.stderr)
    assert _t(workdir, f"{modules}/hello.so").returncode == 0


def test_module_check_never_runs_module_code_in_the_master(workdir):
    marker = f"{workdir}/ctor.txt"
    os.chmod(workdir, 0o777)
    so = _so(workdir, "ctor", '#include <stdio.h>\n#include <unistd.h>\n#include "fpmd/module.h"\n'
             "__attribute__((constructor)) static void ctor(void) {\n"
             f'  FILE *f = fopen("{marker}", "a"); if (f) {{ fprintf(f, "%d %d\\n", (int)getpid(), (int)getuid()); fclose(f); }}\n'
             "}\n"
             "static int h(void *s, struct fpmd_request *r) { (void)s; (void)r; return 0; }\n"
             "const struct fpmd_module fpmd_module = { .abi = FPMD_MODULE_ABI, .name = \"c\", .handle = h };\n")
    from conftest import FPMD
    conf = os.path.join(workdir, "t.conf")
    with open(conf, "w") as f:
        f.write(basic_conf(workdir, module_pool(workdir, so, children=1)))
    p = subprocess.Popen([FPMD, "-t", "-y", conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    lines = [tuple(map(int, ln.split())) for ln in open(marker).read().split("\n") if ln]
    assert lines, "the check loads the module"
    assert all(pid != p.pid for pid, _ in lines), "loaded in the checking process itself"
    if os.geteuid() == 0:
        assert all(uid == 65534 for _, uid in lines), "loaded as root, not as the pool's user"


def test_module_check_holds_nothing_of_the_master(fpmd, workdir):
    """The reload check loads module.path (its constructors run) as the pool's
    user: in a process that holds none of the master's descriptors (pool
    sockets, control socket, logs, pipes) nor its shared mappings
    (scoreboards), so module code cannot accept another pool's requests;
    a child it leaves behind is killed with the check."""
    marker = f"{workdir}/probe.txt"
    os.chmod(workdir, 0o777)
    so = _so(workdir, "spy", '#include <stdio.h>\n#include <string.h>\n#include <dirent.h>\n'
             '#include <stdlib.h>\n#include <unistd.h>\n#include "fpmd/module.h"\n'
             "__attribute__((constructor)) static void ctor(void) {\n"
             f'  FILE *f = fopen("{marker}", "a"); if (!f) return;\n'
             '  DIR *d = opendir("/proc/self/fd"); struct dirent *e; int n = 0;\n'
             '  while (d && (e = readdir(d))) if (e->d_name[0] != \'.\') n++;\n'
             '  if (d) closedir(d);\n'
             '  int shared = 0; char line[512]; FILE *m = fopen("/proc/self/maps", "r");\n'
             '  while (m && fgets(line, sizeof line, m)) if (strstr(line, " rw-s ")) shared++;\n'
             '  if (m) fclose(m);\n'
             '  fprintf(f, "fds %d shared %d\\n", n, shared); fclose(f);\n'
             '  if (fork() == 0) { sleep(30); _exit(0); }\n'
             "}\n"
             "static int h(void *s, struct fpmd_request *r) { (void)s; (void)r; return 0; }\n"
             "const struct fpmd_module fpmd_module = { .abi = FPMD_MODULE_ABI, .name = \"c\", .handle = h };\n")
    import signal
    fpmd.start(basic_conf(workdir, module_pool(workdir, so, children=1)))
    # the worker loads the module after "ready": its line first, then only the reload's
    assert wait_for(lambda: os.path.exists(marker) and " shared 1" in open(marker).read(), 5)
    os.unlink(marker)
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log("ready to handle connections", count=2)
    first = open(marker).read().split("\n")[0].split()
    # 0, 1, 2, the answer's pipe, and the constructor's own two: the marker and /proc/self/fd
    assert int(first[1]) <= 6 and int(first[3]) == 0, (first, fpmd.log()[-1500:])
    # the child the constructor forked did not outlive the check
    left = subprocess.run(["pgrep", "-u", "nobody", "-f", "probe-module"], capture_output=True, text=True)
    assert left.stdout.strip() == "", left.stdout


def test_reload_refuses_a_missing_module(fpmd, workdir, modules):
    import signal
    fpmd.start(basic_conf(workdir, module_pool(workdir, f"{modules}/hello.so")))
    before = fpmd.workers()
    fpmd.write_conf(basic_conf(workdir, module_pool(workdir, f"{workdir}/gone.so")))
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log("reload refused")
    assert f"module.path '{workdir}/gone.so' cannot be opened" in fpmd.log()
    time.sleep(0.3)
    assert fpmd.workers() == before
    assert fcgi_request(f"{workdir}/app.sock", "/x").status == 200


def test_a_fifo_put_at_module_path_does_not_hang_the_master(fpmd, workdir, modules):
    """The pool's user replaces its module with a FIFO and a reload comes: the
    root master opened it to read its magic and waited there for a writer,
    deaf to signals and to its control socket.  The file is looked at by the
    probe process now (as the pool's user, time-limited): the reload is
    refused, the master answers throughout."""
    import shutil
    so = f"{workdir}/app.so"
    shutil.copy(f"{modules}/hello.so", so)
    ctl = f"{workdir}/fpmd.ctl"
    fpmd.start(basic_conf(workdir, module_pool(workdir, so), global_extra=f"control_socket = {ctl}\n"))
    before = fpmd.workers()
    os.unlink(so)
    os.mkfifo(so)
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log("reload refused", timeout=15)
    assert f"module.path '{so}' is not a regular file" in fpmd.log()
    from conftest import FPMCTL
    r = subprocess.run([FPMCTL, "pools", "-c", ctl, "--timeout", "3"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert fpmd.workers() == before
    assert fcgi_request(f"{workdir}/app.sock", "/x").status == 200
    # and -t says so too, at once
    from conftest import FPMD
    r = subprocess.run([FPMD, "-t", "-y", fpmd.conf_path], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode != 0 and "is not a regular file" in r.stderr, r.stderr


MISUSE = r'''
#include <stdlib.h>
#include <string.h>
#include "fpmd/module.h"
static const struct fpmd_host *host;
static struct fpmd_request *saved;
static int init(const struct fpmd_host *h, const struct fpmd_setting *s, size_t n, void **st)
{ (void)s; (void)n; *st = NULL; host = h; return 0; }
static int handle(void *st, struct fpmd_request *r)
{
    const char *u = host->param(r, "DOCUMENT_URI");
    (void)st;
    if (!strcmp(u, "/save")) { saved = r; return host->write(r, "saved", 5); }
    if (!strcmp(u, "/stale") && saved) {
        int rc = host->write(saved, "LEAK", 4);
        char b[32]; b[0] = rc < 0 ? 'r' : 'w'; b[1] = 0;
        host->add_header(r, "X-Stale", b);
        return host->write(r, "mine", 4);
    }
    if (!strcmp(u, "/failafter")) { host->write(r, "partial", 7); return -1; }
    if (!strcmp(u, "/exit")) exit(0);
    return host->write(r, "ok", 2);
}
const struct fpmd_module fpmd_module = { .abi = FPMD_MODULE_ABI, .name = "misuse",
                                         .init = init, .handle = handle };
'''


def test_module_api_misuse_is_refused_and_logged(fpmd, workdir):
    """Issue 27 item 11: a request handle kept past its request cannot touch the next
    client's answer; -1 after output is a non-zero appStatus and a log line; exit() in
    handle is an error, not a NOTICE."""
    so = _so(workdir, "misuse", MISUSE)
    fpmd.start(basic_conf(workdir, module_pool(workdir, so, children=1)))
    sock = f"{workdir}/app.sock"
    assert fcgi_request(sock, "/save", extra={"DOCUMENT_URI": "/save"}).body == b"saved"
    r = fcgi_request(sock, "/stale", extra={"DOCUMENT_URI": "/stale"})
    assert b"LEAK" not in r.stdout and r.body == b"mine", r.stdout
    assert r.headers.get("x-stale") == "r"
    fpmd.wait_log(r"module misuse used a request handle after its request ended")
    r = fcgi_request(sock, "/failafter", extra={"DOCUMENT_URI": "/failafter"})
    assert r.body == b"partial" and r.app_status != 0
    fpmd.wait_log(r"module misuse failed on GET /failafter after its answer had begun")
    with pytest.raises(ConnectionError):
        fcgi_request(sock, "/exit", extra={"DOCUMENT_URI": "/exit"})
    fpmd.wait_log(r"ERROR: \[pool app\] child \d+: module misuse called exit\(\) while handling GET /exit")
    fpmd.wait_log(r"WARNING: \[pool app\] child \d+ exited with code \d+")


LINGER = r'''
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "fpmd/module.h"
/* What a compromised worker could do with the pool's handoff end (fd 7): send the
 * master a TCP socket whose close lingers 30 s on unsent data. */
static int lingering(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	a.sin_addr.s_addr = htonl(0x7f000001);
	int small = 4096;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return -1;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	static char junk[65536];
	while (write(fd, junk, sizeof(junk)) > 0)
		;
	struct linger l = { 1, 30 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	return fd;
}

static int h(void *s, struct fpmd_request *r)
{
	(void)s; (void)r;
	char byte = 'k';
	int fds[NFDS];
	for (int i = 0; i < NFDS; i++)
		if ((fds[i] = lingering()) < 0)
			return 500;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union { struct cmsghdr h; char buf[CMSG_SPACE(NFDS * sizeof(int))]; } u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET; cm->cmsg_type = SCM_RIGHTS; cm->cmsg_len = CMSG_LEN(NFDS * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, NFDS * sizeof(int));
	int sent = sendmsg(7, &mh, 0) == 1;
	for (int i = 0; i < NFDS; i++)
		close(fds[i]);
	return sent ? 200 : 503;
}
const struct fpmd_module fpmd_module = { .abi = FPMD_MODULE_ABI, .name = "linger", .handle = h };
'''


@pytest.mark.parametrize("nfds", [1, 6])
def test_a_worker_cannot_freeze_the_master_with_what_it_hands_over(fpmd, workdir, nfds):
    """The master closes what a worker sent it that it does not keep: a TCP
    socket with SO_LINGER and unsent data made that close wait 30 s, and the
    master with it (no spawn, no status, no signal); so did more descriptors in
    one message than the master's buffer took (the kernel closed the rest in
    the master).  Such closes are its closer thread's now."""
    import socket as so
    sink = so.socket()
    sink.setsockopt(so.SOL_SOCKET, so.SO_RCVBUF, 4096)
    sink.bind(("127.0.0.1", 0))
    sink.listen()
    port = sink.getsockname()[1]
    os.chmod(workdir, 0o755)
    so_path = _so(workdir, "linger", LINGER.replace("PORT", str(port)).replace("NFDS", str(nfds)))
    fpmd.start(basic_conf(workdir, module_pool(workdir, so_path, children=1,
                                               extra=f"pm.status_listen = {workdir}/status.sock\n")))
    try:
        assert fcgi_request(f"{workdir}/app.sock", "/x").status == 200
        time.sleep(0.3)
        t0 = time.monotonic()
        r = fcgi_request(f"{workdir}/status.sock", "/ping", timeout=10)
        assert r.status == 200 and time.monotonic() - t0 < 2, time.monotonic() - t0
    finally:
        sink.close()


# What the modules below share: sending descriptors on the pool's handoff end (fd 7) as a
# worker does, and finding the pool's scoreboard in the worker's own mappings.
SEND_FDS_C = r'''
#include <string.h>
#include <sys/socket.h>
static ssize_t send_fds(const int *fds, int n, int flags)
{
	char byte = 'k';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union { struct cmsghdr h; char buf[CMSG_SPACE(253 * sizeof(int))]; } u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET; cm->cmsg_type = SCM_RIGHTS; cm->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
	return sendmsg(7, &mh, flags);
}
'''

SCOREBOARD_C = r'''
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "shm/scoreboard.h"
/* The slots of pool's scoreboard, a shared writable mapping whose header names it; NULL. */
static struct sb_slot *pool_slots(const char *pool, unsigned *nslots)
{
	FILE *m = fopen("/proc/self/maps", "r");
	char line[512];
	long page = sysconf(_SC_PAGESIZE);
	size_t hdr = (sizeof(struct sb_header) + (size_t)page - 1) / (size_t)page * (size_t)page;
	struct sb_slot *slots = NULL;
	while (m && !slots && fgets(line, sizeof(line), m)) {
		unsigned long a, b;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) != 3 || perms[3] != 's' || perms[1] != 'w')
			continue;
		if (strcmp(((struct sb_header *)a)->pool, pool) != 0)
			continue;
		*nslots = ((struct sb_header *)a)->nslots;
		slots = (struct sb_slot *)(a + hdr);
	}
	if (m)
		fclose(m);
	return slots;
}
'''


PEEKOFF = r'''
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "fpmd/module.h"
/* A compromised worker hands the master a connection whose peek offset lies past
 * its data (SO_PEEK_OFF is the socket's), then makes it readable. */
static int h(void *s, struct fpmd_request *r)
{
	(void)s; (void)r;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 500;
	int off = 1 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off));
	if (send_fds(&sv[0], 1, 0) != 1)
		return 503;
	close(sv[0]);
	if (fork() == 0) {                 /* the peer, for a few seconds */
		setsid();
		usleep(300 * 1000);
		if (write(sv[1], "x", 1) < 0)
			_exit(1);
		sleep(4);
		_exit(0);
	}
	close(sv[1]);
	return 200;
}
const struct fpmd_module fpmd_module = { .abi = FPMD_MODULE_ABI, .name = "peekoff", .handle = h };
'''


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_held_connection_a_worker_doctored_does_not_make_the_master_spin(fpmd, workdir):
    """SO_PEEK_OFF set past the data of a connection handed to the master: epoll said
    readable, every peek said nothing, and the master's loop spun at 100 % CPU for as
    long as the peer lived.  Whether a request came is asked of the queue's length now."""
    os.chmod(workdir, 0o755)
    so_path = _so(workdir, "peekoff", SEND_FDS_C + PEEKOFF)
    fpmd.start(basic_conf(workdir, module_pool(workdir, so_path, children=1)))
    assert fcgi_request(f"{workdir}/app.sock", "/x").status == 200
    time.sleep(0.6)
    c0 = _cpu_seconds(fpmd.pid)
    time.sleep(2.0)
    used = _cpu_seconds(fpmd.pid) - c0
    assert used < 0.5, used
    assert fcgi_request(f"{workdir}/app.sock", "/ping").body == b"pong"
    time.sleep(2.5)                     # the peer leaves


SBPID = r'''
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fpmd/module.h"
static const struct fpmd_host *host;
static int init(const struct fpmd_host *h, const struct fpmd_setting *s, size_t n, void **st)
{
	(void)s; (void)n; (void)st;
	host = h;
	return 0;
}
/* A compromised worker writes another pool's worker's pid into its own pool's slot 1. */
static int h(void *st, struct fpmd_request *r)
{
	(void)st;
	const char *q = host->param(r, "QUERY_STRING");
	unsigned n = 0;
	struct sb_slot *slots = pool_slots("app", &n);
	if (!slots || n < 2)
		return 500;
	slots[1].pid = (uint32_t)atoi(q);
	return 200;
}
const struct fpmd_module fpmd_module = { .abi = FPMD_MODULE_ABI, .name = "sbpid", .init = init, .handle = h };
'''

BIG = r'''
#include <stdlib.h>
#include <string.h>
#include "fpmd/module.h"
static char *big;
static int init(const struct fpmd_host *h, const struct fpmd_setting *s, size_t n, void **st)
{
	(void)h; (void)s; (void)n; (void)st;
	big = malloc(96 << 20);
	if (big)
		memset(big, 1, 96 << 20);
	return big ? 0 : -1;
}
static int hd(void *st, struct fpmd_request *r) { (void)st; (void)r; return 0; }
const struct fpmd_module fpmd_module = { .abi = FPMD_MODULE_ABI, .name = "big", .init = init, .handle = hd };
'''


def test_a_worker_cannot_make_the_status_page_read_another_pools_memory(fpmd, workdir):
    """A slot's pid is its worker's to write: the root master's status page summed the
    memory of any child of the master there, another pool's worker included (its
    figures leaked to this pool's page).  Only the pool's own workers count now."""
    import json
    os.chmod(workdir, 0o755)
    evil = _so_on_scoreboard(workdir, "sbpid", SBPID)
    big = _so(workdir, "big", BIG)
    victim = (f"[big]\nuser = nobody\nlisten = {workdir}/big.sock\npm = static\n"
              f"pm.max_children = 1\napp.type = module\nmodule.path = {big}\n")
    fpmd.start(basic_conf(workdir, module_pool(
        workdir, evil, children=2, extra=f"pm.status_path = /status\npm.status_listen = {workdir}/status.sock\n")
        + victim))
    def big_pids():
        out = []
        for p in children_of(fpmd.pid):
            try:
                if "pool big" in open(f"/proc/{p}/cmdline").read():
                    out.append(p)
            except OSError:
                pass
        return out
    assert wait_for(lambda: len(big_pids()) == 1, 5), big_pids()
    pids = big_pids()
    fcgi_request(f"{workdir}/big.sock", "/")
    with open(f"/proc/{pids[0]}/smaps_rollup") as f:
        assert int(re.search(r"^Pss:\s+(\d+) kB", f.read(), re.M).group(1)) > 64 << 10
    assert fcgi_request(f"{workdir}/app.sock", "/x", extra={"QUERY_STRING": str(pids[0])}).status == 200
    st = json.loads(fcgi_request(f"{workdir}/status.sock", "/status",
                                 extra={"QUERY_STRING": "json&full"}).body)
    assert st["pool memory"] < 48 << 20, st["pool memory"]


FLOOD = r'''
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "fpmd/module.h"
/* A compromised worker floods the pool's handoff end with messages of 253 copies of
 * one descriptor, a file whose every close walks its 5,000 POSIX locks (slow). */
static int lockfile(void)
{
	int fd = open("LOCKPATH", O_RDWR | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, 10000) < 0)
		return -1;
	for (int i = 0; i < 5000; i++) {
		struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 2 * i, .l_len = 1 };
		fcntl(fd, F_SETLK, &l);
	}
	return fd;
}
static int h(void *s, struct fpmd_request *r)
{
	(void)s; (void)r;
	if (fork() != 0)
		return 200;
	setsid();
	int fd = lockfile();
	if (fd < 0)
		_exit(1);
	int fds[253];
	for (int i = 0; i < 253; i++)
		fds[i] = fd;
	time_t end = time(NULL) + 3;
	while (time(NULL) < end) {
		if (send_fds(fds, 253, MSG_DONTWAIT) < 0) {
			struct pollfd pf = { 7, POLLOUT, 0 };
			poll(&pf, 1, 10);
		}
	}
	_exit(0);
}
const struct fpmd_module fpmd_module = { .abi = FPMD_MODULE_ABI, .name = "flood", .handle = h };
'''


def test_a_worker_flooding_the_handoff_neither_spins_nor_starves_the_master(fpmd, workdir):
    """Messages of 253 descriptors, each slow to close: the closer fell behind, the
    master stopped reading handoffs for good (every pool's kept connections then hung)
    and its level-triggered watches spun it at 100 % CPU.  Now the first such message
    pauses that pool's handoffs alone, and a closer that falls behind is waited for."""
    os.chmod(workdir, 0o777)
    so_path = _so(workdir, "flood", SEND_FDS_C + FLOOD.replace("LOCKPATH", f"{workdir}/locks"))
    other = (f"[other]\nuser = nobody\nlisten = {workdir}/other.sock\npm = static\n"
             f"pm.max_children = 1\napp.type = cgi\ncgi.root = {workdir}\nping.path = /ping\n")
    fpmd.start(basic_conf(workdir, module_pool(workdir, so_path, children=1) + other))
    fds0 = len(os.listdir(f"/proc/{fpmd.pid}/fd"))
    assert fcgi_request(f"{workdir}/app.sock", "/x").status == 200
    time.sleep(3.5)                     # the flood's length
    c0 = _cpu_seconds(fpmd.pid)
    time.sleep(2.0)
    used = _cpu_seconds(fpmd.pid) - c0
    assert used < 0.5, used
    assert fcgi_request(f"{workdir}/other.sock", "/ping").body == b"pong"
    def master_fds():
        return [os.readlink(f"/proc/{fpmd.pid}/fd/{x}") for x in os.listdir(f"/proc/{fpmd.pid}/fd")]
    # nothing of what was sent stays; new since the start: the closer's pipe, the pause's timer
    assert wait_for(lambda: len(master_fds()) <= fds0 + 3 and
                    not any(f.endswith("/locks") for f in master_fds()), 5), (fds0, master_fds())
    fpmd.wait_log(r"WARNING: \[pool app\] a worker sent the master several descriptors in one message")


RELOAD_LINGER = r'''
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "fpmd/module.h"
/* A compromised worker of a TCP pool: the master holds three connections whose
 * unsent data lingers 30 s once the worker's copies are gone, then the pool's
 * pair is kept full, so a reload cannot pass them on and exec would close them. */
static int h(void *s, struct fpmd_request *r)
{
	(void)s; (void)r;
	if (fork() != 0)
		return 200;
	setsid();
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(0x7f000001);
	socklen_t al = sizeof(a);
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 8) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) < 0)
		_exit(1);
	int c[3], peer[3];
	static char junk[65536];
	for (int i = 0; i < 3; i++) {
		c[i] = socket(AF_INET, SOCK_STREAM, 0);
		int small = 4096;
		setsockopt(c[i], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
		if (connect(c[i], (struct sockaddr *)&a, sizeof(a)) < 0)
			_exit(1);
		peer[i] = accept(l, NULL, NULL);
		setsockopt(peer[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
		fcntl(c[i], F_SETFL, O_NONBLOCK);
		while (write(c[i], junk, sizeof(junk)) > 0)
			;
		if (send_fds(&c[i], 1, 0) != 1)
			_exit(1);
	}
	usleep(300 * 1000);                  /* held by now */
	for (int i = 0; i < 3; i++) {
		struct linger lg = { 1, 30 };
		setsockopt(c[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(c[i]);
	}
	fcntl(7, F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 100000; i++)     /* the pair full */
		if (send(7, junk, 60000, MSG_DONTWAIT) < 0) {
			struct pollfd pf = { 7, POLLOUT, 0 };
			if (poll(&pf, 1, 200) == 0)
				break;
		}
	sleep(12);
	_exit(0);
}
const struct fpmd_module fpmd_module = { .abi = FPMD_MODULE_ABI, .name = "rl", .handle = h };
'''


def test_a_worker_cannot_freeze_a_reload_with_connections_the_master_holds(fpmd, workdir):
    """Held TCP connections the pool's full pair could not pass on were closed by
    execve() in the master's own thread, each lingering 30 s on its unsent data (SO_LINGER
    set again through the worker's copy): the reloading master hung, deaf to SIGTERM.
    They go on to the next master now, which closes them in its closer thread."""
    import socket as so
    os.chmod(workdir, 0o755)
    so_path = _so(workdir, "rl", SEND_FDS_C + RELOAD_LINGER)
    probe = so.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    pool = (f"[app]\nuser = nobody\nlisten = 127.0.0.1:{port}\npm = static\npm.max_children = 1\n"
            f"app.type = module\nmodule.path = {so_path}\nping.path = /ping\n"
            f"pm.status_path = /status\npm.status_listen = {workdir}/status.sock\n")
    fpmd.start(basic_conf(workdir, pool))
    assert fcgi_request(f"127.0.0.1:{port}", "/x").status == 200
    time.sleep(1.5)
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log("ready to handle connections", count=2, timeout=10)
    t0 = time.monotonic()
    r = fcgi_request(f"{workdir}/status.sock", "/ping", timeout=10)
    assert r.status == 200 and time.monotonic() - t0 < 2


TORN = r'''
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "fpmd/module.h"
/* What the master reads while a preempted worker is in the middle of writing its slot
 * (its sequence odd): a busy stage and no start yet.  Held for 1.5 s. */
static int h(void *st, struct fpmd_request *r)
{
	(void)st; (void)r;
	unsigned n = 0;
	struct sb_slot *slots = pool_slots("app", &n), *mine = NULL;
	for (unsigned i = 0; slots && i < n; i++)
		if (slots[i].pid == (uint32_t)getpid())
			mine = &slots[i];
	if (!mine)
		return 500;
	struct sb_slot keep = *mine;
	mine->seq |= 1;
	mine->stage = SB_RUNNING;
	mine->accepted_mono_us = 0;
	usleep(1500 * 1000);
	*mine = keep;
	return 0;
}
const struct fpmd_module fpmd_module = { .abi = FPMD_MODULE_ABI, .name = "torn", .handle = h };
'''


def test_a_slot_read_mid_write_does_not_time_a_request_out(fpmd, workdir):
    """A worker preempted while writing its slot (sequence odd) showed the master a busy
    stage with the previous start, or none: request_terminate_timeout then killed a worker
    20-45 ms old for running "since boot" (its request cut, nginx: upstream prematurely
    closed).  A torn read times nothing now."""
    os.chmod(workdir, 0o755)
    so_path = _so_on_scoreboard(workdir, "torn", TORN)
    fpmd.start(basic_conf(workdir, module_pool(workdir, so_path, children=1,
                                               extra="request_terminate_timeout = 5\n")))
    r = fcgi_request(f"{workdir}/app.sock", "/x", timeout=10)
    assert r.status == 200, r.stdout
    assert "timed out" not in fpmd.log(), fpmd.log()


def _uid_marking_module(workdir, name):
    """A module whose constructor writes the uid it runs as into a marker file."""
    marker = f"{workdir}/{name}.txt"
    os.chmod(workdir, 0o777)
    so = _so(workdir, name, '#include <stdio.h>\n#include <unistd.h>\n#include "fpmd/module.h"\n'
             "__attribute__((constructor)) static void ctor(void) {\n"
             f'  FILE *f = fopen("{marker}", "a"); if (f) {{ fprintf(f, "%d\\n", (int)getuid()); fclose(f); }}\n'
             "}\n"
             "static int h(void *s, struct fpmd_request *r) { (void)s; (void)r; return 0; }\n"
             "const struct fpmd_module fpmd_module = { .abi = FPMD_MODULE_ABI, .name = \"c\", .handle = h };\n")
    return marker, so


def test_module_check_never_loads_it_as_root_for_a_user_that_does_not_resolve(workdir):
    """The check loaded the module as root when the pool's user did not
    resolve (a typo at fpmd -t): its constructors ran as root."""
    marker, so = _uid_marking_module(workdir, "ctor2")
    from conftest import FPMD
    conf = os.path.join(workdir, "t.conf")
    with open(conf, "w") as f:
        f.write(basic_conf(workdir, module_pool(workdir, so, children=1).replace("user = nobody",
                                                                                 "user = nosuchuser42")))
    r = subprocess.run([FPMD, "-t", "-y", conf], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert not os.path.exists(marker) or "0" not in open(marker).read().split(), open(marker).read()


def test_module_check_never_loads_it_as_root_for_a_root_pool_without_r(workdir):
    """user = root without -R is refused, but the module check ran first and
    loaded the module as root."""
    marker, so = _uid_marking_module(workdir, "ctor3")
    from conftest import FPMD
    conf = os.path.join(workdir, "t.conf")
    with open(conf, "w") as f:
        f.write(basic_conf(workdir, module_pool(workdir, so, children=1).replace("user = nobody",
                                                                                 "user = root")))
    r = subprocess.run([FPMD, "-t", "-y", conf], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "other than root" in r.stderr + r.stdout, r.stderr
    assert not os.path.exists(marker), open(marker).read()


HANG_INIT = r'''
#include <string.h>
#include <unistd.h>
#include "fpmd/module.h"
/* init never returns while the file named by module.param[hang] exists */
static int init(const struct fpmd_host *h, const struct fpmd_setting *s, size_t n, void **st)
{
    (void)h; *st = NULL;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s[i].key, "hang"))
            while (access(s[i].value, F_OK) == 0)
                usleep(100000);
    return 0;
}
static const struct fpmd_host *host;
static int init_host(const struct fpmd_host *h, const struct fpmd_setting *s, size_t n, void **st)
{ host = h; return init(h, s, n, st); }
static int handle(void *st, struct fpmd_request *r)
{ (void)st; return host->write(r, "ok", 2); }
const struct fpmd_module fpmd_module = { .abi = FPMD_MODULE_ABI, .name = "hang",
                                         .init = init_host, .handle = handle };
'''


def test_a_module_init_that_never_returns_is_killed_after_process_start_timeout(fpmd, workdir):
    """A worker whose module init never returns was an idle-looking worker for good: the
    pool's connections waited until the web server gave up.  After process.start_timeout
    it is killed, logged, and counted as a failed start; once init can return, the pool
    serves."""
    so = _so(workdir, "hang", HANG_INIT)
    flag = os.path.join(workdir, "hang.flag")
    open(flag, "w").close()
    os.chmod(workdir, 0o755)
    fpmd.start(basic_conf(workdir, module_pool(workdir, so, f"module.param[hang] = {flag}\n"
                                                         "process.start_timeout = 2s\n",
                                               children=1)))
    fpmd.wait_log(r"\[pool app\] child \d+ has not finished starting after 2 s \(its module's "
                  r"init has not returned\); killing it, process.start_timeout", timeout=6)
    os.unlink(flag)
    # the replacement's init returns: the pool serves (a back-off of a few seconds at most)
    r = fcgi_request(f"{workdir}/app.sock", "/x", timeout=15)
    assert r.status == 200, r
    assert len(fpmd.workers()) == 1


HDRFORGE = r'''
#include "fpmd/module.h"
static int init(const struct fpmd_host *h, const struct fpmd_setting *s, size_t n, void **st)
{ (void)h; (void)s; (void)n; (void)st; return 0; }
/* A compromised worker writes its pool's scoreboard header, which the master publishes. */
static int h(void *st, struct fpmd_request *r)
{
	(void)st; (void)r;
	unsigned n = 0;
	struct sb_slot *slots = pool_slots("app", &n);
	if (!slots)
		return 500;
	long page = sysconf(_SC_PAGESIZE);
	size_t hs = (sizeof(struct sb_header) + (size_t)page - 1) / (size_t)page * (size_t)page;
	struct sb_header *hd = (struct sb_header *)((char *)slots - hs);
	hd->requests_dead = 1ull << 62;
	hd->max_children_reached = 123456789;
	hd->slow_requests = 987654321;
	hd->max_listen_queue = 4611686018427387904ull;
	hd->respawns = 555555;
	hd->exits[0] = 777777;
	hd->draining = 1;
	slots[0].requests = ~0ull >> 1;
	return 200;
}
const struct fpmd_module fpmd_module = { .abi = FPMD_MODULE_ABI, .name = "hdr", .init = init, .handle = h };
'''


def test_the_master_renders_its_own_counters_not_the_header_a_worker_wrote(fpmd, workdir):
    """The scoreboard's header is writable by every worker of the pool: the root master's
    pm.status_listen page showed forged counters (accepted conn 2^62, max children reached
    123456789…) and its readiness answered 503 "draining" for a forged flag.  The master
    now renders from its own copy."""
    import json
    os.chmod(workdir, 0o755)
    so = _so_on_scoreboard(workdir, "hdr", HDRFORGE)
    fpmd.start(basic_conf(workdir, module_pool(
        workdir, so, children=1,
        extra=f"pm.status_path = /status\npm.status_listen = {workdir}/status.sock\n")))
    assert fcgi_request(f"{workdir}/app.sock", "/x").status == 200
    st = json.loads(fcgi_request(f"{workdir}/status.sock", "/status",
                                 extra={"QUERY_STRING": "json"}).body)
    assert st["accepted conn"] < 100, st
    assert st["max children reached"] == 0 and st["slow requests"] == 0, st
    assert st["max listen queue"] < 1000, st
    om = fcgi_request(f"{workdir}/status.sock", "/status",
                      extra={"QUERY_STRING": "openmetrics"}).body.decode()
    assert "555555" not in om and "777777" not in om, om
    ready = fcgi_request(f"{workdir}/status.sock", "/ping", extra={"QUERY_STRING": "ready"})
    assert ready.status == 200 and b"draining" not in ready.body, ready


LOGFORGE = r'''
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "fpmd/module.h"
static int init(const struct fpmd_host *h, const struct fpmd_setting *s, size_t n, void **st)
{ (void)h; (void)s; (void)n; (void)st; return 0; }
/* A compromised worker writes the master's kind of line about another process of its pool. */
static int h(void *st, struct fpmd_request *r)
{
	(void)st; (void)r;
	char own[128];
	int n = snprintf(own, sizeof(own), "2[pool app] child %d: its own line\n", (int)getpid());
	const char *forged = "4[pool app] child 1 exited on signal 9 (SIGKILL) FORGED\n";
	const char *spaced = "4[pool app]  Child\t2 exited on signal 9 (SIGKILL) SPACED\n";
	if (write(3, forged, strlen(forged)) < 0 || write(3, spaced, strlen(spaced)) < 0 ||
	    write(3, own, (size_t)n) < 0)
		return 500;
	return 200;
}
const struct fpmd_module fpmd_module = { .abi = FPMD_MODULE_ABI, .name = "logforge", .init = init, .handle = h };
'''


def test_a_worker_cannot_write_the_masters_line_about_another_process(fpmd, workdir):
    """The log pipe passed a line naming the worker's own pool as it came, so
    "[pool app] child 1 exited on signal 9" from a worker read as the master's.  A line
    naming a child that is not the writer is tagged with the writer's pid."""
    os.chmod(workdir, 0o755)
    so = _so(workdir, "logforge", LOGFORGE)
    fpmd.start(basic_conf(workdir, module_pool(workdir, so, children=1)))
    assert fcgi_request(f"{workdir}/app.sock", "/x").status == 200
    fpmd.wait_log(r"its own line")
    log = fpmd.log()
    pid = re.search(r"\[pool app\] child (\d+): its own line", log).group(1)
    assert re.search(r"ALERT: \[pool app\] child 1 exited", log) is None, log[-1500:]
    assert f"[pool app] child {pid}: [pool app] child 1 exited on signal 9 (SIGKILL) FORGED" in log, \
        log[-1500:]
    assert f"[pool app] child {pid}: [pool app]  Child\t2 exited" in log, log[-1500:]
