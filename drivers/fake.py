"""A behavioural fake scanner for tests of everything above the drivers: scan, type like a person, unplug, plug."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from daemon.scan import Frame

from .base import FrameSink, StatusSink, ignore_status


class FakeScanner:
    """Stands in for a real scanner. `scan("A123")` delivers a frame exactly as a driver would; unplugged, it is lost
    (as a real scan made while the cable is out would be) and `scan` says so by returning False."""

    def __init__(self, name: str = "fake", sink: FrameSink | None = None, on_status: StatusSink = ignore_status,
                 clock: Callable[[], float] = time.time, device: str = "fake"):
        self.name, self.device = name, device
        self.sink = sink
        self.on_status = on_status
        self.clock = clock
        self.plugged = True
        self.closed = False
        self._stopped = asyncio.Event()

    def scan(self, text: str, at: float | None = None, gap_ms: float = 2.0) -> bool:
        """A scan at scanner speed (`gap_ms` between keys, default 2 ms)."""
        return self._deliver(text, at, gap_ms)

    def type(self, text: str, gap_ms: float = 150.0, at: float | None = None) -> bool:
        """The same text typed by a person on a keyboard (default 150 ms between keys)."""
        return self._deliver(text, at, gap_ms)

    def unplug(self) -> None:
        if self.plugged:
            self.plugged = False
            self.on_status(self.name, "detached", "unplugged")

    def plug(self) -> None:
        if not self.plugged:
            self.plugged = True
            self.on_status(self.name, "attached", self.device)

    async def run(self) -> None:
        self.on_status(self.name, "attached", self.device)
        await self._stopped.wait()

    def close(self) -> None:
        self.closed = True
        self._stopped.set()

    def _deliver(self, text: str, at: float | None, gap_ms: float) -> bool:
        if not self.plugged or self.closed or self.sink is None:
            return False
        gaps = (gap_ms,) * len(text)  # one gap per key after the first, plus the terminator
        self.sink(Frame(self.name, self.device, text, self.clock() if at is None else at, gaps))
        return True
