"""Kept-alive connections and the process manager (issue 20, item 1).

A worker waiting for the next request of a kept connection (FCGI_KEEP_CONN,
nginx's `upstream { keepalive N; }` with `fastcgi_keep_conn on`) cannot take
a new connection.  fpmd counts it as "parked": not idle (the status page shows
it "Reading headers", as php-fpm does), spawned for like a busy worker, and
asked to give its connection up when connections wait and no worker can be
added.
"""
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (Response, basic_conf, build_request, cgi_params, connect, fcgi_request,
                      out_of_descriptors, pool_conf, read_records, wait_for, write_script)
from test_nginx import free_port, http_request, kill_group, port_open

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def kept_request(sock_path, www, uri="/ping"):
    """A connection with one answered FCGI_KEEP_CONN request, left open."""
    s = connect(sock_path, timeout=10)
    s.sendall(build_request(cgi_params(uri, www), keep=True))
    r = read_records(s, Response())
    assert r.app_status == 0
    return s


def status_text(sock_path, www):
    return fcgi_request(sock_path, "/status?full", root=www).body.decode()


def test_dynamic_pool_spawns_for_a_client_behind_kept_connections(fpmd, workdir):
    """The issue's repro: 3 kept connections, a 4th client must not wait forever."""
    pool = pool_conf(workdir, pm="dynamic", children=8,
                     extra="pm.start_servers = 2\npm.min_spare_servers = 1\npm.max_spare_servers = 3\n")
    fpmd.start(basic_conf(workdir, pool))
    sock = f"{workdir}/www.sock"
    kept = []
    try:
        for _ in range(3):
            kept.append(kept_request(sock, workdir))
        t0 = time.monotonic()
        r = fcgi_request(sock, "/ping", root=workdir, timeout=5)
        assert r.body.strip() == b"pong"
        assert time.monotonic() - t0 < 2.5
        # parked workers are not idle, on the status page as for the pm
        text = status_text(sock, workdir)
        assert text.count("Reading headers") >= 3, text
    finally:
        for s in kept:
            s.close()


def test_static_pool_frees_a_parked_worker_for_a_waiting_client(fpmd, workdir):
    """No worker can be added: a worker lets its kept connection go for the
    waiting one.  The web server owns a kept connection (FastCGI §3.5): it is
    not closed but held by the master, and its next request is served."""
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="static", children=2)))
    sock = f"{workdir}/www.sock"
    kept = [kept_request(sock, workdir) for _ in range(2)]
    try:
        t0 = time.monotonic()
        r = fcgi_request(sock, "/ping", root=workdir, timeout=5)
        assert r.body.strip() == b"pong"
        assert time.monotonic() - t0 < 2.5
        # neither kept connection was closed (before: one was, and nginx
        # answered 502 to a POST that found it so) ...
        for s in kept:
            s.settimeout(0.5)
            with pytest.raises(socket.timeout):
                s.recv(1)
        # ... and each still carries its next request
        for s in kept:
            s.settimeout(5)
            s.sendall(build_request(cgi_params("/ping", workdir), keep=True))
            r = read_records(s, Response())
            assert r.app_status == 0 and r.body.strip() == b"pong", r.body
    finally:
        for s in kept:
            s.close()
    # the workers are idle again (one answers the status request): nothing left parked
    assert wait_for(lambda: "idle processes:       1" in status_text(sock, workdir), 5)
    # and the master of the static pool goes back to sleep: no timer armed
    from test_systemd import armed_timers
    assert wait_for(lambda: armed_timers(fpmd.pid) == [], 10), armed_timers(fpmd.pid)


def test_ondemand_pool_spawns_behind_kept_connections(fpmd, workdir):
    pool = pool_conf(workdir, pm="ondemand", children=4, extra="pm.process_idle_timeout = 10s\n")
    fpmd.start(basic_conf(workdir, pool))
    sock = f"{workdir}/www.sock"
    kept = []
    try:
        for _ in range(2):
            kept.append(kept_request(sock, workdir))
        t0 = time.monotonic()
        r = fcgi_request(sock, "/ping", root=workdir, timeout=5)
        assert r.body.strip() == b"pong" and time.monotonic() - t0 < 2.5
    finally:
        for s in kept:
            s.close()


# --- two real nginx instances with upstream keepalive ---------------------

class KeepaliveNginx:
    def __init__(self, workdir, name, sock, workers=1):
        self.prefix = os.path.join(workdir, f"nginx-{name}")
        os.makedirs(self.prefix)
        self.port = free_port()
        root = os.path.join(workdir, "www")
        p = self.prefix
        conf = f"""daemon off;
master_process on;
worker_processes {workers};
user nobody nogroup;
pid {p}/nginx.pid;
error_log {p}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {p}/body; fastcgi_temp_path {p}/fastcgi; proxy_temp_path {p}/proxy;
    uwsgi_temp_path {p}/uwsgi; scgi_temp_path {p}/scgi;
    upstream fpmd {{ server unix:{sock}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{self.port};
        root {root};
        location /cgi-bin/ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_keep_conn on;
            fastcgi_read_timeout 4s;
            fastcgi_pass fpmd;
        }}
        location = /ping {{
            include /etc/nginx/fastcgi_params;
            fastcgi_keep_conn on;
            fastcgi_pass fpmd;
        }}
    }}
}}
"""
        with open(os.path.join(p, "nginx.conf"), "w") as f:
            f.write(conf)
        self.out = open(os.path.join(p, "stderr.log"), "ab")
        self.proc = subprocess.Popen([NGINX, "-c", os.path.join(p, "nginx.conf"), "-p", p],
                                     stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        assert wait_for(lambda: self.proc.poll() is not None or port_open(self.port), 10)
        assert self.proc.poll() is None

    def log(self):
        with open(os.path.join(self.prefix, "error.log"), errors="replace") as f:
            return f.read()

    def stop(self):
        kill_group(self.proc)
        self.out.close()


@pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="nginx is not installed")
def test_two_nginx_with_upstream_keepalive_get_no_errors(fpmd, workdir):
    www = os.path.join(workdir, "www")
    cgibin = os.path.join(www, "cgi-bin")
    os.makedirs(cgibin)
    write_script(f"{cgibin}/slow.sh", "#!/bin/sh\nsleep 0.2\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    pool = pool_conf(workdir, pm="static", children=2).replace(f"cgi.root = {workdir}",
                                                                 f"cgi.root = {cgibin}")
    fpmd.start(basic_conf(workdir, pool))
    sock = f"{workdir}/www.sock"
    a = KeepaliveNginx(workdir, "a", sock)
    b = KeepaliveNginx(workdir, "b", sock)
    statuses = []
    lock = threading.Lock()

    def get(port):
        try:
            st = http_request(port, "/cgi-bin/slow.sh", timeout=15).status
        except OSError as e:
            st = repr(e)
        with lock:
            statuses.append(st)

    try:
        # Each instance in turn fills its keepalive cache with both workers'
        # connections; the other one then needs a worker.
        for rnd in range(6):
            port = a.port if rnd % 2 == 0 else b.port
            threads = [threading.Thread(target=get, args=(port,)) for _ in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(20)
        bad = [s for s in statuses if s != 200]
        assert len(statuses) == 18 and not bad, f"non-200: {bad}\n{a.log()[-2000:]}\n{b.log()[-2000:]}"
    finally:
        a.stop()
        b.stop()


def _ping_clients(port, clients, each, join):
    """clients threads of `each` GET /ping through nginx at port: (latencies, non-200s)."""
    lat, bad = [], []
    lock = threading.Lock()

    def client():
        for _ in range(each):
            t = time.monotonic()
            try:
                st = http_request(port, "/ping", timeout=20).status
            except OSError as e:
                st = repr(e)
            with lock:
                lat.append(time.monotonic() - t)
                if st != 200:
                    bad.append(st)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(join)
    return lat, bad


def test_more_kept_connections_than_workers_never_stall_a_request(fpmd, workdir):
    """Two nginx workers with `keepalive 8` each and a pool of 2: the workers
    are parked on one nginx worker's connections while the other's clients
    wait on the pool's socket.  A parked worker watches the socket too and
    takes a waiting connection for its idle kept one at once: no request
    waits for the master's release (one a second per worker before: requests
    stalled 4 s and more, 300 req/s where 9000 were possible)."""
    os.makedirs(os.path.join(workdir, "www"))
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="static", children=2)))
    ngx = KeepaliveNginx(workdir, "a", f"{workdir}/www.sock", workers=2)
    try:
        lat, bad = _ping_clients(ngx.port, clients=8, each=60, join=120)
        assert len(lat) == 480 and not bad, bad
        assert max(lat) < 0.5, sorted(lat)[-10:]
    finally:
        ngx.stop()


def test_request_keepalive_timeout_holds_while_connections_keep_arriving(fpmd, workdir):
    """A parked worker wakes for every connection on the pool's socket (and leaves
    it to the idle worker): request_keepalive_timeout still counts from the end of
    its kept connection's last request, not from the last wake-up.  One client at a
    time: an idle worker always takes the new connection."""
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="static", children=3,
                                             extra="request_keepalive_timeout = 2\n")))
    sock = f"{workdir}/www.sock"
    kept = kept_request(sock, workdir)
    stop = time.monotonic() + 6
    errors = []

    def traffic():
        while time.monotonic() < stop:
            try:
                fcgi_request(sock, "/ping", root=workdir, timeout=5)
            except OSError as e:
                errors.append(e)
            time.sleep(0.01)

    t = threading.Thread(target=traffic)
    t.start()
    try:
        t0 = time.monotonic()
        kept.settimeout(8)
        try:
            data = kept.recv(1)                  # fpmd closes it: EOF
        except OSError:
            data = b""
        waited = time.monotonic() - t0
        assert data == b"" and 1.5 < waited < 3.5, (waited, fpmd.log()[-1500:])
    finally:
        t.join(10)
        kept.close()
    assert not errors, errors


@pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="nginx is not installed")
def test_kept_connections_given_up_never_fail_a_post(fpmd, workdir):
    """nginx retries a request whose cached connection turns out closed only
    when it is idempotent: a POST gets 502 Bad Gateway.  With more cached
    connections than workers a worker lets its idle kept connection go for a
    waiting one, and a worker leaving (max_requests) lets its own go: the
    master holds such a connection, so nginx never finds it closed, and hands
    it to a worker when its next request arrives.  Before: 2-7 % of POSTs 502."""
    os.makedirs(os.path.join(workdir, "www"))
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="static", children=2,
                                             extra="pm.max_requests = 40\n")))
    ngx = KeepaliveNginx(workdir, "a", f"{workdir}/www.sock", workers=2)
    statuses, lock = [], threading.Lock()

    def client():
        for _ in range(100):
            try:
                st = http_request(ngx.port, "/ping", method="POST", body=b"a=1&b=2",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"},
                                  timeout=20).status
            except OSError as e:
                st = repr(e)
            with lock:
                statuses.append(st)

    try:
        threads = [threading.Thread(target=client) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        bad = [s for s in statuses if s != 200]
        assert len(statuses) == 1200 and not bad, (len(bad), bad[:5], ngx.log()[-1500:])
        # the connections let go reached the master (and nginx never saw one closed)
        assert "Broken pipe" not in ngx.log() and "reset by peer" not in ngx.log(), ngx.log()[-1500:]
    finally:
        ngx.stop()


def test_hundreds_of_held_connections_asking_at_once_are_all_served(fpmd, workdir):
    """The master holds the kept connections a worker let go and hands each
    back when its request comes; with more at once than the workers' queue
    holds (a few hundred), the rest were closed with their request in them
    (nginx: 502 for a POST).  They wait in the master and go as it drains."""
    write_script(f"{workdir}/slow.sh", "#!/bin/sh\nsleep 1\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslow'\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="static", children=1)))
    sock = f"{workdir}/www.sock"
    kept = []
    try:
        for _ in range(600):      # the one worker lets each go for the next
            kept.append(kept_request(sock, workdir))
        busy = threading.Thread(target=lambda: fcgi_request(sock, "/slow.sh", root=workdir, timeout=60))
        busy.start()
        time.sleep(0.3)
        for s in kept:
            s.sendall(build_request(cgi_params("/ping", workdir), keep=True))
        served = 0
        for s in kept:
            r = read_records(s, Response(), timeout=60)
            served += r.body.strip() == b"pong"
        busy.join(60)
        assert served == len(kept), (served, fpmd.log()[-1500:])
    finally:
        for s in kept:
            s.close()


def test_a_graceful_stop_closes_the_held_connections_at_once(fpmd, workdir):
    """While the workers finish their requests, a kept connection the master
    holds is closed at once, when the web server has sent nothing on it: left
    open, a request nginx sent on it meanwhile met a close (502 for a POST)."""
    write_script(f"{workdir}/slow.sh", "#!/bin/sh\nsleep 2\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslow'\n")
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="static", children=1)))
    sock = f"{workdir}/www.sock"
    held = kept_request(sock, workdir)
    kept_request(sock, workdir).close()          # the worker let `held` go for this one
    slow = threading.Thread(target=lambda: fcgi_request(sock, "/slow.sh", root=workdir, timeout=10))
    slow.start()
    time.sleep(0.3)
    fpmd.signal(signal.SIGQUIT)
    t0 = time.monotonic()
    held.settimeout(5)
    try:
        assert held.recv(1) == b""
    finally:
        held.close()
    assert time.monotonic() - t0 < 1.0, time.monotonic() - t0
    slow.join(10)


def _closed_soon(s, timeout=5):
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except OSError:
        return False


def _closed_now(socks):
    """The indexes of the sockets the other end has closed (readable, and EOF)."""
    import select
    poller = select.poll()
    for i, s in enumerate(socks):
        poller.register(s.fileno(), select.POLLIN)
    by_fd = {s.fileno(): i for i, s in enumerate(socks)}
    return sorted(by_fd[fd] for fd, _ in poller.poll(0) if socks[by_fd[fd]].recv(1) == b"")


def test_a_held_connection_survives_a_reload_and_carries_its_next_request(fpmd, workdir):
    """docs/configuration.md: a reload passes the held connections to the new master."""
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="static", children=1)))
    sock = f"{workdir}/www.sock"
    held = kept_request(sock, workdir)
    other = kept_request(sock, workdir)          # the worker let `held` go for this one
    try:
        fpmd.signal(signal.SIGUSR2)
        fpmd.wait_log("ready to handle connections", count=2)
        other.close()
        held.settimeout(10)
        held.sendall(build_request(cgi_params("/ping", workdir), keep=True))
        r = read_records(held, Response())
        assert r.body.strip() == b"pong"
    finally:
        held.close()


def test_request_keepalive_timeout_closes_the_connections_the_master_holds(fpmd, workdir):
    """docs/configuration.md: the master closes a held connection after request_keepalive_timeout."""
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="static", children=1,
                                             extra="request_keepalive_timeout = 2\n")))
    sock = f"{workdir}/www.sock"
    held = kept_request(sock, workdir)
    other = kept_request(sock, workdir)
    try:
        t0 = time.monotonic()
        assert _closed_soon(held, 6)
        assert 1.0 < time.monotonic() - t0 < 4.5
    finally:
        held.close()
        other.close()


def test_the_master_holds_at_most_a_quarter_of_its_descriptors(fpmd, workdir):
    """docs/architecture.md: over a quarter of the master's descriptors the
    oldest held connection is closed (global rlimit_files = 240: 60)."""
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="static", children=1, extra="rlimit_files = 1024\n"),
                          global_extra="rlimit_files = 240\n"))
    sock = f"{workdir}/www.sock"
    kept = [kept_request(sock, workdir) for _ in range(90)]
    try:
        time.sleep(0.3)
        closed = _closed_now(kept[:-1])
        assert 20 <= len(closed) <= 40 and closed == list(range(len(closed))), closed
    finally:
        for s in kept:
            s.close()


def test_a_pool_holds_at_most_1024_kept_connections(fpmd, workdir):
    """docs/configuration.md: past 1,024 held for a pool, the one held longest is closed."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), max(hard, 4096)))
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="static", children=1)))
    sock = f"{workdir}/www.sock"
    kept = []
    try:
        for _ in range(1040):
            kept.append(kept_request(sock, workdir))
        time.sleep(0.3)
        closed = _closed_now(kept[:-1])
        assert closed == list(range(1039 - 1024)), closed
    finally:
        for s in kept:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="nginx is not installed")
def test_workers_recycling_often_never_leave_a_kept_request_waiting(fpmd, workdir):
    """pm.max_requests = 5 behind nginx's keepalive: a worker woken for a waiting
    connection (EPOLLEXCLUSIVE wakes one) that served another as its last request left
    with that wake-up, and the connection (a new one, or a kept one the master handed
    back) waited for the next arrival: seconds, nginx answered 504.  A worker leaving
    passes what waits to the master, which offers it again."""
    os.makedirs(os.path.join(workdir, "www"))
    # a php pool: a worker's replacement takes a clone of the zygote, long enough for
    # connections to arrive while no worker waits
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="dynamic", children=4, app="php", extra=(
        "pm.start_servers = 2\npm.min_spare_servers = 1\npm.max_spare_servers = 3\n"
        "pm.max_requests = 5\n"))))
    ngx = KeepaliveNginx(workdir, "a", f"{workdir}/www.sock", workers=2)
    try:
        lat, bad = _ping_clients(ngx.port, clients=16, each=150, join=180)
        assert len(lat) == 2400 and not bad, (len(lat), bad[:5])
        # the master asks a parked worker again after a second: two rounds at most (three
        # under the sanitizers, whose clones and starts are several times slower)
        import conftest
        assert max(lat) < (3.0 if conftest.SANITIZED else 2.0), sorted(lat)[-10:]
    finally:
        ngx.stop()


def test_a_master_short_of_descriptors_does_not_stop_taking_kept_connections(fpmd, workdir):
    """A kept connection a worker hands over while the master cannot open a descriptor
    (its RLIMIT_NOFILE lowered from outside) arrives truncated (MSG_CTRUNC): that is the
    master's shortage, not a hostile worker.  It used to pause the pool's handoffs for
    10 s (for good when no timer could be made then): the next kept connection handed
    over waited that long, nginx answering 504."""
    fpmd.start(basic_conf(workdir, pool_conf(workdir, pm="static", children=1)))
    sock = f"{workdir}/www.sock"
    a = kept_request(sock, workdir)                 # the worker parks on it
    try:
        with out_of_descriptors(fpmd.pid):
            # a waiting client: the worker hands A to the master, which cannot take it
            assert fcgi_request(sock, "/ping", root=workdir, timeout=5).body.strip() == b"pong"
            fpmd.wait_log(r"out of descriptors|not a kept connection")
    finally:
        a.close()
    assert "not a kept connection" not in fpmd.log(), fpmd.log()[-2000:]
    c = kept_request(sock, workdir)
    try:
        # the worker hands C over for D; C's next request is served at once
        assert fcgi_request(sock, "/ping", root=workdir, timeout=5).body.strip() == b"pong"
        c.settimeout(3)
        c.sendall(build_request(cgi_params("/ping", workdir), keep=True))
        r = read_records(c, Response(), timeout=3)
        assert r.body.strip() == b"pong"
    finally:
        c.close()
