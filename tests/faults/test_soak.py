"""Resources: a compressed soak. `tagd run` takes scans far faster than any door sees them, syncs its roster every
second instead of every five minutes, and loses its server every few seconds, while the roster changes under it.
Open file descriptors, resident memory and queue depth stay flat; every check-in is delivered exactly once."""

from __future__ import annotations

import signal
import statistics
import threading
import time
from collections import Counter

import pytest

from tests.integration.run_support import DEMO_ROSTER_SIZE, Daemon, Site, config_toml, wait_until

from .support import Resources, mib, queue_depth, read_resources, roster_size, scaled

pytestmark = pytest.mark.faults

SECONDS = 40  # at the CI scale
RATE = 25  # scans per second
BUSY_DOOR_PER_HOUR = 200  # scans an hour at a busy door: what a soak second stands for
SYNC_EVERY_S, REAL_SYNC_INTERVAL_S = 1.0, 300.0
CYCLE_S, OUTAGE_S = 6.0, 1.5  # the server is down for the last OUTAGE_S of every CYCLE_S
MEMBERS = [f"M{number}" for number in range(1001, 1037)]


class Feeder:
    """Writes scans to the daemon's scanner at RATE from a thread: every fourth a member, the rest new IDs."""

    def __init__(self, daemon: Daemon):
        self.daemon, self.sent = daemon, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - started) * RATE)
            texts = [MEMBERS[n % len(MEMBERS)] if n % 4 == 0 else f"S{n:07d}" for n in range(self.sent, due)]
            if texts:
                self.daemon.scan(*texts)
                self.sent = due
            self._stop.wait(0.02)


def thirds(values: list) -> tuple[list, list]:
    third = max(1, len(values) // 3)
    return values[:third], values[-third:]


def run_soak(daemon: Daemon, site: Site, state: str, seconds: float) -> tuple[list[Resources], list[int], int]:
    """Scans, syncs, outages and roster changes for `seconds`; resource and queue samples every half second."""
    samples, queue, outages = [], [], 0
    feeder = Feeder(daemon).start()
    started = last_sync = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            phase = elapsed % CYCLE_S
            if phase >= CYCLE_S - OUTAGE_S and site.handle is not None:
                site.stop()
                outages += 1
            elif phase < CYCLE_S - OUTAGE_S and site.handle is None:
                site.restart()
                site.set_status(MEMBERS[outages % len(MEMBERS)], ("inactive", "active")[outages % 2])
            if time.monotonic() - last_sync >= SYNC_EVERY_S:
                daemon.signal(signal.SIGUSR1)
                last_sync = time.monotonic()
            samples.append(read_resources(daemon.proc.pid))
            queue.append(queue_depth(state))
            time.sleep(0.5)
    finally:
        feeder.stop()
        if site.handle is None:
            site.restart()
    return samples, queue, feeder.sent


def test_a_compressed_soak_keeps_fds_memory_and_queue_flat(site, tmp_path, scale, figures):
    state, config = str(tmp_path / "state"), tmp_path / "tagd.toml"
    config.write_text(config_toml(state, site.url, site.token_file, logging={"level": "warning"}))
    daemon = Daemon(str(config), str(tmp_path / "tagd.log"))
    try:
        wait_until(lambda: roster_size(state) == DEMO_ROSTER_SIZE, timeout=20, what="the first sync")
        seconds = scaled(SECONDS, scale, minimum=15)
        samples, queue, sent = run_soak(daemon, site, state, seconds)
        wait_until(lambda: len(daemon.acknowledged()) == sent, timeout=30, what="every scan decided")
        wait_until(lambda: queue_depth(state) == 0, timeout=60, what="the queue to drain")
        end = read_resources(daemon.proc.pid)
    finally:
        assert daemon.stop() == 0
    new_ids = [text for text in daemon.acknowledged() if text.startswith("S")]
    on_server = Counter(c["client_id"] for c in site.checkins())
    steady = samples[len(samples) // 10:]  # after start-up
    (fd_first, fd_last), (rss_first, rss_last) = thirds([s.fds for s in steady]), thirds([s.rss_kib for s in steady])
    queue_first, queue_last = thirds(queue[len(queue) // 10:])
    figures.put("duration (s)", seconds)
    figures.put("scans", sent)
    figures.put("simulated busy-door hours", round(sent / BUSY_DOOR_PER_HOUR, 1))
    figures.put("roster syncs asked for", int(seconds / SYNC_EVERY_S))
    figures.put("simulated hours of roster polling", round(seconds / SYNC_EVERY_S * REAL_SYNC_INTERVAL_S / 3600, 1))
    figures.put("server outages", int(seconds // CYCLE_S))
    figures.put("fds first/last third (max)", f"{max(fd_first)}/{max(fd_last)}")
    figures.put("RSS first/last third (median MiB)", f"{mib(statistics.median(rss_first))}/"
                                                     f"{mib(statistics.median(rss_last))}")
    figures.put("peak RSS (MiB)", mib(end.peak_rss_kib))
    figures.put("queue first/last third (max)", f"{max(queue_first)}/{max(queue_last)}")
    figures.put("over time (s, fds, RSS MiB, queue)", timeline(samples, queue))
    figures.put("lost", len(set(new_ids) - set(on_server)))
    figures.put("duplicated", sum(n - 1 for n in on_server.values() if n > 1))
    assert max(fd_last) <= max(fd_first) + 2, "file descriptors grew"
    assert statistics.median(rss_last) - statistics.median(rss_first) < 10 * 1024, "memory grew"
    assert max(queue_last) <= 2 * max(queue_first) + 2 * RATE, "the queue grew from outage to outage"
    assert set(new_ids) <= set(on_server), "an acknowledged check-in never reached the server"
    assert all(on_server[text] == 1 for text in new_ids), "a check-in reached the server twice"


def timeline(samples: list[Resources], queue: list[int], points: int = 8) -> list[list]:
    step = max(1, len(samples) // points)
    start = samples[0].at
    return [[round(s.at - start), s.fds, mib(s.rss_kib), q] for s, q in list(zip(samples, queue))[::step]]
