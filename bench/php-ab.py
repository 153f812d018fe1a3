#!/usr/bin/python3
"""Worker CPU per request of two fpmd builds, php-fpm8.2 and uWSGI's php plugin, interleaved.

    bench/php-ab.py BEFORE_BUILD AFTER_BUILD [ROUNDS [REQUESTS [SCRIPT]]]
    bench/php-ab.py /tmp/old build 6 10000 /hello.php

All four servers run at once (2 workers each, Debian's fpm php.ini, as bench/run.sh starts
them, as root with -R), and are measured in turns, the order reversed every round, so the
load of this shared machine drifts over all four alike: the workers' on-CPU time
(/proc/PID/schedstat) over REQUESTS requests at c=8, per round; the medians and ratios at the
end.  bench/run.sh measures each server's CPU once, one after the other, which a busy
machine distorts more.  Needs AFTER_BUILD/bench/fcgi-load (bench/run.sh builds it).
"""
import glob, os, signal, statistics, subprocess, sys, tempfile, time
if len(sys.argv) < 3:
    sys.exit(__doc__)
BUILDS = {"before": os.path.abspath(sys.argv[1]), "after": os.path.abspath(sys.argv[2])}
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 6
N = int(sys.argv[4]) if len(sys.argv) > 4 else 10000
SCRIPT = sys.argv[5] if len(sys.argv) > 5 else "/hello.php"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
D = tempfile.mkdtemp(prefix="fpmd-php-ab.")
os.chmod(D, 0o755)
os.makedirs(D + "/www")
for f in ("hello.php", "table.php"):
    subprocess.run(["cp", f"{ROOT}/bench/php/{f}", D + "/www/"], check=True)
# opcache does not cache a file modified in the last 2 s (opcache.file_update_protection)
subprocess.run("touch -d '1 minute ago' " + D + "/www/*", shell=True, check=True)
LOAD = BUILDS["after"] + "/bench/fcgi-load"
procs = {}
def spawn(name, argv):
    os.makedirs(f"{D}/{name}", exist_ok=True)
    procs[name] = subprocess.Popen(argv, stdout=open(f"{D}/{name}/out.log", "w"), stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
for name, build in BUILDS.items():
    os.makedirs(f"{D}/{name}", exist_ok=True)
    open(f"{D}/{name}/fpmd.conf", "w").write(f"[global]\npid = {D}/{name}/fpmd.pid\nerror_log = {D}/{name}/error.log\n\n"
        f"[bench]\nlisten = {D}/{name}/sock\npm = static\npm.max_children = 2\napp.type = php\n")
    spawn(name, [f"{build}/fpmd", "-F", "-R", "-y", f"{D}/{name}/fpmd.conf"])
os.makedirs(f"{D}/php-fpm", exist_ok=True)
open(f"{D}/php-fpm/php-fpm.conf", "w").write(f"[global]\npid = {D}/php-fpm/pid\nerror_log = {D}/php-fpm/error.log\ndaemonize = no\n\n"
    f"[bench]\nlisten = {D}/php-fpm/sock\npm = static\npm.max_children = 2\n")
spawn("php-fpm", ["php-fpm8.2", "-F", "-R", "-y", f"{D}/php-fpm/php-fpm.conf", "-p", f"{D}/php-fpm"])
ini = []
for f in sorted(glob.glob("/etc/php/8.2/fpm/conf.d/*.ini")):
    ini += ["--php-ini-append", f]
spawn("uwsgi", ["uwsgi", "--plugin", "0:php", "--fastcgi-socket", f"{D}/uwsgi/sock", "--processes", "2", "--master",
                "--die-on-term", "--disable-logging", "--php-docroot", D + "/www", "--php-ini", "/etc/php/8.2/fpm/php.ini"] + ini)
time.sleep(3)
def workers(name):
    top = procs[name].pid
    kids = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(top)], capture_output=True, text=True).stdout.split("\n")
    return [int(l.split()[0]) for l in kids if l.strip() and "zygote" not in l]
def cpu(pids):
    ns = ticks = 0
    for p in pids:
        ns += int(open(f"/proc/{p}/schedstat").read().split()[0])
        st = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        ticks += int(st[11]) + int(st[12])
    return ns, ticks
def load(name, n):
    extra = ["-p", f"PATH_INFO={SCRIPT}"] if name == "uwsgi" else []
    r = subprocess.run([LOAD, "-c", "8", "-n", str(n), "-r", D + "/www"] + extra + [f"unix:{D}/{name}/sock", SCRIPT],
                       capture_output=True, text=True)
    if " ok of " not in r.stdout:
        print(name, r.stdout, r.stderr)
names = ["before", "after", "php-fpm", "uwsgi"]
for nm in names:
    load(nm, 500)
W = {nm: workers(nm) for nm in names}
print("workers", W, flush=True)
res = {nm: [] for nm in names}
HZ = os.sysconf("SC_CLK_TCK")
for r in range(ROUNDS):
    order = names if r % 2 == 0 else names[::-1]
    for nm in order:
        a = cpu(W[nm])
        load(nm, N)
        b = cpu(W[nm])
        res[nm].append(((b[0] - a[0]) / 1000 / N, (b[1] - a[1]) * 1e6 / HZ / N))
    print("round", r, {nm: round(res[nm][-1][0], 1) for nm in names}, open("/proc/loadavg").read().split()[0], flush=True)
med = {nm: statistics.median(x[0] for x in res[nm]) for nm in names}
print("median on-CPU µs/req:", {nm: round(v, 1) for nm, v in med.items()})
for nm in ("before", "after"):
    print(f"fpmd-{nm}: ÷php-fpm {med[nm]/med['php-fpm']:.2f}×  ÷uwsgi {med[nm]/med['uwsgi']:.2f}×")
print("after ÷ before:", round(med["after"] / med["before"], 3))
per_round = [(res['after'][i][0]/res['php-fpm'][i][0], res['after'][i][0]/res['uwsgi'][i][0], res['before'][i][0]/res['php-fpm'][i][0], res['before'][i][0]/res['uwsgi'][i][0]) for i in range(ROUNDS)]
print("per round after/fpm, after/uwsgi, before/fpm, before/uwsgi:", [tuple(round(x, 2) for x in t) for t in per_round])
for p in procs.values():
    os.killpg(p.pid, signal.SIGTERM)
time.sleep(1)
for p in procs.values():
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
subprocess.run(["rm", "-rf", D])
