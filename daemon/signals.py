"""Feedback by signal: a decision (or a mode change, or a fault) becomes a named signal that the player shows on
the lights and beeper, and a line on the terminal (or in the log). Drop-in for TerminalFeedback / LogFeedback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from .decision import Decision, Outcome
from .feedback import LogFeedback
from .patterns import DEFAULT_TABLE, PatternTable, Signal, parse_pattern, with_overrides
from .player import Player
from .settings import PatternOverride

log = logging.getLogger("tagd.feedback")

_OUTCOME_SIGNALS = {
    Outcome.ACCEPTED: Signal.ACCEPTED,
    Outcome.DENIED_INACTIVE: Signal.DENIED,
    Outcome.DENIED_UNKNOWN: Signal.UNKNOWN,
    Outcome.DUPLICATE: Signal.DUPLICATE,
    Outcome.INVALID: Signal.INVALID,
    Outcome.TYPED: Signal.INVALID,  # to the member, typed input is just not a valid scan
}


MODE_SIGNALS = frozenset({Signal.LINK_MODE_ON, Signal.CONFIRM_NEEDED})


def signal_for(decision: Decision) -> Signal:
    """The signal a decision shows. An acceptance decided without the server is shown as such."""
    if decision.outcome is Outcome.ACCEPTED and decision.offline:
        return Signal.OFFLINE_ACCEPTED
    return _OUTCOME_SIGNALS[decision.outcome]


def pattern_table(overrides: Iterable[PatternOverride], base: PatternTable = DEFAULT_TABLE) -> PatternTable:
    """The default table with the configuration's `[patterns.<signal>]` cells replaced."""
    cells: dict[str, dict] = {}
    for override in overrides:
        cells.setdefault(override.signal, {})[override.role] = parse_pattern(override.steps)
    return with_overrides(base, cells)


class TextFeedback(Protocol):
    def show(self, decision: Decision) -> None: ...

    def fault(self, message: str) -> None: ...


class SignalFeedback:
    """`show(decision)`, `fault(message)` and `signal(name)`: each plays its signal at once (cancelling the one
    still playing) and writes a line to `terminal` (drivers.outputs.TerminalOutput), or to the log without one."""

    def __init__(self, player: Player, terminal: TextFeedback | None = None):
        self.player = player
        self.text: TextFeedback = terminal if terminal is not None else LogFeedback()

    def show(self, decision: Decision) -> None:
        self.player.play(signal_for(decision))
        self.text.show(decision)

    def fault(self, message: str) -> None:
        self.player.play(Signal.ERROR)
        self.text.fault(message)

    def signal(self, name: str) -> None:
        """A mode signal (link-mode-on, confirm-needed, linked, link-conflict, link-mode-off, offline, ...).

        link-mode-on and confirm-needed are modes: the lights return to them after each short signal, until
        link-mode-off."""
        if name in MODE_SIGNALS:
            self.player.set_background(name)
        else:
            if name == Signal.LINK_MODE_OFF:
                self.player.set_background(None)
            self.player.play(name)
        line = getattr(self.text, "signal", None)
        if line is not None:
            line(name)
        else:
            log.info("feedback: %s", name)

    def close(self) -> None:
        """Turn every output off and release it."""
        self.player.close()
