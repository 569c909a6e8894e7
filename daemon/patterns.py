"""Feedback patterns: what each output does for each signal. Pure.

A pattern is a sequence of steps, each a state held for some milliseconds. States:
- `Level(on)`: a light (or an active buzzer) on or off.
- `Blink(on_ms, off_ms)`: blinking, by the kernel's LED timer where the output has one, else step by step.
- `Tone(hz)`: a beeper sounding `hz` (0 is silence); outputs that cannot make tones are on while hz > 0.

The last step may have no duration: the state then holds until the next signal (link mode blinking, say).
Otherwise every output ends the pattern off.

Text form, used by the configuration (`[patterns.accepted] green = "on:1500"`), steps separated by spaces or
commas: `on[:ms]`, `off[:ms]`, `blink:ON_MS:OFF_MS[:TOTAL_MS]`, `tone:HZ[:MS]`, `silence[:MS]`; "" does nothing
(the output is off for that signal).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from .config_fields import Problem


class Signal(StrEnum):
    ACCEPTED = "accepted"
    OFFLINE_ACCEPTED = "offline-accepted"
    DENIED = "denied"
    UNKNOWN = "unknown"
    DUPLICATE = "duplicate"
    INVALID = "invalid"
    OFFLINE = "offline"
    LINK_MODE_ON = "link-mode-on"
    LINK_MODE_OFF = "link-mode-off"
    CONFIRM_NEEDED = "confirm-needed"
    LINKED = "linked"
    LINK_CONFLICT = "link-conflict"
    ERROR = "error"


@dataclass(frozen=True)
class Level:
    on: bool


@dataclass(frozen=True)
class Blink:
    on_ms: int
    off_ms: int


@dataclass(frozen=True)
class Tone:
    hz: int


State = Level | Blink | Tone
OFF = Level(False)


@dataclass(frozen=True)
class Step:
    state: State
    ms: int | None  # None: hold until the next signal (last step only)


Pattern = tuple[Step, ...]
PatternTable = Mapping[str, Mapping[str, Pattern]]  # signal -> role -> pattern

MAX_MS = 600_000
_NUMBER = r"(\d{1,7})"
_STEP_FORMS = {  # word -> regex of the rest (after the word)
    "on": rf"(?::{_NUMBER})?",
    "off": rf"(?::{_NUMBER})?",
    "blink": rf":{_NUMBER}:{_NUMBER}(?::{_NUMBER})?",
    "tone": rf":{_NUMBER}(?::{_NUMBER})?",
    "silence": rf"(?::{_NUMBER})?",
}
_SYNTAX = "steps like on:1500, off:200, blink:100:100:1000, tone:880:150, silence:50, separated by spaces"


def parse_pattern(text: str) -> Pattern:
    """'tone:880:150 silence:50 tone:880:150' → Pattern. Problem (a TagdError) naming the step otherwise."""
    words = [word for word in re.split(r"[\s,]+", text.strip().lower()) if word]
    steps = tuple(_parse_step(word) for word in words)
    for step in steps[:-1]:
        if step.ms is None:
            raise Problem(f"only the last step may omit its duration (it then holds until the next signal), "
                          f"got {text!r}")
    return steps


def _parse_step(word: str) -> Step:
    head, _, _ = word.partition(":")
    found = re.fullmatch(_STEP_FORMS.get(head, r"(?!)"), word[len(head):])
    if found is None:
        raise Problem(f"{word!r} is not a step; use {_SYNTAX}")
    numbers = [int(n) if n is not None else None for n in found.groups()]
    for number in numbers:
        if number is not None and not 1 <= number <= MAX_MS:
            raise Problem(f"{word!r}: numbers must be 1..{MAX_MS}")
    if head == "blink":
        return Step(Blink(numbers[0], numbers[1]), numbers[2])
    if head == "tone":
        if not 20 <= numbers[0] <= 20_000:
            raise Problem(f"{word!r}: a tone must be 20..20000 Hz")
        return Step(Tone(numbers[0]), numbers[1])
    state = {"on": Level(True), "off": OFF, "silence": Tone(0)}[head]
    return Step(state, numbers[0])


def format_pattern(pattern: Pattern) -> str:
    """The text form; `parse_pattern(format_pattern(p)) == p`."""
    return " ".join(_format_step(step) for step in pattern)


def _format_step(step: Step) -> str:
    state = step.state
    if isinstance(state, Blink):
        head = f"blink:{state.on_ms}:{state.off_ms}"
    elif isinstance(state, Tone):
        head = f"tone:{state.hz}" if state.hz else "silence"
    else:
        head = "on" if state.on else "off"
    return head if step.ms is None else f"{head}:{step.ms}"


def timeline(pattern: Pattern, hardware_blink: bool) -> Iterator[tuple[State, int | None]]:
    """(state, ms to hold it) in playing order; ms None ends the timeline with the state held.

    Without hardware blinking a blink is spelled out as on/off levels (endlessly, for a blink without duration).
    """
    for step in pattern:
        if isinstance(step.state, Blink) and not hardware_blink:
            yield from _software_blink(step.state, step.ms)
        else:
            yield step.state, step.ms
        if step.ms is None:
            return
    yield OFF, None


def _software_blink(blink: Blink, total_ms: int | None) -> Iterator[tuple[State, int]]:
    elapsed, on = 0, True
    while total_ms is None or elapsed < total_ms:
        length = blink.on_ms if on else blink.off_ms
        if total_ms is not None:
            length = min(length, total_ms - elapsed)
        yield Level(on), length
        elapsed, on = elapsed + length, not on


def _table(text: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, Pattern]]:
    return {signal: {role: parse_pattern(steps) for role, steps in roles.items()} for signal, roles in text.items()}


ROLES = ("green", "red", "buzzer")  # the roles the default table speaks to
# Tones suit a piezo on an evdev beeper; an active buzzer (gpiod) simply sounds for as long as each tone lasts.
DEFAULT_TABLE: PatternTable = _table({
    Signal.ACCEPTED: {"green": "on:1500", "buzzer": "tone:2000:120"},
    Signal.OFFLINE_ACCEPTED: {"green": "blink:400:100:1500", "buzzer": "tone:2000:120"},
    Signal.DENIED: {"red": "on:2000", "buzzer": "tone:400:500"},
    Signal.UNKNOWN: {"red": "blink:150:150:2100", "buzzer": "tone:400:150 silence:100 tone:400:150"},
    Signal.DUPLICATE: {"green": "blink:100:100:800", "buzzer": "tone:2000:60 silence:60 tone:2000:60"},
    Signal.INVALID: {"red": "blink:100:100:600", "buzzer": "tone:300:200"},
    Signal.OFFLINE: {"red": "blink:50:450:2000"},
    Signal.LINK_MODE_ON: {"green": "blink:500:500", "red": "blink:500:500",
                          "buzzer": "tone:1500:80 silence:80 tone:1500:80"},
    Signal.LINK_MODE_OFF: {"buzzer": "tone:1000:80"},
    Signal.CONFIRM_NEEDED: {"green": "blink:120:120", "buzzer": "tone:1500:80"},
    Signal.LINKED: {"green": "on:2000", "buzzer": "tone:1500:100 silence:50 tone:2500:200"},
    Signal.LINK_CONFLICT: {"red": "blink:100:100:2000", "buzzer": "tone:400:300 silence:100 tone:400:300"},
    Signal.ERROR: {"red": "blink:250:250:3000", "buzzer": "tone:300:800"},
})


def with_overrides(table: PatternTable, overrides: Mapping[str, Mapping[str, Pattern]]) -> PatternTable:
    """`table` with each (signal, role) in `overrides` replaced; other roles of that signal keep their pattern."""
    merged = {signal: dict(roles) for signal, roles in table.items()}
    for signal, roles in overrides.items():
        merged.setdefault(signal, {}).update(roles)
    return merged
