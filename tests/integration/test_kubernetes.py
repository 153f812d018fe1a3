"""contrib/kubernetes: the manifests' own fpmd.conf (a PHP pool), nginx.conf, probes and stop
(SIGTERM with sigterm_drain, no preStop hook), run here; every manifest parsed.

Paths are moved into the test's directory (the TCP listen too, to a unix socket) and, since the
tests run as root, the pool gets `user = nobody` (the container runs fpmd as uid 10001 without
one); sigterm_drain is shortened to keep the test short.  Everything else is taken from the
manifests as they are, so docs/kubernetes.md cannot drift from what works."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.request

import pytest

from conftest import BUILD, FPMCTL, fcgi_request, wait_for

yaml = pytest.importorskip("yaml", reason="needs python3-yaml")
K8S = os.path.join(os.path.dirname(__file__), "..", "..", "contrib", "kubernetes")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
needs_php = pytest.mark.skipif(not os.path.exists(os.path.join(BUILD, "fpmd-php.so")),
                               reason="fpmd-php.so not built (libphp8.2-embed / php8.2-dev missing)")


def manifest(name):
    with open(os.path.join(K8S, name)) as f:
        return list(yaml.safe_load_all(f))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local(text, workdir):
    return (text.replace("/run/fpmd", workdir).replace("/srv/www", workdir)
            .replace("\nlisten = 9000\n", f"\nlisten = {workdir}/www.sock\n"))


def container(name):
    spec = manifest("deployment.yaml")[0]["spec"]["template"]["spec"]
    return spec, next(c for c in spec["containers"] if c["name"] == name)


def fpmd_conf(workdir, drain="2s"):
    conf = manifest("configmap.yaml")[0]["data"]["fpmd.conf"]
    conf = local(conf, workdir).replace("[www]\n", "[www]\nuser = nobody\n")
    return re.sub(r"^sigterm_drain = .*$", f"sigterm_drain = {drain}", conf, flags=re.M) if drain else conf


def entrypoint():
    """The image's ENTRYPOINT (contrib/container/Containerfile): the manifest gives args only."""
    with open(os.path.join(K8S, "..", "container", "Containerfile")) as f:
        return json.loads(re.search(r"^ENTRYPOINT (.*)$", f.read(), re.M).group(1))


def command(cmd, workdir):
    """A probe or hook command from the manifest, runnable here."""
    return [FPMCTL if c == "fpmctl" else local(c, workdir) for c in cmd]


def start(fpmd, workdir):
    _, c = container("fpmd")
    assert c["args"] == ["-y", "/etc/fpmd/fpmd.conf"]
    assert entrypoint()[1:] == ["-F", "-O"]
    conf = fpmd_conf(workdir)
    fpmd.start(conf, args=tuple(entrypoint()[1:]))   # -F -O, the config in the fixture's place
    return conf


def test_every_manifest_parses():
    kinds = {}
    for name in sorted(os.listdir(K8S)):
        if name.endswith(".yaml"):
            for doc in manifest(name):
                assert doc, name
                # prometheus-scrape.yaml is a list of scrape jobs, not an object
                kind = doc.get("kind") if isinstance(doc, dict) else "scrape_configs"
                kinds.setdefault(kind, []).append(name)
    assert {"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "ScaledObject",
            "Ingress"} <= set(kinds), kinds
    # The HPA scales on the adapter's saturation metric; KEDA's query is the same ratio.
    hpa = manifest("hpa.yaml")[0]["spec"]["metrics"][0]["pods"]["metric"]["name"]
    adapter = manifest("prometheus-adapter.yaml")[0]["data"]["config.yaml"]
    rules = yaml.safe_load(adapter)["rules"]
    assert any(r.get("name", {}).get("as") == hpa for r in rules), rules
    sat = next(r for r in rules if r.get("name", {}).get("as") == hpa)["metricsQuery"]
    keda = manifest("keda.yaml")[0]["spec"]["triggers"][0]["metadata"]["query"]
    for q in (sat, keda):
        assert "phpfpm_active_processes" in q and "phpfpm_listen_queue" in q and "fpmd_pm_max_children" in q
    # No preStop anywhere: fpmd drains on SIGTERM, nginx is not in the request path.
    spec, _ = container("fpmd")
    assert all("lifecycle" not in c for c in spec["containers"]), spec["containers"]


@needs_php
def test_fpmd_runs_with_the_manifest_config_and_logs_json(fpmd, workdir):
    start(fpmd, workdir)
    _, c = container("fpmd")
    for probe in ("livenessProbe", "readinessProbe"):
        r = subprocess.run(command(c[probe]["exec"]["command"], workdir), capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0, (probe, r)
    # -O with error_log = /dev/null: each line once on stderr, one JSON object per line.
    lines = [l for l in fpmd.log().splitlines() if l]
    assert lines and all(set(json.loads(l)) == {"time", "level", "message"} for l in lines), lines
    msgs = [json.loads(l)["message"] for l in lines]
    assert len(msgs) == len(set(msgs)), msgs
    assert any(m == "ready to handle connections" for m in msgs)
    assert all(re.fullmatch(r"\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d", json.loads(l)["time"])
               for l in lines)


def test_grace_period_covers_drain_and_process_control_timeout():
    spec, c = container("fpmd")
    conf = fpmd_conf("/x", drain=None)
    drain = int(re.search(r"^sigterm_drain = (\d+)s$", conf, re.M).group(1))
    pct = int(re.search(r"^process_control_timeout = (\d+)s$", conf, re.M).group(1))
    rtt = int(re.search(r"^request_terminate_timeout = (\d+)s$", conf, re.M).group(1))
    assert rtt <= pct
    assert drain >= 5                      # endpoint propagation: kube-proxy, the ingress
    assert spec["terminationGracePeriodSeconds"] >= drain + pct + 1 + 5


@needs_php
def test_sigterm_drains_then_lets_the_request_in_flight_finish(fpmd, workdir):
    with open(f"{workdir}/slow.php", "w") as f:
        f.write("<?php usleep(2500000); echo 'done';")
    with open(f"{workdir}/hello.php", "w") as f:
        f.write("<?php echo 'hello';")
    start(fpmd, workdir)
    _, c = container("fpmd")
    readiness = command(c["readinessProbe"]["exec"]["command"], workdir)
    assert subprocess.run(readiness, capture_output=True, timeout=10).returncode == 0
    out = []
    t = threading.Thread(target=lambda: out.append(
        fcgi_request(f"{workdir}/www.sock", "/slow.php", root=workdir, timeout=20)))
    t.start()
    assert wait_for(lambda: b"Running" in fcgi_request(f"{workdir}/www-status.sock", "/status?full").body, 5)
    fpmd.signal(signal.SIGTERM)                  # the kubelet's stop, no hook before it
    assert wait_for(lambda: subprocess.run(readiness, capture_output=True, timeout=10).returncode == 6, 1)
    # The endpoint removal is still on its way: new requests are served meanwhile.
    r = fcgi_request(f"{workdir}/www.sock", "/hello.php", root=workdir)
    assert r.status == 200 and r.body == b"hello"
    t.join(20)
    assert out and out[0].body == b"done"
    assert fpmd.proc.wait(10) == 0


@pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="nginx is not installed")
@needs_php
def test_nginx_sidecar_probes_and_metrics(fpmd, workdir):
    with open(f"{workdir}/hold.php", "w") as f:
        f.write("<?php while (!file_exists(__DIR__ . '/release')) usleep(50000); echo 'ok';")
    start(fpmd, workdir)
    probes = free_port()
    conf = local(manifest("configmap.yaml")[0]["data"]["nginx.conf"], workdir)
    conf = (conf.replace("listen 8081;", f"listen 127.0.0.1:{probes};")
            .replace("/tmp/nginx", f"{workdir}/nginx")
            .replace("access_log /dev/stdout;", "access_log off;"))
    conf = "daemon off;\nuser nobody nogroup;\nerror_log stderr;\n" + conf
    with open(f"{workdir}/nginx.conf", "w") as f:
        f.write(conf)
    log = open(f"{workdir}/nginx.log", "wb")
    ngx = subprocess.Popen([NGINX, "-c", f"{workdir}/nginx.conf", "-p", workdir], stdout=log,
                           stderr=subprocess.STDOUT, start_new_session=True)

    def get(port, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return None, ""

    threads = []
    try:
        assert wait_for(lambda: get(probes, "/nginx-health")[0] == 200, 10), open(f"{workdir}/nginx.log").read()
        assert get(probes, "/fpm-ping") == (200, "pong")
        status, body = get(probes, "/fpm-ready")
        assert status == 200 and body.startswith("ready: pool www"), body
        status, body = get(probes, "/fpm-metrics")
        assert status == 200 and "phpfpm_active_processes" in body and body.endswith("# EOF\n")
        status, body = get(probes, "/fpm-status?json")
        assert status == 200 and json.loads(body)["pool"] == "www"
        status, body = get(probes, "/fpm-status?html&live")
        assert status == 200 and "fpmd status: pool www" in body
        # Saturate: 8 workers held, 5 more waiting (> queue=4): not ready, still alive.
        threads = [threading.Thread(target=lambda: fcgi_request(f"{workdir}/www.sock", "/hold.php",
                                                                root=workdir, timeout=30))
                   for _ in range(13)]
        for t in threads:
            t.start()
        assert wait_for(lambda: get(probes, "/fpm-ready")[0] == 503, 10), get(probes, "/fpm-ready")
        assert "saturated: pool www, 8 of 8 workers busy" in get(probes, "/fpm-ready")[1]
        assert get(probes, "/fpm-ping") == (200, "pong")
    finally:
        open(f"{workdir}/release", "w").close()
        for t in threads:
            t.join(20)
        assert wait_for(lambda: get(probes, "/fpm-ready")[0] == 200, 10)
        os.killpg(ngx.pid, signal.SIGTERM)
        ngx.wait(10)
        log.close()
