#!/usr/bin/env python3
"""Writes the seed corpus of the FastCGI and access.format fuzzers.

The requests are shaped as nginx sends them (the params of Debian's
/etc/nginx/fastcgi_params, in that order, padded to 8 bytes, one PARAMS record
then the empty one, STDIN in records) and as php-fpm answers. Run it again
after changing a harness's input layout: `python3 tests/fuzz/make_seeds.py`.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

NGINX_PARAMS = [
    ("QUERY_STRING", "a=1&b=%0a"), ("REQUEST_METHOD", "POST"), ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
    ("CONTENT_LENGTH", "11"), ("SCRIPT_NAME", "/index.php"), ("REQUEST_URI", "/index.php/x?a=1&b=%0a"),
    ("DOCUMENT_URI", "/index.php"), ("DOCUMENT_ROOT", "/var/www/html"), ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("REQUEST_SCHEME", "http"), ("GATEWAY_INTERFACE", "CGI/1.1"), ("SERVER_SOFTWARE", "nginx/1.22.1"),
    ("REMOTE_ADDR", "127.0.0.1"), ("REMOTE_PORT", "51234"), ("SERVER_ADDR", "127.0.0.1"),
    ("SERVER_PORT", "80"), ("SERVER_NAME", "localhost"), ("REDIRECT_STATUS", "200"),
    ("SCRIPT_FILENAME", "/var/www/html/index.php"), ("PATH_INFO", "/x"),
    ("HTTP_HOST", "localhost"), ("HTTP_USER_AGENT", "curl/7.88.1"), ("HTTP_ACCEPT", "*/*"),
]


def record(rtype, rid, content=b"", pad=None):
    if pad is None:
        pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBx", 1, rtype, rid, len(content), pad) + content + b"\0" * pad


def nv(name, value):
    out = b""
    for part in (name, value):
        n = len(part)
        out += bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    return out + name + value


def request(params, body=b"", keep=False, rid=1):
    out = record(1, rid, struct.pack(">HB5x", 1, 1 if keep else 0))
    blob = b"".join(nv(k.encode(), v.encode()) for k, v in params)
    for i in range(0, len(blob), 65535):
        out += record(4, rid, blob[i:i + 65535])
    out += record(4, rid)
    for i in range(0, len(body), 65535):
        out += record(5, rid, body[i:i + 65535])
    return out + record(5, rid)


def php_fpm_answer(rid=1):
    head = b"X-Powered-By: PHP/8.2.7\r\nContent-type: text/html; charset=UTF-8\r\n\r\n"
    return (record(6, rid, head + b"<p>hello</p>") + record(7, rid, b"PHP Notice: x") + record(6, rid)
            + record(3, rid, struct.pack(">IB3x", 0, 0)))


def write(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    get = [(k, v) for k, v in NGINX_PARAMS if k not in ("CONTENT_TYPE", "CONTENT_LENGTH")]
    get = [(k, "GET" if k == "REQUEST_METHOD" else v) for k, v in get]
    # The parser harness: whole connections as nginx writes them.
    write("fuzz_fcgi_parser", "nginx_get", request(get))
    write("fuzz_fcgi_parser", "nginx_post", request(NGINX_PARAMS, b"name=value!"))
    write("fuzz_fcgi_parser", "nginx_keepalive_x2", request(get, keep=True) + request(get, keep=True, rid=2))
    write("fuzz_fcgi_parser", "nginx_long_value",
          request(get + [("HTTP_COOKIE", "c" * 300)]))
    write("fuzz_fcgi_parser", "php_fpm_answer", php_fpm_answer())

    # The round-trip harness: id(2) flags(1) recmax(2) pad(1) app(2), pairs 0xff-separated, 0xfe, body.
    def rt(params, body, rid=1, flags=0, recmax=65535, pad=0, app=0):
        head = struct.pack(">HBHBH", rid, flags, recmax - 1, pad, app)
        pairs = b"\xff".join(k.encode() + b"\xff" + v.encode() for k, v in params)
        return head + pairs + b"\xfe" + body
    write("fuzz_fcgi_roundtrip", "nginx_get", rt(get, b""))
    write("fuzz_fcgi_roundtrip", "nginx_post", rt(NGINX_PARAMS, b"name=value!", rid=7, flags=1))
    write("fuzz_fcgi_roundtrip", "small_records", rt(get[:4], b"x" * 100, recmax=3, pad=255, app=3))
    write("fuzz_fcgi_roundtrip", "duplicate_names", rt([("A", "1"), ("B", "2"), ("A", "3")], b""))
    write("fuzz_fcgi_roundtrip", "long_name", rt([("N" * 200, "v" * 300)], b"\0\xff\xfe"))

    # The access.format harness: number(8) is the format's first bytes; format, then 0xff fields.
    fields = [b"127.0.0.1", b"alice", b"GET", b"/index.php", b"a=1", b"/var/www/index.php",
              b"value\n\"quoted\"", b"text/html\0x"]
    for i, fmt in enumerate([b"%R - %u %t \"%m %r\" %s",
                             b"%{REMOTE_ADDR}e %{%Y-%m-%dT%H:%M:%S%z}T %d %{mili}d %{kilo}M %C%%",
                             b"%n %p %P %l %f %q%Q %{Content-Type}o %{zz}o %{user}C %{system}C",
                             b"%{bad}d %{seconds}d %{micro}d %{mega}M %x %{unterminated",
                             b"%{%n}t %e %o %"]):
        write("fuzz_access_format", f"format{i}", b"\0\0\0\0\x65\x00\x00\x00" + fmt + b"\xff" + b"\xff".join(fields))

    # The connection harness: client bytes, then CTL and control bytes (tests/fuzz/fuzz_conn.c):
    # the first is the worker's settings (bits 0-1 max_requests, 2 access log, 3 extra header),
    # then one per read (0 all, 0x20+n n+1 bytes, 0x60 one byte, 0x80 EINTR, 0xa0 EAGAIN,
    # 0xc0 ECONNRESET, 0xe0 EOF), write (0x80+n short, 0xa0 EINTR, 0xc0 EPIPE, 0xe0 ECONNRESET),
    # wait (n * 100 ms of fake time, 0xff SIGQUIT) and handler step (op % 16, see stub_handle).
    ctl = b"\0FPMDCTL"

    def reads(n):
        """Read ops that deliver exactly n bytes: 64-byte blocks (0x40+k), then 1..32 (0x20+k)."""
        ops = b""
        while n >= 64:
            k = min(n // 64, 32)
            ops += bytes([0x40 + k - 1])
            n -= k * 64
        while n > 0:
            k = min(n, 32)
            ops += bytes([0x20 + k - 1])
            n -= k
        return ops

    body = b"name=value!" * 300
    post = request(NGINX_PARAMS, body)
    post_head = len(request(NGINX_PARAMS)) - 8
    get1 = request(get, keep=True)
    ping = [(k, "/ping" if k == "SCRIPT_NAME" else v) for k, v in get]
    conn = {
        "nginx_get": request(get),
        "nginx_post": request(NGINX_PARAMS, b"name=value!"),
        "nginx_keepalive_x2": get1 + request(get, keep=True, rid=2),
        "ping_keepalive": request(ping, keep=True) + request(ping + [("QUERY_STRING", "ready")], keep=True),
        "get_values_mid_body": request(NGINX_PARAMS)[:-8] + record(9, 0, nv(b"FCGI_MAX_CONNS", b""))
        + record(5, 1, b"x") + record(5, 1),
        "mpx_refused": request(get)[:16] + record(1, 2, struct.pack(">HB5x", 1, 0)) + request(get)[16:],
        # the harness's control bytes: see fuzz_conn.c (settings, then one per call, in call order)
        "one_byte_reads": post + ctl + b"\x0c" + b"\x21\x60\x3f\x27" * 60 + b"\x00\x06\x10\x06\x40\x01",
        "eintr_eagain": request(get) + ctl + b"\x00\x80\xa0\x05\x00" + b"\x01\x02\x03\x10\x00" + b"\xa0\x00",
        "reset_mid_body": post + ctl + b"\x00" + reads(post_head) + b"\x06\xff\xc0\x01\x00",
        "eof_mid_body": post + ctl + b"\x00" + reads(post_head) + b"\x06\xff\xe0\x01\x00",
        "abort_mid_body": request(NGINX_PARAMS)[:-8] + record(5, 1, b"abc") + record(2, 1) + ctl + b"\x00\x00\x06\x10\x06\x10\x00",
        "short_writes": request(get) + ctl + b"\x08\x00" + b"\x01\x03\x40\x02\x05\x0a" + b"\x85\x81\x9f\x00" + b"\x00\x00",
        "epipe_large": get1 + get1 + ctl + b"\x04\x00" + b"\x04\x80" + b"\x00\xc0" + b"\x00",
        "slow_drain": post + ctl + b"\x00" + reads(post_head) + b"\x00\x00" + b"\x40\x60\x40",
        "quit_between": get1 + request(get, keep=True, rid=2) + ctl + b"\x00" + reads(len(get1)) + b"\x00\x00\xa0\xff",
        "finish_early": get1 + request(get, keep=True, rid=3) + ctl
        + b"\x00\x00" + b"\x01\x02\x09\x00\x02\x05\x0a\x0d\x00" + b"\x00\x00",
        "max_requests_1": get1 + request(get, keep=True, rid=2) + ctl + b"\x01",
        # read timeouts (settings bits 4-5: header and keep-alive, 6-7: body; 1, 5, 60 s);
        # a recv EAGAIN (0xa0) then a wait longer than the timeout (n * 100 ms)
        "header_timeout": post + ctl + b"\x10\x3f\xa0\x0f",
        "keepalive_timeout": get1 + request(get, keep=True, rid=2) + ctl + b"\x10" + reads(len(get1))
        + b"\x00\x00\xa0\x20",
        "body_timeout": post + ctl + b"\x40" + reads(post_head) + b"\x06\xff\xa0\x20\x01\x00",
        "body_slow_not_cut": post + ctl + b"\x40" + reads(post_head) + b"\x06\xff" + b"\xa0\x08\x21" * 20 + b"\x00",
    }
    for name, data in conn.items():
        write("fuzz_conn", name, data)

if __name__ == "__main__":
    main()
