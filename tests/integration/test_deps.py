"""scripts/deps.sh: `make run` asks only for what running needs, and installing the test
world leaves the host's services and default browser as they were (issue 21, item 4).

apt-get and dpkg-query are replaced by stand-ins (no network, no package database
change); the rest is real: policy-rc.d, deb-systemd-helper, update-rc.d,
update-alternatives.  Everything runs in a mount namespace where /etc, /usr and /var
are overlays on a tmpfs: the host is never changed.
"""
import os
import shutil
import subprocess
import tempfile

import pytest

from namespaces import unavailable

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

FAKE_DPKG_QUERY = """#!/bin/sh
# Every package is missing.
exit 1
"""

# A package's postinst, as debhelper writes it for a daemon with a unit and an init script.
FAKE_APT_GET = r"""#!/bin/sh
# apt-get's options (-o NAME=VALUE, -y, -qq...) may come before the command
words=""; skip=0
for a; do
    if [ $skip = 1 ]; then skip=0; continue; fi
    case "$a" in -o) skip=1 ;; -*) ;; *) words="$words $a" ;; esac
done
set -- $words
[ "$1" = update ] && exit 0
export DPKG_MAINTSCRIPT_PACKAGE=fake-daemon DPKG_MAINTSCRIPT_NAME=postinst
shift
[ -e "$FAKE_LOG/packages" ] || echo "$@" | tr ' ' '\n' | grep -v '^-' > "$FAKE_LOG/packages"
[ -e "$FAKE_LOG/policy" ] || { /usr/sbin/policy-rc.d fake-daemon start; echo $? > "$FAKE_LOG/policy"; }
cat > /lib/systemd/system/fake-daemon.service <<'UNIT'
[Service]
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target
UNIT
cat > /etc/init.d/fake-daemon <<'INIT'
#!/bin/sh
### BEGIN INIT INFO
# Provides:          fake-daemon
# Required-Start:    $remote_fs
# Required-Stop:     $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: a test daemon
### END INIT INFO
exit 0
INIT
chmod 755 /etc/init.d/fake-daemon
update-rc.d fake-daemon defaults >/dev/null
deb-systemd-helper unmask fake-daemon.service >/dev/null
if deb-systemd-helper --quiet was-enabled fake-daemon.service; then
    deb-systemd-helper enable fake-daemon.service >/dev/null
else
    deb-systemd-helper update-state fake-daemon.service >/dev/null
fi
update-alternatives --quiet --install /usr/bin/x-www-browser x-www-browser /usr/bin/fake-browser 1000
[ -L /etc/systemd/system/multi-user.target.wants/fake-daemon.service ] && echo enabled > "$FAKE_LOG/enabled-during"
exit 0
"""

DRIVER = r"""
set -eu
scratch=$1 fakes=$2 log=$3 mode=$4
mount -t tmpfs fpmd-deps "$scratch"
for d in etc usr var; do
    mkdir -p "$scratch/$d.up" "$scratch/$d.work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$scratch/$d.up,workdir=$scratch/$d.work" "/$d"
done
rm -f /usr/sbin/policy-rc.d
printf '#!/bin/sh\nexit 0\n' > /usr/bin/fake-browser
chmod 755 /usr/bin/fake-browser
update-alternatives --query x-www-browser 2>/dev/null | sed -n 's/^Value: //p' > "$log/browser-before"
export FAKE_LOG=$log PATH="$fakes:$PATH"
scripts/deps.sh "$mode"
ls /etc/systemd/system/multi-user.target.wants/ > "$log/wants"
ls /etc/rc2.d/ > "$log/rc2"
update-alternatives --query x-www-browser 2>/dev/null | sed -n 's/^Value: //p' > "$log/browser-after"
[ -e /usr/sbin/policy-rc.d ] && echo left > "$log/policy-left"
# The package's next upgrade runs the same postinst: the admin's choice stays.
sh "$fakes/apt-get" install fake-daemon
ls /etc/systemd/system/multi-user.target.wants/ > "$log/wants-after-upgrade"
true
"""


def run_deps(mode):
    if os.geteuid() != 0:
        pytest.skip("deps.sh installs as root")
    why = unavailable()
    if why:
        pytest.skip(why)
    for tool in ("unshare", "deb-systemd-helper", "update-rc.d", "update-alternatives"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    top = tempfile.mkdtemp(prefix="fpmd-deps-", dir="/tmp")
    fakes, log, scratch = (os.path.join(top, d) for d in ("fakes", "log", "scratch"))
    for d in (fakes, log, scratch):
        os.mkdir(d)
    for name, text in (("dpkg-query", FAKE_DPKG_QUERY), ("apt-get", FAKE_APT_GET)):
        with open(os.path.join(fakes, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(fakes, name), 0o755)
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", DRIVER,
                        "driver", scratch, fakes, log, mode],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = {}
    for name in os.listdir(log):
        with open(os.path.join(log, name)) as f:
            out[name] = f.read()
    shutil.rmtree(top, ignore_errors=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return out, r.stdout


def test_make_run_installs_only_what_running_needs():
    r = subprocess.run(["make", "-n", "-C", ROOT, "run"], capture_output=True, text=True)
    assert "scripts/deps.sh run" in r.stdout and "deps.sh test" not in r.stdout, r.stdout
    out, _ = run_deps("run")
    asked = set(out["packages"].split())
    assert {"gcc", "make", "libphp8.2-embed", "python3"} <= asked, asked
    test_world = {"nginx-light", "apache2", "lighttpd", "caddy", "chromium", "php8.2-fpm",
                  "fcgiwrap", "debhelper", "dpkg-dev", "clang", "valgrind", "python3-pytest"}
    assert not asked & test_world, asked & test_world


def test_test_install_starts_and_enables_nothing():
    out, stdout = run_deps("test")
    asked = set(out["packages"].split())
    assert {"nginx-light", "apache2", "chromium", "python3-pytest", "git", "curl"} <= asked
    # apt could not start a daemon during the install, and the policy went away after.
    assert out["policy"].strip() == "101"
    assert "policy-left" not in out
    # The postinst did enable the unit; deps.sh disabled it again, as an admin would.
    assert "enabled-during" in out
    assert "fake-daemon.service" not in out["wants"].split(), out["wants"]
    assert not [n for n in out["rc2"].split() if n.startswith("S") and n.endswith("fake-daemon")], out["rc2"]
    assert "fake-daemon.service" not in out["wants-after-upgrade"].split()
    # The default browser is what it was.
    assert out["browser-after"] == out["browser-before"], (out["browser-before"], out["browser-after"])
    assert "left disabled at boot" in stdout
