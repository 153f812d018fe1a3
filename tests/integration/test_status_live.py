"""The live status dashboard (?html&live) in headless Chromium.

The page is served by fpmd through a small HTTP -> FastCGI bridge (a web server stand-in), loaded
by Debian's chromium, left to refresh in virtual time, and its DOM dumped: the worker rows must be
there, drawn from the pool's ?json&full, with hostile URIs as text; when the JSON stops coming,
the page says so and keeps the last rows.  The page's own Content-Security-Policy (hashes of its
inline script and style) is enforced by Chromium, so a wrong hash shows as an empty table."""
import os
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import FPMCTL, basic_conf, fcgi_request, pool_conf, wait_for, write_script

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM, reason="needs Debian's chromium (apt-get install chromium)")


class Bridge:
    """HTTP/1.0 in front of a FastCGI socket; fails ?json requests once fail_after are served."""

    def __init__(self, sock, root, fail_after=None, on_json=None):
        bridge = self
        self.json_served = 0
        self.fail_after = fail_after
        self.on_json = on_json          # called with the count after each ?json served

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if "json" in self.path and bridge.fail_after is not None \
                        and bridge.json_served >= bridge.fail_after:
                    self.send_error(502, "fpmd unreachable (test)")
                    return
                r = fcgi_request(sock, self.path, root=root)
                if "json" in self.path:
                    bridge.json_served += 1
                    if bridge.on_json:
                        bridge.on_json(bridge.json_served)
                self.send_response(r.status)
                for k, v in r.headers.items():
                    if k != "status":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.body)))
                self.end_headers()
                self.wfile.write(r.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def load(workdir, url, budget_ms=4000):
    """The DOM after budget_ms of virtual time, and Chromium's log (console messages included)."""
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        f"--user-data-dir={workdir}/chromium-profile", "--enable-logging=stderr",
                        "--v=0", "--dump-dom", f"--virtual-time-budget={budget_ms}", url],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout, r.stderr


def rows(dom):
    body = re.search(r'<tbody id="workers">(.*?)</tbody>', dom, re.S).group(1)
    return re.findall(r'<tr class="state-([a-z-]+)" data-pid="(\d+)">(.*?)</tr>', body, re.S)


def hold_script(workdir):
    write_script(f"{workdir}/hold.sh", "#!/bin/sh\nwhile [ ! -e release ]; do sleep 0.05; done\n"
                 "printf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")


def test_dashboard_renders_workers_from_json(fpmd, workdir):
    hold_script(workdir)
    # One worker held, one or two answering the page's and this test's status requests at
    # the moment the page draws: four, so one is always idle to show.
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=4)))
    sock = f"{workdir}/www.sock"
    # Load arrives once the page has drawn its first data: one worker gets busy on a request
    # whose URI would be markup if the page used innerHTML.
    t = threading.Thread(target=fcgi_request, args=(sock, "/hold.sh?who=<b>x</b>&n=1"),
                         kwargs={"root": workdir, "timeout": 60})

    def load_arrives(n):
        if n == 1:
            t.start()
            assert wait_for(lambda: b"hold.sh" in fcgi_request(sock, "/status?full").body, 5)

    bridge = Bridge(sock, workdir, on_json=load_arrives)
    try:
        page = fcgi_request(sock, "/status?html&live")
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert b"<tbody id=\"workers\"></tbody>" in page.body     # rows come from JS only
        dom, log = load(workdir, f"{bridge.url}/status?html&live&refresh=1")
    finally:
        open(f"{workdir}/release", "w").close()
        if t.is_alive():
            t.join(30)
        bridge.close()
    print(dom[:300])
    assert 'data-state="ok"' in dom, dom
    updates = int(re.search(r'id="updated" data-updates="(\d+)"', dom).group(1))
    assert updates >= 2, dom                                      # refreshed, not just loaded
    found = rows(dom)
    assert sorted(int(pid) for _, pid, _ in found) == sorted(fpmd.workers()), found
    running = [cells for state, _, cells in found if state == "running" and "hold.sh" in cells]
    assert len(running) == 1, found
    assert "<td class=\"path\">/hold.sh?who=&lt;b&gt;x&lt;/b&gt;&amp;n=1</td>" in running[0], running
    assert "<b>x</b>" not in dom
    assert re.search(r'<li class="state-idle" data-state="Idle" data-count="\d">Idle: \d</li>', dom), dom
    assert "fpmd status: pool www" in dom and "listen queue" in dom
    assert "<polyline points=" in dom                             # the requests/s chart
    # No console message at all: no CSP violation, no script error, no failed fetch.
    assert "CONSOLE" not in log and "Content Security Policy" not in log, log


def test_dashboard_keeps_last_data_when_json_fails(fpmd, workdir):
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=2)))
    bridge = Bridge(f"{workdir}/www.sock", workdir, fail_after=2)
    try:
        dom, _ = load(workdir, f"{bridge.url}/status?html&live&refresh=1", budget_ms=5000)
    finally:
        bridge.close()
    assert bridge.json_served == 2
    assert 'data-state="error"' in dom and 'class="stale"' in dom, dom
    err = re.search(r'<p id="error" role="alert">([^<]*)</p>', dom)   # shown: no hidden attribute
    assert err and "HTTP 502" in err.group(1) and "Showing the data of" in err.group(1), dom
    assert re.search(r'data-updates="2"', dom), dom
    assert sorted(int(pid) for _, pid, _ in rows(dom)) == sorted(fpmd.workers())


def test_plain_html_stays_php_fpm_s(fpmd, workdir):
    """?html (and ?html&full) keep php-fpm's static table: scrapers parse it."""
    fpmd.start(basic_conf(workdir))
    r = fcgi_request(f"{workdir}/www.sock", "/status?html&full")
    assert r.headers["content-type"] == "text/html;charset=UTF-8"   # php-fpm8.2's
    assert b"<title>PHP-FPM Status Page</title>" in r.body and b"<script" not in r.body
    assert not os.path.exists(f"{workdir}/chromium-profile")
    r = subprocess.run([FPMCTL, "status", "-s", f"unix:{workdir}/www.sock", "--html", "--live"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "Content-Security-Policy" in r.stdout and "<script>" in r.stdout
