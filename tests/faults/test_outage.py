"""Outage: the server is down while a large number of scans is queued; when it comes back, every one of them is
delivered, in scan order, with the time it was scanned (not the time it was delivered)."""

from __future__ import annotations

import asyncio
import time

import pytest

from daemon.bootstrap import make_reader
from daemon.settings import DeliverySettings
from tests.integration.run_support import (DEMO_ROSTER_SIZE, RecordingFeedback, fake_scanners, reader_settings,
                                           until, wire_time)

from .support import scaled

pytestmark = pytest.mark.faults

SCANS = 10_000  # at the CI scale; 100,000 at scale 10
T0_MS = 1_750_000_000_000  # scan times on whole milliseconds, a year before the run: exact on the wire


def scan_times(count: int) -> list[float]:
    return [(T0_MS + number * 7) / 1000 for number in range(count)]


def test_scans_queued_during_an_outage_are_all_delivered_in_order_with_their_times(site, tmp_path, scale, figures):
    count = scaled(SCANS, scale, minimum=100)
    ids = [f"Q{number:07d}" for number in range(count)]
    times = scan_times(count)
    settings = reader_settings(str(tmp_path / "state"), site.url, site.token_file,
                               delivery=DeliverySettings(batch_size=100, backoff_initial_s=0.05, backoff_max_s=0.5))
    feedback = RecordingFeedback()

    async def scenario():
        reader = make_reader(settings, feedback, fake_scanners)
        reader.start()
        try:
            await until(lambda: reader.roster.size() == DEMO_ROSTER_SIZE, what="the first roster sync")
            site.stop()
            started = time.monotonic()
            for text, at in zip(ids, times):
                assert reader.scanners[0].scan(text, at=at)
            await until(lambda: reader.outbox.depth() == count, timeout=count * 0.02 + 30, what="every scan queued")
            queued = time.monotonic()
            assert reader.connectivity.reachable is False
            site.restart()
            await until(lambda: reader.outbox.depth() == 0, timeout=count * 0.01 + 60, what="the queue to drain")
            return queued - started, time.monotonic() - queued, reader.outbox.dead_letter_count()
        finally:
            await reader.close()

    queue_s, drain_s, dead = asyncio.run(scenario())
    recorded = site.checkins()
    figures.put("scans queued while the server was down", count)
    figures.put("queueing time (s)", round(queue_s, 1))
    figures.put("delivery time after the server came back (s)", round(drain_s, 1))
    figures.put("delivered", len(recorded))
    figures.put("dead letters", dead)
    in_order = [c["client_id"] for c in recorded] == ids
    exact_times = [c["scanned_at"] for c in recorded] == [wire_time(at) for at in times]
    figures.put("in scan order", in_order)
    figures.put("with their scan times", exact_times)
    assert dead == 0 and len(recorded) == count
    assert in_order, "check-ins reached the server out of scan order"
    assert exact_times, "a check-in reached the server with another time than its scan's"
    # The first scans may be decided before delivery finds the server gone: only those are not marked offline.
    figures.put("decided offline", sum(c["offline"] for c in recorded))
    assert len(feedback.decisions) == count
