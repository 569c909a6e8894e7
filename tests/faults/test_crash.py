"""Crash: `tagd run` killed with SIGKILL at random moments while it scans and delivers and while the server flaps
(down and back up at random moments of its own). Every acknowledged scan reaches the server exactly once."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.integration.run_support import Daemon, config_toml, wait_until

from .support import Flapper, delivered_count, queue_depth, scaled

pytestmark = pytest.mark.faults

TRIALS, BURST = 12, 200  # trials at the CI scale; scans sent in each trial (the kill comes in its first half)


def run_trial(trial: int, config: str, log: str, rng: random.Random) -> tuple[list[str], list[str]]:
    """One daemon life: a burst of scans, SIGKILL somewhere in it. The scans sent and those acknowledged."""
    daemon = Daemon(config, log)
    burst = [f"K{trial:03d}{number:04d}" for number in range(BURST)]
    daemon.scan(*burst)
    kill_after = rng.randrange(1, BURST // 2)
    try:
        wait_until(lambda: len(daemon.acknowledged()) >= kill_after, timeout=30, what="scans being handled")
    finally:
        daemon.kill()
    return burst, daemon.acknowledged()


def test_kill_9_with_the_server_flapping_loses_and_duplicates_nothing(site, tmp_path, scale, figures):
    rng = random.Random(20240611)
    state, config, log = str(tmp_path / "state"), str(tmp_path / "tagd.toml"), str(tmp_path / "tagd.log")
    with open(config, "w") as file:
        file.write(config_toml(state, site.url, site.token_file, delivery={"batch_size": 7}))
    trials = scaled(TRIALS, scale, minimum=3)
    sent, acknowledged, during_delivery, during_outage = [], [], 0, 0
    flapper = Flapper(site, random.Random(rng.random())).start()
    try:
        for trial in range(trials):
            before = delivered_count(state) if trial else 0
            burst, shown = run_trial(trial, config, log, rng)
            sent += burst
            acknowledged += shown
            assert len(shown) < BURST, "the kill came after the burst: nothing was tested"
            during_delivery += delivered_count(state) > before and queue_depth(state) > 0
            during_outage += flapper.down
    finally:
        flapper.stop()

    daemon = Daemon(config, log)
    try:
        wait_until(lambda: queue_depth(state) == 0, timeout=60, what="the queue to drain after restart")
    finally:
        assert daemon.stop() == 0
    on_server = [c["client_id"] for c in site.checkins()]
    counts = Counter(on_server)
    lost = set(acknowledged) - set(counts)
    duplicated = sum(count - 1 for count in counts.values())
    figures.put("trials", trials)
    figures.put("scans sent", len(sent))
    figures.put("scans acknowledged before a kill", len(acknowledged))
    figures.put("kills while check-ins were being delivered", during_delivery)
    figures.put("kills while the server was down", during_outage)
    figures.put("server outages", flapper.outages)
    figures.put("check-ins on the server", len(on_server))
    figures.put("lost", len(lost))
    figures.put("duplicated", duplicated)
    assert not lost, f"acknowledged scans never reached the server: {sorted(lost)[:10]}"
    assert duplicated == 0, f"scans reached the server twice: {[i for i, n in counts.items() if n > 1][:10]}"
    assert set(counts) <= set(sent)
    assert on_server == sorted(on_server), "check-ins reached the server out of scan order"
    assert during_delivery > 0, "no kill landed while check-ins were being delivered"
    assert flapper.outages > 0, "the server never went down"
