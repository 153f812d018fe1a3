"""fpmctl top, driven in a real terminal under tmux."""
import os
import shutil
import subprocess
import threading
import time

import pytest

from conftest import FPMCTL, basic_conf, fcgi_request, pool_conf, wait_for, write_script


@pytest.mark.skipif(not shutil.which("tmux"), reason="needs tmux")
def test_top_in_tmux(fpmd, workdir):
    write_script(f"{workdir}/slow.sh", "#!/bin/sh\nsleep 3\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
    st = f"{workdir}/st.sock"
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=2, extra=f"pm.status_listen = {st}\n")))
    t = threading.Thread(target=fcgi_request, args=(f"{workdir}/www.sock", "/slow.sh?x=1"),
                         kwargs={"root": workdir, "timeout": 20})
    t.start()
    session = f"fpmdtop{os.getpid()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "30",
                    f"{FPMCTL} top -s unix:{st} -d 0.3"], check=True)
    try:
        def screen():
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                  capture_output=True, text=True).stdout

        assert wait_for(lambda: "Running" in screen() and "/slow.sh?x=1" in screen(), 5), screen()
        s = screen()
        assert "fpmctl top" in s and "pool www (pm static)" in s
        assert "2 total, 1 active, 1 idle" in s
        assert "Idle" in s
        t.join(20)
        assert wait_for(lambda: "0 active, 2 idle" in screen(), 5), screen()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_top_once_and_errors(fpmd, workdir):
    fpmd.start(basic_conf(workdir))
    r = subprocess.run([FPMCTL, "top", "-s", f"unix:{workdir}/www.sock", "-n", "1"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "PID" in r.stdout and "pool www" in r.stdout
    r = subprocess.run([FPMCTL, "top", "-s", f"unix:{workdir}/none.sock", "-n", "1"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 3
