"""Issue #14, packaging: the systemd units, the man pages, `make install`, the .deb.

The .deb test builds with dpkg-buildpackage in a copy of the tree (about a
minute on two cores); it is skipped, with the reason, where Debian's
packaging tools are missing.
"""
import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile

import pytest

import conftest
from conftest import FPMCTL, basic_conf, fcgi_request, pool_conf, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MAN_PAGES = sorted(glob.glob(os.path.join(ROOT, "docs/man/*.[158]")))


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    # Run from `make test SAN=1`, make's own variables would reach the nested make
    # and debian/rules (a sanitized package): these builds start clean.
    kw.setdefault("env", {k: v for k, v in os.environ.items()
                          if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES",
                                       "SAN", "BUILD", "CFLAGS", "LDFLAGS")})
    return subprocess.run(cmd, **kw)


@pytest.fixture(scope="module")
def installed():
    """`make install PREFIX=/usr DESTDIR=tmp`: the tree the tests below inspect."""
    dest = tempfile.mkdtemp(prefix="fpmd-destdir-", dir="/tmp")
    try:
        build = os.path.join(dest, ".build")
        # As the quick start does: `make`, then `make install PREFIX=/usr`.  PREFIX is
        # compiled in (default paths, fpmd-php.so's directory): the install rebuilds.
        for args in ([], ["install", "PREFIX=/usr", f"DESTDIR={dest}"]):
            r = run(["make", "-j2", "-C", ROOT, f"BUILD={build}", *args])
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        shutil.rmtree(build, ignore_errors=True)
        yield dest
    finally:
        shutil.rmtree(dest, ignore_errors=True)


# --- make install -------------------------------------------------------------

def test_make_install_tree(installed):
    for path in ("usr/sbin/fpmd", "usr/bin/fpmctl", "usr/include/fpmd/module.h",
                 "usr/share/pkgconfig/fpmd-module.pc", "usr/share/man/man8/fpmd.8",
                 "usr/share/man/man5/fpmd.conf.5", "usr/share/man/man1/fpmctl.1",
                 "etc/fpmd/fpmd.conf", "usr/share/doc/fpmd/examples/fpmd.conf"):
        assert os.path.exists(os.path.join(installed, path)), path
    if os.path.exists(os.path.join(conftest.BUILD, "fpmd-php.so")):
        assert os.path.exists(os.path.join(installed, "usr/lib/fpmd/fpmd-php.so"))
    # PREFIX=/usr puts the configuration in /etc, not /usr/etc.
    assert not os.path.exists(os.path.join(installed, "usr/etc"))
    # The installed fpmd looks for fpmd-php.so where it was installed.
    binary = open(os.path.join(installed, "usr/sbin/fpmd"), "rb").read()
    assert b"/usr/lib/fpmd\0" in binary and b"/usr/local/lib/fpmd" not in binary


def test_installed_example_config_checks(installed):
    """The installed fpmd accepts the installed example configuration (`fpmd -t`)."""
    fpmd = os.path.join(installed, "usr/sbin/fpmd")
    conf = os.path.join(installed, "etc/fpmd/fpmd.conf")
    r = run([fpmd, "-t", "-y", conf])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test is successful" in r.stdout + r.stderr
    r = run([fpmd, "-v"])
    assert r.returncode == 0 and "fpmd" in r.stdout


def test_make_install_keeps_an_edited_config(installed, tmp_path):
    """A second `make install` never overwrites /etc/fpmd/fpmd.conf an admin edited."""
    conf = os.path.join(installed, "etc/fpmd/fpmd.conf")
    with open(conf, "a") as f:
        f.write("; edited by the admin\n")
    r = run(["make", "-C", ROOT, "install", "PREFIX=/usr", f"DESTDIR={installed}",
             f"BUILD={tmp_path}/build"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert open(conf).read().endswith("; edited by the admin\n")


# --- man pages ----------------------------------------------------------------

def test_man_pages_render_without_warnings():
    assert len(MAN_PAGES) == 3
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
    checked = 0
    for page in MAN_PAGES:
        if shutil.which("mandoc"):
            r = run(["mandoc", "-Tlint", "-Wwarning", page], env=env)
            assert r.returncode == 0 and not r.stdout.strip(), f"{page}: {r.stdout}{r.stderr}"
            checked += 1
        if shutil.which("groff"):
            r = run(["groff", "-man", "-Tutf8", "-ww", "-z", page], env=env)
            assert r.returncode == 0 and not r.stderr.strip(), f"{page}: {r.stderr}"
            checked += 1
        if shutil.which("man"):
            r = run(["man", "--warnings", "-l", page], env=env)
            assert r.returncode == 0, f"{page}: {r.stderr}"
            assert not r.stderr.strip(), f"{page}: {r.stderr}"
            assert len(r.stdout.splitlines()) > 20
            checked += 1
    if not checked:
        pytest.skip("none of mandoc, groff, man is installed (Debian: man-db, groff-base)")


# --- systemd units --------------------------------------------------------------

def test_unit_files_verify(installed, tmp_path):
    """systemd-analyze verify on fpmd.service and fpmd.socket, their commands pointed
    at the binaries `make install` put in DESTDIR (systemd checks they exist)."""
    tool = shutil.which("systemd-analyze")
    if not tool:
        pytest.skip("systemd-analyze is not installed (Debian: systemd)")
    for unit in ("fpmd.service", "fpmd.socket"):
        text = open(os.path.join(ROOT, "contrib", unit)).read()
        text = text.replace("/usr/sbin/fpmd", f"{installed}/usr/sbin/fpmd")
        text = text.replace("/usr/bin/fpmctl", f"{installed}/usr/bin/fpmctl")
        (tmp_path / unit).write_text(text)
    r = run([tool, "verify", "--man=no", str(tmp_path / "fpmd.socket"), str(tmp_path / "fpmd.service")])
    assert r.returncode == 0 and not r.stderr.strip(), r.stdout + r.stderr


def test_socket_unit_names_the_service():
    text = open(os.path.join(ROOT, "contrib/fpmd.socket")).read()
    assert "Service=fpmd.service" in text and "ListenStream=/run/fpmd/www.sock" in text
    service = open(os.path.join(ROOT, "contrib/fpmd.service")).read()
    # /run/fpmd holds the socket unit's sockets: a stopped service must not remove it.
    assert "RuntimeDirectoryPreserve=yes" in service


def test_socket_activation_keeps_systemds_path(fpmd, workdir):
    """Sockets systemd made (here: systemd-socket-activate) survive a reload as systemd's,
    and fpmd leaves their paths when it stops, so the socket unit stays reachable;
    a socket fpmd bound itself is removed as before."""
    activate = shutil.which("systemd-socket-activate")
    if not activate:
        pytest.skip("systemd-socket-activate is not installed (Debian: systemd)")
    sock, own = f"{workdir}/www.sock", f"{workdir}/own.sock"
    fpmd.write_conf(basic_conf(workdir, pools=pool_conf(workdir) + "\n" + pool_conf(workdir, name="own"),
                               global_extra=f"control_socket = {workdir}/c.ctl"))
    wrapper = f"{workdir}/activate.sh"
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec {activate} -l {sock} {conftest.FPMD} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    saved, conftest.FPMD = conftest.FPMD, wrapper
    try:
        fpmd.start(wait_ready=False)
        assert wait_for(lambda: os.path.exists(sock), 10)
        assert fcgi_request(sock, "/ping", timeout=10).body == b"pong"
    finally:
        conftest.FPMD = saved
    fpmd.wait_log(r"socket activation: fd=3")
    assert wait_for(lambda: os.path.exists(own), 10)
    r = run([FPMCTL, "reload", "-c", f"{workdir}/c.ctl"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert fcgi_request(sock, "/ping", timeout=10).body == b"pong"
    fpmd.signal(signal.SIGQUIT)
    fpmd.wait(20)
    assert os.path.exists(sock), fpmd.log()
    assert not os.path.exists(own), fpmd.log()


# --- the Debian package -----------------------------------------------------------

DEB_FILES = ("./usr/sbin/fpmd", "./usr/bin/fpmctl", "./usr/lib/fpmd/fpmd-php.so",
             "./usr/share/man/man8/fpmd.8.gz", "./usr/share/man/man5/fpmd.conf.5.gz",
             "./usr/share/man/man1/fpmctl.1.gz", "./lib/systemd/system/fpmd.service",
             "./lib/systemd/system/fpmd.socket", "./etc/fpmd/fpmd.conf",
             "./etc/logrotate.d/fpmd", "./usr/lib/tmpfiles.d/fpmd.conf",
             "./usr/include/fpmd/module.h", "./usr/share/doc/fpmd/copyright", "./etc/fpmd/pool.d/")


@pytest.fixture(scope="module")
def deb():
    """dpkg-buildpackage -us -uc -b in a copy of the tree (tracked and new files, no
    build directories): the .deb's path."""
    for tool in ("dpkg-buildpackage", "dh", "dpkg-checkbuilddeps"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (Debian: dpkg-dev, debhelper; scripts/deps.sh test)")
    r = run(["dpkg-checkbuilddeps", os.path.join(ROOT, "debian/control")])
    if r.returncode != 0:
        pytest.skip(f"the package's build dependencies are missing: {r.stderr.strip()}")
    top = tempfile.mkdtemp(prefix="fpmd-deb-", dir="/tmp")
    try:
        src = os.path.join(top, "fpmd")
        os.mkdir(src)
        files = run(["git", "-C", ROOT, "ls-files", "-z", "-co", "--exclude-standard"]).stdout
        subprocess.run(f"tar -C {ROOT} --null -T - -cf - | tar -C {src} -xf -", shell=True,
                       input=files.encode(), check=True)
        r = run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src)
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
        debs = glob.glob(os.path.join(top, "fpmd_*.deb"))
        assert len(debs) == 1, os.listdir(top)
        yield debs[0]
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_deb_contents(deb):
    listing = run(["dpkg-deb", "-c", deb]).stdout
    paths = {line.split()[-1] for line in listing.splitlines()}
    missing = [p for p in DEB_FILES if p not in paths]
    assert not missing, listing
    info = run(["dpkg-deb", "-I", deb]).stdout
    assert "Package: fpmd" in info and "libphp8.2-embed" in info
    ctl = tempfile.mkdtemp(prefix="fpmd-debctl-", dir="/tmp")
    try:
        run(["dpkg-deb", "-e", deb, ctl], check=True)
        conffiles = open(os.path.join(ctl, "conffiles")).read().split()
        assert "/etc/fpmd/fpmd.conf" in conffiles
        # fpmd.service is enabled at install; fpmd.socket is left to the admin.
        postinst = open(os.path.join(ctl, "postinst")).read()
        assert "fpmd.service" in postinst
    finally:
        shutil.rmtree(ctl, ignore_errors=True)


def test_deb_extracted_fpmd_serves(deb, fpmd, workdir):
    """The packaged binaries, extracted (dpkg-deb -x): -v, -t on the packaged
    configuration, PHP through the packaged fpmd-php.so, a cgi pool answering /ping."""
    root = os.path.join(workdir, "root")
    run(["dpkg-deb", "-x", deb, root], check=True)
    bin_fpmd = os.path.join(root, "usr/sbin/fpmd")
    # fpmd looks for fpmd-php.so next to itself, then in /usr/lib/fpmd (not this
    # tree's): a copy of the packaged fpmd beside the packaged fpmd-php.so loads it.
    beside = os.path.join(root, "usr/lib/fpmd/fpmd")
    shutil.copy(bin_fpmd, beside)
    r = run([beside, "-v"])
    assert r.returncode == 0 and "(fpm-fcgi; fpmd " in r.stdout, r.stdout + r.stderr
    r = run([bin_fpmd, "-t", "-y", os.path.join(root, "etc/fpmd/fpmd.conf")])
    assert r.returncode == 0, r.stdout + r.stderr
    r = run([os.path.join(root, "usr/bin/fpmctl"), "--help"])
    assert r.returncode == 0
    saved, conftest.FPMD = conftest.FPMD, bin_fpmd
    try:
        fpmd.start(basic_conf(workdir))
    finally:
        conftest.FPMD = saved
    assert fcgi_request(f"{workdir}/www.sock", "/ping").body == b"pong"


def test_deb_installs_and_purges(deb):
    """dpkg -i on this machine, then dpkg --purge: the package installs with its
    dependencies present, its binaries run from /usr, its configuration checks,
    fpmd.service is enabled (not fpmd.socket), and purging leaves nothing behind."""
    if os.geteuid() != 0:
        pytest.skip("dpkg -i needs root")
    if run(["dpkg-query", "-W", "-f=${Status}", "fpmd"]).stdout.strip():
        pytest.skip("an fpmd package is already installed here: not touching it")
    taken = [p for p in ("/usr/sbin/fpmd", "/usr/bin/fpmctl", "/etc/fpmd") if os.path.lexists(p)]
    if taken:
        pytest.skip(f"{taken} exist outside dpkg (make install PREFIX=/usr?): not overwriting them")
    wants = "/etc/systemd/system/multi-user.target.wants/fpmd.service"
    try:
        r = run(["dpkg", "-i", deb])
        assert r.returncode == 0, r.stdout + r.stderr
        status = run(["dpkg-query", "-W", "-f=${Status} ${Version}", "fpmd"]).stdout
        assert status.startswith("install ok installed"), status
        r = run(["/usr/sbin/fpmd", "-v"])
        assert r.returncode == 0 and "fpmd" in r.stdout, r.stdout + r.stderr
        # The packaged configuration, from its packaged path, with the packaged
        # fpmd-php.so (/usr/lib/fpmd) for its php pool.
        r = run(["/usr/sbin/fpmd", "-t"])
        assert r.returncode == 0, r.stdout + r.stderr
        r = run(["/usr/bin/fpmctl", "--help"])
        assert r.returncode == 0, r.stdout + r.stderr
        assert os.path.exists("/usr/lib/fpmd/fpmd-php.so")
        assert os.path.islink(wants) and os.readlink(wants).endswith("/fpmd.service"), \
            "fpmd.service is not enabled by the postinst"
        assert not os.path.lexists("/etc/systemd/system/sockets.target.wants/fpmd.socket")
        r = run(["man", "-w", "fpmd.conf"])
        assert r.returncode == 0 and "/usr/share/man/man5/fpmd.conf.5" in r.stdout, r.stdout + r.stderr
        assert os.path.isdir("/etc/fpmd/pool.d")
        # The packaged fpmd with its packaged configuration, as `fpmd` by hand would start
        # it: its log, /run/fpmd and its sockets are what the purge must take away.
        if not os.path.exists("/run/fpmd.ctl") and not os.path.exists("/var/log/fpmd.log"):
            r = run(["/usr/sbin/fpmd"])
            assert r.returncode == 0, r.stdout + r.stderr
            assert os.path.exists("/run/fpmd/www.sock") and os.path.exists("/var/log/fpmd.log")
            r = run(["/usr/bin/fpmctl", "quit"])
            assert r.returncode == 0, r.stdout + r.stderr
    finally:
        r = run(["dpkg", "--purge", "fpmd"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert not run(["dpkg-query", "-W", "-f=${Status}", "fpmd"]).stdout.strip().startswith("install ok")
    left = [p for p in ("/usr/sbin/fpmd", "/usr/bin/fpmctl", "/usr/lib/fpmd", "/etc/fpmd",
                        "/lib/systemd/system/fpmd.service", wants, "/etc/logrotate.d/fpmd",
                        "/var/log/fpmd.log", "/run/fpmd", "/run/fpmd.pid", "/run/fpmd.ctl")
            if os.path.lexists(p)]
    assert not left, f"left behind after dpkg --purge: {left}"


# --- docs/quickstart.md, followed in a temp dir -----------------------------------

def heredocs(text):
    """The bodies of the `<<'CONF'` here-documents of a markdown file, in order."""
    out, lines, body = [], text.splitlines(), None
    for line in lines:
        if body is not None:
            if line.strip() == "CONF":
                out.append("\n".join(body) + "\n")
                body = None
            else:
                body.append(line)
        elif "<<'CONF'" in line:
            body = []
    return out


def test_quickstart_nginx_php_and_cgi(fpmd, workdir):
    """The quick start's pool file and nginx server block, with the paths moved into a
    temp dir: nginx (with Debian's snippets/fastcgi-php.conf) in front of the installed
    configuration's [www] php pool and the doc's [cgi] pool."""
    import pwd
    from test_nginx import NGINX, free_port, http_request, kill_group, port_open
    if os.geteuid() != 0 or not os.access(NGINX, os.X_OK):
        pytest.skip("needs root and nginx (the pools and nginx run as www-data)")
    if not os.path.exists(os.path.join(conftest.BUILD, "fpmd-php.so")):
        pytest.skip("fpmd-php.so is not built (libphp8.2-embed, php8.2-dev)")
    if not os.path.exists("/etc/nginx/snippets/fastcgi-php.conf"):
        pytest.skip("Debian's nginx-common snippets are not installed")
    pwd.getpwnam("www-data")
    cgi_conf, server = heredocs(open(os.path.join(ROOT, "docs/quickstart.md")).read())
    run_dir, html, lib = f"{workdir}/run", f"{workdir}/html", f"{workdir}/lib"
    for d in (run_dir, html, f"{lib}/cgi-bin", f"{workdir}/nginx"):
        os.makedirs(d)
        os.chmod(d, 0o755)

    def moved(text):
        return (text.replace("/run/fpmd/", run_dir + "/").replace("/usr/lib/cgi-bin", f"{lib}/cgi-bin")
                .replace("root /usr/lib;", f"root {lib};").replace("/var/www/html", html)
                .replace("/run/fpmd.pid", f"{workdir}/fpmd.pid").replace("/run/fpmd.ctl", f"{workdir}/fpmd.ctl")
                .replace("/var/log/fpmd.log", f"{workdir}/error.log")
                .replace("/etc/fpmd/pool.d", f"{workdir}/pool.d").replace("/etc/fpmd/fpmd.conf", fpmd.conf_path))

    # The installed configuration, its include turned on by the doc's own sed line,
    # and the doc's pool file in pool.d.
    with open(fpmd.conf_path, "w") as f:
        f.write(moved(open(os.path.join(ROOT, "contrib/fpmd.conf")).read()))
    doc = open(os.path.join(ROOT, "docs/quickstart.md")).read()
    sed = [line for line in doc.splitlines() if line.startswith("sed -i ") and "include" in line]
    assert len(sed) == 1
    subprocess.run(moved(sed[0]), shell=True, check=True)
    os.mkdir(f"{workdir}/pool.d")
    with open(f"{workdir}/pool.d/cgi.conf", "w") as f:
        f.write(moved(cgi_conf))
    fpmd.start()
    assert "[pool cgi]" in fpmd.log() or os.path.exists(f"{run_dir}/cgi.sock"), fpmd.log()
    with open(f"{lib}/cgi-bin/hello.sh", "w") as f:
        f.write('#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nhello from %s\\n" "$SCRIPT_NAME"\n')
    os.chmod(f"{lib}/cgi-bin/hello.sh", 0o755)
    with open(f"{html}/info.php", "w") as f:
        f.write('<?php echo "PHP ", PHP_VERSION, " via ", php_sapi_name(), "\\n";')
    os.chmod(f"{html}/info.php", 0o644)

    # The doc's checks without a web server.
    r = run([FPMCTL, "ping", "-s", f"unix:{run_dir}/www.sock"])
    assert r.returncode == 0, r.stdout + r.stderr
    r = run([FPMCTL, "request", "-s", f"unix:{run_dir}/cgi.sock", "--root", f"{lib}/cgi-bin", "/hello.sh"])
    assert r.returncode == 0 and r.stdout == "hello from /hello.sh\n", r.stdout + r.stderr

    # nginx resolves relative includes against its configuration's directory.
    for name in ("fastcgi.conf", "fastcgi_params", "snippets"):
        os.symlink(f"/etc/nginx/{name}", f"{workdir}/{name}")
    port = free_port()
    server = moved(server).replace("listen 80 default_server;", f"listen 127.0.0.1:{port};")
    p = f"{workdir}/nginx"
    with open(f"{workdir}/nginx.conf", "w") as f:
        f.write(f"daemon off;\nuser www-data www-data;\nworker_processes 1;\npid {p}/nginx.pid;\n"
                f"error_log {p}/error.log info;\nevents {{ worker_connections 64; }}\n"
                f"http {{\n access_log off;\n client_body_temp_path {p}/body;\n"
                f" fastcgi_temp_path {p}/fastcgi;\n proxy_temp_path {p}/proxy;\n"
                f" uwsgi_temp_path {p}/uwsgi;\n scgi_temp_path {p}/scgi;\n{server}}}\n")
    out = open(f"{p}/stderr.log", "ab")
    proc = subprocess.Popen([NGINX, "-c", f"{workdir}/nginx.conf", "-p", p], stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_for(lambda: proc.poll() is not None or port_open(port), 10), open(f"{p}/stderr.log").read()
        r = http_request(port, "/info.php")
        assert r.status == 200 and b" via fpm-fcgi" in r.body, (r, fpmd.log(), open(f"{p}/error.log").read())
        r = http_request(port, "/cgi-bin/hello.sh")
        assert r.status == 200 and r.body == b"hello from /cgi-bin/hello.sh\n", (r, fpmd.log())
        r = http_request(port, "/ping")
        assert r.status == 200 and r.body == b"pong"
        r = http_request(port, "/status?json")
        assert r.status == 200 and b'"pool":"www"' in r.body.replace(b" ", b"")
    finally:
        kill_group(proc)
        out.close()


# --- contrib/logrotate ---------------------------------------------------------------

def test_logrotate_reopens_the_logs(fpmd, workdir):
    """contrib/logrotate, its paths moved into a temp dir, run by logrotate -f: the logs
    are renamed and fpmd, told by USR1, writes new ones (error log and access log)."""
    tool = shutil.which("logrotate")
    if not tool:
        pytest.skip("logrotate is not installed (Debian: logrotate; scripts/deps.sh test)")
    logs = f"{workdir}/logs"
    os.mkdir(logs)
    os.chmod(logs, 0o755)
    conf = open(os.path.join(ROOT, "contrib/logrotate")).read()
    conf = (conf.replace("/var/log/fpmd.log", f"{workdir}/error.log")
            .replace("/var/log/fpmd/*.log", f"{logs}/*.log").replace("/run/fpmd.pid", f"{workdir}/fpmd.pid"))
    with open(f"{workdir}/logrotate.conf", "w") as f:
        f.write(conf)
    # -F without -O: the error log goes to its file only.
    fpmd.start(basic_conf(workdir, pools=pool_conf(workdir, extra=f"access.log = {logs}/www.access.log\n")),
               args=("-F",), wait_ready=False)
    assert wait_for(lambda: "ready to handle connections" in open_or_empty(f"{workdir}/error.log"), 10), fpmd.log()
    assert fcgi_request(f"{workdir}/www.sock", "/ping").body == b"pong"
    assert wait_for(lambda: os.path.getsize(f"{logs}/www.access.log") > 0, 5)
    r = run([tool, "-f", "-s", f"{workdir}/logrotate.state", f"{workdir}/logrotate.conf"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.path.exists(f"{workdir}/error.log.1") and os.path.exists(f"{logs}/www.access.log.1"), r.stderr
    assert wait_for(lambda: "error log file re-opened" in open_or_empty(f"{workdir}/error.log"), 10)
    # Access logs are reopened by workers replaced gracefully: the next request lands in the new file.
    assert wait_for(lambda: fcgi_request(f"{workdir}/www.sock", "/ping").body == b"pong"
                    and os.path.exists(f"{logs}/www.access.log")
                    and os.path.getsize(f"{logs}/www.access.log") > 0, 10)


def open_or_empty(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def test_help_names_the_default_config_read(installed):
    """`fpmd --help` names the file fpmd reads without -y: /etc/fpmd/fpmd.conf for
    PREFIX=/usr (issue 21, item 3), whatever -t finds there."""
    fpmd = os.path.join(installed, "usr/sbin/fpmd")
    help_text = run([fpmd, "--help"]).stdout
    assert "(default /etc/fpmd/fpmd.conf)" in help_text, help_text
    r = run([fpmd, "-t"])
    assert "/etc/fpmd/fpmd.conf" in r.stdout + r.stderr and "/usr/etc" not in r.stdout + r.stderr


def tree_copy(dest):
    """This working tree (tracked and new files, no build directories) in dest."""
    os.makedirs(dest)
    files = run(["git", "-C", ROOT, "ls-files", "-z", "-co", "--exclude-standard"]).stdout
    subprocess.run(f"tar -C {ROOT} --null -T - -cf - | tar -C {dest} -xf -", shell=True,
                   input=files.encode(), check=True)


def test_install_other_prefix_leaves_build_alone_and_uninstalls(tmp_path):
    """`make`, then `make install PREFIX=/opt/...`: build/ keeps its paths (issue 21,
    item 11); the installed fpmd and its configuration name the install's paths;
    `make uninstall` takes everything away again."""
    src, dest = str(tmp_path / "src"), str(tmp_path / "dest")
    prefix = "/opt/fpmd-prefix-test"
    tree_copy(src)
    r = run(["make", "-j2", "-C", src, "DEPS=0", "build/fpmd", "build/fpmctl"])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    before = open(f"{src}/build/fpmd", "rb").read()
    r = run(["make", "-j2", "-C", src, "DEPS=0", "install", f"PREFIX={prefix}", f"DESTDIR={dest}"])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert open(f"{src}/build/fpmd", "rb").read() == before, "make install rebuilt build/"
    assert "(default /usr/local/etc/fpmd/fpmd.conf)" in run([f"{src}/build/fpmd", "--help"]).stdout
    installed = f"{dest}{prefix}/sbin/fpmd"
    assert f"(default {prefix}/etc/fpmd/fpmd.conf)" in run([installed, "--help"]).stdout
    conf = open(f"{dest}{prefix}/etc/fpmd/fpmd.conf").read()
    assert f"include = {prefix}/etc/fpmd/pool.d/*.conf" in conf
    assert all(conf[:m.start()].endswith(prefix) for m in re.finditer("/etc/fpmd/", conf)), conf
    assert os.path.isdir(f"{dest}{prefix}/etc/fpmd/pool.d")
    unit = open(f"{dest}{prefix}/lib/systemd/system/fpmd.service").read()
    assert f"{prefix}/sbin/fpmd -F -y {prefix}/etc/fpmd/fpmd.conf" in unit

    r = run(["make", "-C", src, "DEPS=0", "uninstall", f"PREFIX={prefix}", f"DESTDIR={dest}"])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    left = [os.path.join(d, f) for d, _, files in os.walk(dest) for f in files]
    assert not left, left
