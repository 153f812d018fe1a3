"""What a worker's code can reach of the master (issue 20, item 8).

A worker's descriptors above 2 (the log pipe, the wake-up eventfd, the
access log) are close-on-exec: a program it starts cannot write error-log
lines.  And a line that arrives on the log pipe (PHP can open php://fd/3)
is tagged with the worker's pool unless it names that pool first, so a pool
cannot forge another pool's lines or the master's.
"""
import os
import re
import subprocess

import pytest

from conftest import basic_conf, fcgi_request, pool_conf, write_script
from test_php import PHP_SO, php_pool

needs_php = pytest.mark.skipif(not os.path.exists(PHP_SO), reason="fpmd-php.so not built")


@needs_php
def test_programs_a_php_worker_starts_cannot_write_the_error_log(fpmd, workdir):
    write_script(os.path.join(workdir, "forge.php"),
                 "<?php echo shell_exec('echo \"[pool other] FORGED-BY-EXEC\" >&3; "
                 "echo 4 >&4; ls -l /proc/self/fd');", 0o644)
    fpmd.start(basic_conf(workdir, php_pool(workdir, extra="catch_workers_output = yes\n")))
    r = fcgi_request(f"{workdir}/www.sock", "/forge.php", root=workdir)
    fds = {}
    for line in r.body.decode().splitlines():
        m = re.search(r" (\d+) -> (.*)$", line)
        if m:
            fds[int(m.group(1))] = m.group(2)
    # nothing of fpmd's: the listening socket, the log pipe, the eventfd, the access log
    assert not [fd for fd, what in fds.items() if "socket:" in what or "eventfd" in what], fds
    assert not [fd for fd, what in fds.items() if "pipe:" in what and fd > 2], fds
    log = fpmd.log()
    assert not re.search(r"(NOTICE|WARNING|ERROR): \[pool other\] FORGED-BY-EXEC", log), log


FORGER = r"""
#include <string.h>
#include <unistd.h>
#include <fpmd/module.h>

static const struct fpmd_host *host;

static int forge_init(const struct fpmd_host *h, const struct fpmd_setting *s, size_t n, void **st)
{
	(void)s; (void)n; (void)st;
	host = h;
	return 0;
}

/* Native code in a worker writes into its log pipe as it likes. */
static int forge_handle(void *st, struct fpmd_request *r)
{
	static const char line[] = "3[pool other] FORGED-PIPE\n";
	(void)st;
	if (write(3, line, sizeof(line) - 1) < 0)
		return -1;
	return host->write(r, "ok", 2);
}

const struct fpmd_module fpmd_module = {
	.abi = FPMD_MODULE_ABI, .name = "forge", .init = forge_init, .handle = forge_handle,
};
"""


def test_a_line_written_to_the_log_pipe_is_tagged_with_its_pool(fpmd, workdir):
    src = os.path.join(workdir, "forge.c")
    so = os.path.join(workdir, "forge.so")
    with open(src, "w") as f:
        f.write(FORGER)
    top = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    subprocess.run(["cc", "-shared", "-fPIC", f"-I{top}/include", "-o", so, src], check=True)
    os.chmod(so, 0o755)
    pool = pool_conf(workdir, app="module", extra=f"module.path = {so}\n")
    fpmd.start(basic_conf(workdir, pool))
    r = fcgi_request(f"{workdir}/www.sock", "/x", root=workdir)
    assert r.body == b"ok"
    fpmd.wait_log(r"FORGED-PIPE", timeout=5)
    log = fpmd.log()
    assert re.search(r"\[pool www\] child \d+: \[pool other\] FORGED-PIPE", log), log
    assert not re.search(r"(NOTICE|WARNING|ERROR): \[pool other\] FORGED-PIPE", log), log


def test_a_cgi_script_inherits_no_worker_descriptor(fpmd, workdir):
    www = os.path.join(workdir, "www")
    os.makedirs(www)
    write_script(f"{www}/fds.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
                 "ls -l /proc/self/fd\n")
    pool = pool_conf(workdir).replace(f"cgi.root = {workdir}", f"cgi.root = {www}")
    fpmd.start(basic_conf(workdir, pool))
    r = fcgi_request(f"{workdir}/www.sock", "/fds.sh", root=www)
    fds = {}
    for line in r.body.decode().splitlines():
        m = re.search(r" (\d+) -> (.*)$", line)
        if m:
            fds[int(m.group(1))] = m.group(2)
    assert fds and not [fd for fd, what in fds.items() if "socket:" in what or "eventfd" in what], fds
    assert not [fd for fd, what in fds.items() if "pipe:" in what and fd > 2], fds
