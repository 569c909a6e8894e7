"""Link mode end to end: the coordinator, a real roster file and the real reference server on loopback.

The staff button and the feedback outputs are stand-ins (method calls, a list of signal names); the server
requests, the worker thread, the roster writes and the timers are the real ones.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time

import pytest
import requests

from daemon import sqlite_util
from daemon.api_client import ServerClient
from daemon.connectivity import Connectivity
from daemon.linking import LinkCoordinator
from daemon.linkmode import LinkMode, State
from daemon.privacy import client_hash
from daemon.roster import RosterCache
from daemon.rostersync import RosterSync, RosterSyncWorker
from daemon.scan import Kind, Reason, ScanResult
from daemon.settings import LinkSettings, ServerSettings, SyncSettings
from daemon.workers import WorkerThread
from server.demo import seed_demo
from server.embedded import start_server

WAIT_S = 5.0  # generous bound for a loopback answer; never a speed assertion


class SignalRecorder:
    """The feedback outputs as a list of the signal names they were asked to show."""

    def __init__(self):
        self.names: list[str] = []

    def signal(self, name: str) -> None:
        self.names.append(str(name))


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for the tests that leave it running; each test gets its own business in it."""
    db = str(tmp_path_factory.mktemp("server") / "server.db")
    with start_server(db) as handle:
        yield handle, db


def seeded(handle, db: str) -> dict:
    """A new demo business on the server and this reader enrolled in it."""
    business = seed_demo(db)
    settings = ServerSettings(url=handle.url, connect_timeout_s=2.0, read_timeout_s=5.0)
    with ServerClient(settings) as anonymous:
        enrolment = anonymous.enrol(business["enrolment_code"]["code"], "pi-serial-0001", "Front door")
    return business | {"url": handle.url, "settings": settings, "enrolment": enrolment, "handle": handle}


@pytest.fixture
def demo(shared_server):
    return seeded(*shared_server)


@pytest.fixture
def stoppable_demo(tmp_path):
    """A server of the test's own, which it may stop."""
    db = str(tmp_path / "server.db")
    with start_server(db) as handle:
        yield seeded(handle, db)


@pytest.fixture
def roster(tmp_path):
    """The reader's roster as a sync would leave it: the demo clients M1001..M1036 (M1007 inactive), except
    M1003 (as if the roster were stale)."""
    with RosterCache(str(tmp_path / "roster.db")) as cache:
        cache.apply_delta([(f"M{number}", "inactive" if number == 1007 else "active")
                           for number in range(1001, 1037) if number != 1003], "1", None, 0.0)
        yield cache


class Reader:
    """The link mode parts of one reader, wired as tagd wires them."""

    def __init__(self, demo, roster: RosterCache, settings: LinkSettings):
        self.demo, self.roster = demo, roster
        self.feedback, self.connectivity = SignalRecorder(), Connectivity()
        self.client = ServerClient(demo["settings"], demo["enrolment"].token)
        self.thread = WorkerThread("tagd-link-test")
        self.link = LinkCoordinator(LinkMode(settings), self.client, self.thread, roster, self.feedback,
                                    self.connectivity)

    @property
    def signals(self) -> list[str]:
        return self.feedback.names

    def scan(self, text: str, kind: Kind = Kind.VALID) -> bool:
        client_id = text if kind in (Kind.VALID, Kind.DUPLICATE) else None
        reason = {Kind.INVALID: Reason.TOO_SHORT, Kind.DUPLICATE: Reason.DUPLICATE}.get(kind)
        return self.link.take(ScanResult(kind, "front", "fake", text, time.time(), client_id, reason))

    async def settled(self) -> None:
        await asyncio.wait_for(self.link.drain(), WAIT_S)

    async def until_signal(self, name: str) -> None:
        async with asyncio.timeout(WAIT_S):
            while name not in self.signals:
                await asyncio.sleep(0.01)

    def close(self) -> None:
        self.link.close()
        self.thread.shutdown()
        self.client.close()


def run(demo, roster, story, settings: LinkSettings = LinkSettings(staff_cards=("STAFF01",))) -> Reader:
    async def main() -> Reader:
        reader = Reader(demo, roster, settings)
        try:
            await story(reader)
        finally:
            reader.close()
        return reader

    return asyncio.run(main())


def office(demo, method: str, path: str, **kwargs) -> requests.Response:
    """A back-office call with the demo's staff token (what staff do at the desk)."""
    headers = {"Authorization": f"Bearer {demo['staff_token']}"}
    response = requests.request(method, demo["url"] + path, headers=headers, timeout=WAIT_S, **kwargs)
    assert response.ok, response.text
    return response


def ref_of(demo, client_id: str) -> int:
    return next(c["ref"] for c in demo["clients"] if c["client_id"] == client_id)


def client(demo, ref: int) -> dict:
    return office(demo, "GET", f"/v1/clients/{ref}").json()


# ---- the desk's link target --------------------------------------------------------------------------------------

def test_staff_select_a_client_press_and_scan_and_the_tag_checks_in_at_once(demo, roster, caplog):
    new = office(demo, "POST", "/v1/clients", json={"name": "Nina Walk-in"}).json()
    office(demo, "PUT", f"/v1/devices/{demo['enrolment'].device_id}/link-target", json={"client_ref": new["ref"]})

    async def story(reader: Reader) -> None:
        reader.link.press()
        await reader.settled()
        assert reader.link.machine.state is State.AWAIT_TAG
        assert reader.scan("TAG4242")
        await reader.settled()

    with caplog.at_level(logging.DEBUG, logger="tagd.link"):
        reader = run(demo, roster, story)
    assert reader.signals == ["link-mode-on", "link-mode-off", "linked"]
    assert not reader.link.is_active
    assert client(demo, new["ref"])["client_id"] == "TAG4242"
    assert roster.lookup("tag4242") == "active"
    assert office(demo, "GET", f"/v1/devices/{demo['enrolment'].device_id}/link-target").json() == {"target": None}
    assert "TAG4242" not in caplog.text and "tag4242" not in caplog.text
    assert f"linked tag={client_hash('TAG4242')}" in caplog.text
    assert f"link attempt tag={client_hash('TAG4242')}" in caplog.text


def test_a_tag_the_roster_does_not_know_but_the_server_does_is_a_conflict(demo, roster, caplog):
    new = office(demo, "POST", "/v1/clients", json={"name": "Nina Walk-in"}).json()
    office(demo, "PUT", f"/v1/devices/{demo['enrolment'].device_id}/link-target", json={"client_ref": new["ref"]})

    async def story(reader: Reader) -> None:
        reader.link.press()
        await reader.settled()
        reader.scan("M1003")  # another client's ID, missing from the stale roster: the server says 409 id_taken
        await reader.settled()
        assert reader.link.machine.state is State.AWAIT_TAG  # another tag may be scanned
        reader.link.long_press()

    with caplog.at_level(logging.DEBUG, logger="tagd.link"):
        reader = run(demo, roster, story)
    assert reader.signals == ["link-mode-on", "link-conflict", "link-mode-off"]
    assert "HTTP 409 id_taken" in caplog.text and "M1003" not in caplog.text  # the server's message names it
    assert client(demo, new["ref"])["client_id"] is None
    assert client(demo, ref_of(demo, "M1003"))["client_id"] == "M1003"
    assert roster.lookup("M1003") is None and reader.connectivity.reachable is True


# ---- two scans -------------------------------------------------------------------------------------------------------

def test_two_scans_and_a_confirming_press_replace_the_clients_id(demo, roster):
    async def story(reader: Reader) -> None:
        syncer = RosterSyncWorker(RosterSync(roster, reader.client, 100), SyncSettings(interval_s=3600, jitter_s=0),
                                  reader.connectivity, reader.thread)
        reader.link.after_link = lambda client_id: syncer.request()
        sync_task = asyncio.create_task(syncer.run())
        reader.link.press()
        await reader.settled()
        assert reader.link.machine.state is State.AWAIT_CLIENT
        reader.scan("m1002")  # the client's current ID, as any case
        reader.scan("TAG7777")
        await reader.settled()
        assert reader.signals[-1] == "confirm-needed"
        assert client(demo, ref_of(demo, "M1002"))["client_id"] == "M1002"  # nothing replaced yet
        reader.link.press()
        await reader.settled()
        assert roster.lookup("TAG7777") == "active"
        async with asyncio.timeout(WAIT_S):  # the sync asked for after the link removes the replaced ID
            while roster.lookup("M1002") is not None:
                await asyncio.sleep(0.01)
        sync_task.cancel()

    reader = run(demo, roster, story)
    assert reader.signals == ["link-mode-on", "accepted", "confirm-needed", "link-mode-off", "linked"]
    assert client(demo, ref_of(demo, "M1002"))["client_id"] == "TAG7777"
    assert roster.lookup("TAG7777") == "active" and roster.lookup("M1002") is None


def test_an_unconfirmed_replacement_changes_nothing_and_ends_link_mode(demo, roster):
    async def story(reader: Reader) -> None:
        reader.link.press()
        await reader.settled()
        reader.scan("M1002")
        reader.scan("TAG7777")
        await reader.settled()
        await reader.until_signal("link-mode-off")  # the loop's timer ends the confirmation window

    reader = run(demo, roster, story, LinkSettings(confirm_s=0.05))
    assert reader.signals == ["link-mode-on", "accepted", "confirm-needed", "link-mode-off"]
    assert client(demo, ref_of(demo, "M1002"))["client_id"] == "M1002"
    assert roster.lookup("TAG7777") is None and not reader.link.is_active


def test_the_roster_refuses_a_known_tag_without_asking_the_server(stoppable_demo, roster):
    demo = stoppable_demo

    async def story(reader: Reader) -> None:
        reader.link.press()
        await reader.settled()
        reader.scan("M1002")
        demo["handle"].stop()  # from here on, any request would fail as offline
        reader.scan("M1004")  # another client's ID in the local roster
        await reader.settled()
        assert reader.signals[-1] == "link-conflict" and reader.link.is_active
        reader.scan("TAG8888")
        await reader.settled()

    reader = run(demo, roster, story)
    assert reader.signals == ["link-mode-on", "accepted", "link-conflict", "link-mode-off", "offline"]
    assert roster.lookup("TAG8888") is None and reader.connectivity.offline


# ---- offline, staff cards, time ------------------------------------------------------------------------------------

def test_link_mode_is_refused_with_the_offline_signal_when_the_server_is_down(stoppable_demo, roster):
    demo = stoppable_demo
    demo["handle"].stop()

    async def story(reader: Reader) -> None:
        reader.link.press()
        await reader.settled()

    reader = run(demo, roster, story)
    assert reader.signals == ["link-mode-on", "link-mode-off", "offline"]
    assert not reader.link.is_active and reader.connectivity.offline


def test_a_staff_card_enters_link_mode_and_is_never_a_checkin(demo, roster):
    async def story(reader: Reader) -> None:
        assert not reader.scan("M1001")  # in check-in mode a member's scan is the desk's
        assert not reader.scan("xx", Kind.INVALID)
        assert reader.scan("staff01")
        await reader.settled()
        assert reader.link.is_active
        assert reader.scan("STAFF01", Kind.DUPLICATE)  # the same card re-read: taken, and nothing happens
        assert reader.scan("xx", Kind.INVALID)  # in link mode every scan is link mode's
        assert reader.link.is_active
        assert reader.scan("STAFF01")  # shown again: leave
        assert not reader.link.is_active

    reader = run(demo, roster, story)
    assert reader.signals == ["link-mode-on", "invalid", "link-mode-off"]


def test_link_mode_ends_by_itself_after_its_timeout(demo, roster):
    async def story(reader: Reader) -> None:
        reader.link.command()
        await reader.settled()
        await reader.until_signal("link-mode-off")

    reader = run(demo, roster, story, LinkSettings(timeout_s=0.05))
    assert reader.signals == ["link-mode-on", "link-mode-off"] and not reader.link.is_active


def test_a_link_the_roster_cannot_store_is_still_linked_and_the_failure_logged(demo, tmp_path, monkeypatch,
                                                                              caplog):
    new = office(demo, "POST", "/v1/clients", json={"name": "Nina Walk-in"}).json()
    office(demo, "PUT", f"/v1/devices/{demo['enrolment'].device_id}/link-target", json={"client_ref": new["ref"]})
    monkeypatch.setattr(sqlite_util, "BUSY_TIMEOUT_MS", 50)  # fail fast on the lock below
    path = str(tmp_path / "locked-roster.db")
    synced = []

    async def story(reader: Reader) -> None:
        reader.link.after_link = lambda client_id: synced.append(client_id)
        reader.link.press()
        await reader.settled()
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the roster: lookups go on, writes fail
        try:
            reader.scan("TAG4343")
            await reader.settled()
        finally:
            other.rollback()
            other.close()

    with RosterCache(path) as roster, caplog.at_level(logging.INFO, logger="tagd.link"):
        reader = run(demo, roster, story)
        assert roster.lookup("TAG4343") is None
    assert reader.signals == ["link-mode-on", "link-mode-off", "linked"]  # the server has it: it is linked
    assert client(demo, new["ref"])["client_id"] == "TAG4343"
    assert "the roster could not be updated" in caplog.text and "locked" in caplog.text
    assert "TAG4343" not in caplog.text and client_hash("TAG4343") in caplog.text
    assert synced == ["TAG4343"]  # the sync asked for afterwards brings the tag


def test_stopping_the_reader_in_link_mode_turns_link_mode_off(demo, roster):
    async def story(reader: Reader) -> None:
        reader.link.press()
        await reader.settled()
        assert reader.link.is_active  # run() closes the reader here

    reader = run(demo, roster, story)
    assert reader.signals == ["link-mode-on", "link-mode-off"] and not reader.link.is_active
    assert reader.link._timer is None
