"""examples/symfony-worker (issue 23): Symfony 5.4 from Debian's packages, its
unchanged front controller run per request and, with APP_RUNTIME's runner
(Fpmd\\Runtime\\FpmdRuntime), in php.worker mode, booted in each worker or once
in the pool's zygote."""
import json
import os
import pwd
import shutil
import subprocess

import pytest

from conftest import basic_conf, fcgi_request
from test_php import PHP_SO, php_pool

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HAVE_SYMFONY = os.path.exists("/usr/share/php/Symfony/Bundle/FrameworkBundle/autoload.php") and \
    os.path.exists("/usr/share/php/Symfony/Component/Runtime/autoload.php")

pytestmark = [pytest.mark.skipif(not os.path.exists(PHP_SO), reason="fpmd-php.so not built"),
              pytest.mark.skipif(not HAVE_SYMFONY, reason="Symfony's Debian packages missing "
                                 "(scripts/deps.sh apps)")]

ENV = "env[APP_ENV] = prod\nenv[APP_DEBUG] = 0\nenv[APP_RUNTIME] = Fpmd\\Runtime\\FpmdRuntime\n"


@pytest.fixture
def app(workdir):
    dst = os.path.join(workdir, "app")
    shutil.copytree(os.path.join(TOP, "examples", "symfony-worker"), dst)
    os.makedirs(os.path.join(dst, "var"))
    nobody = pwd.getpwnam("nobody")
    subprocess.run(["chown", "-R", f"{nobody.pw_uid}:{nobody.pw_gid}", os.path.join(dst, "var")],
                   check=True)
    subprocess.run(["chmod", "-R", "a+rX", dst], check=True)
    return dst


def get(workdir, app, sock, uri):
    index = os.path.join(app, "public", "index.php")
    r = fcgi_request(f"{workdir}/{sock}.sock", uri, root=os.path.join(app, "public"),
                     extra={"SCRIPT_FILENAME": index, "SCRIPT_NAME": "/index.php"}, timeout=30)
    assert r.status == 200, (r.stdout[:2000], r.stderr[:2000])
    return r


def test_symfony_example_classic_and_worker_modes(fpmd, workdir, app):
    index = os.path.join(app, "public", "index.php")
    pools = (php_pool(workdir, name="classic", children=1, extra=ENV)
             + php_pool(workdir, name="worker", children=1, extra=ENV + f"php.worker = {index}\n")
             + php_pool(workdir, name="zygote", children=1,
                        extra=ENV + f"php.worker = {index}\nphp.worker_boot = zygote\n"
                                    "env[FPMD_WARMUP_URI] = /api/items\n"))
    fpmd.start(basic_conf(workdir, pools), timeout=30)
    pages = {}
    for sock in ("classic", "worker", "zygote"):
        page = get(workdir, app, sock, "/?page=2").body
        assert b"<h1>Catalogue \xe2\x80\x94 page 2</h1>" in page and page.count(b"<tr class=") == 50
        pages[sock] = page
        items = json.loads(get(workdir, app, sock, "/api/items").body)
        assert items["page"] == 1 and len(items["items"]) == 20
    assert pages["classic"] == pages["worker"] == pages["zygote"]

    # classic: a kernel per request; the worker modes keep theirs (the catalogue counts)
    states = {s: [json.loads(get(workdir, app, s, "/state").body) for _ in range(2)]
              for s in ("classic", "worker", "zygote")}
    assert [d["served"] for d in states["classic"]] == [0, 0]
    assert not states["classic"][0]["worker"]
    for s in ("worker", "zygote"):
        a, b = states[s]
        assert a["worker"] and a["pid"] == b["pid"] and a["served"] == b["served"] >= 2
    # the zygote handled the warm-up request before it forked: its forks counted it too
    assert states["zygote"][0]["served"] == states["worker"][0]["served"] + 1
    assert "PHP Fatal" not in fpmd.log() and "SIGSEGV" not in fpmd.log()
