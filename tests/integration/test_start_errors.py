"""A start that fails says why on the terminal and in the error log (issue 21, item 1).

php-fpm8.2 prints a start failure both to stderr and to its error_log, in the
foreground and when daemonizing; a daemonizing start exits non-zero only once
the message is out.  Also: the socket's own missing directory is created (the
way systemd's RuntimeDirectory= would), a deeper missing path is named.
"""
import os
import subprocess

import pytest

from conftest import FPMD, basic_conf, pool_conf, fcgi_request, wait_for

EX_CONFIG = 78


def start(workdir, conf, *args):
    path = os.path.join(workdir, "fpmd.conf")
    with open(path, "w") as f:
        f.write(conf)
    # stdout/stderr are pipes, as a terminal would be: nothing is redirected to the log.
    return subprocess.run([FPMD, "-y", path, *args], capture_output=True, text=True, timeout=30,
                          cwd=workdir)


def error_log(workdir):
    try:
        with open(os.path.join(workdir, "error.log")) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def stop(workdir):
    pidfile = os.path.join(workdir, "fpmd.pid")
    if os.path.exists(pidfile):
        with open(pidfile) as f:
            pid = int(f.read())
        os.kill(pid, 15)
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 10)


MODES = [pytest.param(("-D",), id="daemonize"), pytest.param(("-F",), id="foreground")]


@pytest.mark.parametrize("mode", MODES)
def test_missing_socket_path_on_stderr_and_in_log(workdir, mode):
    sock = os.path.join(workdir, "missing", "deeper", "www.sock")
    r = start(workdir, basic_conf(workdir, pool_conf(workdir, listen=sock)), *mode)
    assert r.returncode == EX_CONFIG, (r.stdout, r.stderr)
    missing = os.path.join(workdir, "missing")
    for where, text in (("stderr", r.stderr), ("error_log", error_log(workdir))):
        assert f"unable to bind listening socket for address '{sock}'" in text, (where, text)
        assert f"'{missing}'" in text, (where, text)      # the directory that is missing
        assert "FPM initialization failed" in text, (where, text)
    assert not os.path.exists(missing)


@pytest.mark.skipif(os.geteuid() != 0, reason="pool users are resolved as root")
@pytest.mark.parametrize("mode", MODES)
def test_unknown_user_on_stderr_and_in_log(workdir, mode):
    r = start(workdir, basic_conf(workdir, pool_conf(workdir, user="fpmd-no-such-user")), *mode)
    assert r.returncode == EX_CONFIG, (r.stdout, r.stderr)
    for where, text in (("stderr", r.stderr), ("error_log", error_log(workdir))):
        assert "[pool www] cannot get uid for user 'fpmd-no-such-user'" in text, (where, text)
        assert "FPM initialization failed" in text, (where, text)


@pytest.mark.parametrize("mode", MODES)
def test_good_start_is_quiet_on_the_terminal(workdir, mode):
    """Only failures go to the terminal: a good start logs to its file alone."""
    conf = basic_conf(workdir)
    if mode == ("-F",):
        path = os.path.join(workdir, "fpmd.conf")
        with open(path, "w") as f:
            f.write(conf)
        p = subprocess.Popen([FPMD, "-y", path, "-F"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=workdir)
        try:
            assert wait_for(lambda: "ready to handle connections" in error_log(workdir), 10)
        finally:
            p.terminate()
            out, err = p.communicate(timeout=10)
        assert p.returncode == 0 and out == "" and err == "", (p.returncode, out, err)
    else:
        r = start(workdir, conf, *mode)
        try:
            assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r
            assert "ready to handle connections" in error_log(workdir)
        finally:
            stop(workdir)


def test_socket_directory_is_created(workdir):
    """listen = DIR/www.sock with DIR missing (a fresh /run/fpmd): DIR is made, 0755."""
    run = os.path.join(workdir, "run")
    sock = os.path.join(run, "www.sock")
    r = start(workdir, basic_conf(workdir, pool_conf(workdir, listen=sock)), "-D")
    try:
        assert r.returncode == 0, (r.stdout, r.stderr, error_log(workdir))
        assert os.stat(run).st_mode & 0o777 == 0o755
        assert fcgi_request(sock, "/ping").body == b"pong"
        assert f"created the socket directory '{run}'" in error_log(workdir)
    finally:
        stop(workdir)


@pytest.mark.parametrize("extra, message", [
    ("chroot = /nonexistent\n", "pool www: the chroot path '/nonexistent' does not exist or is not a directory"),
    ("chdir = /also/not\n", "pool www: the chdir path '/also/not' does not exist or is not a directory"),
    ("listen.acl_users = nosuch3\n", "pool www: listen.acl_users: cannot resolve 'nosuch3': no such user or group"),
    ("listen.acl_groups = nosuchgroup\n", "pool www: listen.acl_groups: cannot resolve 'nosuchgroup'"),
])
def test_t_refuses_what_no_worker_could_start_with(workdir, extra, message):
    """php-fpm's -t refuses a missing chroot or chdir; fpmd's passed them, and a
    missing chroot even started a pool that said it was ready while every
    worker exited in its setup.  An ACL name that does not resolve failed only
    at the start (or the reload's new master)."""
    conf = os.path.join(workdir, "t.conf")
    with open(conf, "w") as f:
        f.write(basic_conf(workdir, pool_conf(workdir, extra=extra)))
    r = subprocess.run([FPMD, "-t", "-y", conf], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r.stderr
    assert message in r.stderr + r.stdout, r.stderr
