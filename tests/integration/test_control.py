"""fpmctl's master commands over control_socket, and the ping/status shortcuts."""
import os
import signal
import stat
import subprocess
import threading
import time

from conftest import FPMCTL, basic_conf, fcgi_request, pool_conf, wait_for, write_script


def ctl(*args, timeout=30):
    return subprocess.run([FPMCTL, *args], capture_output=True, text=True, timeout=timeout)


def start(fpmd, workdir, pools=None):
    write_script(f"{workdir}/fast.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nfast'\n")
    fpmd.start(basic_conf(workdir, pools, global_extra=f"control_socket = {workdir}/fpmd.ctl"))
    return f"{workdir}/fpmd.ctl"


def test_control_socket_is_root_only(fpmd, workdir):
    sock = start(fpmd, workdir)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600


def test_pools_and_reopen(fpmd, workdir):
    sock = start(fpmd, workdir)
    r = ctl("pools", "-c", sock)
    assert r.returncode == 0, r.stderr
    assert "pool www: pm static" in r.stdout and "processes 2" in r.stdout
    assert ctl("reopen", "-c", sock).returncode == 0
    fpmd.wait_log("error log file re-opened")


def test_reload_waits_for_the_new_generation(fpmd, workdir):
    sock = start(fpmd, workdir)
    old = fpmd.workers()
    r = ctl("reload", "-c", sock)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK reloaded" in r.stdout
    # When fpmctl returns, the new workers serve.
    assert not set(old) & set(fpmd.workers()) or wait_for(lambda: not set(old) & set(fpmd.workers()), 5)
    assert fcgi_request(f"{workdir}/www.sock", "/fast.sh", root=workdir).body == b"fast"


def test_reload_refused_prints_the_errors(fpmd, workdir):
    sock = start(fpmd, workdir)
    before = fpmd.workers()
    with open(fpmd.conf_path, "a") as f:
        f.write("pm.max_children = zero\n")
    r = ctl("reload", "-c", sock)
    assert r.returncode == 1
    assert f"[{fpmd.conf_path}:" in r.stderr and "pm.max_children" in r.stderr
    assert "reload refused" in r.stderr
    assert fpmd.workers() == before


def test_a_reload_that_cannot_start_answers_and_leaves_the_control_socket_usable(fpmd, workdir):
    """The new configuration passes the check but cannot start (its address is
    taken): the previous one is restored.  fpmctl waited its whole timeout for
    an answer, and the control socket said "busy" to every command after."""
    import socket as so
    taken = so.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        sock = start(fpmd, workdir)
        with open(fpmd.conf_path) as f:
            text = f.read()
        with open(fpmd.conf_path, "w") as f:
            f.write(text.replace(f"listen = {workdir}/www.sock", f"listen = 127.0.0.1:{port}"))
        r = ctl("reload", "-c", sock, "--timeout", "20", timeout=30)
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert "reload failed: the new configuration does not start" in r.stdout + r.stderr
        fpmd.wait_log("the previous configuration serves again")
        r = ctl("pools", "-c", sock)
        assert r.returncode == 0 and "pool www" in r.stdout, r.stdout + r.stderr
        with open(fpmd.conf_path, "w") as f:
            f.write(text)
        r = ctl("reload", "-c", sock)
        assert r.returncode == 0 and "OK reloaded" in r.stdout, r.stdout + r.stderr
    finally:
        taken.close()


def test_quit_returns_when_the_master_is_gone(fpmd, workdir):
    sock = start(fpmd, workdir)
    r = ctl("quit", "-c", sock)
    assert r.returncode == 0 and "OK finishing" in r.stdout
    assert fpmd.wait(5) == 0


def test_signal_mode_with_a_pid_file(fpmd, workdir):
    start(fpmd, workdir)
    r = ctl("reopen", "-g", f"{workdir}/fpmd.pid")
    assert r.returncode == 0 and "SIGUSR1" in r.stdout
    fpmd.wait_log("error log file re-opened")
    r = ctl("stop", "-g", f"{workdir}/fpmd.pid")
    assert r.returncode == 0
    assert fpmd.wait(5) == 0


def test_usage_and_connection_errors(workdir):
    assert ctl("reload", "-c", f"{workdir}/a.ctl", "-g", f"{workdir}/a.pid").returncode == 2
    r = ctl("reload", "-c", f"{workdir}/nothing.ctl")
    assert r.returncode == 3 and r.stderr.count("\n") == 1


def test_ping_and_status_shortcuts(fpmd, workdir):
    start(fpmd, workdir)
    r = ctl("ping", "-s", f"unix:{workdir}/www.sock")
    assert r.returncode == 0 and r.stdout == "pong\n"
    r = ctl("status", "-s", f"unix:{workdir}/www.sock", "--json", "--full")
    assert r.returncode == 0 and '"pool":"www"' in r.stdout and '"processes":[' in r.stdout
    assert ctl("ping", "-s", f"unix:{workdir}/none.sock").returncode == 3


def test_reload_keeps_prefix_and_environment_expansion(fpmd, workdir):
    """-p values and ${VAR} must read the same after the process title rewrote argv."""
    write_script(f"{workdir}/fast.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nfast'\n")
    os.makedirs(f"{workdir}/run", exist_ok=True)
    conf = ("[global]\npid = run/fpmd.pid\nerror_log = run/error.log\ncontrol_socket = run/fpmd.ctl\n"
            "[www]\nuser = ${FPMD_TEST_USER}\nlisten = run/www.sock\npm = static\npm.max_children = 1\n"
            f"app.type = cgi\ncgi.root = {workdir}\n")
    os.environ["FPMD_TEST_USER"] = "nobody"
    try:
        # -p first: its value sits where the process title is written.
        fpmd.start(conf, first_args=("-p", workdir))
    finally:
        del os.environ["FPMD_TEST_USER"]
    r = ctl("reload", "-c", f"{workdir}/run/fpmd.ctl")
    assert r.returncode == 0, r.stdout + r.stderr
    assert fcgi_request(f"{workdir}/run/www.sock", "/fast.sh", root=workdir).body == b"fast"


def test_scale_sets_a_floor_for_ondemand_and_dynamic(fpmd, workdir):
    pools = (pool_conf(workdir, "od", pm="ondemand", children=5, extra="pm.process_idle_timeout = 1s\n")
             + pool_conf(workdir, "st", children=2))
    sock = start(fpmd, workdir, pools)
    def od_workers():
        found = []
        for p in fpmd.workers():
            try:                          # a worker may retire between listing and reading
                if open(f"/proc/{p}/cmdline").read().startswith("fpmd: pool od"):
                    found.append(p)
            except OSError:
                pass
        return found

    assert od_workers() == []
    r = ctl("scale", "-c", sock, "od", "=3")
    assert r.returncode == 0 and "at least 3 workers" in r.stdout, r.stdout + r.stderr
    assert wait_for(lambda: len(od_workers()) == 3, 5)
    time.sleep(2.5)                       # past pm.process_idle_timeout: the floor holds
    assert len(od_workers()) == 3
    assert ctl("scale", "-c", sock, "od", "+9").stdout.count("at least 5 workers") == 1  # capped
    assert wait_for(lambda: len(od_workers()) == 5, 5)
    # a negative count as the help writes it (getopt took "-2" for an option)
    r = ctl("scale", "-c", sock, "od", "-2")
    assert r.returncode == 0 and "at least 3 workers" in r.stdout, r.stdout + r.stderr
    assert ctl("scale", "-c", sock, "od", "=0").returncode == 0
    assert wait_for(lambda: od_workers() == [], 10)     # idle ones retire again
    r = ctl("scale", "-c", sock, "st", "+1")
    assert r.returncode == 1 and "pm = static" in r.stderr
    assert ctl("scale", "-c", sock, "nope", "+1").returncode == 1
    assert ctl("scale", "-c", sock, "od").returncode == 2


def test_signal_mode_never_signals_what_is_not_an_fpmd_master(workdir):
    """A pid file outlives a master killed with SIGKILL; its number may be any
    process's by then: fpmctl -g signalled it and said it had."""
    victim = subprocess.Popen(["sleep", "30"])
    try:
        with open(f"{workdir}/stale.pid", "w") as f:
            f.write(f"{victim.pid}\n")
        r = ctl("reload", "-g", f"{workdir}/stale.pid")
        assert r.returncode == 3 and "is not an fpmd master" in r.stderr, r.stderr
        time.sleep(0.2)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_a_reloads_notices_stay_notices(fpmd, workdir):
    """php-fpm's own notice (pm.start_servers not set) was logged as ERROR and
    printed by fpmctl as an error at every reload, though a NOTICE at start."""
    pools = pool_conf(workdir, pm="dynamic", children=4,
                      extra="pm.min_spare_servers = 1\npm.max_spare_servers = 2\n")
    sock = start(fpmd, workdir, pools)
    r = ctl("reload", "-c", sock)
    assert r.returncode == 0, r.stderr
    assert "notice: " in r.stdout and "pm.start_servers" in r.stdout, r.stdout
    assert "error" not in r.stderr, r.stderr
    assert "ERROR" not in fpmd.log(), fpmd.log()[-1500:]


def test_the_control_socket_answers_throughout_a_reload(fpmd, workdir):
    """The control socket was closed at the reload's exec and made again by the new
    master once it had started: a command sent in between was refused (exit 3, read by
    scripts as "fpmd is down"), and a second `fpmctl reload` 50 ms after the first failed.
    It is passed across the exec now; what comes meanwhile waits in its backlog."""
    sock = start(fpmd, workdir)
    fpmd.signal(signal.SIGUSR2)
    results = []
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        r = ctl("pools", "-c", sock, timeout=20)
        results.append((r.returncode, r.stderr.strip()))
        time.sleep(0.02)
    fpmd.wait_log("reload complete", timeout=10)
    bad = [x for x in results if x[0] != 0]
    assert results and not bad, bad[:3]
    r = ctl("reload", "-c", sock)
    assert r.returncode == 0, r.stdout + r.stderr
