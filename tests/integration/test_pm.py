"""Process managers: dynamic, ondemand, recycling, request timeouts, slowlog, listen queue."""
import json
import re
import os
import signal
import subprocess
import threading
import time

from conftest import (Response, alive, basic_conf, build_request, cgi_params, children_of,
                      connect, fcgi_request, out_of_descriptors, pool_conf, read_records,
                      wait_for, write_script)


def status(sock):
    return json.loads(fcgi_request(sock, "/status?json&full").body)


def burst(sock, root, uri, n, timeout=30):
    results, errors = [], []

    def one():
        try:
            results.append(fcgi_request(sock, uri, root=root, timeout=timeout))
        except Exception as e:  # noqa: BLE001 - every failure is counted
            errors.append(repr(e))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, results, errors


def test_dynamic_ramps_up_and_down(fpmd, workdir):
    write_script(f"{workdir}/slow.sh", "#!/bin/sh\nsleep 1.5\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    extra = ("pm.start_servers = 2\npm.min_spare_servers = 1\npm.max_spare_servers = 2\n"
             "pm.max_spawn_rate = 8\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="dynamic", children=10, extra=extra),
                          global_extra="log_level = debug\n"))
    sock = f"{workdir}/www.sock"
    assert len(fpmd.workers()) == 2
    threads, results, errors = burst(sock, workdir, "/slow.sh", 8)
    peak = [0]

    def grown():
        peak[0] = max(peak[0], len(fpmd.workers()))
        return peak[0] >= 6

    assert wait_for(grown, 5), f"only {peak[0]} workers under a burst of 8"
    for t in threads:
        t.join(30)
    assert not errors and len(results) == 8 and all(r.body == b"ok" for r in results)
    # Back within the spare band: at most max_spare idle once the burst is over.
    assert wait_for(lambda: len(fpmd.workers()) <= 2, 15), fpmd.workers()
    # php-fpm's lines and levels: the pm's spawns and retirements are DEBUG
    log = fpmd.log()
    assert re.search(r"DEBUG: \[pool www\] child \d+ has been killed by the process management "
                     r"after [\d.]+ seconds from start", log), log[-2000:]
    assert not re.search(r"NOTICE: \[pool www\] child \d+ (started|exited)", log), log[-2000:]


def test_dynamic_spawns_for_every_waiting_connection(fpmd, workdir):
    """Issue 25: a burst on a dynamic pool gets a worker per waiting connection at once (as
    ondemand's does), not one per tick while min_spare_servers = 1 is the only shortfall."""
    # the script's parent is the worker that serves it
    write_script(f"{workdir}/slow.sh", "#!/bin/sh\nsleep 1\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s' $PPID\n")
    extra = "pm.start_servers = 1\npm.min_spare_servers = 1\npm.max_spare_servers = 3\n"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="dynamic", children=40, extra=extra)))
    sock = f"{workdir}/www.sock"
    t0 = time.monotonic()
    # all 32 sent at once (not 32 threads that a loaded machine may start late), then read
    conns = []
    for _ in range(32):
        s = connect(sock, timeout=30)
        s.sendall(build_request(cgi_params("/slow.sh", workdir)))
        conns.append(s)
    results = []
    for s in conns:
        with s:
            results.append(read_records(s, Response(), timeout=30))
    elapsed = time.monotonic() - t0
    served_by = {r.body for r in results}
    print(f"dynamic: 32 x 1 s requests done in {elapsed:.2f}s by {len(served_by)} workers")
    assert len(results) == 32 and all(r.body.isdigit() for r in results)
    # All 32 ran side by side, each in a worker of its own (before: one new worker per
    # 100 ms tick, the first ones served several requests in turn; 3.9 s)
    assert len(served_by) == 32, sorted(served_by)
    assert "seems busy" not in fpmd.log()
    # then back within the spare band
    assert wait_for(lambda: len(fpmd.workers()) <= 4, 40), fpmd.workers()


def test_a_connection_right_after_a_look_is_not_left_for_the_next_second(fpmd, workdir):
    """Arrivals within 20 ms of a look are left to the pool's timer (a flood costs the master
    one look per 20 ms): the timer's next look must then come at once, not a second later."""
    write_script(f"{workdir}/slow.sh", "#!/bin/sh\nsleep 3\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslow'\n")
    write_script(f"{workdir}/fast.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nfast'\n")
    extra = "pm.start_servers = 1\npm.min_spare_servers = 1\npm.max_spare_servers = 1\n"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="dynamic", children=4, extra=extra)))
    sock = f"{workdir}/www.sock"
    took = []
    for _ in range(3):
        assert wait_for(lambda: len(fpmd.workers()) == 1, 15), fpmd.workers()   # one idle worker
        # the one idle worker takes a long request; the master looks (no spare yet: php-fpm's
        # pace), and a second request comes within a few ms of that look
        a = connect(sock, timeout=30)
        a.sendall(build_request(cgi_params("/slow.sh", workdir)))
        time.sleep(0.005)
        t0 = time.monotonic()
        r = fcgi_request(sock, "/fast.sh", root=workdir, timeout=10)
        took.append(time.monotonic() - t0)
        assert r.body == b"fast"
        a.close()
    print("the second request answered after " + ", ".join(f"{t * 1000:.0f} ms" for t in took))
    # a new worker is started for it at once (before: the pool's next look, a second later)
    assert max(took) < 0.5, took


def test_ondemand_starts_from_zero_and_grows_to_the_burst(fpmd, workdir):
    write_script(f"{workdir}/slow.sh", "#!/bin/sh\nsleep 2\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    extra = "pm.process_idle_timeout = 2s\npm.max_spawn_rate = 32\n"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="ondemand", children=32, extra=extra)))
    sock = f"{workdir}/www.sock"
    assert fpmd.workers() == []
    t0 = time.monotonic()
    threads, results, errors = burst(sock, workdir, "/slow.sh", 32)
    assert wait_for(lambda: len(fpmd.workers()) >= 32, 5)
    grow_time = time.monotonic() - t0
    for t in threads:
        t.join(30)
    elapsed = time.monotonic() - t0
    print(f"ondemand 0 -> 32 workers in {grow_time:.3f}s; 32 x 2s requests done in {elapsed:.2f}s")
    assert not errors and len(results) == 32 and all(r.body == b"ok" for r in results)
    # All 32 ran side by side: nothing queued behind too few workers.
    assert elapsed < 6
    # Idle timeout retires them all again.
    assert wait_for(lambda: fpmd.workers() == [], 15)


def test_ondemand_never_retires_a_worker_with_a_request(fpmd, workdir):
    write_script(f"{workdir}/ok.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="ondemand", children=2,
                                             extra="pm.process_idle_timeout = 1s\n")))
    sock = f"{workdir}/www.sock"
    end = time.monotonic() + 4
    count = 0
    while time.monotonic() < end:
        # Requests right around the idle deadline must all be served.
        assert fcgi_request(sock, "/ok.sh", root=workdir).body == b"ok"
        count += 1
        time.sleep(0.9 if count % 2 else 1.05)
    assert count >= 3


def test_max_requests_recycles_without_failures(fpmd, workdir):
    write_script(f"{workdir}/ok.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    extra = "pm.max_requests = 20\npm.max_requests_jitter = 10\n"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=3, extra=extra)))
    sock = f"{workdir}/www.sock"
    first = set(fpmd.workers())
    errors = []

    def client():
        for _ in range(100):
            try:
                r = fcgi_request(sock, "/ok.sh", root=workdir)
                if r.body != b"ok":
                    errors.append(r.stdout)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    print(f"max_requests recycling: 400 requests, {len(errors)} failed")
    assert not errors, errors[:3]
    assert not first & set(fpmd.workers()), "no worker was recycled"
    exits = fpmd.log().count("exited with code 0")
    assert exits >= 10
    # Jitter: the recycled workers did not all serve the same number of requests.


def test_terminate_timeout_on_a_stuck_worker(fpmd, workdir):
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1,
                                             extra="request_terminate_timeout = 1\n")))
    sock = f"{workdir}/www.sock"
    worker = fpmd.workers()[0]
    # A client that sends half a request keeps the worker reading forever.
    s = connect(sock)
    s.sendall(build_request(cgi_params("/x.sh", workdir))[:30])
    fpmd.wait_log(rf"\[pool www\] child {worker}, script .* execution timed out \([0-9.]+ sec\), terminating", timeout=5)
    assert wait_for(lambda: not alive(worker), 5)
    assert wait_for(lambda: len(fpmd.workers()) == 1, 5)
    s.close()
    assert fcgi_request(sock, "/ping").body == b"pong"


def test_terminate_timeout_on_a_cgi_tree_leaves_no_orphan(fpmd, workdir):
    write_script(f"{workdir}/tree.sh", "#!/bin/sh\n(sleep 60; echo never) &\nsleep 60 &\necho $! > /tmp/fpmd-pm-tree\nwait\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1,
                                             extra="request_terminate_timeout = 1\n")))
    worker = fpmd.workers()[0]
    r = fcgi_request(f"{workdir}/www.sock", "/tree.sh", root=workdir, timeout=15)
    assert r.status == 504
    orphan = int(open("/tmp/fpmd-pm-tree").read())
    os.unlink("/tmp/fpmd-pm-tree")
    assert wait_for(lambda: not alive(orphan), 3)
    assert alive(worker), "the worker itself survives a cgi timeout"
    # No process of the pool's user is left except the worker.  Only this test's: the
    # script's children run in its directory (other test runs on the machine may have
    # their own `sleep` as nobody).
    def ours(p):
        try:
            return os.readlink(f"/proc/{p}/cwd") == os.path.realpath(workdir)
        except OSError:
            return False
    def leftover(p):
        try:        # a process may end while it is looked at
            return (int(p) != worker and os.stat(f"/proc/{p}").st_uid == 65534 and alive(int(p))
                    and "sleep" in open(f"/proc/{p}/comm").read() and ours(p))
        except OSError:
            return False
    leftovers = [p for p in os.listdir("/proc") if p.isdigit() and leftover(p)]
    assert not leftovers


def test_slowlog_entry_and_counter(fpmd, workdir):
    write_script(f"{workdir}/slow.sh", "#!/bin/sh\nsleep 2\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    extra = f"request_slowlog_timeout = 1\nslowlog = {workdir}/slow.log\n"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=2, extra=extra)))
    sock = f"{workdir}/www.sock"
    assert fcgi_request(sock, "/slow.sh", root=workdir).body == b"ok"
    fpmd.wait_log(r"executing too slow \([0-9.]+ sec\), logging")
    log = open(f"{workdir}/slow.log").read()
    assert "[pool www] pid" in log and f"script_filename = {workdir}/slow.sh" in log
    assert "sleep" in log, log   # the script's process and where it waits
    assert status(sock)["slow requests"] == 1


def test_listen_queue_on_a_unix_socket(fpmd, workdir):
    write_script(f"{workdir}/slow.sh", "#!/bin/sh\nsleep 2\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="dynamic", children=1,
                                             extra="pm.start_servers = 1\npm.min_spare_servers = 1\n"
                                                   "pm.max_spare_servers = 1\n"
                                                   f"[status]\nuser = nobody\nlisten = {workdir}/st.sock\n"
                                                   "pm = static\npm.max_children = 1\napp.type = cgi\n"
                                                   f"cgi.root = {workdir}\n")))
    sock = f"{workdir}/www.sock"
    threads, results, errors = burst(sock, workdir, "/slow.sh", 4)
    time.sleep(0.8)
    # The busy pool's own status cannot answer (its one worker is busy); read the
    # header the master keeps, through the pool's scoreboard, once it is free.
    for t in threads:
        t.join(30)
    st = status(sock)
    assert st["max listen queue"] >= 2, st
    assert st["max children reached"] >= 1
    assert not errors


def test_slowlog_has_the_native_stack_of_the_slow_program(fpmd, workdir):
    """A C CGI program asleep in a known function: its name is in the slowlog."""
    import subprocess
    src = f"{workdir}/slowprog.c"
    with open(src, "w") as f:
        f.write("#include <stdio.h>\n#include <unistd.h>\n"
                "__attribute__((noinline)) void deep_sleep_in_known_function(void) { sleep(2); }\n"
                "__attribute__((noinline)) void called_by_main(void) { deep_sleep_in_known_function(); }\n"
                "int main(void) { called_by_main();\n"
                " printf(\"Content-Type: text/plain\\r\\n\\r\\nok\"); return 0; }\n")
    subprocess.run(["cc", "-g", "-O0", "-o", f"{workdir}/slow.cgi", src], check=True)
    extra = f"request_slowlog_timeout = 1\nslowlog = {workdir}/slow.log\nrequest_slowlog_trace_depth = 10\n"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1, extra=extra)))
    assert fcgi_request(f"{workdir}/www.sock", "/slow.cgi", root=workdir).body == b"ok"
    assert wait_for(lambda: "called_by_main" in open(f"{workdir}/slow.log").read(), 5)
    log = open(f"{workdir}/slow.log").read()
    frames = [l for l in log.splitlines() if l.startswith("[0x")]
    names = [l.split()[1].split("+")[0] for l in frames]
    assert names.index("deep_sleep_in_known_function") < names.index("called_by_main") < names.index("main")
    assert len(frames) <= 10


def test_an_idle_master_arms_no_timer(fpmd, workdir):
    """Idle, the master sleeps until something happens: after the requests have been
    answered and a dynamic pool is back within its band, no timerfd of the master is
    armed (a periodic tick would wake it for nothing; php-fpm wakes every second).
    Read from /proc/PID/fdinfo, so it does not depend on timing."""
    from test_systemd import armed_timers
    pools = (pool_conf(workdir, "st", children=2) +
             pool_conf(workdir, "dyn", pm="dynamic", children=4,
                       extra="pm.start_servers = 1\npm.min_spare_servers = 1\npm.max_spare_servers = 2\n"))
    fpmd.start(basic_conf(workdir, pools))
    for sock in ("st.sock", "dyn.sock"):
        for _ in range(5):
            assert fcgi_request(f"{workdir}/{sock}", "/ping").body == b"pong"
    # After the last request the pool timer may run a few ticks (workers seen idle).
    assert wait_for(lambda: armed_timers(fpmd.pid) == [], 10), armed_timers(fpmd.pid)
    time.sleep(1.5)
    assert armed_timers(fpmd.pid) == [], "the idle master armed a timer again"


def test_dynamic_spare_shortfall_waits_for_the_next_tick(fpmd, workdir):
    """A request that wakes the sleeping master of a one-worker dynamic pool does not fork a
    second worker for itself: the min_spare shortfall is acted on at the next tick if it
    still holds (php-fpm's once-a-second maintenance; its own fpm_get_status_basic test
    counts one process during the request). A request still running then does get its spare."""
    from test_systemd import armed_timers
    write_script(f"{workdir}/short.sh", "#!/bin/sh\nsleep 0.2\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    write_script(f"{workdir}/long.sh", "#!/bin/sh\nsleep 2.5\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="dynamic", children=4, extra=(
        "pm.start_servers = 1\npm.min_spare_servers = 1\npm.max_spare_servers = 3\n"))))
    sock = f"{workdir}/www.sock"
    assert wait_for(lambda: armed_timers(fpmd.pid) == [], 10), "the master never went to sleep"
    assert len(fpmd.workers()) == 1
    for _ in range(3):
        # each from a sleeping master: back to back, the requests would span its next tick
        assert wait_for(lambda: armed_timers(fpmd.pid) == [], 10)
        assert fcgi_request(sock, "/short.sh", root=workdir).body == b"ok"
        assert len(fpmd.workers()) == 1, fpmd.workers()
    assert wait_for(lambda: armed_timers(fpmd.pid) == [], 10)   # the tick came, and saw no shortfall
    assert len(fpmd.workers()) == 1, fpmd.workers()
    assert fcgi_request(sock, "/long.sh", root=workdir, timeout=10).body == b"ok"
    assert len(fpmd.workers()) == 2, fpmd.workers()   # spawned at the tick while it ran


def test_reaching_max_children_is_said_once_per_episode_as_php_fpm(fpmd, workdir):
    """A busy dynamic pool at pm.max_children, idle for a moment between
    requests: the warning (and the status page's "max children reached")
    came every few looks, 38 in 10 s, where php-fpm says it once until it
    starts a worker again.  ondemand's line is php-fpm's own wording."""
    write_script(f"{workdir}/nap.sh", "#!/bin/sh\nsleep 0.05\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    extra = ("pm.start_servers = 2\npm.min_spare_servers = 1\npm.max_spare_servers = 2\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="dynamic", children=2, extra=extra)))
    sock = f"{workdir}/www.sock"
    end = time.monotonic() + 3

    def client():
        while time.monotonic() < end:
            fcgi_request(sock, "/nap.sh", root=workdir)
    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    said = fpmd.log().count("server reached pm.max_children setting (2)")
    assert said == 1, said
    assert status(sock)["max children reached"] == 1


def test_ondemand_says_php_fpms_words_at_max_children(fpmd, workdir):
    write_script(f"{workdir}/nap.sh", "#!/bin/sh\nsleep 0.5\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="ondemand", children=1)))
    threads, results, errors = burst(f"{workdir}/www.sock", workdir, "/nap.sh", 3)
    for t in threads:
        t.join(30)
    assert not errors and len(results) == 3
    fpmd.wait_log(re.escape("[pool www] server reached max_children setting (1), consider raising it"))


def test_a_static_pool_short_after_a_failed_spawn_is_made_whole(fpmd, workdir):
    """A worker leaves (pm.max_requests = 1) while the master cannot open a descriptor
    (its RLIMIT_NOFILE lowered from outside: pipe2() fails with EMFILE): the respawn
    fails.  The static pool used to stay a worker short for good; it looks again every
    second until it is whole, once descriptors are back."""
    write_script(f"{workdir}/ok.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=2, extra="pm.max_requests = 1\n")))
    sock = f"{workdir}/www.sock"
    assert wait_for(lambda: len(fpmd.workers()) == 2, 10)
    with out_of_descriptors(fpmd.pid):
        assert fcgi_request(sock, "/ok.sh", root=workdir).body == b"ok"
        fpmd.wait_log(r"cannot start a worker: pipe2\(\) for the worker's log failed")
        time.sleep(1.5)
        assert len(fpmd.workers()) == 1, fpmd.workers()
    assert wait_for(lambda: len(fpmd.workers()) == 2, 5), f"still short:\n{fpmd.log()[-2000:]}"
    for _ in range(4):
        assert fcgi_request(sock, "/ok.sh", root=workdir).body == b"ok"


def test_seems_busy_is_said_once_a_second_at_most(fpmd, workdir):
    """Connections wait while the shared PHP zygote is away (killed, started again after
    a back-off): a dynamic pool cannot add workers, it is looked at every 100 ms, and
    php-fpm's "seems busy" line was logged at each look, 10 times a second; php-fpm says
    it once a second at most."""
    from test_php import php_pool
    write_script(f"{workdir}/slow.php", "<?php sleep(2); echo 'ok';", 0o644)
    extra = ("pm.start_servers = 1\npm.min_spare_servers = 1\npm.max_spare_servers = 2\n"
             "pm.max_spawn_rate = 32\n")
    fpmd.start(basic_conf(workdir, php_pool(workdir, pm="dynamic", children=32, extra=extra)))
    sock = f"{workdir}/www.sock"

    def shared_zygote():
        for p in children_of(fpmd.pid):
            try:
                if "php zygote (shared)" in open(f"/proc/{p}/cmdline").read():
                    return p
            except OSError:
                pass
        return None
    waiting = []
    try:
        for _ in range(3):              # dying young: its back-off doubles (0.25, 0.5, 1 s)
            z = wait_for(shared_zygote, 10)
            os.kill(z, signal.SIGKILL)
            wait_for(lambda: shared_zygote() != z, 5)
        for _ in range(6):              # connections that wait: no worker can be added
            s = connect(sock, timeout=10)
            s.sendall(build_request(cgi_params("/slow.php", workdir)))
            waiting.append(s)
        t0 = time.monotonic()
        n0 = fpmd.log().count("seems busy")
        time.sleep(2.5)
        said = fpmd.log().count("seems busy") - n0
    finally:
        for s in waiting:
            s.close()
    print("seems busy lines:", said)
    assert said <= 3, f"{said} lines in {time.monotonic() - t0:.1f}s"
