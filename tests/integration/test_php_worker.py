"""php.worker (issue 23): the application boots once and loops over requests
(fpmd_handle_request / frankenphp_handle_request), in each worker
(php.worker_boot = worker) or once in the pool's zygote, every worker a fork
of the booted state (php.worker_boot = zygote).

What a handled request must see of its own only: superglobals, body,
uploads, headers, status, output buffers, ini_set(), shutdown functions,
session.  What a fork must not share: random number state.  What persists in
loop mode (globals, statics: the point of it) is documented (docs/php.md).
"""
import json
import os
import signal
import time

import pytest

from conftest import (basic_conf, build_request, children_of, connect, fcgi_request, read_records,
                      Response, wait_for, write_script)
from test_php import PHP_SO, php_pool

pytestmark = [pytest.mark.skipif(not os.path.exists(PHP_SO), reason="fpmd-php.so not built")]

# The test application: reports what its request sees, does what ?a= asks.
APP = r"""<?php
$boot = getmypid();
$n = 0;
function bump() { static $s = 0; return ++$s; }
$handler = function () use (&$n, $boot) {
    $n++;
    $out = [
        'pid' => getmypid(), 'boot' => $boot, 'n' => $n, 'static' => bump(),
        'get' => $_GET, 'post' => $_POST, 'cookie' => $_COOKIE, 'request' => $_REQUEST,
        'files' => array_map(fn($f) => ['name' => $f['name'], 'size' => $f['size'],
                                        'tmp' => $f['tmp_name']], $_FILES),
        'input' => file_get_contents('php://input'), 'ob' => ob_get_level(),
        'precision' => ini_get('precision'), 'headers' => headers_list(),
        'code' => http_response_code(), 'uri' => $_SERVER['REQUEST_URI'] ?? null,
        'self' => $_SERVER['PHP_SELF'] ?? null, 'script' => $_SERVER['SCRIPT_FILENAME'] ?? null,
        'session' => $_SESSION ?? null, 'session_status' => session_status(),
        'mt' => [mt_rand(), mt_rand(), rand()], 'ri' => random_int(0, PHP_INT_MAX),
        'lcg' => lcg_value(), 'mem' => memory_get_usage(),
        'fi' => filter_input(INPUT_GET, 'i'), 'fs' => filter_input(INPUT_SERVER, 'HTTP_X_ONCE'),
        'auth' => [$_SERVER['PHP_AUTH_USER'] ?? null, $_SERVER['PHP_AUTH_PW'] ?? null],
    ];
    switch ($_GET['a'] ?? '') {
    case 'header': header('X-Leak: 1'); http_response_code(202); break;
    case 'ob': ob_start(); echo 'buffered-'; break;
    case 'ini': ini_set('precision', '5'); $out['precision'] = ini_get('precision'); break;
    case 'shutdown':
        register_shutdown_function(function () { error_log('shutdown function ran in ' . getmypid()); });
        break;
    case 'cookie': setcookie('c', 'v'); break;
    case 'session': session_start(); $_SESSION['who'] = $_GET['who'] ?? 'x'; $out['sid'] = session_id(); break;
    case 'resume': session_start(); $out['session'] = $_SESSION; break;
    case 'global': $GLOBALS['leak'] = 'from ' . getmypid(); break;
    case 'fatal': undefined_function(); break;
    case 'throw': throw new RuntimeException('thrown by the handler');
    case 'exit': echo json_encode($out); exit(0);
    case 'finish': echo json_encode($out); fastcgi_finish_request(); usleep(300000); return;
    case 'spin': $end = microtime(true) + 5; while (microtime(true) < $end) {} break;
    case 'sleep': sleep((int)($_GET['s'] ?? 3)); break;
    }
    $out['leak'] = $GLOBALS['leak'] ?? null;
    echo json_encode($out);
};
while (fpmd_handle_request($handler)) {
    gc_collect_cycles();
}
"""


def worker_pool(workdir, boot="worker", children=1, extra="", script="app.php", name="www"):
    return php_pool(workdir, name=name, children=children,
                    extra=f"php.worker = {workdir}/{script}\nphp.worker_boot = {boot}\n"
                          "php_admin_value[session.save_path] = /tmp\n"
                          "php_admin_value[upload_tmp_dir] = /tmp\n" + extra)


def start(fpmd, workdir, boot="worker", children=1, extra="", app=APP, pools=None):
    if boot == "zygote1":                # a pristine fork of the booted app per request
        boot, extra = "zygote", extra + "pm.max_requests = 1\n"
    write_script(os.path.join(workdir, "app.php"), app, 0o644)
    fpmd.start(basic_conf(workdir, pools if pools is not None else
                          worker_pool(workdir, boot, children, extra)))


def get(workdir, uri="/index.php", sock="www", **kw):
    r = fcgi_request(f"{workdir}/{sock}.sock", uri, root=workdir, **kw)
    return r


def seen(r):
    assert r.status in (200, 202), (r.status, r.stdout, r.stderr)
    body = r.body
    return json.loads(body[body.index(b"{"):])


def multipart(fields, files):
    bnd = "----fpmdtest"
    out = b""
    for k, v in fields.items():
        out += (f"--{bnd}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").encode()
    for k, (name, data) in files.items():
        out += (f"--{bnd}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{bnd}--\r\n".encode()
    return out, f"multipart/form-data; boundary={bnd}"


BOOTS = ["worker", "zygote"]
ALL_BOOTS = BOOTS + ["zygote1"]          # zygote1: php.worker_boot = zygote, pm.max_requests = 1
ISOLATED = "pm.max_requests = 1\n"     # zygote boot: every request from the pristine booted state


# --- the loop ----------------------------------------------------------------

@pytest.mark.parametrize("boot", BOOTS)
def test_one_boot_serves_many_requests(fpmd, workdir, boot):
    start(fpmd, workdir, boot)
    a, b, c = (seen(get(workdir, f"/index.php?i={i}")) for i in range(3))
    assert [a["get"], b["get"], c["get"]] == [{"i": "0"}, {"i": "1"}, {"i": "2"}]
    assert a["pid"] == b["pid"] == c["pid"]
    assert [a["n"], b["n"], c["n"]] == [1, 2, 3]         # the booted app persists: the point
    if boot == "worker":
        assert a["boot"] == a["pid"]                     # booted in the worker itself
    else:
        assert a["boot"] != a["pid"]                     # booted in the zygote, forked
        zygotes = [p for p in children_of(fpmd.pid) if "zygote" in open(f"/proc/{p}/cmdline").read()]
        assert a["boot"] in zygotes
    assert a["script"] == f"{workdir}/index.php" and a["self"] == "/index.php"


def test_frankenphps_other_function_names(fpmd, workdir):
    """A worker script written for FrankenPHP also calls frankenphp_request_headers(),
    frankenphp_response_headers() and frankenphp_finish_request()."""
    app = r"""<?php
while (frankenphp_handle_request(function () {
    header('X-One: 1');
    header('Set-Cookie: a=b', false);
    echo json_encode(['req' => frankenphp_request_headers()['X-Probe'] ?? null,
                      'resp' => frankenphp_response_headers(),
                      'same' => apache_response_headers() === frankenphp_response_headers()]);
    frankenphp_finish_request();
    echo 'after the finish';
})) {}
"""
    start(fpmd, workdir, app=app)
    r = get(workdir, "/", extra={"HTTP_X_PROBE": "p"})
    d = json.loads(r.body[:r.body.rindex(b"}") + 1])
    assert d["req"] == "p"
    assert d["resp"]["X-One"] == "1" and d["resp"]["Set-Cookie"] == "a=b", d
    assert d["same"] is True and b"after the finish" not in r.body


def test_frankenphp_name_and_classic_scripts_do_not_have_it(fpmd, workdir):
    """A classic pool has no request loop functions, as php-fpm: a front
    controller that picks its worker loop by function_exists() must take the
    classic path there (it took the loop and answered 500)."""
    app = APP.replace("while (fpmd_handle_request(", "while (frankenphp_handle_request(")
    write_script(os.path.join(workdir, "classic.php"),
                 "<?php var_export([function_exists('fpmd_handle_request'),"
                 " function_exists('frankenphp_handle_request'),"
                 " function_exists('frankenphp_finish_request'),"
                 " function_exists('frankenphp_request_headers'),"
                 " function_exists('frankenphp_response_headers'),"
                 " function_exists('chroot'), function_exists('fastcgi_finish_request')]);", 0o644)
    start(fpmd, workdir, app=app, pools=worker_pool(workdir) + php_pool(workdir, name="classic"))
    assert seen(get(workdir, "/x?k=1"))["get"] == {"k": "1"}
    r = get(workdir, "/classic.php", sock="classic")
    # none of FrankenPHP's names, nor the embed SAPI's chroot(), as php-fpm; its own are there
    assert r.body.replace(b"\n", b"").replace(b" ", b"") == (
        b"array(0=>false,1=>false,2=>false,3=>false,4=>false,5=>false,6=>true,)"), r.body


def test_keep_alive_connection_carries_several_handled_requests(fpmd, workdir):
    from conftest import cgi_params
    start(fpmd, workdir)
    with connect(f"{workdir}/www.sock") as s:
        pids = []
        for i in range(3):
            s.sendall(build_request(cgi_params(f"/k.php?i={i}", workdir), keep=True, req_id=i + 1))
            r = read_records(s, Response())
            d = seen(r)
            assert d["get"] == {"i": str(i)}
            pids.append(d["pid"])
    assert len(set(pids)) == 1


def test_ping_and_status_are_answered_by_a_worker_in_the_loop(fpmd, workdir):
    start(fpmd, workdir)
    seen(get(workdir, "/a.php"))
    assert get(workdir, "/ping").body == b"pong"
    st = get(workdir, "/status?json&full")
    d = json.loads(st.body)
    assert d["accepted conn"] >= 2
    assert d["processes"][0]["requests"] >= 1


# --- isolation: loop mode ------------------------------------------------------

@pytest.mark.parametrize("boot", ALL_BOOTS)
def test_superglobals_headers_status_buffers_and_body_are_per_request(fpmd, workdir, boot):
    start(fpmd, workdir, boot)
    base = seen(get(workdir, "/index.php"))["ob"]          # output_buffering's own (php.ini)
    r = get(workdir, "/index.php?a=header")
    assert r.status == 202 and r.headers.get("x-leak") == "1"
    r = get(workdir, "/index.php?a=ob")
    assert r.body.startswith(b"buffered-{")               # the open buffer was flushed at the end
    assert seen(r)["ob"] == base
    r = get(workdir, "/index.php?a=cookie", extra={"HTTP_COOKIE": "in=1"})
    assert seen(r)["cookie"] == {"in": "1"} and "c=v" in r.headers.get("set-cookie", "")
    body = b"p=1&q=two"
    r = get(workdir, "/index.php", method="POST", body=body,
            extra={"CONTENT_TYPE": "application/x-www-form-urlencoded"})
    d = seen(r)
    assert d["post"] == {"p": "1", "q": "two"} and d["request"] == {"p": "1", "q": "two"}
    r = get(workdir, "/index.php", method="PUT", body=b"raw body")
    assert seen(r)["input"] == "raw body"
    after = get(workdir, "/index.php?z=1")
    d = seen(after)
    assert after.status == 200 and "x-leak" not in after.headers
    assert "set-cookie" not in after.headers
    assert d["get"] == {"z": "1"} and d["post"] == [] and d["cookie"] == [] and d["input"] == ""
    assert d["request"] == {"z": "1"} and d["ob"] == base and d["code"] == 200
    assert d["headers"] == [] or all("X-Leak" not in h for h in d["headers"])


def test_memory_stays_flat_over_many_handled_requests_and_filter_input_is_per_request(fpmd, workdir):
    """ext/filter's raw copies of the request variables (filter_input()) were reset by each
    activation without being freed: 3.4 KB lost per request, until memory_limit killed the
    worker, and filter_input() answered from an earlier request."""
    from conftest import cgi_params
    start(fpmd, workdir)
    first = seen(get(workdir, "/?i=1", extra={"HTTP_X_ONCE": "yes"}))
    assert first["fi"] == "1" and first["fs"] == "yes"
    d = seen(get(workdir, "/?z=1"))
    assert d["fi"] is None and d["fs"] is None
    body = b"b" * 20000                      # php://input's stream holds it: freed with its request
    with connect(f"{workdir}/www.sock") as s:
        for i in range(2000):
            post = i % 2 == 0
            p = cgi_params(f"/m.php?i={i}", workdir, "POST" if post else "GET", body if post else b"")
            s.sendall(build_request(p, body if post else b"", keep=True, req_id=1))
            r = read_records(s, Response())
            assert len(seen(r)["input"]) == (20000 if post else 0)
        assert seen(r)["fi"] == "1999"
    last = seen(get(workdir, "/?z=1"))
    assert last["pid"] == first["pid"]
    assert last["mem"] - d["mem"] < 64 * 1024, (d["mem"], last["mem"])


@pytest.mark.parametrize("boot", ALL_BOOTS)
def test_posts_of_any_type_and_credentials_one_after_another(fpmd, workdir, boot):
    """A POST body of a type PHP does not parse, then any request: the worker died
    (SIGSEGV) on the second, freeing the first one's content type again."""
    start(fpmd, workdir, boot)
    pid = seen(get(workdir, "/"))["pid"]
    creds = {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}     # user:pass
    for i in range(4):
        d = seen(get(workdir, f"/?i={i}", method="POST", body=b"opaque %d" % i,
                     extra=creds if i == 1 else None))
        assert d["input"] == "opaque %d" % i and d["post"] == []
        assert d["auth"] == (["user", "pass"] if i == 1 else [None, None])
    d = seen(get(workdir, "/"))
    assert d["auth"] == [None, None]
    if boot == "worker":
        assert d["pid"] == pid
    assert "SIGSEGV" not in fpmd.log()


@pytest.mark.parametrize("boot", ALL_BOOTS)
def test_uploads_are_per_request_and_their_files_removed(fpmd, workdir, boot):
    start(fpmd, workdir, boot)
    body, ctype = multipart({"f": "v"}, {"up": ("a.txt", b"x" * 1000)})
    d = seen(get(workdir, "/u.php", method="POST", body=body, extra={"CONTENT_TYPE": ctype}))
    assert d["post"] == {"f": "v"} and d["files"]["up"]["name"] == "a.txt"
    assert d["files"]["up"]["size"] == 1000
    tmp = d["files"]["up"]["tmp"]
    assert wait_for(lambda: not os.path.exists(tmp), 2), f"{tmp} left behind"
    assert seen(get(workdir, "/u.php"))["files"] == []


@pytest.mark.parametrize("boot", ALL_BOOTS)
def test_ini_set_and_shutdown_functions_end_with_their_request(fpmd, workdir, boot):
    start(fpmd, workdir, boot)
    assert seen(get(workdir, "/?a=ini"))["precision"] == "5"
    assert seen(get(workdir, "/"))["precision"] == "14"
    r = get(workdir, "/?a=shutdown")
    assert b"shutdown function ran" in r.stderr            # at the end of its own request
    r2 = get(workdir, "/")
    assert b"shutdown function ran" not in r2.stderr       # and never again


@pytest.mark.parametrize("boot", ALL_BOOTS)
def test_a_session_is_not_handed_to_the_next_client(fpmd, workdir, boot):
    start(fpmd, workdir, boot)
    r = get(workdir, "/?a=session&who=alice")
    d = seen(r)
    assert d["session_status"] == 1 and d["sid"]
    cookie = r.headers["set-cookie"].split(";")[0]
    other = seen(get(workdir, "/?a=resume"))                # no cookie: a new, empty session
    assert other["session"] == [] and other["session_status"] == 1
    assert seen(get(workdir, "/"))["session"] is None        # no $_SESSION left over
    mine = seen(get(workdir, "/?a=resume", extra={"HTTP_COOKIE": cookie}))
    assert mine["session"] == {"who": "alice"}               # the cookie's own session, written


# --- isolation: zygote boot with pm.max_requests = 1 ------------------------------

def test_zygote_boot_every_request_starts_from_the_booted_state(fpmd, workdir):
    start(fpmd, workdir, "zygote", children=2, extra=ISOLATED)
    first = seen(get(workdir, "/?a=global"))
    nxt = [seen(get(workdir, f"/?i={i}")) for i in range(4)]
    for d in nxt:
        assert d["n"] == 1 and d["static"] == 1 and d["leak"] is None
        assert d["boot"] == first["boot"]
    assert len({d["pid"] for d in [first] + nxt}) == 5


def test_zygote_boot_forks_draw_different_random_numbers(fpmd, workdir):
    start(fpmd, workdir, "zygote", children=2, extra=ISOLATED)
    draws = [seen(get(workdir, "/")) for _ in range(4)]
    assert len({d["pid"] for d in draws}) == 4
    assert len({tuple(d["mt"]) for d in draws}) == 4
    assert len({d["ri"] for d in draws}) == 4
    assert len({d["lcg"] for d in draws}) == 4


def test_zygote_boot_with_max_requests_n_replaces_after_n(fpmd, workdir):
    start(fpmd, workdir, "zygote", children=1, extra="pm.max_requests = 3\n")
    pids = [seen(get(workdir, "/"))["pid"] for _ in range(6)]
    assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] == pids[5]


AFTER_APP = r"""<?php
$handler = function () { echo json_encode(['pid' => getmypid()]); };
do {
    $more = fpmd_handle_request($handler);
    // FrankenPHP's Symfony runner calls $kernel->terminate() here, outside
    // the handler: kernel.terminate's listeners (a mail spool, a log buffer)
    file_put_contents(__DIR__ . '/after/log', getmypid() . ' ' . ($more ? 1 : 0) . "\n",
                      FILE_APPEND);
} while ($more);
"""


@pytest.mark.parametrize("boot", ALL_BOOTS)
def test_the_scripts_code_after_each_handled_request_runs_even_after_the_last(fpmd, workdir, boot):
    # a fork that leaves at its last request must not skip what the runner
    # does after the request returned (terminate listeners), to save a fork's pages
    os.makedirs(os.path.join(workdir, "after"))
    os.chmod(os.path.join(workdir, "after"), 0o777)
    start(fpmd, workdir, boot, extra="pm.max_requests = 2\n" if boot == "zygote" else "",
          app=AFTER_APP)
    pids = [seen(get(workdir, "/"))["pid"] for _ in range(4)]
    log = os.path.join(workdir, "after", "log")
    wait_for(lambda: sum(1 for line in open(log) if line.endswith(" 1\n")) == 4
             if os.path.exists(log) else False, timeout=5)
    ran = [int(line.split()[0]) for line in open(log) if line.endswith(" 1\n")]
    assert sorted(ran) == sorted(pids)


# --- the app zygote and the shared PHP (php.zygote) ------------------------------

CACHED_APP = r"""<?php
$handler = function () {
    echo json_encode(['pid' => getmypid(), 'ppid' => posix_getppid(),
                      'cached' => opcache_is_script_cached($_GET['f'] ?? '')]);
};
while (fpmd_handle_request($handler)) {}
"""


def titles_of(master):
    out = {}
    for p in children_of(master):
        try:
            out[p] = open(f"/proc/{p}/cmdline").read().replace("\0", " ")
        except OSError:
            pass
    return out


@pytest.mark.parametrize("php_zygote", ["shared", "pool"])
def test_zygote_boot_app_zygote_comes_from_the_shared_php(fpmd, workdir, php_zygote):
    """With php.zygote = shared (the default) a pool that boots in its zygote
    gets an app zygote cloned from the shared PHP zygote: PHP's start-up and
    opcache are the other pools' (a script one compiled is cached for it);
    with pool it starts PHP of its own, opcache too."""
    fresh = "php_admin_value[opcache.file_update_protection] = 0\n"
    write_script(os.path.join(workdir, "app.php"), CACHED_APP, 0o644)
    write_script(os.path.join(workdir, "warm.php"), "<?php echo 'warm';", 0o644)
    fpmd.start(basic_conf(workdir, worker_pool(workdir, "zygote", extra=fresh + ISOLATED +
                                               f"php.zygote = {php_zygote}\n")
                          + php_pool(workdir, name="classic", children=1, extra=fresh)))
    assert fcgi_request(f"{workdir}/classic.sock", "/warm.php", root=workdir).body == b"warm"
    d = seen(get(workdir, f"/?f={workdir}/warm.php"))
    assert d["cached"] is (php_zygote == "shared"), d
    assert d["ppid"] == fpmd.pid                        # every process is the master's child
    titles = titles_of(fpmd.pid)
    assert sum("php zygote (shared)" in t for t in titles.values()) == 1, titles
    assert sum("pool www zygote" in t for t in titles.values()) == 1, titles


def test_the_app_zygote_cloned_from_the_shared_one_survives_either_dying(fpmd, workdir):
    """The app zygote is the master's child, not the shared zygote's: the shared
    one dying leaves it serving; it dying is seen by the master, and a new one
    is cloned from the shared PHP (whose restart it waits for if need be)."""
    start(fpmd, workdir, "zygote", children=1, extra=ISOLATED)
    titles = titles_of(fpmd.pid)
    shared = [p for p, t in titles.items() if "php zygote (shared)" in t][0]
    app = [p for p, t in titles.items() if "pool www zygote" in t][0]
    os.kill(shared, signal.SIGKILL)
    fpmd.wait_log(r"shared PHP zygote \d+ exited on signal 9")
    assert [seen(get(workdir, "/"))["boot"] for _ in range(3)] == [app] * 3
    fpmd.wait_log(r"shared PHP zygote \d+ restarted", timeout=10)
    os.kill(app, signal.SIGKILL)
    fpmd.wait_log(rf"zygote {app} exited on signal 9")
    fresh = wait_for(lambda: [p for p, t in titles_of(fpmd.pid).items()
                              if "pool www zygote" in t and p != app], 10)
    assert fresh, titles_of(fpmd.pid)
    boots = wait_for(lambda: (lambda b: b if b != app else None)(seen(get(workdir, "/"))["boot"]), 10)
    assert boots == fresh[0]
    assert "not a new child" not in fpmd.log()


def test_an_app_zygote_that_dies_at_once_is_asked_again_not_blamed_on_the_shared_one(fpmd, workdir):
    """A clone that dies before the master read the shared zygote's answer
    (its chdir is gone) is reaped as nobody's first: the answer naming it is a
    failed start, retried with the back-off, not the shared zygote lying."""
    home = os.path.join(workdir, "home")
    os.mkdir(home)
    os.chmod(home, 0o755)
    start(fpmd, workdir, "zygote", children=1, extra=f"chdir = {home}\n")
    app = [p for p, t in titles_of(fpmd.pid).items() if "pool www zygote" in t][0]
    served_by = seen(get(workdir, "/"))["pid"]
    os.rmdir(home)
    os.kill(app, signal.SIGKILL)
    fpmd.wait_log(rf"zygote {app} exited on signal 9")
    fpmd.wait_log(r"failed to chdir", timeout=10)
    time.sleep(1)
    assert seen(get(workdir, "/"))["pid"] == served_by        # its worker keeps serving
    os.mkdir(home)
    os.chmod(home, 0o755)
    assert wait_for(lambda: [p for p, t in titles_of(fpmd.pid).items()
                             if "pool www zygote" in t], 15)
    log = fpmd.log()
    assert "not a new child" not in log and "shared PHP zygote" not in log, log
    assert fpmd.proc.poll() is None


FD_APP = r"""<?php
$f = fopen(__DIR__ . '/boot.out', 'a');            // opened at boot: each fork's own copy
$handler = function () use ($f) {
    fwrite($f, "APP-LINE\n");
    echo json_encode(['pid' => getmypid()]);
};
while (fpmd_handle_request($handler)) {}
"""


@pytest.mark.parametrize("php_zygote", ["shared", "pool"])
def test_a_file_the_boot_opens_is_not_the_access_log_in_the_forks(fpmd, workdir, php_zygote):
    """A clone puts the pool's access log at its descriptor 5: the app zygote
    keeps 5 taken, or a boot whose script opcache already holds (so PHP opens
    no file for it) gets 5 for its own first file, and every fork would write
    the application's lines into the access log."""
    write_script(os.path.join(workdir, "app.php"), FD_APP, 0o644)
    out = os.path.join(workdir, "boot.out")
    open(out, "w").close()
    os.chmod(out, 0o666)
    fpmd.start(basic_conf(workdir, worker_pool(
        workdir, "zygote", extra=f"access.log = {workdir}/access.log\nphp.zygote = {php_zygote}\n"
                                 "php_admin_value[opcache.file_update_protection] = 0\n" + ISOLATED)))
    seen(get(workdir, "/"))
    # a new app zygote boots with its script already in opcache
    app = [p for p, t in titles_of(fpmd.pid).items() if "pool www zygote" in t][0]
    os.kill(app, signal.SIGKILL)
    assert wait_for(lambda: [p for p, t in titles_of(fpmd.pid).items()
                             if "pool www zygote" in t and p != app], 10)
    for _ in range(3):
        seen(get(workdir, "/"))
    time.sleep(0.2)
    assert "APP-LINE" not in open(os.path.join(workdir, "access.log")).read()
    assert open(out).read().count("APP-LINE") == 4


def test_an_ondemand_pool_clones_its_app_zygote_at_its_first_connection(fpmd, workdir):
    write_script(os.path.join(workdir, "app.php"), APP, 0o644)
    fpmd.start(basic_conf(workdir, php_pool(
        workdir, pm="ondemand", children=2,
        extra=f"php.worker = {workdir}/app.php\nphp.worker_boot = zygote\n"
              "pm.process_idle_timeout = 1s\n")))
    assert not [t for t in titles_of(fpmd.pid).values() if "pool www zygote" in t]
    a = seen(get(workdir, "/"))
    assert a["boot"] in titles_of(fpmd.pid) and a["boot"] != a["pid"]
    # idle: the workers and the zygote go; the next connection clones a new one
    assert wait_for(lambda: not [t for t in titles_of(fpmd.pid).values() if "pool www" in t], 10)
    b = seen(get(workdir, "/"))
    assert b["boot"] != a["boot"] and b["n"] == 1


GC_APP = r"""<?php
// the boot leaves what the cycle collector would walk: 3000 possible roots
// (objects whose count went down but not to zero) and 1000 garbage cycles
$keep = [];
for ($i = 0; $i < 3000; $i++) { $o = new stdClass; $keep[] = $o; unset($o); }
for ($i = 0; $i < 1000; $i++) { $c = new stdClass; $c->self = $c; unset($c); }
$handler = function () {
    echo json_encode(['pid' => getmypid()] + gc_status());
};
while (fpmd_handle_request($handler)) {
    gc_collect_cycles();
}
"""


def test_zygote_boot_clones_start_with_the_boots_garbage_collected(fpmd, workdir):
    """The boot's cycle candidates are collected once in the zygote: a clone's
    first gc_collect_cycles() would otherwise walk them all, a copy-on-write
    fault per page they sit on (hundreds per request of a framework)."""
    start(fpmd, workdir, "zygote", children=1, extra=ISOLATED, app=GC_APP)
    for _ in range(2):
        d = seen(get(workdir, "/"))
        assert d["roots"] < 100, d
        assert d["collected"] >= 1000, d
        assert d["runs"] >= 1, d


def test_a_socket_opened_at_zygote_boot_is_warned_about(fpmd, workdir):
    """A connection made at boot is shared by every fork: the zygote names it."""
    app = r"""<?php
$pair = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, STREAM_IPPROTO_IP);
$srv = stream_socket_server('tcp://127.0.0.1:0');
$db = stream_socket_client('tcp://' . stream_socket_get_name($srv, false));   // "the database"
$log = fopen('/dev/null', 'w');                       // not a socket: no warning
while (fpmd_handle_request(function () { echo 'ok'; })) {}
"""
    start(fpmd, workdir, "zygote", app=app)
    assert get(workdir, "/").body == b"ok"
    log = fpmd.log()
    warned = [ln for ln in log.splitlines() if "opened at boot" in ln]
    assert len(warned) == 4, log                # the pair's two ends, the server, the client
    assert sum("a socket to 127.0.0.1:" in ln for ln in warned) == 1, warned
    assert sum("a socket on 127.0.0.1:" in ln for ln in warned) == 1, warned
    assert all("WARNING" in ln and "[pool www]" in ln for ln in warned), warned


def test_a_boot_socket_on_the_first_free_descriptor_is_warned_about_too(fpmd, workdir):
    """With the worker script already in opcache (a second boot: the app zygote
    replaced), the boot's first socket took the lowest free descriptor, the one
    the zygote's own listing of its descriptors had used, and was taken for one
    it had before the boot: no warning for the connection every fork shared."""
    app = r"""<?php
$db = stream_socket_client('udp://127.0.0.1:9');      // "the database", first thing
while (fpmd_handle_request(function () { echo 'ok'; })) {}
"""
    # cached and not looked at again: the second boot does not open the script
    start(fpmd, workdir, "zygote", app=app,
          extra="php_admin_value[opcache.validate_timestamps] = 0\n"
                "php_admin_value[opcache.file_update_protection] = 0\n")
    assert get(workdir, "/").body == b"ok"
    first = [p for p, t in titles_of(fpmd.pid).items() if "pool www zygote" in t][0]
    os.kill(first, signal.SIGKILL)
    fpmd.wait_log(rf"zygote {first} exited on signal 9")
    assert wait_for(lambda: [p for p, t in titles_of(fpmd.pid).items()
                             if "pool www zygote" in t and p != first], 10)
    assert wait_for(lambda: get(workdir, "/").body == b"ok", 10)
    warned = [ln for ln in fpmd.log().splitlines() if "opened at boot" in ln]
    assert len(warned) == 2 and all("a socket to 127.0.0.1:9" in ln for ln in warned), fpmd.log()


HANDLER_APP = r"""<?php
set_exception_handler(function (Throwable $e) {
    http_response_code(503);
    echo 'handled by the app: ', get_class($e), ' ', $e->getMessage();
});
while (fpmd_handle_request(function () {
    if (isset($_GET['throw'])) { throw new Error('boom'); }
    echo getmypid();
})) {}
"""


@pytest.mark.parametrize("boot", BOOTS)
def test_an_uncaught_exception_goes_to_the_apps_exception_handler(fpmd, workdir, boot):
    """Symfony 5.4 rethrows an \\Error from a controller: in a classic request its
    ErrorHandler (set_exception_handler at boot) renders the error page and logs
    it; in the loop the handler was skipped, an empty 500 and a raw PHP fatal."""
    start(fpmd, workdir, boot, app=HANDLER_APP)
    first = int(get(workdir, "/").body)
    r = get(workdir, "/?throw=1")
    assert r.status == 503 and r.body == b"handled by the app: Error boom", (r.status, r.stdout)
    assert wait_for(lambda: int(get(workdir, "/").body) != first, 5)   # replaced all the same


def test_worker_boot_opens_sockets_without_a_warning(fpmd, workdir):
    app = r"""<?php
$pair = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, STREAM_IPPROTO_IP);
while (fpmd_handle_request(function () { echo 'ok'; })) {}
"""
    start(fpmd, workdir, "worker", app=app)
    assert get(workdir, "/").body == b"ok"
    assert "opened at boot" not in fpmd.log()


def test_worker_boot_max_requests_restarts_the_script(fpmd, workdir):
    start(fpmd, workdir, "worker", children=1, extra="pm.max_requests = 2\n")
    ds = [seen(get(workdir, "/")) for _ in range(4)]
    assert [d["n"] for d in ds] == [1, 2, 1, 2]
    assert ds[0]["boot"] == ds[1]["boot"] != ds[2]["boot"] == ds[3]["boot"]


# --- failures --------------------------------------------------------------

@pytest.mark.parametrize("boot", BOOTS)
@pytest.mark.parametrize("how", ["fatal", "throw"])
def test_a_fatal_error_answers_500_and_replaces_the_worker(fpmd, workdir, boot, how):
    start(fpmd, workdir, boot)
    before = seen(get(workdir, "/"))
    r = get(workdir, f"/?a={how}")
    assert r.status == 500, r.stdout
    assert b"PHP Fatal error" in r.stderr
    after = seen(get(workdir, "/"))
    assert after["pid"] != before["pid"] and after["n"] == 1
    fpmd.wait_log(r"child \d+ exited with code 0")


@pytest.mark.parametrize("boot", BOOTS)
def test_exit_in_the_handler_answers_then_the_worker_is_replaced(fpmd, workdir, boot):
    start(fpmd, workdir, boot)
    before = seen(get(workdir, "/"))
    r = get(workdir, "/?a=exit")
    assert r.status == 200 and seen(r)["pid"] == before["pid"]
    after = seen(get(workdir, "/"))
    assert after["pid"] != before["pid"]


def test_a_script_that_returns_is_respawned(fpmd, workdir):
    app = APP.replace("while (fpmd_handle_request($handler)) {\n    gc_collect_cycles();\n}",
                      "for ($i = 0; $i < 2 && fpmd_handle_request($handler); $i++) {}")
    start(fpmd, workdir, app=app)
    ds = [seen(get(workdir, "/")) for _ in range(5)]
    assert [d["n"] for d in ds] == [1, 2, 1, 2, 1]
    assert "failed" not in fpmd.log() and "keep dying" not in fpmd.log()


def test_max_execution_time_is_each_requests_not_the_wait(fpmd, workdir):
    start(fpmd, workdir, extra="php_admin_value[max_execution_time] = 1\n")
    first = seen(get(workdir, "/"))
    time.sleep(1.6)                                         # idle longer than the limit: no harm
    assert seen(get(workdir, "/"))["pid"] == first["pid"]
    r = get(workdir, "/?a=spin")
    assert r.status == 500 and b"Maximum execution time of 1 second exceeded" in r.stderr
    assert seen(get(workdir, "/"))["pid"] != first["pid"]


def test_request_terminate_timeout_kills_a_stuck_handled_request(fpmd, workdir):
    start(fpmd, workdir, extra="request_terminate_timeout = 1\n")
    first = seen(get(workdir, "/"))
    with pytest.raises(ConnectionError):                    # killed: the connection goes with it
        get(workdir, "/?a=sleep&s=5")
    fpmd.wait_log(r"execution timed out")
    assert seen(get(workdir, "/"))["pid"] != first["pid"]


def test_fastcgi_finish_request_in_the_handler(fpmd, workdir):
    start(fpmd, workdir)
    t = time.monotonic()
    d = seen(get(workdir, "/?a=finish"))
    assert time.monotonic() - t < 0.25
    assert seen(get(workdir, "/"))["pid"] == d["pid"]


def test_a_boot_that_fails_is_logged_and_backs_off(fpmd, workdir):
    start(fpmd, workdir, app="<?php\nundefined_at_boot();\n", )
    fpmd.wait_log(r"Call to undefined function undefined_at_boot", timeout=10)
    fpmd.wait_log(r"children keep dying right after start", timeout=10)
    assert fpmd.proc.poll() is None                         # the master waits, backing off


def test_a_zygote_boot_that_never_loops_fails_the_start(fpmd, workdir):
    write_script(os.path.join(workdir, "app.php"), "<?php echo 'no loop';\n", 0o644)
    fpmd.start(basic_conf(workdir, worker_pool(workdir, "zygote")), wait_ready=False)
    assert wait_for(lambda: fpmd.proc.poll() is not None, 15)
    assert fpmd.proc.returncode != 0
    assert "ended before its first fpmd_handle_request()" in fpmd.log()


def test_config_errors(fpmd, workdir):
    import subprocess
    from conftest import FPMD
    conf = os.path.join(workdir, "t.conf")
    with open(conf, "w") as f:
        f.write(basic_conf(workdir, php_pool(workdir, extra="php.worker_boot = zygote\n")))
    p = subprocess.run([FPMD, "-t", "-y", conf], capture_output=True, text=True)
    assert p.returncode != 0 and "php.worker_boot = zygote" in p.stderr + p.stdout
    with open(conf, "w") as f:
        f.write(basic_conf(workdir, php_pool(workdir, extra=f"php.worker = {workdir}/nope.php\n")))
    p = subprocess.run([FPMD, "-t", "-y", conf], capture_output=True, text=True)
    assert p.returncode != 0 and f"php.worker '{workdir}/nope.php'" in p.stderr + p.stdout
    with open(conf, "w") as f:
        f.write(basic_conf(workdir, php_pool(workdir, extra="php.worker = app.php\n")))
    p = subprocess.run([FPMD, "-t", "-y", conf], capture_output=True, text=True)
    assert p.returncode != 0 and "php.worker" in p.stderr + p.stdout


# --- the process manager around it --------------------------------------------------

@pytest.mark.parametrize("boot", BOOTS)
def test_reload_boots_the_application_again(fpmd, workdir, boot):
    start(fpmd, workdir, boot)
    before = seen(get(workdir, "/"))
    write_script(os.path.join(workdir, "app.php"), APP.replace("'n' => $n,", "'n' => $n, 'v' => 2,"),
                 0o644)
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log(r"ready to handle connections", count=2, timeout=20)

    def new():
        d = seen(get(workdir, "/"))
        return d if d.get("v") == 2 else None
    after = wait_for(new, 10)
    assert after and after["boot"] != before["boot"]


def test_graceful_stop_with_the_loop_waiting(fpmd, workdir):
    start(fpmd, workdir, children=2)
    seen(get(workdir, "/"))
    fpmd.signal(signal.SIGQUIT)
    assert fpmd.wait(10) == 0
    assert "exited on signal" not in fpmd.log()


def test_access_log_and_slowlog_per_handled_request(fpmd, workdir):
    start(fpmd, workdir, extra=f"access.log = {workdir}/access.log\naccess.format = \"%m %r%Q%q %s\"\n"
                               f"slowlog = {workdir}/slow.log\nrequest_slowlog_timeout = 1\n")
    seen(get(workdir, "/one.php?x=1"))
    get(workdir, "/two.php?a=header")
    get(workdir, "/slow.php?a=sleep&s=2")
    assert wait_for(lambda: os.path.exists(f"{workdir}/access.log") and
                    open(f"{workdir}/access.log").read().count("\n") >= 3, 5)
    lines = open(f"{workdir}/access.log").read().splitlines()
    assert lines[0] == "GET /one.php?x=1 200"
    assert lines[1] == "GET /two.php?a=header 202"
    assert wait_for(lambda: os.path.exists(f"{workdir}/slow.log") and
                    "sleep()" in open(f"{workdir}/slow.log").read(), 5)
    slow = open(f"{workdir}/slow.log").read()
    assert "{closure}()" in slow and "fpmd_handle_request()" in slow


def test_a_script_filename_with_line_breaks_is_one_escaped_slowlog_line(fpmd, workdir):
    # worker mode shows SCRIPT_FILENAME as sent (no script is looked up): the
    # root-written slowlog must keep it on its line
    start(fpmd, workdir, extra=f"slowlog = {workdir}/slow.log\nrequest_slowlog_timeout = 1\n")
    forged = "\n[07-Dec-2026 21:00:00]  [pool www] pid 1\nscript_filename = /forged.php\r\x1b[2J"
    get(workdir, "/slow.php?a=sleep&s=2", extra={"SCRIPT_FILENAME": f"{workdir}/slow.php{forged}"})
    assert wait_for(lambda: os.path.exists(f"{workdir}/slow.log") and
                    "sleep()" in open(f"{workdir}/slow.log").read(), 5)
    slow = open(f"{workdir}/slow.log").read()
    assert [line for line in slow.splitlines() if line.startswith("script_filename = ")] == [
        f"script_filename = {workdir}/slow.php\\x0a[07-Dec-2026 21:00:00]  [pool www] pid 1"
        "\\x0ascript_filename = /forged.php\\x0d\\x1b[2J"], slow
    assert "\r" not in slow and "\x1b" not in slow


# --- the end of a handled request (review findings) --------------------------------

END_APP = r"""<?php
ini_set('precision', '10');                       // the boot's own setting
register_shutdown_function(function () { error_log('boot shutdown ran in ' . getmypid()); });
echo "booted\n";
$handler = function () {
    static $in;
    switch ($_GET['a'] ?? '') {
    case 'keep': $in = fopen('php://input', 'rb'); echo fread($in, 5); return;
    case 'filter': $in = fopen('php://filter/read=string.toupper/resource=PHP://INPUT', 'rb');
                   echo fread($in, 5); return;
    case 'restore': ini_restore('precision'); break;
    case 'admin': break;
    case 'basedir': ini_set('open_basedir', '/tmp'); break;
    case 'sid': session_start(); $_SESSION['v'] = 1; echo SID; return;
    case 'throw':
        session_start(); $_SESSION['v'] = 'kept';
        register_shutdown_function(function () { throw new LogicException('from a shutdown function'); });
        echo 'thrown later'; return;
    case 'read': session_start(); echo json_encode($_SESSION); return;
    case 'big': for ($i = 0; $i < 400; $i++) { echo str_repeat('x', 65536); flush(); usleep(2000); } return;
    }
    echo json_encode(['pid' => getmypid(), 'precision' => ini_get('precision'),
                      'post_max' => ini_get('post_max_size'), 'basedir' => ini_get('open_basedir'),
                      'sid' => defined('SID') ? SID : null]);
};
for ($i = 0; $i < (int)($_SERVER['LOOPS'] ?? 1000000) && fpmd_handle_request($handler); $i++) {
    gc_collect_cycles();
}
"""


def test_php_input_streams_kept_past_their_request(fpmd, workdir):
    start(fpmd, workdir, app=END_APP)
    pid = json.loads(get(workdir, "/").body)["pid"]
    for i in range(60):
        a = "keep" if i % 2 else "filter"
        r = get(workdir, f"/?a={a}", method="POST", body=b"hello world %d" % i)
        assert r.body == (b"hello" if a == "keep" else b"HELLO"), r.stdout
    assert json.loads(get(workdir, "/").body)["pid"] == pid
    assert "SIGSEGV" not in fpmd.log() and "SIGABRT" not in fpmd.log()


def test_ini_changes_of_every_level_end_with_the_request(fpmd, workdir):
    start(fpmd, workdir, app=END_APP, extra="php.ini_params = all\n")
    base = json.loads(get(workdir, "/").body)
    assert base["precision"] == "10" and base["basedir"] in ("", None)
    get(workdir, "/?a=restore")                               # the request undoes the boot's
    get(workdir, "/?a=basedir")                               # narrows open_basedir
    get(workdir, "/?a=admin", extra={"PHP_ADMIN_VALUE": "post_max_size=1K"})
    d = json.loads(get(workdir, "/").body)
    assert d["pid"] == base["pid"]
    assert d["precision"] == "10" and d["basedir"] == base["basedir"]
    assert d["post_max"] == base["post_max"]


def test_an_exception_in_a_shutdown_function_is_a_fatal_error_of_its_request(fpmd, workdir):
    start(fpmd, workdir, app=END_APP, extra="php_admin_value[session.save_path] = /tmp\n")
    before = json.loads(get(workdir, "/").body)["pid"]
    r = get(workdir, "/?a=throw")
    assert r.body == b"thrown later"
    assert b"Uncaught LogicException: from a shutdown function" in r.stderr
    cookie = r.headers["set-cookie"].split(";")[0]
    assert json.loads(get(workdir, "/?a=read", extra={"HTTP_COOKIE": cookie}).body) == {"v": "kept"}
    assert json.loads(get(workdir, "/").body)["pid"] != before        # replaced, as after a fatal


def test_sid_is_the_request_that_started_the_session(fpmd, workdir):
    start(fpmd, workdir, app=END_APP, extra="php_admin_value[session.save_path] = /tmp\n"
                                            "php_admin_flag[session.use_only_cookies] = off\n"
                                            "php_admin_flag[session.use_trans_sid] = on\n")
    assert get(workdir, "/?a=sid").body.startswith(b"PHPSESSID=")
    assert json.loads(get(workdir, "/").body)["sid"] is None


def test_a_fork_whose_script_ends_runs_no_shutdown_of_the_boot(fpmd, workdir):
    start(fpmd, workdir, "zygote", app=END_APP,
          extra="catch_workers_output = yes\nenv[LOOPS] = 2\n")
    pids = [json.loads(get(workdir, "/").body)["pid"] for _ in range(5)]
    assert len(set(pids)) == 3                                  # 2 + 2 + 1
    time.sleep(0.3)
    log = fpmd.log()
    assert "boot shutdown ran" not in log
    assert log.count("booted") == 1                             # the zygote's, not every fork's


def test_the_script_end_runs_the_boots_shutdown_in_worker_boot(fpmd, workdir):
    start(fpmd, workdir, "worker", app=END_APP, extra="catch_workers_output = yes\nenv[LOOPS] = 2\n")
    for _ in range(3):
        get(workdir, "/")
    fpmd.wait_log(r"boot shutdown ran in \d+")


def test_a_client_gone_mid_answer_is_said(fpmd, workdir):
    import socket
    from conftest import cgi_params
    start(fpmd, workdir, app=END_APP)
    pid = json.loads(get(workdir, "/").body)["pid"]
    s = connect(f"{workdir}/www.sock")
    s.sendall(build_request(cgi_params("/?a=big", workdir)))
    s.recv(65536)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()                                                   # a reset, mid-answer
    fpmd.wait_log(r"the client went away while the handler ran")
    assert json.loads(get(workdir, "/").body)["pid"] != pid


@pytest.mark.parametrize("boot", ALL_BOOTS)
def test_reloads_under_load_lose_nothing(fpmd, workdir, boot):
    """Reloads under load lose no request: each generation boots the application again (0.3 s
    here), and a worker counts as ready for the hand-over when it first waits for a request."""
    import random
    import threading
    slow_boot = APP.replace("$boot = getmypid();", "$boot = getmypid(); usleep(300000);")
    start(fpmd, workdir, boot, children=2, app=slow_boot)
    ok, failed, stop, lock = [0], [], threading.Event(), threading.Lock()

    def client():
        while not stop.is_set():
            try:
                r = get(workdir, "/?x=1", timeout=20)
                good = r.status == 200 and b'"get":{"x":"1"}' in r.body
            except Exception as e:  # noqa: BLE001 - every failure is counted
                good, r = False, repr(e)
            with lock:
                if good:
                    ok[0] += 1
                else:
                    failed.append(r if isinstance(r, str) else r.stdout[:200])
    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(4):
            time.sleep(random.uniform(0.3, 0.6))
            fpmd.signal(signal.SIGUSR2)
            fpmd.wait_log("ready to handle connections", count=i + 2, timeout=20)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert failed == [], failed[:3]
    assert ok[0] > 20
    assert "SIGSEGV" not in fpmd.log()


def test_ondemand_worker_boots_on_demand_and_leaves_when_idle(fpmd, workdir):
    write_script(os.path.join(workdir, "app.php"), APP, 0o644)
    fpmd.start(basic_conf(workdir, worker_pool(workdir).replace("pm = static", "pm = ondemand")
                          + "pm.process_idle_timeout = 1s\n"))
    a = seen(get(workdir, "/"))
    assert seen(get(workdir, "/"))["n"] == 2
    assert wait_for(lambda: not [p for p in fpmd.workers()
                                 if "zygote" not in open(f"/proc/{p}/cmdline").read()], 5)
    b = seen(get(workdir, "/"))
    assert b["pid"] != a["pid"] and b["n"] == 1


def test_a_growing_application_is_recycled_by_pm_max_memory(fpmd, workdir):
    """Worker mode keeps what the application keeps: one that grows is replaced after the
    request that crossed pm.max_memory, and no request fails."""
    grow = APP.replace("$n++;", "$n++; static $hoard = []; $hoard[] = str_repeat('m', 4 << 20);")
    start(fpmd, workdir, app=grow, extra="pm.max_memory = 48M\nphp_admin_value[memory_limit] = 256M\n")
    pids = [seen(get(workdir, "/"))["pid"] for _ in range(30)]
    assert len(set(pids)) >= 2, pids
    fpmd.wait_log(r"max_memory|pm\.max_memory")


PROCESS_STATE_APP = r"""<?php
$h = function () {
    $out = ['cwd' => getcwd(), 'locale' => setlocale(LC_ALL, 0), 'tz' => date_default_timezone_get(),
            'umask' => umask(), 'error' => error_get_last(), 'mt' => mt_rand(), 'lcg' => lcg_value(),
            'env' => [getenv('LANGUAGE'), getenv('FPMD_BOOT_ENV')]];
    if (isset($_GET['mess'])) {
        @file_get_contents('/nonexistent/fpmd-test');
        chdir('/');
        setlocale(LC_ALL, 'C.UTF-8');
        date_default_timezone_set('Pacific/Chatham');
        umask(0);
        putenv('LANGUAGE=de');             // gettext's language for this user
        putenv('FPMD_BOOT_ENV=changed');
        mt_srand(42);
        $out['seeded'] = [mt_rand(), mt_rand()];
        mt_srand(42);                      // the next mt_rand() would be seeded[0]
    }
    echo json_encode($out);
};
putenv('FPMD_BOOT_ENV=boot');
while (fpmd_handle_request($h)) {}
"""


@pytest.mark.parametrize("boot", BOOTS)
def test_process_state_a_request_changes_is_given_back_as_php_does(fpmd, workdir, boot):
    """What PHP's own request end puts back (the working directory, the locale,
    the default time zone, the umask, putenv(), error_get_last(), the mt_rand()/lcg seeding)
    a handled request's end puts back too: a user's setlocale() or time zone, or a
    mt_srand() that makes the next client's numbers predictable, is not the next
    request's."""
    start(fpmd, workdir, boot, app=PROCESS_STATE_APP)
    base = json.loads(get(workdir, "/").body)
    mess = json.loads(get(workdir, "/?mess=1").body)
    after = json.loads(get(workdir, "/").body)
    assert mess["seeded"][0] != mess["seeded"][1]
    assert base["env"] == [False, "boot"]
    for k in ("cwd", "locale", "tz", "umask", "error", "env"):
        assert after[k] == base[k], (k, base[k], after[k])
    assert after["mt"] != mess["seeded"][0]
    assert base["error"] is None


def test_a_body_over_post_max_size_is_said_to_its_request_only(fpmd, workdir):
    app = r"""<?php
while (fpmd_handle_request(function () {
    echo json_encode(['post' => $_POST, 'error' => error_get_last()['message'] ?? null]);
})) {}
"""
    start(fpmd, workdir, extra="php_admin_value[post_max_size] = 1K\n", app=app)
    form = {"CONTENT_TYPE": "application/x-www-form-urlencoded"}
    big = json.loads(get(workdir, "/", method="POST", body=b"a=" + b"b" * 5000, extra=form).body)
    assert big["post"] == [] and "exceeds the limit of 1024 bytes" in big["error"], big
    small = json.loads(get(workdir, "/", method="POST", body=b"a=1", extra=form).body)
    assert small == {"post": {"a": "1"}, "error": None}, small


@pytest.mark.parametrize("boot", BOOTS)
def test_output_compression_and_session_auto_start_are_each_requests(fpmd, workdir, boot):
    """zlib.output_compression and session.auto_start act at PHP's request start: a
    handled request gets them too, by its own Accept-Encoding and cookie."""
    app = r"""<?php
while (fpmd_handle_request(function () {
    echo json_encode(['status' => session_status(), 'id' => session_id()]), str_repeat(' ', 2000);
})) {}
"""
    start(fpmd, workdir, boot, app=app,
          extra="php_admin_value[zlib.output_compression] = On\n"
                "php_admin_value[session.auto_start] = 1\n")
    import gzip
    plain = get(workdir, "/")
    assert "content-encoding" not in plain.headers
    d = json.loads(plain.body)
    assert d["status"] == 2 and d["id"]                    # PHP_SESSION_ACTIVE, a new id
    zipped = get(workdir, "/", extra={"HTTP_ACCEPT_ENCODING": "gzip"})
    assert zipped.headers.get("content-encoding") == "gzip", zipped.stdout[:200]
    d2 = json.loads(gzip.decompress(zipped.body))
    assert d2["status"] == 2 and d2["id"] and d2["id"] != d["id"]
    again = get(workdir, "/", extra={"HTTP_COOKIE": "PHPSESSID=" + d["id"]})
    assert "content-encoding" not in again.headers
    assert json.loads(again.body)["id"] == d["id"]        # its own cookie's session


def test_auto_prepend_file_runs_once_around_the_worker_script(fpmd, workdir):
    """auto_prepend_file is PHP's per script: the worker script's, once, not each request's."""
    write_script(os.path.join(workdir, "prepend.php"),
                 "<?php $GLOBALS['prepended'] = ($GLOBALS['prepended'] ?? 0) + 1;\n", 0o644)
    app = r"""<?php
while (fpmd_handle_request(function () { echo json_encode($GLOBALS['prepended'] ?? 0); })) {}
"""
    start(fpmd, workdir, app=app,
          extra=f"php_admin_value[auto_prepend_file] = {workdir}/prepend.php\n")
    assert [json.loads(get(workdir, "/").body) for _ in range(3)] == [1, 1, 1]


def test_what_a_handled_request_does_not_get_and_what_persists(fpmd, workdir):
    """docs/php.md: no script is looked up per request, so .user.ini and
    security.limit_extensions do not apply; extension state kept outside php.ini
    (mb_internal_encoding(), libxml_use_internal_errors(), stream wrappers) is the
    worker's, not the request's."""
    app = r"""<?php
class FpmdTestWrapper { public $context; }
$h = function () {
    if (isset($_GET['enc'])) {
        mb_internal_encoding($_GET['enc']);
        libxml_use_internal_errors(true);
        stream_wrapper_register('fpmdtest', 'FpmdTestWrapper');
    }
    echo json_encode(['precision' => ini_get('precision'), 'enc' => mb_internal_encoding(),
                      'script' => $_SERVER['SCRIPT_FILENAME'] ?? null,
                      'libxml' => libxml_use_internal_errors(),
                      'wrapper' => in_array('fpmdtest', stream_get_wrappers())]);
};
while (fpmd_handle_request($h)) {}
"""
    with open(os.path.join(workdir, ".user.ini"), "w") as f:
        f.write("precision = 7\n")
    start(fpmd, workdir, app=app)
    d = json.loads(get(workdir, "/notes.txt?enc=ISO-8859-1").body)
    assert d["script"] == f"{workdir}/notes.txt"          # not .php, no such file: still handled
    assert d["precision"] == "14"                           # the directory's .user.ini: not read
    after = json.loads(get(workdir, "/").body)
    assert after["enc"] == "ISO-8859-1"                     # persists
    assert after["libxml"] is True and after["wrapper"] is True    # persist too


# --- opcache: a file written after the boot is cached as in a classic request -------------

OPCACHE_APP = r"""<?php
while (fpmd_handle_request(function () {
    $f = __DIR__ . '/' . basename($_GET['f']);
    $v = include $f;
    echo json_encode(['cached' => opcache_is_script_cached($f), 'v' => $v,
                      'pid' => getmypid()]);
})) {}
"""


@pytest.mark.parametrize("boot", ALL_BOOTS)
def test_a_file_written_after_the_boot_is_cached_by_opcache(fpmd, workdir, boot):
    """opcache reads the request time once, at PHP's request start (the boot in worker mode),
    and refuses files changed within opcache.file_update_protection (2 s) of it: a file
    written after the boot (a template or container cache) was compiled again by every
    request of every worker, never cached.  Now it is cached once it is 2 s old, as for
    a classic request; a file written just now still is not."""
    t0 = time.time()
    start(fpmd, workdir, boot, app=OPCACHE_APP)
    old = os.path.join(workdir, "old.php")
    write_script(old, "<?php return 'old';", 0o644)
    # written after the boot, 3 s old by now: the protection's 2 s have passed
    wait_for(lambda: time.time() >= t0 + 6, 10, 0.1)
    os.utime(old, (time.time() - 3, time.time() - 3))
    r = seen(get(workdir, "/app.php?f=old.php"))
    assert r["v"] == "old"
    assert r["cached"] is True, r
    if boot == "zygote1":           # the next fork finds it cached, not compiled again
        assert seen(get(workdir, "/app.php?f=old.php"))["cached"] is True
    # one written now is not cached yet (it may be half written): the protection holds
    new = os.path.join(workdir, "new.php")
    write_script(new, "<?php return 'new';", 0o644)
    r = seen(get(workdir, "/app.php?f=new.php"))
    assert r["v"] == "new" and r["cached"] is False, r


REVALIDATE_APP = r"""<?php
while (fpmd_handle_request(function () {
    $f = __DIR__ . '/conf.php';
    echo json_encode(['v' => include $f,
                      'protection' => (int)ini_get('opcache.file_update_protection')]);
})) {}
"""


def test_worker_mode_sees_a_change_to_a_cached_file_after_a_reload(fpmd, workdir):
    """docs/php.md: in the loop a file opcache already cached is not checked again for
    changes (opcache.revalidate_freq counts from the boot); a reload shows the change.
    And during a request ini_get() shows file_update_protection shifted by the boot's age."""
    t0 = time.time()
    conf = os.path.join(workdir, "conf.php")
    write_script(conf, "<?php return 'a';", 0o644)
    os.utime(conf, (t0 - 60, t0 - 60))
    start(fpmd, workdir, "worker", app=REVALIDATE_APP)
    assert seen(get(workdir, "/app.php"))["v"] == "a"
    write_script(conf, "<?php return 'b';", 0o644)
    os.utime(conf, (t0 - 30, t0 - 30))        # changed, and old enough to be cached
    wait_for(lambda: time.time() >= t0 + 4, 10, 0.1)
    r = seen(get(workdir, "/app.php"))
    assert r["v"] == "a", r                   # the loop keeps the cached one
    assert r["protection"] < 2, r             # 2 less the boot's age (3 s or more)
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log("ready to handle connections", count=2)
    assert wait_for(lambda: seen(get(workdir, "/app.php"))["v"] == "b", 10)
