"""fpmctl's messages name what went wrong (issue 21, item 9)."""
import os
import subprocess

import pytest

from conftest import BUILD, FPMCTL, FPMD, basic_conf, pool_conf
from namespaces import unavailable


def ctl(*args, **kw):
    return subprocess.run([FPMCTL, *args], capture_output=True, text=True, timeout=30, **kw)


def test_missing_control_socket_is_named(workdir):
    missing = os.path.join(workdir, "missing.ctl")
    r = ctl("reload", "-c", missing)
    assert r.returncode == 3
    assert missing in r.stderr and "No such file or directory" in r.stderr, r.stderr


def test_top_names_the_missing_socket(workdir):
    missing = os.path.join(workdir, "missing.sock")
    r = ctl("top", "-n", "1", "-s", f"unix:{missing}")
    assert r.returncode == 3
    assert missing in r.stderr and "No such file or directory" in r.stderr, r.stderr


@pytest.mark.parametrize("cmd", ["ping", "status"])
def test_shortcut_errors_name_the_shortcut(cmd):
    r = ctl(cmd, "-s", "bad:thing")
    assert r.returncode == 2
    assert r.stderr.startswith(f"fpmctl {cmd}: "), r.stderr
    assert "fpmctl request" not in r.stderr, r.stderr


@pytest.mark.parametrize("app", ["php", "cgi"])
def test_ping_without_ping_path_is_one_clear_line(fpmd, workdir, app):
    if app == "php" and not os.path.exists(os.path.join(BUILD, "fpmd-php.so")):
        pytest.skip("fpmd-php.so is not built")
    conf = basic_conf(workdir, pool_conf(workdir, app=app).replace("ping.path = /ping\n", ""))
    fpmd.start(conf)
    r = ctl("ping", "-s", f"unix:{workdir}/www.sock")
    assert r.returncode == 6
    # The body stays on stdout, on its own line (php's has no newline of its own); the
    # verdict on stderr names the cause.
    expected = ("Primary script unknown\n", "File not found.\n") if app == "php" else ("404 Not Found\n",)
    assert r.stdout in expected, repr(r.stdout)
    # php's own FastCGI stderr ("Primary script unknown", no newline) on its line, then ours.
    lines = r.stderr.splitlines()
    assert lines[-1].startswith("fpmctl ping: HTTP status 404") and "ping.path" in lines[-1], r.stderr
    assert all(line in ("Primary script unknown",) for line in lines[:-1]), r.stderr


def test_version_flags():
    for flag in ("-v", "-V", "--version"):
        r = ctl(flag)
        assert r.returncode == 0 and r.stdout.startswith("fpmctl "), (flag, r.stdout, r.stderr)


def test_top_without_a_tty_prints_no_escapes(fpmd, workdir):
    fpmd.start(basic_conf(workdir))
    r = ctl("top", "-n", "1", "-s", f"unix:{workdir}/www.sock")
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "fpmctl top" in r.stdout, repr(r.stdout)


@pytest.mark.parametrize("cmd", ["reload", "quit", "pools", "reopen", "stop"])
def test_master_commands_default_to_the_shipped_control_socket(cmd):
    """Without -c or -g: /run/fpmd.ctl, contrib/fpmd.conf's control_socket."""
    if os.path.exists("/run/fpmd.ctl"):
        pytest.skip("an fpmd answers on /run/fpmd.ctl here")
    r = ctl(cmd)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "cannot connect to unix:/run/fpmd.ctl" in r.stderr, r.stderr


def test_default_control_socket_reaches_fpmd(workdir):
    """In a private /run: fpmd with control_socket = /run/fpmd.ctl, then
    `fpmctl pools` and `fpmctl quit` with no -c at all."""
    why = unavailable()
    if why:
        pytest.skip(f"a private /run: {why}")
    conf = basic_conf(workdir, global_extra="control_socket = /run/fpmd.ctl\n")
    with open(os.path.join(workdir, "fpmd.conf"), "w") as f:
        f.write(conf)
    # the daemon lives on in the namespace's /run unless stopped: whatever fails, it is
    script = (f"set -e; trap 'kill $(cat {workdir}/fpmd.pid 2>/dev/null) 2>/dev/null || true' EXIT; "
              f"mount -t tmpfs run /run; {FPMD} -D -y {workdir}/fpmd.conf; "
              f"{FPMCTL} pools; {FPMCTL} quit; echo QUIT=$?; ! test -e {workdir}/fpmd.pid")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "www" in r.stdout and "QUIT=0" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("args,says", [
    (("status", "--bogus"), "fpmctl status: unknown option, or one without its value, '--bogus'"),
    (("pools", "-c", "/nonexistent.ctl", "extra"), "fpmctl pools: unexpected argument 'extra'"),
    (("scale", "-c", "/nonexistent.ctl", "www", "3"),
     "fpmctl scale: the count must be +N, -N or =N"),
    (("scale", "-c", "/nonexistent.ctl", "www"), "fpmctl scale: scale needs a pool and a count"),
])
def test_a_usage_error_says_what_was_wrong(args, says):
    """Not only the usage text: the line that was wrong, exit 2, nothing sent."""
    r = ctl(*args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines()[0] == says, r.stderr


def test_pools_and_scale_help_do_not_offer_a_signal():
    for cmd in ("pools", "scale"):
        r = ctl(cmd, "--help")
        assert r.returncode == 0 and "-g PIDFILE" not in r.stdout, r.stdout
    assert "-g PIDFILE" in ctl("reload", "--help").stdout
