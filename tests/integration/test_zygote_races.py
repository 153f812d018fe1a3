"""A worker cloned by a zygote can finish its life before the master reads the zygote's
answer (pm.max_requests = 1 under load, the zygote preempted between its clone and its
reply).  The pool must not lose that slot: a static pool that lost both was left with no
worker at all, every later connection waiting for ever.

The race is made certain with strace's syscall tampering: the zygote's reply (sendto) is
held back 300 ms, while the worker it cloned serves a waiting request and exits.
"""
import json
import os
import re
import shutil
import signal
import threading
import time

import pytest

from conftest import (BUILD, basic_conf, children_of, fcgi_request, out_of_descriptors,
                      strace_tampering, wait_for, write_script)

PHP_SO = os.path.join(BUILD, "fpmd-php.so")
pytestmark = [
    pytest.mark.skipif(not os.path.exists(PHP_SO), reason="fpmd-php.so not built"),
    pytest.mark.skipif(not shutil.which("strace"), reason="strace missing"),
    pytest.mark.skipif(os.geteuid() != 0, reason="strace -p of fpmd's zygote needs root"),
]


def titles(master):
    out = {}
    for p in children_of(master):
        try:
            with open(f"/proc/{p}/cmdline") as f:
                out[p] = f.read()
        except OSError:
            pass
    return out


def workers(master, pool):
    return [p for p, t in titles(master).items() if f"pool {pool}" in t and "zygote" not in t]


def delayed_answers(zygote_pid, delay_us=300000):
    """strace attached to the zygote, every sendto (its answers) held back delay_us."""
    return strace_tampering(zygote_pid, "-e", "trace=sendto",
                            "-e", f"inject=sendto:delay_enter={delay_us}")


def php_pool(workdir, children=2, extra=""):
    """A php pool whose every worker serves one request (n.php says which)."""
    write_script(os.path.join(workdir, "n.php"), "<?php echo 'served ', getmypid();", 0o644)
    return (f"[www]\nuser = nobody\nlisten = {workdir}/www.sock\npm = static\n"
            f"pm.max_children = {children}\npm.max_requests = 1\napp.type = php\n{extra}")


def start_php(fpmd, workdir, children=2, debug=False):
    """Starts a php_pool, waits for its workers; the shared PHP zygote's pid."""
    fpmd.start(basic_conf(workdir, php_pool(workdir, children),
                          global_extra="log_level = debug\n" if debug else ""))
    assert wait_for(lambda: len(workers(fpmd.pid, "www")) == children, 10), titles(fpmd.pid)
    return shared_zygote(fpmd)


def shared_zygote(fpmd):
    found = [p for p, t in titles(fpmd.pid).items() if "php zygote (shared)" in t]
    assert len(found) == 1, titles(fpmd.pid)
    return found[0]


def all_served(res):
    return all(r is not None and not isinstance(r, Exception) and r.status == 200 for r in res)


def run_requests(workdir, n, timeout, pool="www"):
    """n requests to the pool at once: their responses, or the exception each raised."""
    results = [None] * n

    def one(i):
        try:
            results[i] = fcgi_request(f"{workdir}/{pool}.sock", "/n.php", root=workdir,
                                      timeout=timeout)
        except Exception as e:          # noqa: BLE001 - reported below
            results[i] = e
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    return results


@pytest.mark.parametrize("boot", ["classic", "zygote"])
def test_a_worker_that_ends_before_its_zygote_answers_is_replaced(fpmd, workdir, boot):
    extra = "pm.status_path = /status\n"
    if boot == "zygote":
        extra += f"php.worker = {workdir}/n.php\nphp.worker_boot = zygote\n"
    pool = php_pool(workdir, 2, extra)
    write_script(os.path.join(workdir, "n.php"),        # a worker script for the zygote boot
                 "<?php if (function_exists('fpmd_handle_request')) {\n"
                 "  while (fpmd_handle_request(function () { echo 'served ', getmypid(); })) {}\n"
                 "} else { echo 'served ', getmypid(); }\n", 0o644)
    fpmd.start(basic_conf(workdir, pool, global_extra="log_level = debug\n"))
    assert wait_for(lambda: len(workers(fpmd.pid, "www")) == 2, 10), titles(fpmd.pid)
    # the zygote that clones this pool's workers
    name = "pool www zygote" if boot == "zygote" else "php zygote (shared)"
    zygote = [p for p, t in titles(fpmd.pid).items() if name in t]
    assert len(zygote) == 1, titles(fpmd.pid)

    with delayed_answers(zygote[0]):
        # every request is served by a new clone that ends before its zygote's answer
        res = run_requests(workdir, 6, timeout=15)
    assert all_served(res), f"requests lost: {res}\n{fpmd.log()[-3000:]}"
    assert all(r.body.startswith(b"served ") for r in res)
    log = fpmd.log()
    # the race happened, and such a worker is logged as any other that ends
    ended = re.findall(r"worker (\d+) ended before its zygote's answer came", log)
    assert ended, log[-3000:]
    assert f"child {ended[0]} started" in log and \
        re.search(rf"child {ended[0]} exited with code 0 after", log), log[-3000:]
    assert "ERROR" not in log, log[-3000:]
    # the pool is whole again: two workers, and they serve
    assert wait_for(lambda: len(workers(fpmd.pid, "www")) == 2, 10), \
        f"{titles(fpmd.pid)}\n{log[-3000:]}"
    res = run_requests(workdir, 4, timeout=10)
    assert all_served(res), res
    # and their requests are counted: 10 served, the status request itself the 11th
    st = fcgi_request(f"{workdir}/www.sock", "/status", root=workdir,
                      extra={"QUERY_STRING": "json"})
    assert json.loads(st.body)["accepted conn"] == 11, (st.body, fpmd.log())


def test_a_clone_that_fails_is_asked_again(fpmd, workdir):
    """The zygote's clone fails once (EAGAIN, injected): the static pool gets its worker back."""
    zygote = start_php(fpmd, workdir)
    with strace_tampering(zygote, "-e", "trace=clone,clone3",
                          "-e", "inject=clone,clone3:error=EAGAIN:when=1"):
        assert fcgi_request(f"{workdir}/www.sock", "/n.php", root=workdir).status == 200
        # the served worker left (max_requests = 1); its replacement's clone failed once
        assert wait_for(lambda: "could not clone a worker" in fpmd.log(), 10), fpmd.log()
    assert wait_for(lambda: len(workers(fpmd.pid, "www")) == 2, 10), \
        f"{titles(fpmd.pid)}\n{fpmd.log()[-3000:]}"
    assert all_served(run_requests(workdir, 4, timeout=10))


def test_a_shared_zygote_that_cannot_be_started_again_is_tried_again(fpmd, workdir):
    """The shared PHP zygote dies while the master is out of descriptors (its RLIMIT_NOFILE
    lowered from outside): starting a new one fails.  It is tried again after the back-off;
    its first failure used to be the last try, every PHP pool left with no worker for good."""
    zygote = start_php(fpmd, workdir)
    with out_of_descriptors(fpmd.pid):
        os.kill(zygote, signal.SIGKILL)
        assert wait_for(lambda: "cannot create the zygote's channels" in fpmd.log(), 10), \
            fpmd.log()[-2000:]
        time.sleep(0.5)
    assert wait_for(lambda: "php zygote (shared)" in "".join(titles(fpmd.pid).values()), 10), \
        f"no shared zygote again:\n{fpmd.log()[-2000:]}"
    res = run_requests(workdir, 4, timeout=10)
    assert all_served(res), f"{res}\n{fpmd.log()[-2000:]}"
    assert wait_for(lambda: len(workers(fpmd.pid, "www")) == 2, 10), titles(fpmd.pid)


def test_many_workers_that_end_before_their_answers_are_all_known(fpmd, workdir):
    """A clone of pool a's zygote ends before its answer (held back 1 s); meanwhile more
    than eight clones of pool b's own zygote do the same (their answers held back 50 ms).
    The master remembered the last eight such ends only: a's answer then named "a pid that
    is no new child", and the shared zygote was restarted, failing what it was asked."""
    pools = (php_pool(workdir, 1).replace("[www]", "[a]").replace("www.sock", "a.sock") +
             php_pool(workdir, 2, "php.zygote = pool\n").replace("[www]", "[b]")
             .replace("www.sock", "b.sock"))
    fpmd.start(basic_conf(workdir, pools, global_extra="log_level = debug\n"))
    assert wait_for(lambda: len(workers(fpmd.pid, "a")) == 1 and
                    len(workers(fpmd.pid, "b")) == 2, 10), titles(fpmd.pid)
    shared = shared_zygote(fpmd)
    own = [p for p, t in titles(fpmd.pid).items() if "pool b zygote" in t][0]
    with delayed_answers(shared, 1000000), delayed_answers(own, 50000):
        out = {}
        # a: its worker serves one and leaves; its clone serves the other and ends at once
        ta = threading.Thread(target=lambda: out.setdefault("a", run_requests(workdir, 2, 20, "a")))
        ta.start()
        # b: a clone per request, each ending before its answer, while a's answer waits
        for _ in range(16):
            r = fcgi_request(f"{workdir}/b.sock", "/n.php", root=workdir, timeout=20)
            assert r.status == 200
        ta.join(25)
        # a's answer, held back 1 s, comes after its clone has ended
        ended = r"\[pool {}\] worker \d+ ended before its zygote's answer came"
        assert wait_for(lambda: re.search(ended.format("a"), fpmd.log()), 5), fpmd.log()[-3000:]
    log = fpmd.log()
    assert all_served(out["a"]), (out, log[-3000:])
    assert len(re.findall(ended.format("b"), log)) > 8, log[-3000:]
    assert "not a new child" not in log and "ERROR" not in log, log[-3000:]
    assert shared in titles(fpmd.pid), "the shared zygote was restarted"


def test_a_stop_ends_when_its_last_worker_ended_before_its_answer(fpmd, workdir):
    """A graceful stop comes while the only worker is a clone that has already served and
    ended, its zygote's answer not read yet: when the answer comes the master has no
    child left and must leave.  It counted the clone out without looking whether the stop
    was done, and waited for ever."""
    zygote = start_php(fpmd, workdir, children=1, debug=True)
    with delayed_answers(zygote, 1500000):
        # the worker serves one and leaves; its clone serves the other and ends, while
        # the clone's answer is held back 1.5 s
        res = run_requests(workdir, 2, timeout=10)
        assert all_served(res), res
        fpmd.signal(signal.SIGQUIT)
        assert wait_for(lambda: fpmd.proc.poll() is not None, 8), \
            f"the master did not leave:\n{fpmd.log()[-2000:]}"
    assert "ended before its zygote's answer came" in fpmd.log(), fpmd.log()[-2000:]
