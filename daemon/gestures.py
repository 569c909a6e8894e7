"""The staff button: pressed/released edges with timestamps in, gestures out. Pure.

- `short_press`: released before `long_press_s`.
- `long_press`: emitted once, when the hold reaches `long_press_s` (the caller asks `deadline` when to call
  `expire`), not at the release; the release that follows emits nothing.
- A press while already pressed (evdev autorepeat, or a bounce back to the level already held) is ignored.
- Software debounce for raw lines (`debounce_s`): the first edge counts at once, so a press is not delayed; edges
  in the window after it are bounces. When the window closes the line's last raw level is taken, so a genuine
  quick change inside the window is not lost (the caller calls `expire` at `deadline`, as for the long press).

All times are seconds on one monotonic clock, the same one `deadline` is compared with.
"""

from __future__ import annotations

from enum import StrEnum


class Gesture(StrEnum):
    SHORT_PRESS = "short_press"
    LONG_PRESS = "long_press"


class GestureDetector:
    def __init__(self, long_press_s: float = 2.0, debounce_s: float = 0.0):
        self.long_press_s, self.debounce_s = long_press_s, debounce_s
        self.pressed = False  # the debounced level
        self._raw = False  # the level the line reported last
        self._edge_at: float | None = None  # when the last debounced edge happened
        self._pressed_at = 0.0
        self._long_sent = False

    @property
    def deadline(self) -> float | None:
        """When `expire` must next be called (long press due, or a debounce window to settle), or None."""
        due = [t for t in (self._long_due(), self._settle_due()) if t is not None]
        return min(due, default=None)

    def edge(self, pressed: bool, at: float) -> list[Gesture]:
        """The line went to `pressed` at `at`. Returns the gestures this completes (deadlines passed first)."""
        gestures = self.expire(at)
        self._raw = pressed
        if pressed == self.pressed or self._in_window(at):
            return gestures  # a repeat, or a bounce inside the window: settled when it closes
        return gestures + self._accept(pressed, at)

    def expire(self, now: float) -> list[Gesture]:
        """Everything due by `now`, in time order."""
        gestures: list[Gesture] = []
        while (due := self.deadline) is not None and due <= now:
            if due == self._long_due():
                self._long_sent = True
                gestures.append(Gesture.LONG_PRESS)
            else:
                gestures += self._accept(self._raw, due)
        return gestures

    def reset(self) -> None:
        """The device went away: forget a press in progress without emitting anything."""
        self.pressed = self._raw = False
        self._edge_at = None
        self._long_sent = False

    def _accept(self, pressed: bool, at: float) -> list[Gesture]:
        self._edge_at = at
        if pressed == self.pressed:
            return []  # the window settled on the level already held
        self.pressed = pressed
        if pressed:
            self._pressed_at, self._long_sent = at, False
            return []
        return [] if self._long_sent else [Gesture.SHORT_PRESS]

    def _long_due(self) -> float | None:
        return self._pressed_at + self.long_press_s if self.pressed and not self._long_sent else None

    def _in_window(self, at: float) -> bool:
        return self._edge_at is not None and at < self._edge_at + self.debounce_s

    def _settle_due(self) -> float | None:
        """End of the debounce window, while the window is open and the line sits at another level."""
        if self._edge_at is None or self.debounce_s <= 0:
            return None
        end = self._edge_at + self.debounce_s
        return end if self._raw != self.pressed else None
