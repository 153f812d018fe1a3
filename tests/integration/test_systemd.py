"""systemd's notify protocol, checked with a datagram listener standing in for systemd."""
import os
import signal
import socket
import subprocess
import time

import pytest

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


def test_socket_activation(fpmd, workdir):
    """A socket systemd (here systemd-socket-activate) opened is adopted, not re-created."""
    import shutil
    import pytest
    activate = shutil.which("systemd-socket-activate")
    if not activate:
        pytest.skip("systemd-socket-activate is not installed")
    sock = f"{workdir}/www.sock"
    fpmd.write_conf(basic_conf(workdir))
    import conftest
    saved = conftest.FPMD
    # The activator binds the socket, then execs fpmd with LISTEN_FDS=1.
    wrapper = f"{workdir}/activate.sh"
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec {activate} -l {sock} {saved} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    conftest.FPMD = wrapper
    try:
        fpmd.start(wait_ready=False)
        # The activator waits for the first connection before it execs fpmd.
        time.sleep(0.5)
        inode = os.stat(sock).st_ino
        r = fcgi_request(sock, "/ping", timeout=10)
    finally:
        conftest.FPMD = saved
    assert r.body == b"pong"
    fpmd.wait_log(r"socket activation: fd=3")
    fpmd.wait_log(r'using inherited socket fd=3, "' + sock)
    assert os.stat(sock).st_ino == inode


def armed_timers(pid):
    """fdinfo of the process's timerfds that are armed (it_value not zero)."""
    armed = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[timerfd]":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = f.read()
        except OSError:
            continue
        if "it_value: (0, 0)" not in info:
            armed.append(info)
    return armed


@pytest.mark.parametrize("interval,watchdog", [(0, None), (1, None), (0, "2000000")])
def test_systemd_interval_zero_means_no_status_timer(fpmd, workdir, interval, watchdog):
    """systemd_interval = 0 is "never" (as in php-fpm): no STATUS= line and, without a
    watchdog, no timer, so an idle master under systemd sleeps until something happens.
    Checked on the master's timerfds (/proc/PID/fdinfo), not by waiting for a line that
    should not come; interval = 1 shows the check sees the timer when there is one.  With
    a watchdog the timer feeds it (WATCHDOG=1) and still sends no STATUS= report."""
    write_script(f"{workdir}/ok.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    listener = Listener(f"{workdir}/notify.sock")
    os.environ["NOTIFY_SOCKET"] = f"{workdir}/notify.sock"
    if watchdog:
        os.environ["WATCHDOG_USEC"] = watchdog
    try:
        fpmd.start(basic_conf(workdir, global_extra=f"systemd_interval = {interval}"))
    finally:
        del os.environ["NOTIFY_SOCKET"]
        os.environ.pop("WATCHDOG_USEC", None)
    assert listener.wait("READY=1")
    assert fcgi_request(f"{workdir}/www.sock", "/ok.sh", root=workdir).body == b"ok"
    if interval:
        assert wait_for(lambda: armed_timers(fpmd.pid), 5)
        assert listener.wait("STATUS=Processes active: ")
    elif watchdog:
        assert listener.wait("WATCHDOG=1")
        assert not any("STATUS=Processes" in m for m in listener.drain())
    else:
        # a static pool without request timeouts arms nothing once idle
        assert wait_for(lambda: not armed_timers(fpmd.pid), 5), armed_timers(fpmd.pid)
        assert not any("STATUS=Processes" in m for m in listener.drain())
