"""Hostile server, at the daemon level: `tagd run` delivers through a TLS front that drips, stalls, truncates, answers
HTML, sends 100 MB (plain or as a gzip bomb), redirects to another host, or presents the wrong certificate. Each
attempt ends within a bound, memory stays bounded, status names the problem, the queue stays whole; once the server is
sane again everything is delivered exactly once, in order, and the other host never saw a request."""

from __future__ import annotations

import time

import pytest

from tests.integration.fault_http import FaultServer
from tests.integration.run_support import DEMO_ROSTER_SIZE, Daemon, config_toml, wait_until

from .hostile_proxy import TLS_MODES, HostileProxy
from .support import last_error, mib, queue_depth, read_resources, reset_peak_rss, roster_size, scaled

pytestmark = pytest.mark.faults

READ_TIMEOUT_S, BACKOFF_MAX_S = 1.0, 0.2
ATTEMPT_BOUND_S = READ_TIMEOUT_S + BACKOFF_MAX_S + 2.0  # between two delivery attempts (slack for a busy machine)
MEMORY_BOUND_MIB = 48  # how far the daemon's peak RSS may rise while the server is hostile
SCANS, ATTEMPTS = 10, 3  # at the CI scale: scans queued, delivery attempts the server turns away
EXPECTED = {  # what status (and the log) says about each
    "slow drip": "reply still arriving after 1 s",
    "stall before headers": "no reply within 1 s",
    "truncated body": "reply broken off",
    "HTML page": "expected JSON, got text/html",
    "100 MB body": "reply exceeds the 8388608-byte bound (cut off)",
    "gzip bomb": "reply exceeds the 8388608-byte bound (cut off)",
    "redirect to another host": "not followed (the token stays here)",
    "wrong TLS host": "Hostname mismatch, certificate is not valid for 'localhost'",
    "wrong CA": "certificate verify failed: unable to get local issuer certificate",
}


@pytest.fixture
def elsewhere():
    other = FaultServer()
    yield other
    other.close()


@pytest.fixture
def proxy(site, elsewhere):
    proxy = HostileProxy(site.url, elsewhere.url)
    yield proxy
    proxy.close()


@pytest.fixture
def daemon(site, proxy, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(proxy.ca_pem)
    config = tmp_path / "tagd.toml"
    config.write_text(config_toml(str(tmp_path / "state"), proxy.url, site.token_file,
                                  server={"ca_file": str(ca_file), "connect_timeout_s": 1.0,
                                          "read_timeout_s": READ_TIMEOUT_S},
                                  delivery={"batch_size": 20, "backoff_initial_s": 0.05,
                                            "backoff_max_s": BACKOFF_MAX_S}))
    daemon = Daemon(str(config), str(tmp_path / "tagd.log"))
    yield daemon
    daemon.stop()


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_a_hostile_server_costs_bounded_time_and_memory_and_nothing_queued(mode, site, proxy, elsewhere, daemon,
                                                                          tmp_path, scale, figures):
    state = str(tmp_path / "state")
    wait_until(lambda: roster_size(state) == DEMO_ROSTER_SIZE, timeout=20, what="the first roster sync")
    scans = [f"H{number:05d}" for number in range(scaled(SCANS, scale))]
    pid = daemon.proc.pid
    proxy.set_mode(mode)
    before, resettable = read_resources(pid), reset_peak_rss(pid)
    daemon.scan(*scans)
    wait_until(lambda: len(daemon.acknowledged()) == len(scans), what="every scan decided")
    attempts = wait_until(lambda: (a := proxy.attempts(mode)) and len(a) >= scaled(ATTEMPTS, scale) and a,
                          timeout=60, what="delivery attempts")
    wait_until(lambda: EXPECTED[mode] in last_error(state), timeout=10,
               what=f"status to say {EXPECTED[mode]!r}")
    during = read_resources(pid)
    assert daemon.proc.poll() is None, "the daemon died"
    assert queue_depth(state) == len(scans), "the queue lost check-ins while the server was hostile"
    longest = max(b - a for a, b in zip(attempts, attempts[1:]))
    rise = during.peak_rss_kib - (before.rss_kib if resettable else before.peak_rss_kib)

    proxy.set_mode("sane")
    sane_at = time.monotonic()
    wait_until(lambda: queue_depth(state) == 0, timeout=30, what="delivery once the server is sane")
    recovered_s = time.monotonic() - sane_at
    delivered = [c["client_id"] for c in site.checkins()]
    figures.put("delivery attempts turned away", len(attempts))
    figures.put("longest gap between attempts (s)", round(longest, 2))
    figures.put("peak RSS rise (MiB)", mib(max(rise, 0)))
    figures.put("fds before/during", f"{before.fds}/{during.fds}")
    figures.put("recovered within (s)", round(recovered_s, 2))
    figures.put("error in status", EXPECTED[mode])
    figures.put("queue kept", len(scans))
    figures.put("lost", len(set(scans) - set(delivered)))
    figures.put("duplicated", len(delivered) - len(set(delivered)))
    assert longest <= ATTEMPT_BOUND_S, f"an attempt took {longest:.1f} s"
    assert rise < MEMORY_BOUND_MIB * 1024, f"peak memory rose by {mib(rise)} MiB"
    assert during.fds <= before.fds + 4, "file descriptors leaked"
    assert delivered == scans, "not every check-in was delivered exactly once, in order"
    assert elsewhere.seen == [], "a request followed the redirect to another host"
    assert roster_size(state) == DEMO_ROSTER_SIZE
    if mode in TLS_MODES:
        assert proxy.attempts(mode), "the wrong certificate was never presented"
