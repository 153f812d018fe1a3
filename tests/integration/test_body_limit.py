"""request.max_body_size in every pool kind (issue 20, item 9).

A body declared larger (CONTENT_LENGTH) is answered 413 before the handler
runs, and drained, so the connection stays usable; one that grows past the
limit while streaming is cut off.  exec.mode = direct cannot enforce it:
fpmd -t says so.
"""
import os
import subprocess

import pytest

from conftest import (FPMD, Response, basic_conf, build_request, cgi_params, connect, fcgi_request,
                      read_records, write_script)
from test_exec import PHP_CGI, exec_pool
from test_php import PHP_SO, php_pool

BIG = b"x" * (10 * 1024 * 1024)
LIMIT = "request.max_body_size = 1M\n"


def check_pool(sock, root, uri):
    # 10 MB against 1 MB: 413, and the same kept connection serves again
    with connect(sock, timeout=20) as s:
        data = build_request(cgi_params(uri, root, method="POST", body=BIG), BIG, keep=True)
        import threading
        t = threading.Thread(target=lambda: s.sendall(data), daemon=True)
        t.start()
        r = read_records(s, Response(), timeout=20)
        t.join(20)
        assert r.status == 413, r.stdout[:200]
        assert not t.is_alive()
        s.sendall(build_request(cgi_params(uri, root), keep=True))
        again = read_records(s, Response(), timeout=20)
        assert again.status == 200, again.stdout[:200]
    small = fcgi_request(sock, uri, root=root, method="POST", body=b"y" * 1000)
    assert small.status == 200, small.stdout[:200]
    return small


@pytest.mark.skipif(not os.path.exists(PHP_SO), reason="fpmd-php.so not built")
def test_php_pool_refuses_a_body_over_the_limit(fpmd, workdir):
    write_script(os.path.join(workdir, "len.php"), "<?php echo strlen(file_get_contents('php://input'));",
                 0o644)
    fpmd.start(basic_conf(workdir, php_pool(workdir, extra=LIMIT)))
    r = check_pool(f"{workdir}/www.sock", workdir, "/len.php")
    assert r.body == b"1000"


def test_module_pool_refuses_a_body_over_the_limit(fpmd, workdir):
    top = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    so = os.path.join(workdir, "echo.so")
    subprocess.run(["cc", "-shared", "-fPIC", f"-I{top}/include", "-o", so,
                    os.path.join(top, "examples", "modules", "echo.c")], check=True)
    os.chmod(so, 0o755)
    pool = (f"[mod]\nuser = nobody\nlisten = {workdir}/mod.sock\npm = static\npm.max_children = 1\n"
            f"app.type = module\nmodule.path = {so}\n{LIMIT}")
    fpmd.start(basic_conf(workdir, pool))
    check_pool(f"{workdir}/mod.sock", workdir, "/echo")


@pytest.mark.skipif(not PHP_CGI, reason="php-cgi is not installed")
def test_exec_pool_refuses_a_body_over_the_limit(fpmd, workdir):
    write_script(os.path.join(workdir, "len.php"), "<?php echo strlen(file_get_contents('php://input'));",
                 0o644)
    fpmd.start(basic_conf(workdir, exec_pool(workdir, extra=LIMIT, children=1)))
    r = check_pool(f"{workdir}/php.sock", workdir, "/len.php")
    assert r.body.endswith(b"1000")


def test_direct_mode_with_a_body_limit_is_refused_by_the_check(fpmd, workdir):
    pool = (f"[d]\nuser = nobody\nlisten = {workdir}/d.sock\npm = static\npm.max_children = 1\n"
            f"app.type = exec\nexec.mode = direct\nexec.command = /bin/cat\n{LIMIT}")
    fpmd.write_conf(basic_conf(workdir, pool))
    out = subprocess.run([FPMD, "-t", "-y", fpmd.conf_path], capture_output=True, text=True)
    assert out.returncode != 0
    assert "request.max_body_size cannot be enforced with exec.mode = direct" in out.stdout + out.stderr


def test_a_body_longer_than_declared_is_cut_at_the_limit(fpmd, workdir):
    """docs/cgi.md: a body that grows past the limit while streaming stops the script, 413
    if nothing was sent yet (a client whose CONTENT_LENGTH said less)."""
    import threading
    www = os.path.join(workdir, "www")
    os.makedirs(www)
    write_script(f"{www}/cat.sh", "#!/bin/sh\ncat > /dev/null\nprintf 'Content-Type: text/plain\\r\\n\\r\\nread'\n")
    pool = (f"[www]\nuser = nobody\nlisten = {workdir}/www.sock\npm = static\npm.max_children = 1\n"
            f"app.type = cgi\ncgi.root = {www}\n{LIMIT}")
    fpmd.start(basic_conf(workdir, pool))
    params = cgi_params("/cat.sh", www, method="POST", body=b"x" * 10)   # says 10 bytes
    with connect(f"{workdir}/www.sock", timeout=20) as s:
        data = build_request(params, b"x" * (2 * 1024 * 1024))
        t = threading.Thread(target=lambda: _send(s, data), daemon=True)
        t.start()
        r = read_records(s, Response(), timeout=20)
    assert r.status == 413, r.stdout[:200]
    fpmd.wait_log(r"request body grew past request.max_body_size")
    assert fcgi_request(f"{workdir}/www.sock", "/cat.sh", root=www, method="POST",
                        body=b"y" * 100).body == b"read"


def _send(s, data):
    try:
        s.sendall(data)
    except OSError:
        pass
