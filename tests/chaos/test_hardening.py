"""Privilege hardening (issue #12): what a worker holds, and the warning for an open TCP listener."""
import os
import subprocess

from chaoslib import base, fd_targets, module_pool, report, status_field

basic_conf = base.basic_conf
pool_conf = base.pool_conf
wait_for = base.wait_for


def test_worker_holds_only_its_descriptors_and_no_new_privs(fpmd, workdir):
    pools = (pool_conf(workdir, "plain", children=1)
             + pool_conf(workdir, "logged", children=1, extra=f"access.log = {workdir}/access.log\n")
             + module_pool(workdir, children=1))
    fpmd.start(basic_conf(workdir, pools))
    seen = {}
    for w in fpmd.workers():
        def title():
            with open(f"/proc/{w}/cmdline", "rb") as f:
                return f.read()
        # "ready to handle connections" can come before a fresh worker has set its title.
        assert wait_for(lambda: b"pool " in title(), 5), title()
        pool = title().split(b"pool ", 1)[1].replace(b"\0", b" ").split()[0].decode()
        # Setup runs right after fork: wait until privileges are dropped.
        assert wait_for(lambda: status_field(w, "NoNewPrivs") == "1", 5), w
        # ... and until it waits for connections: the last descriptor it opens is its epoll set
        # (a cgi pool) or the signalfd for SIGQUIT in that set (other pools).
        last = "anon_inode:[eventpoll]" if pool != "app" else "anon_inode:[signalfd]"
        assert wait_for(lambda: last in fd_targets(w).values(), 5), fd_targets(w)
        fds = fd_targets(w)
        seen[pool] = fds
        # worker.h: 0 listening socket, 1-2 /dev/null or output pipes, 3 log pipe, 4 eventfd,
        # 5 access log, 7 the pool's handoff end (kept connections); then what the worker
        # opens itself: the epoll it waits for connections in (EPOLLEXCLUSIVE) and, except
        # in a cgi pool (plain, logged), the signalfd that reports SIGQUIT in it.  A module
        # worker (app) moves the listening socket above the layout and has /dev/null on 0.
        # Nothing of the master's, nothing of other pools.
        fixed = {0, 1, 2, 3, 4, 7} | ({5} if pool == "logged" else set())
        own = {fd: t for fd, t in fds.items() if fd not in fixed}
        expect = ["anon_inode:[eventpoll]"] + (["anon_inode:[signalfd]", "socket:"] if pool == "app" else [])
        got = sorted("socket:" if t.startswith("socket:") else t for t in own.values())
        assert fixed <= set(fds) and got == expect, (pool, fds)
        assert fds[7].startswith("socket:")
        if pool == "app":
            assert fds[0] == "/dev/null" and min(fd for fd, t in own.items() if t.startswith("socket:")) > 7
        else:
            assert fds[0].startswith("socket:")
        assert fds[3].startswith("pipe:")
        assert fds[4] == "anon_inode:[eventfd]"
        if pool == "logged":
            assert fds[5] == f"{workdir}/access.log"
        assert status_field(w, "NoNewPrivs") == "1"
        assert status_field(w, "Uid").split()[:4] == [str(65534)] * 4
        # Root's supplementary groups are gone too.
        assert status_field(w, "Groups") in ("", "65534")
    report("hardening", "worker descriptors: " + "; ".join(f"{p}: {sorted(fds)}" for p, fds in sorted(seen.items()))
           + "; NoNewPrivs 1, uid nobody, no supplementary groups")
    assert set(seen) == {"plain", "logged", "app"}


def test_open_tcp_listener_without_allowed_clients_warns(workdir):
    # `fpmd -t` checks without binding: the addresses below are never opened.
    conf = basic_conf(workdir, pool_conf(workdir, "wide", listen="9000")
                      + pool_conf(workdir, "lan", listen="192.0.2.1:9001")
                      + pool_conf(workdir, "v6", listen="[2001:db8::1]:9002")
                      + pool_conf(workdir, "guarded", listen="192.0.2.1:9003",
                                  extra="listen.allowed_clients = 192.0.2.10\n")
                      + pool_conf(workdir, "loop", listen="127.0.0.1:9004")
                      + pool_conf(workdir, "loop6", listen="[::1]:9005")
                      + pool_conf(workdir, "unix"))
    path = f"{workdir}/fpmd.conf"
    with open(path, "w") as f:
        f.write(conf)
    out = subprocess.run([base.FPMD, "-t", "-y", path], capture_output=True, text=True, timeout=20)
    text = out.stdout + out.stderr
    warned = sorted(line.split("pool ", 1)[1].split(":", 1)[0] for line in text.splitlines()
                    if "listen.allowed_clients is not set" in line)
    report("hardening", f"fpmd -t warns about open TCP listeners: {warned}")
    assert out.returncode == 0, text
    assert warned == ["lan", "v6", "wide"], text
    assert "WARNING" in text and "anyone who reaches it runs the pool's code" in text
