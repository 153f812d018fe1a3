#!/usr/bin/env python3
"""Real applications in `make bench`: fpmd against php-fpm8.2 and uWSGI's php
plugin in one run, Debian's php.ini and conf.d (opcache on), 2 workers each.

    apps.py TMP FPMD PHPFPM LOAD ROOT SCENARIO...      (called by bench/run.sh)

Scenarios (bench/README.md):
  symfony   examples/symfony-worker (Symfony 5.4 from Debian's packages): its
            Twig page and its JSON route, served classic (php-fpm8.2, uWSGI,
            fpmd) and in php.worker mode: the loop (php.worker_boot = worker),
            and forks of the app booted in the zygote with pm.max_requests = 1
            (a fresh booted process per request) and = 100
  dokuwiki  Debian's dokuwiki package, a page view (wiki:syntax), classic:
            php-fpm8.2, uWSGI, fpmd

For each server and page: requests/s (fcgi-load -c 4 for BENCH_SECS, the
servers in turn, BENCH_ROUNDS rounds, median), the server's CPU per request
over BENCH_APPS_REQS requests (at most 3 s of them): the machine's busy time
(/proc/stat) less the load generator's own, so that processes living for one
request count as much as the others (the JSON also has the server's processes'
utime+stime),
and the PSS of all its processes after it.  Ratios are to php-fpm8.2's.
Writes BENCH_RESULTS (JSON) when set.
"""

import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time

TMP, FPMD, PHPFPM, LOAD, ROOT = sys.argv[1:6]
SCENARIOS = sys.argv[6:]
QUICK = os.environ.get("BENCH_QUICK", "0") == "1"
SECS = float(os.environ.get("BENCH_SECS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CPU_REQS = int(os.environ.get("BENCH_APPS_REQS", "2000"))
if QUICK:
    SECS, ROUNDS, CPU_REQS = 1.0, 1, 500
CONNS = 4
WORKERS = 2
AS_ROOT = ["-R"] if os.getuid() == 0 else []
PHPINI_DIR = "/etc/php/8.2/fpm"
HZ = os.sysconf("SC_CLK_TCK")
PHPCLI = shutil.which("php8.2") or shutil.which("php")
UWSGI = shutil.which("uwsgi") if os.path.exists("/usr/lib/uwsgi/plugins/php_plugin.so") else None
GROUPS = []
RESULTS = {}


def say(*a):
    print(*a, file=sys.stderr, flush=True)


def on_term(signum, frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, on_term)


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d CPUs, Linux %s" % (model, os.cpu_count(), platform.release())


# --- servers ------------------------------------------------------------------

class Server:
    """One server in its own session; its process group is killed at the end."""

    def __init__(self, name, argv, sock, dirname):
        self.name, self.sock, self.dir = name, sock, dirname
        out = open(os.path.join(dirname, "out.log"), "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.pid = self.proc.pid
        GROUPS.append(self.pid)
        with open(os.path.join(dirname, "pgids"), "a") as f:
            f.write("%d\n" % self.pid)
        end = time.monotonic() + 30
        while not os.path.exists(sock):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("%s did not start: %s" % (name, self.tail()))
            time.sleep(0.05)

    def tail(self):
        s = ""
        for p in ("out.log", "error.log"):
            try:
                with open(os.path.join(self.dir, p)) as f:
                    s += "".join(f.readlines()[-8:])
            except OSError:
                pass
        return s

    def procs(self):
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[2]) == self.pid:
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
        return out

    def cpu_us(self):
        """utime+stime of the live processes, plus the master's reaped children's."""
        tot = 0
        for pid in self.procs():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            tot += int(fields[11]) + int(fields[12])
            if pid == self.pid:
                tot += int(fields[13]) + int(fields[14])
        return tot * 1_000_000 // HZ

    def pss_kb(self):
        tot = 0
        for pid in self.procs():
            try:
                with open("/proc/%d/smaps_rollup" % pid) as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            tot += int(line.split()[1])
            except OSError:
                pass
        return tot

    def stop(self):
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass
        if self.pid in GROUPS:
            GROUPS.remove(self.pid)


def server_dir(scen, name):
    d = os.path.join(TMP, "apps", scen, name)
    os.makedirs(d, exist_ok=True)
    return d


def start_php_fpm(scen, name, pool):
    d = server_dir(scen, name)
    sock = os.path.join(d, "sock")
    with open(os.path.join(d, "php-fpm.conf"), "w") as f:
        f.write("[global]\npid = %s/php-fpm.pid\nerror_log = %s/error.log\ndaemonize = no\n\n"
                "[bench]\nlisten = %s\npm = static\npm.max_children = %d\n%s"
                % (d, d, sock, WORKERS, pool))
    return Server(name, [PHPFPM, "-F", "-y", os.path.join(d, "php-fpm.conf"), "-p", d] + AS_ROOT,
                  sock, d)


def start_fpmd(scen, name, pool):
    d = server_dir(scen, name)
    sock = os.path.join(d, "sock")
    with open(os.path.join(d, "fpmd.conf"), "w") as f:
        f.write("[global]\npid = %s/fpmd.pid\nerror_log = %s/error.log\n\n"
                "[bench]\nlisten = %s\npm = static\npm.max_children = %d\napp.type = php\n%s"
                % (d, d, sock, WORKERS, pool))
    return Server(name, [FPMD, "-F", "-y", os.path.join(d, "fpmd.conf")] + AS_ROOT, sock, d)


def start_uwsgi(scen, name, docroot, env):
    d = server_dir(scen, name)
    sock = os.path.join(d, "sock")
    argv = [UWSGI, "--plugin", "0:php", "--fastcgi-socket", sock, "--processes", str(WORKERS),
            "--master", "--die-on-term", "--disable-logging", "--php-docroot", docroot,
            "--php-ini", PHPINI_DIR + "/php.ini"]
    for f in sorted(os.listdir(PHPINI_DIR + "/conf.d")):
        argv += ["--php-ini-append", os.path.join(PHPINI_DIR, "conf.d", f)]
    for k, v in env.items():
        argv += ["--env", "%s=%s" % (k, v)]
    if os.getuid() == 0:
        # uWSGI drops to the user before it binds: the socket's directory must let it
        os.chmod(d, 0o777)
        argv += ["--uid", "www-data", "--gid", "www-data"]
    return Server(name, argv, sock, d)


# --- load -----------------------------------------------------------------------

def machine_busy_us():
    """CPU time the whole machine spent busy (user, nice, system, irq, softirq), /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) * 1_000_000 // HZ


def load(srv, page, secs=None, n=None, conns=CONNS):
    argv = [LOAD, "-j", "-c", str(conns), "-t", "20000", "-e", page["expect"]]
    for k, v in page["params"].items():
        argv += ["-p", "%s=%s" % (k, v)]
    if srv.name.startswith("uwsgi"):
        argv += ["-p", "PATH_INFO=" + page["params"]["SCRIPT_NAME"]]
    if secs is not None:
        argv += ["-d", str(secs)]
    if n is not None:
        argv += ["-n", str(n)]
    argv += ["unix:" + srv.sock, page["uri"]]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=(secs or 120) + 60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise RuntimeError("fcgi-load did not end")
    lines = out.strip().splitlines()
    if not lines:
        raise RuntimeError("fcgi-load printed nothing: %s" % err.strip())
    return json.loads(lines[-1])


def wait_ready(srv, page):
    end = time.monotonic() + 30
    last = None
    while time.monotonic() < end:
        try:
            last = load(srv, page, n=1, conns=1)
            if last["ok"] == 1:
                return
        except (RuntimeError, ValueError) as e:
            last = str(e)
        time.sleep(0.2)
    raise RuntimeError("%s not answering %s (%s): %s" % (srv.name, page["uri"], last, srv.tail()))


def measure(servers, pages):
    """{(server, page): {rps: [...], cpu_us, pss_kb, errors}}"""
    res = {}
    for srv in servers:
        for p in pages:
            wait_ready(srv, p)
            load(srv, p, n=200)                 # warm: opcache, the app's caches
    for rnd in range(ROUNDS):
        for srv in servers:
            for p in pages:
                j = load(srv, p, secs=SECS)
                r = res.setdefault((srv.name, p["name"]), {"rps": [], "errors": 0})
                r["rps"].append(j["rps"])
                r["errors"] += j["error_total"]
        say("bench: apps round %d/%d done" % (rnd + 1, ROUNDS))
    for srv in servers:
        for p in pages:
            r = res[(srv.name, p["name"])]
            # at most ~3 s of requests: a server forking per request does ~30/s here
            n = max(100, min(CPU_REQS, int(statistics.median(r["rps"]) * 3)))
            # The machine's busy time less the load generator's: every process of
            # the server counted, however short its life (a fork per request), on
            # a machine otherwise quiet.  The server's own processes' figure next
            # to it (utime+stime, the master's reaped children's included).
            before, mbefore = srv.cpu_us(), machine_busy_us()
            cb = resource.getrusage(resource.RUSAGE_CHILDREN)
            j = load(srv, p, n=n)
            ca = resource.getrusage(resource.RUSAGE_CHILDREN)
            after, mafter = srv.cpu_us(), machine_busy_us()
            load_us = ((ca.ru_utime + ca.ru_stime) - (cb.ru_utime + cb.ru_stime)) * 1e6
            ok = max(j["ok"], 1)
            r["cpu_us"] = max(mafter - mbefore - load_us, 0) / ok
            r["cpu_us_procs"] = (after - before) / ok
            r["errors"] += j["error_total"]
        res[(srv.name, "pss")] = srv.pss_kb()
    return res


class ForkFloor:
    """Not a server: bench/apps/symfony-fork-floor.php, php-cli forking the
    booted example per request (issue 23's own measurement of what
    max_requests = 1 can cost here), a row next to the servers'."""

    def __init__(self, app):
        self.name, self.app = "php-cli fork floor", app

    def run(self, page, secs):
        """(served per second, machine CPU µs per request, failures) of one run."""
        env = dict(os.environ, PHP_INI_SCAN_DIR=PHPINI_DIR + "/conf.d")
        argv = [PHPCLI, "-c", PHPINI_DIR + "/php.ini", "-d", "opcache.enable_cli=1",
                os.path.join(ROOT, "bench", "apps", "symfony-fork-floor.php"), self.app,
                page["uri"], str(secs), page["expect"], str(WORKERS)]
        # as the servers' workers: the application's cache is www-data's
        drop = None
        if os.getuid() == 0:
            import pwd
            pw = pwd.getpwnam("www-data")

            def drop():
                os.setgid(pw.pw_gid)
                os.setgroups([])
                os.setuid(pw.pw_uid)
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, preexec_fn=drop,
                             cwd=self.app)
        try:
            if p.stdout.readline().strip() != "booted":
                raise RuntimeError("fork floor did not boot: %s" % p.stderr.read()[-400:])
            before = machine_busy_us()
            p.stdin.write("go\n")
            p.stdin.flush()
            out, err = p.communicate(timeout=secs + 60)
            after = machine_busy_us()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        j = json.loads(out.strip().splitlines()[-1])
        n = max(j["n"], 1)
        return j["n"] / j["secs"], (after - before) / n, j["bad"]


def measure_fork_floor(floor, pages, res):
    for p in pages:
        r = {"rps": [], "errors": 0, "cpu_list": []}
        for _ in range(ROUNDS):
            rps, cpu, bad = floor.run(p, SECS)
            r["rps"].append(rps)
            r["cpu_list"].append(cpu)
            r["errors"] += bad
        r["cpu_us"] = statistics.median(r["cpu_list"])
        r["cpu_us_procs"] = None
        res[(floor.name, p["name"])] = r
    res[(floor.name, "pss")] = None


def report(scen, servers, pages, res, notes):
    print("\n### %s — %s\n" % (scen, machine()))
    print("%d workers each, fcgi-load -c %d, %.0f s x %d rounds (median), CPU over %d "
          "requests; ratios to php-fpm8.2 in the same run.\n" % (WORKERS, CONNS, SECS, ROUNDS, CPU_REQS))
    head = ["server", "page", "req/s", "÷ php-fpm", "CPU µs/req", "÷ php-fpm", "PSS MiB", "errors"]
    print("| " + " | ".join(head) + " |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    out = []
    for p in pages:
        base = res.get(("php-fpm", p["name"]))
        for srv in servers:
            r = res[(srv.name, p["name"])]
            rps = statistics.median(r["rps"])
            row = {"server": srv.name, "page": p["name"], "rps": rps, "cpu_us": r["cpu_us"],
                   "pss_kb": res[(srv.name, "pss")], "errors": r["errors"], "rps_all": r["rps"]}
            if base:
                row["rps_ratio"] = rps / statistics.median(base["rps"])
                row["cpu_ratio"] = r["cpu_us"] / base["cpu_us"] if base["cpu_us"] else None
            out.append(row)
            print("| %s | %s | %.0f | %s | %.0f | %s | %s | %d |" % (
                srv.name, p["name"], rps,
                "%.2f×" % row["rps_ratio"] if "rps_ratio" in row else "–",
                r["cpu_us"], "%.2f×" % row["cpu_ratio"] if row.get("cpu_ratio") else "–",
                "%.1f" % (row["pss_kb"] / 1024) if row["pss_kb"] is not None else "–",
                r["errors"]))
    for n in notes:
        print("\n" + n)
    print(flush=True)
    RESULTS[scen] = {"machine": machine(), "rows": out}


# --- scenarios --------------------------------------------------------------------

APP_ENV = {"APP_ENV": "prod", "APP_DEBUG": "0"}


def symfony():
    app = os.path.join(TMP, "apps", "symfony-app")
    if os.path.exists(app):
        shutil.rmtree(app)
    shutil.copytree(os.path.join(ROOT, "examples", "symfony-worker"), app)
    os.makedirs(os.path.join(app, "var"), exist_ok=True)
    if os.getuid() == 0:
        subprocess.run(["chown", "-R", "www-data:www-data", os.path.join(app, "var")], check=True)
    index = os.path.join(app, "public", "index.php")
    params = {"SCRIPT_FILENAME": index, "SCRIPT_NAME": "/index.php",
              "DOCUMENT_ROOT": os.path.join(app, "public")}
    pages = [{"name": "twig page", "uri": "/", "expect": "Catalogue", "params": params},
             {"name": "json route", "uri": "/api/items", "expect": '"items"', "params": params}]
    user = "user = www-data\ngroup = www-data\n" if os.getuid() == 0 else ""
    env = "".join("env[%s] = %s\n" % kv for kv in APP_ENV.items())
    worker = "php.worker = %s\n" % index
    servers = []
    try:
        servers.append(start_php_fpm("symfony", "php-fpm", user + env))
        if UWSGI:
            servers.append(start_uwsgi("symfony", "uwsgi", os.path.join(app, "public"), APP_ENV))
        servers.append(start_fpmd("symfony", "fpmd", user + env))
        servers.append(start_fpmd("symfony", "fpmd worker", user + env + worker))
        servers.append(start_fpmd("symfony", "fpmd zygote mr=1", user + env + worker +
                                  "php.worker_boot = zygote\npm.max_requests = 1\n"))
        servers.append(start_fpmd("symfony", "fpmd zygote mr=100", user + env + worker +
                                  "php.worker_boot = zygote\npm.max_requests = 100\n"))
        # the example's opt-in warm-up: one request handled in the zygote before it forks
        servers.append(start_fpmd("symfony", "fpmd zygote mr=100 warm", user + env + worker +
                                  "php.worker_boot = zygote\npm.max_requests = 100\n"
                                  "env[FPMD_WARMUP_URI] = /\n"))
        res = measure(servers, pages)
        rows = list(servers)
        if PHPCLI:
            floor = ForkFloor(app)
            measure_fork_floor(floor, pages, res)
            rows.append(floor)
        report("symfony", rows, pages, res, [
            "fpmd: classic, a script per request; worker: php.worker, the kernel booted once per "
            "worker (the loop); zygote mr=N: booted once in the pool's zygote, every worker a fork "
            "of it that serves N requests (mr=1: every request from the pristine booted state); "
            "warm: with the example's env[FPMD_WARMUP_URI] = /, a request handled in the zygote "
            "before it forks.",
            "php-cli fork floor (not a server, PSS not measured): issue 23's own measurement of "
            "what zygote mr=1 costs on this machine, bench/apps/symfony-fork-floor.php: php-cli "
            "boots the example as the zygote does, then forks %d children at a time, each handles "
            "one request (no FastCGI) and leaves as _exit() would; CPU is the machine's per "
            "request, the boot left out. fpmd zygote mr=1 cannot beat it; mr=1's goal (2x "
            "php-fpm) needs this row at 2x or more." % WORKERS])
    finally:
        for s in servers:
            s.stop()


def dokuwiki():
    www = "/usr/share/dokuwiki"
    if not os.path.exists(os.path.join(www, "doku.php")):
        say("bench: dokuwiki not installed (scripts/deps.sh bench): skipped")
        return
    params = {"SCRIPT_FILENAME": www + "/doku.php", "SCRIPT_NAME": "/doku.php", "DOCUMENT_ROOT": www}
    pages = [{"name": "page view", "uri": "/doku.php?id=wiki:syntax", "expect": "DokuWiki",
              "params": params}]
    # DokuWiki's data (/var/lib/dokuwiki) is www-data's
    user = "user = www-data\ngroup = www-data\n" if os.getuid() == 0 else ""
    servers = []
    try:
        servers.append(start_php_fpm("dokuwiki", "php-fpm", user))
        if UWSGI:
            servers.append(start_uwsgi("dokuwiki", "uwsgi", www, {}))
        servers.append(start_fpmd("dokuwiki", "fpmd", user))
        res = measure(servers, pages)
        report("dokuwiki", servers, pages, res, [])
    finally:
        for s in servers:
            s.stop()


def main():
    if not PHPFPM:
        say("bench: php-fpm8.2 missing: %s skipped" % " ".join(SCENARIOS))
        return 0
    if not os.path.exists(os.path.join(os.path.dirname(FPMD), "fpmd-php.so")):
        say("bench: fpmd-php.so not built: %s skipped" % " ".join(SCENARIOS))
        return 0
    try:
        for s in SCENARIOS:
            say("bench: scenario %s" % s)
            {"symfony": symfony, "dokuwiki": dokuwiki}[s]()
    finally:
        for g in list(GROUPS):
            try:
                os.killpg(g, signal.SIGKILL)
            except OSError:
                pass
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
