"""Device behaviour through the Flask test client: enrolment, roster feed, check-ins, links."""

from __future__ import annotations

import json
import uuid

from tests.integration.server_support import error_code, world  # noqa: F401  (fixture)


def _code(world, **body) -> str:
    return world.staff("POST", "/v1/enrolment-codes", json={"location_id": world.north} | body).json["code"]


def _enrol(world, code: str):
    return world.call(None, "POST", "/v1/device/enrol", json={"code": code, "hardware_id": "pi-7", "name": "gate"})


def test_enrolment_gives_a_token_bound_to_the_location(world):
    reply = _enrol(world, _code(world).lower().replace("-", " "))
    assert reply.status_code == 201
    assert reply.json["location_id"] == world.north and reply.json["location_name"] == "North"
    me = world.call(reply.json["token"], "GET", "/v1/device/me").json
    assert me["location_id"] == world.north and me["device_id"] == reply.json["device_id"]


def test_an_enrolment_code_works_once(world):
    code = _code(world)
    assert _enrol(world, code).status_code == 201
    again = _enrol(world, code)
    assert again.status_code == 409 and error_code(again) == "enrolment_code_used"


def test_an_expired_or_unknown_enrolment_code_is_refused(world):
    code = _code(world, ttl_seconds=60)
    world.clock.advance(seconds=61)
    expired = _enrol(world, code)
    assert expired.status_code == 410 and error_code(expired) == "enrolment_code_expired"
    assert error_code(_enrol(world, "AAAA-BBBB-CCCC")) == "enrolment_code_unknown"


def test_enrolment_code_for_an_unknown_location_is_refused(world):
    reply = world.staff("POST", "/v1/enrolment-codes", json={"location_id": 77})
    assert reply.status_code == 404 and error_code(reply) == "location_not_found"


def _read_all(world, cursor=None, limit=2):
    entries, pages = [], 0
    while True:
        page = world.roster(cursor, limit).json
        entries += page["items"]
        cursor, pages = page["next_cursor"], pages + 1
        if not page["more"]:
            return entries, cursor, pages


def test_full_sync_pages_through_every_id_once(world):
    for n in range(5):
        world.add_client(f"C{n}", f"ID{n:03d}")
    world.add_client("No tag")
    entries, _, pages = _read_all(world, limit=2)
    assert sorted(e["client_id"] for e in entries) == [f"ID{n:03d}" for n in range(5)] and pages == 3


def test_delta_sync_returns_changes_and_deletions_since_the_cursor(world):
    anna, bob = world.add_client("Anna", "AB12"), world.add_client("Bob", "CD34")
    _, cursor, _ = _read_all(world)
    world.staff("PATCH", f"/v1/clients/{anna['ref']}", json={"status": "inactive"})
    world.staff("PUT", f"/v1/clients/{bob['ref']}/client-id", json={"client_id": "EF56", "replace": True})
    page = world.roster(cursor).json
    assert page["reset"] is False and page["more"] is False
    assert page["items"] == [{"client_id": "AB12", "status": "inactive"}, {"client_id": "CD34", "status": "deleted"},
                             {"client_id": "EF56", "status": "active"}]
    assert world.roster(page["next_cursor"]).json["items"] == []


def test_unchanged_roster_costs_a_304(world):
    world.add_client("Anna", "AB12")
    first = world.roster()
    etag = first.headers["ETag"]
    unchanged = world.roster(headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.data == b"" and unchanged.headers["ETag"] == etag
    world.add_client("Bob", "CD34")
    assert world.roster(headers={"If-None-Match": etag}).status_code == 200


def test_a_cursor_older_than_the_change_log_is_gone(world):
    anna = world.add_client("Anna", "AB12")
    _, old_cursor, _ = _read_all(world)
    world.staff("DELETE", f"/v1/clients/{anna['ref']}/client-id")
    _, recent_cursor, _ = _read_all(world)
    world.clock.advance(days=31)  # past the 30-day tombstone retention
    gone = world.roster(old_cursor)
    assert gone.status_code == 410 and error_code(gone) == "cursor_expired"
    assert world.roster(recent_cursor).status_code == 200
    assert world.roster().json["items"] == []  # a full resync still works


def test_a_cursor_from_the_future_is_gone_and_a_garbled_one_is_a_bad_request(world):
    assert error_code(world.roster("999")) == "cursor_expired"
    assert error_code(world.roster("abc")) == "invalid_request"
    assert error_code(world.roster(limit=5001)) == "invalid_request"


def test_roster_page_is_valid_json_with_the_etag(world):
    world.add_client("Anna", "AB12")
    reply = world.roster()
    assert json.loads(reply.data)["items"] == [{"client_id": "AB12", "status": "active"}]
    assert reply.headers["Content-Type"] == "application/json" and reply.headers["ETag"]


def test_checkin_results_name_the_client_state_and_all_are_recorded(world):
    world.add_client("Anna", "AB12")
    world.add_client("Bob", "CD34", status="inactive")
    assert world.checkin("ab12")["result"] == "accepted"  # a tag read with caps lock still matches Anna
    assert world.checkin("CD34", offline=True)["result"] == "inactive"
    assert world.checkin("ZZ99", offline=True)["result"] == "unknown_client"
    assert world.checkin("not an id!", decision="rejected")["result"] == "unknown_client"
    recorded = world.staff("GET", "/v1/checkins").json["items"]
    assert [(c["client_id"], c["result"]) for c in recorded] == [
        ("ab12", "accepted"), ("CD34", "inactive"), ("ZZ99", "unknown_client"), ("not an id!", "unknown_client")]
    assert recorded[0]["client_ref"] == 1 and recorded[2]["client_ref"] is None


def test_a_resent_batch_never_creates_a_second_checkin(world):
    world.add_client("Anna", "AB12")
    events = [{"event_id": str(uuid.uuid4()), "client_id": "AB12", "scanned_at": "2025-03-01T10:00:00+01:00",
               "decision": "accepted", "offline": True} for _ in range(3)]
    first = world.device("POST", "/v1/device/checkins", json={"events": events}).json["results"]
    again = world.device("POST", "/v1/device/checkins", json={"events": events}).json["results"]
    assert [r["result"] for r in first] == ["accepted"] * 3 and [r["result"] for r in again] == ["duplicate"] * 3
    assert [r["event_id"] for r in again] == [e["event_id"] for e in events]
    assert len(world.staff("GET", "/v1/checkins").json["items"]) == 3


def test_a_reused_event_id_with_other_content_is_a_conflict(world):
    event_id = str(uuid.uuid4())
    world.checkin("AB12", event_id)
    conflict = world.checkin("AB13", event_id)
    assert conflict["result"] == "conflict"
    assert [c["client_id"] for c in world.staff("GET", "/v1/checkins").json["items"]] == ["AB12"]


def test_a_batch_with_a_bad_event_is_refused_whole(world):
    good = {"event_id": str(uuid.uuid4()), "client_id": "AB12", "scanned_at": "2025-03-01T10:00:00Z",
            "decision": "accepted", "offline": False}
    bad = good | {"event_id": str(uuid.uuid4()), "scanned_at": "yesterday"}
    reply = world.device("POST", "/v1/device/checkins", json={"events": [good, bad]})
    assert reply.status_code == 400 and error_code(reply) == "invalid_request"
    assert world.staff("GET", "/v1/checkins").json["items"] == []


def test_checkins_are_listed_by_time_and_location_in_pages(world):
    north = world.enrol(world.north, "north door")["token"]
    for hour, token in ((8, world.device_token), (9, north), (10, world.device_token)):
        event = {"event_id": str(uuid.uuid4()), "client_id": "AB12", "scanned_at": f"2025-03-01T{hour:02d}:00:00Z",
                 "decision": "accepted", "offline": False}
        world.call(token, "POST", "/v1/device/checkins", json={"events": [event]})
    since = world.staff("GET", "/v1/checkins", query_string={"since": "2025-03-01T09:00:00Z"}).json["items"]
    assert [c["scanned_at"][11:13] for c in since] == ["09", "10"]
    at_north = world.staff("GET", "/v1/checkins", query_string={"location_id": world.north}).json["items"]
    assert [c["scanned_at"][11:13] for c in at_north] == ["09"]
    page = world.staff("GET", "/v1/checkins", query_string={"limit": 2, "until": "2025-03-01T10:00:00Z"}).json
    assert len(page["items"]) == 2 and page["next_after"] == page["items"][-1]["ref"]


def test_link_target_is_selected_by_staff_read_by_the_device_and_consumed(world):
    bob = world.add_client("Bob")
    assert world.device("GET", "/v1/device/link-target").json == {"target": None}
    world.staff("PUT", "/v1/devices/1/link-target", json={"client_ref": bob["ref"]})
    assert world.device("GET", "/v1/device/link-target").json["target"]["client"]["name"] == "Bob"
    linked = world.device("POST", "/v1/device/link", json={"tag": "TAG77"})
    assert linked.status_code == 200 and linked.json["client"]["client_id"] == "TAG77"
    assert world.device("GET", "/v1/device/link-target").json == {"target": None}
    again = world.device("POST", "/v1/device/link", json={"tag": "TAG78"})
    assert again.status_code == 404 and error_code(again) == "no_link_target"


def test_link_target_can_be_cleared_and_checks_its_references(world):
    bob = world.add_client("Bob")
    world.staff("PUT", "/v1/devices/1/link-target", json={"client_ref": bob["ref"]})
    assert world.staff("DELETE", "/v1/devices/1/link-target").status_code == 204
    assert world.staff("GET", "/v1/devices/1/link-target").json == {"target": None}
    assert error_code(world.staff("PUT", "/v1/devices/9/link-target", json={"client_ref": 1})) == "device_not_found"
    assert error_code(world.staff("PUT", "/v1/devices/1/link-target", json={"client_ref": 9})) == "client_not_found"


def test_linking_a_tag_that_is_another_clients_id_is_a_conflict(world):
    world.add_client("Anna", "AB12")
    bob = world.add_client("Bob")
    world.staff("PUT", "/v1/devices/1/link-target", json={"client_ref": bob["ref"]})
    taken = world.device("POST", "/v1/device/link", json={"tag": "aB12"})
    assert taken.status_code == 409 and error_code(taken) == "id_taken"
    assert world.device("GET", "/v1/device/link-target").json["target"] is not None  # not consumed


def test_relinking_a_client_by_its_current_id_needs_replace(world):
    world.add_client("Anna", "AB12")
    refused = world.device("POST", "/v1/device/link", json={"tag": "NEW1", "client_id": "ab12"})
    assert refused.status_code == 409 and error_code(refused) == "id_exists"
    replaced = world.device("POST", "/v1/device/link", json={"tag": "NEW1", "client_id": "ab12", "replace": True})
    assert replaced.json["client"]["client_id"] == "NEW1" and replaced.json["previous_client_id"] == "AB12"
    same = world.device("POST", "/v1/device/link", json={"tag": "NEW1", "client_id": "NEW1"})
    assert same.status_code == 200 and same.json["changed"] is False
    unknown = world.device("POST", "/v1/device/link", json={"tag": "NEW2", "client_id": "NOPE"})
    assert error_code(unknown) == "client_not_found"
    assert error_code(world.device("POST", "/v1/device/link", json={"tag": "A-1", "client_id": "NEW1"})) == "invalid_id"


def test_devices_are_listed_for_staff(world):
    devices = world.staff("GET", "/v1/devices").json["items"]
    assert [(d["id"], d["location_id"], d["name"]) for d in devices] == [(1, world.main, "front door")]


def test_a_full_sync_finishes_even_when_it_starts_below_the_change_log_horizon(world):
    for n in range(4):
        world.add_client(f"C{n}", f"ID{n:03d}")
    doomed = world.add_client("Doomed", "GONE1")
    world.staff("DELETE", f"/v1/clients/{doomed['ref']}/client-id")  # the newest change is a tombstone...
    world.clock.advance(days=31)
    world.roster("0")  # ...pruned now: the horizon lies above every live row
    first = world.roster(limit=2).json
    assert first["more"] and first["next_cursor"].startswith("f")
    entries, cursor, _ = _read_all(world, first["next_cursor"], limit=2)
    assert sorted(e["client_id"] for e in first["items"] + entries) == [f"ID{n:03d}" for n in range(4)]
    assert world.roster(cursor).json["reset"] is False
