"""The server client against the real reference server on loopback, seeded with the demo business."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from daemon.api_client import ServerClient
from daemon.api_types import CheckinEvent, CheckinOutcome, NotModified, RosterPage, RosterStatus
from daemon.errors import AuthRejected, Conflict, CursorExpired, RequestRejected
from daemon.settings import ServerSettings
from server.demo import seed_demo
from server.embedded import start_server


class Clock:
    """The server's clock, moved by the test (tombstone pruning is judged by it)."""

    def __init__(self):
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def demo(tmp_path, clock):
    db = str(tmp_path / "server.db")
    seeded = seed_demo(db)
    with start_server(db, clock=clock, tombstone_retention=timedelta(days=1), prune_interval=timedelta(0)) as handle:
        seeded["url"] = handle.url
        yield seeded


def settings(demo) -> ServerSettings:
    return ServerSettings(url=demo["url"], connect_timeout_s=2.0, read_timeout_s=5.0)


@pytest.fixture
def enrolment(demo):
    with ServerClient(settings(demo)) as anonymous:
        return anonymous.enrol(demo["enrolment_code"]["code"], "pi-serial-0001", "Front desk")


@pytest.fixture
def device(demo, enrolment):
    with ServerClient(settings(demo), enrolment.token) as client:
        yield client


def office(demo, method: str, path: str, **kwargs) -> requests.Response:
    """A back-office call with the demo's staff token (what a person does in the web UI)."""
    headers = {"Authorization": f"Bearer {demo['staff_token']}"}
    response = requests.request(method, demo["url"] + path, headers=headers, timeout=5, **kwargs)
    assert response.ok, response.text
    return response


def client_ref(demo, client_id: str) -> int:
    return next(c["ref"] for c in demo["clients"] if c["client_id"] == client_id)


def event(client_id: str, decision: str = "accepted", offline: bool = False, event_id: str | None = None):
    moment = datetime(2026, 3, 2, 7, 30, tzinfo=timezone(timedelta(hours=1)))
    return CheckinEvent(event_id or str(uuid.uuid4()), client_id, moment, decision, offline)


def full_sync(device: ServerClient, limit: int) -> tuple[list[RosterPage], dict[str, RosterStatus]]:
    pages = [device.roster_page(limit=limit)]
    while pages[-1].more:
        pages.append(device.roster_page(pages[-1].next_cursor, limit=limit))
    return pages, {entry.client_id: entry.status for page in pages for entry in page.items}


# --- health, enrolment, identity ----------------------------------------------------------------------------------

def test_health_answers_without_a_token_and_gives_the_servers_time(demo):
    with ServerClient(settings(demo)) as client:
        health = client.health()
    assert health.status == "ok" and health.api_version
    assert health.server_time is not None and health.server_time.tzinfo is not None


def test_enrolment_binds_the_device_to_the_codes_location(demo, enrolment):
    assert enrolment.business_id == demo["business_id"]
    assert enrolment.location_id == demo["locations"][0]["id"] and enrolment.location_name == "Downtown"
    assert enrolment.token and enrolment.token not in repr(enrolment)


def test_an_enrolment_code_works_once(demo, enrolment):
    with ServerClient(settings(demo)) as client, pytest.raises(Conflict) as raised:
        client.enrol(demo["enrolment_code"]["code"], "pi-serial-0002", "Back door")
    assert raised.value.code == "enrolment_code_used" and "POST /v1/device/enrol: HTTP 409" in str(raised.value)


def test_an_unknown_enrolment_code_is_rejected(demo):
    with ServerClient(settings(demo)) as client, pytest.raises(RequestRejected) as raised:
        client.enrol("AAAA-BBBB-CCCC", "pi-serial-0003", "Side door")
    assert (raised.value.status, raised.value.code) == (404, "enrolment_code_unknown")


def test_me_describes_the_enrolled_device(device, enrolment):
    me = device.me()
    assert (me.device_id, me.name, me.location_id) == (enrolment.device_id, "Front desk", enrolment.location_id)
    assert (me.id_min_length, me.id_max_length) == (4, 32)


def test_an_unknown_token_is_rejected_without_retry(demo, enrolment):
    with ServerClient(settings(demo), "not-" + enrolment.token) as client, pytest.raises(AuthRejected) as raised:
        client.me()
    assert raised.value.status == 401 and not raised.value.retryable


def test_a_staff_token_may_not_act_as_a_device(demo):
    with ServerClient(settings(demo), demo["staff_token"]) as client, pytest.raises(AuthRejected) as raised:
        client.roster_page()
    assert (raised.value.status, raised.value.code) == (403, "forbidden")


# --- roster -------------------------------------------------------------------------------------------------------

def test_a_full_sync_in_pages_yields_every_client_with_its_status(demo, device):
    pages, roster = full_sync(device, limit=10)
    assert [len(page.items) for page in pages] == [10, 10, 10, 6]
    assert [page.more for page in pages] == [True, True, True, False]
    assert pages[0].reset and all(page.etag for page in pages)
    assert roster == {c["client_id"]: RosterStatus(c["status"]) for c in demo["clients"]}
    assert roster["M1007"] is RosterStatus.INACTIVE


def test_an_unchanged_roster_costs_a_304_and_a_change_shows_up(demo, device):
    pages, _ = full_sync(device, limit=1000)
    first_poll = device.roster_page(pages[-1].next_cursor)
    assert isinstance(first_poll, RosterPage) and first_poll.items == () and not first_poll.reset
    again = device.roster_page(first_poll.next_cursor, etag=first_poll.etag)
    assert again == NotModified(first_poll.etag)
    office(demo, "PATCH", f"/v1/clients/{client_ref(demo, 'M1002')}", json={"status": "inactive"})
    changed = device.roster_page(first_poll.next_cursor, etag=first_poll.etag)
    assert isinstance(changed, RosterPage)
    assert [(e.client_id, e.status) for e in changed.items] == [("M1002", RosterStatus.INACTIVE)]


def test_a_cursor_the_server_never_issued_is_expired(device):
    with pytest.raises(CursorExpired) as raised:
        device.roster_page("999999999")
    assert raised.value.code == "cursor_expired" and not raised.value.retryable


def test_a_cursor_older_than_the_pruned_change_log_is_expired(demo, device, clock):
    pages, _ = full_sync(device, limit=1000)
    office(demo, "DELETE", f"/v1/clients/{client_ref(demo, 'M1036')}/client-id")  # a tombstone
    clock.now += timedelta(days=2)  # past the one-day retention: the next roster call prunes it
    with pytest.raises(CursorExpired, match="GET /v1/device/roster: HTTP 410 cursor_expired"):
        device.roster_page(pages[-1].next_cursor)
    _, roster = full_sync(device, limit=1000)
    assert "M1036" not in roster and len(roster) == 35


# --- check-ins ----------------------------------------------------------------------------------------------------

def test_checkins_are_recorded_then_duplicate_on_resend(device):
    batch = [event("M1001"), event("M1007", "rejected"), event("ZZZZ9", "accepted", offline=True)]
    first = device.send_checkins(batch)
    assert [r.result for r in first] == [CheckinOutcome.ACCEPTED, CheckinOutcome.INACTIVE,
                                         CheckinOutcome.UNKNOWN_CLIENT]
    assert [r.event_id for r in first] == [e.event_id for e in batch]
    assert {r.result for r in device.send_checkins(batch)} == {CheckinOutcome.DUPLICATE}


def test_a_reused_event_id_with_other_content_is_a_conflict_result(device):
    original = event("M1001")
    device.send_checkins([original])
    [result] = device.send_checkins([event("M1003", event_id=original.event_id)])
    assert result.result is CheckinOutcome.CONFLICT and result.message


def test_an_empty_batch_sends_nothing(device):
    assert device.send_checkins([]) == []


# --- linking tags -------------------------------------------------------------------------------------------------

def test_linking_through_the_link_target_consumes_it(demo, device, enrolment):
    assert device.link_target() is None
    created = office(demo, "POST", "/v1/clients", json={"name": "Nina Walk-in"}).json()
    office(demo, "PUT", f"/v1/devices/{enrolment.device_id}/link-target", json={"client_ref": created["ref"]})
    target = device.link_target()
    assert target is not None and target.client.ref == created["ref"] and target.client.client_id is None
    change = device.link("TAG4242")
    assert change.changed and change.client.client_id == "TAG4242" and change.previous_client_id is None
    assert device.link_target() is None


def test_linking_without_a_target_is_rejected(device):
    with pytest.raises(RequestRejected) as raised:
        device.link("TAG5555")
    assert (raised.value.status, raised.value.code) == (404, "no_link_target")


def test_a_tag_that_is_another_clients_id_is_a_conflict(device):
    with pytest.raises(Conflict) as raised:
        device.link("m1001", client_id="M1002")  # IDs are unique case-insensitively
    assert raised.value.code == "id_taken" and not raised.value.retryable


def test_replacing_an_id_needs_replace_and_a_retry_changes_nothing(device):
    with pytest.raises(Conflict) as raised:
        device.link("NEWTAG01", client_id="M1002")
    assert raised.value.code == "id_exists"
    change = device.link("NEWTAG01", client_id="M1002", replace=True)
    assert change.changed and change.previous_client_id == "M1002" and change.client.client_id == "NEWTAG01"
    assert not device.link("NEWTAG01", client_id="NEWTAG01").changed


def test_a_tag_breaking_the_id_rules_is_rejected(device):
    with pytest.raises(RequestRejected) as raised:
        device.link("AB", client_id="M1002", replace=True)  # shorter than the business's minimum of 4
    assert (raised.value.status, raised.value.code) == (422, "invalid_id")
