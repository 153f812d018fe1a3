"""Per-stage read timeouts (issue #12 item 7): request_header_timeout, request_body_timeout,
request_keepalive_timeout, and the descriptors a cgi pool needs (item 4).

Slow clients are real sockets fed a byte at a time; each test checks what the server did
(closed the connection before the client was done, logged one line, served the next
client), never how fast.  The figures measured are printed (pytest -s shows them).
"""
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import (FCGI_BEGIN, FCGI_PARAMS, FCGI_STDIN, FPMD, Response, basic_conf, build_request,
                      cgi_params, connect, encode_params, fcgi_request, pool_conf, read_records, record,
                      wait_for, write_script)

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))


def drip(address, prefix, data, step, limit=15):
    """Sends prefix at once, then data one byte every `step` s until the server closes
    (or `limit` seconds passed: a server that never cuts fails the test, not hangs it).

    Returns (bytes of data sent, seconds from connect to the server's close or None)."""
    s = connect(address, timeout=30)
    t0 = time.monotonic()
    sent = 0
    closed = None
    try:
        s.sendall(prefix)
        for b in data:
            if time.monotonic() - t0 > limit:
                break
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed = time.monotonic() - t0
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed = time.monotonic() - t0
                break
            s.setblocking(True)
            try:
                s.sendall(bytes([b]))
            except OSError:
                closed = time.monotonic() - t0
                break
            sent += 1
            time.sleep(step)
    finally:
        s.close()
    return sent, closed


def head_of(params, keep=False):
    return build_request(params)[:-8] if not keep else build_request(params, keep=True)[:-8]


def status_procs(workdir):
    """The pool's workers as the master sees them (pm.status_listen: no worker serves it)."""
    r = fcgi_request(f"{workdir}/status.sock", "/status", extra={"QUERY_STRING": "json&full"})
    return {p["pid"]: p for p in json.loads(r.body)["processes"]}


STATUS = "pm.status_listen = {}/status.sock\n"


def worker_pid_from(line):
    return int(re.search(r"child (\d+)", line).group(1))


@pytest.mark.parametrize("stage,prefix_len", [("header (FCGI_BEGIN_REQUEST)", 0),
                                              ("params (FCGI_PARAMS)", 16 + 8 + 10)])
def test_header_slowloris_is_cut(fpmd, workdir, stage, prefix_len):
    write_script(f"{workdir}/hi.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhi'\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1,
                                             extra="request_header_timeout = 1s\n" + STATUS.format(workdir))))
    sock = f"{workdir}/www.sock"
    req = build_request(cgi_params("/hi.sh", root=workdir))
    # 1 byte per 0.3 s: the whole head would take minutes.
    sent, closed = drip(sock, req[:prefix_len], req[prefix_len:], 0.3)
    print(f"\nslowloris in the {stage} stage, 1 byte / 0.3 s, request_header_timeout 1s: "
          f"closed after {closed if closed is not None else float('nan'):.2f}s and {prefix_len + sent} of {len(req)} bytes")
    assert closed is not None and sent < len(req) - prefix_len
    fpmd.wait_log(r"request_header_timeout \(1s\) expired")
    lines = [ln for ln in fpmd.log().splitlines() if "request_header_timeout" in ln]
    assert len(lines) == 1, lines
    assert "[pool www]" in lines[0] and f"the request's {stage}" in lines[0]
    pid = worker_pid_from(lines[0])
    assert pid in fpmd.workers()
    # The only worker is back at accept and shown idle; the next client is served.
    assert wait_for(lambda: status_procs(workdir)[pid]["state"] == "Idle", 5)
    assert fcgi_request(sock, "/hi.sh", root=workdir, timeout=5).body == b"hi"
    assert status_procs(workdir)[pid]["requests"] >= 1


def test_connection_that_sends_nothing_is_closed(fpmd, workdir):
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1,
                                             extra="request_header_timeout = 1s\n")))
    sock = f"{workdir}/www.sock"
    with connect(sock, timeout=20) as s:
        t0 = time.monotonic()
        assert s.recv(1) == b""
        took = time.monotonic() - t0
    print(f"\nsilent connection closed after {took:.2f}s")
    fpmd.wait_log(r"request_header_timeout \(1s\) expired while reading the request's first byte")
    assert fcgi_request(sock, "/ping", timeout=5).body == b"pong"


def test_header_timeout_off_keeps_waiting(fpmd, workdir):
    """0 turns it off: a slow head is answered, however long it takes."""
    write_script(f"{workdir}/hi.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhi'\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1, extra="request_header_timeout = 0\n")))
    with connect(f"{workdir}/www.sock", timeout=20) as s:
        req = build_request(cgi_params("/hi.sh", root=workdir))
        s.sendall(req[:20])
        time.sleep(1.5)
        s.sendall(req[20:])
        assert read_records(s, Response()).body == b"hi"
    assert "request_header_timeout" not in fpmd.log()


def test_kept_connection_header_timer_starts_at_first_byte(fpmd, workdir):
    """A kept connection idle longer than request_header_timeout still serves its next request:
    the idle wait is request_keepalive_timeout's (off by default), as nginx's keepalive_timeout."""
    write_script(f"{workdir}/hi.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhi'\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1, extra="request_header_timeout = 1s\n")))
    with connect(f"{workdir}/www.sock", timeout=20) as s:
        req = build_request(cgi_params("/hi.sh", root=workdir), keep=True)
        s.sendall(req)
        assert read_records(s, Response()).body == b"hi"
        time.sleep(1.6)
        s.sendall(req)
        assert read_records(s, Response()).body == b"hi"
    assert "request_header_timeout" not in fpmd.log()


def test_keepalive_timeout_closes_an_idle_kept_connection(fpmd, workdir):
    write_script(f"{workdir}/hi.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhi'\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1,
                                             extra="request_keepalive_timeout = 1s\n")))
    sock = f"{workdir}/www.sock"
    with connect(sock, timeout=20) as s:
        s.sendall(build_request(cgi_params("/hi.sh", root=workdir), keep=True))
        assert read_records(s, Response()).body == b"hi"
        t0 = time.monotonic()
        assert s.recv(1) == b""
        took = time.monotonic() - t0
    print(f"\nkept connection idle: closed after {took:.2f}s (request_keepalive_timeout 1s)")
    assert fcgi_request(sock, "/hi.sh", root=workdir, timeout=5).body == b"hi"


# --- the body ----------------------------------------------------------------

COUNT = "#!/bin/sh\nn=$(wc -c)\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s' \"$n\"\n"


@pytest.fixture(scope="module")
def echo_module(tmp_path_factory):
    """examples/modules/echo.c: reads its body with the blocking read (req_body_read)."""
    out = tmp_path_factory.mktemp("mod")
    so = f"{out}/echo.so"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", f"-I{TOP}/include", "-o", so,
                    f"{TOP}/examples/modules/echo.c"], check=True)
    p = str(out)
    while p != "/":
        os.chmod(p, os.stat(p).st_mode | 0o011)
        p = os.path.dirname(p)
    return so


def body_pool(workdir, kind, echo_so, extra):
    if kind == "cgi":
        write_script(f"{workdir}/count.sh", COUNT)
        return pool_conf(workdir, children=1, extra=extra)
    if kind == "exec":
        # the worker relays the body to a FastCGI program (tests/integration/fcgi_app.py)
        shutil.copy(os.path.join(HERE, "fcgi_app.py"), f"{workdir}/fcgi_app.py")
        return (f"[www]\nuser = nobody\nlisten = {workdir}/www.sock\npm = static\npm.max_children = 1\n"
                f"app.type = exec\nexec.command = /usr/bin/python3 {workdir}/fcgi_app.py\n"
                f"ping.path = /ping\npm.status_path = /status\n{extra}")
    return (f"[www]\nuser = nobody\nlisten = {workdir}/www.sock\npm = static\npm.max_children = 1\n"
            f"app.type = module\nmodule.path = {echo_so}\nping.path = /ping\n"
            f"pm.status_path = /status\n{extra}")


@pytest.mark.parametrize("kind", ["cgi", "module", "exec"])
def test_body_gap_is_cut(fpmd, workdir, kind, echo_module):
    fpmd.start(basic_conf(workdir, body_pool(workdir, kind, echo_module,
                                             "request_body_timeout = 1s\n" + STATUS.format(workdir))))
    sock = f"{workdir}/www.sock"
    body = b"b" * 1000
    params = cgi_params("/count.sh", root=workdir, method="POST", body=body)
    with connect(sock, timeout=20) as s:
        s.sendall(record(FCGI_BEGIN, 1, struct.pack(">HB5x", 1, 0)) + encode_params(params)
                  + record(FCGI_STDIN, 1, body[:100]))
        t0 = time.monotonic()
        resp = Response()
        try:
            read_records(s, resp, timeout=20)
            ended = "END_REQUEST"
        except ConnectionError:
            ended = "closed"
        took = time.monotonic() - t0
    print(f"\n{kind}: body stopped after 100 of 1000 bytes, request_body_timeout 1s: "
          f"connection {ended} after {took:.2f}s")
    fpmd.wait_log(r"request_body_timeout \(1s\) expired")
    lines = [ln for ln in fpmd.log().splitlines() if "request_body_timeout" in ln]
    assert len(lines) == 1 and "[pool www]" in lines[0] and "request body" in lines[0], lines
    # nothing was written to a client that was given up
    assert resp.stdout == b""
    if kind == "cgi":
        assert wait_for(lambda: not [p for p in os.listdir("/proc") if p.isdigit()
                                     and _cmdline(p).endswith(f"{workdir}/count.sh")], 5)
    pid = worker_pid_from(lines[0])
    assert pid in fpmd.workers()
    assert wait_for(lambda: status_procs(workdir)[pid]["state"] == "Idle", 5)
    r = fcgi_request(sock, "/count.sh", root=workdir, method="POST", body=b"x" * 10, timeout=5)
    assert r.status == 200
    assert status_procs(workdir)[pid]["requests"] >= 2


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("latin-1").strip()
    except OSError:
        return ""


@pytest.mark.parametrize("kind", ["cgi", "module", "exec"])
def test_slow_steady_upload_is_not_cut(fpmd, workdir, kind, echo_module):
    """Pieces every 0.4 s for longer than request_body_timeout in all: each gap is below it."""
    fpmd.start(basic_conf(workdir, body_pool(workdir, kind, echo_module, "request_body_timeout = 1s\n")))
    pieces, size = 8, 64
    body = b"s" * (pieces * size)
    params = cgi_params("/count.sh", root=workdir, method="POST", body=body)
    t0 = time.monotonic()
    with connect(f"{workdir}/www.sock", timeout=20) as s:
        s.sendall(record(FCGI_BEGIN, 1, struct.pack(">HB5x", 1, 0)) + encode_params(params))
        for i in range(pieces):
            time.sleep(0.4)
            s.sendall(record(FCGI_STDIN, 1, body[i * size:(i + 1) * size]))
        s.sendall(record(FCGI_STDIN, 1))
        r = read_records(s, Response())
    took = time.monotonic() - t0
    print(f"\n{kind}: {len(body)} bytes in {pieces} pieces 0.4 s apart ({took:.1f}s in all, "
          f"request_body_timeout 1s): status {r.status}")
    assert r.status == 200
    if kind == "cgi":
        assert r.body == str(len(body)).encode()
    elif kind == "exec":
        assert f"body={len(body)} ".encode() in r.body
    else:
        assert r.body.endswith(body)
    assert "request_body_timeout" not in fpmd.log()


# --- configuration ------------------------------------------------------------

def run_fpmd(workdir, conf, *args):
    path = f"{workdir}/t.conf"
    with open(path, "w") as f:
        f.write(conf)
    return subprocess.run([FPMD, "-y", path, *args], capture_output=True, text=True, timeout=30)


def test_directives_shown_and_validated(workdir):
    r = run_fpmd(workdir, basic_conf(workdir, pool_conf(workdir)), "-tt")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "request_header_timeout = 60s" in out
    assert "request_body_timeout = 60s" in out
    assert "request_keepalive_timeout = 0s" in out
    r = run_fpmd(workdir, basic_conf(workdir, pool_conf(workdir, extra="request_header_timeout = 2m\n"
                                                         "request_body_timeout = 0\n")), "-tt")
    out = r.stdout + r.stderr
    assert "request_header_timeout = 120s" in out and "request_body_timeout = 0s" in out
    r = run_fpmd(workdir, basic_conf(workdir, pool_conf(workdir, extra="request_body_timeout = 5x\n")), "-t")
    assert r.returncode != 0
    assert "request_body_timeout: '5x' is not a valid time" in r.stdout + r.stderr


# --- descriptors for CGI (item 4) ---------------------------------------------

def test_cgi_pool_with_too_few_descriptors_is_refused(fpmd, workdir):
    write_script(f"{workdir}/hi.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhi'\n")
    r = run_fpmd(workdir, basic_conf(workdir, pool_conf(workdir, extra="rlimit_files = 10\n")), "-t")
    out = r.stdout + r.stderr
    print("\n" + out.strip())
    assert r.returncode != 0
    m = re.search(r"pool www: rlimit_files = 10 is too low for a cgi pool.*"
                  r"set rlimit_files to at least (\d+)", out)
    assert m, out
    minimum = int(m.group(1))
    # One below is refused, the minimum runs, with an access log (one more held fd) too.
    r = run_fpmd(workdir, basic_conf(workdir, pool_conf(workdir, extra=f"rlimit_files = {minimum - 1}\n")), "-t")
    assert r.returncode != 0
    extra = f"rlimit_files = {minimum}\naccess.log = {workdir}/access.log\n"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1, extra=extra)))
    sock = f"{workdir}/www.sock"
    body = b"p" * 200000
    write_script(f"{workdir}/count.sh", COUNT)
    for _ in range(3):
        assert fcgi_request(sock, "/hi.sh", root=workdir).body == b"hi"
        assert fcgi_request(sock, "/count.sh", root=workdir, method="POST", body=body).body == b"200000"
    worker = fpmd.workers()[0]
    with open(f"/proc/{worker}/limits") as f:
        assert re.search(rf"Max open files\s+{minimum}\s", f.read())
    assert "Too many open files" not in fpmd.log()


def test_cgi_pool_refused_at_start_too(fpmd, workdir):
    """The same rule at start (not only fpmd -t): a pool that could not run CGI never starts."""
    fpmd.start(basic_conf(workdir, pool_conf(workdir, extra="rlimit_files = 10\n")), wait_ready=False)
    assert wait_for(lambda: fpmd.proc.poll() is not None, 10)
    assert fpmd.proc.returncode != 0
    assert "rlimit_files = 10 is too low for a cgi pool" in fpmd.log()
