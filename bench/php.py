#!/usr/bin/env python3
"""The php-hello / php-table scenarios' own measurements (bench/run.sh runs it
once per server, after its timed rounds):

    php.py OUT SCENARIO WORKERS SERVER LOAD WWW URI EXPECT REQS PGID [-- LOADARG...]

- worker CPU per request: utime+stime (/proc/PID/stat, clock ticks) and the
  scheduler's on-CPU time (/proc/PID/schedstat, ns) of the worker processes,
  before and after a fixed count of REQS requests (fcgi-load -n REQS -c 8);
  the master's (and fpmd's zygote's) CPU over the same requests apart;
- PSS of the master, of each worker and of fpmd's zygote (smaps_rollup), right
  after those requests;
- opcache sharing: every worker is killed (SIGKILL; the manager starts new
  ones), and the first request a fresh worker serves is php/opcache.php,
  which prints opcache_get_status(): whether the scripts the dead workers
  compiled are in the cache the new one sees, and the hit rate.
Appends one JSON line to OUT and prints a progress line.
"""
import json
import os
import signal
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def procs(pgid):
    """{pid: role} of the live processes of this process group."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] == "Z" or int(fields[2]) != pgid:
                continue
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        pid = int(d)
        out[pid] = "master" if pid == pgid else "zygote" if "zygote" in cmd else "worker"
    return out


def cpu(pid):
    """(utime+stime in µs, on-CPU ns) of a process, None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/schedstat") as f:
            sched = int(f.read().split()[0])
        return ((int(fields[11]) + int(fields[12])) * 1_000_000 // HZ, sched)
    except (OSError, IndexError, ValueError):
        return None


def pss(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def fcgi_get(sock, www, uri, params):
    """One request through cgi-fcgi (libfcgi-bin); the body, or None."""
    env = {"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": www + uri, "SCRIPT_NAME": uri,
           "REQUEST_URI": uri, "DOCUMENT_ROOT": www, "SERVER_PROTOCOL": "HTTP/1.1",
           "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_NAME": "localhost", "SERVER_PORT": "80"}
    for kv in params:
        k, v = kv.split("=", 1)
        env[k] = v
    try:
        r = subprocess.run(["cgi-fcgi", "-bind", "-connect", sock], env=env,
                           capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "cgi-fcgi: " + str(e)
    body = r.stdout.split(b"\r\n\r\n", 1)[-1].split(b"\n\n", 1)[-1]
    return body.decode(errors="replace")


def main(argv):
    out, scen, workers, server, load, www, uri, expect, reqs, pgid = argv[1:11]
    extra = argv[12:] if len(argv) > 11 and argv[11] == "--" else []
    pgid, reqs, workers = int(pgid), int(reqs), int(workers)
    sock = os.path.join(os.path.dirname(out), scen + "-" + str(workers), server, "sock")
    res = {"scenario": scen, "workers": workers, "server": server, "requests": reqs}

    # --- CPU over a fixed request count ---
    before = {pid: (role, cpu(pid)) for pid, role in procs(pgid).items()}
    r = subprocess.run([load, "-j", "-c", "8", "-n", str(reqs), "-r", www, "-e", expect]
                       + extra + ["unix:" + sock, uri], capture_output=True, text=True)
    after = {pid: cpu(pid) for pid in before}
    try:
        ld = json.loads(r.stdout)
    except ValueError:
        ld = {"ok": 0, "error_total": -1}
    res["load"] = {k: ld.get(k) for k in ("ok", "error_total", "rps", "seconds")}
    tot = {}
    for pid, (role, b) in before.items():
        a = after[pid]
        if b is None or a is None:
            continue
        t = tot.setdefault(role, [0, 0, 0])
        t[0] += a[0] - b[0]
        t[1] += a[1] - b[1]
        t[2] += 1
    ok = max(ld.get("ok") or 0, 1)
    res["cpu_us_per_req"] = {role: {"utime_stime": t[0] / ok, "sched": t[1] / 1000 / ok,
                                    "procs": t[2]} for role, t in tot.items()}

    # --- PSS by role ---
    mem = {}
    for pid, role in procs(pgid).items():
        mem.setdefault(role, []).append(pss(pid))
    res["pss_kb"] = mem

    # --- opcache seen by a fresh worker ---
    for p in (uri, "/opcache.php"):
        subprocess.run([load, "-j", "-c", "2", "-n", "20", "-r", www] + extra_for(extra, p)
                       + ["unix:" + sock, p], capture_output=True)
    old = [pid for pid, role in procs(pgid).items() if role == "worker"]
    for pid in old:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    deadline = time.time() + 10
    fresh = []
    while time.time() < deadline:
        fresh = [pid for pid, role in procs(pgid).items() if role == "worker" and pid not in old]
        if len(fresh) >= workers:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    body = fcgi_get(sock, www, "/opcache.php", params_for(extra, "/opcache.php"))
    try:
        res["opcache_fresh"] = json.loads(body.strip().splitlines()[-1])
        oc = res["opcache_fresh"]
        oc["fresh_worker"] = oc["pid"] in fresh
        # the scenario's script, compiled by the killed workers: in the cache
        # the fresh one sees (hits >= 0) only if opcache's memory is shared
        oc["script_hits"] = oc["table_hits"] if "table" in uri else oc["hello_hits"]
        oc["shared"] = bool(oc["opcache"] and oc["fresh_worker"] and oc["script_hits"] >= 0)
    except (AttributeError, ValueError, IndexError, KeyError):
        res["opcache_fresh"] = {"error": (body or "no answer")[:200]}

    with open(out, "a") as f:
        f.write(json.dumps(res) + "\n")
    c = res["cpu_us_per_req"].get("worker", {})
    w = mem.get("worker", [0])
    oc = res["opcache_fresh"]
    print(f"  {scen:9} w={workers} {server:8} {reqs} requests: worker CPU "
          f"{c.get('utime_stime', 0):.1f} µs/req (sched {c.get('sched', 0):.1f}), PSS master "
          f"{sum(mem.get('master', [0])) / 1024:.1f} MiB, worker {sum(w) / len(w) / 1024:.1f} MiB; "
          f"fresh worker: {oc.get('cached_scripts')} scripts cached, hit rate "
          f"{oc.get('hit_rate', 0):.1f} %, {'shared' if oc.get('shared') else 'NOT shared'}", flush=True)
    return 0


def extra_for(extra, uri):
    """fcgi-load's -p PATH_INFO=… follows the URI (uWSGI maps DOCUMENT_ROOT + PATH_INFO)."""
    return ["-p", "PATH_INFO=" + uri] if params_for(extra, uri) else []


def params_for(extra, uri):
    return ["PATH_INFO=" + uri] if any(a.startswith("PATH_INFO=") for a in extra) else []


if __name__ == "__main__":
    sys.exit(main(sys.argv))
