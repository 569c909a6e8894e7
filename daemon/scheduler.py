"""The timer port used by the button and the feedback player, and its manual fake.

An asyncio event loop is a `Scheduler` as it is (`time`, `call_later`). `ManualScheduler` is the fake: its clock
only moves when a test (or a demo script) calls `advance`, which runs every callback that falls due on the way,
in time order, each with the clock set to its own due time.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any, Protocol


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    def time(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Cancellable: ...


class ManualHandle:
    def __init__(self, when: float, callback: Callable[..., Any], args: tuple):
        self.when, self.callback, self.args = when, callback, args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualScheduler:
    """A clock that stands still until `advance`. Callbacks due at the same time run in the order scheduled."""

    def __init__(self, start: float = 0.0):
        self.now = start
        self._queue: list[tuple[float, int, ManualHandle]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> ManualHandle:
        handle = ManualHandle(self.now + max(0.0, delay), callback, args)
        heapq.heappush(self._queue, (handle.when, next(self._order), handle))
        return handle

    @property
    def pending(self) -> int:
        """Callbacks scheduled and not yet run or cancelled."""
        return sum(1 for _, _, handle in self._queue if not handle.cancelled)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds`, running what falls due (including what those callbacks schedule)."""
        end = self.now + seconds
        while self._queue and self._queue[0][0] <= end:
            when, _, handle = heapq.heappop(self._queue)
            if not handle.cancelled:
                self.now = when
                handle.callback(*handle.args)
        self.now = end
