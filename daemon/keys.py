"""Key decoding: evdev EV_KEY events to text through libxkbcommon and a configurable XKB layout.

A USB HID barcode scanner is a keyboard. It sends key codes, and what those mean depends on the layout the
scanner was configured for: a scanner set to German sends KEY_Y to type 'z'. libxkbcommon compiles any
layout from the XKB data in /usr/share/X11/xkb, so every layout works without an X display.

Dead keys: the decoder does not compose. A dead key press (de '^', fr '^' and the like) yields a stroke
with text '' and keysym 'dead_circumflex', and the next key types its own text unchanged. Scanners send
characters, not dead-key sequences, so a dead key in a scan is a sign of a layout mismatch that
validation then sees as a character missing.

`key_events_for` is the reverse: the event stream a scanner configured for a layout sends to type a
text. Driver tests, the uinput VM tier and the benchmarks feed it to the code under test.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator, Protocol

import evdev
from evdev import ecodes
from xkbcommon import xkb

from .errors import KeymapError
from .scan import DROPPED, Dropped, KeyStroke

EVDEV_TO_XKB = 8  # XKB keycodes are evdev codes + 8, a leftover of the X11 protocol's minimum keycode
_RELEASE, _PRESS = 0, 1  # EV_KEY values; 2 is autorepeat
_BEYOND_STANDARD_KEYBOARD = 128  # codes from here on (KEY_EURO...) exist on few keyboards and no scanner


class KeyEvent(Protocol):
    """What the decoder reads from an event: the shape of evdev.InputEvent."""

    type: int
    code: int
    value: int

    def timestamp(self) -> float: ...


def compile_keymap(layout: str, variant: str = "", options: str = "") -> xkb.Keymap:
    """Compile one XKB layout with the evdev rules, or raise KeymapError naming it and saying why.

    libxkbcommon reports some problems (an unknown option) only in its log and still returns a keymap,
    so any message at error level counts as failure: a scanner must never run on a silently different
    keymap. The environment (XKB_DEFAULT_LAYOUT...) is ignored: the configuration alone decides.
    """
    what = _describe(layout, variant, options)
    if not layout:
        raise KeymapError(f"{what}: no layout given")
    if "," in layout or "," in variant:
        raise KeymapError(f"{what}: names more than one layout; a scanner types in exactly one")
    keymap, errors = _compile_collecting_errors(layout, variant, options)
    if keymap is None or errors:
        reasons = "; ".join(e for e in errors if e and not e.startswith("/") and not e.endswith(":"))
        raise KeymapError(
            f"{what}: cannot be compiled: {reasons or 'libxkbcommon gave no reason'}"
            " (`localectl list-x11-keymap-layouts` and `list-x11-keymap-variants LAYOUT` list the valid names)"
        )
    return keymap


def _compile_collecting_errors(layout: str, variant: str, options: str) -> tuple[xkb.Keymap | None, list[str]]:
    """The keymap (None if libxkbcommon refused) and the error messages it logged instead of to stderr."""
    errors: list[str] = []
    context = xkb.Context(no_environment_names=True)
    context.set_log_fn(lambda _context, _level, message: errors.append(message.strip()))
    context.set_log_level(xkb.lib.XKB_LOG_LEVEL_ERROR)
    try:
        keymap = context.keymap_new_from_names(
            rules="evdev", layout=layout, variant=variant or None, options=options or None
        )
    except xkb.XKBKeymapCreationFailure:
        keymap = None
    context.set_log_fn(_ignore_log)  # the binding cannot restore stderr logging; later messages are moot
    return keymap, errors


def _ignore_log(_context: xkb.Context, _level: int, _message: str) -> None:
    pass


def _describe(layout: str, variant: str, options: str) -> str:
    parts = [f"XKB layout {layout!r}"]
    if variant:
        parts.append(f"variant {variant!r}")
    if options:
        parts.append(f"options {options!r}")
    return " ".join(parts)


class KeyDecoder:
    """Turns one device's key events into KeyStrokes. Holds that device's modifier and lock state.

    Use one decoder per device: two scanners sharing a decoder would see each other's Shift.
    """

    def __init__(self, layout: str = "us", variant: str = "", options: str = ""):
        self.layout, self.variant, self.options = layout, variant, options
        self._keymap = compile_keymap(layout, variant, options)
        self._state = self._keymap.state_new()

    def feed(self, event: KeyEvent) -> KeyStroke | Dropped | None:
        """Decode one event.

        A key press gives the KeyStroke it types under the current modifiers (text '' for modifiers,
        function keys and dead keys; control keys give their control character, Return '\\r').
        SYN_DROPPED gives DROPPED and forgets all modifier and lock state, since the kernel lost events.
        Releases update the state and give None; autorepeats and all other events give None.
        """
        if event.type == ecodes.EV_KEY:
            return self._key(event)
        if event.type == ecodes.EV_SYN and event.code == ecodes.SYN_DROPPED:
            self.reset()
            return DROPPED
        return None

    def reset(self) -> None:
        """Forget every held modifier and lock (Shift, Caps Lock, Num Lock, AltGr)."""
        self._state = self._keymap.state_new()

    def _key(self, event: KeyEvent) -> KeyStroke | None:
        if not 0 <= event.code <= ecodes.KEY_MAX:
            return None  # the kernel never sends these; keep them away from the C library's unsigned types
        keycode = event.code + EVDEV_TO_XKB
        if event.value == _PRESS:
            # The conventional order: read what the key types before the key itself changes the state.
            stroke = KeyStroke(
                text=self._state.key_get_string(keycode),
                keysym=xkb.keysym_get_name(self._state.key_get_one_sym(keycode)),
                at=event.timestamp(),
            )
            self._state.update_key(keycode, xkb.XKB_KEY_DOWN)
            return stroke
        if event.value == _RELEASE:
            self._state.update_key(keycode, xkb.XKB_KEY_UP)
        return None  # autorepeat: a held key is not typed again, and the state is unchanged


@dataclass(frozen=True, slots=True)
class _Chord:
    """One key pressed with modifier keys held: how a layout types one character or keysym."""

    code: int  # evdev key code
    modifiers: tuple[int, ...]  # evdev codes of the modifier keys held around it


@dataclass(frozen=True, slots=True)
class _TypingTable:
    by_text: dict[str, _Chord]
    by_keysym: dict[str, _Chord]


def key_events_for(
    text: str,
    layout: str = "us",
    variant: str = "",
    start: float = 0.0,
    gap_ms: float = 5.0,
    terminator: str | None = "Return",
) -> list[evdev.InputEvent]:
    """The evdev events a keyboard (scanner) set to `layout` sends to type `text`, then `terminator`.

    Each character is two HID reports, as the kernel turns them into events: a press report (modifier
    keys down, then the key down, SYN_REPORT) and a release report (modifiers up, key up, SYN_REPORT).
    Shift and AltGr (the key with ISO_Level3_Shift, right Alt) are held as the layout needs; Caps Lock
    and Num Lock are assumed off, as in a fresh KeyDecoder. Among the keys that type a character, a key
    of a standard 105-key keyboard wins, then the main block over the keypad, then no modifier over
    Shift over AltGr over both (us '*' is Shift+8, not KP_Multiply).

    Character i is pressed at start + i * gap_ms / 1000 seconds and released half a gap later, so the
    decoded KeyStrokes are exactly gap_ms apart. The terminator (a keysym name such as 'Return',
    'KP_Enter' or 'Tab'; None for none) follows as one more character. No EV_MSC scan codes are emitted.

    Raises KeymapError when the layout cannot be compiled, or cannot type a character with one key and
    Shift/AltGr (de '^' and '`' exist only as dead keys; no layout types '\\f'), or has no key for the
    terminator.
    """
    table = _typing_table(layout, variant)
    chords = [_chord_for(table.by_text, char, "type", layout, variant) for char in text]
    if terminator is not None:
        chords.append(_chord_for(table.by_keysym, terminator, "press a key for keysym", layout, variant))
    events: list[evdev.InputEvent] = []
    for index, chord in enumerate(chords):
        pressed_at = start + index * gap_ms / 1000
        events += _report(pressed_at, chord, _PRESS)
        events += _report(pressed_at + gap_ms / 2000, chord, _RELEASE)
    return events


def _chord_for(chords: dict[str, _Chord], wanted: str, verb: str, layout: str, variant: str) -> _Chord:
    try:
        return chords[wanted]
    except KeyError:
        raise KeymapError(f"{_describe(layout, variant, '')}: cannot {verb} {wanted!r}") from None


def _report(at: float, chord: _Chord, value: int) -> list[evdev.InputEvent]:
    sec, usec = divmod(round(at * 1_000_000), 1_000_000)
    codes = [*chord.modifiers, chord.code]
    events = [evdev.InputEvent(sec, usec, ecodes.EV_KEY, code, value) for code in codes]
    return events + [evdev.InputEvent(sec, usec, ecodes.EV_SYN, ecodes.SYN_REPORT, 0)]


@functools.lru_cache(maxsize=16)
def _typing_table(layout: str, variant: str) -> _TypingTable:
    """Which chord types each character and each keysym, found by trying every key under every
    combination of held modifiers on a scratch state: exactly what a KeyDecoder will compute."""
    keymap = compile_keymap(layout, variant)
    by_text: dict[str, _Chord] = {}
    by_keysym: dict[str, _Chord] = {}
    for _rank, text, keysym, chord in sorted(_candidates(keymap)):
        if text:
            by_text.setdefault(text, chord)
        by_keysym.setdefault(keysym, chord)
    return _TypingTable(by_text, by_keysym)


def _candidates(keymap: xkb.Keymap) -> Iterator[tuple[tuple, str, str, _Chord]]:
    """Every (rank, text, keysym, chord) the keymap offers; the lowest rank is the most natural chord."""
    for effort, modifiers in enumerate(_holdable_modifier_sets(keymap)):
        state = keymap.state_new()
        for code in modifiers:
            state.update_key(code + EVDEV_TO_XKB, xkb.XKB_KEY_DOWN)
        for keycode, code in _evdev_keys(keymap):
            keysym = xkb.keysym_get_name(state.key_get_one_sym(keycode))
            rank = (code >= _BEYOND_STANDARD_KEYBOARD, keysym.startswith("KP_"), effort, code)
            yield rank, state.key_get_string(keycode), keysym, _Chord(code, modifiers)


def _holdable_modifier_sets(keymap: xkb.Keymap) -> list[tuple[int, ...]]:
    """No modifier, Shift, AltGr, Shift+AltGr, in order of preference: the keys a scanner holds.
    Locks (Caps Lock, Num Lock) are never used: a scanner that toggles them leaves the host changed."""
    shift = _code_for_keysym(keymap, "Shift_L", preferred=ecodes.KEY_LEFTSHIFT)
    altgr = _code_for_keysym(keymap, "ISO_Level3_Shift", preferred=ecodes.KEY_RIGHTALT)
    held = [code for code in (shift, altgr) if code is not None]
    sets: list[tuple[int, ...]] = [(), *((code,) for code in held)]
    return sets + ([tuple(held)] if len(held) == 2 else [])


def _code_for_keysym(keymap: xkb.Keymap, name: str, preferred: int) -> int | None:
    """The evdev code of a key whose unmodified keysym is `name`, the usual key if it qualifies."""
    wanted = xkb.keysym_from_name(name)
    codes = [code for keycode, code in _evdev_keys(keymap) if keymap.key_get_syms_by_level(keycode, 0, 0) == [wanted]]
    return preferred if preferred in codes else (codes[0] if codes else None)


def _evdev_keys(keymap: xkb.Keymap) -> Iterator[tuple[int, int]]:
    """(XKB keycode, evdev code) of every key in the keymap that Linux defines a key code for.

    The evdev rules also map codes no device sends (XKB's virtual <LVL3> key, evdev 84, is us AltGr)."""
    for keycode in keymap:
        if keycode - EVDEV_TO_XKB in ecodes.KEY:
            yield keycode, keycode - EVDEV_TO_XKB
