"""Fault injection (issue #12): eleven faults, each measured and printed as a `CHAOS <n>:` line.

Short by default; `make chaos` (CHAOS_SCALE=1) runs the issue's durations.  Every
load generator is bounded; only unix sockets and loopback are used.
"""
import json
import os
import random
import re
import resource
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from chaoslib import (Load, base, cpu_seconds, fd_targets, module_pool, report, rss_kib, scaled,
                      status_field, zombies_of)

basic_conf = base.basic_conf
pool_conf = base.pool_conf
fcgi_request = base.fcgi_request
wait_for = base.wait_for
alive = base.alive
write_script = base.write_script
SANITIZED = base.SANITIZED


def ready_workers(fpmd, n):
    """n workers whose handler started (they answer), none of them a zombie."""
    ws = fpmd.workers()
    return len(ws) == n and not zombies_of(fpmd.pid)


# 1 --------------------------------------------------------------------------

def test_01_kill9_random_worker_every_100ms_under_load(fpmd, workdir):
    n = 4
    fpmd.start(basic_conf(workdir, module_pool(workdir, children=n)))
    sock = f"{workdir}/app.sock"
    assert fcgi_request(sock, "/x").body == b"ok"
    time.sleep(0.3)
    fds_before = fd_targets(fpmd.pid)
    seconds = scaled(2.0, 20.0)
    kills = 0
    rng = random.Random(1)
    with Load(sock, "/x?ms=2", clients=32) as load:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ws = fpmd.workers()
            if ws:
                try:
                    os.kill(rng.choice(ws), signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        last_kill = time.monotonic()
        back = wait_for(lambda: ready_workers(fpmd, n), 10, 0.01)
        back_s = time.monotonic() - last_kill
        time.sleep(0.3)
    time.sleep(0.2)
    zombies = zombies_of(fpmd.pid)

    # what the master holds, by kind: a respawned worker's pipe may take another number
    # (a timer made meanwhile took the old one), so the counts are compared, not the numbers
    kind = lambda t: re.sub(r"\[\d+\]", "", t) if t else t

    def kinds(fds):
        out = {}
        for t in fds.values():
            out[kind(t)] = out.get(kind(t), 0) + 1
        return out

    def grown_kinds(after):
        b, a = kinds(fds_before), kinds(after)
        return {k: a.get(k, 0) - b.get(k, 0) for k in set(a) | set(b) if a.get(k, 0) != b.get(k, 0)}

    def settled():
        # a worker's pipes live until the master reaps it: let the last deaths be processed
        after = fd_targets(fpmd.pid)
        g = grown_kinds(after)
        return after if not g or g == {"anon_inode:[timerfd]": 1} else None
    fds_after = wait_for(settled, 3) or fd_targets(fpmd.pid)
    report(1, f"{seconds:.0f}s kill loop, c=32: {kills} kills, {load.ok} ok, {len(load.failed)} failed, "
              f"pool back to {n} in {back_s:.2f}s after the last kill, zombies {len(zombies)}, "
              f"master fds {len(fds_before)} -> {len(fds_after)}")
    assert back and back_s <= 1.0, f"pool not back to size within 1 s ({back_s:.2f}s)\n{fpmd.log()[-3000:]}"
    assert len(load.failed) <= kills, load.failed[:5]
    assert load.ok > kills
    assert zombies == []
    # The pool's respawn back-off timer is made once, the first time a worker dies young
    # (a slow, sanitized build): one timerfd per pool is not a leak.
    grown = grown_kinds(fds_after)
    assert not grown or grown == {"anon_inode:[timerfd]": 1}, (grown, fds_before, fds_after)
    assert fpmd.proc.poll() is None


# 2 --------------------------------------------------------------------------

def test_02_workers_that_crash_at_startup(fpmd, workdir):
    seconds = scaled(4.0, 20.0)
    fpmd.start(basic_conf(workdir, module_pool(workdir, mode="crash", children=2),
                          global_extra="emergency_restart_threshold = 6\nemergency_restart_interval = 60s\n"),
               wait_ready=False)
    t0 = time.monotonic()
    time.sleep(seconds)
    log = fpmd.log()
    starts = [m for m in re.finditer(r"\[(\d\d-\w+-\d{4} \d\d:\d\d:\d\d)\] NOTICE: \[pool app\] child \d+ started", log)]
    per_second = {}
    for m in starts:
        per_second[m.group(1)] = per_second.get(m.group(1), 0) + 1
    peak = max(per_second.values()) if per_second else 0
    crashes = len(re.findall(r"child \d+ exited on signal 11 \(SIGSEGV", log))
    master_cpu = cpu_seconds(fpmd.pid)
    report(2, f"{seconds:.0f}s of workers segfaulting in init: {len(starts)} forks "
              f"({len(starts) / (time.monotonic() - t0):.1f}/s, peak {peak} in one second), {crashes} crashes "
              f"logged, master CPU {master_cpu:.2f}s, emergency restart "
              f"{'yes' if 'failed processes threshold' in log else 'no'}")
    assert fpmd.proc.poll() is None, log[-2000:]
    assert "children keep dying right after start" in log
    assert "failed processes threshold (6 in 60 sec) is reached" in log
    assert peak <= 10, per_second         # no fork storm: back-off spaces them out
    assert len(starts) <= 8 + 2 * seconds
    assert master_cpu < 0.25 * seconds


# 3 --------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_03_kill9_master(fpmd, workdir):
    port = free_port()
    conf = basic_conf(workdir, module_pool(workdir, children=3)
                      + module_pool(workdir, name="tcp", children=2, listen=f"127.0.0.1:{port}"))
    fpmd.start(conf)
    workers = fpmd.workers()
    assert len(workers) == 5
    t0 = time.monotonic()
    os.kill(fpmd.pid, signal.SIGKILL)
    gone = wait_for(lambda: not any(alive(w) for w in workers), 3, 0.005)
    gone_s = time.monotonic() - t0
    fpmd.proc.wait(5)
    second = fpmd.make()
    t1 = time.monotonic()
    second.start(conf, wait_ready=False)      # same log file: wait for its own ready line
    second.wait_log("ready to handle connections", count=2)
    r1 = fcgi_request(f"{workdir}/app.sock", "/x")
    r2 = fcgi_request(f"127.0.0.1:{port}", "/x")
    restart_s = time.monotonic() - t1
    report(3, f"master SIGKILLed: {len(workers)} workers gone in {gone_s:.3f}s; new master bound the unix "
              f"socket and 127.0.0.1:{port} and answered in {restart_s:.2f}s")
    assert gone and gone_s <= 1.0
    assert r1.body == b"ok" and r2.body == b"ok"


# 4 --------------------------------------------------------------------------

def test_04_fd_exhaustion(fpmd, workdir):
    hold_ms = int(scaled(1500, 5000))
    fpmd.start(basic_conf(workdir, module_pool(workdir, mode="hog", children=1, extra="rlimit_files = 64\n")))
    sock = f"{workdir}/app.sock"
    worker = fpmd.workers()[0]
    assert fcgi_request(sock, "/h?hold=%d" % hold_ms).body == b"hogging"
    time.sleep(0.1)
    # The worker's main thread: the module's hog thread polls for fds on purpose.
    w_cpu0, m_cpu0, t0 = cpu_seconds(worker, worker), cpu_seconds(fpmd.pid), time.monotonic()
    results = []

    def client():
        try:
            results.append(fcgi_request(sock, "/x", timeout=hold_ms / 1000 + 20).body)
        except Exception as e:  # noqa: BLE001
            results.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(hold_ms / 1000 * 0.8)
    w_cpu, m_cpu, spent = cpu_seconds(worker, worker) - w_cpu0, cpu_seconds(fpmd.pid) - m_cpu0, time.monotonic() - t0
    for t in threads:
        t.join(hold_ms / 1000 + 25)
    resumed = time.monotonic() - t0
    # The back-off is logged once, then summed up when accepting works again.
    fpmd.wait_log(r"\d+ more accept4\(\) failures", timeout=5)
    summary = re.findall(r"(\d+) more accept4\(\) failures \(one try per 100 ms\) in the last ([\d.]+)s", fpmd.log())
    firsts = len(re.findall(r"accept4\(\) failed: Too many open files", fpmd.log()))
    lines = len(re.findall(r"accept4\(\)", fpmd.log()))
    more = sum(int(n) for n, _ in summary)
    report(4, f"worker out of fds for {hold_ms} ms (rlimit_files 64): {firsts + more} accept back-offs, "
              f"{lines} log lines ({firsts} first failure, summary {summary}); "
              f"worker (accepting thread) CPU {100 * w_cpu / spent:.1f}% and master CPU {100 * m_cpu / spent:.1f}% while "
              f"starved; 4 waiting clients served {resumed:.2f}s later, results {results}")
    assert firsts == 1, fpmd.log()[-2000:]
    assert more >= 1 and lines <= 3, fpmd.log()[-2000:]
    assert w_cpu / spent < 0.10 and m_cpu / spent < 0.10
    assert results == [b"ok"] * 4
    assert worker in fpmd.workers()      # backed off, did not die


# 5 --------------------------------------------------------------------------

def test_05_fork_failure_is_a_503(fpmd, workdir):
    write_script(f"{workdir}/hello.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhello'\n")
    # RLIMIT_NPROC of 1 for the pool user: the workers exist (the root master
    # forked them), but a worker cannot fork a script.  Root (this test, the
    # master) is exempt; the limit is inherited at fork.
    old = resource.getrlimit(resource.RLIMIT_NPROC)
    resource.setrlimit(resource.RLIMIT_NPROC, (1, old[1]))
    try:
        fpmd.start(basic_conf(workdir, pool_conf(workdir, children=2)))
    finally:
        resource.setrlimit(resource.RLIMIT_NPROC, old)
    t0 = time.monotonic()
    r = fcgi_request(f"{workdir}/www.sock", "/hello.sh", root=workdir, timeout=10)
    took = time.monotonic() - t0
    logged = wait_for(lambda: re.search(r"cannot execute script '[^']*hello.sh': Resource temporarily "
                                        r"unavailable", fpmd.log()), 5)
    ping = fcgi_request(f"{workdir}/www.sock", "/ping")
    report(5, f"fork fails (RLIMIT_NPROC=1 for nobody): answer {r.status} in {took * 1000:.0f} ms, "
              f"log line {'yes' if logged else 'no'}, worker still answers /ping: {ping.body!r}")
    assert r.status == 503 and took < 2
    assert logged, fpmd.log()[-2000:]
    assert ping.body == b"pong"


# 6 --------------------------------------------------------------------------

def test_06_error_log_on_a_full_filesystem(fpmd, workdir):
    mnt = f"{workdir}/logfs"
    os.mkdir(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs CAP_SYS_ADMIN)")
    try:
        write_script(f"{workdir}/noisy.sh",
                     "#!/bin/sh\necho 'a line for the error log' >&2\n"
                     "printf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
        conf = basic_conf(workdir, pool_conf(workdir, children=2, extra="cgi.stderr = log\n")) \
            .replace(f"error_log = {workdir}/error.log", f"error_log = {mnt}/error.log")
        fpmd.start(conf, args=("-F",), wait_ready=False)     # no -O: the log goes to the file only
        log = f"{mnt}/error.log"
        assert wait_for(lambda: os.path.exists(log) and "ready to handle" in open(log).read())
        # Fill what is left.
        fd = os.open(f"{mnt}/filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 512) > 0:
                pass
        except OSError:
            pass
        os.close(fd)
        n = scaled(50, 500)
        ok = sum(fcgi_request(f"{workdir}/www.sock", "/noisy.sh", root=workdir).body == b"ok"
                 for _ in range(n))
        # The workers' lines reach the log through the master: let it relay them while the disk is full.
        time.sleep(0.5)
        os.unlink(f"{mnt}/filler")
        os.rename(f"{mnt}/error.log", f"{mnt}/error.log.1")
        fpmd.signal(signal.SIGUSR1)
        assert wait_for(lambda: os.path.exists(f"{mnt}/error.log")
                        and "re-opened" in open(f"{mnt}/error.log").read(), 5)
        assert wait_for(lambda: "lost: write() failed" in open(log).read(), 5)
        with open(log) as f:
            text = f.read()
        m = re.search(r"(\d+) error log line\(s\) lost: write\(\) failed: No space left on device", text)
        with open(log + ".1") as f:
            written = f.read().count("said into stderr")   # the last page had room for a few
        lost = int(m.group(1)) if m else 0
        report(6, f"error log on a full 256 KiB tmpfs: {ok}/{n} requests served, {written} script lines "
                  f"written before the disk was full, {lost} lost lines counted and reported after USR1 "
                  f"reopened the log")
        assert ok == n
        assert lost > 0 and written + lost >= n
    finally:
        subprocess.run(["umount", "-l", mnt])


# 7 --------------------------------------------------------------------------

def slow_client(address, data, step, prefix=b"", cut=None):
    """Sends prefix, then data one byte every `step` seconds until the server closes or the
    data ends; appends to `cut` the seconds from connect to the server's close (None: never)."""
    s = base.connect(address)
    t0 = time.monotonic()
    closed = None
    try:
        s.sendall(prefix)
        for b in data:
            s.sendall(bytes([b]))
            # the server's close shows as EOF (or a reset) on our side
            s.settimeout(step)
            try:
                if s.recv(1) == b"":
                    closed = time.monotonic() - t0
                    break
            except socket.timeout:
                pass
    except OSError:
        closed = time.monotonic() - t0
    finally:
        s.close()
        if cut is not None:
            cut.append(closed)


def script_procs(name):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if name.encode() in f.read():
                        out.append(int(d))
            except OSError:
                pass
    return out


def test_07_slowloris_and_clients_that_leave(fpmd, workdir):
    header_t, body_t, terminate_t = 1, 1, 20
    tag = os.path.basename(workdir)
    write_script(f"{workdir}/upload-{tag}.sh", "#!/bin/sh\ncat >/dev/null\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    write_script(f"{workdir}/stream-{tag}.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nexec yes\n")
    # request_terminate_timeout far above the read timeouts: they, not it, must free the workers.
    conf = basic_conf(workdir, module_pool(workdir, children=3,
                                           extra=f"request_header_timeout = {header_t}s\n"
                                                 f"request_body_timeout = {body_t}s\n"
                                                 f"request_terminate_timeout = {terminate_t}s\n")
                      + pool_conf(workdir, "cgi", children=2, extra=f"request_terminate_timeout = 20s\n"))
    fpmd.start(conf)
    sock = f"{workdir}/app.sock"
    req = base.build_request(base.cgi_params("/x", body=b"x" * 64), b"x" * 64)
    begin_len = 16
    params_end = req.index(base.record(base.FCGI_PARAMS, 1)) + 8
    # (prefix sent at once, then a byte every step seconds).  The head's timeout is a deadline, so
    # 1 byte/s is cut; the body's is the longest gap between reads (nginx's client_body_timeout), so
    # its slowloris waits 2 s between bytes: a steady 1 byte/s body is request_terminate_timeout's.
    stages = {"mid record header": (b"", req[:4], 1.0),
              "mid params": (req[:begin_len + 8], req[begin_len + 8:params_end], 1.0),
              "mid body": (req[:params_end + 12], req[params_end + 12:], 2.0)}
    cuts = {name: [] for name in stages}
    threads = [threading.Thread(target=slow_client, args=(sock, data, step, prefix, cuts[name]), daemon=True)
               for name, (prefix, data, step) in stages.items()]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(0.5)
    # Every worker is held by a slowloris: a real request waits until they are freed.
    r = fcgi_request(sock, "/x", timeout=terminate_t + 10)
    freed_s = time.monotonic() - t0
    for t in threads:
        t.join(terminate_t)
    # The workers' log lines travel through the master: they may come after the answers.
    wait_for(lambda: len(re.findall(r"\[pool app\] child \d+: request_(header|body)_timeout", fpmd.log())) >= 3, 5)
    kills = len(re.findall(r"\[pool app\] child \d+, script .* execution timed out", fpmd.log()))
    header_cuts = len(re.findall(r"\[pool app\] child \d+: request_header_timeout \(1s\) expired", fpmd.log()))
    body_cuts = len(re.findall(r"\[pool app\] child \d+: request_body_timeout \(1s\) expired", fpmd.log()))
    cut_text = ", ".join(f"{n} cut after {c[0]:.2f}s" if c and c[0] is not None else f"{n} never cut"
                         for n, c in cuts.items())
    # Clients leaving mid-upload and mid-output (cgi pool).
    csock = f"{workdir}/cgi.sock"
    cworkers = fpmd.workers()
    fds_before = {w: len(fd_targets(w)) for w in cworkers if f"pool cgi" in open(f"/proc/{w}/cmdline").read()}
    body = b"y" * (1 << 20)
    data = base.build_request(base.cgi_params(f"/upload-{tag}.sh", root=workdir, method="POST", body=body), body)
    for _ in range(3):
        s = base.connect(csock)
        s.sendall(data[:len(data) // 2])
        time.sleep(0.1)
        s.close()
        s = base.connect(csock)
        s.sendall(base.build_request(base.cgi_params(f"/stream-{tag}.sh", root=workdir)))
        s.recv(65536)
        time.sleep(0.1)
        s.close()
    left = wait_for(lambda: not script_procs(f"upload-{tag}") and not script_procs(f"stream-{tag}"), 5)
    time.sleep(0.3)
    fds_after = {w: len(fd_targets(w)) for w in fds_before if alive(w)}
    ok_after = fcgi_request(csock, f"/upload-{tag}.sh", root=workdir, method="POST", body=b"z").body
    report(7, f"3 slowloris clients (1 byte/s in the head, 1 byte/2 s in the body) held all 3 workers; request_header_timeout {header_t}s and "
              f"request_body_timeout {body_t}s freed them ({cut_text}; {header_cuts} header and {body_cuts} "
              f"body timeout lines): a waiting request answered after {freed_s:.2f}s, "
              f"{kills} workers terminated; 6 clients left mid-upload/mid-output: scripts "
              f"left {'none' if left else script_procs(tag)}, cgi worker fds {fds_before} -> {fds_after}, "
              f"zombies {len(zombies_of(fpmd.pid))}")
    assert r.body == b"ok"
    # the read timeouts cut each slowloris; request_terminate_timeout never came into it
    assert all(c and c[0] is not None for c in cuts.values()), cuts
    assert header_cuts == 2 and body_cuts == 1, fpmd.log()[-3000:]
    assert kills == 0
    assert freed_s < terminate_t
    assert left
    assert all(fds_after[w] == fds_before[w] for w in fds_after), (fds_before, fds_after)
    assert ok_after == b"ok"
    assert zombies_of(fpmd.pid) == []


# 8 --------------------------------------------------------------------------

def stream_request(address, params, body_size, chunk=65535):
    """Sends a body of body_size bytes while reading the answer; returns (stdout bytes, app status)."""
    s = base.connect(address, timeout=120)
    out = {"stdout": 0, "end": None, "tail": b""}

    def reader():
        resp = base.Response()
        try:
            base.read_records(s, resp, timeout=120)
        except Exception as e:  # noqa: BLE001
            out["error"] = repr(e)
        out["stdout"] = len(resp.stdout)
        out["tail"] = resp.stdout[-64:]
        out["end"] = resp.app_status

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    s.sendall(base.record(base.FCGI_BEGIN, 1, struct.pack(">HB5x", 1, 0)) + base.encode_params(params))
    block = base.record(base.FCGI_STDIN, 1, b"b" * chunk)
    left = body_size
    try:
        while left >= chunk:
            s.sendall(block)
            left -= chunk
        if left:
            s.sendall(base.record(base.FCGI_STDIN, 1, b"b" * left))
        s.sendall(base.record(base.FCGI_STDIN, 1))
    except OSError as e:
        out["send_error"] = repr(e)
    t.join(120)
    s.close()
    return out


def test_08_huge_body_and_output_before_input(fpmd, workdir):
    size = scaled(64, 1024) * 1024 * 1024
    write_script(f"{workdir}/big.sh",
                 "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\n"
                 "head -c 1048576 /dev/zero\nwc -c\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1)))
    worker = fpmd.workers()[0]
    rss0 = rss_kib(worker)
    peak = [rss0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], rss_kib(worker))
            except OSError:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    params = base.cgi_params("/big.sh", root=workdir, method="POST", body=b"x")
    params["CONTENT_LENGTH"] = str(size)
    out = stream_request(f"{workdir}/www.sock", params, size)
    took = time.monotonic() - t0
    stop.set()
    sampler.join()
    hwm = int(status_field(worker, "VmHWM").split()[0])
    m_rss = rss_kib(fpmd.pid)
    report(8, f"{size >> 20} MiB body to a script that writes 1 MiB before reading: done in {took:.1f}s "
              f"({size / took / 2**20:.0f} MiB/s), {out['stdout']} bytes out, worker RSS {rss0} KiB -> peak "
              f"{max(peak[0], hwm)} KiB, master RSS {m_rss} KiB")
    assert out.get("end") == 0, out
    head = len("Content-Type: application/octet-stream\r\n\r\n")
    assert out["stdout"] == head + 1048576 + len(str(size)) + 1 and out["tail"].endswith(f"\0{size}\n".encode())
    assert max(peak[0], hwm) < 32 * 1024


# 9 --------------------------------------------------------------------------

def test_09_worker_scribbling_over_the_scoreboard(fpmd, workdir):
    seconds = scaled(3.0, 30.0)
    victim = subprocess.Popen(["sleep", "1000"])
    port = free_port()
    try:
        extra = (f"module.param[victim] = {victim.pid}\nrequest_terminate_timeout = 1s\n"
                 f"request_slowlog_timeout = 1s\nslowlog = {workdir}/slow.log\n"
                 f"pm.status_listen = 127.0.0.1:{port}\npm.start_servers = 2\npm.min_spare_servers = 1\n"
                 f"pm.max_spare_servers = 2\n")
        fpmd.start(basic_conf(workdir, module_pool(workdir, mode="scribble", pm="dynamic", children=3,
                                                   extra=extra)))
        sock = f"{workdir}/app.sock"
        fpmd.wait_log(r"chaos: scribbling over 1 shared mapping")
        pages, parsed, failed, kinds = 0, 0, 0, set()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for where in (sock, f"127.0.0.1:{port}"):
                for q in ("json", "json&full", "full", "openmetrics", "xml&full", "html&full"):
                    try:
                        r = fcgi_request(where, "/status?" + q, timeout=5)
                    except Exception:  # noqa: BLE001 - a worker the master killed (its own child)
                        failed += 1
                        continue
                    pages += 1
                    kinds.add(r.status)
                    if q.startswith("json"):
                        json.loads(r.body)
                        parsed += 1
                    else:
                        assert r.status == 200 and len(r.body) > 0
        master_alive = fpmd.proc.poll() is None
        mcpu = cpu_seconds(fpmd.pid)
        log = fpmd.log()
        report(9, f"{seconds:.0f}s of workers writing random bytes, all-ones and pid {victim.pid} (not a "
                  f"child) over the whole scoreboard: master alive {master_alive}, master CPU {mcpu:.2f}s, "
                  f"{pages} status pages ({parsed} JSON, all parsed), {failed} requests failed, statuses "
                  f"{sorted(kinds)}, foreign pid alive {victim.poll() is None}, "
                  f"pid {victim.pid} named in the log {str(victim.pid) in log}")
        assert master_alive
        assert victim.poll() is None, "the master signalled a process it did not fork"
        assert parsed > 0
        assert fcgi_request(sock, "/x", timeout=5).body == b"ok"
    finally:
        victim.kill()
        victim.wait()


# 10 -------------------------------------------------------------------------

def listener_inode(path):
    with open("/proc/net/unix") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 8 and parts[-1] == path and parts[5] == "01":   # LISTEN
                return int(parts[6])
    return None


def test_10_reloads_under_load_with_faults(fpmd, workdir):
    import shutil
    n = scaled(10, 100)
    binary = f"{workdir}/fpmd-bin"
    shutil.copy(base.FPMD, binary)
    saved = base.FPMD
    base.FPMD = binary
    try:
        def conf(i):
            return basic_conf(workdir, module_pool(workdir, children=3 + i % 2))
        fpmd.start(conf(0))
    finally:
        base.FPMD = saved
    sock = f"{workdir}/app.sock"
    ino_path, ino_sock = os.stat(sock).st_ino, listener_inode(sock)
    done = {"ok": 0, "broken": 0, "nobinary": 0, "double": 0}
    rng = random.Random(10)
    dup = []
    with Load(sock, uris=["/x", "/x", "/x?ms=150"], clients=16, timeout=30) as load:
        for i in range(n):
            readies = fpmd.log().count("ready to handle connections")
            refused = fpmd.log().count("reload refused")
            kind = rng.choice(["ok", "ok", "ok", "broken", "nobinary", "double"])
            if kind == "broken":
                fpmd.write_conf(conf(i) + "pm.max_children = many\n")
                fpmd.signal(signal.SIGUSR2)
                fpmd.wait_log("reload refused", count=refused + 1, timeout=20)
            elif kind == "nobinary":
                fpmd.write_conf(conf(i))
                os.rename(binary, binary + ".away")
                fpmd.signal(signal.SIGHUP)
                fpmd.wait_log("reload refused", count=refused + 1, timeout=20)
                os.rename(binary + ".away", binary)
            else:
                fpmd.write_conf(conf(i))
                fpmd.signal(signal.SIGUSR2)
                if kind == "double":
                    time.sleep(rng.uniform(0.0, 0.05))
                    fpmd.signal(signal.SIGUSR2)
                fpmd.wait_log("ready to handle connections", count=readies + 1, timeout=30)
            done[kind] += 1
            # The listening socket is in the master once, whatever happened.
            targets = list(fd_targets(fpmd.pid).values())
            if targets.count(f"socket:[{ino_sock}]") != 1:
                dup.append((i, kind, targets.count(f"socket:[{ino_sock}]")))
            time.sleep(rng.uniform(0.05, 0.3))
        fpmd.write_conf(conf(0))
        time.sleep(1)
    same_inode = os.stat(sock).st_ino == ino_path and listener_inode(sock) == ino_sock
    all_targets = list(fd_targets(fpmd.pid).values())
    dups = {t for t in all_targets if t.startswith("socket:") and all_targets.count(t) > 1}
    report(10, f"{n} reloads under c=16 mixed load ({done}): {load.ok} requests ok, {len(load.failed)} "
               f"failed/refused, socket inode unchanged {same_inode}, listener duplicated {dup or 'never'}, "
               f"duplicate socket fds in the master at the end {sorted(dups) or 'none'}")
    assert load.failed == [], load.failed[:5]
    assert same_inode and dup == [] and not dups
    assert fpmd.proc.poll() is None


# 11 -------------------------------------------------------------------------

def fd_kinds(fpmd):
    """(master fds that are not pipes to workers, pipes per worker), taken while the worker
    count is stable.  A pipe whose two ends the master holds (its closer thread's) is the
    master's own, not a worker's."""
    for _ in range(50):
        w = len(fpmd.workers())
        t = list(fd_targets(fpmd.pid).values())
        if len(fpmd.workers()) == w:
            break
    pipes = [x for x in t if x.startswith("pipe:")]
    to_workers = sum(1 for x in pipes if pipes.count(x) == 1)
    return len(t) - to_workers, round(to_workers / max(1, w), 2)


def test_11_soak_with_recycling_and_scaling(fpmd, workdir):
    seconds = scaled(12.0, 300.0)
    extra = ("pm.start_servers = 2\npm.min_spare_servers = 1\npm.max_spare_servers = 3\n"
             "pm.max_requests = 50\n")
    fpmd.start(basic_conf(workdir, module_pool(workdir, pm="dynamic", children=8, extra=extra)))
    sock = f"{workdir}/app.sock"
    base_load = Load(sock, uris=["/x", "/x?ms=5", "/x?ms=20"], clients=4, seconds=seconds)
    samples = []
    with base_load:
        time.sleep(min(2.0, seconds / 6))
        rss0, fds0 = rss_kib(fpmd.pid), fd_kinds(fpmd)
        end = time.monotonic() + seconds - min(2.0, seconds / 6)
        bursts, max_workers = 0, 0
        while time.monotonic() < end:
            # Bursts make the dynamic pool grow; the pauses let it shrink.
            burst = Load(sock, uris=["/x?ms=20"], clients=16, seconds=min(2.0, max(0.1, end - time.monotonic())))
            with burst:
                t_end = time.monotonic() + 2.0
                while time.monotonic() < t_end and time.monotonic() < end:
                    max_workers = max(max_workers, len(fpmd.workers()))
                    time.sleep(0.1)
            bursts += 1
            base_load.ok += burst.ok
            base_load.failed += burst.failed
            samples.append(rss_kib(fpmd.pid))
            time.sleep(min(2.0, max(0.0, end - time.monotonic())))
        base_load.wait()
    time.sleep(0.5)
    rss1, fds1 = rss_kib(fpmd.pid), fd_kinds(fpmd)
    recycled = len(re.findall(r"exited with code 0 after", fpmd.log()))
    report(11, f"{seconds:.0f}s soak, dynamic 1..8 with max_requests 50, {bursts} bursts of c=16 over c=4: "
               f"{base_load.ok} requests ok, {len(base_load.failed)} failed, {recycled} workers recycled, "
               f"up to {max_workers} workers, master RSS {rss0} -> {rss1} KiB (after each burst: "
               f"{min(samples, default=0)}..{max(samples, default=0)}), "
               f"master fds (other than pipes, pipes per worker) {fds0} -> {fds1}")
    assert base_load.failed == [], base_load.failed[:5]
    assert recycled >= 1 and max_workers > 2
    # ASan's allocator keeps freed memory in quarantine: its RSS says little about leaks
    assert rss1 - rss0 <= (4096 if SANITIZED else 256), samples
    # Descriptors other than the workers' pipes unchanged; pipes per worker unchanged.
    assert fds1[0] == fds0[0] and fds1[1] == fds0[1], (fds0, fds1)
    assert zombies_of(fpmd.pid) == []
