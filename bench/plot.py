#!/usr/bin/python3
"""bench/plot.py RESULTS.json OUT.svg [rps] [only=SCENARIO,...]: requests/s and p99 latency
per scenario, worker count, concurrency and server.

Two panels in one SVG: requests/s (median of the rounds, min-max bars) above, p99
latency (median of the rounds) below, both on a log scale since a CGI fork and a
keep-alive hello are two orders of magnitude apart.  With "rps" only the first
panel is drawn, as for docs/bench-php.svg; only= keeps those scenarios (docs/bench-module.svg:
only=hello,hello-ka,nginx).  Results written before the
concurrency was recorded per row (no "conns") are labelled by worker count only.

gnuplot (Debian gnuplot-nox) draws it; run.sh calls this after each run when gnuplot is there.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile


def label(sc, w, c):
    return f"{sc} w{w}" + (f" c{c}" if c else "")


def main(src, out, only_rps=False, only=None):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("bench/plot.py: gnuplot is not installed (scripts/deps.sh bench): no plot", file=sys.stderr)
        return 0
    res = [r for r in json.load(open(src))["results"] if not only or r["scenario"] in only]
    groups = []                       # (scenario, workers, conns) in order
    servers = []
    for r in res:
        g = (r["scenario"], r["workers"], r.get("conns"))
        if g not in groups:
            groups.append(g)
        if r["server"] not in servers:
            servers.append(r["server"])
    table = {(r["scenario"], r["workers"], r.get("conns"), r["server"]): r for r in res}
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        with open(data, "w") as f:
            for g in groups:
                cells = []
                for s in servers:
                    r = table.get(g + (s,))
                    cells += ([str(r["rps"]["median"]), str(r["rps"]["min"]), str(r["rps"]["max"]),
                               str(r["latency_us"]["p99"] / 1000)] if r
                              else ["NaN", "NaN", "NaN", "NaN"])
                f.write(f'"{label(*g)}" ' + " ".join(cells) + "\n")
        rps = ", ".join(
            f"'{data}' using {2 + 4 * i}:{3 + 4 * i}:{4 + 4 * i}:xtic(1) title '{s}'"
            for i, s in enumerate(servers))
        p99 = ", ".join(
            f"'{data}' using {5 + 4 * i}:xtic(1) title '{s}'" for i, s in enumerate(servers))
        width = max(960, 70 * len(groups) + 200)
        common = ("set style fill solid 0.6 border -1\nset key outside right top\n"
                  "set xtics rotate by -30\nset grid ytics\n")
        title = f"fpmd and its peers ({os.path.basename(src)})"
        if only_rps:
            script = (f"set terminal svg size {width},480 dynamic font 'sans,11'\nset output '{out}'\n"
                      "set style data histograms\nset style histogram errorbars gap 1 lw 1\n" + common +
                      "set ylabel 'requests/s (median, min-max)'\nset yrange [0:*]\n"
                      f"set title '{title}'\nplot {rps}\n")
        else:
            script = (f"set terminal svg size {width},900 dynamic font 'sans,11'\nset output '{out}'\n"
                      + common + "set multiplot layout 2,1\n"
                      "set style data histograms\nset style histogram errorbars gap 1 lw 1\n"
                      "set logscale y\nset ylabel 'requests/s (median, min-max; log)'\n"
                      f"set title '{title}: throughput'\nplot {rps}\n"
                      "set style histogram clustered gap 1\n"
                      "set ylabel 'p99 latency, ms (median of the rounds; log)'\n"
                      f"set title '{title}: p99 latency'\nplot {p99}\n"
                      "unset multiplot\n")
        subprocess.run([gnuplot], input=script, text=True, check=True)
    print(f"bench/plot.py: {out}")
    return 0


if __name__ == "__main__":
    opts = sys.argv[3:]
    keep = [o[5:].split(",") for o in opts if o.startswith("only=")]
    if len(sys.argv) < 3 or any(o != "rps" and not o.startswith("only=") for o in opts):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2], "rps" in opts, keep[0] if keep else None))
