"""`tagd run` in process: a server outage, and the scan path under a burst (Reader by make_reader, fake scanners)."""

from __future__ import annotations

import asyncio

from daemon.bootstrap import make_reader

from .run_support import (DEMO_ROSTER_SIZE, INACTIVE, MEMBER, RecordingFeedback, fake_scanners, reader_settings,
                          until, wire_time)

T0 = 1_750_000_000.0  # scan times on whole milliseconds: exact through float, wire format and the server


def test_scans_during_an_outage_are_decided_from_the_roster_and_delivered_once_in_order_when_it_ends(site, tmp_path):
    settings = reader_settings(str(tmp_path / "state"), site.url, site.token_file)
    feedback = RecordingFeedback()
    scans = [(MEMBER, T0), ("M1002", T0 + 1.001), (INACTIVE, T0 + 2.002), ("ZZZZ9", T0 + 3.003),
             ("M1003", T0 + 4.004), (MEMBER, T0 + 10.5)]

    async def scenario():
        reader = make_reader(settings, feedback, fake_scanners)
        reader.start()
        try:
            await until(lambda: reader.roster.size() == DEMO_ROSTER_SIZE, what="the first roster sync")
            scanner = reader.scanners[0]
            assert scanner.scan(*scans[0])
            await until(lambda: len(site.checkins()) == 1, what="the online check-in")
            site.stop()
            for text, at in scans[1:3]:
                assert scanner.scan(text, at=at)
            await until(lambda: reader.connectivity.reachable is False, what="delivery to notice the outage")
            for text, at in scans[3:]:
                assert scanner.scan(text, at=at)
            await until(lambda: len(feedback.decisions) == len(scans), what="every decision")
            assert reader.outbox.depth() == len(scans) - 1
            site.restart()
            await until(lambda: reader.outbox.depth() == 0, timeout=10, what="the queue to drain")
            return [e.event.event_id for e in reversed(reader.outbox.recent())]
        finally:
            await reader.close()

    event_ids = asyncio.run(scenario())
    assert feedback.outcomes()[0] == (MEMBER, "accepted", False)
    assert feedback.outcomes()[3:] == [("ZZZZ9", "denied_unknown", True), ("M1003", "accepted", True),
                                       (MEMBER, "accepted", True)]
    assert [outcome for _, outcome, _ in feedback.outcomes()[1:3]] == ["accepted", "denied_inactive"]
    recorded = site.checkins()
    assert [(c["client_id"], c["scanned_at"]) for c in recorded] == [(text, wire_time(at)) for text, at in scans]
    assert [c["event_id"] for c in recorded] == event_ids
    assert [c["offline"] for c in recorded][3:] == [True, True, True]
    assert [c["result"] for c in recorded] == ["accepted", "accepted", "inactive", "unknown_client", "accepted",
                                               "accepted"]


def test_a_burst_of_scans_leaves_the_event_loop_free_between_scans(tmp_path):
    settings = reader_settings(str(tmp_path / "state"))  # standalone: only the scan path runs
    feedback = RecordingFeedback()
    burst = [f"B{number:04d}" for number in range(10)]

    async def scenario():
        reader = make_reader(settings, feedback, fake_scanners)
        reader.start()
        try:
            await asyncio.sleep(0)  # let the scanner and the desk start
            for text in burst:
                assert reader.scanners[0].scan(text)
            seen_by_others: list[int] = []
            asyncio.get_running_loop().call_soon(lambda: seen_by_others.append(len(feedback.decisions)))
            await until(lambda: len(feedback.decisions) == len(burst), what="the burst")
            return seen_by_others
        finally:
            await reader.close()

    # Another callback (a scanner's read, a worker's reply) ran while the burst was being handled, not after it.
    assert asyncio.run(scenario())[0] < len(burst)
