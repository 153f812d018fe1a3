"""`fpmctl request` against Debian's php-fpm8.2.

One php-fpm master per module, in its own process group and temp dir, with
three pools: `www` on a unix socket (ping and status pages), `tcp` on
127.0.0.1, and `slow` (one child) for the timeout case so a sleeping worker
never holds up the others.  Teardown kills the whole process group.
"""
import os
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

BUILD = os.environ.get("FPMD_BUILD", "/work/main/build")
FPMCTL = os.path.join(BUILD, "fpmctl")
PHP_FPM = "/usr/sbin/php-fpm8.2"

SCRIPTS = {
    "echo.php": "<?php echo file_get_contents('php://input');\n",
    "err.php": "<?php error_log('to-fcgi-stderr'); echo 'body';\n",
    "gone.php": "<?php http_response_code(404); echo 'gone';\n",
    "sleep.php": "<?php sleep(3); echo 'late';\n",
    "env.php": (
        "<?php foreach (['REQUEST_METHOD', 'QUERY_STRING', 'SCRIPT_NAME', 'REQUEST_URI',\n"
        "  'CONTENT_LENGTH'] as $k) { echo $k, '=', $_SERVER[$k] ?? '-', \"\\n\"; }\n"
        "echo 'x=', $_GET['x'] ?? '-', \"\\n\", 'input=', file_get_contents('php://input'), \"\\n\";\n"
    ),
}

pytestmark = pytest.mark.skipif(not os.path.exists(PHP_FPM), reason="php-fpm8.2 not installed")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pool(name, listen, children):
    return (f"[{name}]\nlisten = {listen}\npm = static\npm.max_children = {children}\n"
            "ping.path = /ping\npm.status_path = /status\n")


def wait_ready(proc, paths, port, log):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("php-fpm exited:\n" + log.read_text())
        try:
            for p in paths:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(p)
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("php-fpm not ready:\n" + log.read_text())


def stop(proc):
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # children left behind by a master that died first
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def fpm(tmp_path_factory):
    d = tmp_path_factory.mktemp("fpm")
    for name, text in SCRIPTS.items():
        (d / name).write_text(text)
    port = free_port()
    conf = d / "php-fpm.conf"
    conf.write_text(
        f"[global]\npid = {d}/php-fpm.pid\nerror_log = {d}/error.log\ndaemonize = no\n"
        + pool("www", f"{d}/www.sock", 2) + pool("tcp", f"127.0.0.1:{port}", 1)
        + pool("slow", f"{d}/slow.sock", 1))
    log = d / "stdout.log"
    cmd = [PHP_FPM, "-n", "-F", "-O", "-y", str(conf)]
    if os.geteuid() == 0:
        cmd.append("-R")
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_ready(proc, [f"{d}/www.sock", f"{d}/slow.sock"], port, log)
        yield {"dir": d, "sock": f"{d}/www.sock", "slow": f"{d}/slow.sock", "port": port}
    finally:
        stop(proc)


def fpmctl(*args, stdin=None, timeout=20):
    return subprocess.run([FPMCTL, *args], input=stdin, capture_output=True, timeout=timeout)


def request(fpm, *args, **kw):
    return fpmctl("request", "-s", "unix:" + fpm["sock"], "--root", str(fpm["dir"]), *args, **kw)


def test_ping(fpm):
    r = request(fpm, "/ping")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"pong"
    assert r.stderr == b""


def test_include_headers(fpm):
    r = request(fpm, "-i", "/ping")
    assert r.returncode == 0, r.stderr
    head, sep, body = r.stdout.partition(b"\r\n\r\n")
    assert sep and body == b"pong"
    lines = [l.lower() for l in head.split(b"\r\n")]
    assert any(l.startswith(b"content-type: text/plain") for l in lines)
    assert any(l.startswith(b"cache-control: no-cache") for l in lines)
    assert any(l.startswith(b"expires: thu, 01 jan 1970") for l in lines)


def test_status(fpm):
    r = request(fpm, "/status")
    assert r.returncode == 0, r.stderr
    assert b"pool:" in r.stdout
    assert b"www" in r.stdout


def test_post_data(fpm):
    r = request(fpm, "-d", "a=1&b=two", "/echo.php")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"a=1&b=two"


def test_post_file_300k(fpm, tmp_path):
    data = os.urandom(300 * 1024)
    f = tmp_path / "body.bin"
    f.write_bytes(data)
    # not form data: PHP would try to parse it into $_POST
    raw = ("-p", "CONTENT_TYPE=application/octet-stream")
    r = request(fpm, *raw, "-d", "@" + str(f), "/echo.php")
    assert r.returncode == 0, r.stderr
    assert r.stdout == data
    r = request(fpm, *raw, "-d", "@-", "/echo.php", stdin=data)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data


def test_params_and_query(fpm):
    r = request(fpm, "-X", "PUT", "-p", "QUERY_STRING=x=over", "/env.php?x=1")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "REQUEST_METHOD=PUT\n" in out
    assert "QUERY_STRING=x=over\n" in out
    assert "REQUEST_URI=/env.php?x=1\n" in out
    assert "SCRIPT_NAME=/env.php\n" in out
    assert "x=over\n" in out


def test_fcgi_stderr(fpm):
    r = request(fpm, "/err.php")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"body"
    assert b"to-fcgi-stderr" in r.stderr


def test_fail_404(fpm):
    r = request(fpm, "--fail", "/gone.php")
    assert r.returncode == 6, r.stderr
    r = request(fpm, "/gone.php")
    assert r.returncode == 0
    assert r.stdout == b"gone"
    r = request(fpm, "--fail", "/missing.php")  # php-fpm's own 404
    assert r.returncode == 6


def test_connect_refused(tmp_path):
    path = str(tmp_path / "closed.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)          # exists, nobody listening: ECONNREFUSED
    s.close()
    r = fpmctl("request", "-s", "unix:" + path, "/ping")
    assert r.returncode == 3
    assert r.stdout == b""
    assert r.stderr.decode() == f"fpmctl: cannot connect to unix:{path}: Connection refused\n"
    r = fpmctl("request", "-s", str(tmp_path / "absent.sock"), "/ping")
    assert r.returncode == 3
    assert len(r.stderr.splitlines()) == 1


def test_tcp(fpm):
    for spec in (f"tcp:127.0.0.1:{fpm['port']}", f"127.0.0.1:{fpm['port']}"):
        r = fpmctl("request", "-s", spec, "--root", str(fpm["dir"]), "-d", "over tcp", "/echo.php")
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"over tcp"
    r = fpmctl("request", "-s", f"tcp:127.0.0.1:{free_port()}", "/ping")
    assert r.returncode == 3


def test_timeout(fpm):
    t0 = time.monotonic()
    r = fpmctl("request", "-s", fpm["slow"], "--root", str(fpm["dir"]), "--timeout", "1",
               "/sleep.php")
    elapsed = time.monotonic() - t0
    assert r.returncode == 4, r.stderr
    assert elapsed < 2.5
    assert b"timed out" in r.stderr


def split_cgi(raw):
    for sep in (b"\r\n\r\n", b"\n\n"):
        if sep in raw:
            return raw.split(sep, 1)[1]
    return raw


@pytest.mark.parametrize("method,body,query", [("GET", b"", "x=42"), ("POST", b"k=v&w=2", "")])
def test_same_as_cgi_fcgi(fpm, method, body, query):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REQUEST_METHOD": method, "SCRIPT_FILENAME": f"{fpm['dir']}/env.php",
        "SCRIPT_NAME": "/env.php", "REQUEST_URI": "/env.php" + ("?" + query if query else ""),
        "DOCUMENT_ROOT": str(fpm["dir"]), "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)), "SERVER_PROTOCOL": "HTTP/1.1",
        "GATEWAY_INTERFACE": "CGI/1.1",
    }
    if body:
        env["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    ref = subprocess.run(["cgi-fcgi", "-bind", "-connect", fpm["sock"]], env=env, input=body,
                         capture_output=True, timeout=20)
    assert ref.returncode == 0, ref.stderr
    args = ["-X", method] + (["-d", body.decode()] if body else [])
    r = request(fpm, *args, "/env.php" + ("?" + query if query else ""))
    assert r.returncode == 0, r.stderr
    assert r.stdout == split_cgi(ref.stdout)
    assert f"REQUEST_METHOD={method}".encode() in r.stdout


def test_usage():
    r = fpmctl("--help")
    assert r.returncode == 0
    assert b"request" in r.stdout and b"Exit status" in r.stdout
    r = fpmctl("request", "--help")
    assert r.returncode == 0
    assert b"--timeout" in r.stdout and b"6 --fail" in r.stdout
    assert fpmctl("--version").stdout.startswith(b"fpmctl ")
    for bad in (["request"], ["request", "--bogus", "/"], ["request", "-p", "novalue", "/"],
                ["request", "--timeout", "-1", "/"], ["request", "-s"], ["nosuchcmd"], [],
                ["request", "/a", "/b"], ["request", "-s", "tcp:host:notaport", "/"]):
        r = fpmctl(*bad)
        assert r.returncode == 2, bad
        assert r.stdout == b""


# ---- protocol errors, against a scripted fake application ----------------

STDIN_END = b"\x01\x05\x00\x01\x00\x00\x00\x00"


def record(rtype, content=b"", rid=1, version=1):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBx", version, rtype, rid, len(content), pad) + content + b"\0" * pad


def end_request(app=0, proto=0, rid=1):
    return record(3, struct.pack(">IB3x", app, proto), rid)


@pytest.fixture
def fake_app(tmp_path):
    """Serves one connection: reads the whole request, sends `reply` in `chunk`-byte
    writes, then closes (or holds the connection open when reply is None)."""
    path = str(tmp_path / "fake.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)
    got = {}
    stop_ev = threading.Event()

    def serve(reply, chunk):
        conn, _ = srv.accept()
        with conn:
            buf = b""
            while not buf.endswith(STDIN_END):
                data = conn.recv(65536)
                if not data:
                    break
                buf += data
            got["request"] = buf
            if reply is None:
                stop_ev.wait(10)
                return
            for i in range(0, len(reply), chunk):
                conn.sendall(reply[i:i + chunk])

    def start(reply, chunk=1 << 20):
        t = threading.Thread(target=serve, args=(reply, chunk), daemon=True)
        t.start()
        return path

    yield start, got
    stop_ev.set()
    srv.close()


def test_fake_ok_bytewise(fake_app):
    start, got = fake_app
    reply = (record(6, b"Status: 200 OK\r\nX-A: b\r\n\r\nhello ") + record(6, b"world")
             + record(7, b"warn") + record(10, b"\x01\x01ab", rid=0)
             + record(7) + record(6) + end_request(app=7))
    r = fpmctl("request", "-s", start(reply, 1), "/x?q=1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello world"
    assert r.stderr == b"warn"
    # the request itself: BEGIN_REQUEST as a RESPONDER, no keep-alive
    assert got["request"][:16] == b"\x01\x01\x00\x01\x00\x08\x00\x00\x00\x01\x00" + b"\0" * 5
    assert b"\x0c\x03QUERY_STRINGq=1" in got["request"]


@pytest.mark.parametrize("reply,message", [
    (b"", b"connection closed before END_REQUEST"),
    (record(6, b"\r\npartial"), b"connection closed before END_REQUEST"),
    (record(6, b"x", version=2), b"malformed response"),
    (record(3, b"\0" * 4), b"malformed response"),
    (record(6, b"\r\nhi") + end_request(proto=1), b"protocol status 1"),
    (end_request(rid=2), b"another request id"),
])
def test_fake_protocol_errors(fake_app, reply, message):
    start, _ = fake_app
    r = fpmctl("request", "-s", start(reply), "/")
    assert r.returncode == 5, r.stderr
    assert message in r.stderr


def test_fake_silent_timeout(fake_app):
    start, _ = fake_app
    t0 = time.monotonic()
    r = fpmctl("request", "--timeout", "0.5", "-s", start(None), "/")
    assert r.returncode == 4
    assert time.monotonic() - t0 < 2
