"""Supervision faults of issue #27: what a reload or a start leaves running stays supervised.

Each test prints a `CHAOS 27.<item>:` line with what it measured.
"""
import re
import signal
import time

import pytest

from chaoslib import base, module_pool, report

basic_conf = base.basic_conf
pool_conf = base.pool_conf
fcgi_request = base.fcgi_request
wait_for = base.wait_for
write_script = base.write_script


def _pools(workdir, kind):
    """(good pool text, the same pool with a change that passes -t but whose workers cannot start)."""
    extra = "pm.max_requests = 5\n"
    if kind == "module":
        good = module_pool(workdir, children=2, extra=extra)
        return good, good.replace("module.param[mode] = serve", "module.param[mode] = initfail"), \
            f"{workdir}/app.sock", "/x", b"ok"
    if kind == "php":
        # the new workers' application dies as it boots, before it serves (fpmd -t sees a
        # readable script; a missing chdir, or apparmor_hat without AppArmor, which this
        # used, are refused by fpmd -t now)
        write_script(f"{workdir}/ok.php", "<?php echo 'ok';\n", 0o644)
        write_script(f"{workdir}/boot.php", "<?php exit(3);\n", 0o644)
        good = (f"[www]\nuser = nobody\nlisten = {workdir}/www.sock\npm = static\n"
                f"pm.max_children = 2\n{extra}")
        return good, good + f"php.worker = {workdir}/boot.php\n", f"{workdir}/www.sock", "/ok.php", b"ok"
    if kind == "exec":
        # the new command is an executable file (fpmd -t passes it) whose interpreter is missing:
        # its exec fails in every new worker
        import os
        from chaoslib import TOP
        app = os.path.join(TOP, "tests", "integration", "fcgi_app.py")
        write_script(f"{workdir}/broken", "#!/nonexistent/interpreter\n")
        good = (f"[app]\nuser = nobody\nlisten = {workdir}/app.sock\npm = static\n"
                f"pm.max_children = 2\napp.type = exec\nexec.command = /usr/bin/python3 {app}\n{extra}")
        return good, good.replace(f"exec.command = /usr/bin/python3 {app}",
                                  f"exec.command = {workdir}/broken"), \
            f"{workdir}/app.sock", "/x", b"pid="
    # a cgi.root that exists (fpmd -t passes) where the pool's user cannot go: its workers
    # cannot resolve it and refuse to start
    import os
    write_script(f"{workdir}/ok.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    os.makedirs(f"{workdir}/locked/inner")
    os.chmod(f"{workdir}/locked", 0o700)
    good = pool_conf(workdir, children=2, extra=extra)
    return good, good.replace(f"cgi.root = {workdir}", f"cgi.root = {workdir}/locked/inner"), \
        f"{workdir}/www.sock", "/ok.sh", b"ok"


@pytest.mark.parametrize("kind", ["module", "cgi", "php", "exec"])
def test_27_1_a_failed_reload_leaves_the_pool_supervised(fpmd, workdir, kind):
    """Item 1: the new workers never start; the old ones recycle (max_requests 5) and must be replaced."""
    good, bad, sock, uri, want = _pools(workdir, kind)
    fpmd.start(basic_conf(workdir, good))
    assert fcgi_request(sock, uri, root=workdir).body.startswith(want)
    fpmd.write_conf(basic_conf(workdir, bad))
    fpmd.signal(signal.SIGUSR2)
    # Requests while the new master waits for its canary: the old workers recycle meanwhile.
    fpmd.wait_log("fpm is running", count=2, timeout=10)
    ok, failed = 0, []
    t0 = time.monotonic()
    for i in range(25):    # five times what the two old workers can serve before they recycle
        try:
            r = fcgi_request(sock, uri, root=workdir, timeout=8)
            if r.body.startswith(want) if kind == "exec" else r.body == want:
                ok += 1
            else:
                failed.append((i, r.status, r.stdout[:80]))
        except Exception as e:  # noqa: BLE001 - every failure is counted
            failed.append((i, repr(e)))
    took = time.monotonic() - t0
    fpmd.wait_log("reload failed", timeout=30)
    fpmd.wait_log("the previous configuration serves again", timeout=30)
    # a php pool's zygote is a child of the master too (and only the restored one may be left)
    back = wait_for(lambda: len(fpmd.workers()) == (3 if kind == "php" else 2), 10)
    report("27.1", f"{kind} pool, static 2, max_requests 5, reload whose workers cannot start: "
                   f"{ok}/25 requests served during and after it in {took:.1f}s, {len(failed)} failed, "
                   f"pool back to 2 workers: {bool(back)}")
    assert failed == [], (failed[:5], fpmd.log()[-3000:])
    assert back, fpmd.workers()
    assert fpmd.proc.poll() is None


@pytest.mark.parametrize("pm", ["static", "dynamic"])
def test_27_3_a_worker_that_exits_0_before_it_is_ready_is_backed_off(fpmd, workdir, pm):
    """Item 3: a module whose init calls exit(0) must not make a fork storm (a dynamic pool
    short of its spares waits for the back-off too)."""
    extra = "pm.start_servers = 2\npm.min_spare_servers = 2\npm.max_spare_servers = 3\n" \
        if pm == "dynamic" else ""
    fpmd.start(basic_conf(workdir, module_pool(workdir, mode="exit0", pm=pm, children=4 if extra else 2,
                                               extra=extra)), wait_ready=False)
    fpmd.wait_log("fpm is running", timeout=10)
    time.sleep(3)
    starts = len(re.findall(r"child \d+ started", fpmd.log()))
    report("27.3", f"module whose init calls exit(0), {pm} 2: {starts} worker starts in 3 s")
    assert fpmd.proc.poll() is None
    assert starts <= 30, fpmd.log()[-2000:]
    assert "keep dying right after start" in fpmd.log()


def _oneshot(workdir):
    """A libfcgi program that serves one request and exits (a CGI-style FastCGI program)."""
    import os
    import subprocess
    if not os.path.exists("/usr/include/fcgi_stdio.h"):
        pytest.skip("libfcgi-dev is not installed")
    with open(f"{workdir}/oneshot.c", "w") as f:
        f.write('#include <fcgi_stdio.h>\nint main(void) { if (FCGI_Accept() >= 0)\n'
                '  printf("Content-Type: text/plain\\r\\n\\r\\nok"); return 0; }\n')
    subprocess.run(["cc", "-O2", "-o", f"{workdir}/oneshot", f"{workdir}/oneshot.c", "-lfcgi"], check=True)
    return f"{workdir}/oneshot"


def _exec_pool(workdir, command, children=2):
    return (f"[app]\nuser = nobody\nlisten = {workdir}/app.sock\npm = static\n"
            f"pm.max_children = {children}\napp.type = exec\nexec.command = {command}\n")


def test_27_9_a_program_that_exits_after_each_request_is_no_failure(fpmd, workdir):
    """Item 9: restarting a program that served its request is recycling: no 503, few log lines."""
    from chaoslib import Load
    fpmd.start(basic_conf(workdir, _exec_pool(workdir, _oneshot(workdir))))
    seconds = 4.0
    with Load(f"{workdir}/app.sock", "/x", clients=4, seconds=seconds,
              check=lambda r: r.status == 200 and r.body == b"ok") as load:
        load.wait()
    lines = len(re.findall(r"exec.command exited", fpmd.log()))
    report("27.9", f"one-shot program, 2 workers, c=4 for {seconds:.0f}s: {load.ok} ok, "
                   f"{len(load.failed)} failed, {lines} restart log lines")
    assert load.failed == [], load.failed[:5]
    assert load.ok > 50
    assert lines <= 4 * seconds + 4, fpmd.log()[-2000:]


def test_27_9_a_program_that_fails_at_start_backs_off_pool_wide(fpmd, workdir):
    """Item 9: a program that exits at once: a pool-wide back-off, rate-limited log lines, and a
    request waits (bounded) for a start instead of an instant 503."""
    fpmd.start(basic_conf(workdir, _exec_pool(workdir, "/bin/false", children=4)))
    time.sleep(0.2)
    t0 = time.monotonic()
    r = fcgi_request(f"{workdir}/app.sock", "/x", timeout=15)
    took = time.monotonic() - t0
    time.sleep(max(0.0, 4.0 - took))
    log = fpmd.log()
    exits = len(re.findall(r"exec.command exited with code 1", log))
    starts_logged = exits + sum(int(n) for n in re.findall(r"\((\d+) more exits", log))
    report("27.9", f"/bin/false, 4 workers, 4 s: request answered {r.status} after {took:.1f}s; "
                   f"{exits} exit lines logged, {starts_logged} exits counted")
    assert r.status in (502, 503)
    assert 0.5 <= took <= 8, took        # it waited for a start, within a bound
    assert exits <= 10, log[-3000:]
    assert starts_logged <= 30, log[-3000:]
