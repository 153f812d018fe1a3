"""The master under valgrind over start, requests, reload, reopen and stop: no leak, no error."""
import glob
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import FPMCTL, FPMD, SANITIZED, basic_conf, fcgi_request, pool_conf, wait_for, write_script


@pytest.mark.skipif(SANITIZED or not shutil.which("valgrind"), reason="needs valgrind and a plain build")
def test_master_is_valgrind_clean(workdir):
    conf = os.path.join(workdir, "fpmd.conf")
    with open(conf, "w") as f:
        f.write(basic_conf(workdir, pool_conf(workdir, pm="dynamic", children=4,
                                              extra=f"pm.start_servers = 2\npm.min_spare_servers = 1\n"
                                                    f"pm.max_spare_servers = 2\naccess.log = {workdir}/a.log\n"),
                           # Under valgrind everything is 20-50x slower: no escalation mid-test.
                           global_extra=f"control_socket = {workdir}/fpmd.ctl\n"
                                        "process_control_timeout = 120s"))
    log = open(os.path.join(workdir, "out.log"), "wb")
    proc = subprocess.Popen(["valgrind", "--leak-check=full", "--child-silent-after-fork=yes",
                             "--trace-children=yes", "--trace-children-skip=*.sh,/bin/*,/usr/bin/*",
                             f"--log-file={workdir}/vg.%p.txt",
                             FPMD, "-F", "-O", "-y", conf], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    def fpmd_log():
        return open(os.path.join(workdir, "out.log"), errors="replace").read()

    try:
        sock = f"{workdir}/www.sock"
        # Requests the workers answer themselves (ping.path): what is under test is the
        # master.  A CGI script exec'd from a worker that runs under valgrind fails now and
        # then inside valgrind's own exec emulation (exit 1, no output), which no fpmd build
        # outside valgrind does.
        assert wait_for(lambda: os.path.exists(sock) and "ready to handle" in open(f"{workdir}/out.log").read(), 60)
        for _ in range(20):
            try:
                assert fcgi_request(sock, "/ping", root=workdir, timeout=30).body == b"pong"
            except Exception:
                print(fpmd_log())
                raise
        r = subprocess.run([FPMCTL, "reload", "-c", f"{workdir}/fpmd.ctl", "--timeout", "120"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        for _ in range(10):
            try:
                assert fcgi_request(sock, "/ping", root=workdir, timeout=30).body == b"pong"
            except Exception:
                print(fpmd_log())
                raise
        subprocess.run([FPMCTL, "reopen", "-c", f"{workdir}/fpmd.ctl"], capture_output=True)
        time.sleep(0.5)
        r = subprocess.run([FPMCTL, "quit", "-c", f"{workdir}/fpmd.ctl", "--timeout", "60"],
                           capture_output=True, text=True)
        assert r.returncode == 0
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(10)
    reports = [open(p).read() for p in glob.glob(f"{workdir}/vg.*.txt")]
    masters = [r for r in reports if re.search(r"Command: \S*fpmd -F", r)]
    assert masters, reports
    for rep in reports:
        assert "ERROR SUMMARY: 0 errors" in rep, rep[-3000:]
        assert re.search(r"definitely lost: 0 bytes|no leaks are possible", rep), rep[-3000:]
