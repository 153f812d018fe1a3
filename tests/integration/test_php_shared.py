"""php.zygote = shared (issue 22): PHP starts once for every shared pool, in one
zygote; every shared pool's workers are cloned from it and drop to their pool's user.

What this must not cost: a pool's workers still run as the pool's user, a
script one pool cached is not served to a pool whose user cannot read it
(opcache.validate_permission), and each pool keeps its own PHP settings.
"""
import os
import pwd

import pytest

from conftest import basic_conf, children_of, fcgi_request, wait_for, write_script
from test_php import PHP_SO, php_pool

pytestmark = [pytest.mark.skipif(not os.path.exists(PHP_SO), reason="fpmd-php.so not built")]


def pool_as(workdir, name, user, extra=""):
    return php_pool(workdir, name=name, children=1, extra=extra).replace("user = nobody",
                                                                           f"user = {user}")


def test_two_pools_share_one_php_and_run_as_their_own_users(fpmd, workdir):
    write_script(os.path.join(workdir, "who.php"),
                 "<?php echo posix_geteuid(), ' ', ini_get('memory_limit'), ' ', "
                 "json_encode(opcache_get_status(false)['opcache_enabled'] ?? false);", 0o644)
    fpmd.start(basic_conf(workdir, pool_as(workdir, "a", "nobody",
                                           "php_admin_value[memory_limit] = 33M\n")
                          + pool_as(workdir, "b", "www-data",
                                    "php_admin_value[memory_limit] = 44M\n")))
    a = fcgi_request(f"{workdir}/a.sock", "/who.php", root=workdir).body.split()
    b = fcgi_request(f"{workdir}/b.sock", "/who.php", root=workdir).body.split()
    assert a == [str(pwd.getpwnam("nobody").pw_uid).encode(), b"33M", b"true"]
    assert b == [str(pwd.getpwnam("www-data").pw_uid).encode(), b"44M", b"true"]
    titles = {p: open(f"/proc/{p}/cmdline").read() for p in children_of(fpmd.pid)}
    assert sum("php zygote (shared)" in t for t in titles.values()) == 1, titles
    # the pools' zygotes and workers map the same libphp text as the shared zygote
    shared = [p for p, t in titles.items() if "php zygote (shared)" in t][0]
    assert os.stat(f"/proc/{shared}/status").st_uid == 0


def test_a_script_cached_by_one_pool_is_not_served_to_a_user_who_cannot_read_it(fpmd, workdir):
    private = os.path.join(workdir, "private")
    os.makedirs(private)
    secret = write_script(os.path.join(private, "secret.php"), "<?php echo 'secret';", 0o600)
    nobody = pwd.getpwnam("nobody")
    os.chown(secret, nobody.pw_uid, nobody.pw_gid)
    fresh = "php_admin_value[opcache.file_update_protection] = 0\n"   # cache a file just written
    fpmd.start(basic_conf(workdir, pool_as(workdir, "a", "nobody", fresh) + pool_as(workdir, "b", "www-data", fresh)))
    a = fcgi_request(f"{workdir}/a.sock", "/private/secret.php", root=workdir)
    assert a.body == b"secret"                 # pool a may read it: now it is in opcache
    check = write_script(os.path.join(workdir, "cached.php"),
                         f"<?php echo json_encode(opcache_is_script_cached('{secret}'));", 0o644)
    assert fcgi_request(f"{workdir}/a.sock", "/cached.php", root=workdir).body == b"true"
    b = fcgi_request(f"{workdir}/b.sock", "/private/secret.php", root=workdir)
    assert b"secret" not in b.body and b.status in (403, 404), (b.status, b.stdout)
    # the path opcache itself guards: an include by a script b may run
    write_script(os.path.join(workdir, "inc.php"), f"<?php @include '{secret}'; echo 'done';", 0o644)
    b = fcgi_request(f"{workdir}/b.sock", "/inc.php", root=workdir)
    assert b.body == b"done", b.body


def test_pool_mode_keeps_its_own_php(fpmd, workdir):
    write_script(os.path.join(workdir, "who.php"), "<?php echo posix_geteuid();", 0o644)
    fpmd.start(basic_conf(workdir, pool_as(workdir, "a", "nobody", "php.zygote = pool\n")
                          + pool_as(workdir, "b", "www-data")))
    assert fcgi_request(f"{workdir}/a.sock", "/who.php", root=workdir).status == 200
    assert fcgi_request(f"{workdir}/b.sock", "/who.php", root=workdir).status == 200
    titles = {p: open(f"/proc/{p}/cmdline").read() for p in children_of(fpmd.pid)}
    # a's zygote started PHP itself, as its user; b's workers were cloned from the shared one
    assert sum("php zygote (shared)" in t for t in titles.values()) == 1, titles
    assert sum("pool a zygote" in t for t in titles.values()) == 1, titles
    assert sum("zygote" in t for t in titles.values()) == 2, titles


def test_the_shared_zygote_is_restarted_and_pools_keep_serving(fpmd, workdir):
    import signal
    write_script(os.path.join(workdir, "ok.php"), "<?php echo 'ok';", 0o644)
    fpmd.start(basic_conf(workdir, pool_as(workdir, "a", "nobody")))
    titles = {p: open(f"/proc/{p}/cmdline").read() for p in children_of(fpmd.pid)}
    shared = [p for p, t in titles.items() if "php zygote (shared)" in t][0]
    os.kill(shared, signal.SIGKILL)
    fpmd.wait_log(r"shared PHP zygote \d+ exited on signal 9")
    assert fcgi_request(f"{workdir}/a.sock", "/ok.php", root=workdir).body == b"ok"
    fpmd.wait_log(r"shared PHP zygote \d+ restarted", timeout=10)


def zygote_pids(master, title):
    return [p for p in children_of(master) if title in open(f"/proc/{p}/cmdline").read()]


@pytest.mark.parametrize("mode", ["shared", "pool"])
def test_a_stopped_zygote_never_blocks_the_master(fpmd, workdir, mode):
    """Issue 22: spawn requests are events, not waits.  With the zygote stopped
    (kill -STOP), the master still answers another pool's status at once; the
    stuck request is served once the master restarts the zygote (2 s)."""
    import signal
    import threading
    import time
    write_script(os.path.join(workdir, "ok.php"), "<?php echo 'ok';", 0o644)
    st = f"{workdir}/cgi-status.sock"
    cgi = (f"[cgi]\nuser = nobody\nlisten = {workdir}/cgi.sock\npm = static\npm.max_children = 1\n"
           f"app.type = cgi\ncgi.root = {workdir}\nping.path = /ping\npm.status_path = /status\n"
           f"pm.status_listen = {st}\n")
    php = pool_as(workdir, "www", "nobody", f"php.zygote = {mode}\n").replace(
        "pm = static", "pm = ondemand").replace("pm.max_children = 1", "pm.max_children = 2")
    fpmd.start(basic_conf(workdir, php + cgi))
    title = "php zygote (shared)" if mode == "shared" else "pool www zygote"
    if mode == "pool":
        # its zygote starts with the first connection; that worker then retires
        fcgi_request(f"{workdir}/www.sock", "/ok.php", root=workdir)
    zyg = zygote_pids(fpmd.pid, title)
    assert len(zyg) == 1
    os.kill(zyg[0], signal.SIGSTOP)
    got = {}

    def php_request():
        t0 = time.monotonic()
        try:
            r = fcgi_request(f"{workdir}/www.sock", "/ok.php", root=workdir, timeout=15,
                             extra={"HTTP_X": "second"})
            got["body"] = r.body
        except Exception as e:      # noqa: BLE001 -- reported below
            got["err"] = repr(e)
        got["took"] = time.monotonic() - t0

    try:
        # a new worker is needed (ondemand, 1 busy... or none): the spawn request waits
        t = threading.Thread(target=php_request)
        busy = None
        if mode == "pool":
            # the first worker is still there: keep it busy so a second is needed
            write_script(os.path.join(workdir, "slow.php"), "<?php sleep(3); echo 's';", 0o644)
            busy = threading.Thread(target=lambda: fcgi_request(f"{workdir}/www.sock", "/slow.php",
                                                                root=workdir, timeout=15))
            busy.start()
            time.sleep(0.3)
        t.start()
        time.sleep(0.3)
        for _ in range(5):
            t0 = time.monotonic()
            r = fcgi_request(st, "/status", root=workdir, timeout=5)
            assert r.status == 200
            assert time.monotonic() - t0 < 0.5, "the master was blocked"
            time.sleep(0.2)
        # a signal is acted on at once too (USR1: the logs are reopened)
        t0 = time.monotonic()
        fpmd.signal(signal.SIGUSR1)
        fpmd.wait_log(r"error log file re-opened", timeout=2)
        assert time.monotonic() - t0 < 0.5
        t.join(15)
        if busy:
            busy.join(15)
        assert got.get("body") == b"ok", got
        fpmd.wait_log(r"did not answer a spawn request within 2000 ms", timeout=5)

    finally:
        for p in zyg:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def test_a_reload_with_a_stopped_zygote_leaves_no_stopped_process(fpmd, workdir):
    import signal
    write_script(os.path.join(workdir, "ok.php"), "<?php echo 'ok';", 0o644)
    fpmd.start(basic_conf(workdir, pool_as(workdir, "www", "nobody")))
    zyg = zygote_pids(fpmd.pid, "php zygote (shared)")
    os.kill(zyg[0], signal.SIGSTOP)
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log("ready to handle connections", count=2, timeout=15)
    assert fcgi_request(f"{workdir}/www.sock", "/ok.php", root=workdir).body == b"ok"
    # the stopped one was killed by the reload, not left behind
    assert wait_for(lambda: not os.path.exists(f"/proc/{zyg[0]}") or
                    open(f"/proc/{zyg[0]}/stat").read().rsplit(")", 1)[1].split()[0] == "Z", 5)


@pytest.mark.parametrize("mode", ["shared", "pool"])
def test_ready_means_every_static_worker_is_there(fpmd, workdir, mode):
    """php-fpm forks its workers before 'ready'; a zygote's clones are awaited before it too."""
    pools = "".join(php_pool(workdir, name=f"p{i}", children=4,
                             extra=f"php.zygote = {mode}\n") for i in range(3))
    fpmd.start(basic_conf(workdir, pools))
    zygotes = 1 if mode == "shared" else 3
    assert len(children_of(fpmd.pid)) == zygotes + 3 * 4, fpmd.log()


def test_one_user_sharing_php_pays_no_permission_check_per_include(fpmd, workdir):
    """opcache.validate_permission (an access() per cached script per include: 212 per
    request of a Symfony page, 1.6x php-fpm's CPU) and validate_root guard one pool's
    cached scripts from another pool's user or chroot.  Pools of one user and no chroot
    have nothing to guard from each other: the shared zygote leaves both off."""
    write_script(os.path.join(workdir, "v.php"),
                 "<?php echo ini_get('opcache.validate_permission'), ini_get('opcache.validate_root');",
                 0o644)
    fpmd.start(basic_conf(workdir, pool_as(workdir, "a", "nobody") + pool_as(workdir, "b", "nobody")))
    assert fcgi_request(f"{workdir}/a.sock", "/v.php", root=workdir).body == b"00"
    assert fcgi_request(f"{workdir}/b.sock", "/v.php", root=workdir).body == b"00"


def test_pools_of_two_users_sharing_php_keep_the_permission_check(fpmd, workdir):
    write_script(os.path.join(workdir, "v.php"),
                 "<?php echo ini_get('opcache.validate_permission'), ini_get('opcache.validate_root');",
                 0o644)
    fpmd.start(basic_conf(workdir, pool_as(workdir, "a", "nobody") + pool_as(workdir, "b", "www-data")))
    assert fcgi_request(f"{workdir}/a.sock", "/v.php", root=workdir).body == b"11"


def test_a_zygote_booted_pool_of_another_user_counts_for_the_permission_check(fpmd, workdir):
    """A php.worker_boot = zygote pool's zygote is cloned from the shared PHP: it shares
    its opcache, so a user of its own turns the guard on for everyone (docs/php.md)."""
    write_script(os.path.join(workdir, "v.php"),
                 "<?php echo ini_get('opcache.validate_permission'), ini_get('opcache.validate_root');",
                 0o644)
    write_script(os.path.join(workdir, "app.php"),
                 "<?php while (fpmd_handle_request(function () {"
                 " echo ini_get('opcache.validate_permission'); })) {}", 0o644)
    app = pool_as(workdir, "b", "www-data",
                  extra=f"php.worker = {workdir}/app.php\nphp.worker_boot = zygote\n")
    fpmd.start(basic_conf(workdir, pool_as(workdir, "a", "nobody") + app))
    assert fcgi_request(f"{workdir}/a.sock", "/v.php", root=workdir).body == b"11"
    assert fcgi_request(f"{workdir}/b.sock", "/", root=workdir).body == b"1"


APCU_SO = "/usr/lib/php/20220829/apcu.so"


@pytest.mark.skipif(not os.path.exists(APCU_SO), reason="php8.2-apcu not installed (scripts/deps.sh test)")
def test_apcu_is_shared_by_the_shared_zygotes_pools_and_not_by_a_pool_of_its_own(fpmd, workdir):
    """docs/php.md: APCu's segment is made when PHP starts, so the shared zygote's pools
    share it whatever their users (as a php-fpm master's pools do); php.zygote = pool
    gives a pool its own."""
    write_script(os.path.join(workdir, "put.php"),
                 "<?php var_export(apcu_store('db_password', 'secret-of-' . posix_geteuid()));", 0o644)
    write_script(os.path.join(workdir, "get.php"),
                 "<?php var_export(apcu_fetch('db_password'));", 0o644)
    fpmd.start(basic_conf(workdir, pool_as(workdir, "a", "nobody")
                          + pool_as(workdir, "b", "www-data")
                          + pool_as(workdir, "c", "www-data", "php.zygote = pool\n")))
    assert fcgi_request(f"{workdir}/a.sock", "/put.php", root=workdir).body == b"true"
    nobody = pwd.getpwnam("nobody").pw_uid
    got = fcgi_request(f"{workdir}/b.sock", "/get.php", root=workdir).body
    assert got == f"'secret-of-{nobody}'".encode(), got
    assert fcgi_request(f"{workdir}/c.sock", "/get.php", root=workdir).body == b"false"
