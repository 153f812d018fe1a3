"""`fpmd -t` / `fpmd -T`: configuration checking from the command line.

Each broken configuration must make `fpmd -t -y FILE` exit with 78 (EX_CONFIG)
and print the problem as `[FILE:LINE] message` on stderr, naming the
directive.  A good configuration prints "configuration file FILE test is
successful" and exits 0; `-T` prints the effective configuration, which is
itself a valid configuration that dumps to the same bytes.
"""
import os
import re
import subprocess

import pytest

FPMD = os.path.join(os.environ.get("FPMD_BUILD", "/work/main/build"), "fpmd")
EX_USAGE = 64
EX_CONFIG = 78

# Lines 1-2.
GLOBAL = "[global]\nerror_log = {tmp}/fpmd.log\n"
# Lines 3-9 when it follows GLOBAL; an extra pool line is then line 10.
POOL = ("[www]\n"
        "app.type = cgi\n"
        "cgi.root = {tmp}\n"
        "user = nobody\n"
        "pm = static\n"
        "pm.max_children = 2\n"
        "listen = {tmp}/www.sock\n")


def in_global(line):
    """A [global] line: it is line 3."""
    return GLOBAL + line + "\n" + POOL


def in_pool(line):
    """A pool line: it is line 10."""
    return GLOBAL + POOL + line + "\n"


# (config text, substring of the message, line)
BROKEN = [
    # [global] values
    (in_global("log_level = loud"), "log_level: 'loud' is not one of", 3),
    (in_global("log_limit = 100"), "log_limit: '100' must be 0 (unlimited) or at least 512", 3),
    (in_global("log_buffering = maybe"),
     "log_buffering: 'maybe' is not a valid boolean (use yes or no)", 3),
    (in_global("daemonize = perhaps"), "daemonize: 'perhaps' is not a valid boolean", 3),
    (in_global("emergency_restart_threshold = -1"),
     "emergency_restart_threshold: '-1' must be a non-negative integer", 3),
    (in_global("emergency_restart_interval = 5y"),
     "emergency_restart_interval: '5y' is not a valid time (use a number with s, m, h or d)", 3),
    (in_global("process_control_timeout = soon"),
     "process_control_timeout: 'soon' is not a valid time", 3),
    (in_global("process.max = many"), "process.max: 'many' must be a non-negative integer", 3),
    (in_global("process.priority = 50"),
     "process.priority: '50' must be an integer between -19 and 20", 3),
    (in_global("rlimit_files = lots"),
     "rlimit_files: 'lots' must be a non-negative integer or 'unlimited'", 3),
    (in_global("rlimit_core = -1"), "rlimit_core: '-1' must be a non-negative integer", 3),
    (in_global("events.mechanism = io_uring"), "events.mechanism: 'io_uring' is not one of", 3),
    (in_global("systemd_interval = 1w"), "systemd_interval: '1w' is not a valid time", 3),
    (in_global("syslog.facility = local9"), "syslog.facility: 'local9' is not one of", 3),
    (in_global("log_format = xml"), "log_format: 'xml' is not one of plain, json", 3),
    (in_global("daemonise = no"), "unknown entry 'daemonise' (did you mean 'daemonize'?)", 3),
    (in_global("pm = static"), "'pm' belongs in a pool section, not [global]", 3),
    (in_global("error_log = /var/log/$pool.log"),
     "error_log: '$pool' can only be used in a pool section", 3),
    # pool values
    (in_pool("pm = adaptive"), "pm: 'adaptive' is not one of static, dynamic, ondemand", 10),
    (in_pool("pm.max_children = 0"), "pm.max_children: '0' must be a positive integer", 10),
    (in_pool("pm.max_children = abc"), "pm.max_children: 'abc' must be a positive integer", 10),
    (in_pool("pm.max_childs = 5"),
     "unknown entry 'pm.max_childs' (did you mean 'pm.max_children'?)", 10),
    (in_pool("pm.max_spawn_rate = 0"), "pm.max_spawn_rate: '0' must be a positive integer", 10),
    (in_pool("pm.process_idle_timeout = 0"),
     "pm.process_idle_timeout: '0' must be at least 1s", 10),
    (in_pool("pm.max_requests = -1"), "pm.max_requests: '-1' must be a non-negative integer", 10),
    (in_pool("pm.max_requests_jitter = -1"),
     "pm.max_requests_jitter: '-1' must be a non-negative integer", 10),
    (in_pool("pm.status_path = status"), "pm.status_path: 'status' must start with '/'", 10),
    (in_pool("ping.path = /pi%20ng"), "ping.path: '/pi%20ng' may only contain", 10),
    (in_pool("listen.backlog = -5"), "listen.backlog: '-5' must be -1 or a non-negative", 10),
    (in_pool("listen.mode = 999"), "listen.mode: '999' is not a valid octal mode", 10),
    (in_pool("listen = 70000"), "listen: '70000' has an invalid port", 10),
    (in_pool("process.dumpable = sometimes"), "process.dumpable: 'sometimes' is not a valid boolean",
     10),
    (in_pool("request_terminate_timeout = 10x"),
     "request_terminate_timeout: '10x' is not a valid time", 10),
    (in_pool("request_slowlog_timeout = abc"), "request_slowlog_timeout: 'abc' is not a valid time",
     10),
    (in_pool("request_slowlog_trace_depth = 0"),
     "request_slowlog_trace_depth: '0' must be a positive integer", 10),
    (in_pool("catch_workers_output = maybe"),
     "catch_workers_output: 'maybe' is not a valid boolean (use yes or no)", 10),
    (in_pool("decorate_workers_output = 2"), "decorate_workers_output: '2' is not a valid boolean",
     10),
    (in_pool("clear_env = nah"), "clear_env: 'nah' is not a valid boolean", 10),
    (in_pool("chroot = relative/dir"), "chroot: 'relative/dir' must be an absolute path", 10),
    (in_pool("cgi.root = relative"), "cgi.root: 'relative' must be an absolute path", 10),
    (in_pool("cgi.allow[] = cgit.cgi"), "cgi.allow: 'cgit.cgi' must be an absolute path", 10),
    (in_pool("cgi.interpreter[.py] = python3"),
     "cgi.interpreter[.py]: 'python3' must be an absolute path", 10),
    (in_pool("cgi.stderr = syslog"), "cgi.stderr: 'syslog' is not one of log, client, both", 10),
    (in_pool("module.path = m.so"), "module.path: 'm.so' must be an absolute path", 10),
    (in_pool("request.max_params_size = 10"), "request.max_params_size: '10' must be at least 1K",
     10),
    (in_pool("request.max_body_size = lots"),
     "request.max_body_size: 'lots' is not a valid size (use a number with K, M or G)", 10),
    (in_pool("access.suppress_path[] = ping"), "Values provided to field 'access.suppress_path' must begin with '/'",
     10),
    (in_pool("pid = /run/x.pid"), "'pid' belongs in [global], not in pool www", 10),
    (in_pool("env[] = x"), "You must provide a key for field 'env'", 10),
    (in_pool("php_value = 1"), "'php_value' needs a key: php_value[KEY] = value", 10),
    (in_pool("app.type = fastcgi"), "app.type: 'fastcgi' is not one of cgi, module, exec, php", 10),
    (in_pool("security.limit_extensions[x] = .php"),
     "'security.limit_extensions' does not take a [key]", 10),
    # syntax
    (in_pool("pm.max_requests 5"), "expected 'key = value' after 'pm.max_requests'", 10),
    (in_pool('ping.response = "pong'), "ping.response: unterminated quoted value", 10),
    (in_pool('ping.response = "pong" trailing'),
     "ping.response: unexpected text after the closing quote", 10),
    ("pm = static\n" + GLOBAL + POOL, "'pm' appears before any section", 1),
    # rules across directives: reported at the pool's [section] line
    (GLOBAL + POOL + "pm = dynamic\npm.min_spare_servers = 5\npm.max_spare_servers = 3\n",
     "pool www: pm.min_spare_servers (5) must not be greater than pm.max_spare_servers (3)", 3),
    (GLOBAL + POOL + "pm = dynamic\npm.min_spare_servers = 1\npm.max_spare_servers = 5\n",
     "pool www: pm.max_spare_servers (5) must not be greater than pm.max_children (2)", 3),
    (GLOBAL + POOL + "pm = dynamic\npm.min_spare_servers = 1\npm.max_spare_servers = 2\n"
     "pm.start_servers = 3\n",
     "pool www: pm.start_servers (3) must not be greater than pm.max_spare_servers (2)", 3),
    (GLOBAL + POOL + "request_slowlog_timeout = 5s\n",
     "slowlog must be set when request_slowlog_timeout (5s) is greater than 0", 3),
    (GLOBAL + POOL + "request_slowlog_timeout = 5s\nslowlog = {tmp}/slow.log\n"
     "request_terminate_timeout = 3s\n",
     "pool www: 'request_slowlog_timeout' (5) can't be greater than 'request_terminate_timeout' (3)", 3),
    (GLOBAL + POOL.replace("pm = static\n", ""),
     "pool www: pm is not set; choose one of static, dynamic, ondemand", 3),
    (GLOBAL + POOL.replace("listen = {tmp}/www.sock\n", ""), "pool www: listen is not set", 3),
    (GLOBAL + POOL.replace("cgi.root = {tmp}\n", ""),
     "pool www: app.type = cgi needs at least one cgi.root or cgi.allow[]", 3),
    (GLOBAL + POOL + "[two]\napp.type = php\nuser = nobody\npm = static\npm.max_children = 1\n"
     "listen = {tmp}/www.sock\n",
     "pool two: listen '{tmp}/www.sock' is already used by pool www (its listen)", 15),
    (GLOBAL + POOL.replace("app.type = cgi\ncgi.root = {tmp}\n",
                           "app.type = module\n"),
     "pool www: app.type = module needs module.path", 3),
    (GLOBAL + POOL.replace("app.type = cgi\ncgi.root = {tmp}\n",
                           "app.type = exec\n"),
     "pool www: app.type = exec needs exec.command", 3),
    # what the system says, at the line that asked for it (conf_check.c)
    (GLOBAL + POOL.replace("cgi.root = {tmp}\n", "cgi.root = {tmp}/nope\n"),
     "pool www: cgi.root '{tmp}/nope' does not exist or is not a directory", 5),
    (in_pool("listen.allowed_clients = 127.0.0.1, 10.0.0.300"),
     "pool www: wrong IP address '10.0.0.300' in listen.allowed_clients", 10),
    (GLOBAL + POOL.replace("listen = {tmp}/www.sock", "listen = {tmp}/nodir/sub/www.sock"),
     "pool www: unable to bind listening socket for address '{tmp}/nodir/sub/www.sock': "
     "the directory '{tmp}/nodir' does not exist", 9),
    (GLOBAL + "include = {tmp}/nonexist.d/*.conf\n" + POOL,
     "include '{tmp}/nonexist.d/*.conf': its directory does not exist", 3),
    (in_pool("slowlog = /nonexistent/dir/slow.log"),
     "slowlog: the directory '/nonexistent/dir' of '/nonexistent/dir/slow.log' does not exist", 10),
    (in_pool("access.log = /nonexistent/access.log"),
     "access.log: the directory '/nonexistent' of '/nonexistent/access.log' does not exist", 10),
]


def run(*args):
    return subprocess.run([FPMD, *args], capture_output=True, text=True, timeout=30)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace("{tmp}", str(tmp_path)))
    return str(path)


def assert_reported(stderr, path, line, substring):
    """One stderr line carries both [path:line] and the message."""
    where = "[%s:%d] " % (path, line)
    for text in stderr.splitlines():
        if where in text and substring in text:
            return
    pytest.fail("no line with %r and %r in stderr:\n%s" % (where, substring, stderr))


@pytest.fixture(autouse=True)
def need_binary():
    if not os.access(FPMD, os.X_OK):
        pytest.skip("%s is not built" % FPMD)


def test_table_is_large_enough():
    assert len(BROKEN) >= 45


@pytest.mark.parametrize("text,message,line", BROKEN,
                         ids=["%02d-%s" % (i, re.sub(r"[^A-Za-z0-9_.]+", "-", b[1])[:40])
                              for i, b in enumerate(BROKEN)])
def test_broken_config(tmp_path, text, message, line):
    path = write(tmp_path, "fpmd.conf", text)
    r = run("-t", "-y", path)
    assert r.returncode == EX_CONFIG, r.stderr
    assert_reported(r.stderr, path, line, message.replace("{tmp}", str(tmp_path)))
    assert "ERROR: " in r.stderr


def test_good_config(tmp_path):
    path = write(tmp_path, "fpmd.conf", GLOBAL + POOL)
    r = run("-t", "-y", path)
    assert r.returncode == 0, r.stderr
    assert "configuration file %s test is successful" % path in r.stdout + r.stderr
    assert "ERROR" not in r.stderr


def test_user_needed_as_root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root needs user")
    path = write(tmp_path, "fpmd.conf", GLOBAL + POOL.replace("user = nobody\n", ""))
    r = run("-t", "-y", path)
    assert r.returncode == EX_CONFIG
    assert_reported(r.stderr, path, 3, "pool www: user is not set")
    assert "-R" in r.stderr
    # -R lets the workers run as root
    r = run("-t", "-R", "-y", path)
    assert r.returncode == 0, r.stderr


def test_three_errors_all_reported(tmp_path):
    text = (GLOBAL + "log_level = loud\n" + POOL
            + "pm.max_childs = 4\nclear_env = nah\n")
    path = write(tmp_path, "fpmd.conf", text)
    r = run("-t", "-y", path)
    assert r.returncode == EX_CONFIG
    assert_reported(r.stderr, path, 3, "log_level: 'loud'")
    assert_reported(r.stderr, path, 11,
                    "unknown entry 'pm.max_childs' (did you mean 'pm.max_children'?)")
    assert_reported(r.stderr, path, 12, "clear_env: 'nah' is not a valid boolean")
    assert sum(1 for ln in r.stderr.splitlines() if "ERROR: [%s:" % path in ln) == 3


@pytest.mark.parametrize("line,message", [
    ("pm = dynamc", "pm: 'dynamc' is not one of static, dynamic, ondemand"),
    ("pm.max_children = 0", "pm.max_children: '0' must be a positive integer"),
])
def test_a_refused_value_is_one_error_not_also_not_set(tmp_path, line, message):
    """A directive whose value is refused is not also "not set" at the section."""
    key = line.split(" = ")[0]
    path = write(tmp_path, "fpmd.conf", GLOBAL + POOL.replace(
        "pm = static\n" if key == "pm" else "pm.max_children = 2\n", line + "\n"))
    r = run("-t", "-y", path)
    assert r.returncode == EX_CONFIG
    errors = [ln for ln in r.stderr.splitlines() if "ERROR: [%s:" % path in ln]
    assert len(errors) == 1 and message in errors[0], r.stderr
    assert "is not set" not in r.stderr


def test_a_section_or_directive_given_twice_in_one_file_is_a_warning(tmp_path):
    """php-fpm merges them silently; the first value is lost, so -t says so
    (in another file a section continues without a word: pool.d overrides)."""
    text = GLOBAL + POOL + "listen = {tmp}/other.sock\n[www]\npm.max_children = 3\n"
    path = write(tmp_path, "fpmd.conf", text)
    r = run("-t", "-y", path)
    assert r.returncode == 0, r.stderr
    assert_reported(r.stderr, path, 10, "listen is set again (first at line 9); the last value counts")
    assert_reported(r.stderr, path, 11, "[www] opened again (first at line 3)")
    assert_reported(r.stderr, path, 12, "pm.max_children is set again (first at line 8)")
    write(tmp_path, "pool.d/zz.conf", "[www]\npm.max_children = 4\n")
    main = write(tmp_path, "main.conf", GLOBAL + POOL + "include = {tmp}/pool.d/*.conf\n")
    r = run("-t", "-y", main)
    assert r.returncode == 0 and "WARNING" not in r.stderr, r.stderr


def test_apparmor_hat_without_apparmor_is_a_warning_at_its_line(tmp_path):
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            if f.read().startswith("Y"):
                pytest.skip("AppArmor is enabled here")
    except OSError:
        pass
    path = write(tmp_path, "fpmd.conf", in_pool("apparmor_hat = fpmd-www"))
    r = run("-t", "-y", path)
    # php-fpm starts such a pool (php-src's pool-apparmor-basic test expects -t to pass)
    assert r.returncode == 0, r.stderr
    assert_reported(r.stderr, path, 10, "pool www: apparmor_hat = fpmd-www needs AppArmor, which "
                    "is not enabled on this system")
    assert "WARNING: [%s:10]" % path in r.stderr


def test_a_missing_cgi_root_stops_the_start(tmp_path):
    """Not only -t: the start refuses it, where before the pool said it was
    ready and its workers exited one after the other."""
    path = write(tmp_path, "fpmd.conf", GLOBAL + POOL.replace("cgi.root = {tmp}\n",
                                                             "cgi.root = {tmp}/nope\n"))
    try:
        r = subprocess.run([FPMD, "-F", "-O", "-y", path], capture_output=True, text=True,
                           timeout=10)
    except subprocess.TimeoutExpired as e:
        pytest.fail("fpmd started and served with a missing cgi.root: %s" % (e.stdout or b"")[-2000:])
    assert r.returncode == EX_CONFIG, r.stdout + r.stderr
    assert "cgi.root '%s/nope' does not exist" % tmp_path in r.stdout + r.stderr
    assert "ready to handle connections" not in r.stdout + r.stderr


def test_error_in_included_file(tmp_path):
    write(tmp_path, "pool.d/www.conf",
          POOL + "; a comment\npm.max_spawn_rate = none\n")
    main = write(tmp_path, "fpmd.conf", GLOBAL + "include = {tmp}/pool.d/*.conf\n")
    r = run("-t", "-y", main)
    assert r.returncode == EX_CONFIG
    inc = str(tmp_path / "pool.d" / "www.conf")
    assert_reported(r.stderr, inc, 9, "pm.max_spawn_rate: 'none' must be a positive integer")


def test_include_is_read(tmp_path):
    write(tmp_path, "pool.d/www.conf", POOL)
    main = write(tmp_path, "fpmd.conf", GLOBAL + "include = {tmp}/pool.d/*.conf\n")
    r = run("-t", "-y", main)
    assert r.returncode == 0, r.stderr


def test_dump_round_trip(tmp_path):
    text = (GLOBAL + "log_level = debug\nlog_limit = 0\nprocess_control_timeout = 1m\n"
            + POOL
            + "cgi.allow[] = /usr/lib/cgit/cgit.cgi\n"
            + "cgi.interpreter[.py] = /usr/bin/python3\n"
            + "env[PATH] = /usr/bin:/bin\n"
            + 'access.format = "%R - %u %t \\"%m %r%Q%q\\" %s"\n'
            + "access.suppress_path[] = /ping\n"
            + "ping.path = /ping\nping.response = \"all good\"\n"
            + "[second]\napp.type = cgi\ncgi.root = {tmp}\nuser = nobody\npm = dynamic\n"
            + "pm.max_children = 8\npm.min_spare_servers = 2\npm.max_spare_servers = 4\n"
            + "listen = 127.0.0.1:19123\nsecurity.limit_extensions = \"\"\n")
    path = write(tmp_path, "fpmd.conf", text)
    r1 = run("-T", "-y", path)
    assert r1.returncode == 0, r1.stderr
    assert "[global]" in r1.stdout and "[www]" in r1.stdout and "[second]" in r1.stdout
    assert "app.type = cgi" in r1.stdout
    assert "pm.start_servers = 3" in r1.stdout
    dumped = tmp_path / "dumped.conf"
    dumped.write_text(r1.stdout)
    r2 = run("-t", "-y", str(dumped))
    assert r2.returncode == 0, r2.stderr
    r3 = run("-T", "-y", str(dumped))
    assert r3.returncode == 0, r3.stderr
    assert r3.stdout == r1.stdout


def test_unknown_option(tmp_path):
    r = run("-x")
    assert r.returncode == EX_USAGE


def test_dump_still_shows_the_resolved_text_when_only_the_system_refuses_it(tmp_path):
    """-T after a system check failed (a directory missing): the effective
    configuration is printed, then 78, as php-fpm's -tt dumps before its errors."""
    path = write(tmp_path, "fpmd.conf", GLOBAL + POOL.replace("cgi.root = {tmp}\n",
                                                             "cgi.root = {tmp}/nope\n"))
    r = run("-T", "-y", path)
    assert r.returncode == EX_CONFIG
    assert "cgi.root = %s/nope" % tmp_path in r.stdout
    assert "does not exist" in r.stderr


def test_php_cgi_in_a_cgi_root_open_to_every_name_is_a_warning(tmp_path):
    """Debian's php8.2-cgi lives in /usr/lib/cgi-bin, the README's cgi.root: with
    an empty security.limit_extensions a client names it and php-cgi runs any
    file PATH_TRANSLATED names as PHP."""
    cgi = tmp_path / "cgi-bin"
    cgi.mkdir()
    php = cgi / "php8.2"
    php.write_text("#!/bin/sh\n")
    php.chmod(0o755)
    text = GLOBAL + POOL.replace("cgi.root = {tmp}\n", "cgi.root = {tmp}/cgi-bin\n") \
        + 'security.limit_extensions = ""\n'
    path = write(tmp_path, "fpmd.conf", text)
    r = run("-t", "-y", path)
    assert r.returncode == 0, r.stderr
    assert_reported(r.stderr, path, 10, "holds php-cgi (php8.2) and security.limit_extensions "
                    "allows every name")
    r = run("-t", "-y", write(tmp_path, "ok.conf", GLOBAL + POOL.replace(
        "cgi.root = {tmp}\n", "cgi.root = {tmp}/cgi-bin\n")))
    assert "php-cgi" not in r.stderr
