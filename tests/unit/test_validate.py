import pytest

from daemon.scan import Reason
from daemon.settings import CasePolicy, FramingRules, ScanSettings
from daemon.validate import check_client_id, looks_typed, strip_framing


@pytest.mark.parametrize("text, reason", [
    ("", Reason.EMPTY),
    ("AB\x07CD", Reason.CONTROL_CHARACTERS),
    ("AB\rCD", Reason.CONTROL_CHARACTERS),
    ("AB\x9bCD", Reason.CONTROL_CHARACTERS),
    ("AB-123", Reason.NOT_ALPHANUMERIC),
    ("AB 123", Reason.NOT_ALPHANUMERIC),
    ("ÄBC123", Reason.NOT_ALPHANUMERIC),
    ("１２３４", Reason.NOT_ALPHANUMERIC),  # full-width digits are not [0-9]
    ("A12", Reason.TOO_SHORT),
    ("A" * 33, Reason.TOO_LONG),
])
def test_bad_ids_are_rejected_with_their_reason(text, reason):
    assert check_client_id(text, ScanSettings()) == (None, reason)


def test_length_bounds_are_inclusive():
    scan = ScanSettings(min_length=4, max_length=6)
    assert check_client_id("A123", scan) == ("A123", None)
    assert check_client_id("A12345", scan) == ("A12345", None)


@pytest.mark.parametrize("policy, expected", [
    (CasePolicy.PRESERVE, "abC123"), (CasePolicy.UPPER, "ABC123"), (CasePolicy.LOWER, "abc123")])
def test_case_policy(policy, expected):
    assert check_client_id("abC123", ScanSettings(case=policy)) == (expected, None)


def test_aim_identifier_is_stripped():
    assert strip_framing("]C0A123", FramingRules()) == ("A123", None)
    assert strip_framing("]E4A123", FramingRules()) == ("A123", None)


def test_aim_stripping_can_be_turned_off():
    assert strip_framing("]C0A123", FramingRules(strip_aim=False)) == ("]C0A123", None)


def test_prefix_aim_and_suffix_are_stripped_in_scanner_order():
    rules = FramingRules(prefix="#", suffix="!")
    assert strip_framing("#]C0A123!", rules) == ("A123", None)


def test_missing_prefix_or_suffix_is_a_reason_not_a_guess():
    rules = FramingRules(prefix="#", suffix="!")
    assert strip_framing("A123!", rules)[1] is Reason.MISSING_PREFIX
    assert strip_framing("#A123", rules)[1] is Reason.MISSING_SUFFIX


def test_scanner_speed_passes_and_human_speed_is_typed():
    assert not looks_typed((1.0,) * 10, 40.0)
    assert not looks_typed((20.0,) * 10, 40.0)
    assert looks_typed((120.0, 90.0, 200.0, 150.0), 40.0)


def test_one_late_usb_poll_inside_a_real_scan_does_not_make_it_typed():
    assert not looks_typed((4.0, 4.0, 300.0, 4.0, 4.0), 40.0)


def test_typed_check_is_off_without_threshold_or_gaps():
    assert not looks_typed((500.0,), None)
    assert not looks_typed((), 40.0)
