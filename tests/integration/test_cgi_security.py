"""app.type = cgi: what a request may not do to the host (issue 20, items 2 and 4).

The environment a script sees is an allowlist (src/cgi/cgi_env.c), and a
script cannot outlive its request by leaving its process group.
"""
import os
import shutil
import subprocess
import time

import pytest

from conftest import (SANITIZED, alive, basic_conf, build_request, cgi_params, connect,
                      fcgi_request, pool_conf, read_records, wait_for, write_script, Response)
from test_cgi import env_of

GIT_BACKEND = "/usr/lib/git-core/git-http-backend"


def cgi_pool(workdir, www, extra="", children=2):
    return pool_conf(workdir, children=children, extra=extra).replace(
        f"cgi.root = {workdir}", f"cgi.root = {www}")


ECHO_ENV = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nenv\n"

# Names that switch programs a script may start (git, OpenSSL, the JVM, less,
# perl, ruby, curl/wget's proxies): none is a CGI meta-variable.
HOSTILE = {
    "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.pager", "GIT_CONFIG_VALUE_0": "x",
    "GIT_DIR": "/tmp", "GIT_CONFIG_GLOBAL": "/tmp/x", "GIT_CONFIG_SYSTEM": "/tmp/x",
    "GIT_PROXY_COMMAND": "x", "GIT_EXTERNAL_DIFF": "x", "OPENSSL_CONF": "/tmp/x",
    "SSLKEYLOGFILE": "/tmp/x", "JAVA_TOOL_OPTIONS": "-x", "LESSOPEN": "|x", "PERLDB_OPTS": "x",
    "GEM_PATH": "/tmp", "http_proxy": "http://x:1", "HTTPS_PROXY": "http://x:1",
    "ALL_PROXY": "http://x:1", "HTTP_PROXY": "http://x:1", "LD_PRELOAD": "/tmp/x.so",
    "SSL_CERT_FILE": "/tmp/x", "GIT_PROJECT_ROOT": "/tmp",
}


def test_only_meta_variables_and_headers_reach_the_script(fpmd, workdir):
    www = os.path.join(workdir, "www")
    os.makedirs(www)
    write_script(f"{www}/env.sh", ECHO_ENV)
    fpmd.start(basic_conf(workdir, cgi_pool(workdir, www, "env[FROM_POOL] = yes\n")))
    r = fcgi_request(f"{workdir}/www.sock", "/env.sh?a=1", root=www,
                     extra=dict(HOSTILE, HTTP_X_TRACE="t1", HTTPS="on", REMOTE_USER="bob"))
    assert r.status == 200, r.stdout
    env = env_of(r)
    leaked = sorted(k for k in HOSTILE if k in env)
    assert leaked == [], f"params that must not reach a script: {leaked}"
    # what a script needs still arrives
    assert env["QUERY_STRING"] == "a=1" and env["HTTP_X_TRACE"] == "t1"
    assert env["HTTPS"] == "on" and env["REMOTE_USER"] == "bob"
    assert env["REQUEST_METHOD"] == "GET" and env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["FROM_POOL"] == "yes"


def test_cgi_pass_params_lets_named_params_through(fpmd, workdir):
    www = os.path.join(workdir, "www")
    os.makedirs(www)
    write_script(f"{www}/env.sh", ECHO_ENV)
    fpmd.start(basic_conf(workdir, cgi_pool(
        workdir, www, "cgi.pass_params = GIT_PROJECT_ROOT APP_*\n")))
    r = fcgi_request(f"{workdir}/www.sock", "/env.sh", root=www,
                     extra={"GIT_PROJECT_ROOT": "/srv/git", "APP_MODE": "prod",
                            "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "a.b"})
    env = env_of(r)
    assert env["GIT_PROJECT_ROOT"] == "/srv/git" and env["APP_MODE"] == "prod"
    assert "GIT_CONFIG_COUNT" not in env and "GIT_CONFIG_KEY_0" not in env


def test_the_pools_env_wins_over_what_a_request_sends(fpmd, workdir):
    """env[GIT_PROJECT_ROOT] with the name in cgi.pass_params (both ways the docs
    show): a request's GIT_PROJECT_ROOT=/ replaced the operator's value, and
    git-http-backend would serve every repository on the disk."""
    www = os.path.join(workdir, "www")
    os.makedirs(www)
    write_script(f"{www}/env.sh", ECHO_ENV)
    fpmd.start(basic_conf(workdir, cgi_pool(
        workdir, www, "env[GIT_PROJECT_ROOT] = /srv/git\nenv[HTTPS] = on\n"
        "cgi.pass_params = GIT_PROJECT_ROOT GIT_HTTP_EXPORT_ALL\n")))
    r = fcgi_request(f"{workdir}/www.sock", "/env.sh", root=www,
                     extra={"GIT_PROJECT_ROOT": "/", "HTTPS": "off-by-client",
                            "GIT_HTTP_EXPORT_ALL": "1"})
    env = env_of(r)
    assert env["GIT_PROJECT_ROOT"] == "/srv/git" and env["HTTPS"] == "on", env
    assert env["GIT_HTTP_EXPORT_ALL"] == "1"      # a name env[] does not set still passes


def test_cgi_pass_params_outside_a_cgi_pool_is_an_error(fpmd, workdir):
    pool = pool_conf(workdir, app="module", extra="cgi.pass_params = X\n"
                     "module.path = /nonexistent.so\n")
    fpmd.write_conf(basic_conf(workdir, pool))
    out = subprocess.run([fpmd_binary(), "-t", "-y", fpmd.conf_path], capture_output=True, text=True)
    assert out.returncode != 0
    assert "cgi.pass_params applies to app.type = cgi pools only" in out.stderr + out.stdout


def fpmd_binary():
    from conftest import FPMD
    return FPMD


@pytest.mark.skipif(not os.path.exists(GIT_BACKEND), reason="git is not installed")
def test_git_http_backend_config_injection_runs_nothing(fpmd, workdir):
    """The reported exploit: GIT_CONFIG_* params set uploadpack.packObjectsHook."""
    repos = os.path.join(workdir, "git")
    os.makedirs(repos)
    src = os.path.join(workdir, "src")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t", HOME=workdir)
    subprocess.run(["git", "init", "-q", src], check=True, env=env)
    with open(os.path.join(src, "f"), "w") as f:
        f.write("x\n")
    subprocess.run(["git", "-C", src, "add", "f"], check=True, env=env)
    subprocess.run(["git", "-C", src, "commit", "-qm", "one"], check=True, env=env)
    subprocess.run(["git", "clone", "-q", "--bare", src, f"{repos}/r.git"], check=True, env=env)
    head = subprocess.run(["git", "-C", f"{repos}/r.git", "rev-parse", "HEAD"], check=True,
                          env=env, capture_output=True, text=True).stdout.strip()
    # owned by the pool user, or git refuses it ("dubious ownership")
    subprocess.run(["chown", "-R", "nobody", repos], check=True)
    marker = f"/tmp/fpmd-test-pwned-{os.getpid()}"
    if os.path.exists(marker):
        os.unlink(marker)

    # The operator's setup: git's own variables from the pool, as its docs say.
    pool = pool_conf(workdir, extra=f"cgi.allow[] = {GIT_BACKEND}\n"
                     f"env[GIT_PROJECT_ROOT] = {repos}\nenv[GIT_HTTP_EXPORT_ALL] = 1\n")
    fpmd.start(basic_conf(workdir, pool))
    want = f"want {head}\n"
    body = (f"{len(want) + 4:04x}{want}0000" + "0009done\n").encode()
    attack = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "uploadpack.packObjectsHook",
              "GIT_CONFIG_VALUE_0": f"touch {marker}; true",
              "SCRIPT_FILENAME": GIT_BACKEND, "PATH_INFO": "/r.git/git-upload-pack",
              "CONTENT_TYPE": "application/x-git-upload-pack-request"}
    r = fcgi_request(f"{workdir}/www.sock", "/git/r.git/git-upload-pack", method="POST",
                     body=body, extra=attack, timeout=20)
    try:
        assert not os.path.exists(marker), "a request's GIT_CONFIG_* params ran a command"
        # and the clone itself worked: the pack came back
        assert r.status == 200, r.stdout[:300]
        assert b"PACK" in r.body
    finally:
        if os.path.exists(marker):
            os.unlink(marker)


# --- item 4: a script cannot escape termination ---------------------------

ESCAPE = """#!/usr/bin/python3
import os, time
# Leave the process group fpmd made for this script: join the worker's.
try:
    os.setpgid(0, os.getpgid(os.getppid()))
    moved = "moved"
except OSError as e:
    moved = "stayed:" + e.strerror
with open("{marker}", "w") as f:
    f.write(f"{{os.getpid()}} {{moved}}")
os.close(1)
os.close(2)
time.sleep(60)
"""


def test_script_leaving_its_group_is_still_terminated(fpmd, workdir):
    www = os.path.join(workdir, "www")
    os.makedirs(www)
    marker = f"/tmp/fpmd-test-escape-{os.getpid()}"
    write_script(f"{www}/escape.py", ESCAPE.format(marker=marker))
    fpmd.start(basic_conf(workdir, cgi_pool(workdir, www, "request_terminate_timeout = 1\n",
                                            children=1)))
    try:
        t0 = time.monotonic()
        r = fcgi_request(f"{workdir}/www.sock", "/escape.py", root=www, timeout=15)
        took = time.monotonic() - t0
        assert wait_for(lambda: os.path.exists(marker) and " " in open(marker).read(), 5)
        pid = int(open(marker).read().split()[0])
        assert r.status == 504 or r.status >= 500
        assert took < 6, f"answered after {took:.1f}s"
        assert wait_for(lambda: not alive(pid), 5), "the script outlived its request"
        # the worker is free again: the next request is served at once
        write_script(f"{www}/ok.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
        r2 = fcgi_request(f"{workdir}/www.sock", "/ok.sh", root=www, timeout=5)
        assert r2.body == b"ok"
    finally:
        if os.path.exists(marker):
            try:
                os.kill(int(open(marker).read().split()[0]), 9)
            except (OSError, ValueError):
                pass
            os.unlink(marker)


def test_script_that_closes_its_output_and_lingers_is_bounded(fpmd, workdir):
    """Output over, the script lives on: the worker waits only until the terminate timeout."""
    www = os.path.join(workdir, "www")
    os.makedirs(www)
    write_script(f"{www}/linger.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nbye'\n"
                 "exec >&- 2>&-\nsleep 60\n")
    fpmd.start(basic_conf(workdir, cgi_pool(workdir, www, "request_terminate_timeout = 1\n",
                                            children=1)))
    t0 = time.monotonic()
    r = fcgi_request(f"{workdir}/www.sock", "/linger.sh", root=www, timeout=15)
    assert r.body == b"bye"
    assert time.monotonic() - t0 < 6
    r2 = fcgi_request(f"{workdir}/www.sock", "/linger.sh", root=www, timeout=15)
    assert r2.body == b"bye"


def test_a_lingering_script_is_stopped_when_its_client_leaves(fpmd, workdir):
    """docs/cgi.md: a script that closed its output is waited for only while its client is there."""
    www = os.path.join(workdir, "www")
    os.makedirs(www)
    marker = f"/tmp/fpmd-test-linger-{os.getpid()}"
    write_script(f"{www}/linger.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nbye'\n"
                 f"echo $$ > {marker}\nexec >&- 2>&-\nsleep 60\n")
    fpmd.start(basic_conf(workdir, cgi_pool(workdir, www, children=1)))   # no time limit
    try:
        s = connect(f"{workdir}/www.sock", timeout=10)
        s.sendall(build_request(cgi_params("/linger.sh", www)))
        got = b""
        while b"bye" not in got:
            got += s.recv(4096)
        assert wait_for(lambda: os.path.exists(marker) and open(marker).read().strip(), 5)
        pid = int(open(marker).read())
        s.close()
        assert wait_for(lambda: not alive(pid), 5), "the script outlived its client"
    finally:
        if os.path.exists(marker):
            os.unlink(marker)


HOLD = "#!/bin/sh\necho $$ > {marker}\nwhile :; do sleep 0.05; done\n"


def _held_script(fpmd, workdir, name):
    """A script that runs until killed, in a request that is never answered: its pid."""
    import threading
    www = os.path.join(workdir, "www")
    os.makedirs(www)
    marker = f"/tmp/fpmd-test-{name}-{os.getpid()}"
    write_script(f"{www}/hold.sh", HOLD.format(marker=marker))
    fpmd.start(basic_conf(workdir, cgi_pool(workdir, www, children=1)))
    threading.Thread(target=lambda: _ignore(fcgi_request, f"{workdir}/www.sock", "/hold.sh",
                                            root=www, timeout=20), daemon=True).start()
    assert wait_for(lambda: os.path.exists(marker) and open(marker).read().strip(), 5)
    pid = int(open(marker).read())
    os.unlink(marker)
    return pid


def _ignore(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except Exception:  # noqa: BLE001 - the request is cut on purpose
        pass


def test_a_fast_stop_leaves_no_script_running(fpmd, workdir):
    """SIGTERM to the master: its workers die at once, and a script in its own session
    (setsid, so that a request's kill reaches all it started) must die with its worker."""
    import signal
    pid = _held_script(fpmd, workdir, "fast-stop")
    try:
        fpmd.signal(signal.SIGTERM)
        fpmd.wait(10)
        assert wait_for(lambda: not alive(pid), 5), "the script outlived fpmd's stop"
    finally:
        if alive(pid):
            os.kill(pid, 9)


def test_a_worker_killed_outright_takes_its_script_with_it(fpmd, workdir):
    """SIGKILL (the OOM killer, kill -9) gives the worker no chance to clean up: the script
    holds a parent-death signal."""
    import signal
    pid = _held_script(fpmd, workdir, "worker-kill")
    try:
        worker = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        assert worker in fpmd.workers()
        os.kill(worker, signal.SIGKILL)
        assert wait_for(lambda: not alive(pid), 5), "the script outlived its worker"
        assert fpmd.proc.poll() is None
    finally:
        if alive(pid):
            os.kill(pid, 9)


def _upload_tree(workdir):
    """www/ (root's), www/uploads/ (nobody's: someone else than root can change
    what is in it) and outside/ (out of the root)."""
    import pwd
    nobody = pwd.getpwnam("nobody")
    www = os.path.join(workdir, "www")
    up = os.path.join(www, "uploads")
    out = os.path.join(workdir, "outside")
    os.makedirs(up)
    os.makedirs(out)
    os.chown(up, nobody.pw_uid, nobody.pw_gid)
    return www, up, out


def _race(workdir, sock, www, script, flip, body=b"", n=400, secs=8):
    """Requests to script while flip() swaps what its path names, in a thread;
    the answers' bodies."""
    import threading
    stop = threading.Event()
    t = threading.Thread(target=lambda: [flip() for _ in iter(stop.is_set, True)], daemon=True)
    t.start()
    bodies = []
    end = time.monotonic() + secs
    try:
        for _ in range(n):
            if time.monotonic() > end:
                break
            r = fcgi_request(sock, script, root=www, method="POST" if body else "GET", body=body)
            bodies.append(r.body)
    finally:
        stop.set()
        t.join(5)
    return bodies


def test_a_script_swapped_after_its_checks_is_not_what_runs(fpmd, workdir):
    """A directory of a cgi.root that someone else than root can write (an
    upload directory): its script flipped between a harmless one and a
    symbolic link out of the root (or to /bin/sh, the body as its commands).
    fpmd checked a path and ran the path again: the race was won in tens of
    requests.  Now the file checked is the file run: opened refusing links,
    and a #! script read by its interpreter through /dev/fd/3 there."""
    www, up, out = _upload_tree(workdir)
    write_script(f"{out}/evil.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nPWNED'\n")
    write_script(f"{www}/good.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    fpmd.start(basic_conf(workdir, cgi_pool(workdir, www, children=2)))
    sock = f"{workdir}/www.sock"
    race = f"{up}/race.sh"
    os.link(f"{www}/good.sh", race)

    for target in (f"{out}/evil.sh", "/bin/sh"):
        tmp_good, tmp_link = f"{up}/.good", f"{up}/.link"

        def flip():
            try:
                os.link(f"{www}/good.sh", tmp_good)
                os.rename(tmp_good, race)
                os.symlink(target, tmp_link)
                os.rename(tmp_link, race)
            except OSError:
                for p in (tmp_good, tmp_link):
                    try:
                        os.unlink(p)
                    except OSError:
                        pass
        body = b"printf 'Content-Type: text/plain\\r\\n\\r\\nPWNED'\n"
        bodies = _race(workdir, sock, www, "/uploads/race.sh", flip, body=body)
        assert not [b for b in bodies if b"PWNED" in b], target
        assert b"ok" in bodies, "the harmless script never ran: the test tested nothing"


@pytest.mark.parametrize("landlock", [False, True], ids=["plain", "landlock"])
def test_a_script_only_root_can_change_keeps_its_name(fpmd, workdir, landlock):
    """In directories only root can change, a #! script is run by its path:
    its $0 is its name (awstats, FindBin, __file__ need it).  Elsewhere it is
    run through its descriptor, and says so in $0."""
    import pwd
    nobody = pwd.getpwnam("nobody")
    www = os.path.join(workdir, "www")
    up = os.path.join(www, "uploads")
    os.makedirs(up)
    os.chown(up, nobody.pw_uid, nobody.pw_gid)
    me = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s' \"$0\"\n"
    write_script(f"{www}/me.sh", me)
    write_script(f"{up}/me.sh", me)
    fpmd.start(basic_conf(workdir, cgi_pool(workdir, www,
                                            "cgi.landlock = yes\n" if landlock else "")))
    sock = f"{workdir}/www.sock"
    assert fcgi_request(sock, "/me.sh", root=www).body == f"{www}/me.sh".encode()
    assert fcgi_request(sock, "/uploads/me.sh", root=www).body == b"/dev/fd/3"


def test_a_directory_swapped_after_the_checks_does_not_run_what_is_beyond(fpmd, workdir):
    """The same race one level up: uploads/sub flips between a real directory
    (its tool.cgi harmless) and a link to a directory out of the root whose
    tool.cgi is a shell.  realpath saw the real one, the open walked the link."""
    import shutil as sh
    www, up, out = _upload_tree(workdir)
    sh.copy("/bin/sh", f"{out}/tool.cgi")
    real = f"{up}/.real"
    os.makedirs(real)
    write_script(f"{real}/tool.cgi", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    fpmd.start(basic_conf(workdir, cgi_pool(workdir, www, children=2)))
    sock = f"{workdir}/www.sock"
    sub, link = f"{up}/sub", f"{up}/.link"

    def flip():
        try:
            os.rename(real, sub)           # the real directory in place
            os.symlink(out, link)
            os.rename(sub, real)
            os.rename(link, sub)           # the link in place
            os.unlink(sub)
        except OSError:
            pass
    body = b"printf 'Content-Type: text/plain\\r\\n\\r\\nPWNED'\n"
    bodies = _race(workdir, sock, www, "/uploads/sub/tool.cgi", flip, body=body)
    assert not [b for b in bodies if b"PWNED" in b]
    assert b"ok" in bodies, "the harmless script never ran: the test tested nothing"


def test_in_a_chroot_without_proc_a_script_others_can_change_is_refused(fpmd, workdir):
    """docs/cgi.md: a #! script whose directory someone else than root can change
    runs through /dev/fd/3; in a chroot without /proc there is none, and running
    it by its path would reopen the race: refused, saying why."""
    import pwd
    nobody = pwd.getpwnam("nobody")
    jail = os.path.join(workdir, "jail")
    os.makedirs(f"{jail}/cgi-bin")
    os.chown(f"{jail}/cgi-bin", nobody.pw_uid, nobody.pw_gid)
    write_script(f"{jail}/cgi-bin/me.sh", "#!/bin/sh\necho hi\n")
    pool = (f"[www]\nuser = nobody\nlisten = {workdir}/www.sock\npm = static\n"
            f"pm.max_children = 1\napp.type = cgi\nchroot = {jail}\ncgi.root = /cgi-bin\n")
    fpmd.start(basic_conf(workdir, pool))
    r = fcgi_request(f"{workdir}/www.sock", "/me.sh", root="/cgi-bin",
                     extra={"SCRIPT_FILENAME": "/cgi-bin/me.sh"})
    assert r.status == 403, r.stdout
    fpmd.wait_log(r"and /dev/fd is missing \(a chroot without /proc\)")


def _pids_with_arg(arg):
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if arg.encode() in f.read().split(b"\0"):
                        found.append(int(d))
            except OSError:
                pass
    return found


def test_what_a_script_starts_in_a_session_of_its_own_ends_with_its_request(fpmd, workdir):
    """A script's children that leave its session with setsid() (directly, or through a
    subshell that exits at once) outlived request_terminate_timeout, the worker and the
    master, piling up to the user's process limit.  They end with the request now; a
    background job left by a script that ended well is kept, as fcgiwrap keeps it."""
    www = os.path.join(workdir, "www")
    os.makedirs(www)
    tag = f"fpmd-escape-{os.getpid()}"
    write_script(f"{www}/daemon.sh",
                 "#!/bin/sh\n"
                 f"( setsid sleep 600.{os.getpid()}1 </dev/null >/dev/null 2>&1 & )\n"
                 f"setsid sleep 600.{os.getpid()}2 </dev/null >/dev/null 2>&1 &\n"
                 "sleep 30\n")
    write_script(f"{www}/job.sh",
                 "#!/bin/sh\n"
                 f"setsid sleep 600.{os.getpid()}3 </dev/null >/dev/null 2>&1 &\n"
                 "printf 'Content-Type: text/plain\\r\\n\\r\\nqueued\\n'\n")
    fpmd.start(basic_conf(workdir, cgi_pool(workdir, www, "request_terminate_timeout = 2\n",
                                            children=1)))
    try:
        r = fcgi_request(f"{workdir}/www.sock", "/job.sh", root=www, timeout=10)
        assert r.body == b"queued\n"
        assert wait_for(lambda: _pids_with_arg(f"600.{os.getpid()}3"), 5)
        r = fcgi_request(f"{workdir}/www.sock", "/daemon.sh", root=www, timeout=15)
        assert r.status == 504, r
        escaped = [f"600.{os.getpid()}1", f"600.{os.getpid()}2"]
        assert wait_for(lambda: not any(_pids_with_arg(a) for a in escaped), 5), \
            f"left running: {[(a, _pids_with_arg(a)) for a in escaped]}\n{fpmd.log()[-2000:]}"
        # the earlier request's background job was its own: still running
        assert _pids_with_arg(f"600.{os.getpid()}3")
    finally:
        for i in (1, 2, 3):
            for pid in _pids_with_arg(f"600.{os.getpid()}{i}"):
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass


def test_a_post_whose_client_leaves_mid_work_is_not_cut(fpmd, workdir):
    """hgweb's push behind fpmd, the client gone after its upload: the script got SIGTERM
    mid-transaction and left the repository's journal (every later push refused until
    `hg recover`); fcgiwrap lets it finish.  A request that may change state, whose body
    the script has, now runs on (within request_terminate_timeout); a GET is still
    stopped at once."""
    www = os.path.join(workdir, "www")
    os.makedirs(www)
    os.chmod(workdir, 0o777)
    journal = os.path.join(workdir, "journal")
    write_script(f"{www}/txn.sh",
                 f"#!/bin/sh\ncat >/dev/null\ntouch {journal}.$REQUEST_METHOD\nsleep 2\n"
                 f"rm {journal}.$REQUEST_METHOD\nprintf 'Content-Type: text/plain\\r\\n\\r\\ncommitted\\n'\n")
    fpmd.start(basic_conf(workdir, cgi_pool(workdir, www, "request_terminate_timeout = 20\n",
                                            children=2)))
    for method in ("POST", "GET"):
        s = connect(f"{workdir}/www.sock", timeout=10)
        s.sendall(build_request(cgi_params("/txn.sh", www, method=method, body=b"payload" * 1000),
                                b"payload" * 1000))
        assert wait_for(lambda: os.path.exists(f"{journal}.{method}"), 5), method
        s.close()                      # the client gives up mid-work
    time.sleep(3.5)
    assert not os.path.exists(f"{journal}.POST"), "the POST's script was stopped mid-work"
    # a GET's script is stopped at once: nobody wants its answer
    assert os.path.exists(f"{journal}.GET")
    assert "terminating" not in fpmd.log(), fpmd.log()[-1500:]


def test_a_post_run_on_is_no_script_error_and_is_bounded(fpmd, workdir):
    """A POST whose client left before the header ran on (run_on) and then was taken for a
    broken script: "produced no end of its header section", a 502 in the access log.
    Its end is a notice now; its run-on stops at request_terminate_timeout; and one whose
    client gave up while it waited for a worker is not started at all."""
    www = os.path.join(workdir, "www")
    os.makedirs(www)
    os.chmod(workdir, 0o777)
    ran = os.path.join(workdir, "queued.ran")
    write_script(f"{www}/p.sh", "#!/bin/sh\ncat >/dev/null\nsleep 1\n"
                 "printf 'Content-Type: text/plain\\r\\n\\r\\ndone\\n'\n")
    write_script(f"{www}/forever.sh", "#!/bin/sh\ncat >/dev/null\nexec sleep 600\n")
    write_script(f"{www}/queued.sh", f"#!/bin/sh\ncat >/dev/null\ntouch {ran}\n"
                 "printf 'Content-Type: text/plain\\r\\n\\r\\nq\\n'\n")
    acc = os.path.join(workdir, "access.log")
    fpmd.start(basic_conf(workdir, cgi_pool(workdir, www, f"request_terminate_timeout = 3\n"
                                            f"access.log = {acc}\n", children=2)))
    for script in ("/p.sh", "/forever.sh", "/queued.sh"):
        s = connect(f"{workdir}/www.sock", timeout=10)
        s.sendall(build_request(cgi_params(script, www, method="POST", body=b"x" * 100), b"x" * 100))
        time.sleep(0.3)
        s.close()
    fpmd.wait_log(r"client went away; script '.*/p.sh' ran on to its end \(exit status 0\)")
    fpmd.wait_log(r"client went away before script '.*/queued.sh' started; not run")
    fpmd.wait_log(r"script '.*/forever.sh' execution timed out \(3 sec\) after its client left",
                  timeout=10)
    log = fpmd.log()
    assert "ERROR" not in log, log[-2000:]
    assert not os.path.exists(ran), "an abandoned queued request's script ran"
    assert wait_for(lambda: os.path.exists(acc) and "/p.sh" in open(acc).read(), 5)
    assert " 502 " not in open(acc).read(), open(acc).read()
    # the workers are free again
    assert fcgi_request(f"{workdir}/www.sock", "/p.sh", root=www, method="POST", body=b"y",
                        timeout=10).body == b"done\n"


def _zombies_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read().rsplit(")", 1)[1].split()
                if st[0] == "Z" and int(st[1]) == pid:
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def test_a_scripts_ended_orphans_leave_no_zombies_and_older_jobs_are_spared(fpmd, workdir):
    """The worker adopts what a script's processes leave behind (to kill a stopped request's
    escapees): those that ended piled up as zombies of the worker, during a long request
    and after it.  And a background job an earlier request left, whose own parent died
    during a later stopped request, was killed with that request: only processes started
    since the stopped request's script are its."""
    www = os.path.join(workdir, "www")
    os.makedirs(www)
    tag = os.getpid()
    write_script(f"{www}/many.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
                 "for i in 1 2 3 4 5 6 7 8 9 10; do ( sleep 0.05 & ); done\necho spawned\n"
                 "sleep 1.5\necho done\n")
    write_script(f"{www}/job.sh", "#!/bin/sh\n"
                 f"setsid sh -c 'sh -c \"exec sleep 300.{tag}7\" & sleep 1' </dev/null >/dev/null 2>&1 &\n"
                 "printf 'Content-Type: text/plain\\r\\n\\r\\nqueued\\n'\n")
    write_script(f"{www}/hold.sh", "#!/bin/sh\nsleep 30\n")
    fpmd.start(basic_conf(workdir, cgi_pool(workdir, www, children=1)))
    worker = fpmd.workers()[0]
    import threading
    got = []
    t = threading.Thread(target=lambda: got.append(
        fcgi_request(f"{workdir}/www.sock", "/many.sh", root=www, timeout=10)))
    t.start()
    time.sleep(1.0)
    during = _zombies_of(worker)
    t.join(10)
    assert got and got[0].body == b"spawned\ndone\n", got
    assert len(during) <= 1, f"zombies under the worker during the request: {during}"
    try:
        assert fcgi_request(f"{workdir}/www.sock", "/job.sh", root=www).body == b"queued\n"
        assert wait_for(lambda: _pids_with_arg(f"300.{tag}7"), 5)
        # a GET whose client leaves, while the job's parent shell exits (after 1 s)
        s = connect(f"{workdir}/www.sock", timeout=10)
        s.sendall(build_request(cgi_params("/hold.sh", www)))
        time.sleep(1.5)
        s.close()
        fpmd.wait_log(r"client went away; script '.*/hold.sh' stopped", timeout=5) \
            if "hold.sh" in fpmd.log() else time.sleep(1)
        time.sleep(0.5)
        assert _pids_with_arg(f"300.{tag}7"), "an earlier request's background job was killed"
        assert not _zombies_of(worker), _zombies_of(worker)
    finally:
        for pid in _pids_with_arg(f"300.{tag}7"):
            try:
                os.kill(pid, 9)
            except OSError:
                pass


@pytest.mark.skipif(SANITIZED, reason="a minute of waiting; the plain build runs the same code")
def test_a_post_run_on_without_request_terminate_timeout_stops_at_60s(fpmd, workdir):
    """docs/cgi.md: without request_terminate_timeout a POST whose client left runs on 60 s
    at most (as long as nginx's fastcgi_read_timeout would have waited): it held its
    worker for as long as the script ran."""
    www = os.path.join(workdir, "www")
    os.makedirs(www)
    write_script(f"{www}/forever.sh", "#!/bin/sh\ncat >/dev/null\nexec sleep 600\n")
    fpmd.start(basic_conf(workdir, cgi_pool(workdir, www, children=1)))
    s = connect(f"{workdir}/www.sock", timeout=10)
    s.sendall(build_request(cgi_params("/forever.sh", www, method="POST", body=b"x"), b"x"))
    time.sleep(0.5)
    left = time.monotonic()
    s.close()
    fpmd.wait_log(r"script '.*/forever.sh' execution timed out \(6\d sec\) after its client left",
                  timeout=70)
    took = time.monotonic() - left
    assert 58 <= took <= 64, took
