"""app.type = cgi: RFC 3875 behaviour, streaming, limits and the security rules."""
import hashlib
import os
import pwd
import socket
import time

import pytest

from conftest import (Response, alive, basic_conf, build_request, cgi_params, connect, fcgi_request,
                      pool_conf, read_records, wait_for, write_script, FCGI_STDOUT)


@pytest.fixture
def cgi(fpmd, workdir):
    """Starts a cgi pool over workdir/www; returns a request function."""
    www = os.path.join(workdir, "www")
    os.makedirs(www)
    os.chmod(www, 0o755)

    def start(extra="", children=2, global_extra=""):
        pool = pool_conf(workdir, children=children,
                         extra=f"cgi.interpreter[.py] = /usr/bin/python3\n{extra}").replace(
            f"cgi.root = {workdir}", f"cgi.root = {www}")
        fpmd.start(basic_conf(workdir, pool, global_extra=global_extra))

    def req(uri, **kw):
        kw.setdefault("root", www)
        return fcgi_request(f"{workdir}/www.sock", uri, **kw)

    req.start = start
    req.www = www
    req.sock = f"{workdir}/www.sock"
    return req


ECHO_ENV = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
env | sort
echo "cwd=$(pwd)"
echo "uid=$(id -u)"
"""


def env_of(resp):
    out = {}
    for line in resp.body.decode().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def test_runs_script_with_cgi_environment(cgi):
    write_script(f"{cgi.www}/env.sh", ECHO_ENV)
    cgi.start(extra="env[POOL_VAR] = from-pool\n")
    r = cgi("/env.sh?x=1&y=2", extra={"HTTP_USER_AGENT": "pytest", "HTTP_PROXY": "http://evil:1",
                                      "LD_PRELOAD": "/tmp/evil.so", "BASH_ENV": "/tmp/x"})
    assert r.status == 200 and r.app_status == 0
    env = env_of(r)
    assert env["QUERY_STRING"] == "x=1&y=2"
    assert env["REQUEST_METHOD"] == "GET"
    assert env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert env["SCRIPT_FILENAME"] == f"{cgi.www}/env.sh"
    assert env["HTTP_USER_AGENT"] == "pytest"
    assert env["POOL_VAR"] == "from-pool"
    assert "HTTP_PROXY" not in env, "httpoxy"
    assert "LD_PRELOAD" not in env and "BASH_ENV" not in env
    assert env["cwd"] == cgi.www
    assert env["uid"] == str(pwd.getpwnam("nobody").pw_uid)


def test_status_location_and_header_parsing(cgi, fpmd):
    write_script(f"{cgi.www}/teapot.sh", "#!/bin/sh\necho 'Status: 418 I am a teapot'\necho 'Content-Type: text/plain'\necho\necho short and stout\n")
    write_script(f"{cgi.www}/redir.sh", "#!/bin/sh\nprintf 'Location: /elsewhere\\r\\n\\r\\n'\n")
    write_script(f"{cgi.www}/crlf.sh", "#!/bin/sh\nprintf 'Content-Type: text/html\\r\\nX-A: b\\r\\n\\r\\n<p>x</p>'\n")
    write_script(f"{cgi.www}/nohdr.sh", "#!/bin/sh\necho just a body, no header\n")
    write_script(f"{cgi.www}/bad.sh", "#!/bin/sh\necho 'this is no header'\necho\necho body\n")
    write_script(f"{cgi.www}/silent.sh", "#!/bin/sh\nexit 0\n")
    write_script(f"{cgi.www}/fail.sh", "#!/bin/sh\necho oops >&2\nexit 3\n")
    cgi.start()
    r = cgi("/teapot.sh")
    assert r.status == 418 and r.body == b"short and stout\n"
    r = cgi("/redir.sh")
    assert r.status == 302 and r.headers["location"] == "/elsewhere"
    r = cgi("/crlf.sh")
    assert r.headers["content-type"] == "text/html" and r.headers["x-a"] == "b" and r.body == b"<p>x</p>"
    assert cgi("/nohdr.sh").status == 502
    assert cgi("/bad.sh").status == 502
    assert cgi("/silent.sh").status == 502
    assert cgi("/fail.sh").status == 500
    # Worker lines reach the log through the master: wait for them.
    fpmd.wait_log("exited with status 3 before any response")
    fpmd.wait_log("malformed header line")


def test_post_body_streamed_both_ways_and_binary_output(cgi):
    write_script(f"{cgi.www}/sha.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nsha256sum | cut -d' ' -f1\n")
    write_script(f"{cgi.www}/cat.sh", "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\ncat\n")
    write_script(f"{cgi.www}/big.sh", "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\nhead -c 10000000 /dev/urandom | tee /tmp/fpmd-big-$$ >/dev/null; cat /tmp/fpmd-big-$$; rm -f /tmp/fpmd-big-$$\n")
    cgi.start()
    body = os.urandom(5 * 1024 * 1024)
    r = cgi("/sha.sh", method="POST", body=body, timeout=60)
    assert r.body.decode().strip() == hashlib.sha256(body).hexdigest()
    binary = bytes(range(256)) * 1000
    assert cgi("/cat.sh", method="POST", body=binary).body == binary
    r = cgi("/big.sh", timeout=60)
    assert len(r.body) == 10000000


def test_output_is_streamed_as_produced(cgi):
    write_script(f"{cgi.www}/tick.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\necho first\nsleep 1.5\necho second\n")
    cgi.start()
    params = cgi_params("/tick.sh", cgi.www)
    with connect(cgi.sock) as s:
        t0 = time.monotonic()
        s.sendall(build_request(params))
        got = b""
        while b"first" not in got:
            got += s.recv(65536)
        first_at = time.monotonic() - t0
        resp = read_records(s, Response(), timeout=10)
    assert first_at < 1.0, f"first line took {first_at:.2f}s: output was buffered"
    assert b"second" in resp.stdout


def test_stderr_to_log_or_client(cgi, fpmd):
    write_script(f"{cgi.www}/noisy.sh", "#!/bin/sh\necho 'warning: disk is lava' >&2\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    cgi.start(extra="cgi.stderr = both\n")
    r = cgi("/noisy.sh")
    assert r.body == b"ok"
    assert b"warning: disk is lava" in r.stderr
    fpmd.wait_log(r"\[pool www\] child \d+ script '.*/noisy.sh' said into stderr: \"warning: disk is lava\"")


def test_keep_alive_two_requests_on_one_connection(cgi):
    write_script(f"{cgi.www}/hello.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhello'\n")
    cgi.start()
    with connect(cgi.sock) as s:
        for _ in range(2):
            s.sendall(build_request(cgi_params("/hello.sh", cgi.www), keep=True))
            r = read_records(s, Response())
            assert r.body == b"hello" and r.app_status == 0


def test_terminate_timeout_kills_the_whole_group(cgi, fpmd):
    write_script(f"{cgi.www}/hang.sh", "#!/bin/sh\nsleep 60 &\necho $! > /tmp/fpmd-test-grandchild\nwait\n")
    cgi.start(extra="request_terminate_timeout = 1\n")
    t0 = time.monotonic()
    r = cgi("/hang.sh", timeout=15)
    assert r.status == 504
    assert time.monotonic() - t0 < 5
    grandchild = int(open("/tmp/fpmd-test-grandchild").read())
    os.unlink("/tmp/fpmd-test-grandchild")
    assert wait_for(lambda: not alive(grandchild), 3), "the script's child survived"
    fpmd.wait_log(r"execution timed out \(1 sec\), terminating")


def test_client_abort_stops_the_script(cgi, fpmd):
    write_script(f"{cgi.www}/wait.sh", "#!/bin/sh\necho $$ > /tmp/fpmd-test-abort\nsleep 60\n")
    cgi.start()
    s = connect(cgi.sock)
    s.sendall(build_request(cgi_params("/wait.sh", cgi.www)))
    assert wait_for(lambda: os.path.exists("/tmp/fpmd-test-abort") and open("/tmp/fpmd-test-abort").read().strip(), 5)
    pid = int(open("/tmp/fpmd-test-abort").read())
    os.unlink("/tmp/fpmd-test-abort")
    s.close()
    assert wait_for(lambda: not alive(pid), 5)
    fpmd.wait_log("client went away")


def test_a_stopped_scripts_children_get_their_grace_after_it_died(cgi, fpmd, workdir):
    """git-http-backend dies of SIGTERM at once; its receive-pack cleans its
    quarantine directory up on SIGTERM.  The session got SIGKILL as soon as
    its leader was reaped, 10 ms later: the quarantine stayed in the
    repository.  The whole session has the documented second."""
    out = os.path.join(workdir, "out")
    os.makedirs(out)
    os.chmod(out, 0o777)
    write_script(f"{cgi.www}/leader.sh", "#!/bin/sh\n"
                 f"(trap 'sleep 0.3; echo cleaned > {out}/cleaned; exit 0' TERM; "
                 f"echo started > {out}/started; while :; do sleep 0.05; done) >/dev/null 2>&1 &\n"
                 "sleep 30\n")
    cgi.start(extra="request_terminate_timeout = 1\n")
    r = cgi("/leader.sh", timeout=15)
    assert r.status == 504
    assert os.path.exists(f"{out}/started")
    assert wait_for(lambda: os.path.exists(f"{out}/cleaned"), 3), "the child was killed in its cleanup"


def let_go_after_the_header(cgi, uri, method):
    """As nginx does with a HEAD: reads the answer up to its header, then hangs up."""
    with connect(cgi.sock) as s:
        s.sendall(build_request(cgi_params(uri, cgi.www, method=method)))
        s.settimeout(5)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(4096)
            assert chunk
            got += chunk


def test_the_script_of_a_head_runs_to_its_end_after_the_web_server_let_go(cgi, fpmd, workdir):
    """nginx hangs up on a HEAD once it has the header: the script was stopped
    there, its later work and stderr lost (git-http-backend's 404 reason), where
    fcgiwrap and PHP run it to its end."""
    out = os.path.join(workdir, "out")
    os.makedirs(out)
    os.chmod(out, 0o777)
    write_script(f"{cgi.www}/after.sh", "#!/bin/sh\n"
                 "printf 'Status: 404 Not Found\\r\\nContent-Type: text/plain\\r\\n\\r\\nnot here\\n'\n"
                 f"sleep 0.3\necho done > {out}/$REQUEST_METHOD\necho 'said after its answer' >&2\n")
    cgi.start()
    for method in ("HEAD", "GET"):
        let_go_after_the_header(cgi, "/after.sh", method)
    assert wait_for(lambda: os.path.exists(f"{out}/HEAD"), 3), "the HEAD's script was stopped"
    fpmd.wait_log("said after its answer")
    assert not os.path.exists(f"{out}/GET")          # a GET's client that left still stops it
    assert cgi("/ping").status == 200


def test_what_ignores_sigterm_is_killed_a_second_later(cgi, fpmd, workdir):
    """docs/cgi.md: the session gets SIGTERM, what is left of it SIGKILL one second later."""
    out = os.path.join(workdir, "out")
    os.makedirs(out)
    os.chmod(out, 0o777)
    write_script(f"{cgi.www}/stubborn.sh", "#!/bin/sh\n"
                 f"(trap '' TERM; echo $$ > {out}/pid; exec sleep 60) >/dev/null 2>&1 &\n"
                 "sleep 30\n")
    cgi.start(extra="request_terminate_timeout = 1\n")
    t0 = time.monotonic()
    assert cgi("/stubborn.sh", timeout=15).status == 504
    pid = int(open(f"{out}/pid").read())
    assert wait_for(lambda: not alive(pid), 3)
    took = time.monotonic() - t0
    assert 1.9 <= took < 3.5, took                 # 1 s to the timeout, then its second


@pytest.mark.parametrize("terminate", [0, 2])
def test_the_script_of_a_head_is_stopped_when_it_runs_on_too_long(cgi, fpmd, workdir, terminate):
    """docs/cgi.md: a HEAD's script runs on after its answer within
    request_terminate_timeout, or 10 s without one."""
    write_script(f"{cgi.www}/long.sh", "#!/bin/sh\n"
                 "printf 'Content-Type: text/plain\\r\\n\\r\\nx\\n'\nsleep 60\n")
    cgi.start(extra=f"request_terminate_timeout = {terminate}\n" if terminate else "")
    t0 = time.monotonic()
    let_go_after_the_header(cgi, "/long.sh", "HEAD")
    limit = terminate or 10
    fpmd.wait_log(rf"script '[^']*long.sh' of a HEAD ran on for {limit} sec after its answer",
                  timeout=limit + 5)
    assert limit - 0.5 <= time.monotonic() - t0 < limit + 3
    assert cgi("/ping").status == 200


def test_max_body_size(cgi):
    write_script(f"{cgi.www}/cat.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\ncat\n")
    cgi.start(extra="request.max_body_size = 1K\n")
    assert cgi("/cat.sh", method="POST", body=b"x" * 2048).status == 413
    assert cgi("/cat.sh", method="POST", body=b"x" * 512).body == b"x" * 512


def test_path_info_split(cgi):
    write_script(f"{cgi.www}/env.sh", ECHO_ENV)
    cgi.start()
    r = cgi("/env.sh", extra={"SCRIPT_FILENAME": f"{cgi.www}/env.sh/extra/path", "SCRIPT_NAME": "/env.sh"})
    env = env_of(r)
    assert r.status == 200
    assert env["PATH_INFO"] == "/extra/path"
    assert env["SCRIPT_FILENAME"] == f"{cgi.www}/env.sh"


def test_interpreter_runs_non_executable_files(cgi):
    write_script(f"{cgi.www}/hi.py", "print('Content-Type: text/plain')\nprint()\nprint('from python')\n", mode=0o644)
    cgi.start()
    assert cgi("/hi.py").body == b"from python\n"


class TestSecurity:
    def test_outside_root_refused(self, cgi, workdir):
        write_script(f"{workdir}/secret.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nSECRET'\n")
        os.symlink(f"{workdir}/secret.sh", f"{cgi.www}/link.sh")
        cgi.start()
        assert cgi("/../secret.sh").status == 403
        assert cgi("/x", extra={"SCRIPT_FILENAME": f"{workdir}/secret.sh"}).status == 403
        assert cgi("/link.sh").status == 403, "symlink out of the root"
        assert cgi("/x", extra={"SCRIPT_FILENAME": "/bin/sh"}).status == 403

    def test_file_kinds_and_permissions(self, cgi):
        os.makedirs(f"{cgi.www}/dir.sh")
        write_script(f"{cgi.www}/noexec.sh", "#!/bin/sh\necho\n", mode=0o644)
        write_script(f"{cgi.www}/suid.sh", "#!/bin/sh\necho\n", mode=0o4755)
        write_script(f"{cgi.www}/page.txt", "#!/bin/sh\necho\n")
        cgi.start()
        assert cgi("/missing.sh").status == 404
        assert cgi("/dir.sh").status == 403
        assert cgi("/noexec.sh").status == 403
        assert cgi("/suid.sh").status == 403
        assert cgi("/page.txt").status == 403, "security.limit_extensions"

    def test_allow_list_names_single_programs(self, cgi, workdir):
        other = os.path.join(workdir, "lib")
        os.makedirs(other)
        os.chmod(other, 0o755)
        write_script(f"{other}/tool.cgi", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nallowed'\n")
        write_script(f"{other}/other.cgi", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nnot allowed'\n")
        cgi.start(extra=f"cgi.allow[] = {other}/tool.cgi\n")
        assert cgi("/x", extra={"SCRIPT_FILENAME": f"{other}/tool.cgi"}).body == b"allowed"
        assert cgi("/x", extra={"SCRIPT_FILENAME": f"{other}/other.cgi"}).status == 403

    @pytest.mark.parametrize("script_filename,path_info", [
        ("{www}/env.sh\n.sh", None),                 # %0a in the path (CVE-2019-11043 style)
        ("{www}/env.sh", ""),                        # empty PATH_INFO
        ("{www}/" + "a/" * 3000 + "env.sh", None),   # very long path
        ("{www}/env.sh/" + "b" * 5000, None),        # very long path info
        ("", None),                                  # empty SCRIPT_FILENAME
        ("{www}/../../../../../../etc/passwd", None),
    ])
    def test_hostile_paths_do_not_escape(self, cgi, fpmd, script_filename, path_info):
        write_script(f"{cgi.www}/env.sh", ECHO_ENV)
        cgi.start(children=1)
        extra = {"SCRIPT_FILENAME": script_filename.format(www=cgi.www)}
        if path_info is not None:
            extra["PATH_INFO"] = path_info
        r = cgi("/env.sh", extra=extra)
        assert r.status in (200, 403, 404)
        if r.status == 200:
            assert env_of(r)["SCRIPT_FILENAME"] == f"{cgi.www}/env.sh"
        # The worker survived and still answers.
        assert cgi("/ping").body == b"pong"
        assert "exited on signal" not in fpmd.log()

    def test_no_root_and_no_allow_refuses_to_start(self, fpmd, workdir):
        conf = basic_conf(workdir, pool_conf(workdir).replace(f"cgi.root = {workdir}\n", ""))
        fpmd.start(conf, wait_ready=False)
        assert fpmd.wait(10) == 78


def test_a_client_that_half_closes_gets_its_whole_answer(fpmd, workdir):
    """shutdown(SHUT_WR) after FCGI_STDIN is the end of the client's input, as
    php-fpm, libfcgi and fpmd's other pool kinds take it: the script was
    killed and an empty answer sent ("client went away")."""
    import socket as so
    from conftest import Response, build_request, cgi_params, connect, read_records
    write_script(f"{workdir}/half.sh", "#!/bin/sh\nsleep 0.3\nprintf 'Content-Type: text/plain\\r\\n\\r\\nwhole'\n")
    fpmd.start(basic_conf(workdir))
    s = connect(f"{workdir}/www.sock")
    s.sendall(build_request(cgi_params("/half.sh", workdir)))
    s.shutdown(so.SHUT_WR)
    r = read_records(s, Response())
    s.close()
    assert r.app_status == 0 and r.body == b"whole", (r.app_status, r.stdout)
    assert "client went away" not in fpmd.log()


def test_an_answer_cut_by_request_terminate_timeout_is_not_presented_complete(fpmd, workdir):
    """The script's header went out, then request_terminate_timeout stopped it:
    the connection ends without END_REQUEST (nginx: "upstream prematurely
    closed"), as php, module and exec pools do; it was a normal END_REQUEST, so
    nginx finished a 200 with half the body as if it were whole."""
    from conftest import Response, build_request, cgi_params, connect, read_records
    write_script(f"{workdir}/cut.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\npart 1\\n'\n"
                 "sleep 10\necho 'part 2'\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, extra="request_terminate_timeout = 1s\n")))
    s = connect(f"{workdir}/www.sock")
    s.sendall(build_request(cgi_params("/cut.sh", workdir)))
    r = Response()
    with pytest.raises(ConnectionError):
        read_records(s, r, timeout=8)
    s.close()
    assert b"part 1" in r.stdout and b"part 2" not in r.stdout and r.app_status is None
    fpmd.wait_log("execution timed out")


def test_a_stderr_line_past_log_limit_says_it_was_cut(fpmd, workdir):
    """A script's 3,000-byte stderr line was cut at log_limit (1024) with nothing to
    tell: no closing quote, no marker.  It ends with php-fpm's "..." now."""
    write_script(f"{workdir}/long.sh", "#!/bin/sh\nhead -c 3000 /dev/zero | tr '\\000' x >&2\n"
                 "echo >&2\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir)))
    assert fcgi_request(f"{workdir}/www.sock", "/long.sh", root=workdir).body == b"ok"
    assert wait_for(lambda: "said into stderr" in fpmd.log(), 5)
    line = [l for l in fpmd.log().splitlines() if "said into stderr" in l][0]
    assert line.endswith("xxx..."), line[-40:]
    assert len(line.encode()) <= 1024 + 40, len(line)
