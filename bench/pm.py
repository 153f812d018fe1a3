#!/usr/bin/env python3
"""Process-manager scenarios of `make bench`: fpmd and php-fpm8.2 in one run.

    pm.py TMP FPMD PHPFPM LOAD WWW SCENARIO...      (called by bench/run.sh)

Scenarios (bench/README.md):
  ondemand-ramp  pm=ondemand, 32 children, a 200 ms handler, a burst of 32
                 requests from idle: time until 32 workers exist, time for all 32
  recycle        pm=static, 4 workers, pm.max_requests=50, c=16 load: requests,
                 failures, worker restarts
  reload         c=16 load while the master gets SIGUSR2 every second: ok and
                 failed requests

Every server is started in its own session; its process group is written to
DIR/pgids at once (run.sh's trap kills those too) and killed here at the end of
its scenario, on failure, on SIGTERM and on Ctrl-C.  Environment: BENCH_QUICK,
BENCH_SECS, BENCH_ROUNDS, BENCH_RESULTS (a JSON file to write the figures to).
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import time

TMP, FPMD, PHPFPM, LOAD, WWW = sys.argv[1:6]
SCENARIOS = sys.argv[6:]
QUICK = os.environ.get("BENCH_QUICK", "0") == "1"
SECS = float(os.environ.get("BENCH_SECS", "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
if QUICK:
    SECS, ROUNDS = 1.0, 1
AS_ROOT = ["-R"] if os.getuid() == 0 else []
GROUPS = []          # process groups started and not yet stopped
LOADS = []           # fcgi-load processes started
RESULTS = {}


def say(*a):
    print(*a, file=sys.stderr, flush=True)


def on_term(signum, frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, on_term)


# --- servers ------------------------------------------------------------------

class Server:
    def __init__(self, kind, name, conf):
        self.kind, self.name = kind, name
        self.dir = os.path.join(TMP, "pm", name)
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "sock")
        self.log = os.path.join(self.dir, "error.log")
        cf = os.path.join(self.dir, kind + ".conf")
        glob = "[global]\npid = %s/%s.pid\nerror_log = %s\n" % (self.dir, kind, self.log)
        if kind == "php-fpm":
            glob += "daemonize = no\n"
        pool = "[bench]\nlisten = %s\n" % self.sock
        if kind == "fpmd":
            pool += "app.type = cgi\ncgi.root = %s\n" % WWW
        with open(cf, "w") as f:
            f.write(glob + conf.get("global", "") + "\n" + pool + conf["pool"])
        if kind == "fpmd":
            argv = [FPMD, "-F", "-y", cf] + AS_ROOT
        else:
            argv = [PHPFPM, "-F", "-y", cf, "-p", self.dir] + AS_ROOT
        out = open(os.path.join(self.dir, "out.log"), "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.pid = self.proc.pid          # a session leader: pid = pgid
        GROUPS.append(self.pid)
        with open(os.path.join(self.dir, "pgids"), "a") as f:
            f.write("%d\n" % self.pid)
        end = time.monotonic() + 10
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("%s did not start: %s" % (name, self.tail()))
            time.sleep(0.02)

    def tail(self):
        s = ""
        for p in ("out.log", "error.log"):
            try:
                with open(os.path.join(self.dir, p)) as f:
                    s += "".join(f.readlines()[-5:])
            except OSError:
                pass
        return s

    def children(self):
        """Pids whose parent is the master (its workers)."""
        kids = set()
        try:
            for t in os.listdir("/proc/%d/task" % self.pid):
                with open("/proc/%d/task/%s/children" % (self.pid, t)) as f:
                    kids.update(int(x) for x in f.read().split())
        except OSError:
            pass
        return kids

    def log_size(self):
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def log_since(self, off):
        try:
            with open(self.log, errors="replace") as f:
                f.seek(off)
                return f.read()
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        stop_group(self.pid)
        try:
            self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass


def stop_group(g):
    try:
        os.killpg(g, signal.SIGTERM)
    except OSError:
        pass
    end = time.monotonic() + 2
    while time.monotonic() < end:
        try:
            os.killpg(g, 0)
        except OSError:
            break
        time.sleep(0.05)
    try:
        os.killpg(g, signal.SIGKILL)
    except OSError:
        pass
    if g in GROUPS:
        GROUPS.remove(g)


def load(srv, uri, expect, conns, secs=None, n=None, timeout_ms=10000, bg=False):
    argv = [LOAD, "-j", "-c", str(conns), "-t", str(timeout_ms), "-r", WWW, "-e", expect]
    if secs is not None:
        argv += ["-d", str(secs)]
    if n is not None:
        argv += ["-n", str(n)]
    argv += ["unix:" + srv.sock, uri]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    LOADS.append(p)
    if bg:
        return p
    return finish_load(p, (secs or 60) + timeout_ms / 1000 + 10)


def finish_load(p, limit):
    try:
        out, err = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise RuntimeError("fcgi-load did not end within %.0f s" % limit)
    lines = out.strip().splitlines()
    if not lines:
        raise RuntimeError("fcgi-load printed nothing: %s" % err.strip())
    return json.loads(lines[-1])


def wait_ready(srv, uri, expect):
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            if load(srv, uri, expect, 1, n=1, timeout_ms=2000)["ok"] == 1:
                return
        except (RuntimeError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError("%s not answering %s: %s" % (srv.name, uri, srv.tail()))


def errs(j):
    e = {k: v for k, v in j["errors"].items() if v}
    return "%d%s" % (j["error_total"], " " + json.dumps(e) if e else "")


def table(head, rows, text=2):
    print("| " + " | ".join(head) + " |")
    print("| " + " | ".join("---" if i < text else "---:" for i in range(len(head))) + " |")
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")
    print(flush=True)


def fmt(x, nd=0):
    return "–" if x is None else ("%.*f" % (nd, x))


# --- ondemand-ramp ------------------------------------------------------------

def ondemand_ramp():
    N = 32
    pool = ("pm = ondemand\npm.max_children = %d\npm.max_spawn_rate = %d\n"
            "pm.process_idle_timeout = 1s\n" % (N, N))
    cases = [("fpmd", "fpmd", "/sleep.sh", "cgi/sleep.sh: sh + sleep 0.2"),
             ("php-fpm", "php-fpm", "/sleep.php", "php/sleep.php: usleep(200000)")]
    rows, raw = [], {}
    for kind, name, uri, what in cases:
        srv = Server(kind, "ramp-" + name, {"pool": pool})
        try:
            r32, rall, maxw = [], [], []
            for rnd in range(ROUNDS):
                # from idle: no worker (ondemand starts none; the idle timeout retires them)
                end = time.monotonic() + 20
                while srv.children():
                    if time.monotonic() > end:
                        raise RuntimeError("%s: workers still there after 20 s" % name)
                    time.sleep(0.1)
                t0 = time.monotonic()
                p = load(srv, uri, "slept", N, n=N, timeout_ms=30000, bg=True)
                t32, most = None, 0
                while True:
                    c = len(srv.children())
                    most = max(most, c)
                    if t32 is None and c >= N:
                        t32 = time.monotonic() - t0
                    if p.poll() is not None:
                        break
                    if time.monotonic() - t0 > 40:
                        break
                    time.sleep(0.01)
                j = finish_load(p, 5)
                tall = time.monotonic() - t0
                if j["ok"] != N or j["error_total"]:
                    raise RuntimeError("%s: %d of %d ok, errors %s" % (name, j["ok"], N, errs(j)))
                say("bench: ondemand-ramp %s round %d: 32 workers after %s ms, "
                    "32 requests in %.0f ms, most workers %d"
                    % (name, rnd + 1, fmt(t32 and t32 * 1000), tall * 1000, most))
                if t32 is not None:
                    r32.append(t32 * 1000)
                rall.append(tall * 1000)
                maxw.append(most)
            raw[name] = {"t32_ms": r32, "total_ms": rall, "max_workers": maxw}
            rows.append((name, what, "%s%s" % (fmt(statistics.median(r32)) if r32 else "never",
                                               "" if len(r32) == ROUNDS or not r32
                                               else " (%d of %d rounds)" % (len(r32), ROUNDS)),
                         fmt(statistics.median(rall)), "%d–%d" % (min(rall), max(rall)),
                         max(maxw)))
        finally:
            srv.stop()
    RESULTS["ondemand-ramp"] = raw
    print("ondemand-ramp: pm = ondemand, pm.max_children = 32, pm.max_spawn_rate = 32; "
          "32 requests at once from no worker; median of %d rounds" % ROUNDS)
    print()
    table(["server", "handler", "32 workers after (ms)", "32 requests done (ms)",
           "min–max", "most workers"], rows)


# --- recycle ------------------------------------------------------------------

def recycle():
    secs = SECS
    base = "pm = static\npm.max_children = 4\npm.max_requests = 50\nping.path = /ping\n"
    cases = [("fpmd", "fpmd", "/ping", "pong", "ping.path", base + "pm.max_requests_jitter = 10\n"),
             ("fpmd", "fpmd-cgi", "/hello.sh", "Hello", "cgi/hello.sh",
              base + "pm.max_requests_jitter = 10\n"),
             ("php-fpm", "php-fpm", "/hello.php", "Hello", "php/hello.php", base),
             ("php-fpm", "php-fpm-ping", "/ping", "pong", "ping.path", base)]
    rows, raw = [], {}
    for kind, name, uri, expect, what, pool in cases:
        srv = Server(kind, "recycle-" + name, {"pool": pool})
        try:
            wait_ready(srv, uri, expect)
            before = srv.children()
            off = srv.log_size()
            j = load(srv, uri, expect, 16, secs=secs)
            time.sleep(0.3)
            log = srv.log_since(off)
            exited = sum(1 for ln in log.splitlines() if " exited " in ln and "child " in ln)
            after = srv.children()
            ok = srv.alive() and len(after) == 4
            raw[name] = {"load": j, "restarts": exited, "workers_after": len(after)}
            say("bench: recycle %s: %d ok, errors %s, %d workers restarted"
                % (name, j["ok"], errs(j), exited))
            rows.append((name, what, "%.0f" % j["rps"], j["ok"], errs(j), exited,
                         "%.0f" % (j["ok"] / exited) if exited else "–",
                         "4 (%d new)" % len(after - before) if ok else "%d!" % len(after)))
        finally:
            srv.stop()
    RESULTS["recycle"] = raw
    print("recycle: pm = static, 4 workers, pm.max_requests = 50 (fpmd: "
          "pm.max_requests_jitter = 10), c=16, %g s, one new connection per request" % secs)
    print()
    table(["server", "requests served by", "req/s", "ok", "failed", "workers restarted",
           "ok per restart", "workers after"], rows)


# --- reload -------------------------------------------------------------------

def reload():
    n, gap, secs = (3, 1.0, 5) if QUICK else (10, 1.0, 15)
    base = "pm = static\npm.max_children = 4\nping.path = /ping\n"
    cases = [("fpmd", "fpmd", "/ping", "pong", "ping.path", "defaults (process_control_timeout 10s)", {}),
             ("fpmd", "fpmd-cgi", "/hello.sh", "Hello", "cgi/hello.sh",
              "defaults (process_control_timeout 10s)", {}),
             ("php-fpm", "php-fpm", "/hello.php", "Hello", "php/hello.php",
              "process_control_timeout = 0 (default)", {}),
             ("php-fpm", "php-fpm-pct10", "/hello.php", "Hello", "php/hello.php",
              "process_control_timeout = 10s", {"global": "process_control_timeout = 10s\n"})]
    rows, raw = [], {}
    for kind, name, uri, expect, what, how, extra in cases:
        srv = Server(kind, "reload-" + name, dict(extra, pool=base))
        try:
            wait_ready(srv, uri, expect)
            off = srv.log_size()
            p = load(srv, uri, expect, 16, secs=secs, bg=True)
            time.sleep(1.0)
            sent = 0
            for _ in range(n):
                os.kill(srv.pid, signal.SIGUSR2)
                sent += 1
                time.sleep(gap)
            j = finish_load(p, secs + 30)
            time.sleep(0.5)
            execs = srv.log_since(off).count("reloading: execvp")
            up = srv.alive()
            if up:
                try:
                    wait_ready(srv, uri, expect)
                except RuntimeError:
                    up = False
            raw[name] = {"load": j, "reloads": sent, "re_execs": execs, "answering_after": up}
            say("bench: reload %s: %d reloads, %d ok, errors %s, unfinished %d"
                % (name, sent, j["ok"], errs(j), j["unfinished"]))
            rows.append((name, what, how, "%d / %d" % (sent, execs), j["ok"], errs(j), j["unfinished"],
                         "%.0f" % (j["latency_us"]["max"] / 1000), "yes" if up else "NO"))
        finally:
            srv.stop()
    RESULTS["reload"] = raw
    print("reload: pm = static, 4 workers, c=16 for %d s, SIGUSR2 to the master every %g s, "
          "%d times from t=1 s" % (secs, gap, n))
    print()
    table(["server", "requests served by", "settings", "SIGUSR2 sent / re-execs logged", "ok",
           "failed", "unfinished", "max ms", "answering after"], rows, text=3)


def main():
    if not PHPFPM:
        say("bench: php-fpm8.2 missing: %s skipped" % " ".join(SCENARIOS))
        return 0
    for d in ("sleep.php", "hello.php"):
        if not os.path.exists(os.path.join(WWW, d)):
            raise RuntimeError("%s/%s missing" % (WWW, d))
    try:
        for s in SCENARIOS:
            say("bench: scenario %s" % s)
            {"ondemand-ramp": ondemand_ramp, "recycle": recycle, "reload": reload}[s]()
    finally:
        for p in LOADS:
            if p.poll() is None:
                p.kill()
                p.wait()
        for g in list(GROUPS):
            stop_group(g)
        out = os.environ.get("BENCH_RESULTS")
        if out and RESULTS:
            with open(out, "w") as f:
                json.dump(RESULTS, f, indent=1)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        say("bench: %s" % e)
        sys.exit(1)
