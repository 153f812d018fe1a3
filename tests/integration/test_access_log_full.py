"""An access log that cannot be written (a full disk) costs one warning, not one per
request (issue 20, item 10)."""
import re

from conftest import basic_conf, fcgi_request, pool_conf


def test_a_full_disk_is_logged_once_not_per_request(fpmd, workdir):
    # /dev/full: every write fails with ENOSPC, as on a full file system
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1,
                                             extra="access.log = /dev/full\n")))
    for _ in range(300):
        assert fcgi_request(f"{workdir}/www.sock", "/ping", root=workdir).body.strip() == b"pong"
    fpmd.wait_log(r"access log write failed")
    lines = [l for l in fpmd.log().splitlines() if "access log" in l]
    assert len(lines) <= 2, lines
    assert re.search(r"No space left on device", lines[0]), lines
