"""`tagd run` killed with SIGKILL at random moments, as a power cut would stop it: no acknowledged scan is lost and
none reaches the server twice."""

from __future__ import annotations

import random
from collections import Counter

from daemon.status import collect, store_counts

from .run_support import Daemon, config_toml, wait_until

TRIALS, BURST = 5, 60


def test_kill_9_during_scans_and_delivery_keeps_each_acknowledged_scan_exactly_once(site, tmp_path):
    rng = random.Random(20240604)
    state = tmp_path / "state"
    config = tmp_path / "tagd.toml"
    config.write_text(config_toml(str(state), site.url, site.token_file, delivery={"batch_size": 7}))
    sent, acknowledged, killed_while_delivering = [], [], []
    for trial in range(TRIALS):
        delivered_before = len(site.checkins())
        daemon = Daemon(str(config), str(tmp_path / "tagd.log"))
        burst = [f"K{trial}{number:04d}" for number in range(BURST)]
        daemon.scan(*burst)
        sent += burst
        # Somewhere in the burst: recording, showing and delivering all overlap there.
        wait_until(lambda: len(daemon.acknowledged()) >= rng.randrange(1, BURST // 2), what="scans being handled")
        daemon.kill()
        acknowledged += daemon.acknowledged()
        assert len(daemon.acknowledged()) < BURST, "the kill came after the burst: nothing was tested"
        killed_while_delivering.append(len(site.checkins()) > delivered_before
                                       and store_counts(str(state))["queue_depth"] > 0)

    daemon = Daemon(str(config), str(tmp_path / "tagd.log"))
    try:
        wait_until(lambda: collect(str(state))["queue_depth"] == 0, what="the queue to drain after the restart")
    finally:
        assert daemon.stop() == 0
    on_server = Counter(c["client_id"] for c in site.checkins())
    assert set(acknowledged) <= set(on_server), "an acknowledged scan never reached the server"
    assert set(on_server) <= set(sent)
    assert on_server.most_common(1)[0][1] == 1, "a scan reached the server twice"
    assert len(set(acknowledged)) == len(acknowledged)
    assert any(killed_while_delivering), "no kill landed while check-ins were being delivered"
