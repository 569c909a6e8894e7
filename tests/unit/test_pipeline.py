from daemon.pipeline import ScanPipeline
from daemon.scan import Frame, Kind, Reason
from daemon.settings import CasePolicy, FramingRules, ScanSettings

HID = FramingRules(typed_threshold_ms=40.0)


def pipeline(**scan):
    return ScanPipeline(ScanSettings(**scan), {"door": HID, "serial": FramingRules(prefix="*")})


def frame(text, at=1000.0, scanner="door", gaps=(3.0,) * 4, error=None):
    return Frame(scanner, "/dev/input/event0", text, at, gaps, error)


def test_valid_scan_gives_the_client_id():
    result = pipeline().process(frame("A123"))
    assert (result.kind, result.client_id, result.reason) == (Kind.VALID, "A123", None)


def test_same_id_inside_the_window_is_a_duplicate_then_valid_after_it():
    p = pipeline(debounce_seconds=3.0)
    assert p.process(frame("A123", at=0.0)).kind is Kind.VALID
    dup = p.process(frame("A123", at=2.0))
    assert (dup.kind, dup.reason, dup.client_id) == (Kind.DUPLICATE, Reason.DUPLICATE, "A123")
    assert p.process(frame("A123", at=5.5)).kind is Kind.VALID


def test_duplicates_compare_case_insensitively():
    p = pipeline()
    p.process(frame("abcd"))
    assert p.process(frame("ABCD", at=1001.0)).kind is Kind.DUPLICATE


def test_different_ids_are_never_duplicates():
    p = pipeline()
    assert [p.process(frame(t)).kind for t in ("A123", "B123", "C123")] == [Kind.VALID] * 3


def test_human_typing_is_rejected_as_typed_even_when_the_text_is_a_valid_id():
    result = pipeline().process(frame("A123", gaps=(150.0, 180.0, 120.0, 160.0)))
    assert (result.kind, result.reason, result.client_id) == (Kind.TYPED, Reason.TYPED, None)


def test_invalid_scans_do_not_start_a_debounce_window():
    p = pipeline()
    assert p.process(frame("A1")).kind is Kind.INVALID
    assert p.process(frame("A1")).reason is Reason.TOO_SHORT


def test_driver_reported_error_becomes_invalid_with_that_reason():
    result = pipeline().process(frame("\\xff\\xfe", error=Reason.NOT_TEXT))
    assert (result.kind, result.reason) == (Kind.INVALID, Reason.NOT_TEXT)


def test_rules_are_looked_up_per_scanner():
    p = pipeline()
    assert p.process(frame("*A123", scanner="serial", gaps=())).client_id == "A123"
    assert p.process(frame("B123", scanner="serial", gaps=())).reason is Reason.MISSING_PREFIX


def test_case_policy_applies_before_debounce_and_output():
    result = pipeline(case=CasePolicy.UPPER).process(frame("abc1"))
    assert result.client_id == "ABC1" and result.text == "abc1"


def test_json_shape_has_the_documented_fields():
    body = pipeline().process(frame("A123", at=0.5)).as_json()
    assert body == {"source": "door", "device": "/dev/input/event0", "text": "A123", "outcome": "valid",
                    "reason": None, "client_id": "A123", "at": "1970-01-01T00:00:00.500+00:00"}


def test_a_forgotten_id_checks_in_again_at_once():
    p = pipeline()
    p.process(frame("A123", at=0.0))
    p.debouncer.forget("a123")
    assert p.process(frame("A123", at=0.5)).kind is Kind.VALID
