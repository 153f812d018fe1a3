"""pm.status_listen: status and ping answered by the master while every worker is busy."""
import json
import os
import socket
import struct
import threading
import time

from conftest import (FCGI_ABORT, FCGI_BEGIN, Response, basic_conf, connect, fcgi_request,
                      pool_conf, read_records, record, wait_for, write_script)


def test_status_answers_while_every_worker_is_busy(fpmd, workdir):
    write_script(f"{workdir}/slow.sh", "#!/bin/sh\nsleep 3\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    st = f"{workdir}/status.sock"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=2,
                                             extra=f"pm.status_listen = {st}\n")))
    threads = [threading.Thread(target=fcgi_request, args=(f"{workdir}/www.sock", "/slow.sh"),
                                kwargs={"root": workdir, "timeout": 20}) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    r = fcgi_request(st, "/status?json&full", timeout=5)
    took = time.monotonic() - t0
    print(f"status_listen answered in {took * 1000:.1f} ms with every worker busy")
    s = json.loads(r.body)
    assert r.headers["content-type"] == "application/json"
    assert s["active processes"] == 2 and s["idle processes"] == 0
    assert s["listen queue"] == 2, s           # the other two wait in the backlog
    assert all(p["state"] == "Running" for p in s["processes"])
    assert fcgi_request(st, "/ping").body == b"pong"
    assert fcgi_request(st, "/anything").status == 404
    for t in threads:
        t.join(20)


def test_status_listen_survives_garbage_and_idle_clients(fpmd, workdir):
    st = f"{workdir}/status.sock"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, extra=f"pm.status_listen = {st}\n")))
    idle = [connect(st) for _ in range(5)]          # connect and say nothing
    with connect(st) as s:
        s.sendall(b"\x09" * 64)                     # not FastCGI
        s.settimeout(5)
        assert s.recv(100) == b""                   # closed, nothing else happens
    assert fcgi_request(st, "/status").status == 200
    fpmd.wait_log("status_listen: FastCGI protocol error")
    for s in idle:
        s.close()
    assert fpmd.proc.poll() is None


def test_status_listen_takes_what_the_pools_workers_take_and_answers_431_beyond(fpmd, workdir):
    """A browser with 20 KB of cookies opening the status page got a dropped
    connection (nginx: 502) from status_listen, where the workers take 128 KiB
    and answer 431 beyond request.max_params_size."""
    st = f"{workdir}/status.sock"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, extra=f"pm.status_listen = {st}\n"
                                                            "request.max_params_size = 64K\n")))
    r = fcgi_request(st, "/status", extra={"HTTP_COOKIE": "c=" + "x" * 20000}, timeout=5)
    assert r.status == 200 and b"accepted conn" in r.body, r.stdout
    r = fcgi_request(st, "/status", extra={"HTTP_COOKIE": "c=" + "x" * 70000}, timeout=5)
    assert r.status == 431 and r.protocol_status == 0, r.stdout
    fpmd.wait_log("status_listen: request refused with 431")
    # aborted before its params ended: its END_REQUEST, as the workers answer it
    with connect(st) as s:
        s.sendall(record(FCGI_BEGIN, 1, struct.pack(">HB5x", 1, 0)) + record(FCGI_ABORT, 1))
        resp = read_records(s, Response(), timeout=5)
    assert resp.protocol_status == 0, resp.records
    assert fcgi_request(st, "/ping").body == b"pong"


def test_status_listen_buffers_at_most_a_mebibyte_of_params(fpmd, workdir):
    """docs/configuration.md: the root master takes at most 1 MiB of a status
    request's params, whatever request.max_params_size lets the workers take."""
    st = f"{workdir}/status.sock"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, extra=f"pm.status_listen = {st}\n"
                                                            "request.max_params_size = 4M\n")))
    r = fcgi_request(st, "/status", extra={"HTTP_COOKIE": "c=" + "x" * 900_000}, timeout=10)
    assert r.status == 200, r.stdout[:200]
    r = fcgi_request(st, "/status", extra={"HTTP_COOKIE": "c=" + "x" * 1_100_000}, timeout=10)
    assert r.status == 431, r.stdout[:200]
    # the workers take what the pool allows them
    assert fcgi_request(f"{workdir}/www.sock", "/ping",
                        extra={"HTTP_COOKIE": "c=" + "x" * 1_100_000}, timeout=10).status == 200


def test_idle_connections_to_one_listener_do_not_block_another(fpmd, workdir):
    """Issue 20 item 7: the connection cap is per listener, and the oldest silent
    connection makes room for a new one, so a scraper is never locked out."""
    a, b = f"{workdir}/a-status.sock", f"{workdir}/b-status.sock"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, "a", extra=f"pm.status_listen = {a}\n")
                          + pool_conf(workdir, "b", extra=f"pm.status_listen = {b}\n")))
    idle = [connect(a) for _ in range(40)]
    try:
        time.sleep(0.2)
        r = fcgi_request(b, "/ping?ready", timeout=3)
        assert r.status == 200, r.stdout
        r = fcgi_request(a, "/status", timeout=3)
        assert r.status == 200, r.stdout
    finally:
        for s in idle:
            s.close()


def test_idle_status_connections_are_closed_soon(fpmd, workdir):
    st = f"{workdir}/status.sock"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, extra=f"pm.status_listen = {st}\n")))
    s = connect(st, timeout=10)
    t0 = time.monotonic()
    assert s.recv(10) == b""
    assert time.monotonic() - t0 < 4
    s.close()


def test_a_php_pools_master_answers_say_x_powered_by_as_its_workers_do(fpmd, workdir):
    """php-fpm's status pool answers as PHP (expose_php); the master learns the line from
    the pool's zygote through the handler interface (handler->powered_by)."""
    import os
    from test_php import PHP_SO, php_pool
    import pytest
    if not os.path.exists(PHP_SO):
        pytest.skip("fpmd-php.so not built")
    st = f"{workdir}/status.sock"
    fpmd.start(basic_conf(workdir, php_pool(workdir, extra=f"pm.status_listen = {st}\n"
                                            "php_admin_value[expose_php] = On\n")
                          + pool_conf(workdir, "c", extra=f"pm.status_listen = {workdir}/c-status.sock\n")),
               extra_args=("-d", "expose_php=On"))
    r = fcgi_request(st, "/ping")
    assert r.body == b"pong"
    assert r.headers.get("x-powered-by", "").startswith("PHP/8.2"), r.headers
    assert "x-powered-by" not in fcgi_request(f"{workdir}/c-status.sock", "/ping").headers


def test_a_reload_applies_listen_owner_and_mode_to_the_status_socket(fpmd, workdir):
    """The pool's socket got a changed listen.owner/mode at a reload, the
    pm.status_listen socket kept the old ones until a restart."""
    import pwd
    import signal
    import stat as st
    extra = f"pm.status_listen = {workdir}/status.sock\n"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, extra=extra)))
    fpmd.write_conf(basic_conf(workdir, pool_conf(
        workdir, extra=extra + "listen.owner = daemon\nlisten.mode = 0600\n")))
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log("ready to handle connections", count=2)
    s = os.stat(f"{workdir}/status.sock")
    assert (s.st_uid, st.S_IMODE(s.st_mode)) == (pwd.getpwnam("daemon").pw_uid, 0o600), s
