"""Roster sync inside `tagd run` against the real server: a 50k full resync while scans go on, a crash in the middle
of one, 410 (cursor expired) and 304 (nothing changed)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time

import pytest

from daemon.api_client import ServerClient
from daemon.bootstrap import load_settings, make_reader, sync_roster_now
from daemon.errors import Unreachable
from daemon.roster import RosterCache
from daemon.rostersync import RosterSync
from daemon.service import Reader
from daemon.settings import ServerSettings, SyncSettings
from daemon.status import collect

from .run_support import (DEMO_ROSTER_SIZE, MEMBER, Daemon, RecordingFeedback, Site, config_toml, fake_scanners,
                          reader_settings, until, wait_until)

LARGE = 50_000
CRASH_LARGE = 20_000  # ten pages: the kill lands long before the last
PAGE = 5000


def settings_for(site: Site) -> ServerSettings:
    return ServerSettings(url=site.url)


class FullSyncGate:
    """Test seam on our side of the wire: the real client's full-sync page reads stop after `pages` pages until
    released, so scans can be made at a known point in the middle of a full sync."""

    def __init__(self, pages: int):
        self.pages, self.armed, self._count = pages, False, None
        self.reached, self.release = threading.Event(), threading.Event()

    def wrap(self, client: ServerClient) -> ServerClient:
        read_page = client.roster_page

        def roster_page(cursor=None, **options):
            if self.armed and cursor is None:
                self._count = 0  # a full sync starts without a cursor
            if self._count is not None:
                if self._count == self.pages:
                    self.reached.set()
                    assert self.release.wait(30), "the test never released the full sync"
                self._count += 1
            return read_page(cursor, **options)

        client.roster_page = roster_page
        return client


def test_a_large_full_resync_runs_beside_scans_decided_from_the_old_roster(site, tmp_path):
    state = str(tmp_path / "state")
    settings = reader_settings(state, site.url, site.token_file, sync=SyncSettings(300.0, 0.0, PAGE))
    gate, feedback = FullSyncGate(pages=2), RecordingFeedback()
    clients = lambda: gate.wrap(ServerClient(settings.server, site.token))  # noqa: E731

    async def scenario():
        reader = Reader(settings, feedback, clients, fake_scanners)
        reader.start()
        try:
            await until(lambda: reader.roster.size() == DEMO_ROSTER_SIZE, what="the first roster sync")
            new_ids = site.add_clients(LARGE)
            gone = site.expire_cursors()  # the newest change: the full sync's pages start below the horizon
            site.set_status("M1002", "inactive")
            gate.armed = True
            reader.sync.request()
            await until(gate.reached.is_set, timeout=30, what="the full sync to be under way")
            assert os.path.exists(reader.roster.new_path)
            scanner = reader.scanners[0]
            during = ["M1002", new_ids[1], gone, MEMBER]
            for text in during:
                assert scanner.scan(text)
            await until(lambda: len(feedback.decisions) == len(during), what="the scans during the sync")
            gate.release.set()
            await until(lambda: reader.roster.size() == DEMO_ROSTER_SIZE - 1 + LARGE, timeout=60,
                        what="the full sync")
            assert reader.sync.last_report.kind == "full"
            after = ["M1002", new_ids[2], gone]
            for text in after:
                assert scanner.scan(text, at=time.time() + 60)  # past the debounce of the same IDs above
            await until(lambda: reader.outbox.depth() == 0 and len(feedback.decisions) == 7, what="delivery")
        finally:
            gate.release.set()
            await reader.close()

    asyncio.run(scenario())
    outcomes = [outcome for _, outcome, _ in feedback.outcomes()]
    assert outcomes[:4] == ["accepted", "denied_unknown", "accepted", "accepted"]  # the old roster decided
    assert outcomes[4:] == ["denied_inactive", "accepted", "denied_unknown"]  # the new one
    assert [c["client_id"] for c in site.checkins()] == [d.scan.client_id for d in feedback.decisions]


def test_kill_9_in_the_middle_of_a_full_sync_keeps_the_old_roster(site, tmp_path):
    state = tmp_path / "state"
    config = tmp_path / "tagd.toml"
    config.write_text(config_toml(str(state), site.url, site.token_file, sync={"page_size": 2000}))
    assert sync_roster_now(load_settings(str(config))).size == DEMO_ROSTER_SIZE
    new_ids = site.add_clients(CRASH_LARGE)
    gone = site.expire_cursors()
    roster_path = str(state / "roster.db")

    daemon = Daemon(str(config), str(tmp_path / "tagd.log"))
    wait_until(lambda: os.path.exists(roster_path + ".new"), timeout=30, what="the full sync to begin")
    daemon.kill()
    assert "roster full sync" not in daemon.log()
    assert os.path.exists(roster_path + ".new"), "the crash left no partial roster: the kill came too late"
    with RosterCache(roster_path) as roster:  # what the next start finds
        assert not os.path.exists(roster_path + ".new")
        assert roster.size() == DEMO_ROSTER_SIZE
        assert (roster.lookup(gone), roster.lookup(new_ids[0])) == ("active", None)

    daemon = Daemon(str(config), str(tmp_path / "tagd.log"))
    try:
        wait_until(lambda: collect(str(state))["roster_size"] == DEMO_ROSTER_SIZE - 1 + CRASH_LARGE, timeout=60,
                   what="the full sync after the restart")
    finally:
        assert daemon.stop() == 0
    with RosterCache(roster_path) as roster:
        assert (roster.lookup(gone), roster.lookup(new_ids[0])) == (None, "active")


def test_an_expired_cursor_410_brings_a_full_resync_that_drops_deleted_ids(site, tmp_path):
    settings = reader_settings(str(tmp_path / "state"), site.url, site.token_file)

    async def scenario():
        reader = make_reader(settings, RecordingFeedback(), fake_scanners)
        reader.start()
        try:
            await until(lambda: reader.roster.size() == DEMO_ROSTER_SIZE, what="the first roster sync")
            gone = site.expire_cursors()
            report = await reader.sync.sync_once()
            return report, reader.roster.lookup(gone), reader.connectivity.reachable
        finally:
            await reader.close()

    report, status_of_gone, reachable = asyncio.run(scenario())
    assert (report.kind, report.size, status_of_gone, reachable) == ("full", DEMO_ROSTER_SIZE - 1, None, True)


def test_an_unchanged_roster_costs_a_304_and_no_write(site, tmp_path):
    state = str(tmp_path / "state")
    settings = reader_settings(state, site.url, site.token_file)
    roster_db = os.path.join(state, "roster.db")

    def commits_by_others(watch: sqlite3.Connection) -> int:
        return watch.execute("PRAGMA data_version").fetchone()[0]  # changes when another connection commits

    async def scenario():
        reader = make_reader(settings, RecordingFeedback(), fake_scanners)
        reader.start()
        watch = sqlite3.connect(f"file:{roster_db}?mode=ro", uri=True)
        try:
            await until(lambda: reader.roster.size() == DEMO_ROSTER_SIZE, what="the first roster sync")
            kinds = [(await reader.sync.sync_once()).kind]  # the first poll on a new cursor is a 200
            before, synced_at = commits_by_others(watch), reader.roster.meta().synced_at
            for _ in range(3):
                kinds.append((await reader.sync.sync_once()).kind)
            assert commits_by_others(watch) == before and reader.roster.meta().synced_at == synced_at
            site.set_status(MEMBER, "inactive")
            kinds.append((await reader.sync.sync_once()).kind)
            assert commits_by_others(watch) != before and reader.roster.lookup(MEMBER) == "inactive"
            reader.write_status()
            return kinds, collect(state), reader.sync.last_success
        finally:
            watch.close()
            await reader.close()

    kinds, status, last_success = asyncio.run(scenario())
    assert kinds == ["delta", "unchanged", "unchanged", "unchanged", "delta"]
    assert status["roster_synced_at"] == last_success and status["roster_age_s"] < 5


def test_a_full_sync_of_several_pages_succeeds_after_a_recent_tombstone_prune(site, tmp_path):
    site.add_clients(100)
    site.expire_cursors()  # the pruned tombstone is the newest change: its seq lies above the first pages
    with RosterCache(str(tmp_path / "roster.db")) as roster, ServerClient(settings_for(site), site.token) as client:
        report = RosterSync(roster, client, page_size=50).sync()
    assert (report.kind, report.size) == ("full", DEMO_ROSTER_SIZE - 1 + 100)


class FailingPages:
    """Test seam on our side of the wire: the real client's page reads, counted; read number `fail_at` is refused
    as if the server had gone away, and any read after it is recorded (there must be none)."""

    def __init__(self, client: ServerClient, fail_at: int):
        self.reads, self.fail_at, self.after_failure = 0, fail_at, 0
        read_page = client.roster_page

        def roster_page(cursor=None, **options):
            self.reads += 1
            if self.reads == self.fail_at:
                raise Unreachable("GET /v1/device/roster", "connection refused (test)")
            if self.reads > self.fail_at:
                self.after_failure += 1
            return read_page(cursor, **options)

        client.roster_page = roster_page


def test_a_full_sync_that_loses_the_server_mid_way_keeps_the_old_roster_and_reads_no_further(site, tmp_path):
    site.add_clients(200)
    path = str(tmp_path / "roster.db")
    with RosterCache(path) as roster, ServerClient(settings_for(site), site.token) as client:
        RosterSync(roster, client, page_size=100).full()
        before = roster.meta()
        pages = FailingPages(client, fail_at=2)
        with pytest.raises(Unreachable):
            RosterSync(roster, client, page_size=50).full()
        assert (pages.reads, pages.after_failure) == (2, 0)
        assert roster.meta() == before and roster.lookup(MEMBER) is not None
        assert not os.path.exists(roster.new_path)
        # the client is free again: the next sync uses it from this thread
        assert RosterSync(roster, client, page_size=100).sync().kind in ("unchanged", "delta")
