"""request_terminate_timeout and work after fastcgi_finish_request() (issue 20, item 3).

php-fpm's rule: with request_terminate_timeout_track_finished = no (the
default) the time limit ends with the answer; work a script does after
fastcgi_finish_request() runs to its end.  With yes, it is killed too.
"""
import os
import time

import pytest

from conftest import basic_conf, fcgi_request, wait_for, write_script
from test_php import PHP_SO, php_pool

pytestmark = [pytest.mark.skipif(not os.path.exists(PHP_SO), reason="fpmd-php.so not built")]

SCRIPT = ("<?php echo 'ok'; fastcgi_finish_request(); sleep(3); "
          "file_put_contents('{marker}', 'done');")


def run(fpmd, workdir, track):
    marker = os.path.join(workdir, "after.txt")
    write_script(os.path.join(workdir, "finish.php"), SCRIPT.format(marker=marker), 0o644)
    os.chmod(workdir, 0o777)
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1, extra=(
        "request_terminate_timeout = 1s\n"
        f"request_terminate_timeout_track_finished = {track}\n"))))
    r = fcgi_request(f"{workdir}/www.sock", "/finish.php", root=workdir)
    assert r.body == b"ok"
    return marker


def test_work_after_finish_request_is_not_killed_by_default(fpmd, workdir):
    marker = run(fpmd, workdir, "no")
    assert wait_for(lambda: os.path.exists(marker), 6), fpmd.log()
    assert "execution timed out" not in fpmd.log()
    # the status page said what the worker was doing meanwhile: ending, not idle
    r = fcgi_request(f"{workdir}/www.sock", "/ping", root=workdir)
    assert r.body.strip() == b"pong"


def test_track_finished_kills_work_after_finish_request(fpmd, workdir):
    marker = run(fpmd, workdir, "yes")
    fpmd.wait_log(r"execution timed out", timeout=6)
    time.sleep(3)
    assert not os.path.exists(marker)


def test_timeouts_fire_within_50ms_of_the_setting_with_the_master_asleep(fpmd, workdir):
    """request_terminate_timeout and request_slowlog_timeout = 1s fire at 1.0x s (issue 21, item 5)."""
    import re
    write_script(os.path.join(workdir, "sleep.php"), "<?php sleep(5); echo 'late';", 0o644)
    fpmd.start(basic_conf(workdir, php_pool(workdir, children=1, extra=(
        "request_terminate_timeout = 1s\nrequest_slowlog_timeout = 1s\n"
        f"slowlog = {workdir}/slow.log\n"))))
    time.sleep(1.5)   # the master has gone to sleep: nothing to watch
    for _ in range(2):
        try:
            fcgi_request(f"{workdir}/www.sock", "/sleep.php", root=workdir, timeout=10)
        except ConnectionError:
            pass
    fpmd.wait_log(r"execution timed out", count=2, timeout=10)
    log = fpmd.log()
    slow = [float(x) for x in re.findall(r"executing too slow \(([\d.]+) sec\)", log)]
    term = [float(x) for x in re.findall(r"execution timed out \(([\d.]+) sec\)", log)]
    assert len(slow) == 2 and len(term) == 2, log
    for secs in slow + term:
        assert 1.0 <= secs < 1.05, (slow, term)
