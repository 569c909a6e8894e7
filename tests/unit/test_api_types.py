"""Reply parsers: the contract's shapes become frozen values; anything else is a ReplyShapeError naming the field."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.api_types import (CheckinEvent, CheckinOutcome, ReplyShapeError, RosterEntry, RosterStatus,
                              parse_checkin_results, parse_device_info, parse_enrolment, parse_error_body,
                              parse_health, parse_id_change, parse_link_target, parse_roster_page)

CLIENT = {"ref": 7, "name": "Anna Meyer", "status": "active", "client_id": "M1001",
          "created_at": "2026-03-02T06:30:00Z"}
ME = {"device_id": 3, "name": "Front", "business_id": 1, "location_id": 2, "id_min_length": 4, "id_max_length": 32}


def event(event_id: str) -> CheckinEvent:
    return CheckinEvent(event_id, "M1001", datetime(2026, 3, 2, 7, 30, tzinfo=timezone.utc), "accepted", False)


def test_a_roster_page_parses_into_entries_with_statuses():
    body = {"reset": True, "items": [{"client_id": "M1001", "status": "active"},
                                     {"client_id": "ab12", "status": "deleted"}], "next_cursor": "12", "more": False}
    page = parse_roster_page(body, '"etag"')
    assert page.items == (RosterEntry("M1001", RosterStatus.ACTIVE), RosterEntry("ab12", RosterStatus.DELETED))
    assert (page.reset, page.next_cursor, page.more, page.etag) == (True, "12", False, '"etag"')


@pytest.mark.parametrize(("entry", "complaint"), [
    ({"client_id": "M-1001", "status": "active"}, "items[0].client_id: not a client ID"),
    ({"client_id": "M1001", "status": "banned"}, "items[0].status: unexpected value 'banned'"),
    ({"client_id": "M1001"}, "items[0].status: missing"),
    ("M1001", "items[0]: expected an object, got a string"),
])
def test_a_bad_roster_entry_is_named_by_its_position(entry, complaint):
    body = {"reset": True, "items": [entry], "next_cursor": "1", "more": False}
    with pytest.raises(ReplyShapeError, match=f"^{complaint}".replace("[", r"\[").replace("]", r"\]")):
        parse_roster_page(body, None)


@pytest.mark.parametrize(("entry", "complaint"), [
    ({"client_id": "M1001\n", "status": "active"}, "items[2].client_id: not a client ID"),
    ({"client_id": "M" * 65, "status": "active"}, "items[2].client_id: not a client ID"),
    ({"client_id": 1001, "status": "active"}, "items[2].client_id: expected a string, got a number"),
    ({"client_id": "M1001", "status": ["active"]}, "items[2].status: expected a string, got an array"),
    ({"client_id": "M1001", "status": "Active"}, "items[2].status: unexpected value 'Active'"),
    ({"status": "active"}, "items[2].client_id: missing"),
    ([["M1001", "active"]], "items[2]: expected an object, got an array"),
])
def test_a_bad_entry_after_good_ones_is_named_by_its_position(entry, complaint):
    good = {"client_id": "M1", "status": "inactive"}
    body = {"reset": True, "items": [good, good, entry, good], "next_cursor": "1", "more": False}
    with pytest.raises(ReplyShapeError, match=f"^{complaint}".replace("[", r"\[").replace("]", r"\]")):
        parse_roster_page(body, None)


@pytest.mark.parametrize("value", [True, 1.0, "3", None, 0, 2**53])
def test_an_id_must_be_a_json_integer_in_range(value):
    with pytest.raises(ReplyShapeError, match="device_id"):
        parse_device_info({**ME, "device_id": value})


def test_checkin_results_pair_with_the_sent_events_in_order():
    sent = [event("e1"), event("e2")]
    body = {"results": [{"event_id": "e1", "result": "accepted", "message": ""},
                        {"event_id": "e2", "result": "duplicate", "message": "seen"}]}
    assert [r.result for r in parse_checkin_results(body, sent)] == [CheckinOutcome.ACCEPTED,
                                                                     CheckinOutcome.DUPLICATE]


@pytest.mark.parametrize(("results", "complaint"), [
    ([{"event_id": "e1", "result": "accepted", "message": ""}], "1 results for 2 events"),
    ([{"event_id": "e2", "result": "accepted", "message": ""}, {"event_id": "e1", "result": "accepted",
                                                                 "message": ""}], r"results\[0\].event_id"),
])
def test_checkin_results_that_do_not_pair_up_are_rejected(results, complaint):
    with pytest.raises(ReplyShapeError, match=complaint):
        parse_checkin_results({"results": results}, [event("e1"), event("e2")])


def test_a_checkin_event_goes_out_in_utc_with_z():
    moment = datetime(2026, 3, 2, 8, 30, tzinfo=timezone(timedelta(hours=1)))
    sent = CheckinEvent("e1", "M1001", moment, "rejected", True).to_json()
    assert sent == {"event_id": "e1", "client_id": "M1001", "scanned_at": "2026-03-02T07:30:00Z",
                    "decision": "rejected", "offline": True}


def test_a_naive_scan_time_is_refused_where_the_event_is_built():
    with pytest.raises(ValueError, match="timezone-aware"):
        CheckinEvent("e1", "M1001", datetime(2026, 3, 2, 7, 30), "accepted", False)


def test_link_target_null_and_present():
    assert parse_link_target({"target": None}) is None
    target = parse_link_target({"target": {"device_id": 3, "client": {**CLIENT, "client_id": None},
                                           "selected_at": "2026-03-02T06:31:00+00:00"}})
    assert target is not None and target.client.client_id is None
    assert target.selected_at == datetime(2026, 3, 2, 6, 31, tzinfo=timezone.utc)


@pytest.mark.parametrize("created_at", ["yesterday", "2026-03-02T06:30:00", 1700000000])
def test_a_time_must_be_rfc3339_with_an_offset(created_at):
    with pytest.raises(ReplyShapeError, match="client.created_at"):
        parse_id_change({"client": {**CLIENT, "created_at": created_at}, "changed": True, "previous_client_id": None})


def test_the_enrolment_token_stays_out_of_the_repr():
    enrolment = parse_enrolment({"device_id": 3, "token": "s3cret-token", "business_id": 1, "business_name": "Gym",
                                 "location_id": 2, "location_name": "Downtown"})
    assert enrolment.token == "s3cret-token" and "s3cret" not in repr(enrolment)


@pytest.mark.parametrize(("body", "expected"), [
    ({"error": {"code": "id_taken", "message": "in use"}}, ("id_taken", "in use")),
    ({"error": {"code": 5}}, (None, None)), ({"error": "boom"}, (None, None)), ([1], (None, None)),
])
def test_error_bodies_give_code_and_message_when_they_follow_the_contract(body, expected):
    assert parse_error_body(body) == expected


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                 max_size=6), max_leaves=20)
ENROLMENT = {"device_id": 3, "token": "t", "business_id": 1, "business_name": "Gym", "location_id": 2,
             "location_name": "Downtown"}
ROSTER = {"reset": False, "items": [{"client_id": "M1001", "status": "active"}], "next_cursor": "4", "more": True}
RESULTS = {"results": [{"event_id": "e1", "result": "accepted", "message": ""}]}
ID_CHANGE = {"client": CLIENT, "changed": True, "previous_client_id": None}
TARGET = {"target": {"device_id": 3, "client": CLIENT, "selected_at": "2026-03-02T06:31:00Z"}}
VALID = [(lambda b: parse_health(b, None), {"status": "ok", "api_version": "1"}), (parse_enrolment, ENROLMENT),
         (parse_device_info, ME), (lambda b: parse_roster_page(b, None), ROSTER),
         (lambda b: parse_checkin_results(b, [event("e1")]), RESULTS), (parse_id_change, ID_CHANGE),
         (parse_link_target, TARGET)]


def mutated(document, draw, depth: int = 0):
    """The document with one field, somewhere inside, replaced by arbitrary JSON or removed."""
    if isinstance(document, list) and document:
        return [mutated(document[0], draw, depth + 1), *document[1:]]
    if not isinstance(document, dict) or not document:
        return draw(JSON)
    key = draw(st.sampled_from(sorted(document)))
    copy = dict(document)
    if draw(st.booleans()) and depth < 3:
        copy[key] = mutated(document[key], draw, depth + 1)
    elif draw(st.booleans()):
        del copy[key]
    else:
        copy[key] = draw(JSON)
    return copy


@st.composite
def near_misses(draw):
    parse, valid = draw(st.sampled_from(VALID))
    return parse, mutated(valid, draw)


@settings(max_examples=300, deadline=None)
@given(case=near_misses())
def test_any_near_miss_gives_a_value_or_a_shape_error_never_a_crash(case):
    parse, body = case
    try:
        parse(body)
    except ReplyShapeError:
        pass


@settings(max_examples=100, deadline=None)
@given(body=JSON, which=st.sampled_from(range(len(VALID))))
def test_any_json_gives_a_value_or_a_shape_error_never_a_crash(body, which):
    try:
        VALID[which][0](body)
    except ReplyShapeError:
        pass


def test_the_unmutated_documents_parse():
    for parse, valid in VALID:
        parse(valid)
