"""Plays a signal's pattern on every output, on timers: nothing here sleeps or waits.

`play(signal)` first cancels whatever is still playing, then shows every output the first state of its new
pattern (off, for an output whose role the signal does not use) and schedules the following states with
`call_later`. So a scan decided while a pattern runs gets its own pattern at once, never after the old one.

An output that fails is logged once (again only after it has worked in between) and never raises out of here:
feedback must not take the scan path down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .patterns import DEFAULT_TABLE, OFF, PatternTable, State, timeline
from .scheduler import Cancellable, Scheduler

log = logging.getLogger("tagd.feedback")


class Output(Protocol):
    """A light, buzzer or beeper. `show` may raise; the player contains it."""

    name: str
    role: str  # which column of the pattern table it plays ('green', 'red', 'buzzer', ...)
    hardware_blink: bool  # can show Blink itself (LED class timer trigger); else the player steps it

    def show(self, state: State) -> None: ...

    def close(self) -> None: ...


@dataclass(eq=False)
class _Track:
    output: Output
    steps: Iterator[tuple[State, int | None]] = field(default_factory=lambda: iter(()))
    timer: Cancellable | None = None
    failing: bool = False


class Player:
    def __init__(self, outputs: Sequence[Output], table: PatternTable = DEFAULT_TABLE,
                 scheduler: Scheduler | None = None):
        self.table = table
        self._tracks = [_Track(output) for output in outputs]
        self._scheduler = scheduler
        self.playing: str | None = None  # the last signal played (its pattern may have ended)
        self.background: str | None = None  # a mode pattern (link mode) to return to after a short signal
        self._return: Cancellable | None = None

    @property
    def outputs(self) -> list[Output]:
        return [track.output for track in self._tracks]

    def play(self, signal: str) -> None:
        """Cancel what is playing and start `signal`'s pattern on every output."""
        roles = self.table.get(signal)
        if roles is None:
            log.error("feedback: no pattern for signal %r; turning outputs off", signal)
            roles = {}
        self.playing = signal
        for track in self._tracks:
            self._cancel(track)
            track.steps = timeline(roles.get(track.output.role, ()), track.output.hardware_blink)
            self._next(track)
        self._return_to_background_after(signal, roles)

    def set_background(self, signal: str | None) -> None:
        """Hold `signal` (a mode such as link-mode-on) whenever no shorter signal is playing; None ends the mode.

        Without this, the first scan's signal in link mode would cancel the mode's blinking for good and the
        reader would look idle while still in link mode.
        """
        self.background = signal
        if signal is not None:
            self.play(signal)
        elif self._return is not None:
            self._return.cancel()
            self._return = None

    def _return_to_background_after(self, signal: str, roles: dict) -> None:
        if self._return is not None:
            self._return.cancel()
            self._return = None
        if self.background is None or signal == self.background:
            return
        lengths = [sum(step.ms for step in pattern) if all(step.ms is not None for step in pattern) else None
                   for pattern in roles.values()]
        if None not in lengths:  # a signal that holds its state never hands back to the mode
            self._return = self._clock().call_later(max(lengths, default=0) / 1000.0, self.play, self.background)

    def stop(self) -> None:
        """Cancel what is playing and turn every output off."""
        self.set_background(None)
        for track in self._tracks:
            self._cancel(track)
            self._show(track, OFF)

    def close(self) -> None:
        """Stop, then close every output. Safe to call more than once."""
        self.stop()
        for track in self._tracks:
            try:
                track.output.close()
            except Exception:  # noqa: BLE001 - one output failing to close must not keep the others open
                log.exception("feedback: closing %s failed", track.output.name)

    def _next(self, track: _Track) -> None:
        track.timer = None
        step = next(track.steps, None)
        if step is None:
            return
        state, ms = step
        self._show(track, state)
        if ms is not None:
            track.timer = self._clock().call_later(ms / 1000.0, self._next, track)

    def _show(self, track: _Track, state: State) -> None:
        try:
            track.output.show(state)
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            if not track.failing:
                log.warning("feedback: output %s failed: %s (further failures not logged until it works)",
                            track.output.name, exc)
            track.failing = True
            return
        if track.failing:
            log.info("feedback: output %s works again", track.output.name)
        track.failing = False

    def _cancel(self, track: _Track) -> None:
        if track.timer is not None:
            track.timer.cancel()
            track.timer = None

    def _clock(self) -> Scheduler:
        if self._scheduler is None:
            self._scheduler = asyncio.get_running_loop()
        return self._scheduler
