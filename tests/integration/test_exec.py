"""app.type = exec: external FastCGI programs (php-cgi here) run and supervised per worker."""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import alive, basic_conf, fcgi_request, wait_for, write_script

PHP_CGI = shutil.which("php-cgi8.2") or shutil.which("php-cgi")
pytestmark = pytest.mark.skipif(not PHP_CGI, reason="php-cgi (Debian php8.2-cgi) is not installed")


def exec_pool(workdir, extra="", children=2):
    return (f"[php]\nuser = nobody\nlisten = {workdir}/php.sock\npm = static\n"
            f"pm.max_children = {children}\napp.type = exec\nexec.command = {PHP_CGI}\n"
            f"ping.path = /ping\npm.status_path = /status\n{extra}")


def php_children(worker):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read()
                if int(stat.rsplit(")", 1)[1].split()[1]) == worker and "php-cgi" in stat:
                    out.append(int(d))
            except (OSError, IndexError):
                pass
    return out


@pytest.fixture
def php(fpmd, workdir):
    write_script(f"{workdir}/i.php", "<?php\nheader('X-Php: yes');\n"
                 "echo 'php ', PHP_VERSION, ' a=', $_GET['a'] ?? '', ' body=', file_get_contents('php://input');\n", 0o644)
    write_script(f"{workdir}/missing.php", "<?php\nhttp_response_code(404);\necho 'gone';\n", 0o644)
    write_script(f"{workdir}/ini.php", "<?php\necho ini_get('memory_limit');\n", 0o644)
    write_script(f"{workdir}/err.php", "<?php\nerror_log('logged by php');\necho 'ok';\n", 0o644)
    return fpmd


def test_php_cgi_serves_requests(php, workdir):
    php.start(basic_conf(workdir, exec_pool(workdir, "php_admin_value[memory_limit] = 77M\n")))
    sock = f"{workdir}/php.sock"
    r = fcgi_request(sock, "/i.php?a=1", root=workdir, method="POST", body=b"BODY")
    assert r.status == 200 and r.headers["x-php"] == "yes"
    assert re.fullmatch(rb"php 8\.\d+\.\d+ a=1 body=BODY", r.body), r.body
    r = fcgi_request(sock, "/missing.php", root=workdir)
    assert r.status == 404 and r.body == b"gone"
    assert fcgi_request(sock, "/ini.php", root=workdir).body == b"77M"
    r = fcgi_request(sock, "/err.php", root=workdir)
    assert r.body == b"ok" and b"logged by php" in r.stderr
    assert fcgi_request(sock, "/ping").body == b"pong"


def test_a_dead_program_is_restarted(php, workdir):
    php.start(basic_conf(workdir, exec_pool(workdir, children=1)))
    sock = f"{workdir}/php.sock"
    assert fcgi_request(sock, "/i.php", root=workdir).status == 200
    worker = php.workers()[0]
    assert wait_for(lambda: len(php_children(worker)) == 1, 5)
    kids = php_children(worker)
    os.kill(kids[0], signal.SIGKILL)
    time.sleep(0.2)
    assert fcgi_request(sock, "/i.php?a=2", root=workdir).body.startswith(b"php ")
    php.wait_log(r"exec.command exited on signal 9; restarting it")
    assert alive(worker), "the worker itself survives its program"


def test_program_goes_with_its_worker(php, workdir):
    php.start(basic_conf(workdir, exec_pool(workdir, children=2)))
    assert wait_for(lambda: len([p for w in php.workers() for p in php_children(w)]) == 2, 5)
    programs = [p for w in php.workers() for p in php_children(w)]
    php.signal(signal.SIGTERM)
    php.wait(10)
    assert wait_for(lambda: not any(alive(p) for p in programs), 3)


def test_a_libfcgi_program(fpmd, workdir):
    """Any FastCGI program: here a C program built on Debian's libfcgi."""
    if not os.path.exists("/usr/include/fcgi_stdio.h"):
        pytest.skip("libfcgi-dev is not installed")
    src = f"{workdir}/app.c"
    with open(src, "w") as f:
        f.write('#include <fcgi_stdio.h>\n#include <stdlib.h>\n#include <unistd.h>\n'
                'int main(void) { int n = 0;\n'
                '  while (FCGI_Accept() >= 0) {\n'
                '    const char *q = getenv("QUERY_STRING");\n'
                '    printf("Content-Type: text/plain\\r\\n\\r\\nlibfcgi pid %d n=%d q=%s\\n",'
                '           (int)getpid(), ++n, q ? q : "");\n'
                '  } return 0; }\n')
    subprocess.run(["cc", "-O2", "-o", f"{workdir}/app", src, "-lfcgi"], check=True)
    fpmd.start(basic_conf(workdir, exec_pool(workdir, children=2).replace(
        f"exec.command = {PHP_CGI}", f"exec.command = {workdir}/app")))
    sock = f"{workdir}/php.sock"
    seen = set()
    for i in range(6):
        r = fcgi_request(sock, f"/x?i={i}")
        assert r.status == 200 and r.body.startswith(b"libfcgi pid ") and f"q=i={i}".encode() in r.body
        seen.add(r.body.split()[2])
    assert 1 <= len(seen) <= 2          # one program per worker, reused across requests


def test_exec_command_is_checked(fpmd, workdir):
    fpmd.start(basic_conf(workdir, exec_pool(workdir).replace(f"exec.command = {PHP_CGI}",
                                                              "exec.command = /nonexistent/app --flag")),
               wait_ready=False)
    assert fpmd.wait(10) == 78
    assert "exec.command: '/nonexistent/app' is not an executable file" in fpmd.log()


def test_a_program_that_exits_after_n_requests_is_replaced_without_a_502(fpmd, workdir):
    """Like php-cgi with PHP_FCGI_MAX_REQUESTS or a Perl FCGI app: it leaves by itself."""
    if not os.path.exists("/usr/include/fcgi_stdio.h"):
        pytest.skip("libfcgi-dev is not installed")
    src = f"{workdir}/app2.c"
    with open(src, "w") as f:
        f.write('#include <fcgi_stdio.h>\n#include <unistd.h>\n'
                'int main(void) { int n = 0;\n'
                '  while (n < 2 && FCGI_Accept() >= 0) {\n'
                '    printf("Content-Type: text/plain\\r\\n\\r\\npid %d n=%d\\n", (int)getpid(), ++n);\n'
                '  } return 0; }\n')
    subprocess.run(["cc", "-O2", "-o", f"{workdir}/app2", src, "-lfcgi"], check=True)
    fpmd.start(basic_conf(workdir, exec_pool(workdir, children=1).replace(
        f"exec.command = {PHP_CGI}", f"exec.command = {workdir}/app2")))
    sock = f"{workdir}/php.sock"
    pids = set()
    for i in range(7):
        r = fcgi_request(sock, f"/x?{i}", timeout=10)
        assert r.status == 200 and r.body.startswith(b"pid "), r.stdout
        pids.add(r.body.split()[1])
        if i % 3 == 0:
            time.sleep(0.2)            # sometimes the exit is seen before the next request
    assert len(pids) >= 3               # replaced every two requests
    assert "exec.command exited with code 0; restarting it" in fpmd.log()
