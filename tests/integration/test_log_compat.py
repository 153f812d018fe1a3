"""Error log lines as php-fpm8.2 writes them, where log parsers look (issue 21, item 7).

The same pool (static, two workers, pm.max_requests = 1) under a running php-fpm8.2 and
under fpmd: a start, one request (its worker exits and is replaced), a graceful stop.
The two logs must tell the same story line for line, numbers aside: no "child N
started" for the children of the start, NOTICE lines for the replaced worker, nothing
about the children a stop ends.
"""
import os
import re
import signal
import subprocess

import pytest

from conftest import basic_conf, fcgi_request, pool_conf, wait_for, write_script

PHP_FPM = "/usr/sbin/php-fpm8.2"


def normalized(log):
    out = []
    for line in log.splitlines():
        m = re.match(r"\[\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d\] (\w+): (.*)", line)
        if not m:
            continue
        msg = re.sub(r"\d+(\.\d+)?", "N", m.group(2))
        # php-fpm8.2 is built with systemd support and says so even outside systemd
        if msg.startswith("systemd monitor interval"):
            continue
        out.append(f"{m.group(1)}: {msg}")
    return out


def read(path):
    with open(path) as f:
        return f.read()


def run_story(cmd, log_path, sock, env=None):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=env)
    try:
        assert wait_for(lambda: "ready to handle connections" in (read(log_path) if os.path.exists(log_path) else ""), 10)
        r = fcgi_request(sock, "/ping", extra={"SCRIPT_FILENAME": "/ping"})
        assert r.body == b"pong"
        assert wait_for(lambda: re.search(r"child \d+ started", read(log_path)), 10), read(log_path)
        proc.send_signal(signal.SIGQUIT)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return normalized(read(log_path))


@pytest.mark.skipif(not os.path.exists(PHP_FPM), reason="php-fpm8.2 not installed")
def test_start_respawn_and_stop_lines_match_php_fpm(workdir):
    from conftest import FPMD
    pool = "pm.max_requests = 1\n"
    theirs_conf = os.path.join(workdir, "php-fpm.conf")
    with open(theirs_conf, "w") as f:
        f.write(f"[global]\nerror_log = {workdir}/php-fpm.log\ndaemonize = no\n[www]\n"
                f"user = nobody\nlisten = {workdir}/php.sock\npm = static\npm.max_children = 2\n"
                f"ping.path = /ping\n{pool}")
    ours_conf = os.path.join(workdir, "fpmd.conf")
    with open(ours_conf, "w") as f:
        f.write(basic_conf(workdir, pool_conf(workdir, extra=pool), global_extra="daemonize = no\n"))
    theirs = run_story([PHP_FPM, "-n", "-R", "-y", theirs_conf], f"{workdir}/php-fpm.log",
                       f"{workdir}/php.sock")
    ours = run_story([FPMD, "-y", ours_conf], f"{workdir}/error.log", f"{workdir}/www.sock")
    assert ours == theirs, "\n".join(["fpmd:"] + ours + ["php-fpm8.2:"] + theirs)


def test_missing_cgi_script_logs_the_script(fpmd, workdir):
    """`/cgi-bin/nope.sh` under an existing cgi-bin: the log names nope.sh, not cgi-bin."""
    cgi_bin = os.path.join(workdir, "cgi-bin")
    os.mkdir(cgi_bin)
    write_script(os.path.join(cgi_bin, "yes.sh"), "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nyes'\n")
    fpmd.start(basic_conf(workdir))
    r = fcgi_request(f"{workdir}/www.sock", "/cgi-bin/nope.sh", root=workdir)
    assert r.status == 404
    fpmd.wait_log(r"not found")
    assert f"script '{cgi_bin}/nope.sh' not found" in fpmd.log(), fpmd.log()
    assert f"script '{cgi_bin}' not found" not in fpmd.log()
    # PATH_INFO still works: a real script with a path after it.
    r = fcgi_request(f"{workdir}/www.sock", "/cgi-bin/yes.sh/extra", root=workdir)
    assert r.status == 200 and r.body == b"yes"


def test_json_log_lines_are_valid_utf8_json_whatever_a_worker_writes(fpmd, workdir):
    """A JSON record must be UTF-8 (RFC 8259): bytes a script wrote to stderr
    that are not were copied as they came, and a strict reader refused 26 of
    28 lines.  Well-formed UTF-8 passes; the rest becomes U+FFFD."""
    import json
    write_script(f"{workdir}/junk.sh", "#!/bin/sh\nprintf 'caf\\303\\251 \\377\\376 half \\342\\202 end\\n' >&2\n"
                 "printf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir), global_extra="log_format = json\n"))
    assert fcgi_request(f"{workdir}/www.sock", "/junk.sh", root=workdir).body == b"ok"
    # -F -O: the lines are on fpmd's stderr, which the fixture keeps in log_path
    assert wait_for(lambda: b"half" in open(fpmd.log_path, "rb").read(), 5)
    raw = open(fpmd.log_path, "rb").read()
    msgs = [json.loads(line.decode("utf-8"))["message"] for line in raw.splitlines() if line]
    junk = [m for m in msgs if "half" in m]
    # a lone 0x82 is an 8-bit terminal's C1 control: the worker's line has it as \x82
    assert junk and "café \ufffd\ufffd half \ufffd\\x82 end" in junk[0], junk
