"""`tagd devices` discovery over the fake evdev backend in a temporary /dev/input (real files and symlinks)."""

from __future__ import annotations

import errno
import os

import pytest

from evdev import ecodes

from drivers.discovery import list_input_devices
from drivers.fake_evdev import FakeEvdevBackend, FakeInputDevice


@pytest.fixture
def backend(tmp_path) -> FakeEvdevBackend:
    (tmp_path / "input").mkdir()
    return FakeEvdevBackend(str(tmp_path / "input"))


def device(backend: FakeEvdevBackend, number: int, **kwargs) -> FakeInputDevice:
    return backend.plug(FakeInputDevice(backend.event_path(number), **kwargs))


def rows_by_path(backend: FakeEvdevBackend) -> dict[str, dict]:
    return {row["path"]: row for row in list_input_devices(backend)}


def test_a_scanner_is_listed_with_its_by_id_link_ids_and_access(backend):
    scanner = device(backend, 3, name="Honeywell Imaging & Mobility 1900", by_id="usb-Honeywell_1900-event-kbd")
    assert list_input_devices(backend) == [{
        "path": scanner.path,
        "by_id": os.path.join(backend.input_dir, "by-id", "usb-Honeywell_1900-event-kbd"),
        "vendor_product": "0c2e:0b61",
        "name": "Honeywell Imaging & Mobility 1900",
        "phys": scanner.phys,
        "looks_like_scanner": True,
        "can_open": True,
        "can_grab": True,
        "problem": None,
    }]
    assert backend.open_handles == [] and scanner.grabbed_by is None  # looked at, released


def test_keyboard_is_listed_but_not_flagged_and_devices_without_keys_are_left_out(backend):
    keyboard = device(backend, 1, name="Dell USB Keyboard", vendor=0x413C, product=0x2107)
    device(backend, 2, name="Accelerometer", keys=())
    rows = rows_by_path(backend)
    assert list(rows) == [keyboard.path]
    assert rows[keyboard.path]["looks_like_scanner"] is False and rows[keyboard.path]["by_id"] is None


def test_a_consumer_control_node_of_a_scanner_is_not_flagged(backend):
    node = device(backend, 4, name="Honeywell 1900 Consumer Control", keys=(ecodes.KEY_VOLUMEUP,))
    assert rows_by_path(backend)[node.path]["looks_like_scanner"] is False


def test_unreadable_node_is_listed_with_the_fix(backend):
    node = device(backend, 5, readable=False)
    row = rows_by_path(backend)[node.path]
    assert (row["can_open"], row["can_grab"], row["name"]) == (False, False, None)
    assert row["problem"] == "no read access: add the user to group 'input'"


def test_grabbed_node_says_another_program_has_it(backend):
    node = device(backend, 6)
    holder = backend.hold_grab(node.path)
    row = rows_by_path(backend)[node.path]
    assert (row["can_open"], row["can_grab"], row["problem"]) == (True, False, "grabbed by another program")
    assert node.grabbed_by is holder and backend.open_handles == [holder]


def test_other_open_errors_are_reported_in_words(backend):
    node = device(backend, 7)
    backend.open_errors.append(OSError(errno.EMFILE, os.strerror(errno.EMFILE)))
    assert rows_by_path(backend)[node.path]["problem"] == "Too many open files"


def test_keyboard_interface_link_is_preferred(backend):
    node = device(backend, 8, by_id="usb-Newland_NLS-if01-event-mouse")
    os.symlink("../event8", os.path.join(backend.input_dir, "by-id", "usb-Newland_NLS-event-kbd"))
    row = rows_by_path(backend)[node.path]
    assert row["by_id"].endswith("usb-Newland_NLS-event-kbd")

