"""Whether this machine lets a test run in private mount (and network, pid) namespaces
with overlays: root with CAP_SYS_ADMIN and overlayfs.  Tests that change /etc, /usr, /var
or /run do it there only, and are skipped with the reason elsewhere."""
import functools
import os
import shutil
import subprocess
import tempfile

PROBE = r"""
set -e
d=$1
mount -t tmpfs probe "$d"
mkdir "$d/lower" "$d/upper" "$d/work" "$d/merged"
mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/merged"
touch "$d/merged/x"
"""


@functools.lru_cache(maxsize=None)
def unavailable(net_pid=False):
    """None when private namespaces with overlays work here, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    if not shutil.which("unshare"):
        return "unshare (util-linux) is not installed"
    top = tempfile.mkdtemp(prefix="fpmd-ns-probe-", dir="/tmp")
    try:
        cmd = ["unshare", "--mount", "--propagation", "private"]
        if net_pid:
            cmd += ["--net", "--pid", "--fork", "--mount-proc"]
        r = subprocess.run(cmd + ["sh", "-c", PROBE, "probe", top], capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            return f"private namespaces with overlayfs are not available here: {r.stderr.strip()}"
        return None
    finally:
        shutil.rmtree(top, ignore_errors=True)
