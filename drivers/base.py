"""The scanner port: what every scanner driver (and its fake) offers the rest of tagd."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from daemon.scan import Frame

FrameSink = Callable[[Frame], None]
# on_status(scanner_name, state, detail): state is "attached", "detached" or "error"
StatusSink = Callable[[str, str, str], None]


def ignore_status(scanner: str, state: str, detail: str) -> None:
    """Default StatusSink for callers that do not care about attach/detach news."""


class Scanner(Protocol):
    name: str

    async def run(self) -> None:
        """Deliver frames to the sink until cancelled (or, for finite sources like stdin, until exhausted)."""

    def close(self) -> None:
        """Release the device (ungrab, close). Safe to call more than once."""
