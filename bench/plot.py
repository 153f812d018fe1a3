#!/usr/bin/python3
"""bench/plot.py RESULTS.json OUT.svg: requests/s per scenario and server (median, min-max bars).

gnuplot (Debian gnuplot-nox) draws it; run.sh calls this after each run when gnuplot is there.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile


def main(src, out):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("bench/plot.py: gnuplot is not installed (scripts/deps.sh bench): no plot", file=sys.stderr)
        return 0
    res = json.load(open(src))["results"]
    groups = []                       # (scenario, workers) in order
    servers = []
    for r in res:
        g = (r["scenario"], r["workers"])
        if g not in groups:
            groups.append(g)
        if r["server"] not in servers:
            servers.append(r["server"])
    table = {(r["scenario"], r["workers"], r["server"]): r["rps"] for r in res}
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        with open(data, "w") as f:
            for sc, w in groups:
                cells = []
                for s in servers:
                    rps = table.get((sc, w, s))
                    cells += ([str(rps["median"]), str(rps["min"]), str(rps["max"])] if rps
                              else ["NaN", "NaN", "NaN"])
                f.write(f'"{sc} ({w})" ' + " ".join(cells) + "\n")
        plots = ", ".join(
            f"'{data}' using {2 + 3 * i}:{3 + 3 * i}:{4 + 3 * i}:xtic(1) title '{s}'"
            for i, s in enumerate(servers))
        script = (f"set terminal svg size 960,480 dynamic font 'sans,11'\nset output '{out}'\n"
                  "set style data histograms\nset style histogram errorbars gap 1 lw 1\n"
                  "set style fill solid 0.6 border -1\nset key outside right top\n"
                  "set ylabel 'requests/s (median, min-max)'\nset yrange [0:*]\n"
                  "set xtics rotate by -20\nset grid ytics\n"
                  f"set title 'fpmd and its peers ({os.path.basename(src)})'\n"
                  f"plot {plots}\n")
        subprocess.run([gnuplot], input=script, text=True, check=True)
    print(f"bench/plot.py: {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
