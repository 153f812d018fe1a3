"""access.log with php-fpm's access.format codes, suppress_path, USR1 reopen."""
import os
import re
import signal

from conftest import basic_conf, fcgi_request, pool_conf, wait_for, write_script

EVERY_CODE = ('%% %C %{user}C %d %{milli}d %{micro}d %{NOT_SENT}e %{HTTP_HOST}e %f %l %m %M %{kilo}M %n '
              '%{Content-Type}o %p %P %q %Q %r %R %s %t %{%Y}t %T %u')


def lines(path):
    return [line for line in open(path).read().splitlines() if line]


def start(fpmd, workdir, fmt=None, extra=""):
    write_script(f"{workdir}/hello.sh",
                 "#!/bin/sh\nprintf 'Status: 201 Created\\r\\nContent-Type: text/x-test\\r\\n\\r\\nhi'\n")
    log = f"{workdir}/access.log"
    fmt_line = f"access.format = \"{fmt}\"\n" if fmt else ""
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1,
                                             extra=f"access.log = {log}\n{fmt_line}{extra}")))
    return log


def test_default_format_is_php_fpms(fpmd, workdir):
    log = start(fpmd, workdir)
    fcgi_request(f"{workdir}/www.sock", "/hello.sh?x=1", root=workdir, extra={"REMOTE_USER": "alice"})
    assert wait_for(lambda: os.path.exists(log) and lines(log))
    line = lines(log)[0]
    assert re.fullmatch(r'127\.0\.0\.1 - alice \d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4} "GET /hello\.sh" 201', line), line
    # without a user, php-fpm8.2 writes nothing for %u: "127.0.0.1 -  07/Dec/..."
    fcgi_request(f"{workdir}/www.sock", "/hello.sh", root=workdir)
    assert wait_for(lambda: len(lines(log)) == 2)
    line = lines(log)[1]
    assert re.fullmatch(r'127\.0\.0\.1 -  \d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4} "GET /hello\.sh" 201', line), line


def test_every_code(fpmd, workdir):
    log = start(fpmd, workdir, EVERY_CODE.replace('"', '\\"'))
    fcgi_request(f"{workdir}/www.sock", "/hello.sh?a=b", root=workdir, method="POST", body=b"12345",
                 extra={"REMOTE_USER": "bob"})
    assert wait_for(lambda: os.path.exists(log) and lines(log))
    f = lines(log)[0].split(" ")
    worker = fpmd.workers()[0]
    assert f[0] == "%"
    for cpu in f[1:3]:
        assert re.fullmatch(r"\d+\.\d\d", cpu)
    assert re.fullmatch(r"\d+\.\d{3}", f[3]) and re.fullmatch(r"\d+\.\d{3}", f[4]) and f[5].isdigit()
    assert f[6] == "-" and f[7] == "localhost"
    assert f[8] == f"{workdir}/hello.sh"
    assert f[9] == "5" and f[10] == "POST"
    assert f[11].isdigit() and int(f[11]) > 0 and f[12].isdigit()
    assert f[13] == "www" and f[14] == "text/x-test"
    assert f[15] == str(worker) and f[16] == str(fpmd.pid)
    assert f[17] == "a=b" and f[18] == "?" and f[19] == "/hello.sh"
    assert f[20] == "127.0.0.1" and f[21] == "201"
    assert re.fullmatch(r"\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d", f[22]) and re.fullmatch(r"[+-]\d{4}", f[23])
    assert re.fullmatch(r"\d{4}", f[24])
    assert re.fullmatch(r"\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d", f[25])
    assert f[27] == "bob"


def test_long_lines_are_not_cut_and_values_are_escaped(fpmd, workdir):
    log = start(fpmd, workdir, "%r %{X_LONG}e")
    long = "y" * 5000
    fcgi_request(f"{workdir}/www.sock", "/hello.sh", root=workdir,
                 extra={"X_LONG": long, "REQUEST_URI": "/hello.sh\nforged line"})
    assert wait_for(lambda: os.path.exists(log) and lines(log))
    assert lines(log) == ["/hello.sh\\x0aforged line " + long]


def test_suppress_path(fpmd, workdir):
    log = start(fpmd, workdir, extra="access.suppress_path[] = /ping\n")
    sock = f"{workdir}/www.sock"
    fcgi_request(sock, "/ping")
    fcgi_request(sock, "/ping?x")            # a query: logged
    fcgi_request(sock, "/hello.sh", root=workdir)
    assert wait_for(lambda: os.path.exists(log) and len(lines(log)) == 2)
    assert '"GET /ping" 200' not in open(log).read().splitlines()[1:]
    assert sum('"GET /ping"' in x for x in lines(log)) == 1


def test_usr1_reopens_the_access_log(fpmd, workdir):
    log = start(fpmd, workdir)
    sock = f"{workdir}/www.sock"
    fcgi_request(sock, "/hello.sh", root=workdir)
    assert wait_for(lambda: os.path.exists(log) and lines(log))
    os.rename(log, log + ".1")
    fpmd.signal(signal.SIGUSR1)
    assert wait_for(lambda: len(fpmd.workers()) == 1 and "exited with code 0" in fpmd.log(), 5)
    assert wait_for(lambda: fcgi_request(sock, "/hello.sh", root=workdir) and os.path.exists(log), 5)
    assert wait_for(lambda: lines(log), 5)
    assert len(lines(log + ".1")) == 1


def test_bad_format_is_a_config_error(fpmd, workdir):
    fpmd.write_conf(basic_conf(workdir, pool_conf(workdir, extra="access.log = /tmp/x.log\naccess.format = \"%Z\"\n")))
    fpmd.start(wait_ready=False)
    assert fpmd.wait(10) == 78
    assert "unknown code '%Z' in access.format" in fpmd.log()


def test_a_requests_cpu_is_its_own(fpmd, workdir):
    """%C (and the status page's "last request cpu") is the CPU from the request's first
    byte to its end, as php-fpm counts it.  It counted from the previous request's end, so
    the work between two requests (dropping the unread body of a ping's POST) was the next
    one's: 2,700-9,000 % for a ping."""
    log = start(fpmd, workdir, fmt="%r %C")
    for _ in range(30):
        fcgi_request(f"{workdir}/www.sock", "/ping", root=workdir, method="POST",
                     body=b"x" * 100000)
    assert wait_for(lambda: len(lines(log)) == 30)
    cpu = [float(line.split()[1]) for line in lines(log)]
    assert max(cpu) <= 100.0, sorted(cpu)[-5:]
