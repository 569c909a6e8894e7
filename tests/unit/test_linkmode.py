"""Link mode's state machine: every transition, with the time passed in (no clock, no I/O)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings, strategies as st

from daemon.linkmode import (BUSY, Failure, FetchTarget, Linked, LinkMode, Log, RequestLink, RosterPut, Signal,
                             SignalName as S, State, Target)
from daemon.patterns import Signal as FeedbackSignal
from daemon.settings import LinkSettings

SETTINGS = LinkSettings(timeout_s=60.0, confirm_s=10.0, staff_cards=("Staff01",))
TARGET = Target(ref=7, client_id="M1001")


def signals(actions) -> list[str]:
    return [action.name for action in actions if isinstance(action, Signal)]


def one(actions, kind):
    found = [action for action in actions if isinstance(action, kind)]
    assert len(found) == 1, actions
    return found[0]


def none_of(actions, *kinds) -> bool:
    return not [action for action in actions if isinstance(action, kinds)]


def logs(actions) -> list[Log]:
    return [action for action in actions if isinstance(action, Log)]


def entered(target: Target | None = TARGET, at: float = 0.0) -> LinkMode:
    machine = LinkMode(SETTINGS)
    request = one(machine.press(at), FetchTarget).request
    machine.target_loaded(request, target, at)
    return machine


def linking(target: Target | None = TARGET, tag: str = "TAG9001", at: float = 0.0) -> tuple[LinkMode, RequestLink]:
    """Link mode with a link request in flight (two-scan flow for client M1002 when there is no target)."""
    machine = entered(target, at)
    if target is None:
        machine.scan("M1002", "active", at)
    return machine, one(machine.scan(tag, None, at), RequestLink)


def confirming(target: Target | None = TARGET, at: float = 0.0) -> tuple[LinkMode, RequestLink]:
    machine, sent = linking(target, at=at)
    assert signals(machine.server_result(sent.request, Failure.ID_EXISTS, at + 1)) == [S.CONFIRM_NEEDED]
    return machine, sent


def test_every_signal_is_one_the_feedback_outputs_know():
    assert {name.value for name in S} <= {name.value for name in FeedbackSignal}


# ---- entering and leaving ---------------------------------------------------------------------------------------

def test_starts_in_checkin_mode_with_nothing_timed():
    machine = LinkMode(SETTINGS)
    assert machine.state is State.CHECKIN and not machine.is_active and machine.deadline is None


def test_a_press_enters_link_mode_and_asks_for_the_link_target():
    machine = LinkMode(SETTINGS)
    actions = machine.press(100.0)
    assert signals(actions) == [S.LINK_MODE_ON]
    assert one(actions, FetchTarget).request >= 1
    assert machine.state is State.LOADING_TARGET and machine.is_active
    assert machine.deadline == 160.0


def test_a_link_target_means_the_next_scan_is_the_tag():
    assert entered(TARGET).state is State.AWAIT_TAG


def test_no_link_target_means_two_scans():
    assert entered(None).state is State.AWAIT_CLIENT


@pytest.mark.parametrize("target", [TARGET, None])
def test_another_press_leaves_link_mode(target):
    machine = entered(target)
    actions = machine.press(5.0)
    assert signals(actions) == [S.LINK_MODE_OFF]
    assert machine.state is State.CHECKIN and machine.deadline is None


def test_a_press_after_the_client_scan_leaves_link_mode():
    machine = entered(None)
    machine.scan("M1002", "active", 1.0)
    assert signals(machine.press(2.0)) == [S.LINK_MODE_OFF] and not machine.is_active


@pytest.mark.parametrize("target", [TARGET, None])
def test_a_long_press_cancels_link_mode(target):
    machine = entered(target)
    assert signals(machine.long_press(5.0)) == [S.LINK_MODE_OFF] and not machine.is_active


def test_a_long_press_in_checkin_mode_does_nothing():
    machine = LinkMode(SETTINGS)
    assert machine.long_press(1.0) == [] and not machine.is_active


def test_the_command_enters_and_leaves_link_mode():
    machine = LinkMode(SETTINGS)
    assert signals(machine.command(1.0)) == [S.LINK_MODE_ON] and machine.is_active
    assert signals(machine.command(2.0, on=False)) == [S.LINK_MODE_OFF] and not machine.is_active
    assert machine.command(3.0, on=False) == []


def test_the_command_while_in_link_mode_keeps_it_on():
    machine = entered()
    actions = machine.command(5.0)
    assert signals(actions) == [] and machine.state is State.AWAIT_TAG
    assert logs(actions)[0].event == "command ignored"


@pytest.mark.parametrize("target", [TARGET, None])
def test_stopping_tagd_leaves_link_mode(target):
    machine = entered(target)
    assert signals(machine.stop(5.0)) == [S.LINK_MODE_OFF] and not machine.is_active
    assert machine.stop(6.0) == []


def test_an_answer_after_stopping_is_only_logged():
    machine, sent = linking()
    machine.stop(1.0)
    late = machine.server_result(sent.request, Failure.ID_EXISTS, 2.0)
    assert signals(late) == [] and not machine.is_active


def test_every_exit_is_logged_with_its_reason():
    machine = entered()
    entry = logs(machine.long_press(3.0))[0]
    assert (entry.event, entry.reason) == ("link mode off", "cancelled by a long press")


# ---- staff cards -------------------------------------------------------------------------------------------------

def test_a_staff_card_is_claimed_and_enters_link_mode_whatever_its_case():
    machine = LinkMode(SETTINGS)
    assert machine.claims("STAFF01") and machine.claims("staff01")
    actions = machine.scan("sTaFf01", None, 1.0)
    assert signals(actions) == [S.LINK_MODE_ON] and isinstance(actions[-1], FetchTarget)
    assert logs(actions)[0].reason == "staff card"


def test_other_scans_are_not_claimed_in_checkin_mode():
    machine = LinkMode(SETTINGS)
    assert not machine.claims("M1001") and not machine.claims(None)
    assert machine.scan("M1001", "active", 1.0) == [] and machine.scan(None, None, 1.0) == []
    assert not machine.is_active


def test_every_scan_is_claimed_in_link_mode():
    machine = entered()
    assert machine.claims("M1001") and machine.claims(None)


@pytest.mark.parametrize("target", [TARGET, None])
def test_a_staff_card_in_link_mode_leaves_it(target):
    machine = entered(target)
    assert signals(machine.scan("STAFF01", None, 2.0)) == [S.LINK_MODE_OFF] and not machine.is_active


def test_a_staff_card_is_never_taken_as_the_tag_to_link():
    machine = entered()
    assert none_of(machine.scan("STAFF01", None, 2.0), RequestLink)


def test_no_staff_cards_configured_means_none_is_claimed():
    assert not LinkMode(LinkSettings()).claims("STAFF01")


# ---- the desk's link target ----------------------------------------------------------------------------------------

def test_the_scanned_tag_is_linked_to_the_link_target():
    machine = entered()
    actions = machine.scan("TAG9001", None, 2.0)
    link = one(actions, RequestLink)
    assert (link.tag, link.client_id, link.replace) == ("TAG9001", None, False)
    assert machine.state is State.LINKING
    attempt = logs(actions)[0]
    assert (attempt.event, attempt.tag, attempt.client_id) == ("link attempt", "TAG9001", "M1001")


def test_success_puts_the_tag_in_the_roster_and_leaves_link_mode():
    machine, sent = linking()
    actions = machine.server_result(sent.request, Linked("TAG9001", "active", True, "M1001"), 3.0)
    assert one(actions, RosterPut) == RosterPut("TAG9001", "active")
    assert signals(actions) == [S.LINK_MODE_OFF, S.LINKED]
    assert actions.index(one(actions, RosterPut)) < actions.index(Signal(S.LINKED))  # roster first, then green
    assert machine.state is State.CHECKIN and machine.deadline is None
    result = [entry for entry in logs(actions) if entry.event == "linked"][0]
    assert (result.tag, result.client_id) == ("TAG9001", "M1001")
    assert "replaced" in result.reason


def test_the_roster_gets_the_clients_status_and_the_servers_spelling():
    machine, sent = linking(tag="tag9001")
    actions = machine.server_result(sent.request, Linked("TAG9001", "inactive", True, None), 3.0)
    assert one(actions, RosterPut) == RosterPut("TAG9001", "inactive")


def test_a_tag_already_another_clients_id_is_refused_at_once():
    machine = entered()
    actions = machine.scan("M1002", "active", 2.0)
    assert signals(actions) == [S.LINK_CONFLICT] and none_of(actions, RequestLink)
    assert machine.state is State.AWAIT_TAG
    assert logs(actions)[0].reason == "the tag is another client's ID (local roster)"


def test_an_inactive_clients_id_is_a_conflict_too():
    machine = entered()
    assert signals(machine.scan("M1007", "inactive", 2.0)) == [S.LINK_CONFLICT]


def test_the_target_clients_own_id_is_no_conflict():
    machine = entered(Target(7, "M1001"))
    assert one(machine.scan("m1001", "active", 2.0), RequestLink).tag == "m1001"


def test_a_target_client_without_an_id_gets_the_tag():
    machine = entered(Target(8, None))
    assert one(machine.scan("TAG9001", None, 2.0), RequestLink).client_id is None


def test_an_unreadable_scan_in_link_mode_is_invalid_and_changes_nothing():
    machine = entered()
    actions = machine.scan(None, None, 2.0)
    assert signals(actions) == [S.INVALID] and machine.state is State.AWAIT_TAG


# ---- two scans: the client's current ID, then the new tag ------------------------------------------------------------

def test_the_first_scan_is_the_client_the_second_the_new_tag():
    machine = entered(None)
    first = machine.scan("M1002", "active", 1.0)
    assert signals(first) == [S.ACCEPTED] and machine.state is State.AWAIT_NEW_TAG
    link = one(machine.scan("TAG9001", None, 2.0), RequestLink)
    assert (link.tag, link.client_id, link.replace) == ("TAG9001", "M1002", False)


def test_a_client_unknown_to_the_roster_is_refused_and_another_may_be_scanned():
    machine = entered(None)
    assert signals(machine.scan("X9999", None, 1.0)) == [S.UNKNOWN]
    assert machine.state is State.AWAIT_CLIENT
    assert signals(machine.scan("M1002", "active", 2.0)) == [S.ACCEPTED]


def test_an_inactive_client_may_get_a_new_tag():
    machine = entered(None)
    assert signals(machine.scan("M1007", "inactive", 1.0)) == [S.ACCEPTED]


def test_the_clients_own_id_again_is_not_taken_as_the_new_tag():
    machine = entered(None)
    machine.scan("M1002", "active", 1.0)
    actions = machine.scan("m1002", "active", 2.0)
    assert signals(actions) == [S.DUPLICATE] and none_of(actions, RequestLink)
    assert machine.state is State.AWAIT_NEW_TAG


def test_a_new_tag_that_is_another_clients_id_is_refused_at_once():
    machine = entered(None)
    machine.scan("M1002", "active", 1.0)
    actions = machine.scan("M1003", "active", 2.0)
    assert signals(actions) == [S.LINK_CONFLICT] and none_of(actions, RequestLink)
    assert machine.state is State.AWAIT_NEW_TAG


def test_two_scan_success_leaves_link_mode_with_the_tag_in_the_roster():
    machine, sent = linking(None)
    actions = machine.server_result(sent.request, Linked("TAG9001", "active", True, "M1002"), 3.0)
    assert one(actions, RosterPut) == RosterPut("TAG9001", "active")
    assert signals(actions) == [S.LINK_MODE_OFF, S.LINKED]


def test_the_server_not_knowing_the_client_asks_for_the_client_again():
    machine, sent = linking(None)
    actions = machine.server_result(sent.request, Failure.CLIENT_NOT_FOUND, 3.0)
    assert signals(actions) == [S.UNKNOWN] and machine.state is State.AWAIT_CLIENT


# ---- the server's answers ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("target, waiting", [(TARGET, State.AWAIT_TAG), (None, State.AWAIT_NEW_TAG)])
def test_id_taken_is_a_conflict_and_another_tag_may_be_scanned(target, waiting):
    machine, sent = linking(target)
    actions = machine.server_result(sent.request, Failure.ID_TAKEN, 3.0)
    assert signals(actions) == [S.LINK_CONFLICT] and none_of(actions, RosterPut)
    assert machine.state is waiting and machine.deadline == 63.0
    refused = logs(actions)[0]
    assert (refused.tag, refused.level) == ("TAG9001", logging.WARNING) and "id_taken" in refused.reason
    assert one(machine.scan("TAG9002", None, 4.0), RequestLink).tag == "TAG9002"


def test_a_tag_against_the_id_rules_is_invalid_and_another_may_be_scanned():
    machine, sent = linking()
    assert signals(machine.server_result(sent.request, Failure.INVALID_ID, 3.0)) == [S.INVALID]
    assert machine.state is State.AWAIT_TAG


@pytest.mark.parametrize("target, client_id", [(TARGET, "M1001"), (None, "M1002")])
def test_id_exists_asks_for_confirmation_for_ten_seconds(target, client_id):
    machine, sent = linking(target, at=100.0)
    actions = machine.server_result(sent.request, Failure.ID_EXISTS, 101.0)
    assert signals(actions) == [S.CONFIRM_NEEDED]
    assert machine.state is State.CONFIRM and machine.deadline == 111.0
    asked = logs(actions)[0]
    assert (asked.event, asked.tag, asked.client_id) == ("link needs confirmation", "TAG9001", client_id)


@pytest.mark.parametrize("target, client_id", [(TARGET, None), (None, "M1002")])
def test_a_press_within_the_window_sends_the_link_again_with_replace(target, client_id):
    machine, sent = confirming(target)
    actions = machine.press(10.9)
    again = one(actions, RequestLink)
    assert (again.tag, again.client_id, again.replace) == ("TAG9001", client_id, True)
    assert again.request != sent.request and machine.state is State.LINKING
    assert logs(actions)[0].reason == "replacing the client's ID"
    done = machine.server_result(again.request, Linked("TAG9001", "active", True, "OLD1"), 11.0)
    assert signals(done) == [S.LINK_MODE_OFF, S.LINKED] and one(done, RosterPut).client_id == "TAG9001"


def test_the_confirmation_window_ends_link_mode_when_it_passes():
    machine, _ = confirming()
    assert machine.tick(10.99) == []
    actions = machine.tick(11.0)
    assert signals(actions) == [S.LINK_MODE_OFF] and none_of(actions, RequestLink)
    assert not machine.is_active and logs(actions)[0].reason == "replacement not confirmed in time"


def test_a_press_after_the_window_does_not_replace_even_if_the_timer_was_late():
    machine, _ = confirming()
    actions = machine.press(11.5)
    assert none_of(actions, RequestLink) and signals(actions) == [S.LINK_MODE_OFF]


@pytest.mark.parametrize("abort", [
    lambda m: m.long_press(2.0),
    lambda m: m.scan("TAG9001", None, 2.0),
    lambda m: m.scan(None, None, 2.0),
    lambda m: m.scan("STAFF01", None, 2.0),
    lambda m: m.command(2.0, on=False),
], ids=["long press", "scan", "unreadable scan", "staff card", "command off"])
def test_anything_but_a_press_aborts_the_replacement(abort):
    machine, _ = confirming()
    actions = abort(machine)
    assert none_of(actions, RequestLink) and signals(actions) == [S.LINK_MODE_OFF]
    assert not machine.is_active


def test_id_exists_again_after_replace_is_an_error():
    machine, _ = confirming()
    again = one(machine.press(2.0), RequestLink)
    actions = machine.server_result(again.request, Failure.ID_EXISTS, 3.0)
    assert signals(actions) == [S.LINK_MODE_OFF, S.ERROR] and not machine.is_active


def test_a_withdrawn_link_target_ends_link_mode_with_an_error():
    machine, sent = linking()
    actions = machine.server_result(sent.request, Failure.NO_LINK_TARGET, 3.0)
    assert signals(actions) == [S.LINK_MODE_OFF, S.ERROR] and not machine.is_active
    assert logs(actions)[0].level == logging.ERROR


def test_a_refused_request_ends_link_mode_with_an_error():
    machine, sent = linking()
    assert signals(machine.server_result(sent.request, Failure.REFUSED, 3.0)) == [S.LINK_MODE_OFF, S.ERROR]


def test_a_refused_link_target_request_ends_link_mode_with_an_error():
    machine = LinkMode(SETTINGS)
    request = one(machine.press(0.0), FetchTarget).request
    assert signals(machine.target_loaded(request, Failure.REFUSED, 1.0)) == [S.LINK_MODE_OFF, S.ERROR]


# ---- offline -----------------------------------------------------------------------------------------------------

def test_link_mode_is_refused_when_the_server_is_unreachable():
    machine = LinkMode(SETTINGS)
    request = one(machine.press(0.0), FetchTarget).request
    actions = machine.target_loaded(request, Failure.OFFLINE, 3.0)
    assert signals(actions) == [S.LINK_MODE_OFF, S.OFFLINE] and not machine.is_active
    assert none_of(actions, RequestLink, RosterPut)


def test_a_link_that_cannot_reach_the_server_is_refused_not_queued():
    machine, sent = linking()
    actions = machine.server_result(sent.request, Failure.OFFLINE, 3.0)
    assert signals(actions) == [S.LINK_MODE_OFF, S.OFFLINE] and not machine.is_active
    assert none_of(actions, RequestLink, RosterPut)
    assert machine.deadline is None  # nothing left to retry


# ---- while a request is with the server ------------------------------------------------------------------------------

def test_scans_while_loading_the_target_are_ignored_with_a_signal():
    machine = LinkMode(SETTINGS)
    machine.press(0.0)
    actions = machine.scan("TAG9001", None, 0.5)
    assert signals(actions) == [S.DENIED] and machine.state is State.LOADING_TARGET


def test_scans_while_linking_are_ignored_with_a_signal():
    machine, _ = linking()
    for scan in ("TAG9002", None, "STAFF01"):
        actions = machine.scan(scan, None, 1.0)
        assert signals(actions) == [S.DENIED] and none_of(actions, RequestLink)
    assert machine.state is State.LINKING


@pytest.mark.parametrize("state", BUSY)
def test_a_press_while_a_request_is_out_is_ignored(state):
    machine = linking()[0] if state is State.LINKING else LinkMode(SETTINGS)
    if state is State.LOADING_TARGET:
        machine.press(0.0)
    assert signals(machine.press(1.0)) == [] and machine.state is state


def test_a_long_press_while_linking_leaves_and_a_late_success_still_reaches_the_roster():
    machine, sent = linking()
    assert signals(machine.long_press(1.0)) == [S.LINK_MODE_OFF]
    late = machine.server_result(sent.request, Linked("TAG9001", "active", True, None), 2.0)
    assert one(late, RosterPut) == RosterPut("TAG9001", "active")
    assert signals(late) == [] and not machine.is_active


def test_a_late_failure_after_leaving_is_only_logged():
    machine, sent = linking()
    machine.long_press(1.0)
    late = machine.server_result(sent.request, Failure.ID_TAKEN, 2.0)
    assert signals(late) == [] and none_of(late, RosterPut) and not machine.is_active


def test_an_answer_to_an_abandoned_request_is_not_taken_for_the_current_one():
    machine, old = linking(tag="TAG1111")
    machine.long_press(1.0)
    machine.press(2.0)
    machine.target_loaded(machine._pending, TARGET, 2.0)
    current = one(machine.scan("TAG2222", None, 3.0), RequestLink)
    machine.server_result(old.request, Failure.ID_EXISTS, 4.0)  # the first link's answer arrives now
    assert machine.state is State.LINKING
    done = machine.server_result(current.request, Linked("TAG2222", "active", True, None), 5.0)
    assert signals(done) == [S.LINK_MODE_OFF, S.LINKED]


def test_a_target_answer_after_leaving_is_ignored():
    machine = LinkMode(SETTINGS)
    request = one(machine.press(0.0), FetchTarget).request
    machine.long_press(1.0)
    assert signals(machine.target_loaded(request, TARGET, 2.0)) == [] and not machine.is_active


# ---- time --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", [TARGET, None])
def test_link_mode_times_out_after_sixty_seconds(target):
    machine = entered(target, at=1000.0)
    assert machine.tick(1059.9) == [] and machine.is_active
    actions = machine.tick(1060.0)
    assert signals(actions) == [S.LINK_MODE_OFF] and not machine.is_active
    entry = logs(actions)[0]
    assert (entry.reason, entry.level) == ("timed out", logging.WARNING)


def test_the_timeout_is_configurable():
    machine = LinkMode(LinkSettings(timeout_s=15.0))
    machine.press(0.0)
    assert machine.deadline == 15.0


@pytest.mark.parametrize("state", BUSY)
def test_a_request_that_never_answers_cannot_hold_link_mode(state):
    machine = linking()[0] if state is State.LINKING else LinkMode(SETTINGS)
    if state is State.LOADING_TARGET:
        machine.press(0.0)
    assert signals(machine.tick(60.0)) == [S.LINK_MODE_OFF] and not machine.is_active


def test_each_step_restarts_the_timeout():
    machine = entered(None, at=0.0)
    machine.scan("M1002", "active", 50.0)
    assert machine.deadline == 110.0
    assert machine.tick(100.0) == [] and machine.state is State.AWAIT_NEW_TAG


def test_a_refused_scan_does_not_restart_the_timeout():
    machine = entered(at=0.0)
    machine.scan("M1002", "active", 50.0)  # local conflict
    machine.scan(None, None, 55.0)  # unreadable
    assert machine.deadline == 60.0


def test_tick_in_checkin_mode_does_nothing():
    machine = LinkMode(SETTINGS)
    assert machine.tick(1e9) == []


# ---- whatever happens ----------------------------------------------------------------------------------------------

INPUTS = st.sampled_from(["press", "long", "cmd_on", "cmd_off", "stop", "staff", "scan_new", "scan_known", "scan_bad",
                          "target", "no_target", "target_fail", "ok", "taken", "exists", "offline", "tick"])


def _feed(machine: LinkMode, name: str, now: float, requests: list[int]) -> list:
    pending = requests[-1] if requests else 0
    feeds = {
        "press": lambda: machine.press(now), "long": lambda: machine.long_press(now),
        "cmd_on": lambda: machine.command(now), "cmd_off": lambda: machine.command(now, on=False),
        "stop": lambda: machine.stop(now),
        "staff": lambda: machine.scan("STAFF01", None, now), "scan_new": lambda: machine.scan("T1234", None, now),
        "scan_known": lambda: machine.scan("M1002", "active", now), "scan_bad": lambda: machine.scan(None, None, now),
        "target": lambda: machine.target_loaded(pending, TARGET, now),
        "no_target": lambda: machine.target_loaded(pending, None, now),
        "target_fail": lambda: machine.target_loaded(pending, Failure.OFFLINE, now),
        "ok": lambda: machine.server_result(pending, Linked("T1234", "active", True, None), now),
        "taken": lambda: machine.server_result(pending, Failure.ID_TAKEN, now),
        "exists": lambda: machine.server_result(pending, Failure.ID_EXISTS, now),
        "offline": lambda: machine.server_result(pending, Failure.OFFLINE, now),
        "tick": lambda: machine.tick(now),
    }
    actions = feeds[name]()
    requests += [a.request for a in actions if isinstance(a, (FetchTarget, RequestLink))]
    return actions


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(INPUTS, st.floats(0, 30)), max_size=25))
def test_any_sequence_keeps_the_promises(steps):
    """Link mode always has a deadline no later than timeout_s ahead, ends when it passes, signals every exit
    with link-mode-off, and replaces an ID only on a press while confirming."""
    machine, now, requests = LinkMode(SETTINGS), 0.0, []
    for name, wait in steps:
        now += wait
        was_active, was_confirming = machine.is_active, machine.state is State.CONFIRM
        actions = _feed(machine, name, now, requests)
        if was_active and not machine.is_active:
            assert signals(actions)[0] == S.LINK_MODE_OFF
        for link in (a for a in actions if isinstance(a, RequestLink) and a.replace):
            assert was_confirming and name == "press"
        if machine.is_active:
            assert machine.deadline is not None and machine.deadline <= now + SETTINGS.timeout_s
    if machine.is_active:
        assert signals(machine.tick(machine.deadline)) == [S.LINK_MODE_OFF]
    assert not machine.is_active
