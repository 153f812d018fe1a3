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
def test_apparmor_hat_without_apparmor_is_refused_at_start(fpmd, workdir):
    """Its workers would each fail their setup (php-fpm's "failed to query apparmor
    confinement", exit 70), in a loop, under a pool that said it was ready: the
    start refuses it instead, at the line, as fpmd -t does."""
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1, extra="apparmor_hat = a\n")),
               wait_ready=False)
    assert fpmd.wait(10) == 78
    assert "apparmor_hat = a needs AppArmor, which is not enabled on this system" in fpmd.log()
    assert "ready to handle connections" not in fpmd.log()
