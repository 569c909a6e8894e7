"""Feedback outputs: thin adapters that show one `daemon.patterns` state at a time. The player sequences them.

- `LedClassOutput`: a Linux LED class device, /sys/class/leds/NAME (the Pi's `gpio-led` overlay makes a GPIO LED
  into one). Blinks with the kernel's `timer` trigger when the LED offers it, so a blink costs no wake-ups here.
- `GpiodOutput`: a GPIO output line (an LED, or an active buzzer that sounds while the line is active).
- `EvdevBeeper`: an input device with EV_SND (the kernel's pwm-beeper and gpio-beeper drivers): SND_TONE events
  written to its node. A gpio-beeper only knows on and off: any tone turns it on.
- `FakeOutput`: records (time, state) for tests.
- `TerminalOutput`: coloured outcome and mode lines for the demo (used by daemon.signals, not by the player).

`show` raises OSError when the device refuses; the player logs that once and carries on. Constructors raise
DeviceError when the output cannot be used at all (no such LED, no such line, gpiod missing).
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from evdev import ecodes

from daemon.errors import DeviceError
from daemon.feedback import TerminalFeedback
from daemon.patterns import OFF, Blink, Level, Signal, State, Tone
from daemon.player import Output
from daemon.settings import OutputSettings

from .gpio import request_output

LEDS_DIR = "/sys/class/leds"


def _lit(state: State) -> bool:
    """On/off outputs: a tone is sound, so an active buzzer (or an LED given a tone pattern) is on while it lasts."""
    return state.hz > 0 if isinstance(state, Tone) else not isinstance(state, Level) or state.on


class LedClassOutput:
    """/sys/class/leds/NAME. Starts off with trigger 'none'; `close` leaves it so."""

    def __init__(self, path: str, role: str, name: str = ""):
        self.path, self.role = path, role
        self.name = name or os.path.basename(path.rstrip("/"))
        self._trigger: str | None = None  # what we last wrote; None: unknown, write it again
        try:
            self.max_brightness = int(self._read("max_brightness"))
            self.hardware_blink = "timer" in _triggers(self._read("trigger"))
            self.show(OFF)
        except (OSError, ValueError) as exc:
            raise DeviceError(f"LED {path}: {getattr(exc, 'strerror', None) or exc}") from None

    @classmethod
    def named(cls, led: str, role: str, leds_dir: str = LEDS_DIR) -> LedClassOutput:
        return cls(os.path.join(leds_dir, led), role, led)

    def show(self, state: State) -> None:
        if isinstance(state, Blink) and self.hardware_blink:
            self._set_trigger("timer")
            self._write("delay_on", state.on_ms)
            self._write("delay_off", state.off_ms)
        else:
            self._set_trigger("none")
            self._write("brightness", self.max_brightness if _lit(state) else 0)

    def close(self) -> None:
        self._trigger = None
        self.show(OFF)

    def _set_trigger(self, trigger: str) -> None:
        if self._trigger == trigger and trigger == "none":
            return
        self._trigger = None
        self._write("trigger", trigger)  # 'timer' again restarts the blink with the delays written next
        self._trigger = trigger

    def _read(self, attribute: str) -> str:
        with open(os.path.join(self.path, attribute), encoding="ascii") as file:
            return file.read().strip()

    def _write(self, attribute: str, value: str | int) -> None:
        fd = os.open(os.path.join(self.path, attribute), os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, f"{value}\n".encode("ascii"))
        finally:
            os.close(fd)


def _triggers(text: str) -> set[str]:
    """'none [timer] heartbeat' → {'none', 'timer', 'heartbeat'} (the bracketed one is the current trigger)."""
    return {word.strip("[]") for word in text.split()}


class GpiodOutput:
    """One GPIO output line. Needs the `gpiod` package (imported only here)."""

    hardware_blink = False

    def __init__(self, chip: str, line: int, role: str, active_low: bool = False, name: str = ""):
        self.chip, self.line, self.role = chip, line, role
        self.name = name or f"{chip}:{line}"
        self._request = request_output(chip, line, active_low)
        from gpiod.line import Value

        self._values = {True: Value.ACTIVE, False: Value.INACTIVE}

    def show(self, state: State) -> None:
        self._request.set_value(self.line, self._values[_lit(state)])

    def close(self) -> None:
        request, self._request = self._request, None
        if request is not None:
            try:
                request.set_value(self.line, self._values[False])
            finally:
                request.release()


_INPUT_EVENT = struct.Struct("llHHi")  # struct input_event: timeval (two C longs), type, code, value
DEFAULT_TONE_HZ = 2000  # for an on/off pattern played on a beeper


def encode_tone(hz: int) -> bytes:
    """SND_TONE `hz` (0: silence) and the SYN_REPORT that ends the packet. The kernel stamps the time itself."""
    return (_INPUT_EVENT.pack(0, 0, ecodes.EV_SND, ecodes.SND_TONE, hz)
            + _INPUT_EVENT.pack(0, 0, ecodes.EV_SYN, ecodes.SYN_REPORT, 0))


class EvdevBeeper:
    """An EV_SND input device node. After a failed write the node is opened again on the next state."""

    hardware_blink = False

    def __init__(self, path: str, role: str, name: str = ""):
        self.path, self.role = path, role
        self.name = name or os.path.basename(path)
        self._fd = -1
        try:
            self._open()
        except OSError as exc:
            raise DeviceError(f"beeper {path}: {exc.strerror or exc}") from None

    def show(self, state: State) -> None:
        if isinstance(state, Tone):
            self._sound(state.hz)
        else:
            self._sound(DEFAULT_TONE_HZ if _lit(state) else 0)

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            self._sound(0)
        finally:
            self._close_fd()

    def _sound(self, hz: int) -> None:
        if self._fd < 0:
            self._open()
        try:
            os.write(self._fd, encode_tone(hz))
        except OSError:
            self._close_fd()  # unplugged or broken: reopen next time
            raise

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


class FakeOutput:
    """Records every state shown as (time, state). Set `failure` to an errno to make `show` raise it."""

    def __init__(self, role: str, clock: Callable[[], float], name: str = "", hardware_blink: bool = False):
        self.role, self.clock, self.name = role, clock, name or f"fake-{role}"
        self.hardware_blink = hardware_blink
        self.shown: list[tuple[float, State]] = []
        self.failure: int | None = None
        self.closed = False

    @property
    def state(self) -> State:
        return self.shown[-1][1] if self.shown else OFF

    def show(self, state: State) -> None:
        if self.failure is not None:
            raise OSError(self.failure, os.strerror(self.failure))
        self.shown.append((self.clock(), state))

    def close(self) -> None:
        self.closed = True


_SIGNAL_LINES = {  # signals as the demo terminal shows them (link mode sends them): text and colour (ANSI SGR)
    Signal.OFFLINE: ("LINK REFUSED · server unreachable (links need the server)", "1;31"),
    Signal.LINK_MODE_ON: ("LINK MODE · scan the new tag (member chosen at the desk) or the member's ID first", "1;36"),
    Signal.ACCEPTED: ("LINK MODE · member found: now scan the new tag", "36"),
    Signal.UNKNOWN: ("LINK MODE · no member has this ID", "33"),
    Signal.DUPLICATE: ("LINK MODE · that is already the member's tag", "33"),
    Signal.DENIED: ("LINK MODE · busy: wait for the server's answer", "33"),
    Signal.LINK_MODE_OFF: ("link mode off", "36"),
    Signal.CONFIRM_NEEDED: ("LINK MODE · press the button to confirm", "1;36"),
    Signal.LINKED: ("LINKED", "1;32"),
    Signal.LINK_CONFLICT: ("LINK REFUSED · tag already linked", "1;31"),
    Signal.ERROR: ("ERROR", "1;37;41"),
}


class TerminalOutput(TerminalFeedback):
    """TerminalFeedback's coloured outcome lines, plus a line for each mode signal."""

    def __init__(self, stream: TextIO = sys.stdout, color: bool | None = None):
        super().__init__(stream, color)

    def signal(self, name: str) -> None:
        text, sgr = _SIGNAL_LINES.get(name, (name, "0"))
        self._line(text, sgr)



def open_outputs(settings: Sequence[OutputSettings], stream: TextIO = sys.stdout,
                 on_error: Callable[[OutputSettings, DeviceError], None] | None = None,
                 ) -> tuple[list[Output], TerminalOutput | None]:
    """The outputs the settings describe, and the terminal if one is configured. An output that cannot be opened
    is passed to `on_error` and left out (the reader still works without that light); without `on_error` the
    DeviceError is raised."""
    outputs: list[Output] = []
    terminal: TerminalOutput | None = None
    for output in settings:
        if output.kind == "terminal":
            terminal = TerminalOutput(stream)
            continue
        try:
            outputs.append(_open_output(output))
        except DeviceError as exc:
            if on_error is None:
                raise
            on_error(output, exc)
    return outputs, terminal


def _open_output(output: OutputSettings) -> Output:
    if output.kind == "led":
        return LedClassOutput(output.path or os.path.join(LEDS_DIR, output.name), output.role, output.name)
    if output.kind == "gpiod":
        return GpiodOutput(output.chip, output.line, output.role, output.active_low, output.name)
    if output.kind == "beeper":
        return EvdevBeeper(output.path, output.role, output.name)
    raise DeviceError(f"output {output.name}: unknown kind {output.kind!r}")
