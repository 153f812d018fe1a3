"""bench/fcgi-load: builds, drives an fpmd ping pool, counts what it should.

A smoke test of the `make bench` load generator, never of speed: no timing is
asserted, only that requests succeed and that failures are counted by kind.
"""
import json
import os
import subprocess

import pytest

from conftest import basic_conf, pool_conf

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture
def fcgi_load(workdir):
    exe = os.path.join(workdir, "fcgi-load")
    fcgi = [os.path.join(REPO, "src", "fcgi", f) for f in
            ("fcgi_nv.c", "fcgi_parser.c", "fcgi_record.c", "fcgi_resp.c")]
    subprocess.run([os.environ.get("CC", "cc"), "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror",
                    "-D_GNU_SOURCE", "-I" + os.path.join(REPO, "src"), "-o", exe,
                    os.path.join(REPO, "bench", "fcgi-load.c"), *fcgi], check=True)
    return exe


def run_load(exe, *args):
    p = subprocess.run([exe, "-j", *args], capture_output=True, text=True, timeout=60)
    lines = p.stdout.splitlines()
    assert len(lines) == 1, f"one JSON line expected:\n{p.stdout}\n{p.stderr}"
    return p.returncode, json.loads(lines[0])


def test_load_against_fpmd_ping(fpmd, workdir, fcgi_load):
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=2)))
    sock = f"unix:{workdir}/www.sock"

    rc, r = run_load(fcgi_load, "-c", "4", "-d", "1", "-e", "pong", sock, "/ping")
    assert rc == 0, r
    assert r["rps"] > 0 and r["ok"] > 0 and r["ok"] == r["requests"]
    assert r["error_total"] == 0 and all(v == 0 for v in r["errors"].values()), r
    assert r["latency_us"]["max"] >= r["latency_us"]["p50"] > 0

    # keep-alive, a fixed count, a POST body the ping handler never reads
    rc, r = run_load(fcgi_load, "-k", "-c", "2", "-n", "200", "-b", "70000", "-e", "pong", sock, "/ping")
    assert rc == 0 and r["ok"] == 200 and r["error_total"] == 0, r

    # failures are counted by kind, and the run still ends by itself
    rc, r = run_load(fcgi_load, "-n", "20", "-e", "no such text", sock, "/ping")
    assert rc == 1 and r["errors"]["mismatch"] == 20 and r["ok"] == 0, r
    rc, r = run_load(fcgi_load, "-n", "20", sock, "/missing.sh")
    assert rc == 1 and r["errors"]["status"] == 20, r
    rc, r = run_load(fcgi_load, "-d", "0.3", f"unix:{workdir}/nobody-listens.sock", "/ping")
    assert rc == 1 and r["ok"] == 0 and r["errors"]["connect"] > 0, r
