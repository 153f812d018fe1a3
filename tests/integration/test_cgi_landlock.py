"""cgi.landlock (issue #12, optional hardening): scripts read and execute only under cgi.root
(and cgi.allow[], cgi.interpreter) and the system directories.  Skipped where the kernel has
no Landlock."""
import ctypes
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import FPMD, basic_conf, fcgi_request, pool_conf, write_script


def landlock_abi():
    libc = ctypes.CDLL(None, use_errno=True)
    SYS_landlock_create_ruleset = 444          # the same number on every architecture
    return libc.syscall(SYS_landlock_create_ruleset, None, 0, 1)   # LANDLOCK_CREATE_RULESET_VERSION


pytestmark = pytest.mark.skipif(landlock_abi() < 1, reason="the kernel offers no Landlock")

READER = ("#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
          "for f in $(echo \"$QUERY_STRING\" | tr + ' '); do\n"
          "  if cat \"$f\" >/dev/null 2>&1; then echo \"read $f\"; else echo \"denied $f\"; fi\n"
          "done\n")


@pytest.fixture
def outside():
    """A world-readable file outside cgi.root: only Landlock keeps the pool user from it."""
    d = tempfile.mkdtemp(prefix="fpmd-outside-", dir="/tmp")
    os.chmod(d, 0o755)
    path = f"{d}/secret.txt"
    with open(path, "w") as f:
        f.write("secret\n")
    os.chmod(path, 0o644)
    yield path
    shutil.rmtree(d, ignore_errors=True)


def run(fpmd, workdir, outside, landlock):
    write_script(f"{workdir}/read.sh", READER)
    with open(f"{workdir}/inside.txt", "w") as f:
        f.write("inside\n")
    os.chmod(f"{workdir}/inside.txt", 0o644)
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1,
                                             extra=f"cgi.landlock = {'yes' if landlock else 'no'}\n")))
    q = "+".join([outside, f"{workdir}/inside.txt", "/etc/hostname"])
    r = fcgi_request(f"{workdir}/www.sock", f"/read.sh?{q}", root=workdir)
    assert r.status == 200, (r.stdout, fpmd.log()[-2000:])
    return r.body.decode()


def test_a_script_cannot_read_outside_its_root(fpmd, workdir, outside):
    body = run(fpmd, workdir, outside, True)
    print("\ncgi.landlock = yes:\n" + body)
    assert f"denied {outside}" in body
    assert f"read {workdir}/inside.txt" in body
    assert "read /etc/hostname" in body          # system directories stay readable
    # the worker itself still answers its status and ping
    sock = f"{workdir}/www.sock"
    assert fcgi_request(sock, "/ping").body == b"pong"
    assert b"accepted conn" in fcgi_request(sock, "/status").body


def test_without_landlock_the_same_script_reads_it(fpmd, workdir, outside):
    """The control: the file is readable by the pool user; only Landlock denies it."""
    body = run(fpmd, workdir, outside, False)
    assert f"read {outside}" in body


def test_cgi_landlock_only_in_cgi_pools(workdir):
    path = f"{workdir}/t.conf"
    with open(path, "w") as f:
        f.write(basic_conf(workdir, pool_conf(workdir, app="module", extra="module.path = /x.so\n"
                                              "cgi.landlock = yes\n")))
    r = subprocess.run([FPMD, "-y", path, "-t"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "cgi.landlock applies to app.type = cgi pools only" in r.stdout + r.stderr
