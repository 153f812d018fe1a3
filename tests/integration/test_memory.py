"""Memory governance (issue 24): pm.max_memory, pm.max_idle_memory, %M, status memory fields.

A test module ("hog") leaks or touches memory on demand, so the figures are the
worker's own and exact enough; a php pool is checked too.
"""
import json
import os
import re
import subprocess
import threading
import time

import pytest

from conftest import BUILD, SANITIZED, basic_conf, fcgi_request, wait_for, write_script

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
MB = 1024 * 1024
# Under ASan (make test SAN=1) freed memory stays in its quarantine (256 MB) and the
# shadow memory is resident: a worker's figures are ASan's, so "small" has no bound.
SMALL = (1 << 50) if SANITIZED else 32 * MB

HOG = r"""
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include <fpmd/module.h>

static const struct fpmd_host *host;

static int hog_init(const struct fpmd_host *h, const struct fpmd_setting *s, size_t n, void **st)
{
	(void)s; (void)n; (void)st;
	host = h;
	return 0;
}

static long arg(const char *q, const char *name)
{
	const char *p = q ? strstr(q, name) : NULL;
	return p ? atol(p + strlen(name) + 1) : 0;
}

/* ?leak=MB keeps MB touched for good; ?peak=MB touches MB and frees it;
 * ?sleep=ms waits before answering; ?bytes=N answers N more bytes. */
static int hog_handle(void *st, struct fpmd_request *r)
{
	(void)st;
	const char *q = host->param(r, "QUERY_STRING");
	long leak = arg(q, "leak"), peak = arg(q, "peak"), ms = arg(q, "sleep"), bytes = arg(q, "bytes");
	if (leak > 0) {
		char *p = malloc((size_t)leak << 20);
		if (p)
			memset(p, 1, (size_t)leak << 20);
	}
	if (peak > 0) {
		char *p = malloc((size_t)peak << 20);
		if (p) {
			memset(p, 1, (size_t)peak << 20);
			__asm__ volatile("" : : "r"(p) : "memory");   /* not elided */
			free(p);
		}
	}
	if (ms > 0)
		usleep((useconds_t)ms * 1000);
	char line[64];
	int n = snprintf(line, sizeof(line), "pid=%d\n", (int)getpid());
	host->add_header(r, "Content-Type", "text/plain");
	if (host->write(r, line, (size_t)n) < 0)
		return -1;
	static char fill[65536];
	memset(fill, 'x', sizeof(fill));
	while (bytes > 0) {
		size_t k = bytes > (long)sizeof(fill) ? sizeof(fill) : (size_t)bytes;
		if (host->write(r, fill, k) < 0)
			return -1;
		bytes -= (long)k;
	}
	return 0;
}

const struct fpmd_module fpmd_module = {
	.abi = FPMD_MODULE_ABI, .name = "hog", .init = hog_init, .handle = hog_handle,
};
"""


@pytest.fixture(scope="module")
def hog(tmp_path_factory):
    out = tmp_path_factory.mktemp("hog")
    src = out / "hog.c"
    src.write_text(HOG)
    subprocess.run(["cc", "-O1", "-Wall", "-Werror", "-shared", "-fPIC", f"-I{TOP}/include",
                    "-o", str(out / "hog.so"), str(src)], check=True)
    p = str(out)
    while p != "/":
        os.chmod(p, os.stat(p).st_mode | 0o011)
        p = os.path.dirname(p)
    return str(out / "hog.so")


def hog_pool(workdir, so, children=2, extra=""):
    return (f"[app]\nuser = nobody\nlisten = {workdir}/app.sock\npm = static\n"
            f"pm.max_children = {children}\napp.type = module\nmodule.path = {so}\n"
            f"pm.status_path = /status\n{extra}")


def get(workdir, query, timeout=20):
    r = fcgi_request(f"{workdir}/app.sock", "/hog?" + query, timeout=timeout)
    assert r.status == 200, r.stdout
    return r


def pid_of(r):
    return int(re.match(rb"pid=(\d+)", r.body).group(1))


def metrics(workdir, sock="app"):
    body = fcgi_request(f"{workdir}/{sock}.sock", "/status?openmetrics").body.decode()
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def full_status(workdir, sock="app"):
    return json.loads(fcgi_request(f"{workdir}/{sock}.sock", "/status?json&full").body)


def recycle_lines(log):
    return re.findall(r"child (\d+): (\d+) MB of private memory after its last request, over "
                      r"(pm\.max_memory|pm\.max_idle_memory)", log)


def test_recycled_after_the_request_that_crossed_never_during_it(fpmd, workdir, hog):
    fpmd.start(basic_conf(workdir, hog_pool(workdir, hog, extra="pm.max_memory = 64M\n")))
    before = set(fpmd.workers())
    # Crosses the limit, then keeps answering for a while: the whole answer arrives.
    r = get(workdir, "leak=100&sleep=300&bytes=2000000")
    victim = pid_of(r)
    assert len(r.body) == len(f"pid={victim}\n") + 2000000
    assert victim in before
    fpmd.wait_log(rf"child {victim}: \d+ MB of private memory after its last request, over "
                  rf"pm\.max_memory \(64 MB\): replacing it")
    fpmd.wait_log(rf"child {victim} exited with code 0")
    assert wait_for(lambda: len(fpmd.workers()) == 2 and victim not in fpmd.workers(), 5)
    (line,) = recycle_lines(fpmd.log())
    assert 100 <= int(line[1]) < 200, line
    m = wait_for(lambda: (lambda x: x if x.get('fpmd_worker_exits_total{reason="max_memory"}') == 1
                          else None)(metrics(workdir)), 5)
    assert m, metrics(workdir)
    assert m['fpmd_worker_exits_total{reason="max_requests"}'] == 0


@pytest.mark.skipif(SANITIZED, reason="ASan's quarantine keeps the freed peaks resident")
def test_a_worker_below_the_limit_is_never_recycled(fpmd, workdir, hog):
    fpmd.start(basic_conf(workdir, hog_pool(workdir, hog, extra=(
        "pm.max_memory = 64M\npm.max_idle_memory = 64M\n"))))
    before = set(fpmd.workers())
    # A peak of 40 MB that is given back, and a leak that stays under the limit.
    for _ in range(20):
        get(workdir, "peak=40")
    get(workdir, "leak=20")
    time.sleep(1.6)             # past the idle wait of pm.max_idle_memory
    for _ in range(5):
        get(workdir, "peak=1")
    assert set(fpmd.workers()) == before
    assert not recycle_lines(fpmd.log())
    assert metrics(workdir)['fpmd_worker_exits_total{reason="max_memory"}'] == 0


def test_a_burst_of_heavy_requests_recycles_one_worker_at_a_time(fpmd, workdir, hog):
    fpmd.start(basic_conf(workdir, hog_pool(workdir, hog, children=4,
                                            extra="pm.max_memory = 32M\n")))
    before = set(fpmd.workers())
    results = []

    def heavy():
        results.append(get(workdir, "leak=60&sleep=400"))
    threads = [threading.Thread(target=heavy) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    victims = {pid_of(r) for r in results}
    assert len(results) == 4 and victims == before, (victims, before)
    # Every one goes, in turn: each decision comes after the previous one's exit.
    fpmd.wait_log(r"over pm\.max_memory", count=4, timeout=15)
    assert wait_for(lambda: len(fpmd.workers()) == 4 and not before & set(fpmd.workers()), 10)
    log = fpmd.log()
    order = [(m.start(), "pick", int(m.group(1))) for m in
             re.finditer(r"child (\d+): \d+ MB of private memory", log)]
    order += [(m.start(), "exit", int(m.group(1))) for m in
              re.finditer(r"child (\d+) exited with code", log)]
    order.sort()
    leaving = None
    for _, what, pid in order:
        if what == "pick":
            assert leaving is None, f"child {pid} picked while {leaving} was still leaving:\n{log}"
            leaving = pid
        elif pid == leaving:
            leaving = None
    # Requests go on being served all along.
    for _ in range(10):
        get(workdir, "peak=1")


def test_an_idle_worker_over_max_idle_memory_is_replaced(fpmd, workdir, hog):
    fpmd.start(basic_conf(workdir, hog_pool(workdir, hog, children=2, extra=(
        "pm.max_idle_memory = 32M\n"))))
    victim = pid_of(get(workdir, "leak=60"))
    # Not during the request and not at once: after the pool has been idle for a second.
    t0 = time.monotonic()
    fpmd.wait_log(rf"child {victim}: \d+ MB of private memory after its last request, over "
                  rf"pm\.max_idle_memory \(32 MB\): replacing it", timeout=10)
    assert time.monotonic() - t0 >= 0.5
    assert wait_for(lambda: len(fpmd.workers()) == 2 and victim not in fpmd.workers(), 5)
    assert metrics(workdir)['fpmd_worker_exits_total{reason="max_memory"}'] == 1


def test_idle_memory_waits_while_the_pool_is_busy(fpmd, workdir, hog):
    fpmd.start(basic_conf(workdir, hog_pool(workdir, hog, children=3, extra=(
        "pm.max_idle_memory = 32M\n"))))
    # one worker busy for 6 s while another is idle over the limit
    t0 = time.monotonic()
    busy = threading.Thread(target=lambda: get(workdir, "sleep=6000"))
    busy.start()
    time.sleep(0.2)
    victim = pid_of(get(workdir, "leak=60"))
    time.sleep(1.8)
    # (the check only holds while the busy request surely runs: not on a crawling machine)
    if time.monotonic() - t0 < 5.5:
        assert victim in fpmd.workers() and not recycle_lines(fpmd.log())
    busy.join(15)
    fpmd.wait_log(rf"child {victim}: .*over pm\.max_idle_memory", timeout=10)


def test_percent_m_and_status_memory_for_a_module_pool(fpmd, workdir, hog):
    fpmd.start(basic_conf(workdir, hog_pool(workdir, hog, children=1, extra=(
        f"access.log = {workdir}/access.log\naccess.format = \"%r %M\"\n"
        f"pm.status_listen = {workdir}/status.sock\n"))))
    get(workdir, "peak=1")
    get(workdir, "peak=48")
    lines = wait_for(lambda: (lambda t: t if len(t) >= 2 else None)(
        open(f"{workdir}/access.log").read().split("\n")[:2]), 5)
    mems = [int(l.split()[1]) for l in lines]
    # The request's own peak resident set: the 48 MB one, not the one before.
    assert mems[1] >= 48 * MB and mems[0] < SMALL, mems
    # Answered by the master: the worker is idle, its figures are shown, the pool's PSS.
    # (the worker goes idle just after its answer is out)
    st = wait_for(lambda: (lambda x: x if x["idle processes"] == 1 else None)(
        full_status(workdir, "status")), 5)
    (proc,) = st["processes"]
    assert proc["last request memory"] >= 48 * MB, proc
    get(workdir, "peak=1")
    st = wait_for(lambda: (lambda x: x if x["idle processes"] == 1 else None)(
        full_status(workdir, "status")), 5)
    assert 0 < st["processes"][0]["last request memory"] < SMALL, st
    assert 0 < st["pool memory"] < SMALL, st
    m = metrics(workdir, "status")
    assert 0 < m['fpmd_pool_memory_bytes{kind="pss"}'] < SMALL, m
    # Answered by the worker itself (it may read its own smaps_rollup, not a sibling's).
    m = metrics(workdir)
    assert m['fpmd_pool_memory_bytes{kind="pss"}'] > 0, m
    assert full_status(workdir)["pool memory"] > 0


def test_exec_pool_counts_its_program(fpmd, workdir):
    """The supervised program's memory is the worker's: a leaking program gets replaced."""
    app = os.path.join(HERE, "fcgi_app.py")
    fpmd.start(basic_conf(workdir, (
        f"[app]\nuser = nobody\nlisten = {workdir}/app.sock\npm = static\npm.max_children = 1\n"
        f"app.type = exec\nexec.command = /usr/bin/python3 {app}\npm.status_path = /status\n"
        f"pm.max_memory = 48M\naccess.log = {workdir}/access.log\naccess.format = \"%M\"\n"
        f"pm.status_listen = {workdir}/status.sock\n")))
    (worker,) = fpmd.workers()
    r = fcgi_request(f"{workdir}/app.sock", "/x?leak=10")
    assert r.status == 200
    prog = int(re.match(rb"pid=(\d+)", r.body).group(1))
    st = wait_for(lambda: (lambda x: x if x["idle processes"] == 1 else None)(
        full_status(workdir, "status")), 5)
    # the program's resident memory is in the worker's figures (python + 10 MB)
    assert st["processes"][0]["last request memory"] >= 10 * MB, st
    assert int(wait_for(lambda: open(f"{workdir}/access.log").read().split())[0]) >= 10 * MB
    assert not recycle_lines(fpmd.log())
    r = fcgi_request(f"{workdir}/app.sock", "/x?leak=60")
    assert r.status == 200
    fpmd.wait_log(rf"child {worker}: \d+ MB of private memory after its last request, over "
                  rf"pm\.max_memory \(48 MB\)")
    fpmd.wait_log(rf"child {worker} exited with code 0")
    assert wait_for(lambda: len(fpmd.workers()) == 1 and worker not in fpmd.workers(), 5)
    assert wait_for(lambda: not os.path.exists(f"/proc/{prog}"), 5)


PHP_SO = os.path.join(BUILD, "fpmd-php.so")


@pytest.mark.skipif(not os.path.exists(PHP_SO), reason="fpmd-php.so not built")
def test_php_pool_recycles_after_a_heavy_request(fpmd, workdir):
    write_script(os.path.join(workdir, "heavy.php"),
                 "<?php $a = []; for ($i = 0; $i < 3000000; $i++) $a[] = \"entry $i\"; echo getmypid();", 0o644)
    write_script(os.path.join(workdir, "page.php"), "<?php echo getmypid();", 0o644)
    fpmd.start(basic_conf(workdir, (
        f"[www]\nuser = nobody\nlisten = {workdir}/www.sock\npm = static\npm.max_children = 2\n"
        f"app.type = php\npm.status_path = /status\npm.max_memory = 32M\n"
        f"php_admin_value[memory_limit] = 512M\n")))
    sock = f"{workdir}/www.sock"
    n = len(fpmd.workers())          # the workers and the pool's zygote
    small = int(fcgi_request(sock, "/page.php", root=workdir).body)
    r = fcgi_request(sock, "/heavy.php", root=workdir, timeout=30)
    assert r.status == 200
    victim = int(r.body)
    fpmd.wait_log(rf"child {victim}: \d+ MB of private memory after its last request, over "
                  rf"pm\.max_memory", timeout=10)
    assert wait_for(lambda: victim not in fpmd.workers() and len(fpmd.workers()) == n, 15)
    if small != victim:
        assert small in fpmd.workers()
    st = full_status(workdir, "www")
    assert st["pool memory"] > 0


def test_direct_exec_mode_with_a_memory_limit_is_refused_by_the_check(fpmd, workdir):
    """exec.mode = direct: the worker never sees a request end, so it cannot measure after one."""
    from conftest import FPMD
    pool = (f"[d]\nuser = nobody\nlisten = {workdir}/d.sock\npm = static\npm.max_children = 1\n"
            f"app.type = exec\nexec.mode = direct\nexec.command = /bin/cat\npm.max_memory = 64M\n")
    fpmd.write_conf(basic_conf(workdir, pool))
    out = subprocess.run([FPMD, "-t", "-y", fpmd.conf_path], capture_output=True, text=True)
    assert out.returncode != 0
    assert "pm.max_memory and pm.max_idle_memory cannot be applied with exec.mode = direct" in \
        out.stdout + out.stderr


def test_percent_m_and_last_request_memory_for_a_cgi_pool(fpmd, workdir):
    """A cgi worker's figure is its own peak resident set (its scripts exit with their request)."""
    from conftest import pool_conf
    write_script(f"{workdir}/hi.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhi'\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1, extra=(
        f"access.log = {workdir}/access.log\naccess.format = \"%M\"\n"
        f"pm.status_listen = {workdir}/status.sock\n"))))
    assert fcgi_request(f"{workdir}/www.sock", "/hi.sh", root=workdir).body == b"hi"
    mem = int(wait_for(lambda: open(f"{workdir}/access.log").read().split())[0])
    assert 0 < mem < SMALL
    st = wait_for(lambda: (lambda x: x if x["idle processes"] == 1 else None)(
        full_status(workdir, "status")), 5)
    assert st["processes"][0]["last request memory"] == mem, st
    assert st["pool memory"] > 0
