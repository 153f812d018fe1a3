"""The root master against a pool's user: files it opens or creates in directories a pool's
user may write (Debian's /run/php is www-data's), a worker of group root, and worker output
made to look like another pool's lines.  Each test failed before its fix."""
import os
import pwd
import signal
import subprocess
import time

import pytest

from conftest import FPMD, basic_conf, fcgi_request, pool_conf, wait_for, write_script
from test_php import PHP_SO, php, php_pool, req

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (the master's own case)")

NOBODY = pwd.getpwnam("nobody").pw_uid


def victim_file(workdir):
    path = f"{workdir}/victim"
    with open(path, "w") as f:
        f.write("root secret\n")
    os.chmod(path, 0o600)
    return path


def untouched(path):
    st = os.stat(path)
    with open(path) as f:
        return (st.st_uid, st.st_gid, st.st_mode & 0o777, f.read()) == (0, 0, 0o600, "root secret\n")


def pool_user_dir(workdir, name):
    d = f"{workdir}/{name}"
    os.mkdir(d)
    os.chown(d, NOBODY, -1)
    return d


def test_the_pid_files_temporary_name_cannot_be_planted(fpmd, workdir):
    """The pid file is written to a temporary file renamed over it: its name
    was the path and the master's pid (which a reload keeps), so a pool's user
    owning the directory planted a symlink there and the root master truncated
    the file it pointed to."""
    run = pool_user_dir(workdir, "run")
    victim = victim_file(workdir)
    conf = basic_conf(workdir, pool_conf(workdir)).replace(f"pid = {workdir}/fpmd.pid",
                                                           f"pid = {run}/fpmd.pid")
    fpmd.start(conf)
    pid = int(open(f"{run}/fpmd.pid").read())
    os.symlink(victim, f"{run}/fpmd.pid.{pid}.tmp")
    os.lchown(f"{run}/fpmd.pid.{pid}.tmp", NOBODY, -1)
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log("ready to handle connections", count=2)
    assert untouched(victim), open(victim).read()
    assert not os.path.islink(f"{run}/fpmd.pid") and int(open(f"{run}/fpmd.pid").read()) == pid


def test_an_access_log_symlinked_in_a_pool_users_directory_is_not_followed(fpmd, workdir):
    """access.log in a directory the pool's user writes: a symlink there would
    have the root master append to (and hand the workers) any file."""
    logs = pool_user_dir(workdir, "logs")
    victim = victim_file(workdir)
    os.symlink(victim, f"{logs}/access.log")
    r = subprocess.run([FPMD, "-y", write_conf(workdir, basic_conf(workdir, pool_conf(
        workdir, extra=f"access.log = {logs}/access.log\n"))), "-F"],
        capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "failed to open access.log" in r.stderr + r.stdout, r.stderr
    assert untouched(victim)


def test_a_slowlog_made_a_symlink_before_a_reopen_is_not_followed(fpmd, workdir):
    logs = pool_user_dir(workdir, "logs")
    victim = victim_file(workdir)
    extra = (f"access.log = {logs}/access.log\nslowlog = {logs}/slow.log\n"
             "request_slowlog_timeout = 1\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, extra=extra)))
    for name in ("access.log", "slow.log"):
        os.unlink(f"{logs}/{name}")
        os.symlink(victim, f"{logs}/{name}")
    fpmd.signal(signal.SIGUSR1)
    fpmd.wait_log("failed to reopen access.log")
    write_script(f"{workdir}/slow.sh", "#!/bin/sh\nsleep 1.5\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    assert fcgi_request(f"{workdir}/www.sock", "/slow.sh", root=workdir, timeout=10).status == 200
    assert untouched(victim)


def test_a_log_symlinked_in_roots_own_directory_is_followed(fpmd, workdir):
    """An operator's own symlink (/dev/stdout, /proc/self/fd/1, a log moved
    elsewhere) in a directory only root writes is followed as before."""
    os.symlink(f"{workdir}/real.log", f"{workdir}/linked.log")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, extra=f"access.log = {workdir}/linked.log\n")))
    assert fcgi_request(f"{workdir}/www.sock", "/ping", root=workdir).status == 200
    assert wait_for(lambda: os.path.exists(f"{workdir}/real.log") and
                    "/ping" in open(f"{workdir}/real.log").read(), 5)


def write_conf(workdir, text):
    path = f"{workdir}/t.conf"
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.mark.skipif(not os.path.exists(PHP_SO), reason="fpmd-php.so not built")
def test_a_worker_flooding_its_output_does_not_stall_the_master(fpmd, workdir):
    """Plain PHP writing to php://stderr without pause, with catch_workers_output = yes
    (the example configuration's): the master read the pipe until it was empty, which
    it never was, and answered nothing else for as long (8 s for another pool's
    status).  It reads a bounded amount per turn of its loop now."""
    import threading
    php(workdir, "flood.php", "<?php $e = fopen('php://stderr', 'w'); $s = str_repeat(\"3\\n\", 32768);"
        " $end = microtime(true) + 3; while (microtime(true) < $end) fwrite($e, $s); echo 'end';")
    other = pool_conf(workdir, name="other", children=1,
                      extra=f"pm.status_listen = {workdir}/status.sock\n")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=2, extra="catch_workers_output = yes\n")
                          + other))
    threads = [threading.Thread(target=lambda: req(workdir, "/flood.php", timeout=30)) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        worst = 0
        for _ in range(3):
            t0 = time.monotonic()
            r = fcgi_request(f"{workdir}/status.sock", "/ping", timeout=20)
            worst = max(worst, time.monotonic() - t0)
            assert r.status == 200
            time.sleep(0.3)
        print("worst status answer during the flood: %.3f s" % worst)
        assert worst < 1.5, worst
    finally:
        for t in threads:
            t.join(30)


@pytest.mark.parametrize("key", ["listen.owner", "listen.group"])
def test_a_root_pool_with_an_unknown_socket_owner_names_that_error_only(workdir, key):
    """php-fpm's order (its bug68591 tests): the unknown listen.owner/group is the error
    named, and it alone; the pool is refused either way."""
    text = basic_conf(workdir, pool_conf(workdir, extra=f"user = root\n{key} = aaaaaa\n"))
    r = subprocess.run([FPMD, "-t", "-y", write_conf(workdir, text)], capture_output=True,
                       text=True, timeout=30)
    out = r.stderr + r.stdout
    assert r.returncode != 0
    assert "'aaaaaa'" in out and "other than root" not in out, out


def test_a_pool_of_group_root_is_refused_as_php_fpm_does(workdir):
    r = subprocess.run([FPMD, "-t", "-y", write_conf(workdir, basic_conf(workdir, pool_conf(
        workdir, extra="group = root\n")))], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "please specify user and group other than root" in r.stderr + r.stdout, r.stderr
    r = subprocess.run([FPMD, "-t", "-R", "-y", f"{workdir}/t.conf"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(not os.path.exists(PHP_SO), reason="fpmd-php.so not built")
def test_what_a_worker_writes_to_stderr_cannot_forge_a_log_line(fpmd, workdir):
    """A carriage return or a terminal escape in a worker's stderr reached the
    error log raw: on a terminal the line read as another pool's."""
    write_script(f"{workdir}/forge.php",
                 '<?php file_put_contents("php://stderr", "\\r[07-Dec-2026 08:47:11] NOTICE: '
                 '[pool other] child 4242 exited\\x1b[K\\r\\n"); echo "ok";', 0o644)
    fpmd.start(basic_conf(workdir, php_pool(workdir, extra="catch_workers_output = yes\n")))
    assert fcgi_request(f"{workdir}/www.sock", "/forge.php", root=workdir).status == 200
    assert wait_for(lambda: "said into stderr" in fpmd.log(), 5), fpmd.log()[-1000:]
    log = fpmd.log()
    assert "\r" not in log and "\x1b" not in log, repr(log[-500:])
    assert '\\x0d[07-Dec-2026 08:47:11] NOTICE: [pool other] child 4242 exited\\x1b[K"' in log, log[-500:]


@pytest.mark.skipif(not os.path.exists(PHP_SO), reason="fpmd-php.so not built")
def test_what_a_worker_writes_to_stderr_cannot_drive_a_terminal(fpmd, workdir):
    """The bell, SO/SI (a switch of character set garbles every later line) and C1
    controls (CSI as UTF-8 U+009B or as a lone 0x9B byte) reached root's error log raw.
    UTF-8 text stays as it is, and a NUL too (php-fpm writes it; its tests expect it)."""
    write_script(f"{workdir}/c1.php",
                 '<?php file_put_contents("php://stderr", "bel \\x07 so \\x0e si \\x0f '
                 'csi \\xc2\\x9b2J raw \\x9b31m text \\xc3\\xa9\\xe2\\x82\\xac nul \\x00 end\\n");'
                 ' echo "ok";', 0o644)
    fpmd.start(basic_conf(workdir, php_pool(workdir, extra="catch_workers_output = yes\n")))
    assert fcgi_request(f"{workdir}/www.sock", "/c1.php", root=workdir).status == 200
    assert wait_for(lambda: "said into stderr" in fpmd.log(), 5), fpmd.log()[-1000:]
    with open(fpmd.log_path, "rb") as f:
        raw = f.read()
    line = [l for l in raw.split(b"\n") if b"said into stderr" in l][-1]
    for b in (b"\x07", b"\x0e", b"\x0f", b"\xc2\x9b", b"\x9b"):
        assert b not in line, (b, line)
    assert (b"bel \\x07 so \\x0e si \\x0f csi \\xc2\\x9b2J raw \\x9b31m "
            b"text \xc3\xa9\xe2\x82\xac nul \x00 end") in line, line


@pytest.mark.skipif(not os.path.exists(PHP_SO), reason="fpmd-php.so not built")
def test_a_dumpable_pool_sharing_the_opcache_with_another_user_is_refused(workdir):
    """process.dumpable lets a pool's PHP write its own memory (/proc/self/mem):
    with the shared zygote that is the opcache every shared pool runs from, so
    pool a could rewrite pool b's cached scripts.  Refused, with the way out."""
    pools = (php_pool(workdir, "a", extra="process.dumpable = yes\n") +
             php_pool(workdir, "b").replace("user = nobody", "user = www-data"))
    r = subprocess.run([FPMD, "-t", "-y", write_conf(workdir, basic_conf(workdir, pools))],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert ("pool a: process.dumpable = yes with the shared PHP zygote, which pool b of another "
            "user shares") in r.stderr + r.stdout, r.stderr
    assert "set php.zygote = pool" in r.stderr + r.stdout
    fixed = pools.replace("process.dumpable = yes\n", "process.dumpable = yes\nphp.zygote = pool\n")
    r = subprocess.run([FPMD, "-t", "-y", write_conf(workdir, basic_conf(workdir, fixed))],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    # pools of one user have nothing to hide from each other
    same = pools.replace("user = www-data", "user = nobody")
    r = subprocess.run([FPMD, "-t", "-y", write_conf(workdir, basic_conf(workdir, same))],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_a_log_directory_swapped_for_a_symlink_is_not_followed(fpmd, workdir):
    """The directory of access.log is a pool user's (below a directory of
    theirs): swapped for a symlink to a directory of root's before a reopen,
    the root master created a root-owned access.log there and handed the
    workers a descriptor to write it (into /etc/cron.d, say)."""
    site = pool_user_dir(workdir, "site")
    logs = f"{site}/logs"
    os.mkdir(logs)
    os.chown(logs, NOBODY, -1)
    rootonly = f"{workdir}/rootonly"
    os.mkdir(rootonly, 0o755)
    fpmd.start(basic_conf(workdir, pool_conf(workdir, extra=f"access.log = {logs}/access.log\n")))
    os.rename(logs, f"{site}/old")
    os.symlink(rootonly, logs)
    os.lchown(logs, NOBODY, -1)
    fpmd.signal(signal.SIGUSR1)
    fpmd.wait_log("failed to reopen access.log")
    assert not os.path.exists(f"{rootonly}/access.log")
    # a symlink in root's own directories is still followed: /var/run -> /run, /dev/stderr
    os.symlink(rootonly, f"{workdir}/linkdir")
    r = subprocess.run([FPMD, "-t", "-y", write_conf(workdir, basic_conf(workdir, pool_conf(
        workdir, extra=f"access.log = {workdir}/linkdir/access.log\n")))], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_roots_symlink_to_a_log_in_a_pool_users_directory_is_walked_too(fpmd, workdir):
    """An operator's link in root's own directory (site.log -> the pool user's
    logs/php.log) was followed in one step: the pool user swapped its logs
    directory for a symlink to a directory of root's, and the master opened a
    root file there for the workers."""
    site = pool_user_dir(workdir, "site")
    os.mkdir(f"{site}/logs")
    os.chown(f"{site}/logs", NOBODY, -1)
    os.symlink(f"{site}/logs/php.log", f"{workdir}/site.log")
    rootonly = f"{workdir}/rootonly"
    os.mkdir(rootonly, 0o755)
    victim = f"{rootonly}/php.log"
    with open(victim, "w") as f:
        f.write("root secret\n")
    os.chmod(victim, 0o600)
    fpmd.start(basic_conf(workdir, pool_conf(workdir, extra=f"access.log = {workdir}/site.log\n")))
    assert fcgi_request(f"{workdir}/www.sock", "/ping", root=workdir).status == 200
    assert wait_for(lambda: os.path.exists(f"{site}/logs/php.log"), 5)   # followed while it is safe
    os.rename(f"{site}/logs", f"{site}/old")
    os.symlink(rootonly, f"{site}/logs")
    os.lchown(f"{site}/logs", NOBODY, -1)
    fpmd.signal(signal.SIGUSR1)
    fpmd.wait_log("failed to reopen access.log")
    assert open(victim).read() == "root secret\n"


def test_a_symlinked_directory_in_roots_own_directory_is_followed(fpmd, workdir):
    """docs/operations.md: in root's own directories a symlink is followed as
    usual (/var/run -> /run), for a directory as for the file."""
    real = f"{workdir}/realdir"
    os.mkdir(real, 0o755)
    os.symlink(real, f"{workdir}/linkdir")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, extra=f"access.log = {workdir}/linkdir/access.log\n")))
    assert fcgi_request(f"{workdir}/www.sock", "/ping", root=workdir).status == 200
    assert wait_for(lambda: os.path.exists(f"{real}/access.log") and
                    "/ping" in open(f"{real}/access.log").read(), 5)


def test_a_chroots_group_file_gives_no_group_to_the_workers(fpmd, workdir):
    """The workers' supplementary groups were looked up (initgroups) as root
    after chroot(): the chroot's /etc/group, and NSS modules from its /lib,
    loaded as root.  A pool's user who can write its chroot (a tenant's home)
    got group 0, or root code.  The master resolves the list from the host's
    files now; the workers only set it."""
    import grp
    import pwd
    jail = os.path.join(workdir, "jail")
    os.makedirs(f"{jail}/etc")
    os.makedirs(f"{jail}/cgi-bin")
    with open(f"{jail}/etc/group", "w") as f:
        f.write("root:x:0:nobody\nshadow:x:42:nobody\nnogroup:x:65534:\n")
    with open(f"{jail}/etc/nsswitch.conf", "w") as f:
        f.write("passwd: files\ngroup: files\n")
    pool = (f"[www]\nuser = nobody\ngroup = nogroup\nlisten = {workdir}/www.sock\npm = static\n"
            f"pm.max_children = 1\napp.type = cgi\nchroot = {jail}\ncgi.root = /cgi-bin\n")
    fpmd.start(basic_conf(workdir, pool))
    worker = wait_for(lambda: fpmd.workers(), 5)[0]

    def groups():
        with open(f"/proc/{worker}/status") as f:
            line = next(ln for ln in f if ln.startswith("Groups:"))
        return sorted(int(g) for g in line.split()[1:])
    nogroup = grp.getgrnam("nogroup").gr_gid
    assert wait_for(lambda: os.stat(f"/proc/{worker}").st_uid == pwd.getpwnam("nobody").pw_uid, 5)
    assert groups() == sorted(set(os.getgrouplist("nobody", nogroup))), groups()
    assert 0 not in groups() and 42 not in groups()


def test_a_client_looping_on_protocol_errors_cannot_flood_the_log(fpmd, workdir):
    """One client looping connect / a record of a bad version / close wrote 126,000 lines
    (15 MB) into root's error log in 6 s: a line per connection.  Lines a client can cause
    at will are limited to 10 a second per worker, and say how many were left out."""
    import socket
    import struct
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=2)))
    sock = f"{workdir}/www.sock"
    bad = struct.pack(">BBHHBB", 9, 1, 1, 8, 0, 0) + b"\0" * 8
    sent, end = 0, time.monotonic() + 2.5
    while time.monotonic() < end:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(sock)
            s.sendall(bad)
            s.recv(16)
        except OSError:
            pass
        s.close()
        sent += 1
    time.sleep(1.2)
    # one more after a quiet second: it says how many of its kind were left out
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(bad)
    try:
        s.recv(16)
    except OSError:
        pass
    s.close()
    time.sleep(0.5)
    lines = [l for l in fpmd.log().splitlines() if "FastCGI protocol error" in l]
    assert sent > 300, sent
    assert len(lines) <= 2 * 10 * 5, (sent, len(lines))
    assert any("more like it left out" in l for l in lines), lines[-5:]
    # and the pool still serves
    assert fcgi_request(sock, "/ping").body == b"pong"
