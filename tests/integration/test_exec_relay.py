"""The exec relay with a misbehaving program (issue 27 items 4, 5, 6, 12): nothing of one
request reaches another client, a cut answer looks cut, a program left mid-exchange is
restarted, a client's half-close ends its input.  nginx in front where the issue says."""
import http.client
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import (Response, basic_conf, build_request, cgi_params, connect, fcgi_request,
                      read_records, wait_for)
from test_nginx import NGINX, free_port, kill_group, port_open

APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fcgi_app.py")


def app_pool(workdir, children=1):
    shutil.copy(APP, f"{workdir}/fcgi_app.py")
    os.chmod(f"{workdir}/fcgi_app.py", 0o755)
    return (f"[app]\nuser = nobody\nlisten = {workdir}/app.sock\npm = static\n"
            f"pm.max_children = {children}\napp.type = exec\n"
            f"exec.command = /usr/bin/python3 {workdir}/fcgi_app.py misbehave\n")


class KeepConnNginx:
    """nginx with fastcgi_keep_conn on to one unix socket: kept upstream connections, as in
    production setups, so a record left on one is read as the next client's answer."""

    def __init__(self, workdir, sock, location="fastcgi_keep_conn on;"):
        self.prefix = os.path.join(workdir, "nginx")
        os.makedirs(self.prefix, exist_ok=True)
        self.port = free_port()
        p = self.prefix
        conf = (f"daemon off;\nmaster_process on;\nworker_processes 1;\nuser nobody nogroup;\n"
                f"pid {p}/nginx.pid;\nerror_log {p}/error.log info;\n"
                f"events {{ worker_connections 64; }}\n"
                f"http {{\n access_log off;\n client_body_temp_path {p}/body;\n"
                f" fastcgi_temp_path {p}/fastcgi;\n proxy_temp_path {p}/proxy;\n"
                f" uwsgi_temp_path {p}/uwsgi;\n scgi_temp_path {p}/scgi;\n"
                f" upstream app {{ server unix:{sock}; keepalive 4; }}\n"
                f" server {{\n  listen 127.0.0.1:{self.port};\n  location / {{\n"
                f"   include /etc/nginx/fastcgi_params;\n   {location}\n"
                f"   fastcgi_read_timeout 10s;\n   fastcgi_pass app;\n  }}\n }}\n}}\n")
        with open(f"{p}/nginx.conf", "w") as f:
            f.write(conf)
        self.out = open(f"{p}/stderr.log", "ab")
        self.proc = subprocess.Popen([NGINX, "-c", f"{p}/nginx.conf", "-p", p], stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        assert wait_for(lambda: self.proc.poll() is not None or port_open(self.port), 10)
        assert self.proc.poll() is None, self.log()

    def log(self):
        try:
            return open(f"{self.prefix}/error.log", errors="replace").read()
        except OSError:
            return ""

    def get(self, path):
        """(status, body, complete): complete is False when the body was cut short."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            try:
                return resp.status, resp.read(), True
            except http.client.IncompleteRead as e:
                return resp.status, e.partial, False
        finally:
            conn.close()

    def stop(self):
        kill_group(self.proc)
        self.out.close()


@pytest.fixture
def nginx_for(workdir):
    started = []

    def make(sock, location="fastcgi_keep_conn on;"):
        n = KeepConnNginx(workdir, sock, location)
        started.append(n)
        return n
    yield make
    for n in started:
        n.stop()


needs_nginx = pytest.mark.skipif(not os.access(NGINX, os.X_OK) or os.geteuid() != 0,
                                 reason="nginx (and root, for its user nobody) needed")


@needs_nginx
def test_a_record_for_another_request_id_never_reaches_the_next_client(fpmd, workdir, nginx_for):
    """Item 4: END_REQUEST for id 2, then the answer for id 1 (alice's) must not become bob's."""
    fpmd.start(basic_conf(workdir, app_pool(workdir)))
    ngx = nginx_for(f"{workdir}/app.sock")
    status, body, _ = ngx.get("/a?wrongid&secret=alice")
    assert b"alice" not in body
    assert status == 502, (status, body)
    for i in range(3):
        status, body, complete = ngx.get(f"/b?user=bob{i}")
        assert status == 200 and complete, (status, body)
        assert b"alice" not in body and f"q=user=bob{i}".encode() in body, body
    fpmd.wait_log(r"exec.command sent a record for request id 2")


NGINX_SETTINGS = {
    "keep_conn": "fastcgi_keep_conn on;",
    "unbuffered": "fastcgi_buffering off;",
    "buffered": "fastcgi_buffering on;",
    "unbuffered_keep_conn": "fastcgi_buffering off; fastcgi_keep_conn on;",
}


@needs_nginx
@pytest.mark.parametrize("setting", list(NGINX_SETTINGS))
@pytest.mark.parametrize("fault", ["cut", "die"])
def test_a_cut_answer_looks_cut_to_the_web_server(fpmd, workdir, nginx_for, fault, setting):
    """Item 5: the program closes (or dies) mid-answer: nginx must see the upstream end early
    (the client's body is cut, nginx logs it), never a complete 200 with 1000 of the bytes.
    A close alone looked complete to nginx unless it both buffered and kept the connection
    (fastcgi_buffering off, as streaming setups have it: a complete chunked 200)."""
    fpmd.start(basic_conf(workdir, app_pool(workdir)))
    ngx = nginx_for(f"{workdir}/app.sock", NGINX_SETTINGS[setting])
    try:
        status, body, complete = ngx.get(f"/x?{fault}")
    except (http.client.RemoteDisconnected, ConnectionError):
        status, body, complete = None, b"", False
    assert not complete or status == 502, (status, len(body))
    assert wait_for(lambda: "upstream prematurely closed" in ngx.log()
                    or "unsupported FastCGI protocol version: 0" in ngx.log(), 5), ngx.log()
    fpmd.wait_log(r"exec.command's answer was cut")
    # and the next request is whole
    status, body, complete = ngx.get("/y?next")
    assert status == 200 and complete and b"q=next" in body


@pytest.mark.parametrize("fault", ["malformed", "hang"])
def test_a_program_left_mid_exchange_is_restarted(fpmd, workdir, fault):
    """Item 6: a malformed record, or a client that gave up while the program hangs: the
    program is in an unknown state, and the next request on that worker must be answered."""
    fpmd.start(basic_conf(workdir, app_pool(workdir) + "request_terminate_timeout = 60s\n"))
    sock = f"{workdir}/app.sock"
    first = fcgi_request(sock, "/first").body
    if fault == "malformed":
        r = fcgi_request(sock, f"/x?{fault}", timeout=10)
        assert r.status == 502
    else:
        with pytest.raises(OSError):
            fcgi_request(sock, f"/x?{fault}", timeout=0.5)    # the client gives up
    r = fcgi_request(sock, "/after", timeout=10)
    assert r.status == 200 and b"q=" in r.body
    assert r.body.split()[0] != first.split()[0], "the same program (pid) was kept"
    fpmd.wait_log(r"restarting exec.command")


def test_a_half_close_after_the_body_is_the_end_of_input(fpmd, workdir):
    """Item 12: shutdown(SHUT_WR) after FCGI_STDIN, as some FastCGI clients do: a full answer."""
    fpmd.start(basic_conf(workdir, app_pool(workdir)))
    with connect(f"{workdir}/app.sock") as s:
        s.sendall(build_request(cgi_params("/h?half", method="POST", body=b"abc"), b"abc"))
        s.shutdown(socket.SHUT_WR)
        r = read_records(s, Response(), timeout=10)
    assert r.app_status == 0 and b"body=3" in r.body and b"q=half" in r.body, r.stdout
