#!/usr/bin/python3
"""A rolling update under load, as Kubernetes does it, on one machine.

nginx (one upstream of two backends, each a PHP FastCGI server on a unix socket: a "pod")
takes a steady, bounded load.  N times, one backend is replaced the way a Deployment's
rolling update does it:

  t=0     the old pod gets its container's stop signal; its replacement starts (maxSurge)
  t=1s    the endpoint controller's update reaches nginx: the old pod leaves the upstream
          (config rewritten, nginx reloaded: the race between SIGTERM and endpoint removal)
          and the replacement joins it once it answers its readiness probe
  then    the old pod exits within the grace period (SIGKILL after it, as the kubelet does)

nginx does not retry another backend (fastcgi_next_upstream off), as a Service's
virtual IP does not: every request the old pod drops is a failed request.

Servers compared:
  fpmd      STOPSIGNAL SIGTERM with sigterm_drain = 2s (readiness fails, keeps serving, then
            finishes in-flight requests), process_control_timeout = 10s
  php-fpm   php-fpm8.2 as the official image runs it: STOPSIGNAL SIGQUIT (graceful), and
            process_control_timeout = 10s
  fpmd-term fpmd without sigterm_drain: SIGTERM keeps php-fpm's meaning (stop now)

Usage: bench/rolling.py [--cycles 20] [--server fpmd|php-fpm|fpmd-term|both|all] [--build DIR]
Prints one line per server: cycles, requests, non-2xx, failed connections.  Needs root
(the pools run as nobody), nginx and php-fpm8.2 (Debian packages).
"""
import argparse
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PHP_FPM = "/usr/sbin/php-fpm8.2"
GRACE = 30                    # terminationGracePeriodSeconds
PROPAGATION = 1.0             # SIGTERM → endpoint removal reaching nginx

POOL = """[global]
pid = {base}/{name}.pid
error_log = {base}/{name}.log
daemonize = no
process_control_timeout = 10s
{extra}
[www]
user = nobody
group = nogroup
listen = {sock}
listen.mode = 0666
listen.backlog = 511
pm = static
pm.max_children = 4
ping.path = /ping
"""
SCRIPT = "<?php usleep(20000); echo 'ok ', getmypid();\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


class Pod:
    """One backend process: fpmd or php-fpm, its own config and socket."""

    def __init__(self, world, kind, gen):
        self.world, self.kind = world, kind
        self.name = f"{kind}-{gen}"
        self.sock = os.path.join(world.base, f"{self.name}.sock")
        extra = "sigterm_drain = 2s\n" if kind == "fpmd" else ""
        conf = os.path.join(world.base, f"{self.name}.conf")
        with open(conf, "w") as f:
            f.write(POOL.format(base=world.base, name=self.name, sock=self.sock, extra=extra))
        binary = world.fpmd if kind.startswith("fpmd") else PHP_FPM
        self.out = open(os.path.join(world.base, f"{self.name}.out"), "ab")
        self.proc = subprocess.Popen([binary, "-F", "-R", "-y", conf], stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def ready(self):
        # The readiness probe: fpmd's ping.path?ready, php-fpm's ping.path (it has no other).
        args = [self.world.fpmctl, "ping", "-s", f"unix:{self.sock}", "--timeout", "2"]
        if self.kind.startswith("fpmd"):
            args.append("--ready")
        if self.proc.poll() is not None or not os.path.exists(self.sock):
            return False
        return subprocess.run(args, capture_output=True, timeout=5).returncode == 0

    def stop_signal(self):
        self.proc.send_signal(signal.SIGTERM if self.kind.startswith("fpmd") else signal.SIGQUIT)

    def reap(self, deadline):
        """Waits until deadline (monotonic), then SIGKILLs the group, as the kubelet does."""
        try:
            self.proc.wait(max(0.0, deadline - time.monotonic()))
            killed = False
        except subprocess.TimeoutExpired:
            killed = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(5)
        self.out.close()
        return killed


class World:
    def __init__(self, build, base):
        self.fpmd = os.path.join(build, "fpmd")
        self.fpmctl = os.path.join(build, "fpmctl")
        self.base = base
        self.root = os.path.join(base, "www")
        os.makedirs(self.root, exist_ok=True)
        os.chmod(base, 0o755)
        with open(os.path.join(self.root, "app.php"), "w") as f:
            f.write(SCRIPT)
        self.prefix = os.path.join(base, "nginx")
        os.makedirs(self.prefix, exist_ok=True)
        self.port = free_port()
        self.nginx = None

    def nginx_conf(self, pods):
        servers = "".join(f"        server unix:{p.sock};\n" for p in pods)
        p = self.prefix
        conf = (f"daemon off;\nmaster_process on;\nworker_processes 1;\nuser nobody nogroup;\n"
                f"pid {p}/nginx.pid;\nerror_log {p}/error.log notice;\n"
                f"events {{ worker_connections 512; }}\n"
                f"http {{\n    access_log off;\n"
                f"    client_body_temp_path {p}/body;\n    fastcgi_temp_path {p}/fastcgi;\n"
                f"    proxy_temp_path {p}/proxy;\n    uwsgi_temp_path {p}/uwsgi;\n"
                f"    scgi_temp_path {p}/scgi;\n"
                f"    upstream app {{\n{servers}    }}\n"
                f"    server {{\n        listen 127.0.0.1:{self.port};\n        root {self.root};\n"
                f"        location ~ \\.php$ {{\n            include /etc/nginx/fastcgi.conf;\n"
                f"            fastcgi_next_upstream off;\n            fastcgi_pass app;\n"
                f"        }}\n    }}\n}}\n")
        path = os.path.join(self.base, "nginx.conf")
        with open(path + ".new", "w") as f:
            f.write(conf)
        os.replace(path + ".new", path)
        return path

    def set_upstream(self, pods):
        path = self.nginx_conf(pods)
        if self.nginx is None:
            self.nginx_out = open(os.path.join(self.prefix, "stderr.log"), "ab")
            self.nginx = subprocess.Popen([NGINX, "-c", path, "-p", self.prefix],
                                          stdout=self.nginx_out, stderr=subprocess.STDOUT,
                                          start_new_session=True)
            ok = wait_for(lambda: self._port_open() or self.nginx.poll() is not None, 10)
            if not ok or self.nginx.poll() is not None:
                raise RuntimeError("nginx did not start")
        else:
            self.nginx.send_signal(signal.SIGHUP)     # graceful: old workers finish theirs

    def _port_open(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def close(self):
        if self.nginx is not None:
            try:
                os.killpg(self.nginx.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.nginx.wait(5)
            self.nginx_out.close()


class Load:
    """threads clients, each a request after the other (new connection each), bounded."""

    def __init__(self, port, threads=4, pause=0.01):
        self.port, self.threads, self.pause = port, threads, pause
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = self.bad = self.conn_errors = 0
        self.bad_samples = []

    def _one(self):
        while not self.stop.is_set():
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                c.request("GET", "/app.php")
                r = c.getresponse()
                r.read()
                c.close()
                with self.lock:
                    if 200 <= r.status < 300:
                        self.ok += 1
                    else:
                        self.bad += 1
                        if len(self.bad_samples) < 5:
                            self.bad_samples.append(r.status)
            except OSError as e:
                with self.lock:
                    self.conn_errors += 1
                    if len(self.bad_samples) < 5:
                        self.bad_samples.append(repr(e))
            time.sleep(self.pause)

    def __enter__(self):
        self.ts = [threading.Thread(target=self._one, daemon=True) for _ in range(self.threads)]
        for t in self.ts:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.ts:
            t.join(20)


def rolling_update(build, kind, cycles, base=None, threads=4):
    """Returns a dict: cycles, ok, non_2xx, conn_errors, killed (pods SIGKILLed), seconds."""
    own = base is None
    base = base or tempfile.mkdtemp(prefix=f"fpmd-rolling-{kind}-")
    world = World(build, base)
    gen = 0
    pods = []
    killed = 0
    t_start = time.monotonic()
    try:
        for _ in range(2):
            gen += 1
            pods.append(Pod(world, kind, gen))
        if not wait_for(lambda: all(p.ready() for p in pods), 20, 0.1):
            raise RuntimeError(f"{kind} did not start: see {base}")
        world.set_upstream(pods)
        with Load(world.port, threads) as load:
            time.sleep(0.5)
            for i in range(cycles):
                old = pods[i % 2]
                t0 = time.monotonic()
                old.stop_signal()
                gen += 1
                new = Pod(world, kind, gen)
                time.sleep(max(0.0, t0 + PROPAGATION - time.monotonic()))
                others = [p for p in pods if p is not old]
                world.set_upstream(others)              # the endpoint is removed
                if not wait_for(new.ready, 20, 0.05):
                    raise RuntimeError(f"{new.name} never became ready: see {base}")
                pods[i % 2] = new
                world.set_upstream(pods)                # the replacement's endpoint is added
                killed += old.reap(t0 + GRACE)
            time.sleep(0.5)
        return {"server": kind, "cycles": cycles, "ok": load.ok, "non_2xx": load.bad,
                "conn_errors": load.conn_errors, "killed": killed,
                "samples": load.bad_samples, "seconds": round(time.monotonic() - t_start, 1),
                "dir": base}
    finally:
        for p in pods:
            if p.proc.poll() is None:
                p.stop_signal()
                p.reap(time.monotonic() + 12)
        world.close()
        if own:
            shutil.rmtree(base, ignore_errors=True)


def line(r):
    return (f"{r['server']:8s} rolling update x{r['cycles']}: {r['ok']} ok, {r['non_2xx']} non-2xx, "
            f"{r['conn_errors']} connection errors, {r['killed']} SIGKILLed, {r['seconds']}s"
            + (f"  e.g. {r['samples']}" if r["samples"] else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--server", choices=("fpmd", "php-fpm", "fpmd-term", "both", "all"), default="both")
    ap.add_argument("--build", default=os.environ.get("FPMD_BUILD", "build"))
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    kinds = {"both": ("fpmd", "php-fpm"), "all": ("fpmd", "php-fpm", "fpmd-term")}.get(a.server, (a.server,))
    failed = 0
    for k in kinds:
        r = rolling_update(os.path.abspath(a.build), k, a.cycles, threads=a.threads)
        print(line(r).replace(f"{k:8s} ", f"{k:9s} ", 1), flush=True)
        failed += r["non_2xx"] + r["conn_errors"] if k == "fpmd" else 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
