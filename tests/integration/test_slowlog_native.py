"""The slowlog's native stack names a frame only with its own function (issue 21, item 6).

A php worker sleeping in sleep(): every native frame the slowlog prints as NAME+0xOFF
is checked against the symbol tables of the object mapped at that address in the
worker (nm, .symtab and .dynsym): NAME must be a function whose extent holds the
address, at OFF from its start.  Stripped libraries (Debian's libphp8.2.so) have
only their exported symbols: a static function's frame used to borrow the nearest
exported name before it (`php_base64_decode_ex_ssse3+0x1c3a` for sleep()); such a
frame is printed as OBJECT+0xOFFSET instead.  php-fpm's PHP stack comes first.
"""
import os
import re
import shutil
import subprocess
import threading

import pytest

from conftest import BUILD, basic_conf, fcgi_request, pool_conf, wait_for, write_script
from test_php import php, php_pool, req

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(BUILD, "fpmd-php.so")),
                                reason="fpmd-php.so is not built")


def mappings(pid):
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 6 or not parts[5].startswith("/"):
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            out.append((start, end, int(parts[2], 16), parts[5]))
    return out


_symbols = {}


def symbols(path):
    """{name: [(value, size)]} of an ELF file's functions, .symtab and .dynsym."""
    if path not in _symbols:
        table = {}
        for args in (["nm", "-S", "--defined-only"], ["nm", "-D", "-S", "--defined-only"]):
            r = subprocess.run(args + [path], capture_output=True, text=True)
            for line in r.stdout.splitlines():
                parts = line.split()
                if len(parts) == 4 and parts[2] in "tTwWiI":
                    name = parts[3].split("@")[0]
                    table.setdefault(name, []).append((int(parts[0], 16), int(parts[1], 16)))
        _symbols[path] = table
    return _symbols[path]


@pytest.mark.skipif(not shutil.which("nm"), reason="nm (binutils) is not installed")
def test_native_frames_are_named_right_or_by_address(fpmd, workdir):
    php(workdir, "slow.php", "<?php\nfunction inner() {\n    sleep(4);\n}\nfunction outer() { inner(); }\nouter();\necho 'done';\n")
    slow = os.path.join(workdir, "slow.log")
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1, extra=(
        f"request_slowlog_timeout = 1\nslowlog = {slow}\n"))))
    answers = []
    t = threading.Thread(target=lambda: answers.append(req(workdir, "/slow.php", timeout=20)))
    t.start()
    try:
        text = wait_for(lambda: os.path.exists(slow) and "\n[0x" in open(slow).read()
                        and re.search(r"\+0x[0-9a-f]+\n", open(slow).read()) and open(slow).read(), 5)
        assert text, open(slow).read() if os.path.exists(slow) else "no slowlog"
        pid = int(re.search(r"\] pid (\d+)\n", text).group(1))
        maps = mappings(pid)      # the worker is still in sleep(): its mappings are the trace's
    finally:
        t.join(20)
    assert answers and answers[0].body == b"done"

    lines = text.strip("\n").splitlines()
    # php-fpm's entry, unchanged: date, pool and pid; script_filename; the PHP stack.
    assert re.match(r"^\[\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d\]  \[pool www\] pid \d+$", lines[0]), text
    assert lines[1] == f"script_filename = {workdir}/slow.php", text
    assert [l.split("] ", 1)[1] for l in lines[2:5]] == [
        f"sleep() {workdir}/slow.php:3", f"inner() {workdir}/slow.php:5", f"outer() {workdir}/slow.php:6"], text

    frames = [re.match(r"^\[0x([0-9a-f]{16})\] (\S+)\+0x([0-9a-f]+)$", l) for l in lines[5:]]
    frames = [m for m in frames if m]
    assert len(frames) >= 3, text
    named = 0
    for m in frames:
        ip, name, off = int(m.group(1), 16), m.group(2), int(m.group(3), 16)
        where = [mp for mp in maps if mp[0] <= ip < mp[1]]
        assert where, (hex(ip), text)
        start, _, offset, path = where[0]
        vaddr = ip - (start - offset)
        if name.startswith("/"):
            # no name that can be trusted: the object and the address in it
            assert name == path and off == vaddr, (m.group(0), path, hex(vaddr))
            continue
        candidates = symbols(path).get(name, [])
        assert any(value + off == vaddr and off <= size for value, size in candidates), \
            (m.group(0), path, hex(vaddr), [(hex(v), hex(s)) for v, s in candidates], text)
        named += 1
    # fpmd's own main and libc's frames have their names
    assert named >= 1, text


def slow_path(workdir):
    return os.path.join(workdir, "slow.log")


def _slow_program(fpmd, workdir, name, c_source, mode, seen):
    """A compiled program run as a cgi script past request_slowlog_timeout: (its path,
    the slowlog's, the answers, what seen() returned once the slowlog had it)."""
    src = os.path.join(workdir, f"{name}.c")
    with open(src, "w") as f:
        f.write(c_source)
    prog = os.path.join(workdir, f"{name}.bin")
    subprocess.run(["cc", "-O0", "-g", "-fno-omit-frame-pointer", "-o", prog, src], check=True)
    os.chmod(prog, mode)
    # the gateway reads the script it runs: a readable one that becomes the program
    write_script(os.path.join(workdir, f"{name}.cgi"), f"#!/bin/sh\nexec {prog}\n")
    slow = slow_path(workdir)
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1, extra=(
        f"request_slowlog_timeout = 1\nslowlog = {slow}\n"))))
    answers = []
    t = threading.Thread(target=lambda: answers.append(
        fcgi_request(f"{workdir}/www.sock", f"/{name}.cgi", root=workdir, timeout=20)))
    t.start()
    try:
        text = wait_for(lambda: os.path.exists(slow) and seen(), 8)
    finally:
        t.join(20)
    return prog, slow, answers, text


SLOW_C = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) static void wait_here(void) { sleep(3); }
int main(void) { wait_here(); printf("Content-type: text/plain\r\n\r\ndone"); return 0; }
"""


@pytest.mark.skipif(not shutil.which("cc"), reason="no C compiler")
@pytest.mark.parametrize("mode", [0o755, 0o711])
def test_the_native_stack_is_walked_with_the_pools_rights(fpmd, workdir, mode):
    """What a native walk parses (the traced process's memory, the unwind tables of the files
    it maps) is the pool's to craft: it is read by a process of the pool's user, never by
    the root master.  A program its user may run but not read (mode 0711, root's) has
    its frames named only when the reader may read it: by address here, where a walk as
    root named them (main+0x...)."""
    prog, slow, answers, text = _slow_program(fpmd, workdir, "slow", SLOW_C, mode, lambda: (
        "native stack of" in open(slow_path(workdir)).read()
        and re.search(r"native stack of \d+:\n(.*\n)*.*(slow\.bin\+0x|main\+0x)",
                      open(slow_path(workdir)).read()) and open(slow_path(workdir)).read()))
    assert answers and answers[0].body == b"done", answers
    assert text, open(slow).read() if os.path.exists(slow) else "no slowlog"
    native = text.split("native stack of", 1)[1]
    if mode == 0o755:
        assert re.search(r"\] (main|wait_here)\+0x", native), text
    else:
        assert not re.search(r"\] (main|wait_here)\+0x", native), text
        assert re.search(rf"\] {re.escape(prog)}\+0x[0-9a-f]+\n", native), text


HOSTILE_C = r"""
#include <stdio.h>
#include <unistd.h>
#include <sys/prctl.h>
__attribute__((noinline)) static void wait_here(void) __asm__("\"wait\x1b[31mhere\"");
__attribute__((noinline)) static void wait_here(void) { sleep(3); }
int main(void)
{
    prctl(PR_SET_NAME, "\x1b[2J\rFORGED");
    wait_here();
    printf("Content-type: text/plain\r\n\r\ndone");
    return 0;
}
"""


@pytest.mark.skipif(not shutil.which("cc"), reason="no C compiler")
def test_a_traced_programs_names_cannot_write_raw_bytes_into_the_slowlog(fpmd, workdir):
    """A process's name (PR_SET_NAME) and its symbols' names are its own bytes: an escape
    sequence or a carriage return went into the slowlog the root master writes as they
    came (a forged entry, a cleared terminal).  They are escaped now."""
    prog, slow, answers, text = _slow_program(fpmd, workdir, "hostile", HOSTILE_C, 0o755, lambda: (
        "here+0x" in open(slow_path(workdir), errors="replace").read()
        and open(slow_path(workdir), "rb").read()))
    assert answers and answers[0].body == b"done", answers
    assert text, open(slow, "rb").read() if os.path.exists(slow) else "no slowlog"
    assert b"\x1b" not in text and b"\r" not in text, text
    assert b"\\x1b[2J\\x0dFORGED waiting in" in text, text
    assert b"wait\\x1b[31mhere+0x" in text, text
