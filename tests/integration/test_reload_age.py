"""A worker's age survives a reload (issue 20, item 11): the previous generation's
workers are logged with the time since they started, not since the re-exec."""
import re
import signal
import time

from conftest import basic_conf, pool_conf


def test_old_workers_age_counts_from_their_own_start(fpmd, workdir):
    # the previous generation's exits are DEBUG lines, as php-fpm's
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=2), global_extra="log_level = debug\n"))
    old = set(fpmd.workers())
    time.sleep(2)
    fpmd.signal(signal.SIGUSR2)
    fpmd.wait_log(r"ready to handle connections", count=2, timeout=15)
    for pid in old:
        fpmd.wait_log(rf"child {pid} exited .* after [\d.]+ seconds from start", timeout=10)
    for pid in old:
        secs = float(re.search(rf"child {pid} exited .* after ([\d.]+) seconds from start",
                               fpmd.log()).group(1))
        assert secs >= 2.0, fpmd.log()
