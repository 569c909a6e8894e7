from daemon.pipeline import ScanPipeline
from daemon.scan import Kind
from daemon.settings import FramingRules, ScanSettings
from drivers.fake import FakeScanner


def make(frames, statuses=None):
    on_status = (lambda *a: statuses.append(a)) if statuses is not None else (lambda *a: None)
    return FakeScanner("door", frames.append, on_status, clock=lambda: 7.0)


def test_scan_delivers_a_frame_at_scanner_speed():
    frames = []
    assert make(frames).scan("A123")
    result = ScanPipeline(ScanSettings(), {"door": FramingRules(typed_threshold_ms=40)}).process(frames[0])
    assert result.kind is Kind.VALID and result.at == 7.0


def test_typing_like_a_person_is_seen_as_typed_by_the_core():
    frames = []
    make(frames).type("A123")
    result = ScanPipeline(ScanSettings(), {"door": FramingRules(typed_threshold_ms=40)}).process(frames[0])
    assert result.kind is Kind.TYPED


def test_scans_while_unplugged_are_lost_and_reported_so():
    frames, statuses = [], []
    scanner = make(frames, statuses)
    scanner.unplug()
    assert scanner.scan("A123") is False
    scanner.plug()
    assert scanner.scan("B123") is True
    assert [f.text for f in frames] == ["B123"]
    assert [s[1] for s in statuses] == ["detached", "attached"]
