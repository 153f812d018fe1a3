"""make image: fpmd's container image, built from Debian's packages only (scripts/image.sh),
run under podman with runc: it serves a PHP page and a CGI script from a mounted directory as
a non-root user, logs JSON on stderr, passes its health check, reloads, and on SIGTERM drains
(readiness 503, still serving) then exits 0 within the grace period.

The build is cached by content in podman's storage (outside the tree): the first run builds it
(a few minutes: mmdebstrap fetches from the Debian mirror), later ones only check the hash.
crun, podman's default runtime, fails on cgroup v1 hybrid hosts: runc is used."""
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import FPMCTL, wait_for

TOP = os.path.join(os.path.dirname(__file__), "..", "..")
IMAGE = "localhost/fpmd:latest"
PODMAN = shutil.which("podman")
RUN = ["--runtime", "runc"]
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", "host"]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="podman's rootful storage and mmdebstrap: needs root"),
    pytest.mark.skipif(not PODMAN or not shutil.which("mmdebstrap") or not shutil.which("runc"),
                       reason="podman, runc or mmdebstrap missing (scripts/deps.sh image)"),
]


def podman(*args, timeout=60, check=False):
    return subprocess.run([PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=check)


@pytest.fixture(scope="module")
def image():
    r = subprocess.run(["sh", os.path.join(TOP, "scripts", "image.sh")], capture_output=True, text=True,
                       timeout=1500, env=dict(os.environ, IMAGE=IMAGE))
    assert r.returncode == 0, r.stdout + r.stderr
    probe = podman(*RUN, "run", "--rm", *LIMITS, "--entrypoint", "/bin/true", IMAGE)
    if probe.returncode != 0:
        pytest.skip(f"podman cannot run a container here: {probe.stderr.strip()[-300:]}")
    return IMAGE


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, uri):
    return subprocess.run([FPMCTL, "request", "-s", f"tcp:127.0.0.1:{port}", "--root", "/srv/www", uri],
                          capture_output=True, text=True, timeout=20)


def ready(port):
    return subprocess.run([FPMCTL, "ping", "--ready", "-s", f"tcp:127.0.0.1:{port}", "--timeout", "2"],
                          capture_output=True, text=True, timeout=10)


@pytest.fixture
def container(image, workdir):
    www = os.path.join(workdir, "www")
    os.makedirs(os.path.join(www, "cgi-bin"))
    with open(os.path.join(www, "index.php"), "w") as f:
        f.write("<?php echo 'php ', PHP_MAJOR_VERSION, '.', PHP_MINOR_VERSION, ' uid ', posix_getuid(), ' ',"
                " implode(',', array_intersect(['curl', 'mbstring', 'pdo_sqlite', 'dom', 'Zend OPcache'],"
                " get_loaded_extensions()));\n")
    with open(os.path.join(www, "cgi-bin", "hello.sh"), "w") as f:
        f.write("#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\ncgi uid %s\\n' \"$(id -u)\"\n")
    os.chmod(os.path.join(www, "cgi-bin", "hello.sh"), 0o755)
    for d in (workdir, www, os.path.join(www, "cgi-bin")):
        os.chmod(d, 0o755)
    ports = {k: free_port() for k in ("www", "status", "cgi")}
    name = f"fpmd-test-{os.getpid()}-{ports['www']}"
    r = podman(*RUN, "run", "-d", "--name", name, *LIMITS, "-v", f"{www}:/srv/www:ro",
               "-e", f"FPMD_LISTEN=127.0.0.1:{ports['www']}",
               "-e", f"FPMD_STATUS_LISTEN=127.0.0.1:{ports['status']}",
               "-e", f"FPMD_CGI_LISTEN=127.0.0.1:{ports['cgi']}", "-e", "FPMD_MAX_CHILDREN=2", image)
    assert r.returncode == 0, r.stderr
    c = {"name": name, "ports": ports}
    try:
        assert wait_for(lambda: ready(ports["status"]).returncode == 0, 20), podman("logs", name).stderr
        yield c
    finally:
        podman(*RUN, "rm", "-f", "-t", "0", name)


def test_image_serves_php_and_cgi_reloads_and_drains_on_sigterm(container):
    name, ports = container["name"], container["ports"]
    r = request(ports["www"], "/index.php")
    assert r.returncode == 0 and r.stdout.startswith("php 8.2 uid 10001 "), r
    # What php:8.2-fpm has too, from Debian's packages and /etc/php/8.2/fpm/conf.d.
    exts = set(r.stdout.split(" uid 10001 ", 1)[1].split(","))
    assert exts == {"curl", "mbstring", "pdo_sqlite", "dom", "Zend OPcache"}, r.stdout
    r = request(ports["cgi"], "/cgi-bin/hello.sh")
    assert r.returncode == 0 and r.stdout == "cgi uid 10001\n", r
    # The image's health check: fpmctl ping --ready on status_listen.
    hc = podman(*RUN, "healthcheck", "run", name)
    assert hc.returncode == 0, hc
    # Reload through the control socket; the new generation serves.
    rl = podman(*RUN, "exec", name, "fpmctl", "reload", "-c", "/var/lib/fpmd/fpmd.ctl", timeout=30)
    assert rl.returncode == 0 and rl.stdout.startswith("OK reloaded"), rl
    assert request(ports["www"], "/index.php").stdout.startswith("php 8.2")

    # SIGTERM, as the kubelet sends it: not ready at once, still serving, then exit 0.
    t0 = time.monotonic()
    assert podman(*RUN, "kill", "--signal", "TERM", name).returncode == 0
    assert wait_for(lambda: ready(ports["status"]).returncode == 6, 1), ready(ports["status"])
    assert ready(ports["status"]).stdout.startswith("draining: pool www")
    assert podman(*RUN, "healthcheck", "run", name).returncode != 0
    assert request(ports["www"], "/index.php").stdout.startswith("php 8.2")
    w = podman(*RUN, "wait", name, timeout=40)
    took = time.monotonic() - t0
    assert w.stdout.strip() == "0", w
    assert 4.5 <= took < 10, took          # sigterm_drain = 5s, then the graceful stop

    # stderr is the log: one JSON object per line, from the master as pid 1.
    logs = podman("logs", name).stderr.splitlines()
    lines = [json.loads(x) for x in logs if x.startswith("{")]
    assert lines and len(lines) == len([x for x in logs if x.strip() and not x.startswith("time=")]), logs
    msgs = [x["message"] for x in lines]
    assert "fpm is running, pid 1" in msgs and "exiting, bye-bye!" in msgs, msgs
    assert any(m.startswith("Draining") for m in msgs), msgs


def test_image_size_and_user(image, capsys):
    insp = json.loads(podman("image", "inspect", image).stdout)[0]
    size = insp["Size"]
    cfg = insp.get("Config", {})
    assert cfg.get("User") == "10001:10001", cfg
    assert cfg.get("Entrypoint") == ["/usr/sbin/fpmd", "-F", "-O"], cfg
    assert cfg.get("StopSignal") == "SIGTERM", cfg
    hc = insp.get("Healthcheck") or cfg.get("Healthcheck") or {}
    assert "fpmctl ping --ready" in " ".join(hc.get("Test", [])), insp.keys()
    with capsys.disabled():
        print(f"\nfpmd image {image}: {size / 1e6:.0f} MB uncompressed")
    assert size < 400e6
