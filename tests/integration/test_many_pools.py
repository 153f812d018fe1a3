"""Hundreds of php pools on one master (issue 22): start, -t, status_listen,
metrics and reload work, an idle master does not wake up.  No timings are
asserted here (make bench's density scenario measures them)."""
import os
import signal
import subprocess
import time

import pytest

from conftest import FPMD, basic_conf, children_of, fcgi_request, wait_for, write_script
from test_php import PHP_SO

pytestmark = [pytest.mark.skipif(not os.path.exists(PHP_SO), reason="fpmd-php.so not built")]

N = 300


def many(workdir):
    out = ""
    for i in range(N):
        out += (f"[site{i}]\nuser = nobody\nlisten = {workdir}/s{i}.sock\npm = ondemand\n"
                f"pm.max_children = 2\npm.status_path = /status\nping.path = /ping\n")
    out += f"pm.status_listen = {workdir}/status-last.sock\n"
    return out


def ctx_switches(pid):
    return sum(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if "ctxt_switches" in l)


def test_three_hundred_ondemand_php_pools(fpmd, workdir):
    write_script(os.path.join(workdir, "hello.php"), "<?php echo 'hello ', ini_get('memory_limit');",
                 0o644)
    fpmd.write_conf(basic_conf(workdir, many(workdir)))
    t = subprocess.run([FPMD, "-t", "-y", fpmd.conf_path], capture_output=True, text=True)
    assert t.returncode == 0, t.stderr
    fpmd.start(timeout=30)
    # one PHP for all of them, no pool process until a request comes
    kids = children_of(fpmd.pid)
    assert len(kids) == 1 and "php zygote (shared)" in open(f"/proc/{kids[0]}/cmdline").read()
    for i in (0, N // 2, N - 1):
        assert fcgi_request(f"{workdir}/s{i}.sock", "/hello.php", root=workdir).body.startswith(b"hello")
    st = fcgi_request(f"{workdir}/status-last.sock", "/status", root=workdir, extra={"QUERY_STRING": "openmetrics"})
    assert st.status == 200 and b"phpfpm_" in st.body
    # idle: the master sleeps (no timer, no wake-up) once the workers are gone
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log("ready to handle connections", count=2, timeout=30)
    assert fcgi_request(f"{workdir}/s{N - 1}.sock", "/hello.php", root=workdir).body.startswith(b"hello")
    time.sleep(1.5)
    before = ctx_switches(fpmd.pid)
    time.sleep(2)
    # a worker's retirement may still come (pm.process_idle_timeout, 10 s): a handful at most
    assert ctx_switches(fpmd.pid) - before <= 4
