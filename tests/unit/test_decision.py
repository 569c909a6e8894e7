import pytest

from daemon.decision import Outcome, UnknownWhileOffline, decide
from daemon.scan import Kind, Reason, ScanResult


def scan(kind=Kind.VALID, client_id="A123", reason=None):
    return ScanResult(kind, "door", "stdin", client_id or "x", 1.0, client_id, reason)


@pytest.mark.parametrize("status, offline, expected", [
    ("active", False, Outcome.ACCEPTED),
    ("active", True, Outcome.ACCEPTED),
    ("inactive", False, Outcome.DENIED_INACTIVE),
    ("inactive", True, Outcome.DENIED_INACTIVE),
    (None, False, Outcome.DENIED_UNKNOWN),
    (None, True, Outcome.DENIED_UNKNOWN),
])
def test_the_roster_decides_by_default(status, offline, expected):
    decision = decide(scan(), status, offline)
    assert (decision.outcome, decision.offline, decision.is_checkin) == (expected, offline, True)


def test_unknown_ids_are_let_in_offline_only_when_the_business_chose_accept():
    assert decide(scan(), None, True, UnknownWhileOffline.ACCEPT).outcome is Outcome.ACCEPTED
    assert decide(scan(), None, False, UnknownWhileOffline.ACCEPT).outcome is Outcome.DENIED_UNKNOWN
    assert decide(scan(), "inactive", True, UnknownWhileOffline.ACCEPT).outcome is Outcome.DENIED_INACTIVE


@pytest.mark.parametrize("kind, outcome", [
    (Kind.DUPLICATE, Outcome.DUPLICATE), (Kind.INVALID, Outcome.INVALID), (Kind.TYPED, Outcome.TYPED)])
def test_scans_that_are_not_checkins_are_never_recorded(kind, outcome):
    decision = decide(scan(kind, None, Reason.TYPED), "active", False)
    assert (decision.outcome, decision.is_checkin) == (outcome, False)


def test_server_decision_is_two_valued():
    assert decide(scan(), "active", False).server_decision == "accepted"
    assert decide(scan(), "inactive", False).server_decision == "rejected"
    assert decide(scan(), None, True).server_decision == "rejected"
