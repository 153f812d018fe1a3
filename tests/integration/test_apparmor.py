"""apparmor_hat: workers change to PROFILE//HAT, or say why they cannot (php-fpm's words)."""
import os

import pytest

from conftest import basic_conf, pool_conf


def apparmor_active():
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


@pytest.mark.skipif(apparmor_active(), reason="AppArmor is active here: the hat would have to exist")
def test_apparmor_hat_without_apparmor_is_said_at_start_and_stops_the_worker_clearly(fpmd, workdir):
    """As php-fpm, the pool starts and each worker fails its setup, in php-fpm's
    words (php-src's own test expects them); fpmd says why first, at the line."""
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1, extra="apparmor_hat = a\n")))
    assert "apparmor_hat = a needs AppArmor, which is not enabled on this system" in fpmd.log()
    fpmd.wait_log(r"\[pool www\] failed to query apparmor confinement")
    fpmd.wait_log(r"exited with code 70")
