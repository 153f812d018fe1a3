"""Status pages side by side: php-fpm8.2 and fpmd, same pool settings, same keys in the same order.

fpmd matches php-fpm 8.2 field for field (no `memory peak`: that is php-fpm 8.3's); everything else
must match so that scrapers, dashboards and alerts keep working."""
import json
import os
import re
import signal
import subprocess

import pytest

from conftest import basic_conf, fcgi_request, pool_conf, wait_for

PHP_FPM = "/usr/sbin/php-fpm8.2"
pytestmark = pytest.mark.skipif(not os.path.exists(PHP_FPM), reason="php-fpm8.2 not installed")
EXTRA = {"memory peak", "memory_peak", "pool memory"}


@pytest.fixture
def php_fpm(workdir):
    conf = os.path.join(workdir, "php-fpm.conf")
    sock = os.path.join(workdir, "php.sock")
    with open(conf, "w") as f:
        f.write(f"[global]\npid = {workdir}/php-fpm.pid\nerror_log = {workdir}/php-fpm.log\n"
                f"daemonize = no\n[www]\nuser = nobody\nlisten = {sock}\npm = static\n"
                "pm.max_children = 2\nping.path = /ping\npm.status_path = /status\n")
    proc = subprocess.Popen([PHP_FPM, "-n", "-F", "-O", "-R", "-y", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_for(lambda: os.path.exists(sock), 10)
        yield sock
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def both(workdir, fpmd, php_fpm, query):
    fpmd_sock = f"{workdir}/www.sock"
    if fpmd.proc is None:
        fpmd.start(basic_conf(workdir, pool_conf(workdir, children=2)))
    ours = fcgi_request(fpmd_sock, f"/status{query}")
    theirs = fcgi_request(php_fpm, f"/status{query}", extra={"SCRIPT_FILENAME": "/status"})
    assert ours.status == theirs.status == 200
    return ours, theirs


def text_keys(body):
    blocks = body.decode().split("\n************************\n")
    return [[l.split(":", 1)[0] for l in b.splitlines() if ":" in l] for b in blocks]


def test_text_keys(workdir, fpmd, php_fpm):
    ours, theirs = both(workdir, fpmd, php_fpm, "?full")
    a, b = text_keys(ours.body), text_keys(theirs.body)
    assert [k for k in a[0] if k not in EXTRA] == b[0]
    assert len(a) == len(b) == 3                     # pool block and two processes
    assert a[1:] == b[1:]
    assert ours.headers["content-type"] == theirs.headers["content-type"]
    assert ours.headers["cache-control"] == theirs.headers["cache-control"]


def test_json_keys(workdir, fpmd, php_fpm):
    ours, theirs = both(workdir, fpmd, php_fpm, "?json&full")
    a, b = json.loads(ours.body), json.loads(theirs.body)
    assert [k for k in a if k not in EXTRA] == list(b)
    assert [list(p) for p in a["processes"]] == [list(p) for p in b["processes"]]
    assert {k: type(v) for k, v in a.items() if k not in EXTRA} == {k: type(v) for k, v in b.items()}


def test_openmetrics_families(workdir, fpmd, php_fpm):
    ours, theirs = both(workdir, fpmd, php_fpm, "?openmetrics")
    fam = lambda body: re.findall(r"^# (HELP|TYPE) (\S+)", body.decode(), re.M)
    a = [x for x in fam(ours.body) if x[1] != "phpfpm_memory_peak" and not x[1].startswith("fpmd_")]
    assert a == fam(theirs.body)
    assert ours.body.endswith(b"# EOF\n") and theirs.body.endswith(b"# EOF\n")
    assert ours.headers["content-type"] == theirs.headers["content-type"]


def test_xml_and_html_tags(workdir, fpmd, php_fpm):
    for query, rx in (("?xml&full", rb"<([a-z-]+)>"), ("?html&full", rb"<th>([^<]+)</th>")):
        ours, theirs = both(workdir, fpmd, php_fpm, query)
        a = [t for t in re.findall(rx, ours.body) if t not in (b"memory-peak", b"memory peak", b"pool-memory")]
        assert a == re.findall(rx, theirs.body), query


@pytest.mark.parametrize("query", ["", "?full", "?json", "?xml", "?html", "?openmetrics"])
def test_content_types_match(workdir, fpmd, php_fpm, query):
    ours, theirs = both(workdir, fpmd, php_fpm, query)
    assert ours.headers["content-type"] == theirs.headers["content-type"], query


def test_status_request_script_is_a_dash(workdir, fpmd, php_fpm):
    """A request answered by the status page itself ran no script: php-fpm shows '-'."""
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=2)))
    sock = f"{workdir}/www.sock"
    for s in (sock, php_fpm):
        # as fpmctl would send it, from some directory: SCRIPT_FILENAME = that directory + /status
        fcgi_request(s, "/status", extra={"SCRIPT_FILENAME": "/home/someone/status"})
    ours, theirs = both(workdir, fpmd, php_fpm, "?json&full")
    a, b = json.loads(ours.body), json.loads(theirs.body)
    assert {p["script"] for p in b["processes"]} == {"-"}
    assert [p["script"] for p in a["processes"]] == [p["script"] for p in b["processes"]]


def test_ping_answer_matches(workdir, fpmd, php_fpm):
    """The ping answer's headers are php-fpm's, charset included (monitors compare them)."""
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=2)))
    ours = fcgi_request(f"{workdir}/www.sock", "/ping")
    theirs = fcgi_request(php_fpm, "/ping", extra={"SCRIPT_FILENAME": "/ping"})
    assert ours.body == theirs.body == b"pong"
    for h in ("content-type", "expires", "cache-control"):
        assert ours.headers[h] == theirs.headers[h], h


def test_accepted_conn_counts_requests_that_never_became_whole(workdir, fpmd, php_fpm):
    """A connection that sent part of a request and went, or broke the protocol, is an
    accepted connection for php-fpm ("accepted conn", the worker's "requests"); fpmd
    counted served requests only."""
    import socket
    import struct
    import time
    from conftest import build_request, cgi_params, connect
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=2)))
    ours_sock = f"{workdir}/www.sock"

    def accepted(sock, extra):
        r = fcgi_request(sock, "/status", extra={"QUERY_STRING": "json", **extra})
        return json.loads(r.body)["accepted conn"]

    extra_theirs = {"SCRIPT_FILENAME": "/status"}
    before = (accepted(ours_sock, {}), accepted(php_fpm, extra_theirs))
    whole = build_request(cgi_params("/ping", workdir))
    for sock in (ours_sock, php_fpm):
        for cut in (8, 8 + 16, len(whole) - 20):   # BEGIN only; into PARAMS; into STDIN
            s = connect(sock, timeout=5)
            s.sendall(whole[:cut])
            time.sleep(0.05)
            s.close()
        s = connect(sock, timeout=5)                 # not FastCGI at all
        s.sendall(struct.pack(">BBHHBB", 9, 1, 1, 8, 0, 0) + b"\0" * 8)
        try:
            s.recv(100)
        except OSError:
            pass
        s.close()
    time.sleep(0.5)
    after = (accepted(ours_sock, {}), accepted(php_fpm, extra_theirs))
    ours, theirs = after[0] - before[0], after[1] - before[1]
    assert ours == theirs, f"fpmd counted {ours}, php-fpm8.2 {theirs}"


def test_a_worker_waiting_on_a_kept_connection_shows_no_request(workdir, fpmd, php_fpm):
    """A worker between two requests of a kept connection is "Reading headers" in both;
    php-fpm shows no request there ('-'), fpmd showed the previous one's."""
    from conftest import Response, build_request, cgi_params, connect, read_records
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=2)))
    kept = []
    for sock, extra in ((f"{workdir}/www.sock", {}), (php_fpm, {"SCRIPT_FILENAME": "/ping"})):
        s = connect(sock, timeout=5)
        s.sendall(build_request(cgi_params("/ping?x=1", workdir, extra=extra), keep=True))
        assert read_records(s, Response()).app_status == 0
        kept.append(s)
    try:
        ours, theirs = both(workdir, fpmd, php_fpm, "?json&full")
        keys = ("request method", "request uri", "content length", "user", "script")

        def waiting(body):
            return [tuple(p[k] for k in keys) for p in json.loads(body)["processes"]
                    if p["state"] == "Reading headers"]
        assert waiting(theirs.body), theirs.body
        assert waiting(ours.body) == waiting(theirs.body), (ours.body, theirs.body)
    finally:
        for s in kept:
            s.close()


def test_accepted_conn_counts_waits_the_client_ended_without_a_byte(workdir, fpmd, php_fpm):
    """php-fpm counts a connection at accept: one closed before its first byte (a TCP
    health check, a client gone) and nginx closing a kept connection after its requests
    each count once in "accepted conn"; fpmd counted neither."""
    import time
    from conftest import Response, build_request, cgi_params, connect, read_records
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=2)))
    ours_sock = f"{workdir}/www.sock"

    def accepted(sock, extra):
        r = fcgi_request(sock, "/status", extra={"QUERY_STRING": "json", **extra})
        return json.loads(r.body)["accepted conn"]

    counts = []
    for sock, extra in ((ours_sock, {}), (php_fpm, {"SCRIPT_FILENAME": "/status"})):
        before = accepted(sock, extra)
        for _ in range(3):
            connect(sock, timeout=5).close()
        s = connect(sock, timeout=5)
        for _ in range(2):
            s.sendall(build_request(cgi_params("/ping", workdir, extra=extra), keep=True))
            assert read_records(s, Response()).app_status == 0
        s.close()
        time.sleep(0.5)
        counts.append(accepted(sock, extra) - before - 1)
    assert counts[1] == 3 + 3, f"php-fpm8.2 counted {counts[1]}"
    assert counts[0] == counts[1], f"fpmd counted {counts[0]}, php-fpm8.2 {counts[1]}"
