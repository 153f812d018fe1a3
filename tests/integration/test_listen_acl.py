"""listen.acl_users / listen.acl_groups: POSIX ACL entries on the pool's unix socket."""
import os
import shutil
import subprocess

import pytest

from conftest import basic_conf, fcgi_request, pool_conf

GETFACL = shutil.which("getfacl")


@pytest.mark.skipif(not GETFACL, reason="getfacl (Debian acl) is not installed")
def test_acl_entries_on_the_socket(fpmd, workdir):
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1, extra=(
        "listen.acl_users = nobody,www-data\nlisten.acl_groups = nogroup\nlisten.mode = 0600\n"))))
    sock = f"{workdir}/www.sock"
    out = subprocess.run([GETFACL, "-cp", sock], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["user::rw-", "user:www-data:rw-", "user:nobody:rw-", "group::---",
                           "group:nogroup:rw-", "mask::rw-", "other::---"], out
    assert fcgi_request(sock, "/ping").body == b"pong"


def test_unknown_acl_user_stops_the_pool(fpmd, workdir):
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=1,
                                             extra="listen.acl_users = no-such-user-here\n")),
               wait_ready=False)
    assert fpmd.wait(10) != 0
    assert "cannot resolve 'no-such-user-here'" in fpmd.log()
