#!/usr/bin/env python3
"""Helpers of bench/run.sh: memory of a server, progress lines, the final table.

    report.py mem PGID...              {"rss_kb":…,"pss_kb":…,"procs":…} of every live
                                       process in those process groups
    report.py record RAW SCENARIO WORKERS SERVER ROUND LOAD_JSON PGID...
                                       adds one measurement and the memory of those
                                       groups to RAW (JSON lines), prints a progress line
    report.py table RAW OUT [k=v]...   medians, min-max, ratios to fpmd: a markdown
                                       table on stdout, everything in OUT (JSON)
    report.py wrk WRK_OUTPUT CONNS     `wrk --latency`'s report as fcgi-load's JSON line
"""
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

# Goals from issues 6 and 13: fpmd's req/s divided by the peer's, same run.
GOALS = {("cgi-c", "fcgiwrap"): 1.3, ("cgi-sh", "fcgiwrap"): 1.1,
         ("php-hello", "uwsgi"): 1.1, ("php-table", "uwsgi"): 1.0,
         ("hello", "prefork"): 0.95, ("hello", "libfcgi"): 1.2, ("hello", "php-fpm"): 2.0,
         ("hello-ka", "prefork"): 0.95, ("hello-ka", "libfcgi"): 1.2, ("hello-ka", "php-fpm"): 2.0}
# Scenarios whose ratios are taken the other way round: each server's req/s
# divided by this peer's (issue 13's "end to end through nginx": report, no goal).
REFERENCE = {"nginx": "php-fpm"}
# Issue 10: fpmd's worker CPU per request divided by the peer's (below: better).
CPU_GOALS = {"php-fpm": 0.5, "uwsgi": 0.65}

SCENARIO_TEXT = {
    "php": "php/hello.php through php-cgi8.2: fpmd exec pool (managed relay), fpmd exec.mode = direct, "
           "spawn-fcgi + php-cgi, php-fpm8.2; report",
    "ping": "ping.path answered by the manager (libfcgi, prefork: a hello app), new connection per request",
    "ping-ka": "the same with FCGI_KEEP_CONN, connections reused",
    "cgi-sh": "/bin/sh CGI script (one printf) through the gateway",
    "cgi-c": "compiled C CGI program through the gateway",
    "php-hello": "php/hello.php in a PHP pool (fpmd app.type = php, php-fpm8.2, uWSGI php plugin), same php.ini, opcache on",
    "php-table": "php/table.php (a 200-row HTML table from an array), the same servers",
    "hello": "examples/modules/hello.c in a module pool against the prefork minimal responder, "
             "spawn-fcgi + libfcgi hello and php-fpm8.2 + php/hello.php (opcache on); new connection per request",
    "hello-ka": "the same with FCGI_KEEP_CONN (one kept connection per worker is served, the others wait)",
    "nginx": "nginx-light (1 worker) + wrk -t1 over HTTP in front of fpmd's module hello, fpmd's php pool "
             "(fpmd-php) and php-fpm8.2 with php/hello.php; ratio: server ÷ php-fpm, reported",
}


def mem(pgids):
    """RSS and PSS (kB) summed over the live processes of these process groups."""
    want = {int(g) for g in pgids}
    rss = pss = procs = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] == "Z" or int(fields[2]) not in want:
                continue
            with open(f"/proc/{d}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            try:
                with open(f"/proc/{d}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            pss += int(line.split()[1])
            except OSError:
                pass
            procs += 1
        except (OSError, IndexError, ValueError):
            continue
    return {"rss_kb": rss, "pss_kb": pss, "procs": procs}


def record(raw, scenario, workers, server, rnd, load, pgids):
    m = {"scenario": scenario, "workers": int(workers), "server": server, "round": int(rnd),
         "mem": mem(pgids), "load": json.loads(load)}
    with open(raw, "a") as f:
        f.write(json.dumps(m) + "\n")
    line(m)


def line(m):
    ld = m["load"]
    lat = ld["latency_us"]
    err = ld["error_total"]
    extra = f"  first error: {ld['first_error']}" if err else ""
    print(f"  {m['scenario']:8} w={m['workers']} c={ld.get('conns', '?')} round {m['round']}  {m['server']:9}"
          f" {ld['rps']:9.1f} req/s  p50 {lat['p50'] / 1000:7.3f} ms  p99 {lat['p99'] / 1000:7.3f} ms"
          f"  errors {err}  RSS {m['mem']['rss_kb'] / 1024:6.1f} MiB ({m['mem']['procs']} procs){extra}",
          flush=True)


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    cpu = ln.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    # HEAD of the tree the bench ran from, "+dirty" with uncommitted changes
    # (fpmd was built from that tree by make bench, or by whoever passed BUILD).
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        if commit and dirty:
            commit += "+dirty"
    except OSError:
        commit = ""
    return {"cpus": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": commit}


def wrk(path, conns):
    """`wrk --latency` output -> fcgi-load's JSON (req/s, latency in µs, errors)."""
    with open(path) as f:
        text = f.read()
    unit = {"us": 1, "ms": 1000, "s": 1000000, "m": 60000000}

    def us(v):
        m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
        return float(m.group(1)) * unit[m.group(2)] if m else 0.0

    lat = {f"p{p}": us(v) for p, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)", text, re.M)}
    m = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", text, re.M)
    lat["max"] = us(m.group(1)) if m else 0.0
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    done = re.search(r"^\s+(\d+) requests in", text, re.M)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = {}
    if sock:
        errors = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), sock.groups()) if int(v)}
    if non2xx:
        errors["status"] = int(non2xx.group(1))
    if not rps:
        errors["wrk"] = 1
    first = ", ".join(f"{k} {v}" for k, v in errors.items())
    return {"rps": float(rps.group(1)) if rps else 0.0, "ok": int(done.group(1)) if done else 0,
            "conns": int(conns), "keepalive": True, "latency_us": lat,
            "error_total": sum(errors.values()), "errors": errors,
            "first_error": first, "tool": "wrk"}


def summarize(rows):
    """Groups the runs by (scenario, workers, conns, server), in the order they ran."""
    groups = {}
    for r in rows:
        groups.setdefault((r["scenario"], r["workers"], r["load"].get("conns"), r["server"]), []).append(r)
    out = []
    for (scen, w, c, srv), runs in groups.items():
        rps = [x["load"]["rps"] for x in runs]
        out.append({
            "scenario": scen, "workers": w, "conns": c, "server": srv, "runs": len(runs),
            "rps": {"median": statistics.median(rps), "min": min(rps), "max": max(rps), "all": rps},
            "latency_us": {
                "p50": statistics.median(x["load"]["latency_us"]["p50"] for x in runs),
                "p90": statistics.median(x["load"]["latency_us"]["p90"] for x in runs),
                "p99": statistics.median(x["load"]["latency_us"]["p99"] for x in runs),
                "max": max(x["load"]["latency_us"]["max"] for x in runs),
            },
            "errors": sum(x["load"]["error_total"] for x in runs),
            "first_error": next((x["load"]["first_error"] for x in runs if x["load"]["first_error"]), ""),
            "rss_kb": statistics.median(x["mem"]["rss_kb"] for x in runs),
            "pss_kb": statistics.median(x["mem"]["pss_kb"] for x in runs),
            "procs": max(x["mem"]["procs"] for x in runs),
        })
    by_key = {(s["scenario"], s["workers"], s["conns"], s["server"]): s for s in out}
    for s in out:
        ref = REFERENCE.get(s["scenario"])
        if ref:
            # this server ÷ the reference peer, on the other rows
            p = by_key.get((s["scenario"], s["workers"], s["conns"], ref))
            s["ref_ratio"] = (s["rps"]["median"] / p["rps"]["median"]
                              if p and s["server"] != ref and p["rps"]["median"] else None)
            s["ref"] = ref
            s["fpmd_ratio"] = None
        else:
            f = by_key.get((s["scenario"], s["workers"], s["conns"], "fpmd"))
            s["fpmd_ratio"] = (f["rps"]["median"] / s["rps"]["median"]
                               if f and s["server"] != "fpmd" and s["rps"]["median"] else None)
        s["goal"] = GOALS.get((s["scenario"], s["server"]))
    return out


def table(raw, out_path, settings):
    with open(raw) as f:
        rows = [json.loads(ln) for ln in f if ln.strip()]
    summary = summarize(rows)
    cfg = dict(kv.split("=", 1) for kv in settings)
    info = machine()
    print()
    print(f"fpmd bench: {info['cpus']} CPUs ({info['cpu']}), kernel {info['kernel']}, tree "
          f"{info['commit'] or '?'}, {cfg.get('secs')} s per run, {cfg.get('rounds')} rounds "
          f"(medians; min–max over rounds), connections {cfg.get('conns')}, unix sockets, "
          f"{cfg.get('wall_s')} s in all; "
          f"load average {cfg.get('loadavg_start')} before, {cfg.get('loadavg_end')} after")
    print()
    print("| scenario | workers | c | server | req/s (median) | min–max | p50 ms | p99 ms | errors "
          "| RSS MiB | PSS MiB | procs | fpmd ÷ server |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in summary:
        ratio = ""
        if s["fpmd_ratio"] is not None:
            x = s["fpmd_ratio"]
            # 1.197 against a goal of 1.2 is a miss: never print it as "1.20"
            ratio = f"{x:.3f}×" if s["goal"] and x < s["goal"] <= round(x, 2) else f"{x:.2f}×"
            if s["goal"]:
                ratio += f" (goal ≥ {s['goal']}×{'' if s['fpmd_ratio'] >= s['goal'] else ', MISSED'})"
        elif s.get("ref_ratio") is not None:
            ratio = f"this ÷ {s['ref']}: {s['ref_ratio']:.2f}× (report)"
        print(f"| {s['scenario']} | {s['workers']} | {s['conns'] or ''} | {s['server']} | {s['rps']['median']:.0f} "
              f"| {s['rps']['min']:.0f}–{s['rps']['max']:.0f} | {s['latency_us']['p50'] / 1000:.2f} "
              f"| {s['latency_us']['p99'] / 1000:.2f} | {s['errors']} | {s['rss_kb'] / 1024:.1f} "
              f"| {s['pss_kb'] / 1024:.1f} | {s['procs']} | {ratio} |")
    print()
    for scen in dict.fromkeys(s["scenario"] for s in summary):
        print(f"  {scen}: {SCENARIO_TEXT.get(scen, '')}")
    bad = [s for s in summary if s["errors"]]
    for s in bad:
        print(f"  ! {s['scenario']} w={s['workers']} {s['server']}: {s['errors']} errors, "
              f"first: {s['first_error']}")
    php = php_table(cfg.get("php"))
    with open(out_path, "w") as f:
        json.dump({"machine": info, "settings": cfg, "results": summary, "runs": rows, "php": php},
                  f, indent=1)
        f.write("\n")
    print(f"\nwritten: {out_path}")


def php_table(path):
    """bench/php.py's lines: worker CPU per request, PSS by process, opcache."""
    try:
        with open(path) as f:
            rows = [json.loads(ln) for ln in f if ln.strip()]
    except (OSError, TypeError):
        return []
    if not rows:
        return rows
    print()
    print(f"PHP pools: CPU over {rows[0]['requests']} requests at c=8 (utime+stime of the "
          "workers, µs per request; sched: /proc/PID/schedstat), PSS after them, and what a "
          "fresh worker's first request sees of opcache (every worker SIGKILLed after the "
          "scenario's script was served; 'shared': that script is in the new worker's cache; the "
          "hit rate is opcache's own, counted in its shared memory since the server started)")
    print()
    print("| scenario | workers | server | worker CPU µs/req | sched µs/req | master+zygote CPU µs/req "
          "| PSS master MiB | PSS zygote MiB | PSS per worker MiB | fresh worker: scripts cached "
          "| hit rate | fpmd ÷ server, worker CPU |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    fpmd = {(r["scenario"], r["workers"]): r for r in rows if r["server"] == "fpmd"}
    for r in rows:
        c = r["cpu_us_per_req"]
        w = c.get("worker", {})
        other = sum(c.get(k, {}).get("utime_stime", 0) for k in ("master", "zygote"))
        pw = r["pss_kb"].get("worker", [0])
        zy = r["pss_kb"].get("zygote")
        oc = r["opcache_fresh"]
        f = fpmd.get((r["scenario"], r["workers"]))
        ratio = ""
        if f and r["server"] != "fpmd" and w.get("utime_stime"):
            x = f["cpu_us_per_req"]["worker"]["utime_stime"] / w["utime_stime"]
            r["fpmd_cpu_ratio"] = x
            ratio = f"{x:.2f}×"
            goal = CPU_GOALS.get(r["server"])
            if goal:
                ratio += f" (goal ≤ {goal}×{'' if x <= goal else ', MISSED'})"
        shared = oc.get("shared")
        seen = ("? (" + oc["error"][:40] + ")" if "error" in oc else
                f"{oc.get('cached_scripts', '?')} ({'shared' if shared else 'NOT shared'})")
        print(f"| {r['scenario']} | {r['workers']} | {r['server']} | {w.get('utime_stime', 0):.1f} "
              f"| {w.get('sched', 0):.1f} | {other:.1f} "
              f"| {sum(r['pss_kb'].get('master', [0])) / 1024:.1f} "
              f"| {'' if zy is None else f'{sum(zy) / 1024:.1f}'} | {sum(pw) / len(pw) / 1024:.1f} "
              f"| {seen} "
              f"| {oc.get('hit_rate', 0):.1f} % | {ratio} |")
    return rows


def main(argv):
    if len(argv) >= 2 and argv[1] == "mem":
        print(json.dumps(mem(argv[2:])))
    elif len(argv) >= 8 and argv[1] == "record":
        record(*argv[2:8], argv[8:])
    elif len(argv) == 4 and argv[1] == "wrk":
        print(json.dumps(wrk(argv[2], argv[3])))
    elif len(argv) >= 4 and argv[1] == "table":
        table(argv[2], argv[3], argv[4:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
