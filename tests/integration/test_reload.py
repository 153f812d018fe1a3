"""Reload (USR2/HUP): lossless under load, refused on a bad config, new binary picked up."""
import os
import random
import shutil
import signal
import subprocess
import threading
import time

from conftest import (FPMD, alive, basic_conf, fcgi_request, pool_conf, wait_for, write_script)


def scripts(workdir):
    write_script(f"{workdir}/fast.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nfast'\n")
    write_script(f"{workdir}/slow.sh", "#!/bin/sh\nsleep 0.3\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslow'\n")
    write_script(f"{workdir}/long.sh", "#!/bin/sh\nsleep 5\nprintf 'Content-Type: text/plain\\r\\n\\r\\nlong'\n")


class Load:
    """c clients sending a mix of fast and 300 ms requests until stopped."""

    def __init__(self, sock, root, clients=16):
        self.sock, self.root = sock, root
        self.ok = 0
        self.failed = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(clients)]

    def run(self, i):
        while not self.stop.is_set():
            uri = "/slow.sh" if i % 4 == 0 else "/fast.sh"
            try:
                r = fcgi_request(self.sock, uri, root=self.root, timeout=20)
                good = r.status == 200 and r.body in (b"fast", b"slow")
            except Exception as e:  # noqa: BLE001 - every failure is counted
                good, r = False, repr(e)
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failed.append(r if isinstance(r, str) else r.stdout[:200])

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)


def test_reloads_under_load_lose_nothing(fpmd, workdir):
    scripts(workdir)
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=4)))
    sock = f"{workdir}/www.sock"
    with Load(sock, workdir) as load:
        for i in range(10):
            time.sleep(random.uniform(0.2, 0.8))
            # A configuration change every time: the pool's size.
            fpmd.write_conf(basic_conf(workdir, pool_conf(workdir, children=4 if i % 2 else 3)))
            fpmd.signal(signal.SIGUSR2 if i % 2 else signal.SIGHUP)
            fpmd.wait_log("ready to handle connections", count=i + 2, timeout=15)
        time.sleep(1)
    print(f"10 reloads under load: {load.ok} requests ok, {len(load.failed)} failed")
    assert load.failed == [], load.failed[:3]
    assert load.ok > 100
    assert fpmd.proc.poll() is None
    assert fpmd.log().count("using inherited socket fd=") >= 10
    # The previous generations are all gone, none left behind.
    assert wait_for(lambda: len(fpmd.workers()) == 4, 15), fpmd.workers()


def test_reload_applies_changes_pool_added_and_removed(fpmd, workdir):
    scripts(workdir)
    conf = basic_conf(workdir, pool_conf(workdir, "www", children=2) + pool_conf(workdir, "gone", children=1))
    fpmd.start(conf)
    assert len(fpmd.workers()) == 3
    with Load(f"{workdir}/www.sock", workdir, clients=8) as load:
        time.sleep(0.5)
        fpmd.write_conf(basic_conf(workdir, pool_conf(workdir, "www", children=4) +
                                   pool_conf(workdir, "new", children=1)))
        fpmd.signal(signal.SIGUSR2)
        fpmd.wait_log("ready to handle connections", count=2)
        assert wait_for(lambda: len(fpmd.workers()) == 5, 15), fpmd.workers()
        time.sleep(0.5)
    assert load.failed == [], load.failed[:3]
    # The previous generation left on SIGQUIT, under load, not at the SIGTERM deadline.
    assert "sending SIGTERM" not in fpmd.log()
    assert fcgi_request(f"{workdir}/new.sock", "/ping").body == b"pong"
    assert not os.path.exists(f"{workdir}/gone.sock")
    assert "closing inherited socket" in fpmd.log()


def test_reload_with_a_broken_config_changes_nothing(fpmd, workdir):
    scripts(workdir)
    fpmd.start(basic_conf(workdir))
    before = fpmd.workers()
    good = open(fpmd.conf_path).read()
    fpmd.write_conf(good + "pm.max_childs = 3\n")
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log(r"reload refused")
    log = fpmd.log()
    assert f"[{fpmd.conf_path}:" in log and "unknown entry 'pm.max_childs'" in log
    assert "did you mean 'pm.max_children'" in log
    time.sleep(0.3)
    assert fpmd.workers() == before
    assert fcgi_request(f"{workdir}/www.sock", "/fast.sh", root=workdir).body == b"fast"


def test_in_flight_request_survives_a_reload(fpmd, workdir):
    scripts(workdir)
    fpmd.start(basic_conf(workdir, global_extra="process_control_timeout = 10s"))
    result = {}
    t = threading.Thread(target=lambda: result.setdefault(
        "r", fcgi_request(f"{workdir}/www.sock", "/long.sh", root=workdir, timeout=20)))
    t.start()
    time.sleep(0.5)
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log("ready to handle connections", count=2)
    t.join(20)
    assert result["r"].status == 200 and result["r"].body == b"long"
    fpmd.wait_log("reload complete", timeout=10)


def test_reload_picks_up_a_new_binary(fpmd, workdir):
    scripts(workdir)
    binary = os.path.join(workdir, "fpmd-copy")
    shutil.copy(FPMD, binary)
    fpmd.start(basic_conf(workdir))
    # Swap the running binary (as a package upgrade does), then start a fresh
    # fpmd from the copy and reload it onto a patched version.
    fpmd.stop()
    other = fpmd.make()
    other.conf_path = fpmd.conf_path
    other.log_path = os.path.join(workdir, "second.log")
    import conftest
    saved = conftest.FPMD
    conftest.FPMD = binary
    try:
        other.start()
    finally:
        conftest.FPMD = saved
    data = open(binary, "rb").read()
    assert b"0.1.0" in data
    tmp = binary + ".new"
    with open(tmp, "wb") as f:
        # Only the first byte: the tail of a literal may be shared ("0" for a default).
        f.write(data.replace(b"0.1.0\0", b"7.1.0\0"))
    os.chmod(tmp, 0o755)
    os.rename(tmp, binary)
    with Load(f"{workdir}/www.sock", workdir, clients=4) as load:
        other.signal(signal.SIGUSR2)
        other.wait_log("ready to handle connections", count=2)
        time.sleep(0.5)
    assert load.failed == []
    exe = os.readlink(f"/proc/{other.pid}/exe")
    out = subprocess.run([f"/proc/{other.pid}/exe", "-v"], capture_output=True, text=True).stdout
    assert "7.1.0" in out, (exe, out)


def test_new_workers_that_cannot_start_keep_the_old_ones(fpmd, workdir):
    scripts(workdir)
    fpmd.start(basic_conf(workdir))
    old = fpmd.workers()
    # cgi.root that exists (fpmd -t passes) but that the pool's user cannot
    # resolve: the new workers die at start.
    os.makedirs(f"{workdir}/locked/inner")
    os.chmod(f"{workdir}/locked", 0o700)
    fpmd.write_conf(basic_conf(workdir, pool_conf(workdir).replace(
        f"cgi.root = {workdir}", f"cgi.root = {workdir}/locked/inner")))
    fpmd.signal(signal.SIGUSR2)
    # "ready to handle connections" waits for a new generation that never comes (15 s)
    fpmd.wait_log("fpm is running", count=2)
    time.sleep(2)
    assert all(alive(p) for p in old), "the previous workers must keep serving"
    assert fcgi_request(f"{workdir}/www.sock", "/fast.sh", root=workdir).body == b"fast"


def test_a_binary_that_rejects_the_config_is_not_run(fpmd, workdir):
    """The reload checks the configuration with the binary that would run."""
    scripts(workdir)
    binary = os.path.join(workdir, "fpmd-copy")
    shutil.copy(FPMD, binary)
    import conftest
    saved = conftest.FPMD
    conftest.FPMD = binary
    try:
        fpmd.start(basic_conf(workdir))
    finally:
        conftest.FPMD = saved
    before = fpmd.workers()
    # The upgrade on disk is a "binary" that rejects every configuration.
    tmp = binary + ".new"
    with open(tmp, "w") as f:
        f.write("#!/bin/sh\necho '[23-Nov-2026 00:00:00] ERROR: slowlog must be set (new binary)' >&2\n"
                "exit 78\n")
    os.chmod(tmp, 0o755)
    os.rename(tmp, binary)
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log("reload refused: the binary")
    assert "slowlog must be set" in fpmd.log()
    assert fpmd.workers() == before
    assert fcgi_request(f"{workdir}/www.sock", "/fast.sh", root=workdir).body == b"fast"


def test_reload_applies_listen_mode_to_the_inherited_socket(fpmd, workdir):
    import stat
    scripts(workdir)
    fpmd.start(basic_conf(workdir))
    sock = f"{workdir}/www.sock"
    inode = os.stat(sock).st_ino
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
    fpmd.write_conf(basic_conf(workdir, pool_conf(workdir, extra="listen.mode = 0600\nlisten.owner = daemon\n")))
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log("ready to handle connections", count=2)
    st = os.stat(sock)
    assert st.st_ino == inode, "the socket is inherited, not re-created"
    assert stat.S_IMODE(st.st_mode) == 0o600
    import pwd
    assert st.st_uid == pwd.getpwnam("daemon").pw_uid


def test_reload_never_changes_what_a_symlink_at_the_socket_path_points_to(fpmd, workdir):
    """The socket's directory may be the pool user's (Debian's /run/php is
    www-data's): a pool user that replaces the socket with a symlink to a root
    file must not get that file chowned, chmodded or given an ACL by the root
    master at the next reload."""
    import stat
    scripts(workdir)
    extra = "listen.mode = 0666\nlisten.owner = daemon\nlisten.acl_users = daemon\n"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, extra=extra)))
    sock = f"{workdir}/www.sock"
    victim = f"{workdir}/victim"
    with open(victim, "w") as f:
        f.write("root secret\n")
    os.chmod(victim, 0o600)
    os.symlink(victim, f"{workdir}/.x")
    os.rename(f"{workdir}/.x", sock)
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log("ready to handle connections", count=2)
    st = os.stat(victim)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o600), st
    try:
        acl = os.getxattr(victim, "system.posix_acl_access")
    except OSError:
        acl = None
    assert acl is None, acl
    assert "is not the pool's socket any more" in fpmd.log(), fpmd.log()[-2000:]


def test_a_reload_that_rolls_back_signals_and_names_no_old_worker(fpmd, workdir):
    """While the new generation never becomes ready, the old workers serve on (the reload
    may roll back): past process_control_timeout the master said "2 workers of the previous
    generation still running ...; sending SIGTERM", then SIGKILL, signalling none of them."""
    write_script(f"{workdir}/ok.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    write_script(f"{workdir}/broken", "#!/nonexistent/interpreter\n")
    ge = "process_control_timeout = 2s\n"
    other = pool_conf(workdir, "other")       # reloaded fine: its old workers are told to quit
    fpmd.start(basic_conf(workdir, pool_conf(workdir) + other, global_extra=ge))
    sock = f"{workdir}/www.sock"
    assert fcgi_request(sock, "/ok.sh", root=workdir).body == b"ok"
    fpmd.write_conf(basic_conf(workdir, pool_conf(workdir, app="exec", extra=(
        f"exec.command = {workdir}/broken\n")).replace(f"cgi.root = {workdir}\n", "") + other,
        global_extra=ge))
    fpmd.signal(signal.SIGUSR2)
    for _ in range(8):
        time.sleep(0.5)
        assert fcgi_request(sock, "/ok.sh", root=workdir).body == b"ok"
    fpmd.wait_log("the previous configuration serves again", timeout=30)
    assert fcgi_request(sock, "/ok.sh", root=workdir).body == b"ok"
    assert "previous generation still running" not in fpmd.log(), fpmd.log()
    # the rolled-back master still names the configuration file, not the descriptor it read
    with open(f"/proc/{fpmd.pid}/cmdline", "rb") as f:
        title = f.read().replace(b"\0", b" ").decode()
    assert f"master process ({fpmd.conf_path})" in title, title


def test_a_reload_failing_in_a_pool_keeps_that_pools_socket(fpmd, workdir):
    """The new master took the pool's socket, then failed opening the pool
    (its pm.status_listen address is taken: the check cannot know): the
    rollback's master must get the socket back.  It was closed and its path
    removed: every client of the pool got "no such file" after the reload."""
    import socket as so
    scripts(workdir)
    taken = so.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        fpmd.start(basic_conf(workdir))
        sock = f"{workdir}/www.sock"
        inode = os.stat(sock).st_ino
        fpmd.write_conf(basic_conf(workdir, pool_conf(
            workdir, extra=f"pm.status_listen = 127.0.0.1:{taken.getsockname()[1]}\n")))
        fpmd.signal(signal.SIGUSR2)
        fpmd.wait_log("the previous configuration serves again", timeout=20)
        assert os.stat(sock).st_ino == inode
        assert fcgi_request(sock, "/fast.sh", root=workdir).body == b"fast"
    finally:
        taken.close()
