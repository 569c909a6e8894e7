"""Which devices a HID scanner entry binds, and which devices `tagd devices` flags as scanners. Pure."""

from __future__ import annotations

import os

import pytest
from evdev import ecodes

from daemon.errors import ConfigError
from daemon.settings import HidScannerSettings
from drivers.evdev_backend import by_id_links, is_event_node, list_event_paths
from drivers.fake_evdev import KEYBOARD_KEYS
from drivers.matching import Criteria, DeviceIdentity, looks_like_scanner, parse_vendor_product, scanner_hint

KEYBOARD = frozenset(KEYBOARD_KEYS)
CONSUMER_CONTROL = frozenset({ecodes.KEY_VOLUMEUP, ecodes.KEY_VOLUMEDOWN, ecodes.KEY_MUTE})
MOUSE = frozenset({ecodes.BTN_LEFT, ecodes.BTN_RIGHT})


def identity(name: str = "Honeywell Imaging & Mobility 1900", vendor: int = 0x0C2E, product: int = 0x0B61,
             keys: frozenset[int] = KEYBOARD, path: str = "/dev/input/event3", by_id: tuple[str, ...] = ()):
    return DeviceIdentity(path=path, name=name, vendor=vendor, product=product, keys=keys, by_id=by_id)


def criteria(**settings) -> Criteria:
    return Criteria.from_settings(HidScannerSettings(name="door", **settings))


def test_vendor_product_is_hex_and_case_insensitive():
    assert parse_vendor_product("0C2E:0b61") == (0x0C2E, 0x0B61)
    assert parse_vendor_product("") is None


@pytest.mark.parametrize("bad", ["0c2e-0b61", "c2e:b61", "0c2e:0b61:1", "honeywell", "0x0c2e:0x0b61"])
def test_malformed_vendor_product_is_a_config_error_naming_the_scanner(bad):
    with pytest.raises(ConfigError) as error:
        parse_vendor_product(bad, "door")
    assert error.value.key == "scanners.door.vendor_product"
    assert repr(bad) in str(error.value) and "0c2e:0b61" in str(error.value)


def test_device_path_matches_through_a_by_id_symlink():
    links = {"/dev/input/by-id/usb-Honeywell-event-kbd": "/dev/input/event3"}
    resolve = lambda path: links.get(path, path)  # noqa: E731
    by_link = criteria(device="/dev/input/by-id/usb-Honeywell-event-kbd")
    assert by_link.matches(identity(path="/dev/input/event3"), resolve)
    assert not by_link.matches(identity(path="/dev/input/event4"), resolve)
    assert criteria(device="/dev/input/event4").matches(identity(path="/dev/input/event4"), resolve)


def test_vendor_product_must_be_equal():
    assert criteria(vendor_product="0c2e:0b61").matches(identity())
    assert not criteria(vendor_product="0c2e:0b62").matches(identity())


def test_name_pattern_is_fnmatch_without_regard_to_case():
    assert criteria(name_pattern="*honeywell*").matches(identity())
    assert not criteria(name_pattern="*zebra*").matches(identity())
    assert not criteria(name_pattern="honeywell").matches(identity())  # a pattern, not a substring


def test_every_criterion_given_must_hold():
    both = criteria(vendor_product="0c2e:0b61", name_pattern="*Zebra*")
    assert not both.matches(identity())
    assert criteria(vendor_product="0c2e:0b61", name_pattern="*1900").matches(identity())


@pytest.mark.parametrize("keys", [CONSUMER_CONTROL, MOUSE, frozenset()])
def test_a_node_that_cannot_type_digits_never_matches(keys):
    """Scanners expose a consumer-control node with the same name and IDs next to the keyboard node."""
    assert not criteria(vendor_product="0c2e:0b61").matches(identity(keys=keys))


def test_no_criterion_binds_scanners_but_never_an_ordinary_keyboard():
    anything = criteria()
    assert anything.matches(identity())
    assert not anything.matches(identity(name="Dell USB Entry Keyboard", vendor=0x413C, product=0x2107))


@pytest.mark.parametrize(("device", "hint"), [
    (identity(name="USB Barcode Scanner", vendor=0x1A86), "name says 'barcode'"),
    (identity(name="NETUM Wireless", vendor=0x1A86), "name says 'netum'"),
    (identity(name="HID 0483:5750", vendor=0x0483,
              by_id=("/dev/input/by-id/usb-Datalogic_ADC_Gryphon-event-kbd",)), "by-id link says 'datalogic'"),
    (identity(name="Hand Held Products 4600", vendor=0x1A86), "name says 'hand held products'"),
    (identity(name="HID 0536:02e1", vendor=0x0536), "vendor 0536 is Honeywell (Hand Held Products)"),
    (identity(name="HID 05e0:1200", vendor=0x05E0), "vendor 05e0 is Zebra (Symbol)"),
    (identity(name="Dell USB Keyboard", vendor=0x413C), None),
])
def test_scanner_hint_says_why(device, hint):
    assert scanner_hint(device) == hint


def test_looks_like_scanner_needs_a_keyboard_with_enter_and_a_hint():
    assert looks_like_scanner(identity())
    assert not looks_like_scanner(identity(keys=CONSUMER_CONTROL))  # a hint, but not keyboard-like
    assert not looks_like_scanner(identity(keys=KEYBOARD - {ecodes.KEY_ENTER, ecodes.KEY_KPENTER}))
    assert not looks_like_scanner(identity(name="Logitech K120", vendor=0x046D))  # keyboard-like, no hint


def test_event_nodes_are_listed_in_numeric_order(tmp_path):
    for name in ["event10", "event2", "mouse0", "event1", "js0"]:
        (tmp_path / name).touch()
    assert [os.path.basename(p) for p in list_event_paths(str(tmp_path))] == ["event1", "event2", "event10"]
    assert is_event_node("/dev/input/event12") and not is_event_node("/dev/input/event-kbd")


def test_by_id_links_are_those_pointing_at_the_node(tmp_path):
    (tmp_path / "event3").touch()
    (tmp_path / "event4").touch()
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-Scanner-event-kbd").symlink_to("../event3")
    (by_id / "usb-Scanner-if01-event-kbd").symlink_to("../event4")
    (by_id / "usb-Broken-event-kbd").symlink_to("../event9")
    assert by_id_links(str(tmp_path), str(tmp_path / "event3")) == (str(by_id / "usb-Scanner-event-kbd"),)
    assert by_id_links(str(tmp_path / "nowhere"), str(tmp_path / "event3")) == ()
