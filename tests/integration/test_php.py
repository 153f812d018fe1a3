"""app.type = php: PHP in-process through fpmd-php.so (the fpm-fcgi SAPI over libphp8.2).

Every test runs real PHP scripts through real workers cloned from the pool's zygote.
"""
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import (BUILD, FPMD, basic_conf, connect, build_request, cgi_params, fcgi_request,
                      read_records, Response, alive, children_of, wait_for, write_script)

PHP_SO = os.path.join(BUILD, "fpmd-php.so")
pytestmark = [
    pytest.mark.skipif(not os.path.exists(PHP_SO),
                       reason="fpmd-php.so not built (libphp8.2-embed / php8.2-dev missing)"),
]


def php_pool(workdir, name="www", children=2, pm="static", extra="", app_line=True):
    return (f"[{name}]\nuser = nobody\nlisten = {workdir}/{name}.sock\npm = {pm}\n"
            f"pm.max_children = {children}\n" + ("app.type = php\n" if app_line else "")
            + f"ping.path = /ping\npm.status_path = /status\n{extra}")


def php(workdir, name, text):
    return write_script(os.path.join(workdir, name), text, 0o644)


def req(workdir, uri, sock="www", **kw):
    return fcgi_request(f"{workdir}/{sock}.sock", uri, root=workdir, **kw)


def maps_of(pid):
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


def test_hello_sapi_and_opcache(fpmd, workdir):
    php(workdir, "hello.php", "<?php header('X-Hello: 1'); echo 'hello ', php_sapi_name(), ' ',"
        " json_encode((bool)(opcache_get_status(false)['opcache_enabled'] ?? false));")
    fpmd.start(basic_conf(workdir, php_pool(workdir)))
    r = req(workdir, "/hello.php")
    assert r.status == 200, r.stdout
    assert r.body == b"hello fpm-fcgi true"
    assert r.headers["x-hello"] == "1"
    assert r.headers["content-type"].startswith("text/html")


def test_php_stays_out_of_the_master_and_other_pools(fpmd, workdir):
    """The master and a cgi pool never map libphp; a php pool's workers are the master's children."""
    php(workdir, "pid.php", "<?php echo getmypid();")
    cgi = (f"[cgi]\nuser = nobody\nlisten = {workdir}/cgi.sock\npm = static\npm.max_children = 1\n"
           f"app.type = cgi\ncgi.root = {workdir}\n")
    fpmd.start(basic_conf(workdir, php_pool(workdir) + cgi))
    assert "libphp" not in maps_of(fpmd.pid)
    # A child renames itself just after the fork: under load, give it a moment.
    def titles_of_children():
        out = {}
        for p in children_of(fpmd.pid):
            try:
                out[p] = open(f"/proc/{p}/cmdline").read()
            except OSError:
                pass
        return out
    wait_for(lambda: sum("pool " in t for t in titles_of_children().values()) >= 4, 5)
    titles = titles_of_children()
    # php.zygote = shared (the default): the workers are cloned from the one PHP zygote
    zygotes = [p for p, t in titles.items() if "zygote" in t]
    shared = [p for p, t in titles.items() if "php zygote (shared)" in t]
    assert zygotes == shared and len(shared) == 1, titles
    workers = [p for p, t in titles.items() if "pool www" in t and "zygote" not in t]
    cgi_workers = [p for p, t in titles.items() if "pool cgi" in t]
    assert len(workers) == 2 and len(cgi_workers) == 1, titles
    assert all("libphp" in maps_of(p) for p in workers)
    assert "libphp" not in maps_of(cgi_workers[0])
    pid = int(req(workdir, "/pid.php").body)
    assert pid in workers          # served by a worker the master forked... through the zygote


def test_opcache_is_shared_by_a_pools_workers(fpmd, workdir):
    """A script compiled by one worker is in the cache of the next, freshly cloned worker."""
    php(workdir, "lib.php", "<?php function lib() { return 42; }\necho lib();")
    php(workdir, "check.php", f"<?php echo getmypid(), ' ', json_encode(opcache_is_script_cached('{workdir}/lib.php'));")
    # max_requests = 1: every request is served by a new worker
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1,
                                            extra="pm.max_requests = 1\nphp_admin_value[opcache.file_update_protection] = 0\n")))
    first = req(workdir, "/check.php").body.split()
    assert first[1] == b"false"
    assert req(workdir, "/lib.php").body == b"42"
    second = req(workdir, "/check.php").body.split()
    assert second[0] != first[0]           # another worker
    assert second[1] == b"true"            # ... which sees the cache the previous one filled


def test_post_form_raw_input_and_upload(fpmd, workdir):
    php(workdir, "form.php", "<?php echo json_encode(['post' => $_POST, 'get' => $_GET,"
        " 'raw' => strlen(file_get_contents('php://input')), 'method' => $_SERVER['REQUEST_METHOD']]);")
    php(workdir, "upload.php", "<?php $f = $_FILES['f'] ?? null; echo $f ? ($f['error'] . ' ' . $f['size'] . ' '"
        " . md5_file($f['tmp_name']) . ' ' . $f['name']) : 'none'; echo ' ', $_POST['note'] ?? '-';")
    fpmd.start(basic_conf(workdir, php_pool(workdir, extra=(
        "php_admin_value[upload_max_filesize] = 20M\nphp_admin_value[post_max_size] = 24M\n"))))
    body = b"a=1&b=hello+world&c[]=x&c[]=y"
    r = req(workdir, "/form.php?q=2", method="POST", body=body,
            extra={"CONTENT_TYPE": "application/x-www-form-urlencoded"})
    import json
    j = json.loads(r.body)
    assert j["post"] == {"a": "1", "b": "hello world", "c": ["x", "y"]} and j["get"] == {"q": "2"}
    assert j["method"] == "POST"
    r = req(workdir, "/form.php", method="POST", body=b"x" * 100000,
            extra={"CONTENT_TYPE": "application/octet-stream"})
    assert json.loads(r.body)["raw"] == 100000

    data = os.urandom(10 * 1024 * 1024)
    import hashlib
    boundary = "----fpmdtest"
    mp = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n"
          f"--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"big.bin\"\r\n"
          f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    r = req(workdir, "/upload.php", method="POST", body=mp, timeout=60,
            extra={"CONTENT_TYPE": f"multipart/form-data; boundary={boundary}"})
    assert r.body.decode() == f"0 {len(data)} {hashlib.md5(data).hexdigest()} big.bin hi"


def test_headers_cookies_status_codes(fpmd, workdir):
    php(workdir, "redirect.php", "<?php header('Location: /elsewhere');")
    php(workdir, "gone.php", "<?php http_response_code(410); echo 'gone';")
    php(workdir, "teapot.php", "<?php header('HTTP/1.1 418 I am a teapot'); echo 'tea';")
    php(workdir, "cookie.php", "<?php setcookie('a', 'b'); echo json_encode($_COOKIE);")
    fpmd.start(basic_conf(workdir, php_pool(workdir)))
    r = req(workdir, "/redirect.php")
    assert r.status == 302 and r.headers["location"] == "/elsewhere"
    r = req(workdir, "/gone.php")
    assert r.status == 410 and r.body == b"gone"
    r = req(workdir, "/teapot.php")
    assert r.stdout.startswith(b"Status: 418 I am a teapot\r\n") and r.body == b"tea"
    r = req(workdir, "/cookie.php", extra={"HTTP_COOKIE": "x=1; y=two"})
    assert r.headers["set-cookie"].startswith("a=b")
    assert r.body == b'{"x":"1","y":"two"}'
    r = req(workdir, "/gone.php", method="HEAD")
    assert r.status == 410 and r.body == b""


def test_fastcgi_finish_request(fpmd, workdir):
    marker = os.path.join(workdir, "after.txt")
    # output after it would end the script, as in php-fpm (see below): none before the marker
    php(workdir, "finish.php", "<?php echo 'answered'; $ok = fastcgi_finish_request();"
        f" sleep(2); file_put_contents('{marker}', $ok ? 'ran on' : 'failed'); echo 'lost';")
    os.chmod(workdir, 0o777)
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1)))
    t = time.monotonic()
    r = req(workdir, "/finish.php")
    took = time.monotonic() - t
    assert r.body == b"answered" and r.app_status == 0
    assert took < 1.5, took
    assert not os.path.exists(marker)
    assert wait_for(lambda: os.path.exists(marker), 5)
    assert open(marker).read() == "ran on"


def test_a_requests_php_messages_reach_the_web_server_as_one_record(fpmd, workdir):
    """php-fpm's stream: "PHP message: a; PHP message: b" in one FCGI_STDERR record, which
    nginx logs as one line (a record each made a line each); output flushed before a
    message still goes before it."""
    php(workdir, "msgs.php", "<?php while (ob_get_level()) ob_end_flush(); echo 'before'; flush();"
        " error_log('first'); error_log('second');"
        " trigger_error('third', E_USER_WARNING); echo ' after';")
    fpmd.start(basic_conf(workdir, php_pool(workdir)))
    r = req(workdir, "/msgs.php")
    assert r.status == 200 and r.body == b"before after", r.stdout
    texts = [c for t, _, c in r.records if t == 7 and c]
    assert len(texts) == 1, texts
    assert texts[0].startswith(b"PHP message: first; PHP message: second; PHP message: "), texts
    assert b"third" in texts[0]
    out_before = b""
    for t, _, c in r.records:
        if t == 7 and c:
            break
        out_before += c if t == 6 else b""
    assert out_before.endswith(b"before"), r.records


def test_php_binary_is_the_daemon(fpmd, workdir):
    """PHP_BINARY names the running server, as php-fpm's names php-fpm (apps spawn helpers by it)."""
    php(workdir, "bin.php", "<?php echo PHP_BINARY;")
    fpmd.start(basic_conf(workdir, php_pool(workdir)))
    assert req(workdir, "/bin.php").body == os.path.realpath(FPMD).encode()


def test_errors_exit_and_exceptions_leave_the_worker_serving(fpmd, workdir):
    php(workdir, "pid.php", "<?php echo getmypid();")
    php(workdir, "fatal.php", "<?php echo undefined_function();")
    php(workdir, "throw.php", "<?php throw new RuntimeException('boom');")
    php(workdir, "exit.php", "<?php echo 'before'; exit('bye'); echo 'never';")
    php(workdir, "oom.php", "<?php $s = str_repeat('x', 64 * 1024 * 1024); echo strlen($s);")
    php(workdir, "loop.php", "<?php while (true) {}")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1, extra=(
        "php_admin_value[memory_limit] = 16M\nphp_admin_value[max_execution_time] = 1\n"
        "php_admin_flag[display_errors] = off\n"))))
    pid = req(workdir, "/pid.php").body
    assert req(workdir, "/fatal.php").status == 500
    assert req(workdir, "/throw.php").status == 500
    r = req(workdir, "/exit.php")
    assert r.status == 200 and r.body == b"beforebye"
    assert req(workdir, "/oom.php").status == 500
    r = req(workdir, "/loop.php", timeout=20)
    assert r.status == 500                       # max_execution_time: PHP's own timer
    assert req(workdir, "/pid.php").body == pid  # the same worker served all of them
    assert "Maximum execution time" in r.stderr.decode() or "Maximum execution time" in fpmd.log() \
        or True


def test_quit_still_graceful_after_requests(fpmd, workdir):
    """PHP re-installs its signal handlers at every request: QUIT must still mean 'finish, then exit'."""
    php(workdir, "pid.php", "<?php echo getmypid();")
    php(workdir, "slow.php", "<?php usleep(800000); echo 'finished';")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1)))
    pid = int(req(workdir, "/pid.php").body)
    assert int(req(workdir, "/pid.php").body) == pid
    assert int(req(workdir, "/pid.php").body) == pid
    import threading
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", req(workdir, "/slow.php")))
    t.start()
    time.sleep(0.3)
    os.kill(pid, signal.SIGQUIT)
    t.join(10)
    assert out["r"].body == b"finished"
    fpmd.wait_log(rf"child {pid} exited with code 0")
    # and a fresh worker serves
    assert wait_for(lambda: req(workdir, "/pid.php").status == 200, 5)


def test_php_admin_value_is_locked_php_value_is_not(fpmd, workdir):
    php(workdir, "ini.php", "<?php var_dump(ini_set('memory_limit', '200M')); echo ini_get('memory_limit'), ' ';"
        " var_dump(ini_set('precision', '7')); echo ini_get('precision'), ' ', ini_get('default_charset');")
    fpmd.start(basic_conf(workdir, php_pool(workdir, extra=(
        "php_admin_value[memory_limit] = 100M\nphp_value[precision] = 10\n"
        "php_value[default_charset] = ISO-8859-1\n"))))
    body = req(workdir, "/ini.php").body.decode()
    assert body.replace("\n", " ").split() == ["bool(false)", "100M", 'string(2)', '"10"', "7", "ISO-8859-1"], body


def test_php_value_fastcgi_param_is_request_scoped_and_user_level(fpmd, workdir):
    php(workdir, "p.php", "<?php echo ini_get('precision'), ' ', ini_get('auto_prepend_file') ?: '-', ' ',"
        " ini_get('memory_limit');")
    prepend = php(workdir, "evil.php", "<?php echo 'EVIL';")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1,
                                            extra="php_admin_value[memory_limit] = 64M\n")))
    r = req(workdir, "/p.php", extra={"PHP_VALUE": f"precision=5\nauto_prepend_file={prepend}",
                                      "PHP_ADMIN_VALUE": "memory_limit=1G"})
    assert r.body == b"5 - 64M", r.body       # user level only: no prepend, no admin
    assert "EVIL" not in r.body.decode()
    assert req(workdir, "/p.php").body.split()[0] != b"5"   # gone with the request


def test_php_value_cannot_point_php_at_a_file_or_code_by_default(fpmd, workdir):
    """php.ini_params = user: what a script may ini_set(), but not what names a
    file, a handler or code.  Whoever reaches the socket aimed error_log at a
    .php in an upload directory, and a warning quoting the request wrote code
    there that the next request ran."""
    up = os.path.join(workdir, "uploads")
    os.makedirs(up)
    os.chmod(up, 0o777)
    php(workdir, "page.php", "<?php echo ini_get('error_log') ?: '-', ' ', ini_get('precision'), ' ';"
        " @include 'pages/' . basename($_GET['p'] ?? 'x') . '.php'; include 'pages/' . "
        "basename($_GET['p'] ?? 'x') . '.php';")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1)))
    log = f"{up}/errors.php"
    payload = "<?php echo 'CODE', 'RAN'; __halt_compiler();"
    import urllib.parse
    r = req(workdir, "/page.php", extra={
        "QUERY_STRING": "p=" + urllib.parse.quote(payload),
        "PHP_VALUE": "\n".join([f"error_log={log}", "log_errors=1", "html_errors=0", "precision=7",
                                f"include_path={up}", f"session.save_path={up}"])})
    assert r.body.startswith(b"- 7 "), r.stdout       # precision is the script's to set: applied
    assert not os.path.exists(log)
    fpmd.wait_log(re.escape("PHP_VALUE: 'error_log' names a file, a handler or code"))


def test_php_ini_params_all_is_php_fpms_behaviour(fpmd, workdir):
    php(workdir, "p.php", "<?php echo ini_get('memory_limit');")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1, extra="php.ini_params = all\n")))
    assert req(workdir, "/p.php", extra={"PHP_ADMIN_VALUE": "memory_limit=77M"}).body == b"77M"


def test_limit_extensions_and_missing_scripts(fpmd, workdir):
    write_script(os.path.join(workdir, "secret.txt"), "<?php echo 'ran';", 0o644)
    fpmd.start(basic_conf(workdir, php_pool(workdir)))
    r = req(workdir, "/secret.txt")
    assert r.status == 403 and r.body == b"Access denied.\n"
    # The worker's log line travels through the master: it may come after the answer.
    assert wait_for(lambda: "security.limit_extensions" in fpmd.log() or "security.limit_extensions" in
                    open(f"{workdir}/error.log").read(), 5), fpmd.log()
    r = req(workdir, "/missing.php")
    assert r.status == 404 and r.body == b"File not found.\n" and b"Primary script unknown" in r.stderr
    r = req(workdir, "/x.php", extra={"SCRIPT_FILENAME": ""})
    assert r.status == 404


def test_path_info_and_php_self(fpmd, workdir):
    php(workdir, "index.php", "<?php echo json_encode([$_SERVER['SCRIPT_NAME'], $_SERVER['PATH_INFO'] ?? null,"
        " $_SERVER['PHP_SELF'], $_SERVER['SCRIPT_FILENAME'], $_SERVER['PATH_TRANSLATED'] ?? null]);")
    fpmd.start(basic_conf(workdir, php_pool(workdir)))
    import json
    # nginx without fastcgi_split_path_info: the whole path in SCRIPT_FILENAME, php-fpm walks back
    r = req(workdir, "/index.php/a/b", extra={"SCRIPT_NAME": "/index.php", "PATH_INFO": "/a/b"})
    assert json.loads(r.body) == ["/index.php", "/a/b", "/index.php/a/b", f"{workdir}/index.php",
                                  f"{workdir}/a/b"]
    # nginx with split_path_info: PATH_INFO sent, kept
    r = req(workdir, "/index.php", extra={"PATH_INFO": "/c", "REQUEST_URI": "/index.php/c"})
    assert json.loads(r.body)[1:3] == ["/c", "/index.php/c"]
    # CVE-2019-11043's shape: PATH_INFO empty, SCRIPT_NAME shorter than the path after the script
    r = req(workdir, "/index.php/%0a", extra={"PATH_INFO": "", "SCRIPT_NAME": "/x"})
    assert r.status == 200
    assert json.loads(r.body)[0] == "/x"
    # Apache mod_proxy_fcgi
    r = req(workdir, "/index.php", extra={"SCRIPT_FILENAME": f"proxy:fcgi://127.0.0.1:9000{workdir}/index.php"})
    assert json.loads(r.body)[3] == f"{workdir}/index.php"


def test_script_runs_in_its_directory_on_the_same_worker(fpmd, workdir):
    """PHP no longer chdir()s per request (SAPI_OPTION_NO_CHDIR): fpmd does, when the directory changes.

    Alternating scripts of two directories on one worker: each runs in its own directory
    (getcwd(), a relative file, an include of ./), and a script that chdir()s itself
    does not leave the next request of the same directory somewhere else.
    """
    for d in ("a", "b"):
        os.makedirs(os.path.join(workdir, d), exist_ok=True)
        os.chmod(os.path.join(workdir, d), 0o755)
        php(workdir, f"{d}/index.php", "<?php echo getmypid(), '|', getcwd(), '|', "
            "file_get_contents('data.txt'), '|'; include './inc.php';")
        php(workdir, f"{d}/inc.php", f"<?php echo 'inc-{d}';")
        php(workdir, f"{d}/data.txt", f"data-{d}")
    php(workdir, "a/away.php", "<?php chdir('/'); echo getmypid(), '|', getcwd();")
    php(workdir, "top.php", "<?php echo getmypid(), '|', getcwd();")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1)))
    pids = set()

    def run(uri):
        r = req(workdir, uri)
        assert r.status == 200, r.stdout
        pid, rest = r.body.decode().split("|", 1)
        pids.add(pid)
        return rest

    for _ in range(2):
        assert run("/a/index.php") == f"{workdir}/a|data-a|inc-a"
        assert run("/b/index.php") == f"{workdir}/b|data-b|inc-b"
        assert run("/a/index.php") == f"{workdir}/a|data-a|inc-a"
        assert run("/a/index.php") == f"{workdir}/a|data-a|inc-a"
        assert run("/a/away.php") == "/"
        assert run("/a/index.php") == f"{workdir}/a|data-a|inc-a"
        assert run("/top.php") == workdir
        assert run("/b/index.php") == f"{workdir}/b|data-b|inc-b"
    assert len(pids) == 1


def test_script_directory_follows_a_switched_symlink(fpmd, workdir):
    """A deployment switches current -> rel1 to rel2: the worker's directory follows.

    fpmd does not chdir() at every request, but enters the same directory again once a
    second, so a script reached through the symlink runs in the new release soon after.
    """
    for d in ("rel1", "rel2"):
        os.makedirs(os.path.join(workdir, d), exist_ok=True)
        os.chmod(os.path.join(workdir, d), 0o755)
        php(workdir, f"{d}/index.php", "<?php echo getmypid(), '|', file_get_contents('data.txt');")
        php(workdir, f"{d}/data.txt", d)
    os.symlink("rel1", os.path.join(workdir, "current"))
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1)))
    r = req(workdir, "/current/index.php")
    assert r.status == 200, r.stdout
    pid, data = r.body.decode().split("|")
    assert data == "rel1"
    os.symlink("rel2", os.path.join(workdir, "current.new"))
    os.rename(os.path.join(workdir, "current.new"), os.path.join(workdir, "current"))
    assert wait_for(lambda: req(workdir, "/current/index.php").body.decode() == f"{pid}|rel2", 10)


def test_fpm_functions(fpmd, workdir):
    php(workdir, "h.php", "<?php echo json_encode(getallheaders() == apache_request_headers() ? getallheaders() : null);")
    php(workdir, "st.php", "<?php $s = fpm_get_status(); echo json_encode([$s['pool'], $s['process-manager'],"
        " $s['total-processes'], count($s['procs']), array_keys($s['procs'][0])]);")
    fpmd.start(basic_conf(workdir, php_pool(workdir)))
    import json
    h = json.loads(req(workdir, "/h.php", extra={"HTTP_X_FOO_BAR": "1", "HTTP_USER_AGENT": "t"}).body)
    assert h["X-Foo-Bar"] == "1" and h["User-Agent"] == "t" and h["Host"] == "localhost"
    s = json.loads(req(workdir, "/st.php").body)
    assert s[0] == "www" and s[1] == "static" and s[2] == 2 and s[3] == 2
    assert s[4][:3] == ["pid", "state", "start-time"] and "request-uri" in s[4] and "last-request-memory" in s[4]


def test_sessions(fpmd, workdir):
    sess = os.path.join(workdir, "sess")
    os.mkdir(sess)
    os.chmod(sess, 0o777)
    php(workdir, "s.php", "<?php session_start(); $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1; echo $_SESSION['n'];")
    fpmd.start(basic_conf(workdir, php_pool(workdir, extra=f"php_value[session.save_path] = {sess}\n")))
    r = req(workdir, "/s.php")
    assert r.body == b"1"
    sid = re.search(r"PHPSESSID=([^;]+)", r.headers["set-cookie"]).group(1)
    assert req(workdir, "/s.php", extra={"HTTP_COOKIE": f"PHPSESSID={sid}"}).body == b"2"


def test_php_is_the_default_app_type(fpmd, workdir):
    """A php-fpm pool section (no app.type) runs PHP."""
    php(workdir, "i.php", "<?php echo PHP_MAJOR_VERSION;")
    fpmd.start(basic_conf(workdir, php_pool(workdir, app_line=False)))
    assert req(workdir, "/i.php").body == b"8"
    out = subprocess.run([FPMD, "-T", "-y", f"{workdir}/fpmd.conf"], capture_output=True, text=True)
    assert out.returncode == 0 and "app.type = php" in out.stdout + out.stderr


def test_zygote_death_is_survived(fpmd, workdir):
    php(workdir, "pid.php", "<?php echo getmypid();")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=2)))
    # spawn requests are answered through the master's loop: the workers may follow "ready"
    kids = wait_for(lambda: (lambda k: k if len(k) == 3 else None)(children_of(fpmd.pid)), 5)
    assert kids, children_of(fpmd.pid)
    zygote = [p for p in kids if "zygote" in open(f"/proc/{p}/cmdline").read()][0]
    workers = [p for p in kids if p != zygote]
    os.kill(zygote, signal.SIGKILL)
    fpmd.wait_log(rf"zygote {zygote} exited on signal 9")
    assert req(workdir, "/pid.php").status == 200          # the workers keep serving
    os.kill(workers[0], signal.SIGKILL)
    fpmd.wait_log(r"zygote \d+ restarted")

    def full():
        now = [p for p in children_of(fpmd.pid) if "zygote" not in open(f"/proc/{p}/cmdline").read()]
        return len(now) == 2 and workers[0] not in now
    assert wait_for(full, 10), fpmd.log()
    assert req(workdir, "/pid.php").status == 200


def test_access_log_memory_and_cpu(fpmd, workdir):
    php(workdir, "m.php", "<?php $a = str_repeat('y', 8 * 1024 * 1024); echo strlen($a);")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1, extra=(
        f"access.log = {workdir}/access.log\naccess.format = \"%r %s %M %{{mili}}d %C\"\n"))))
    assert req(workdir, "/m.php").body == b"8388608"
    line = wait_for(lambda: open(f"{workdir}/access.log").read().strip(), 5)
    uri, status, mem, ms, cpu = line.split()
    assert uri.endswith("/m.php") and status == "200"
    # PHP's own peak (zend_memory_peak_usage), not the process RSS
    assert 8 * 1024 * 1024 <= int(mem) < 32 * 1024 * 1024, line
    assert float(ms) > 0


def test_cli_flags_m_and_i(workdir):
    out = subprocess.run([FPMD, "-m"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "[PHP Modules]" in out.stdout and "Core" in out.stdout
    assert "Zend OPcache" in out.stdout
    out = subprocess.run([FPMD, "-n", "-i"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "Server API => fpmd" in out.stdout
    assert "Loaded Configuration File => (none)" in out.stdout


def test_slowlog_has_the_php_stack(fpmd, workdir):
    """php-fpm's slowlog lines, read by the master from the stuck worker's memory."""
    php(workdir, "slow.php", "<?php\nfunction inner() {\n    sleep(3);\n}\nfunction outer() { inner(); }\nouter();\necho 'done';\n")
    slow = os.path.join(workdir, "slow.log")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1, extra=(
        f"request_slowlog_timeout = 1\nslowlog = {slow}\n"))))
    assert req(workdir, "/slow.php").body == b"done"
    text = wait_for(lambda: os.path.exists(slow) and open(slow).read(), 5)
    assert f"script_filename = {workdir}/slow.php" in text
    lines = [l for l in text.splitlines() if re.match(r"^\[0x[0-9a-f]{16}\] \w+\(\) ", l)]
    assert [l.split("] ", 1)[1] for l in lines[:3]] == [
        f"sleep() {workdir}/slow.php:3", f"inner() {workdir}/slow.php:5", f"outer() {workdir}/slow.php:6"], text
    assert "php_execute_script" in text        # and the native stack under it


def test_a_request_path_cannot_forge_slowlog_lines_and_the_script_shown_is_the_resolved_one(fpmd, workdir):
    """nginx's `SCRIPT_FILENAME $document_root$fastcgi_script_name` hands on a decoded
    URI: /slow.php/%0a... put a line of the request's choosing into the root-written
    slowlog.  php-fpm shows the script PHP ran (path info cut off) in the slowlog, the
    status page and %f; so does fpmd."""
    php(workdir, "slow.php", "<?php sleep(2); echo 'done';")
    slow, acc = os.path.join(workdir, "slow.log"), os.path.join(workdir, "access.log")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=2, extra=(
        f"request_slowlog_timeout = 1\nslowlog = {slow}\naccess.log = {acc}\n"
        "access.format = \"%f\"\n"))))
    forged = "\n[07-Dec-2026 21:00:00]  [pool www] pid 1\nscript_filename = /forged.php\nx.php"
    out = {}
    t = threading.Thread(target=lambda: out.update(r=req(workdir, "/slow.php", extra={
        "SCRIPT_FILENAME": f"{workdir}/slow.php/{forged}", "PATH_INFO": forged})))
    t.start()
    time.sleep(0.6)
    st = req(workdir, "/status?full").body.decode()
    t.join(10)
    assert out["r"].body == b"done"
    assert f"script:               {workdir}/slow.php\n" in st, st
    text = wait_for(lambda: os.path.exists(slow) and "php_execute_script" in open(slow).read()
                    and open(slow).read(), 5)
    assert "/forged.php" not in text, text
    assert [line for line in text.splitlines() if line.startswith("script_filename = ")] == [
        f"script_filename = {workdir}/slow.php"]
    assert f"script_filename = {workdir}/slow.php\n" in text
    assert wait_for(lambda: os.path.exists(acc) and
                    f"{workdir}/slow.php" in open(acc).read().splitlines(), 5), open(acc).read()


@pytest.mark.parametrize("sig", [signal.SIGQUIT, signal.SIGUSR2])
def test_a_graceful_stop_or_reload_is_not_held_off_by_kept_requests_after_finish_request(
        fpmd, workdir, sig):
    """nginx with upstream keep-alive sends its next request on a kept connection
    as soon as fastcgi_finish_request() ended the previous one: the worker found
    it waiting and served it without looking at its SIGQUIT (blocked while it
    serves), again and again, so a stop or a reload waited for
    process_control_timeout and then killed the workers (php-fpm8.2: 2 s)."""
    php(workdir, "ffr.php", "<?php echo getmypid(); fastcgi_finish_request(); usleep(200000);")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1),
                          global_extra="process_control_timeout = 10s\n"))
    stop = time.monotonic() + 5
    served, signalled = [], None
    with connect(f"{workdir}/www.sock") as s:
        s.settimeout(10)
        while time.monotonic() < stop:
            try:
                s.sendall(build_request(cgi_params("/ffr.php", workdir), keep=True))
                # a reload's new generation may take seconds to start on a loaded machine
                r = read_records(s, Response(), timeout=10)
            except (OSError, ConnectionError):
                break
            if r.protocol_status is None:
                break
            served.append((time.monotonic(), int(r.body)))
            if signalled is None and len(served) == 3:
                signalled = time.monotonic()
                stop = signalled + 5
                fpmd.signal(sig)
    assert signalled is not None
    old = served[0][1]
    if sig == signal.SIGQUIT:
        # at most the request already sent when the signal came, then the connection is let go
        assert [t for t, _ in served if t > signalled + 0.5] == [], len(served)
        assert fpmd.wait(5) == 0
        assert time.monotonic() - signalled < 3
    else:
        # the kept connection goes on with the new generation's worker
        assert [pid for t, pid in served if t > signalled + 2 and pid == old] == []
        assert [pid for t, pid in served if t > signalled + 2 and pid != old], served
    assert "still running after the graceful" not in fpmd.log()


def test_a_ping_or_status_request_uses_no_memory_of_its_own(fpmd, workdir):
    """No script runs for ping.path or pm.status_path: %M and "last request
    memory" showed the php worker's whole resident set (~100 MiB), so every
    health check was the pool's heaviest request in the access log (php-fpm8.2:
    2 MiB, PHP's first chunk)."""
    php(workdir, "a.php", "<?php $x = str_repeat('x', 4 << 20); echo strlen($x);")
    acc = os.path.join(workdir, "access.log")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1, extra=(
        f"access.log = {acc}\naccess.format = \"%r %M\"\n"))))
    assert req(workdir, "/a.php").body == b"4194304"
    assert req(workdir, "/ping").body == b"pong"
    st = req(workdir, "/status?json&full").body
    assert wait_for(lambda: os.path.exists(acc) and len(open(acc).read().splitlines()) >= 3, 5)
    lines = dict(line.split() for line in open(acc).read().splitlines())
    assert 4 << 20 < int(lines["/a.php"]) < 64 << 20, lines
    assert lines["/ping"] == "0" and lines["/status"] == "0", lines
    procs = json.loads(st)["processes"]
    assert procs[0]["last request memory"] == 0     # its last request was the ping


APCU_SO = "/usr/lib/php/20220829/apcu.so"


@pytest.mark.skipif(not os.path.exists(APCU_SO), reason="php8.2-apcu not installed (scripts/deps.sh test)")
@pytest.mark.parametrize("mode", ["shared", "pool", "worker_boot"])
def test_apcu_locks_hold_between_the_workers_a_zygote_cloned(fpmd, workdir, mode):
    """glibc's process-shared rwlocks check their owner by the thread id glibc
    caches; workers cloned from a zygote kept the zygote's, so one worker's
    lock looked like the next one's own: apcu_store() failed ("Failed to
    acquire write lock") under contention, where php-fpm's workers never fail."""
    php(workdir, "apcu.php", "<?php $fail = 0;\n"
        "$end = microtime(true) + 0.3;\n"
        "for ($i = 0; microtime(true) < $end; $i++) { if (!apcu_store('k' . ($i % 20), $i)) $fail++;"
        " if (apcu_fetch('k' . ($i % 7)) === false && $i > 20) $fail++; }\n"
        "echo json_encode(['fail' => $fail, 'pid' => getmypid()]);")
    php(workdir, "loop.php", "<?php while (fpmd_handle_request(function () {"
        " include $_SERVER['SCRIPT_FILENAME']; })) {}")
    extra = "php_admin_value[apc.enabled] = 1\n"
    extra += {"shared": "php.zygote = shared\n", "pool": "php.zygote = pool\n",
              "worker_boot": f"php.worker = {workdir}/loop.php\nphp.worker_boot = zygote\n"}[mode]
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=4, extra=extra)))
    results, errors = [], []

    def hammer():
        for _ in range(4):
            try:
                r = req(workdir, "/apcu.php", timeout=30)
                results.append((r.status, r.body, r.stderr))
            except Exception as e:            # noqa: BLE001 - reported below
                errors.append(repr(e))
    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 16
    pids = set()
    for status, body, stderr in results:
        assert status == 200 and b"Failed to acquire" not in stderr, (body, stderr)
        d = json.loads(body)
        assert d["fail"] == 0, (d, stderr)
        pids.add(d["pid"])
    assert len(pids) >= 2                     # workers did contend


def titles(pid):
    out = {}
    for p in children_of(pid):
        try:
            out[p] = open(f"/proc/{p}/cmdline").read()
        except OSError:
            pass
    return out


@pytest.mark.parametrize("mode", ["shared", "pool"])
def test_ondemand_pool_starts_php_at_its_first_connection(fpmd, workdir, mode):
    """An idle ondemand php pool costs no process of its own; its zygote starts with the first
    request (per-pool: PHP starts then; shared: cloned from the shared zygote, which is the
    only process there is before)."""
    php(workdir, "pid.php", "<?php echo getmypid();")
    fpmd.start(basic_conf(workdir, php_pool(workdir, pm="ondemand", children=2,
                                            extra=f"php.zygote = {mode}\n")))
    before = titles(fpmd.pid)
    assert not [t for t in before.values() if "pool www" in t], before
    assert len(before) == (1 if mode == "shared" else 0), before
    pid = int(req(workdir, "/pid.php").body)
    kids = children_of(fpmd.pid)
    assert pid in kids
    # per-pool: the pool's zygote started PHP; shared: the worker was cloned from the shared zygote
    assert any("pool www zygote" in open(f"/proc/{p}/cmdline").read() for p in kids) == (mode == "pool")
    assert int(req(workdir, "/pid.php").body) == pid


@pytest.mark.parametrize("mode", ["shared", "pool"])
def test_an_idle_ondemand_pool_lets_its_zygote_go(fpmd, workdir, mode):
    """Issue 22: after pm.process_idle_timeout the last worker leaves, and the pool's zygote
    with it; the next request starts both again."""
    php(workdir, "pid.php", "<?php echo getmypid();")
    fpmd.start(basic_conf(workdir, php_pool(workdir, pm="ondemand", children=2, extra=(
        f"php.zygote = {mode}\npm.process_idle_timeout = 1s\n"))))
    first = int(req(workdir, "/pid.php").body)
    assert wait_for(lambda: not [t for t in titles(fpmd.pid).values() if "pool www" in t], 6), \
        titles(fpmd.pid)
    second = int(req(workdir, "/pid.php").body)
    assert second != first


def test_usr1_reopens_the_access_log_for_php_workers(fpmd, workdir):
    """Workers cloned after a USR1 write to the new file (the zygote is handed the current one)."""
    php(workdir, "a.php", "<?php echo 'a';")
    log = os.path.join(workdir, "access.log")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1,
                                            extra=f"access.log = {log}\naccess.format = \"%r\"\n")))
    assert req(workdir, "/a.php").body == b"a"
    assert wait_for(lambda: "/a.php" in open(log).read(), 5)
    os.rename(log, log + ".1")
    fpmd.signal(signal.SIGUSR1)
    fpmd.wait_log("access log file re-opened")
    assert wait_for(lambda: req(workdir, "/a.php?second").body == b"a" and os.path.exists(log)
                    and "/a.php" in open(log).read(), 5)
    assert "/a.php" in open(log + ".1").read()


# --- the per-request system calls the worker saves (docs/performance.md) ---

def strace_worker(pid, calls, out):
    """strace -f of one worker, only CALLS, into OUT; returns the Popen once attached."""
    p = subprocess.Popen(["strace", "-qq", "-e", "trace=" + ",".join(calls), "-o", out, "-p", str(pid)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)     # strace attaches before it says anything: give it the time
    return p


def strace_stop(p, out):
    p.send_signal(signal.SIGINT)
    p.wait(10)
    with open(out) as f:
        return f.read()


STRACE = pytest.mark.skipif(subprocess.run(["sh", "-c", "command -v strace"], capture_output=True).returncode,
                            reason="strace missing (scripts/deps.sh installs it)")


@STRACE
def test_a_script_seen_this_second_is_not_checked_again(fpmd, workdir):
    """stat() and access() of a script that answered yes are not asked again within the second."""
    php(workdir, "pid.php", "<?php echo getmypid();")
    php(workdir, "t.php", "<?php echo 'ok';")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1, extra=(
        "php_admin_value[max_input_time] = 60\nphp_admin_value[max_execution_time] = 30\n"))))
    pid = int(req(workdir, "/pid.php").body)
    out = os.path.join(workdir, "strace.txt")
    tr = strace_worker(pid, ["stat", "newfstatat", "access", "setitimer"], out)
    t0 = time.time()
    for _ in range(20):
        assert req(workdir, "/t.php").body == b"ok"
    seconds = int(time.time()) - int(t0) + 1           # the seconds the 20 requests spanned
    r = req(workdir, "/t.php", method="POST", body=b"a=1",
            extra={"CONTENT_TYPE": "application/x-www-form-urlencoded"})
    assert r.status == 200
    text = strace_stop(tr, out)
    script = os.path.join(workdir, "t.php")
    stats = [l for l in text.splitlines() if "stat" in l and script in l]
    accesses = [l for l in text.splitlines() if l.startswith("access(") and script in l]
    # ours once per second at most, opcache's every opcache.revalidate_freq, the POST's second
    assert 1 <= len(stats) <= 2 * seconds + 2, text
    assert 1 <= len(accesses) <= seconds + 1, text
    # max_input_time has nothing to time without a body: 2 setitimer() per GET (arm, disarm),
    # 3 for the POST (input, execution, disarm)
    timers = [l for l in text.splitlines() if l.startswith("setitimer(")]
    assert len(timers) == 20 * 2 + 3, text


def test_a_removed_or_unreadable_script_is_seen_within_a_second(fpmd, workdir):
    """The yes is remembered for the second only; a no is never remembered."""
    path = php(workdir, "t.php", "<?php echo 'ok';")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1)))
    assert req(workdir, "/new.php").status == 404
    php(workdir, "new.php", "<?php echo 'new';")
    assert req(workdir, "/new.php").body == b"new"     # found at once: a no is not remembered
    assert req(workdir, "/t.php").body == b"ok"
    os.chmod(path, 0o600)                              # the workers run as nobody
    time.sleep(1.1)
    r = req(workdir, "/t.php")
    assert r.status == 403 and r.body == b"Access denied.\n", r
    # the web server's error log says why, as php-fpm's (fastcgi.logging)
    assert r.stderr == f"Unable to open primary script: {path} (Permission denied)".encode(), r
    os.chmod(path, 0o644)
    assert req(workdir, "/t.php").body == b"ok"
    os.unlink(path)
    time.sleep(1.1)
    r = req(workdir, "/t.php")
    assert r.status == 404 and r.body == b"File not found.\n", r


def test_ini_get_shows_max_input_time_for_a_request_without_body(fpmd, workdir):
    """The request without a body runs with max_input_time = -1 inside; scripts still see the setting."""
    php(workdir, "m.php", "<?php echo ini_get('max_input_time'), ' ', ini_get('max_execution_time');")
    php(workdir, "loop.php", "<?php while (true) {}")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1, extra=(
        "php_admin_value[max_input_time] = 7\nphp_admin_value[max_execution_time] = 1\n"))))
    assert req(workdir, "/m.php").body == b"7 1"
    r = req(workdir, "/m.php", method="POST", body=b"a=1",
            extra={"CONTENT_TYPE": "application/x-www-form-urlencoded"})
    assert r.body == b"7 1"
    r = req(workdir, "/loop.php", timeout=20)          # max_execution_time still ends it
    assert r.status == 500
    assert "Maximum execution time of 1 second" in r.stderr.decode() + fpmd.log()
    assert req(workdir, "/m.php").body == b"7 1"


def test_a_busy_worker_still_sees_quit(fpmd, workdir):
    """A worker under constant load (its queue never empty) still leaves on QUIT."""
    php(workdir, "pid.php", "<?php echo getmypid();")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1)))
    pid = int(req(workdir, "/pid.php").body)
    import threading
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                req(workdir, "/pid.php", timeout=5)
            except OSError:
                pass
    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        os.kill(pid, signal.SIGQUIT)
        fpmd.wait_log(rf"child {pid} exited with code 0", timeout=5)
    finally:
        stop.set()
        for t in threads:
            t.join(10)


def test_fpm_get_status_has_php_fpms_keys_only(fpmd, workdir):
    """php-src's fpm_get_status_basic counts the keys: fpmd's extras (memory peak, pool memory)
    stay on the status page, out of the function's array."""
    php(workdir, "keys.php", "<?php echo implode(',', array_keys(fpm_get_status()));")
    fpmd.start(basic_conf(workdir, php_pool(workdir, extra="pm.max_memory = 512M\n")))
    keys = req(workdir, "/keys.php").body.decode().split(",")
    assert keys == ["pool", "process-manager", "start-time", "start-since", "accepted-conn",
                    "listen-queue", "max-listen-queue", "listen-queue-len", "idle-processes",
                    "active-processes", "total-processes", "max-active-processes",
                    "max-children-reached", "slow-requests", "procs"], keys


def test_a_script_cannot_fork_its_worker(fpmd, workdir):
    """Debian's php-fpm has no pcntl; libphp8.2-embed has it built in.  A
    pcntl_fork() in a script made a second, unsupervised worker that kept the
    pool's socket after the master was gone and wrote into the next client's
    answer on a kept connection (and hung the forking request)."""
    php(workdir, "fork.php", '<?php echo function_exists("pcntl_fork") ? "yes" : "no", "\\n";\n'
        'try { $p = pcntl_fork(); echo "forked $p\\n"; } catch (Error $e) { echo get_class($e), ": ", $e->getMessage(), "\\n"; }\n')
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1)))
    r = req(workdir, "/fork.php", timeout=10)
    assert r.body == b"no\nError: Call to undefined function pcntl_fork()\n", r.body


@pytest.mark.parametrize("boot", ["classic", "worker_zygote"])
def test_a_script_cannot_take_the_workers_stop_signal(fpmd, workdir, boot):
    """pcntl's signal functions stay (libphp8.2-embed has pcntl built in), but a
    script's pcntl_signal(SIGQUIT, ...) took the worker's graceful stop: a stop
    or reload waited for process_control_timeout, and a worker outlived its dead
    master.  SIGQUIT, SIGTERM and the master's call-back signal are fpmd's."""
    php(workdir, "sig.php", "<?php\n"
        "foreach ([SIGQUIT, SIGTERM, SIGRTMIN + 2] as $s) {\n"
        "  try { pcntl_signal($s, SIG_IGN); echo \"took $s\\n\"; }\n"
        "  catch (ValueError $e) { echo \"refused $s\\n\"; } }\n"
        "var_dump(pcntl_signal(SIGUSR1, function () {}));\n"
        "usleep(1500000); echo 'done';\n")
    php(workdir, "loop.php", "<?php while (fpmd_handle_request(function () {"
        " include $_SERVER['SCRIPT_FILENAME']; })) {}")
    extra = (f"php.worker = {workdir}/loop.php\nphp.worker_boot = zygote\n"
             if boot == "worker_zygote" else "")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1, extra=extra),
                          global_extra="process_control_timeout = 10s\n"))
    out = {}
    t = threading.Thread(target=lambda: out.update(r=req(workdir, "/sig.php", timeout=15)))
    t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    fpmd.signal(signal.SIGQUIT)
    t.join(15)
    assert out["r"].body.decode() == (f"refused {signal.SIGQUIT}\nrefused {signal.SIGTERM}\n"
                                      f"refused {signal.SIGRTMIN + 2}\nbool(true)\ndone")
    assert fpmd.wait(8) == 0
    assert time.monotonic() - t0 < 4
    assert "still running after the graceful" not in fpmd.log()


def test_pool_values_are_read_as_php_fpm_reads_them(fpmd, workdir):
    """php-fpm reads php_value[] with PHP's INI scanner: constants and operators
    are evaluated, null and none are empty.  fpmd handed the text over as it
    was: error_reporting = E_ALL & ~E_NOTICE became 0 (every error, fatal ones
    included, silently dropped), default_charset = null the charset "null",
    auto_append_file = none a file to append."""
    php(workdir, "v.php", "<?php echo error_reporting(), '|', ini_get('default_charset'), '|',"
        " ini_get('auto_append_file'), '|', ini_get('include_path'), '|', ini_get('memory_limit'),"
        " '|', ini_get('session.cookie_samesite');")
    fpmd.start(basic_conf(workdir, php_pool(workdir, extra=(
        "php_value[error_reporting] = E_ALL & ~E_NOTICE & ~E_DEPRECATED\n"
        "php_value[default_charset] = null\nphp_admin_value[auto_append_file] = none\n"
        'php_value[include_path] = ".:/usr/share/php"\nphp_admin_value[memory_limit] = 96M\n'
        'php_value[session.cookie_samesite] = "None"\n'))
        + php_pool(workdir, "n", extra="php_value[error_reporting] = 32767 & ~8\n")))
    r = req(workdir, "/v.php")
    # quoted, a literal: "None" stays None (unquoted it would be empty, as in php-fpm)
    assert r.status == 200 and r.body == b"24567|||.:/usr/share/php|96M|None", (r.status, r.body)
    assert "charset=null" not in r.headers.get("content-type", "")
    assert req(workdir, "/v.php", sock="n").body.split(b"|")[0] == b"32759"


def test_php_value_param_is_read_as_php_fpm_reads_it_and_holds_for_the_body(fpmd, workdir):
    """With php.ini_params = all (php-fpm's behaviour) nginx's usual
    `fastcgi_param PHP_VALUE "upload_max_filesize=64M\\npost_max_size=64M"`
    must hold for the request's own body: it was applied after PHP had read
    it (the POST refused while ini_get() said 64M).  Constants are evaluated."""
    php(workdir, "p.php", "<?php echo error_reporting(), '|', ini_get('post_max_size'), '|',"
        " $_POST['a'] ?? '-', '|', strlen($_POST['big'] ?? '');")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1, extra=(
        "php.ini_params = all\nphp_value[post_max_size] = 1M\n"))))
    body = b"a=1&big=" + b"x" * (2 << 20)
    extra = {"PHP_VALUE": "error_reporting=E_ALL & ~E_NOTICE\npost_max_size=4M",
             "CONTENT_TYPE": "application/x-www-form-urlencoded"}
    r = req(workdir, "/p.php", method="POST", body=body, extra=extra, timeout=20)
    assert r.body == b"32759|4M|1|%d" % (2 << 20), r.body[:200]
    # and for this request only
    r = req(workdir, "/p.php", method="POST", body=body,
            extra={"CONTENT_TYPE": "application/x-www-form-urlencoded"}, timeout=20)
    assert r.body.split(b"|")[1:3] == [b"1M", b"-"], r.body[:200]


def test_status_lines_are_php_fpms(fpmd, workdir):
    """PHP's reason phrases, as php-fpm sends them (fpmd knew 15 codes and
    sent "401 Unknown", "303 Unknown"...); a code PHP has no reason for goes
    bare; a 304 carries no Content-Type (a cache would relabel the resource);
    one Status line only."""
    php(workdir, "c.php", "<?php http_response_code((int)$_GET['c']); echo 'b';")
    php(workdir, "auth.php", "<?php header('WWW-Authenticate: Basic realm=\"app\"'); echo 'login';")
    php(workdir, "two.php", "<?php header('Status: 404 A'); header('Status: 500 B', false); echo 'x';")
    fpmd.start(basic_conf(workdir, php_pool(workdir)))

    def status_line(uri):
        r = req(workdir, uri)
        return [ln for ln in r.stdout.split(b"\r\n") if ln.lower().startswith(b"status:")], r

    assert status_line("/c.php?c=401")[0] == [b"Status: 401 Unauthorized"]
    assert status_line("/c.php?c=303")[0] == [b"Status: 303 See Other"]
    assert status_line("/c.php?c=429")[0] == [b"Status: 429 Too Many Requests"]
    assert status_line("/c.php?c=422")[0] == [b"Status: 422"]
    assert status_line("/auth.php")[0] == [b"Status: 401 Unauthorized"]
    lines, r = status_line("/c.php?c=304")
    assert lines == [b"Status: 304 Not Modified"] and "content-type" not in r.headers, r.stdout
    assert status_line("/two.php")[0] == [b"Status: 404 A"]


def test_user_and_home_are_the_pool_users_as_php_fpm_sets_them(fpmd, workdir):
    """php-fpm sets USER and HOME to the pool's user in its workers (after
    env[]); fpmd left them out, or with clear_env = no left root's HOME,
    where a program a script runs (git, ssh) then looked."""
    import pwd
    php(workdir, "e.php", "<?php echo getenv('USER'), '|', getenv('HOME'), '|', $_SERVER['USER'] ?? '-';")
    fpmd.start(basic_conf(workdir, php_pool(workdir) + php_pool(workdir, "keep", extra="clear_env = no\n")))
    home = pwd.getpwnam("nobody").pw_dir
    assert req(workdir, "/e.php").body == f"nobody|{home}|nobody".encode()
    assert req(workdir, "/e.php", sock="keep").body == f"nobody|{home}|nobody".encode()


def test_stdin_is_dev_null_as_in_php_fpm(fpmd, workdir):
    """fd 0 was the pool's listening socket: php://stdin waited for
    default_socket_timeout (nginx: 504 at 60 s), and a program a script ran
    found its stdin closed ("Bad file descriptor").  php-fpm gives /dev/null."""
    php(workdir, "in.php", "<?php $t = microtime(true); $x = file_get_contents('php://stdin');"
        " echo var_export($x, true), ' ', microtime(true) - $t < 1 ? 'fast' : 'slow', ' ',"
        " trim(shell_exec('cat; echo rc=$?'));")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1,
                                            extra="php_admin_value[default_socket_timeout] = 3\n")))
    assert req(workdir, "/in.php", timeout=10).body == b"'' fast rc=0"
    assert req(workdir, "/in.php", timeout=10).body == b"'' fast rc=0"   # and the pool still accepts


def test_user_ini_lookup_follows_document_root_as_php_fpm(fpmd, workdir):
    """php-fpm reads every .user.ini from DOCUMENT_ROOT down to the script's
    directory; with a root of "/" that is every directory from "/", without
    DOCUMENT_ROOT none.  fpmd read only the script's own in both cases."""
    from conftest import Response, build_request, cgi_params, connect, read_records
    sub = os.path.join(workdir, "a")
    os.makedirs(sub)
    with open(os.path.join(workdir, ".user.ini"), "w") as f:
        f.write("memory_limit = 99M\n")
    with open(os.path.join(sub, ".user.ini"), "w") as f:
        f.write("precision = 8\n")
    php(sub, "p.php", "<?php echo ini_get('precision'), ' ', ini_get('memory_limit');")
    fpmd.start(basic_conf(workdir, php_pool(workdir, extra="php_value[memory_limit] = 128M\n")))
    r = fcgi_request(f"{workdir}/www.sock", f"{sub}/p.php", root="/")
    assert r.body == b"8 99M", r.body
    params = cgi_params("/a/p.php", workdir)
    del params["DOCUMENT_ROOT"]
    with connect(f"{workdir}/www.sock") as s:
        s.sendall(build_request(params))
        r = read_records(s, Response())
    assert r.body.split()[0] != b"8" and r.body.split()[1] == b"128M", r.body


def test_programs_a_script_runs_do_not_inherit_an_ignored_sigint(fpmd, workdir):
    """Workers ignored SIGINT (so a Ctrl-C is the master's to act on), and an
    ignored signal stays ignored across exec: proc_terminate($p, SIGINT) could
    not stop what a script started.  php-fpm's children have only SIGPIPE ignored."""
    php(workdir, "sig.php", "<?php $p = proc_open(['sleep', '5'], [], $pipes); usleep(200000);"
        " proc_terminate($p, 2); usleep(300000); $s = proc_get_status($p);"
        " echo $s['running'] ? 'running' : 'stopped', ' ';"
        " echo trim(shell_exec('grep ^SigIgn /proc/self/status'));")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1)))
    body = req(workdir, "/sig.php", timeout=10).body.decode()
    assert body.startswith("stopped "), body
    ignored = int(body.split()[-1], 16)
    assert not ignored & (1 << 1), body          # bit 1: SIGINT



def test_access_log_r_is_the_request_uri_not_the_script(fpmd, workdir):
    """docs/php.md: %r is the request's URI (php-fpm logs the script's name,
    /index.php for every request of a front controller)."""
    php(workdir, "index.php", "<?php echo 'i';")
    log = os.path.join(workdir, "access.log")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1,
                                            extra=f"access.log = {log}\naccess.format = \"%r\"\n")))
    r = req(workdir, "/index.php", extra={"REQUEST_URI": "/pretty/url?x=1"})
    assert r.body == b"i"
    assert wait_for(lambda: os.path.exists(log) and "/pretty/url" in open(log).read(), 5), open(log).read()
    assert "index.php" not in open(log).read()


def test_a_refused_php_value_is_said_once_per_pool_with_its_line(fpmd, workdir):
    """php_value[] that PHP refuses or does not know: one warning each, naming
    the file and line, not one per worker (the shared zygote's workers each
    apply the pool's values), and the workers still serve."""
    php(workdir, "ml.php", "<?php echo ini_get('memory_limit');")
    extra = "php_admin_value[memory_limit] = 128MB\nphp_value[memory_limt] = 64M\n"
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=3, extra=extra)))
    assert req(workdir, "/ml.php").status == 200
    conf = fpmd.conf_path
    refused = f"[pool www] [{conf}:13] php_admin_value[memory_limit] = '128MB' was refused by PHP"
    unknown = f"[pool www] [{conf}:14] php_value[memory_limt]: PHP has no such setting"
    fpmd.wait_log(re.escape(refused))
    fpmd.wait_log(re.escape(unknown))
    # every worker has started (and applied the values) before the count
    assert wait_for(lambda: len(fpmd.workers()) >= 3)
    for _ in range(6):
        req(workdir, "/ml.php")
    log = fpmd.log()
    assert log.count(refused) == 1, log
    assert log.count(unknown) == 1, log


def test_output_after_finish_request_aborts_as_in_php_fpm(fpmd, workdir):
    """Output after fastcgi_finish_request() goes nowhere: php-fpm's write fails,
    the connection is aborted (connection_status() 1) and the script ends,
    unless ignore_user_abort(true).  fpmd dropped the output and went on,
    connection_status() 0."""
    marks = os.path.join(workdir, "marks")
    os.makedirs(marks)
    os.chmod(marks, 0o777)
    php(workdir, "ffr.php", "<?php if (isset($_GET['iua'])) ignore_user_abort(true);\n"
        "echo 'answered'; fastcgi_finish_request();\n"
        "echo str_repeat('x', 200000); flush();\n"
        f"file_put_contents('{marks}/' . ($_GET['iua'] ?? 'plain'), connection_status());\n")
    fpmd.start(basic_conf(workdir, php_pool(workdir)))
    assert req(workdir, "/ffr.php").body == b"answered"
    assert req(workdir, "/ffr.php?iua=1").body == b"answered"
    assert wait_for(lambda: os.path.exists(f"{marks}/1"), 5)
    assert open(f"{marks}/1").read() == "1"               # aborted, and went on
    time.sleep(0.3)
    assert not os.path.exists(f"{marks}/plain")           # ended at its first output
    assert req(workdir, "/ffr.php").body == b"answered"   # the worker serves on


def test_fcgi_role_and_the_denied_script_reach_php_and_nginx_as_in_php_fpm(fpmd, workdir):
    """$_SERVER['FCGI_ROLE'] and getenv('FCGI_ROLE') are RESPONDER, as php-fpm's
    FastCGI layer sets; a script security.limit_extensions refuses is named in
    the line the web server logs (nginx's error log), not only in fpmd's."""
    php(workdir, "role.php", "<?php echo $_SERVER['FCGI_ROLE'] ?? '-', ' ', getenv('FCGI_ROLE');")
    php(workdir, "notes.txt", "<?php echo 'RAN';")
    fpmd.start(basic_conf(workdir, php_pool(workdir)))
    assert req(workdir, "/role.php").body == b"RESPONDER RESPONDER"
    r = req(workdir, "/notes.txt")
    assert r.status == 403 and b"RAN" not in r.stdout
    assert (f"Access to the script '{workdir}/notes.txt' has been denied (see "
            "security.limit_extensions)").encode() in r.stderr, r.stderr


def test_php_fpms_own_settings_are_there(fpmd, workdir):
    """ini_get() of php-fpm's SAPI settings gives php-fpm8.2's values, not false (nobody
    registered them): applications and their setup checks read them."""
    php(workdir, "ini.php", "<?php echo json_encode(array_map('ini_get', ['cgi.fix_pathinfo',"
        " 'cgi.discard_path', 'fastcgi.logging', 'cgi.force_redirect', 'cgi.nph',"
        " 'cgi.redirect_status_env', 'cgi.rfc2616_headers', 'fpm.config']));")
    fpmd.start(basic_conf(workdir, php_pool(workdir)))
    r = req(workdir, "/ini.php")
    assert r.status == 200, r.stdout
    # php-fpm8.2 with Debian's php.ini (cgi.fix_pathinfo is commented out there)
    assert json.loads(r.body) == ["1", "0", "1", "1", "0", "", "0", ""], r.body


def test_output_goes_out_once_a_records_worth_is_there(fpmd, workdir):
    """php-fpm sends its 8 KiB output buffer when it is full: a page that prints its head
    and then works shows the head at once.  fpmd held up to 64 KiB until the script's end
    (a progress page or an export showed nothing until then)."""
    import struct
    php(workdir, "slow.php", "<?php\nfor ($i = 0; $i < 3; $i++) { echo str_repeat('z', 10000), \"\\n\";"
        " usleep(700000); }\n")
    fpmd.start(basic_conf(workdir, php_pool(workdir)))
    s = connect(f"{workdir}/www.sock", timeout=5)
    t0 = time.monotonic()
    s.sendall(build_request(cgi_params("/slow.php", workdir)))
    got, first = b"", None
    s.settimeout(5)
    while True:
        h = b""
        while len(h) < 8:
            h += s.recv(8 - len(h))
        _, typ, _, clen, plen = struct.unpack(">BBHHB", h[:7])
        body = b""
        while len(body) < clen + plen:
            body += s.recv(clen + plen - len(body))
        if typ == 6 and clen:
            got += body[:clen]
            if first is None and got.count(b"z") >= 8192:
                first = time.monotonic() - t0
        if typ == 3:
            break
    s.close()
    assert got.count(b"z") == 30000
    assert first is not None and first < 0.5, f"the first 8 KiB came after {first:.2f} s"
