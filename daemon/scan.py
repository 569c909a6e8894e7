"""Values that flow through the scan path. Pure data: no I/O, no clocks, no exceptions as control flow."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class KeyStroke:
    """One key press decoded through the keymap: what it types and which keysym it is."""

    text: str  # characters the press produced under the current modifiers ('' for Shift, F1, ...)
    keysym: str  # XKB keysym name: 'a', 'A', 'Return', 'KP_Enter', 'Tab', 'Shift_L', ...
    at: float  # the event's own timestamp in seconds (evdev InputEvent.timestamp())


class Dropped:
    """The kernel dropped events (SYN_DROPPED): whatever scan was being assembled is no longer trustworthy."""

    def __repr__(self) -> str:
        return "DROPPED"


DROPPED = Dropped()


@dataclass(frozen=True, slots=True)
class Frame:
    """One framed scan as a driver delivers it, before it is cleaned and validated."""

    scanner: str  # the configured scanner's name (the rules for this frame are looked up by it)
    device: str  # the concrete device it came from: event node, serial port, 'stdin', 'fake'
    text: str  # decoded text of the whole frame, terminator excluded
    at: float  # wall-clock time (epoch seconds) of the frame's first character
    gaps_ms: tuple[float, ...] = ()  # HID only: time between consecutive key presses
    error: str | None = None  # set when the frame is known bad before validation (Reason value)


class Kind(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    TYPED = "typed"
    DUPLICATE = "duplicate"


class Reason(StrEnum):
    """Why a frame was not a valid scan. The values are stable: they appear in JSON output and logs."""

    EMPTY = "empty"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    NOT_ALPHANUMERIC = "not_alphanumeric"
    CONTROL_CHARACTERS = "control_characters"
    NOT_TEXT = "not_text"  # serial bytes that do not decode in the configured encoding
    OVERFLOW = "overflow"  # a frame longer than the framer's buffer: cut off, never buffered without bound
    MISSING_PREFIX = "missing_prefix"
    MISSING_SUFFIX = "missing_suffix"
    TYPED = "typed"  # inter-key timing of a person, not a scanner
    DUPLICATE = "duplicate"  # same ID again inside the debounce window


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What the core decided about one frame."""

    kind: Kind
    scanner: str
    device: str
    text: str
    at: float
    client_id: str | None = None  # set only when kind is VALID or DUPLICATE
    reason: Reason | None = None

    def as_json(self) -> dict:
        from datetime import datetime, timezone

        return {
            "source": self.scanner,
            "device": self.device,
            "text": self.text,
            "outcome": self.kind.value,
            "reason": self.reason.value if self.reason else None,
            "client_id": self.client_id,
            "at": datetime.fromtimestamp(self.at, timezone.utc).isoformat(timespec="milliseconds"),
        }
