#!/usr/bin/python3
"""Compares a run-suite.sh log of fpmd with php-fpm8.2's own results (php-fpm8.2-results.txt).

usage: compare.py LOG [root|nobody]
Prints per test: fpmd's result, php-fpm8.2's, and the category; then the totals, and exits 1
when a test php-fpm8.2 passes does not pass for fpmd.
"""
import os
import re
import sys

here = os.path.dirname(os.path.abspath(__file__))
log, who = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else ("root" if os.geteuid() == 0 else "nobody"))
ref = {}
for line in open(os.path.join(here, "php-fpm8.2-results.txt")):
    if line.startswith("#") or not line.strip():
        continue
    name, root, nobody, cat = line.split()[:4]
    ref[name] = (root if who == "root" else nobody, cat)
ours = {}
for m in re.finditer(r"(PASS|FAIL|SKIP|BORK|XFAIL|WARN)\s.*?\[sapi/fpm/tests/([\w.-]+)\.phpt\]", open(log, errors="replace").read()):
    ours.setdefault(m.group(2), m.group(1))
worse = []
for name in sorted(ref):
    theirs, cat = ref[name]
    mine = ours.get(name, "NOT-RUN")
    flag = ""
    if theirs == "PASS" and mine != "PASS":
        flag = "  <-- php-fpm8.2 passes"
        worse.append(name)
    elif mine == "PASS" and theirs != "PASS":
        flag = "  (fpmd passes, php-fpm8.2 does not)"
    print(f"{name:55} fpmd={mine:8} php-fpm8.2={theirs:5} {cat}{flag}")
count = lambda d, r: sum(1 for v in d.values() if v == r)
print(f"\nas {who}: fpmd {count(ours, 'PASS')} pass / {count(ours, 'SKIP')} skip / "
      f"{count(ours, 'FAIL') + count(ours, 'BORK')} fail; php-fpm8.2 "
      f"{sum(1 for v, _ in ref.values() if v == 'PASS')} pass / "
      f"{sum(1 for v, _ in ref.values() if v == 'SKIP')} skip / "
      f"{sum(1 for v, _ in ref.values() if v == 'FAIL')} fail")
print(f"tests php-fpm8.2 passes and fpmd does not: {len(worse)}")
sys.exit(1 if worse else 0)
