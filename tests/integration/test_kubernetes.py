"""contrib/kubernetes: the manifests' own fpmd.conf, nginx.conf, probes and preStop hook, run here.

Paths are moved into the test's directory and, since the tests run as root, the pool gets
`user = nobody` (the container runs fpmd as uid 10001 without one); everything else is taken
from the manifests as they are, so docs/kubernetes.md cannot drift from what works."""
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

from conftest import FPMCTL, fcgi_request, wait_for, write_script

yaml = pytest.importorskip("yaml", reason="needs python3-yaml")
K8S = os.path.join(os.path.dirname(__file__), "..", "..", "contrib", "kubernetes")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def manifest(name):
    with open(os.path.join(K8S, name)) as f:
        return list(yaml.safe_load_all(f))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local(text, workdir):
    return text.replace("/run/fpmd", workdir).replace("/srv/cgi-bin", workdir)


def container(name):
    spec = manifest("deployment.yaml")[0]["spec"]["template"]["spec"]
    return spec, next(c for c in spec["containers"] if c["name"] == name)


def fpmd_conf(workdir):
    conf = manifest("configmap.yaml")[0]["data"]["fpmd.conf"]
    return local(conf, workdir).replace("[www]\n", "[www]\nuser = nobody\n")


def command(cmd, workdir):
    """A probe or hook command from the manifest, runnable here."""
    return [FPMCTL if c == "fpmctl" else local(c, workdir) for c in cmd]


def start(fpmd, workdir):
    _, c = container("fpmd")
    assert c["args"][:-1] == ["-F", "-y"]
    conf = fpmd_conf(workdir)
    fpmd.start(conf, args=tuple(c["args"][:-2]))     # -F, the config in the fixture's place
    return conf


def test_fpmd_runs_with_the_manifest_config_and_logs_json(fpmd, workdir):
    start(fpmd, workdir)
    _, c = container("fpmd")
    for probe in ("livenessProbe", "readinessProbe"):
        r = subprocess.run(command(c[probe]["exec"]["command"], workdir), capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0, (probe, r)
    # error_log = /proc/self/fd/2 without -O: each line once, one JSON object per line.
    lines = [l for l in fpmd.log().splitlines() if l]
    assert lines and all(set(json.loads(l)) == {"time", "level", "message"} for l in lines), lines
    msgs = [json.loads(l)["message"] for l in lines]
    assert len(msgs) == len(set(msgs)), msgs
    assert any(m == "ready to handle connections" for m in msgs)
    assert all(re.fullmatch(r"\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d", json.loads(l)["time"])
               for l in lines)


def test_grace_period_covers_prestop_and_process_control_timeout():
    spec, c = container("fpmd")
    hook = " ".join(c["lifecycle"]["preStop"]["exec"]["command"])
    sleep = int(re.search(r"sleep (\d+)", hook).group(1))
    pct = int(re.search(r"^process_control_timeout = (\d+)s$", fpmd_conf("/x"), re.M).group(1))
    rtt = int(re.search(r"^request_terminate_timeout = (\d+)s$", fpmd_conf("/x"), re.M).group(1))
    quit_timeout = int(re.search(r"--timeout (\d+)", hook).group(1))
    assert rtt <= pct
    assert spec["terminationGracePeriodSeconds"] >= sleep + pct + 1 + 5
    assert quit_timeout >= pct + 2


def test_prestop_lets_the_request_in_flight_finish(fpmd, workdir):
    write_script(f"{workdir}/slow.sh", "#!/bin/sh\nsleep 1.5\nprintf 'Content-Type: text/plain\\r\\n\\r\\ndone'\n")
    start(fpmd, workdir)
    _, c = container("fpmd")
    hook = command(c["lifecycle"]["preStop"]["exec"]["command"], workdir)
    hook[-1] = re.sub(r"sleep \d+", "sleep 0", hook[-1]).replace("fpmctl ", FPMCTL + " ", 1)
    out = []
    t = threading.Thread(target=lambda: out.append(
        fcgi_request(f"{workdir}/www.sock", "/slow.sh", root=workdir, timeout=20)))
    t.start()
    assert wait_for(lambda: b"Running" in fcgi_request(f"{workdir}/www-status.sock", "/status?full").body, 5)
    r = subprocess.run(hook, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    t.join(20)
    assert out and out[0].body == b"done"
    assert fpmd.proc.wait(5) == 0                # fpmctl returned as fpmd exited


@pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="nginx is not installed")
def test_nginx_sidecar_probes_and_metrics(fpmd, workdir):
    write_script(f"{workdir}/hold.sh", "#!/bin/sh\nwhile [ ! -e release ]; do sleep 0.05; done\n"
                 "printf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    write_script(f"{workdir}/hello.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhello'\n")
    start(fpmd, workdir)
    app, probes = free_port(), free_port()
    conf = local(manifest("configmap.yaml")[0]["data"]["nginx.conf"], workdir)
    conf = (conf.replace("listen 8080;", f"listen 127.0.0.1:{app};")
            .replace("listen 8081;", f"listen 127.0.0.1:{probes};")
            .replace("include fastcgi_params;", "include /etc/nginx/fastcgi_params;")
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
        assert get(app, "/hello.sh") == (200, "hello")
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
        threads = [threading.Thread(target=get, args=(app, "/hold.sh")) for _ in range(13)]
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
