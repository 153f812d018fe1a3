"""Helpers of the fault-injection suite (tests/chaos).

The daemon fixtures and the FastCGI client are tests/integration/conftest.py's,
loaded here under another module name (both directories have a conftest.py).

Durations: CHAOS_SCALE=0 (the default, `make test`) runs each fault briefly;
CHAOS_SCALE=1 (`make chaos`) runs the durations of issue #12 (a 20 s kill loop,
a 5 min soak).  Every test prints one `CHAOS <item>: ...` line with what it
measured and appends it to $FPMD_BUILD/chaos-results.txt.
"""
import importlib.util
import os
import random
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))


def _load_base():
    name = "fpmd_integration_conftest"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, os.path.join(TOP, "tests", "integration", "conftest.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


base = _load_base()
BUILD = base.BUILD
SCALE = min(1.0, max(0.0, float(os.environ.get("CHAOS_SCALE", "0"))))
TICK = os.sysconf("SC_CLK_TCK")


def scaled(short, full):
    """A duration or count: `short` at CHAOS_SCALE=0, the issue's `full` at 1."""
    v = short + (full - short) * SCALE
    return type(full)(v) if isinstance(full, int) else v


def report(item, text):
    line = f"CHAOS {item}: {text}"
    print("\n" + line)
    try:
        with open(os.path.join(BUILD, "chaos-results.txt"), "a") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} scale={SCALE:g} {line}\n")
    except OSError:
        pass


_module_lock = threading.Lock()


def chaos_module():
    """Builds tests/chaos/chaos_mod.c into the build directory (once, or when it changed)."""
    src = os.path.join(HERE, "chaos_mod.c")
    out_dir = os.path.join(BUILD, "chaos")
    so = os.path.join(out_dir, "chaos_mod.so")
    with _module_lock:
        if not os.path.exists(so) or os.path.getmtime(so) < os.path.getmtime(src):
            os.makedirs(out_dir, exist_ok=True)
            subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-pthread",
                            f"-I{TOP}/include", "-o", so + ".tmp", src], check=True)
            os.rename(so + ".tmp", so)
            os.chmod(out_dir, 0o755)
    return so


def module_pool(workdir, mode="serve", name="app", pm="static", children=2, extra="", listen=None):
    listen = listen or f"{workdir}/{name}.sock"
    return (f"[{name}]\nuser = nobody\nlisten = {listen}\npm = {pm}\npm.max_children = {children}\n"
            f"app.type = module\nmodule.path = {chaos_module()}\nmodule.param[mode] = {mode}\n"
            f"ping.path = /ping\npm.status_path = /status\n{extra}")


# --- /proc readings ---

def cpu_seconds(pid, thread=None):
    """CPU time of a process, or of one of its threads (thread=pid: the main thread)."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def status_field(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
    return None


def rss_kib(pid):
    v = status_field(pid, "VmRSS")
    return int(v.split()[0]) if v else 0


def fd_targets(pid):
    out = {}
    d = f"/proc/{pid}/fd"
    for fd in os.listdir(d):
        try:
            out[int(fd)] = os.readlink(f"{d}/{fd}")
        except OSError:
            pass
    return out


def zombies_of(pid):
    out = []
    for c in base.children_of(pid):
        try:
            with open(f"/proc/{c}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    out.append(c)
        except OSError:
            pass
    return out


# --- load ---

class Load:
    """`clients` threads sending requests until stopped (or `seconds` passed); every result counted."""

    def __init__(self, address, uri="/x", clients=32, timeout=10, check=None, seconds=None, uris=None):
        self.address, self.uri, self.timeout = address, uri, timeout
        self.uris = uris
        self.check = check or (lambda r: r.status == 200 and r.body == b"ok")
        self.ok = 0
        self.failed = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.deadline = time.monotonic() + seconds if seconds else None
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(clients)]

    def run(self, i):
        rng = random.Random(i)
        while not self.stop.is_set() and (self.deadline is None or time.monotonic() < self.deadline):
            uri = rng.choice(self.uris) if self.uris else self.uri
            try:
                r = base.fcgi_request(self.address, uri, timeout=self.timeout)
                good = self.check(r)
                why = None if good else f"status {r.status}: {r.stdout[:120]!r}"
            except Exception as e:  # noqa: BLE001 - every failure is counted
                good, why = False, repr(e)
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failed.append((time.monotonic(), why))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(self.timeout + 5)

    def wait(self):
        for t in self.threads:
            t.join()
