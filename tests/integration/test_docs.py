"""The shell snippets of README.md and docs/quickstart.md, run verbatim (issue 21, item 2).

A newcomer on a fresh Debian 12 machine, as root: a fresh clone, `make run`, then the
quick start (build, `make install PREFIX=/usr`, a CGI pool next to the PHP pool, fpmd
started, nginx in front, curl), then README's "A first pool".  Each ```sh block runs as
written, in the doc's order, in one shell.

Isolation: everything runs in new mount, network and pid namespaces.  /etc, /usr and
/var are overlays whose writes land in a tmpfs, /run and /tmp are fresh tmpfs, the
network is a private loopback (nginx takes port 80 there), and every process dies with
the namespace: the host's files, ports and processes are never touched.

What a test cannot do verbatim, it says: `git clone <fpmd's repository>` clones a
snapshot of this working tree; `make test` (README) is the suite this test is part of;
the "With systemd" block needs systemd as PID 1 and is skipped (fpmd.service is checked
by test_packaging.py and test_systemd.py).
"""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from namespaces import unavailable

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def sh_blocks(path):
    """The ```sh fenced blocks of a markdown file, in order."""
    text = open(os.path.join(ROOT, path)).read()
    return re.findall(r"^```sh\n(.*?)^```$", text, re.S | re.M)


def readme_blocks():
    blocks = sh_blocks("README.md")
    assert len(blocks) == 2, blocks
    make_block, first_pool = blocks
    lines = [line.split("#")[0].strip() for line in make_block.splitlines()]
    assert lines == ["make run", "make test"], lines
    return first_pool


def quickstart_blocks():
    out = []
    for block in sh_blocks("docs/quickstart.md"):
        if "systemctl enable" in block:
            continue            # systemd as PID 1: not in a test's namespace
        out.append(block.replace("git clone <fpmd's repository> fpmd",
                                 "git clone -q file:///var/tmp/fpmd-docs-src fpmd"))
    assert out and "git clone -q file://" in out[0], out
    return out


# Runs as PID 1 of the new namespaces.  $1: the scratch directory (host /tmp/...).
DRIVER = r'''
set -eu
scratch=$1
mount -t tmpfs -o mode=0700 fpmd-docs "$scratch"
for d in etc usr var; do
    mkdir -p "$scratch/$d.up" "$scratch/$d.work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$scratch/$d.up,workdir=$scratch/$d.work" "/$d"
done
cp -a "$scratch/../src" /var/tmp/fpmd-docs-src
mkdir /var/tmp/fpmd-docs-steps
cp "$scratch"/../*.sh /var/tmp/fpmd-docs-steps/
steps=/var/tmp/fpmd-docs-steps
mount -t tmpfs -o mode=1777 tmp /tmp
mount -t tmpfs -o mode=0755 run /run
ip link set lo up
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES SAN BUILD CFLAGS LDFLAGS FPMD_BUILD
# What apt-get leaves on a fresh machine: nginx-light's service running.
nginx
cd /tmp

echo "=== README: make run (fresh clone)"
git clone -q file:///var/tmp/fpmd-docs-src demo-clone
( cd demo-clone && exec make run ) > /tmp/make-run.log 2>&1 &
make_run=$!
for i in $(seq 600); do
    grep -q "ready to handle connections" /tmp/make-run.log && break
    kill -0 $make_run 2>/dev/null || { cat /tmp/make-run.log; echo "make run exited"; exit 1; }
    sleep 0.5
done
grep -q "ready to handle connections" /tmp/make-run.log || { cat /tmp/make-run.log; exit 1; }
demo-clone/build/fpmctl ping -s unix:/tmp/fpmd-demo-cgi.sock
demo-clone/build/fpmctl request -s unix:/tmp/fpmd-demo-php.sock --root /tmp/fpmd-demo/www /php/index.php > /dev/null
kill -INT $(cat /tmp/fpmd-demo.pid)
wait $make_run || true
echo "=== make run: stopped"

n=0
for block in $steps/quickstart.*.sh; do
    n=$((n + 1))
    echo "=== quickstart block $n"
    . "$block"
done
echo "=== quickstart: done"
# The quick start leaves fpmd running; README's first pool starts from a stopped one.
pid=$(cat /run/fpmd.pid)
kill -QUIT $pid
for i in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
cd /tmp
echo "=== README: a first pool"
. $steps/readme.sh
for i in $(seq 100); do [ -e /run/fpmd.pid ] || break; sleep 0.1; done
[ ! -e /run/fpmd.pid ] && echo "=== README: stopped"
'''


def test_readme_and_quickstart_verbatim():
    if os.geteuid() != 0:
        pytest.skip("the docs are followed as root")
    why = unavailable(net_pid=True)
    if why:
        pytest.skip(why)
    for tool in ("unshare", "git", "nginx", "curl", "ip", "make"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            pytest.skip(f"{tool} is not installed (scripts/deps.sh test)")
    if not os.path.exists("/etc/nginx/snippets/fastcgi-php.conf"):
        pytest.skip("Debian's nginx is not installed (nginx-light; scripts/deps.sh test)")
    top = tempfile.mkdtemp(prefix="fpmd-docs-", dir="/tmp")
    try:
        # The working tree as it is (tracked and new files), committed into a repository to clone.
        src = os.path.join(top, "src")
        os.mkdir(src)
        files = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "-co", "--exclude-standard"],
                               capture_output=True, check=True).stdout
        subprocess.run(f"tar -C {ROOT} --null -T - -cf - | tar -C {src} -xf -", shell=True,
                       input=files, check=True)
        git = ["git", "-C", src, "-c", "user.name=doc test", "-c", "user.email=doc@test"]
        subprocess.run(git + ["init", "-q"], check=True)
        subprocess.run(git + ["add", "-A"], check=True)
        subprocess.run(git + ["commit", "-q", "-m", "snapshot"], check=True)
        for i, block in enumerate(quickstart_blocks()):
            with open(os.path.join(top, f"quickstart.{i}.sh"), "w") as f:
                f.write(block)
        with open(os.path.join(top, "readme.sh"), "w") as f:
            f.write(readme_blocks())
        scratch = os.path.join(top, "scratch")
        os.mkdir(scratch)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        r = subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc",
                            "--propagation", "private", "bash", "-c", DRIVER, "driver", scratch],
                           capture_output=True, text=True, timeout=900, env=env)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-6000:]
        # make run's demo answered; the quick start's curl lines printed what their comments say.
        assert "=== make run: stopped" in out, out[-6000:]
        # fpmctl ping after make run, fpmctl ping and curl /ping (quick start), fpmctl request /ping (README)
        assert out.count("pong") >= 4, out[-6000:]
        assert "hello from /hello.sh" in out, out[-6000:]
        assert re.search(r"PHP 8\.2\.\d+ via fpm-fcgi", out), out[-6000:]
        assert "hello from /cgi-bin/hello.sh" in out, out[-6000:]
        assert '"pool":"www"' in out.replace(" ", ""), out[-6000:]
        assert "configuration file /etc/fpmd/fpmd.conf test is successful" in out, out[-6000:]
        assert "=== README: stopped" in out, out[-6000:]
    finally:
        shutil.rmtree(top, ignore_errors=True)
