"""Shared fixtures for fpmd's integration tests.

Every test gets its own working directory (world-readable, so pools that drop
to `nobody` can reach their scripts), its own daemon, and a teardown that
kills whatever the test left running, even when the test failed.
"""
import contextlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

BUILD = os.environ.get("FPMD_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
BUILD = os.path.abspath(BUILD)
FPMD = os.path.join(BUILD, "fpmd")
FPMCTL = os.path.join(BUILD, "fpmctl")
def _sanitized():
    """A -fsanitize=address build (make test SAN=1), wherever BUILD is."""
    if os.path.basename(BUILD).startswith("build-san"):
        return True
    try:
        with open(FPMD, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


SANITIZED = _sanitized()


# --- a minimal FastCGI client (the tests' own, independent of fpmd's codec) ---

FCGI_BEGIN, FCGI_ABORT, FCGI_END, FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_STDERR = 1, 2, 3, 4, 5, 6, 7
FCGI_GET_VALUES, FCGI_GET_VALUES_RESULT, FCGI_UNKNOWN_TYPE = 9, 10, 11


def record(rtype, req_id, content=b"", padding=None):
    if padding is None:
        padding = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBx", 1, rtype, req_id, len(content), padding) + content + b"\0" * padding


def nv(name, value):
    out = b""
    for part in (name, value):
        n = len(part)
        out += bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    return out + name + value


def encode_params(params, req_id=1):
    body = b"".join(nv(k.encode(), v.encode() if isinstance(v, str) else v) for k, v in params.items())
    out = b""
    for i in range(0, len(body), 65535):
        out += record(FCGI_PARAMS, req_id, body[i:i + 65535])
    return out + record(FCGI_PARAMS, req_id)


def build_request(params, body=b"", keep=False, req_id=1):
    out = record(FCGI_BEGIN, req_id, struct.pack(">HB5x", 1, 1 if keep else 0))
    out += encode_params(params, req_id)
    for i in range(0, len(body), 65535):
        out += record(FCGI_STDIN, req_id, body[i:i + 65535])
    return out + record(FCGI_STDIN, req_id)


class Response:
    def __init__(self):
        self.stdout = b""
        self.stderr = b""
        self.app_status = None
        self.protocol_status = None
        self.records = []

    @property
    def headers(self):
        head = self.stdout.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        out = {}
        for line in head.split("\r\n"):
            if ":" in line:
                k, v = line.split(":", 1)
                out[k.strip().lower()] = v.strip()
        return out

    @property
    def body(self):
        parts = self.stdout.split(b"\r\n\r\n", 1)
        return parts[1] if len(parts) > 1 else b""

    @property
    def status(self):
        s = self.headers.get("status")
        return int(s.split()[0]) if s else 200


def read_records(sock, resp, until_end=True, timeout=10):
    sock.settimeout(timeout)
    buf = b""
    while True:
        while len(buf) >= 8:
            _, rtype, rid, clen, plen = struct.unpack(">BBHHBx", buf[:8])
            if len(buf) < 8 + clen + plen:
                break
            content = buf[8:8 + clen]
            buf = buf[8 + clen + plen:]
            resp.records.append((rtype, rid, content))
            if rtype == FCGI_STDOUT:
                resp.stdout += content
            elif rtype == FCGI_STDERR:
                resp.stderr += content
            elif rtype == FCGI_END:
                resp.app_status, resp.protocol_status = struct.unpack(">IB3x", content)
                if until_end:
                    return resp
            elif rtype in (FCGI_GET_VALUES_RESULT, FCGI_UNKNOWN_TYPE) and not until_end:
                return resp
        chunk = sock.recv(65536)
        if not chunk:
            if until_end:
                raise ConnectionError("connection closed before END_REQUEST")
            return resp
        buf += chunk


def connect(address, timeout=10):
    if address.startswith("/"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(address)
    else:
        host, port = address.rsplit(":", 1)
        host = host.strip("[]")
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect((host, int(port)))
    return s


def cgi_params(uri, root="/", method="GET", body=b"", extra=None):
    path, _, query = uri.partition("?")
    p = {
        "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_SOFTWARE": "pytest", "SERVER_PROTOCOL": "HTTP/1.1",
        "REQUEST_METHOD": method, "REQUEST_URI": uri, "SCRIPT_NAME": path, "QUERY_STRING": query,
        "DOCUMENT_ROOT": root, "DOCUMENT_URI": path,
        "SCRIPT_FILENAME": os.path.join(root, path.lstrip("/")),
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000", "SERVER_ADDR": "127.0.0.1",
        "SERVER_PORT": "80", "SERVER_NAME": "localhost", "HTTP_HOST": "localhost",
        "CONTENT_LENGTH": str(len(body)) if body else "",
    }
    if body:
        p["CONTENT_TYPE"] = "application/octet-stream"
    if extra:
        p.update(extra)
    return p


def fcgi_request(address, uri, root="/", method="GET", body=b"", extra=None, timeout=10):
    """One request on a new connection; returns a Response."""
    params = cgi_params(uri, root, method, body, extra)
    data = build_request(params, body)
    with connect(address, timeout) as s:
        if len(data) <= 65536:
            s.sendall(data)
            return read_records(s, Response(), timeout=timeout)
        # Large bodies: send while reading, as a web server does, so an app that
        # streams its answer while reading cannot deadlock against the test.
        sender = threading.Thread(target=lambda: _send_quietly(s, data), daemon=True)
        sender.start()
        resp = read_records(s, Response(), timeout=timeout)
        sender.join(timeout)
        return resp


def _send_quietly(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass    # the server answered early and closed: the reader reports it


# --- process helpers ---

def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(d))
        except (OSError, IndexError):
            pass
    return sorted(out)


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def wait_for(cond, timeout=10.0, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


@contextlib.contextmanager
def out_of_descriptors(pid):
    """The process's RLIMIT_NOFILE at 3 (prlimit, from outside) for the block's time:
    every descriptor it tries to open fails with EMFILE.  Put back at the end."""
    with open(f"/proc/{pid}/limits") as f:
        soft, hard = re.search(r"Max open files\s+(\d+)\s+(\d+)", f.read()).groups()
    subprocess.run(["prlimit", f"--pid={pid}", f"--nofile=3:{hard}"], check=True)
    try:
        yield
    finally:
        subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={soft}:{hard}"], check=True)


def traced(pid):
    """Whether a tracer (strace -p) is attached to pid."""
    with open(f"/proc/{pid}/status") as f:
        return any(l.startswith("TracerPid:") and l.split()[1] != "0" for l in f)


@contextlib.contextmanager
def strace_tampering(pid, *args):
    """strace -p pid with args (-e trace=..., -e inject=...) for the block's time."""
    st = subprocess.Popen(["strace", "-qq", "-p", str(pid), *args, "-o", "/dev/null"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: traced(pid), 10), "strace did not attach"
        yield st
    finally:
        st.terminate()
        st.wait(10)


class Fpmd:
    """A running fpmd under test: config in dir, log captured, process group killed at the end."""

    def __init__(self, workdir):
        self.dir = workdir
        self.proc = None
        self.log_path = os.path.join(workdir, "fpmd.log")
        self.conf_path = os.path.join(workdir, "fpmd.conf")
        self.pid = None

    def write_conf(self, text):
        with open(self.conf_path, "w") as f:
            f.write(text)

    def start(self, conf=None, args=("-F", "-O"), wait_ready=True, extra_args=(), timeout=10,
              first_args=()):
        if conf is not None:
            self.write_conf(conf)
        self.logf = open(self.log_path, "ab")
        cmd = [FPMD, *first_args, "-y", self.conf_path, *args, *extra_args]
        env = dict(os.environ)
        # Let crash signals through the sanitizer runtime: tests count them.
        env["ASAN_OPTIONS"] = "handle_segv=0:handle_sigbus=0:detect_leaks=0"
        if SANITIZED:
            # Every process's report in a file (a worker's stderr may be nowhere): the
            # fixture fails the test that had one.  Writable by the pools' users.
            self.san_dir = os.path.join(self.dir, "sanitizer")
            os.makedirs(self.san_dir, exist_ok=True)
            os.chmod(self.san_dir, 0o1777)
            env["ASAN_OPTIONS"] += f":log_path={self.san_dir}/asan"
            env["UBSAN_OPTIONS"] = f"print_stacktrace=1:log_path={self.san_dir}/ubsan"
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     cwd=self.dir, start_new_session=True, env=env)
        self.pid = self.proc.pid
        if wait_ready:
            ok = wait_for(lambda: "ready to handle connections" in self.log() or self.proc.poll() is not None,
                          timeout)
            assert ok and self.proc.poll() is None, f"fpmd did not start:\n{self.log()}"
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=10, count=1):
        rx = re.compile(pattern)
        ok = wait_for(lambda: len(rx.findall(self.log())) >= count, timeout)
        assert ok, f"log never matched {pattern!r} x{count}:\n{self.log()}"

    def workers(self):
        return children_of(self.pid)

    def signal(self, sig):
        os.kill(self.pid, sig)

    def wait(self, timeout=15):
        return self.proc.wait(timeout)

    def sanitizer_reports(self):
        d = getattr(self, "san_dir", None)
        out = []
        for name in sorted(os.listdir(d)) if d and os.path.isdir(d) else []:
            with open(os.path.join(d, name), errors="replace") as f:
                out.append(f"--- {name}\n{f.read()[:6000]}")
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if getattr(self, "logf", None):
            self.logf.close()


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="fpmd-test-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def fpmd(workdir):
    daemons = []

    def make():
        f = Fpmd(workdir)
        daemons.append(f)
        return f

    first = make()
    first.make = make
    yield first
    for f in daemons:
        f.stop()
    reports = [r for f in daemons for r in f.sanitizer_reports()]
    if reports:
        pytest.fail("sanitizer reports from fpmd's processes:\n" + "\n".join(reports),
                    pytrace=False)


def pool_conf(workdir, name="www", pm="static", children=2, app="cgi", listen=None, extra="",
              user="nobody"):
    listen = listen or os.path.join(workdir, f"{name}.sock")
    user_line = f"user = {user}\n" if user else ""
    return (f"[{name}]\n{user_line}listen = {listen}\npm = {pm}\npm.max_children = {children}\n"
            f"app.type = {app}\ncgi.root = {workdir}\nping.path = /ping\npm.status_path = /status\n"
            f"{extra}")


def basic_conf(workdir, pools=None, global_extra=""):
    """A config with a [global] section; pools is the text of the pool sections."""
    pools = pools if pools is not None else pool_conf(workdir)
    return (f"[global]\npid = {workdir}/fpmd.pid\nerror_log = {workdir}/error.log\n"
            f"{global_extra}\n{pools}")


def write_script(path, text, mode=0o755):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path
