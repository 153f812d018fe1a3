"""PHP behind nginx: the same requests to Debian's php-fpm8.2 and to fpmd's php pool.

One nginx, two server blocks (one per backend), the same php.ini (Debian's
/etc/php/8.2/fpm), the same pool settings.  Each test sends the same request to both
and compares what a browser would see.
"""
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import BUILD, FPMD, wait_for
from test_nginx import NGINX, free_port, http_request, kill_group, port_open

PHP_FPM = "/usr/sbin/php-fpm8.2"
pytestmark = [
    pytest.mark.skipif(not os.path.exists(os.path.join(BUILD, "fpmd-php.so")),
                       reason="fpmd-php.so not built (libphp8.2-embed / php8.2-dev missing)"),
    pytest.mark.skipif(not os.path.exists(PHP_FPM), reason="php-fpm8.2 not installed"),
    pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="nginx is not installed"),
]

POOL = """
user = nobody
group = nogroup
listen = {sock}
listen.mode = 0666
pm = static
pm.max_children = 2
ping.path = /ping
pm.status_path = /status
request_terminate_timeout = 3s
request_slowlog_timeout = 1s
slowlog = {slow}
catch_workers_output = yes
php_admin_value[upload_max_filesize] = 20M
php_admin_value[post_max_size] = 24M
php_admin_value[memory_limit] = 64M
php_admin_value[session.save_path] = {sess}
php_value[display_errors] = Off
"""

SCRIPTS = {
    "hello.php": "<?php echo 'hello ', $_GET['name'] ?? 'world';",
    "info.php": "<?php phpinfo();",
    "session.php": "<?php session_start(); $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1; echo $_SESSION['n'];",
    "form.php": "<?php echo json_encode($_POST);",
    "upload.php": "<?php $f = $_FILES['f']; echo $f['error'], ' ', $f['size'], ' ', md5_file($f['tmp_name']);",
    "headers.php": "<?php http_response_code(201); header('X-Test: yes'); setcookie('c', 'v');"
                   " header('Content-Type: text/plain'); echo json_encode($_COOKIE);",
    "redirect.php": "<?php header('Location: /hello.php', true, 301);",
    "finish.php": "<?php echo 'first'; fastcgi_finish_request(); sleep(2); echo 'never';",
    "fatal.php": "<?php undefined_function();",
    "forever.php": "<?php set_time_limit(0); while (true) { usleep(100000); }",
    "slow.php": "<?php\nfunction nap() {\n    sleep(2);\n}\nnap();\necho 'rested';\n",
    "locked.php": "<?php var_dump(ini_set('memory_limit', '1G')); echo ini_get('memory_limit');",
    "status.php": "<?php switch ($_GET['c']) {\n"
                  "case 1: header('Status: 200 OK'); header('HTTP/1.1 500 Internal Server Error'); break;\n"
                  "case 2: header('HTTP/1.1 404 Not Found'); header('Status: 410 Gone'); break;\n"
                  "case 3: header('Status: 410 Gone'); header('HTTP/1.1 404 Not Found'); break;\n"
                  "case 4: header('HTTP/1.1 200 OK'); http_response_code(500); break;\n"
                  "case 5: header('HTTP/1.1 404 Not Found'); http_response_code(500); break;\n"
                  "case 6: header('Status: 503 Busy'); break;\n"
                  "case 7: http_response_code(304); header('Content-Type: text/plain'); break;\n"
                  "case 8: header('Status: 304 Not Modified'); header('Content-Type: text/plain'); break;\n"
                  "} echo 'code=', http_response_code();",
    "pathinfo.php": "<?php echo $_SERVER['PATH_INFO'] ?? '-', ' ', $_SERVER['SCRIPT_NAME'], ' ', $_SERVER['PHP_SELF'];",
}

LOCATIONS = """
        location = /ping {{ include /etc/nginx/fastcgi.conf; fastcgi_pass unix:{sock}; }}
        location = /status {{ include /etc/nginx/fastcgi.conf; fastcgi_pass unix:{sock}; }}
        location ~ [^/]\\.php(/|$) {{
            fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_param PATH_INFO $fastcgi_path_info;
            fastcgi_read_timeout 20s;
            fastcgi_pass unix:{sock};
        }}
"""


class World:
    def __init__(self, base):
        self.base = base
        self.root = os.path.join(base, "www")
        self.procs = []
        self.ports = {}

    def start(self):
        os.makedirs(self.root)
        for name, text in SCRIPTS.items():
            with open(os.path.join(self.root, name), "w") as f:
                f.write(text)
        for d in ("sess-php-fpm", "sess-fpmd"):
            os.makedirs(os.path.join(self.base, d))
            os.chmod(os.path.join(self.base, d), 0o777)
        for path in (self.base, self.root):
            os.chmod(path, 0o755)
        self.socks = {n: os.path.join(self.base, f"{n}.sock") for n in ("php-fpm", "fpmd")}
        self.slow = {n: os.path.join(self.base, f"{n}.slow.log") for n in ("php-fpm", "fpmd")}
        for n in ("php-fpm", "fpmd"):
            conf = os.path.join(self.base, f"{n}.conf")
            with open(conf, "w") as f:
                f.write(f"[global]\npid = {self.base}/{n}.pid\nerror_log = {self.base}/{n}.log\n"
                        f"daemonize = no\n[www]\n"
                        + POOL.format(sock=self.socks[n], slow=self.slow[n],
                                      sess=os.path.join(self.base, f"sess-{n}")))
            binary = PHP_FPM if n == "php-fpm" else FPMD
            self.procs.append(subprocess.Popen([binary, "-F", "-R", "-y", conf],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                               start_new_session=True))
        assert wait_for(lambda: all(os.path.exists(s) for s in self.socks.values()), 15), self.logs()
        prefix = os.path.join(self.base, "nginx")
        os.makedirs(prefix)
        servers = ""
        for n, sock in self.socks.items():
            self.ports[n] = free_port()
            servers += (f"    server {{\n        listen 127.0.0.1:{self.ports[n]};\n"
                        f"        root {self.root};\n" + LOCATIONS.format(sock=sock) + "    }\n")
        conf = (f"daemon off;\nmaster_process on;\nworker_processes 1;\nuser nobody nogroup;\n"
                f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log info;\n"
                f"events {{ worker_connections 256; }}\n"
                f"http {{\n    access_log off;\n    client_max_body_size 32m;\n"
                f"    client_body_temp_path {prefix}/body;\n    fastcgi_temp_path {prefix}/fastcgi;\n"
                f"    proxy_temp_path {prefix}/proxy;\n    uwsgi_temp_path {prefix}/uwsgi;\n"
                f"    scgi_temp_path {prefix}/scgi;\n{servers}}}\n")
        with open(os.path.join(self.base, "nginx.conf"), "w") as f:
            f.write(conf)
        self.nginx = subprocess.Popen([NGINX, "-c", os.path.join(self.base, "nginx.conf"), "-p", prefix],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
        assert wait_for(lambda: all(port_open(p) for p in self.ports.values()), 10)

    def logs(self):
        out = ""
        for n in ("php-fpm", "fpmd"):
            try:
                out += f"--- {n}\n" + open(os.path.join(self.base, f"{n}.log")).read()
            except OSError:
                pass
        return out

    def both(self, path, **kw):
        return {n: http_request(self.ports[n], path, **kw) for n in ("php-fpm", "fpmd")}

    def stop(self):
        if getattr(self, "nginx", None):
            kill_group(self.nginx, signal.SIGTERM)
        for p in self.procs:
            kill_group(p, signal.SIGTERM)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    import tempfile
    base = tempfile.mkdtemp(prefix="fpmd-phpnginx-", dir="/tmp")
    w = World(base)
    try:
        w.start()
        yield w
    finally:
        w.stop()
        shutil.rmtree(base, ignore_errors=True)


def same(r, *fields):
    a, b = r["php-fpm"], r["fpmd"]
    for f in fields:
        assert getattr(a, f) == getattr(b, f), (f, a, b)
    return a, b


def test_hello(world):
    a, b = same(world.both("/hello.php?name=nginx"), "status", "body")
    assert b.body == b"hello nginx"
    assert a.headers.get("content-type") == b.headers.get("content-type")


def test_phpinfo_sections(world):
    r = world.both("/info.php")
    a, b = same(r, "status")
    for section in (b"PHP Version", b"Loaded Configuration File", b"/etc/php/8.2/fpm/php.ini",
                    b"Zend OPcache", b"session", b"date"):
        assert section in a.body and section in b.body, section
    assert b"Server API </td><td class=\"v\">fpmd" in b.body


def test_sessions(world):
    for n in ("php-fpm", "fpmd"):
        r1 = http_request(world.ports[n], "/session.php")
        cookie = r1.headers["set-cookie"].split(";")[0]
        r2 = http_request(world.ports[n], "/session.php", headers={"Cookie": cookie})
        assert (r1.body, r2.body) == (b"1", b"2"), n


def test_post_form(world):
    body = "a=1&b=two+words&c[]=x"
    r = world.both("/form.php", method="POST", body=body,
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    a, b = same(r, "status", "body")
    assert b.body == b'{"a":"1","b":"two words","c":["x"]}'


def test_ten_megabyte_upload(world):
    data = os.urandom(10 * 1024 * 1024)
    boundary = "----fpmdnginx"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    r = world.both("/upload.php", method="POST", body=body, timeout=60,
                   headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    a, b = same(r, "status", "body")
    assert b.body.decode() == f"0 {len(data)} {hashlib.md5(data).hexdigest()}"


def test_headers_cookies_status(world):
    r = world.both("/headers.php", headers={"Cookie": "k=1"})
    a, b = same(r, "status", "body")
    assert b.status == 201 and b.body == b'{"k":"1"}'
    for h in ("x-test", "content-type", "set-cookie"):
        assert a.headers.get(h) == b.headers.get(h), h
    r = world.both("/redirect.php")
    a, b = same(r, "status")
    assert b.status == 301 and a.headers["location"] == b.headers["location"]


@pytest.mark.parametrize("case", range(1, 9))
def test_a_status_line_status_header_and_response_code_together(world, case):
    """php-fpm's rules for a header('HTTP/1.1 …') line, a "Status:" header and
    http_response_code() set together: the HTTP line wins.  fpmd let a "Status:" header
    win (an error page went out as 200 while its access log said 500)."""
    a, b = same(world.both(f"/status.php?c={case}"), "status", "body")
    assert a.headers.get("content-type") == b.headers.get("content-type"), (a, b)


def test_path_info(world):
    a, b = same(world.both("/pathinfo.php/extra/bits"), "status", "body")
    assert b.body == b"/extra/bits /pathinfo.php /pathinfo.php/extra/bits"


def test_fastcgi_finish_request(world):
    for n in ("php-fpm", "fpmd"):
        t = time.monotonic()
        r = http_request(world.ports[n], "/finish.php")
        assert r.body == b"first", n
        assert time.monotonic() - t < 1.5, n


def test_fatal_error_is_500(world):
    a, b = same(world.both("/fatal.php"), "status")
    assert b.status == 500


def test_past_request_terminate_timeout(world):
    """Both kill the worker after 3 s; nginx answers 502 for both, and both serve on."""
    r = world.both("/forever.php", timeout=30)
    a, b = same(r, "status")
    assert b.status in (502, 504)
    same(world.both("/hello.php"), "status", "body")


def test_slowlog_has_the_php_stack(world):
    same(world.both("/slow.php", timeout=30), "status", "body")

    def frames(n):
        try:
            text = open(world.slow[n]).read()
        except OSError:
            return []
        # the entry of slow.php (forever.php, another test's, has its own)
        entries = [e for e in text.split("\n\n") if "slow.php\n" in e]
        return re.findall(r"^\[0x[0-9a-f]+\] (\w+\(\) \S+:\d+)$", entries[-1], re.M) if entries else []
    assert wait_for(lambda: frames("php-fpm") and frames("fpmd"), 10), world.logs()
    want = [f"sleep() {world.root}/slow.php:3", f"nap() {world.root}/slow.php:5"]
    assert frames("php-fpm")[:2] == want
    assert frames("fpmd")[:2] == want


def test_php_admin_value_is_locked(world):
    a, b = same(world.both("/locked.php"), "status", "body")
    assert b.body == b"bool(false)\n64M"


def test_ping_and_status(world):
    a, b = same(world.both("/ping"), "status", "body")
    assert b.body == b"pong"
    r = world.both("/status?json")
    a, b = same(r, "status")
    import json
    assert list(json.loads(b.body)) == list(json.loads(a.body))
