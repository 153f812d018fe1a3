"""sigterm_drain: SIGTERM for orchestrators.  Readiness answers 503 at once, the pools keep
accepting for the delay (endpoint propagation), then the graceful QUIT path lets in-flight
requests finish.  Without it SIGTERM keeps php-fpm's meaning: stop now."""
import os
import signal
import subprocess
import threading
import time

from conftest import FPMCTL, basic_conf, fcgi_request, pool_conf, wait_for, write_script

HOLD = ("#!/bin/sh\nwhile [ ! -e release ]; do sleep 0.05; done\n"
        "printf 'Content-Type: text/plain\\r\\n\\r\\nheld'\n")
HELLO = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhello'\n"


def ready(sock):
    return subprocess.run([FPMCTL, "ping", "--ready", "-s", f"unix:{sock}", "--timeout", "5"],
                          capture_output=True, text=True, timeout=10)


def quietly(fn):
    """A request the test expects to be cut off: its error is the point, not a failure."""
    def run():
        try:
            fn()
        except (ConnectionError, OSError):
            pass
    return run


def start(fpmd, workdir, drain, children=3, timeout=10, extra_global=""):
    write_script(f"{workdir}/hold.sh", HOLD)
    write_script(f"{workdir}/hello.sh", HELLO)
    st = f"{workdir}/status.sock"
    ge = (f"process_control_timeout = {timeout}\n" + (f"sigterm_drain = {drain}\n" if drain else "")
          + extra_global)
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=children,
                                             extra=f"pm.status_listen = {st}\n"), global_extra=ge))
    return st


def test_drain_readiness_503_at_once_serves_during_delay_then_finishes(fpmd, workdir):
    st = start(fpmd, workdir, "3s")
    sock = f"{workdir}/www.sock"
    assert ready(st).returncode == 0
    held = []
    t = threading.Thread(target=lambda: held.append(
        fcgi_request(sock, "/hold.sh", root=workdir, timeout=30)))
    t.start()
    assert wait_for(lambda: "1 of 3 workers busy" in ready(st).stdout, 10)

    t0 = time.monotonic()
    fpmd.signal(signal.SIGTERM)
    # Readiness flips at once: on status_listen (the master), through a worker, through fpmctl.
    assert wait_for(lambda: ready(st).returncode == 6, 1), ready(st)
    r = ready(st)
    assert r.stdout.startswith("draining: pool www"), r.stdout
    w = fcgi_request(sock, "/ping?ready")
    assert w.status == 503 and w.body.startswith(b"draining: "), w.body
    assert subprocess.run([FPMCTL, "ping", "--ready", "-s", f"unix:{sock}", "--timeout", "5"],
                          capture_output=True, timeout=10).returncode == 6
    # Liveness stays: the pod is not to be restarted while it drains.
    assert fcgi_request(sock, "/ping").body == b"pong"
    # New requests are still served during the delay (endpoints not yet updated everywhere).
    served = 0
    while time.monotonic() - t0 < 2.5:
        r = fcgi_request(sock, "/hello.sh", root=workdir)
        assert r.status == 200 and r.body == b"hello", (r.status, r.body)
        served += 1
        time.sleep(0.1)
    assert served >= 10
    assert fpmd.proc.poll() is None
    # After the delay: the graceful path; the in-flight request finishes, then the master exits.
    fpmd.wait_log(r"sigterm_drain of 3s over", timeout=5)
    time.sleep(0.3)
    assert fpmd.proc.poll() is None, "the held request was cut off"
    open(f"{workdir}/release", "w").close()
    t.join(10)
    assert held and held[0].status == 200 and held[0].body == b"held", held
    assert fpmd.wait(10) == 0
    total = time.monotonic() - t0
    assert 3.0 <= total < 6, total
    log = fpmd.log()
    assert log.count("Draining") == 1, log
    assert "sending SIGTERM" not in log and "SIGKILL" not in log, log


def test_drain_bounded_by_process_control_timeout(fpmd, workdir):
    # A request that never ends is cut at drain + process_control_timeout (+ the escalation).
    st = start(fpmd, workdir, "1s", timeout=1)
    t = threading.Thread(target=quietly(lambda: fcgi_request(f"{workdir}/www.sock", "/hold.sh",
                                                             root=workdir, timeout=30)))
    t.start()
    assert wait_for(lambda: "1 of 3 workers busy" in ready(st).stdout, 10)
    t0 = time.monotonic()
    fpmd.signal(signal.SIGTERM)
    fpmd.wait(15)
    assert time.monotonic() - t0 < 4.5
    assert "sending SIGTERM" in fpmd.log()
    open(f"{workdir}/release", "w").close()
    t.join(10)


def test_drain_second_term_or_quit_shortens_it(fpmd, workdir):
    start(fpmd, workdir, "30s")
    fpmd.signal(signal.SIGTERM)
    fpmd.wait_log("Draining")
    t0 = time.monotonic()
    fpmd.signal(signal.SIGQUIT)           # skip the rest of the delay: finish now
    assert fpmd.wait(10) == 0
    assert time.monotonic() - t0 < 3
    assert "Finishing" in fpmd.log()


def test_drain_second_term_terminates(fpmd, workdir):
    start(fpmd, workdir, "30s")
    fpmd.signal(signal.SIGTERM)
    fpmd.wait_log("Draining")
    fpmd.signal(signal.SIGTERM)
    fpmd.wait(10)
    assert "Terminating" in fpmd.log()


def test_fpmctl_stop_says_it_drains(fpmd, workdir):
    start(fpmd, workdir, "1s", extra_global=f"control_socket = {workdir}/ctl\n")
    r = subprocess.run([FPMCTL, "stop", "-c", f"{workdir}/ctl", "--timeout", "15"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0 and r.stdout.startswith("OK draining for 1s (sigterm_drain)"), r
    assert fpmd.wait(10) == 0 and "Draining" in fpmd.log()


def test_drain_ignores_reload(fpmd, workdir):
    start(fpmd, workdir, "2s")
    fpmd.signal(signal.SIGTERM)
    fpmd.wait_log("Draining")
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log("reload ignored")
    assert fpmd.wait(10) == 0
    assert "Reloading in progress" not in fpmd.log()


def test_without_drain_term_stops_at_once(fpmd, workdir):
    # php-fpm's TERM stays the default: running requests are cut off.
    st = start(fpmd, workdir, None)
    t = threading.Thread(target=quietly(lambda: fcgi_request(f"{workdir}/www.sock", "/hold.sh",
                                                             root=workdir, timeout=30)))
    t.start()
    assert wait_for(lambda: "1 of 3 workers busy" in ready(st).stdout, 10)
    t0 = time.monotonic()
    fpmd.signal(signal.SIGTERM)
    fpmd.wait(10)
    assert time.monotonic() - t0 < 2
    assert "Draining" not in fpmd.log() and "Terminating" in fpmd.log()
    open(f"{workdir}/release", "w").close()
    t.join(10)
    assert not os.path.exists(f"{workdir}/never")


def test_fpmctl_reload_while_draining_is_answered(fpmd, workdir):
    """The master logged "reload ignored" and closed the connection without a
    word: fpmctl said "fpmd closed the connection without an answer" (exit 5)."""
    start(fpmd, workdir, "3s", extra_global=f"control_socket = {workdir}/ctl\n")
    fpmd.signal(signal.SIGTERM)
    fpmd.wait_log("Draining")
    r = subprocess.run([FPMCTL, "reload", "-c", f"{workdir}/ctl", "--timeout", "10"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "reload ignored: draining after SIGTERM" in r.stderr, r
    assert fpmd.wait(10) == 0
