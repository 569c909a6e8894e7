"""Delivery and sync inside `tagd run` when the server refuses, throttles, fails or garbles: the real server, with a
forwarding proxy injecting only what the real one cannot do (429, 5xx, broken replies)."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from daemon.bootstrap import make_reader
from daemon.settings import DeliverySettings, ScanSettings
from daemon.status import collect, format_status

from .run_support import (DEMO_ROSTER_SIZE, INACTIVE, MEMBER, TAGD, FaultProxy, RecordingFeedback, Site,
                          fake_scanners, garbage_reply, reader_settings, status_reply, until)

CHECKINS, ROSTER = "/v1/device/checkins", "/v1/device/roster"
IDS = [MEMBER, "M1002", INACTIVE, "ZZZZ9", "M1003"]


@pytest.fixture
def proxy(site):
    proxy = FaultProxy(site.url)
    yield proxy
    proxy.close()


def run_reader(settings, scenario, feedback=None):
    """Start a Reader for `settings`, await `scenario(reader)` and close the reader whatever happens."""
    async def main():
        reader = make_reader(settings, feedback or RecordingFeedback(), fake_scanners)
        reader.start()
        try:
            return await scenario(reader)
        finally:
            await reader.close()
    return asyncio.run(main())


async def scan_all(reader, ids=IDS) -> None:
    await until(lambda: reader.roster.size() == DEMO_ROSTER_SIZE, what="the first roster sync")
    for text in ids:
        assert reader.scanners[0].scan(text)


async def delivered(reader, count: int = len(IDS), timeout: float = 10.0) -> None:
    """Wait until `count` check-ins have left the queue (scans are recorded a moment after they are made)."""
    def done() -> bool:
        return reader.outbox.depth() == 0 and len(reader.outbox.recent(1000)) + reader.outbox.dead_letter_count() \
            == count
    await until(done, timeout, what=f"{count} check-ins delivered")


def server_ids(site: Site) -> list[str]:
    return [c["client_id"] for c in site.checkins()]


def test_a_rejected_token_stops_delivery_keeps_the_queue_and_shows_in_status(site, proxy, tmp_path):
    state = str(tmp_path / "state")
    bad_token = tmp_path / "bad-token"
    bad_token.write_text("not-a-token\n")
    settings = reader_settings(state, proxy.url, str(bad_token))

    async def scenario(reader):
        await until(lambda: reader.connectivity.auth_rejected, what="the roster sync to meet the 401")
        for text in IDS:
            assert reader.scanners[0].scan(text)
        await until(lambda: reader.outbox.depth() == len(IDS), what="the check-ins to be recorded")
        reader.write_status()
        return collect(state)

    status = run_reader(settings, scenario)
    assert proxy.hits_on(CHECKINS) == [] and server_ids(site) == []
    assert status["queue_depth"] == len(IDS) and status["server"]["reachable"] is True
    assert "token rejected" in status["server"]["auth_rejected"]
    assert "TOKEN REJECTED" in format_status(status)

    fixed = reader_settings(state, proxy.url, site.token_file)  # what a reload with the right token does
    run_reader(fixed, delivered)
    assert server_ids(site) == IDS


def test_throttling_429_retry_after_is_honoured_then_delivered(site, proxy, tmp_path):
    settings = reader_settings(str(tmp_path / "state"), proxy.url, site.token_file,
                               delivery=DeliverySettings(batch_size=20, backoff_initial_s=0.05, backoff_max_s=5.0))
    proxy.inject(CHECKINS, "429", status_reply(429, {"Retry-After": "1"}), times=2)

    async def scenario(reader):
        await scan_all(reader)
        await delivered(reader, timeout=15)

    run_reader(settings, scenario)
    hits = proxy.hits_on(CHECKINS)
    assert [hit.fault for hit in hits[:3]] == ["429", "429", ""]
    assert hits[1].at - hits[0].at >= 0.95 and hits[2].at - hits[1].at >= 0.95
    assert sorted(server_ids(site)) == sorted(IDS)


def test_server_errors_back_off_then_deliver_everything_once(site, proxy, tmp_path):
    settings = reader_settings(str(tmp_path / "state"), proxy.url, site.token_file)
    proxy.inject(CHECKINS, "500", status_reply(500), times=3)

    async def scenario(reader):
        await scan_all(reader)
        await delivered(reader)
        return reader.connectivity.reachable

    assert run_reader(settings, scenario) is True
    assert [hit.fault for hit in proxy.hits_on(CHECKINS)][:3] == ["500"] * 3
    assert sorted(server_ids(site)) == sorted(IDS)


@pytest.mark.parametrize("broken", [garbage_reply(), garbage_reply("application/json", b'{"results": []}'),
                                    garbage_reply("application/json", b'{"results": [')],
                         ids=["html", "wrong-shape", "truncated-json"])
def test_a_malformed_reply_is_retried_and_nothing_is_lost_or_doubled(site, proxy, tmp_path, broken):
    settings = reader_settings(str(tmp_path / "state"), proxy.url, site.token_file)
    proxy.inject(CHECKINS, "broken", broken, times=2, forward_first=True)  # the server did record them

    async def scenario(reader):
        await scan_all(reader)
        await delivered(reader)
        return {e.result for e in reader.outbox.recent()}

    results = run_reader(settings, scenario)
    assert "duplicate" in results
    assert sorted(server_ids(site)) == sorted(IDS)


def test_an_event_the_server_rejects_is_dead_lettered_and_the_rest_delivered(site, tmp_path):
    state = tmp_path / "state"
    settings = reader_settings(str(state), site.url, site.token_file, scan=ScanSettings(max_length=300),
                               delivery=DeliverySettings(batch_size=20, backoff_initial_s=0.05, backoff_max_s=0.2))
    too_long = "A" * 257  # valid for this reader, longer than the contract's 256 characters
    ids = IDS[:2] + [too_long] + IDS[2:]

    async def scenario(reader):
        await until(lambda: reader.roster.size() == DEMO_ROSTER_SIZE, what="the first roster sync")
        site.stop()  # queue them all, so that one batch carries the bad event among the good ones
        for text in ids:
            assert reader.scanners[0].scan(text)
        await until(lambda: reader.outbox.depth() == len(ids), what="the check-ins to be queued")
        site.restart()
        await delivered(reader, len(ids))
        return reader.outbox.dead_letters()

    dead = run_reader(settings, scenario)
    assert [d.event.client_id for d in dead] == [too_long]
    assert "rejected by the server" in dead[0].reason and "400" in dead[0].reason
    assert server_ids(site) == IDS
    config = tmp_path / "tagd.toml"
    config.write_text(f'[state]\ndir = "{state}"\n')
    shown = subprocess.run([*TAGD, "status", "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert "dead letters     1" in shown.stdout
    as_json = subprocess.run([*TAGD, "status", "--json", "--config", str(config)], capture_output=True, timeout=30)
    assert json.loads(as_json.stdout)["dead_letters"] == 1


def test_a_refused_roster_request_is_not_taken_for_an_outage(site, proxy, tmp_path):
    settings = reader_settings(str(tmp_path / "state"), proxy.url, site.token_file)

    async def scenario(reader):
        await until(lambda: reader.roster.size() == DEMO_ROSTER_SIZE, what="the first roster sync")
        proxy.inject(ROSTER, "400", status_reply(400))
        assert await reader.sync.sync_once() is None
        assert reader.scanners[0].scan(MEMBER)
        await delivered(reader, 1)
        return reader.connectivity.reachable

    feedback = RecordingFeedback()
    assert run_reader(settings, scenario, feedback) is True
    assert feedback.outcomes() == [(MEMBER, "accepted", False)]
