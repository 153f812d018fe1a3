#!/usr/bin/env python3
"""Captures fuzz seeds from live traffic: what nginx sends a FastCGI server,
and what php-fpm answers.

nginx (Debian's nginx-light, its own configuration in a temporary directory,
loopback ports) is put in front of a tiny capturing FastCGI server on a unix
socket; a set of HTTP requests (GET with a query, POST forms, a multipart
upload, big headers, a chunked upload, a 32 KiB PUT, HEAD, PATH_INFO, and
keep-alive with fastcgi_keep_conn on) is sent through it, and the raw bytes
of each upstream connection are recorded.  Those bytes are then replayed to
php-fpm8.2 (started with -F -y and its own pool in the temporary directory)
whose raw answers are recorded too.

Seeds go to tests/fuzz/corpus/fuzz_fcgi_parser/ (requests and answers: that
harness runs the request parser and the response reader on every input) and
tests/fuzz/corpus/fuzz_conn/ (requests), named live-nginx-* and live-php-fpm-*.
Run it with `make fuzz-seeds`; it needs nginx-light and php8.2-fpm
(scripts/deps.sh test).  Nothing is left running: every process it starts is
stopped at the end, and the temporary directory removed.
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

PHP_SCRIPTS = {
    "hello.php": "<?php header('X-Seed: hello'); echo 'hello ', $_GET['a'] ?? '', \"\\n\";",
    "post.php": "<?php echo count($_POST), ' fields; ', file_get_contents('php://input');",
    "upload.php": "<?php foreach ($_FILES as $k => $f) { echo $k, ' ', $f['size'], \"\\n\"; }",
    "big.php": "<?php echo str_repeat('0123456789abcdef', 2048);",
    "flush.php": "<?php for ($i = 0; $i < 5; $i++) { echo \"part $i\\n\"; flush(); }",
    # no error_log set: php-fpm sends the messages to the web server as FCGI_STDERR
    "stderr.php": "<?php error_log('seed message to the web server'); trigger_error('notice', E_USER_NOTICE);"
                  " echo 'after';",
    "notfound.php": "<?php http_response_code(404); echo 'nope';",
    "finish.php": "<?php echo 'early'; fastcgi_finish_request(); echo 'dropped';",
    "info.php": "<?php header('Content-Type: application/json'); echo json_encode($_SERVER);",
}


def records(data):
    """Splits a FastCGI byte stream into (type, id, content) records; stops at a torn tail."""
    out, p = [], 0
    while p + 8 <= len(data):
        _, rtype, rid, clen, pad = struct.unpack(">BBHHB", data[p:p + 7])
        if p + 8 + clen + pad > len(data):
            break
        out.append((rtype, rid, data[p + 8:p + 8 + clen]))
        p += 8 + clen + pad
    return out


def record(rtype, rid, content=b""):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBx", 1, rtype, rid, len(content), pad) + content + b"\0" * pad


class Capture:
    """A FastCGI server that answers every request with a small 200 and keeps each connection's bytes."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.listen(16)
        self.conns = []          # the raw bytes of every upstream connection, in accept order
        self.lock = threading.Lock()
        self.stop = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            buf = bytearray()
            with self.lock:
                self.conns.append(buf)
            threading.Thread(target=self.serve, args=(c, buf), daemon=True).start()

    def serve(self, c, buf):
        answered = 0
        with c:
            while True:
                try:
                    d = c.recv(65536)
                except OSError:
                    return
                if not d:
                    return
                with self.lock:
                    buf.extend(d)
                recs = records(bytes(buf))
                ends = [(rid) for t, rid, content in recs if t == 5 and not content]
                keep = {rid: content[2] & 1 for t, rid, content in recs if t == 1}
                for rid in ends[answered:]:
                    answer = b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\ncaptured\n"
                    c.sendall(record(6, rid, answer) + record(6, rid) +
                              record(3, rid, struct.pack(">IB3x", 0, 0)))
                    answered += 1
                    if not keep.get(rid):
                        return

    def close(self):
        self.stop = True
        self.sock.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, what, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise RuntimeError(f"capture_seeds: {what} did not come up")


def http(port, raw, timeout=5.0):
    """Sends raw HTTP bytes and reads until the server closes or the timeout passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        got = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                got += d
        except socket.timeout:
            pass
        return got


def nginx_conf(tmp, port, port_ka, root, user_root):
    temps = "\n".join(f"    {d}_temp_path {tmp}/{d};" for d in ("client_body", "fastcgi", "proxy", "uwsgi", "scgi"))
    fcgi = f"""
            fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_param PATH_INFO $fastcgi_path_info;"""
    return f"""{'user root;' if user_root else ''}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temps}
    client_max_body_size 4m;
    large_client_header_buffers 4 16k;
    upstream capture {{ server unix:{tmp}/capture.sock; }}
    upstream capture_ka {{ server unix:{tmp}/capture.sock; keepalive 2; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location ~ \\.php {{{fcgi}
            fastcgi_pass capture;
        }}
    }}
    server {{
        listen 127.0.0.1:{port_ka};
        root {root};
        location ~ \\.php {{{fcgi}
            fastcgi_keep_conn on;
            fastcgi_pass capture_ka;
        }}
    }}
}}
"""


def requests():
    """(name, port key, raw HTTP request): port key 'plain' or 'ka' (fastcgi_keep_conn on)."""
    host = b"Host: localhost\r\nUser-Agent: capture_seeds/1\r\n"
    form = b"name=value&x=%0a%00&empty=&arr[]=1&arr[]=2"
    boundary = b"----seedboundary7MA4YWxk"
    multipart = (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n"
                 b"Content-Type: text/plain\r\n\r\n" + b"line\n" * 200 + b"\r\n--" + boundary +
                 b"\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nvalue\r\n--" + boundary + b"--\r\n")
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (b"first chunk;", b"x" * 3000, b"last")) + b"0\r\n\r\n"
    big = b"".join(b"X-Header-%d: %s\r\n" % (i, b"v" * 100) for i in range(40))
    put = bytes(range(256)) * 128
    yield "get_query", "plain", b"GET /hello.php?a=1&b=%0a&c=%C3%A9 HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n"
    yield "post_form", "plain", (b"POST /post.php HTTP/1.1\r\n" + host +
                                 b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
                                 b"Connection: close\r\n\r\n" % len(form) + form)
    yield "post_multipart", "plain", (b"POST /upload.php HTTP/1.1\r\n" + host +
                                      b"Content-Type: multipart/form-data; boundary=" + boundary +
                                      b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(multipart) + multipart)
    yield "big_headers", "plain", (b"GET /info.php HTTP/1.1\r\n" + host + b"Cookie: " + b"c" * 6000 +
                                   b"\r\n" + big + b"Connection: close\r\n\r\n")
    yield "chunked_upload", "plain", (b"POST /post.php HTTP/1.1\r\n" + host +
                                      b"Transfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n"
                                      b"Connection: close\r\n\r\n" + chunks)
    yield "put_32k", "plain", (b"PUT /post.php HTTP/1.1\r\n" + host + b"Content-Length: %d\r\n"
                                b"Connection: close\r\n\r\n" % len(put) + put)
    yield "head", "plain", b"HEAD /hello.php HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n"
    yield "path_info", "plain", b"GET /hello.php/extra/path%20x?q HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n"
    for script in ("big", "flush", "stderr", "notfound", "finish"):
        yield script, "plain", b"GET /%s.php HTTP/1.1\r\n%sConnection: close\r\n\r\n" % (script.encode(), host)
    # three requests on one HTTP connection, so on one kept upstream connection
    ka = (b"GET /hello.php?a=1 HTTP/1.1\r\n" + host + b"\r\n" +
          b"POST /post.php HTTP/1.1\r\n" + host + b"Content-Type: application/x-www-form-urlencoded\r\n"
          b"Content-Length: %d\r\n\r\n" % len(form) + form +
          b"GET /flush.php HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n")
    yield "keepalive_x3", "ka", ka


def replay_php(sock_path, data):
    """Sends a captured connection to php-fpm and returns its raw answer."""
    begins = sum(1 for t, _, _ in records(data) if t == 1)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(sock_path)
        s.sendall(data)
        got = b""
        while sum(1 for t, _, _ in records(got) if t == 3) < begins:
            d = s.recv(65536)
            if not d:
                break
            got += d
        return got


def write(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    for tool in ("/usr/sbin/nginx", "/usr/sbin/php-fpm8.2"):
        if not os.access(tool, os.X_OK):
            sys.exit(f"capture_seeds: {tool} is missing (scripts/deps.sh test)")
    tmp = tempfile.mkdtemp(prefix="fpmd-seeds-")
    os.chmod(tmp, 0o755)
    root = os.path.join(tmp, "www")
    os.mkdir(root)
    for name, body in PHP_SCRIPTS.items():
        with open(os.path.join(root, name), "w") as f:
            f.write(body)
    as_root = os.geteuid() == 0
    nginx = fpm = None
    cap = Capture(os.path.join(tmp, "capture.sock"))
    try:
        port, port_ka = free_port(), free_port()
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf(tmp, port, port_ka, root, as_root))
        nginx = subprocess.Popen(["/usr/sbin/nginx", "-p", tmp, "-e", os.path.join(tmp, "nginx-error.log"),
                                  "-c", conf, "-g", "daemon off;"])

        def listening():
            try:
                socket.create_connection(("127.0.0.1", port_ka), timeout=0.2).close()
                return True
            except OSError:
                return False
        wait_for(listening, "nginx")

        captured = {}
        for name, which, raw in requests():
            before = len(cap.conns)
            reply = http(port_ka if which == "ka" else port, raw)
            if b" 200 " not in reply.split(b"\r\n", 1)[0]:
                raise RuntimeError(f"capture_seeds: {name}: nginx answered {reply[:80]!r}")
            wait_for(lambda: len(cap.conns) > before, f"the upstream connection of {name}")
            captured[name] = cap.conns[before]
        # the kept upstream connection ends when nginx does
        stop(nginx)
        nginx = None
        time.sleep(0.2)
        with cap.lock:
            captured = {k: bytes(v) for k, v in captured.items()}
        for name, data in captured.items():
            n = sum(1 for t, _, _ in records(data) if t == 1)
            print(f"captured {name}: {len(data)} bytes, {n} request(s), "
                  f"{sum(1 for t, _, _ in records(data) if t == 5)} STDIN record(s)")
            write("fuzz_fcgi_parser", "live-nginx-" + name, data)
            write("fuzz_conn", "live-nginx-" + name, data)

        # php-fpm's answers to the same bytes
        fpm_conf = os.path.join(tmp, "php-fpm.conf")
        fpm_sock = os.path.join(tmp, "php.sock")
        with open(fpm_conf, "w") as f:
            f.write(f"""[global]
error_log = {tmp}/php-fpm.log
pid = {tmp}/php-fpm.pid
daemonize = no
[seed]
{'user = nobody' if as_root else ''}
{'group = nogroup' if as_root else ''}
listen = {fpm_sock}
listen.mode = 0666
pm = static
pm.max_children = 1
catch_workers_output = no
php_admin_flag[log_errors] = on
php_admin_flag[display_errors] = off
""")
        fpm = subprocess.Popen(["/usr/sbin/php-fpm8.2", "-F", "-y", fpm_conf, "-n",
                                "-d", "error_reporting=E_ALL", "-d", "log_errors=1"])
        wait_for(lambda: os.path.exists(fpm_sock), "php-fpm8.2")
        for name in ("get_query", "post_form", "post_multipart", "big", "flush", "stderr", "notfound", "finish",
                     "head", "keepalive_x3"):
            answer = replay_php(fpm_sock, captured[name])
            ends = sum(1 for t, _, _ in records(answer) if t == 3)
            print(f"php-fpm answered {name}: {len(answer)} bytes, {len(records(answer))} records, {ends} END_REQUEST")
            if ends == 0:
                raise RuntimeError(f"capture_seeds: php-fpm gave no END_REQUEST for {name}: {answer[:200]!r}")
            write("fuzz_fcgi_parser", "live-php-fpm-" + name, answer)
    finally:
        stop(nginx)
        stop(fpm)
        cap.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
