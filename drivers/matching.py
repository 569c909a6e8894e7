"""Which input devices a HID scanner entry means, and which devices look like barcode scanners. Pure.

Matching rules (`Criteria.matches`):
- Only a device that can type a scan is considered: it must report the digit keys (KEY_1 … KEY_0). Mice,
  power buttons and the consumer-control node that many scanners expose next to their keyboard node do not.
- Every criterion that is set must hold: `device` (same node after resolving symlinks, so a by-id link works),
  `vendor_product` ('0c2e:0b61', hex, case-insensitive), `name_pattern` (fnmatch, case-insensitive).
- An entry with no criterion at all binds every device that `looks_like_scanner` — never an ordinary keyboard,
  since with `grab` on that would take the keyboard away from its user.

The scanner heuristic (`looks_like_scanner`, shown by `tagd devices`): keyboard-like (reports Enter or keypad Enter
and all ten digits) AND some hint that it is a scanner: a word such as 'barcode', 'scanner' or a scanner maker's
name in the device name or in a by-id link, or a USB vendor ID that only scanner makers use. It is a hint for the
person configuring the reader, not a guarantee: cheap scanners often call themselves 'USB Keyboard'.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from evdev import ecodes

from daemon.errors import ConfigError
from daemon.settings import HidScannerSettings

DIGIT_KEYS = frozenset(range(ecodes.KEY_1, ecodes.KEY_0 + 1))
ENTER_KEYS = frozenset({ecodes.KEY_ENTER, ecodes.KEY_KPENTER})

SCANNER_WORDS = ("barcode", "bar code", "scanner", "honeywell", "hand held products", "metrologic", "zebra",
                 "symbol", "datalogic", "newland", "netum", "opticon", "cipherlab", "inateck", "eyoyo")
SCANNER_VENDORS = {  # USB vendor IDs registered to scanner makers (not to the chip vendors cheap scanners use)
    0x0C2E: "Honeywell (Metrologic)",
    0x0536: "Honeywell (Hand Held Products)",
    0x05E0: "Zebra (Symbol)",
    0x05F9: "Datalogic",
    0x1EAB: "Newland",
    0x065A: "Opticon",
}

_VENDOR_PRODUCT = re.compile(r"([0-9a-fA-F]{4}):([0-9a-fA-F]{4})")


@dataclass(frozen=True)
class DeviceIdentity:
    """What an opened input device says about itself, plus the by-id links udev made for it."""

    path: str
    name: str
    vendor: int
    product: int
    phys: str = ""
    keys: frozenset[int] = frozenset()  # EV_KEY codes it reports
    by_id: tuple[str, ...] = ()

    @property
    def vendor_product(self) -> str:
        return f"{self.vendor:04x}:{self.product:04x}"


def parse_vendor_product(text: str, scanner: str = "") -> tuple[int, int] | None:
    """'0C2E:0b61' → (0x0c2e, 0x0b61); '' → None. ConfigError naming the scanner's key otherwise."""
    if not text:
        return None
    found = _VENDOR_PRODUCT.fullmatch(text.strip())
    if found is None:
        key = f"scanners.{scanner}.vendor_product" if scanner else "vendor_product"
        raise ConfigError("", key, f"{text!r} is not vendor:product as 4+4 hex digits, e.g. '0c2e:0b61'")
    return int(found.group(1), 16), int(found.group(2), 16)


def can_type_scans(keys: frozenset[int]) -> bool:
    return DIGIT_KEYS <= keys


def is_keyboard_like(keys: frozenset[int]) -> bool:
    return can_type_scans(keys) and bool(ENTER_KEYS & keys)


def scanner_hint(identity: DeviceIdentity) -> str | None:
    """Why the device might be a scanner ('name says "barcode"', 'vendor 0c2e is …'), or None."""
    for word in SCANNER_WORDS:
        if word in identity.name.lower():
            return f"name says {word!r}"
        if any(word.replace(" ", "_") in os.path.basename(link).lower() for link in identity.by_id):
            return f"by-id link says {word!r}"
    maker = SCANNER_VENDORS.get(identity.vendor)
    return f"vendor {identity.vendor:04x} is {maker}" if maker else None


def looks_like_scanner(identity: DeviceIdentity) -> bool:
    return is_keyboard_like(identity.keys) and scanner_hint(identity) is not None


@dataclass(frozen=True)
class Criteria:
    """The device-selecting part of one [[scanners]] entry of kind 'hid'."""

    device: str = ""
    vendor_product: tuple[int, int] | None = None
    name_pattern: str = ""

    @classmethod
    def from_settings(cls, settings: HidScannerSettings) -> Criteria:
        return cls(settings.device, parse_vendor_product(settings.vendor_product, settings.name),
                   settings.name_pattern)

    @property
    def is_empty(self) -> bool:
        return not (self.device or self.vendor_product or self.name_pattern)

    def matches(self, identity: DeviceIdentity, resolve: Callable[[str], str] = os.path.realpath) -> bool:
        """`resolve` turns a path into the node it names (os.path.realpath; tests pass a table)."""
        if not can_type_scans(identity.keys):
            return False
        if self.is_empty:
            return looks_like_scanner(identity)
        if self.device and resolve(self.device) != resolve(identity.path):
            return False
        if self.vendor_product and self.vendor_product != (identity.vendor, identity.product):
            return False
        return not self.name_pattern or fnmatch.fnmatchcase(identity.name.lower(), self.name_pattern.lower())
