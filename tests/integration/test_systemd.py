"""systemd's notify protocol, checked with a datagram listener standing in for systemd."""
import os
import signal
import socket
import subprocess
import time

from conftest import FPMCTL, basic_conf, fcgi_request, pool_conf, wait_for, write_script


class Listener:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.messages = []

    def drain(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                return self.messages

    def wait(self, needle, timeout=10):
        return wait_for(lambda: any(needle in m for m in self.drain()), timeout)


def test_ready_status_reload_stopping(fpmd, workdir):
    write_script(f"{workdir}/ok.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    listener = Listener(f"{workdir}/notify.sock")
    os.environ["NOTIFY_SOCKET"] = f"{workdir}/notify.sock"
    os.environ["WATCHDOG_USEC"] = "2000000"
    try:
        fpmd.start(basic_conf(workdir, global_extra=f"systemd_interval = 1\ncontrol_socket = {workdir}/c.ctl"))
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
    assert listener.wait("READY=1")
    assert any(f"MAINPID={fpmd.pid}" in m for m in listener.messages)
    fcgi_request(f"{workdir}/www.sock", "/ok.sh", root=workdir)
    assert listener.wait("STATUS=Processes active: ")
    assert listener.wait("WATCHDOG=1")
    assert any("Requests: " in m and "Traffic: " in m for m in listener.messages)
    listener.messages.clear()
    r = subprocess.run([FPMCTL, "reload", "-c", f"{workdir}/c.ctl"], capture_output=True, text=True)
    assert r.returncode == 0
    assert listener.wait("RELOADING=1")
    assert any("MONOTONIC_USEC=" in m for m in listener.messages)
    assert listener.wait("READY=1")
    # READY=1 after RELOADING=1, in that order.
    idx = [i for i, m in enumerate(listener.messages) if "RELOADING=1" in m][0]
    assert any("READY=1" in m for m in listener.messages[idx + 1:])
    fpmd.signal(signal.SIGTERM)
    fpmd.wait(10)
    assert listener.wait("STOPPING=1")
