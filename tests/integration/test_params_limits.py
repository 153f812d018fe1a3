"""Params limits and a request aborted before it began (issue 20, items 12 and 13)."""
import struct
import time

from conftest import (FCGI_ABORT, FCGI_BEGIN, FCGI_END, FCGI_PARAMS, Response, basic_conf,
                      build_request, cgi_params, connect, encode_params, fcgi_request, pool_conf,
                      read_records, record)


def many_headers(n, name_len=10):
    extra = {}
    for i in range(n):
        extra[f"HTTP_X_{i:05d}".ljust(name_len, "A")] = "v"
    return extra


def test_what_nginx_can_send_is_served(fpmd, workdir):
    """2,000 headers, a 4 KiB header name: php-fpm serves these, so does fpmd by default."""
    fpmd.start(basic_conf(workdir, pool_conf(workdir)))
    sock = f"{workdir}/www.sock"
    r = fcgi_request(sock, "/ping", root=workdir, extra=many_headers(2000))
    assert r.body.strip() == b"pong"
    r = fcgi_request(sock, "/ping", root=workdir, extra={"HTTP_" + "N" * 4096: "v"})
    assert r.body.strip() == b"pong"
    assert "protocol error" not in fpmd.log()


def test_over_the_limits_is_answered_not_dropped(fpmd, workdir):
    fpmd.start(basic_conf(workdir, pool_conf(workdir, extra="request.max_params_count = 100\n"
                                                          "request.max_param_name_size = 256\n")))
    sock = f"{workdir}/www.sock"
    for extra in (many_headers(200), {"HTTP_" + "N" * 1000: "v"}):
        r = fcgi_request(sock, "/ping", root=workdir, extra=extra)
        assert r.status == 431, r.stdout
        assert r.app_status == 0
    fpmd.wait_log(r"request refused with 431")
    # and the worker serves on
    assert fcgi_request(sock, "/ping", root=workdir).body.strip() == b"pong"


def test_abort_before_the_params_end_gets_its_end_request(fpmd, workdir):
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1)))
    sock = f"{workdir}/www.sock"
    params = encode_params(cgi_params("/ping", workdir))
    first_params = params[:-8]            # every PARAMS record but the empty one
    with connect(sock, timeout=5) as s:
        s.sendall(record(FCGI_BEGIN, 1, struct.pack(">HB5x", 1, 1)) + first_params +
                  record(FCGI_ABORT, 1))
        t0 = time.monotonic()
        r = read_records(s, Response(), timeout=5)
        assert time.monotonic() - t0 < 2
        assert r.protocol_status == 0
        assert [rt for rt, _, _ in r.records] == [FCGI_END]
        # kept: the same connection serves the next request
        s.sendall(build_request(cgi_params("/ping", workdir), keep=True))
        r2 = read_records(s, Response(), timeout=5)
        assert r2.body.strip() == b"pong"


def test_a_protocol_error_in_the_body_is_logged_as_one(fpmd, workdir):
    """A record the protocol does not allow while the body is read (a PARAMS
    record after the params ended) closed the connection with no log line, or
    was logged as "client went away"."""
    from conftest import FCGI_STDIN, cgi_params, connect, encode_params, record, write_script
    write_script(f"{workdir}/in.sh", "#!/bin/sh\ncat >/dev/null\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    fpmd.start(basic_conf(workdir))
    params = cgi_params("/in.sh", workdir, method="POST", body=b"xy")
    s = connect(f"{workdir}/www.sock")
    s.sendall(record(FCGI_BEGIN, 1, struct.pack(">HB5x", 1, 0)) + encode_params(params, 1)
              + record(FCGI_STDIN, 1, b"x") + encode_params({"A": "b"}, 1) + record(FCGI_STDIN, 1))
    s.settimeout(5)
    while s.recv(65536):
        pass
    s.close()
    fpmd.wait_log("FastCGI protocol error from client while reading the request body")
    assert "client went away" not in fpmd.log()
