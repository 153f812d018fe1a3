"""Readiness (ping.path?ready, `fpmctl ping --ready`): fails while the pool is saturated, passes
otherwise.  Saturated = no idle worker, pm.max_children reached, more than N connections queued."""
import os
import subprocess
import threading

from conftest import FPMCTL, basic_conf, fcgi_request, pool_conf, wait_for, write_script


def ready(sock, *args):
    return subprocess.run([FPMCTL, "ping", "--ready", "-s", f"unix:{sock}", "--timeout", "5", *args],
                          capture_output=True, text=True, timeout=10)


def test_ready_fails_while_saturated_then_passes(fpmd, workdir):
    # The script holds its worker until the test creates `release`.
    write_script(f"{workdir}/hold.sh", "#!/bin/sh\nwhile [ ! -e release ]; do sleep 0.05; done\n"
                 "printf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    st = f"{workdir}/status.sock"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="dynamic", children=2, extra=(
        "pm.start_servers = 1\npm.min_spare_servers = 1\npm.max_spare_servers = 1\n"
        f"pm.status_listen = {st}\n"))))
    r = ready(st)
    assert r.returncode == 0 and r.stdout.startswith("ready: pool www"), r
    r = fcgi_request(f"{workdir}/www.sock", "/ping?ready")      # a worker answers it too
    assert r.status == 200 and r.body.startswith(b"ready: "), r.body

    results = []
    threads = [threading.Thread(target=lambda: results.append(
        fcgi_request(f"{workdir}/www.sock", "/hold.sh", root=workdir, timeout=30)))
        for _ in range(5)]
    for t in threads:
        t.start()
    try:
        # Two running (max_children), three waiting in the listen queue.
        assert wait_for(lambda: ready(st).returncode == 6, 10), ready(st)
        r = ready(st)
        assert r.returncode == 6, r
        assert "saturated: pool www, 2 of 2 workers busy (max_children 2), 3 connections waiting" \
            in r.stdout, r.stdout
        # A tolerance: up to 3 waiting connections still count as ready.
        assert ready(st, "--max-queue", "3").returncode == 0
        assert ready(st, "--max-queue", "2").returncode == 6
        # Liveness is unaffected: the master answers ping on status_listen.
        live = subprocess.run([FPMCTL, "ping", "-s", f"unix:{st}"], capture_output=True, text=True,
                              timeout=10)
        assert live.returncode == 0 and live.stdout == "pong\n"
        # HEAD: the status code alone.
        h = fcgi_request(st, "/ping?ready", method="HEAD")
        assert h.status == 503 and h.body == b""
    finally:
        open(f"{workdir}/release", "w").close()
        for t in threads:
            t.join(30)
    assert [x.body for x in results] == [b"ok"] * 5
    assert wait_for(lambda: ready(st).returncode == 0, 10), ready(st)


def test_ready_usage(fpmd, workdir):
    r = subprocess.run([FPMCTL, "ping", "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "--ready" in r.stdout and "--max-queue" in r.stdout
    r = subprocess.run([FPMCTL, "ping", "--ready", "--max-queue", "x"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2
    fpmd.start(basic_conf(workdir))
    # Without `ready`, ping is php-fpm's: the configured answer, whatever the load.
    r = fcgi_request(f"{workdir}/www.sock", "/ping?already")
    assert r.status == 200 and r.body == b"pong"
    assert not os.path.exists(f"{workdir}/release")
