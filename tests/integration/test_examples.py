"""The shipped example configuration and the `make run` demo."""
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import BUILD, FPMD, fcgi_request, wait_for

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def test_example_config_checks():
    # the tree `make run` puts in place (scripts/run-demo.sh): -t refuses a missing cgi.root
    for d in ("cgi-bin", "php"):
        shutil.copytree(f"{TOP}/examples/{d}", f"/tmp/fpmd-demo/www/{d}", dirs_exist_ok=True)
    r = subprocess.run([FPMD, "-t", "-y", f"{TOP}/examples/fpmd.conf"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr


def test_make_run_demo_serves_and_stops_on_ctrl_c():
    proc = subprocess.Popen([f"{TOP}/scripts/run-demo.sh", BUILD], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        sock = "/tmp/fpmd-demo-cgi.sock"
        assert wait_for(lambda: os.path.exists(sock) and os.path.exists("/tmp/fpmd-demo-status.sock"), 10)
        time.sleep(0.3)
        assert fcgi_request(sock, "/ping").body == b"pong"
        r = fcgi_request(sock, "/cgi-bin/hello.sh", root="/tmp/fpmd-demo/www")
        assert r.body.startswith(b"Hello from fpmd")
        r = fcgi_request(sock, "/cgi-bin/env.py", root="/tmp/fpmd-demo/www", method="POST", body=b"x=1")
        assert b"body: 'x=1'" in r.body
        os.killpg(proc.pid, signal.SIGINT)          # Ctrl-C reaches the whole group
        out = proc.communicate(timeout=15)[0].decode()
        assert proc.returncode == 0, out
        assert "fpmctl ping -s unix:/tmp/fpmd-demo-cgi.sock" in out   # it says how to talk to it
        assert "exiting, bye-bye!" in out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.mark.skipif(not os.access("/usr/sbin/nginx", os.X_OK), reason="nginx is not installed")
@pytest.mark.skipif(not os.path.exists(os.path.join(BUILD, "fpmd-php.so")),
                    reason="fpmd-php.so not built")
def test_demo_nginx_runs_the_php_pools_scripts_not_shows_them():
    """scripts/demo-nginx.sh in front of `make run`: a .php URL is run by the php
    pool (it served the demo's PHP source as text), a CGI script by the cgi pool;
    the banner says where the log goes (-O: this terminal)."""
    import socket
    import urllib.request
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = subprocess.Popen([f"{TOP}/scripts/run-demo.sh", BUILD], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    web = None
    try:
        assert wait_for(lambda: os.path.exists("/tmp/fpmd-demo-php.sock"), 10)
        web = subprocess.Popen([f"{TOP}/scripts/demo-nginx.sh"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True,
                               env=dict(os.environ, FPMD_DEMO_HTTP_PORT=str(port)))

        def get(path):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                    return r.status, r.read()
            except urllib.error.HTTPError as e:
                return e.code, e.read()
            except OSError:
                return None, b""
        assert wait_for(lambda: get("/cgi-bin/hello.sh")[0] == 200, 10)
        status, body = get("/php/index.php")
        assert status == 200 and b"<?php" not in body, body[:200]
        assert get("/php/no-such.php")[0] == 404
        os.killpg(demo.pid, signal.SIGINT)
        out = demo.communicate(timeout=15)[0].decode()
        assert "log: this terminal" in out
    finally:
        for p in (web, demo):
            if p and p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
