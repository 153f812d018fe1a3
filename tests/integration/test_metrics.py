"""fpmd's own OpenMetrics families: limits, exits by reason, respawns, a duration histogram."""
import os
import re
import signal

from conftest import basic_conf, fcgi_request, pool_conf, wait_for


def metrics(sock):
    body = fcgi_request(sock, "/status?openmetrics").body.decode()
    assert body.endswith("# EOF\n")
    samples = {}
    families = {}
    for line in body.splitlines():
        m = re.match(r"# (HELP|TYPE) (\S+)", line)
        if m:
            families.setdefault(m.group(2), []).append(m.group(1))
        elif line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    # OpenMetrics: one HELP and one TYPE per family.
    assert all(sorted(v) == ["HELP", "TYPE"] for v in families.values()), families
    return samples


def test_fpmd_metrics(fpmd, workdir):
    fpmd.start(basic_conf(workdir, pool_conf(workdir, children=2, extra="pm.max_requests = 500\n")))
    sock = f"{workdir}/www.sock"
    for _ in range(5):
        fcgi_request(sock, "/ping")
    m = metrics(sock)
    assert m["fpmd_pm_max_children"] == 2 and m["fpmd_pm_max_requests"] == 500
    # The five pings are done; the scrape itself is still running.
    assert m["fpmd_request_duration_seconds_count"] == 5
    assert m['fpmd_request_duration_seconds_bucket{le="+Inf"}'] == 5
    assert m['fpmd_request_duration_seconds_bucket{le="0.005"}'] <= 5
    assert m["fpmd_request_duration_seconds_sum"] > 0
    victims = fpmd.workers()
    os.kill(victims[0], signal.SIGKILL)
    os.kill(victims[1], signal.SIGSEGV)
    assert wait_for(lambda: len(fpmd.workers()) == 2 and not set(victims) & set(fpmd.workers()), 5)
    m = wait_for(lambda: (lambda x: x if x["fpmd_respawns_total"] == 2 else None)(metrics(sock)), 5)
    assert m, metrics(sock)
    assert m['fpmd_worker_exits_total{reason="signal"}'] == 1
    assert m['fpmd_worker_exits_total{reason="crash"}'] == 1
    # Requests served by the workers that died still count (the five pings at least: the
    # scrape that came before the kills may die with its worker before it is recorded).
    assert m["fpmd_request_duration_seconds_count"] >= 5
