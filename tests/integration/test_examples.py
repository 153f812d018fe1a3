"""The shipped example configuration and the `make run` demo."""
import os
import signal
import subprocess
import time

import pytest

from conftest import BUILD, FPMD, fcgi_request, wait_for

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def test_example_config_checks():
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
