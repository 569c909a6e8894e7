"""USB HID scanners for real: uinput keyboards read by `tagd listen` through the kernel's evdev, in the guest."""

from __future__ import annotations

import threading
import time

import evdev
import pytest

from .guest_tools import Tagd, VirtualScanner, hid_scanner_config, write_config

pytestmark = pytest.mark.system

SCANNER_GAP_MS = 4.0  # a scanner types a character every few milliseconds
HUMAN_GAP_MS = 150.0  # a quick typist: well above the default typed_threshold_ms of 40
REPLUG_CYCLES = 50


@pytest.fixture
def scanner():
    with VirtualScanner() as device:
        yield device


@pytest.fixture
def tagd_runs():
    started: list[Tagd] = []

    def start(*args: str, **kwargs) -> Tagd:
        started.append(Tagd(*args, **kwargs))
        return started[-1]

    yield start
    for process in started:
        process.stop()


def listen_to(tagd_runs, tmp_path, device: VirtualScanner, layout: str = "us") -> Tagd:
    config = write_config(tmp_path / "tagd.toml", "")  # no scanners configured: --device names the one
    tagd = tagd_runs("listen", "--device", device.path, "--layout", layout, config=config)
    tagd.wait_attached(device.path)
    return tagd


@pytest.mark.parametrize("layout", ["us", "de"])
def test_a_scan_at_scanner_speed_decodes_right(tagd_runs, tmp_path, layout):
    with VirtualScanner(layout=layout) as device:
        tagd = listen_to(tagd_runs, tmp_path, device, layout)
        device.type("Zy7Qa2Yz", gap_ms=SCANNER_GAP_MS)  # y and z trade places between us and de
        scan = tagd.next_scan()
    assert (scan["text"], scan["outcome"], scan["client_id"]) == ("Zy7Qa2Yz", "valid", "Zy7Qa2Yz")
    assert scan["device"] == device.path


def test_a_layout_mismatch_shows_in_the_text(tagd_runs, tmp_path):
    """The control for the test above: a de scanner read as us swaps y and z, so the layout really mattered."""
    with VirtualScanner(layout="de") as device:
        tagd = listen_to(tagd_runs, tmp_path, device, "us")
        device.type("Zy7Qa2Yz", gap_ms=SCANNER_GAP_MS)
        assert tagd.next_scan()["text"] == "Yz7Qa2Zy"


def test_typing_at_human_speed_is_rejected_as_typed(tagd_runs, tmp_path, scanner):
    tagd = listen_to(tagd_runs, tmp_path, scanner)
    scanner.type("A1234", gap_ms=HUMAN_GAP_MS)
    scan = tagd.next_scan()
    assert (scan["text"], scan["outcome"], scan["client_id"]) == ("A1234", "typed", None)


def test_a_second_reader_gets_the_keys_while_nobody_grabs(scanner):
    """The control for the grab test: the same second reader does see keystrokes when tagd is not holding them."""
    other = evdev.InputDevice(scanner.path)
    try:
        scanner.type("B5678", gap_ms=SCANNER_GAP_MS)
        assert _key_events(other)
    finally:
        other.close()


def test_the_grab_keeps_keystrokes_from_any_other_reader(tagd_runs, tmp_path, scanner):
    tagd = listen_to(tagd_runs, tmp_path, scanner)
    other = evdev.InputDevice(scanner.path)
    try:
        scanner.type("B5678", gap_ms=SCANNER_GAP_MS)
        assert tagd.next_scan()["client_id"] == "B5678"
        assert _key_events(other) == []
    finally:
        other.close()


def _key_events(device: evdev.InputDevice) -> list[evdev.InputEvent]:
    """Every key event waiting on `device`, read without blocking."""
    events = []
    while (event := device.read_one()) is not None:
        if event.type == evdev.ecodes.EV_KEY:
            events.append(event)
    return events


def test_two_scanners_at_once_keep_their_scans_apart(tagd_runs, tmp_path):
    config = write_config(tmp_path / "tagd.toml", hid_scanner_config())
    with VirtualScanner(1) as first, VirtualScanner(2) as second:
        tagd = tagd_runs("listen", config=config)
        tagd.wait_attached(first.path, second.path)
        typing = [threading.Thread(target=first.type, args=("AAAA1111",), kwargs={"gap_ms": 5.0}),
                  threading.Thread(target=second.type, args=("BBBB2222",), kwargs={"gap_ms": 7.0})]
        for thread in typing:
            thread.start()
        for thread in typing:
            thread.join()
        scans = [tagd.next_scan(), tagd.next_scan()]
    by_device = {scan["device"]: (scan["text"], scan["outcome"]) for scan in scans}
    assert by_device == {first.path: ("AAAA1111", "valid"), second.path: ("BBBB2222", "valid")}


def test_replug_is_back_within_a_second_without_leaking_descriptors(tagd_runs, tmp_path):
    config = write_config(tmp_path / "tagd.toml", hid_scanner_config())
    device = VirtualScanner()
    tagd = tagd_runs("listen", config=config)
    tagd.wait_attached(device.path)
    baseline = tagd.open_fds()  # the event node's number may change between plugs: compare counts
    slowest = 0.0
    for cycle in range(REPLUG_CYCLES):
        device.unplug()
        tagd.wait_log(r"detached .*unplugged")
        plugged_at = time.monotonic()
        device = VirtualScanner()
        slowest = max(slowest, tagd.wait_attached(device.path) - plugged_at)
    device.type(f"C{REPLUG_CYCLES:04d}", gap_ms=SCANNER_GAP_MS)
    assert tagd.next_scan()["client_id"] == f"C{REPLUG_CYCLES:04d}"
    after = tagd.open_fds()
    assert len(after) == len(baseline), f"before: {baseline}\nafter {REPLUG_CYCLES} replugs: {after}"
    device.unplug()
    assert slowest < 1.0, f"slowest replug took {slowest:.2f} s"
