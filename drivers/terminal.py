"""The terminal scanner: each line typed on stdin is one scan. For development, the demo and `tagd listen --stdin`."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from daemon.scan import Frame, Reason
from daemon.settings import StdinScannerSettings

from .base import FrameSink, StatusSink, ignore_status

MAX_LINE_BYTES = 4096  # a longer line is reported as overflow and skipped, never buffered without bound


class LineSplitter:
    """Bytes → lines, bounded. Pure: returns (text, error) pairs."""

    def __init__(self, max_bytes: int = MAX_LINE_BYTES):
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[tuple[str, Reason | None]]:
        out: list[tuple[str, Reason | None]] = []
        *complete, rest = (bytes(self._buffer) + data).split(b"\n")
        for line in complete:
            if not self._skipping:
                out.append(_decode(line.rstrip(b"\r")))
            self._skipping = False
        self._buffer = bytearray(rest)
        if len(self._buffer) > self.max_bytes:
            if not self._skipping:
                out.append((self._buffer[:16].decode("utf-8", "backslashreplace") + "…", Reason.OVERFLOW))
            self._skipping, self._buffer = True, bytearray()
        return out

    def finish(self) -> list[tuple[str, Reason | None]]:
        """End of input: a last line without newline still counts."""
        rest, self._buffer = bytes(self._buffer), bytearray()
        return [_decode(rest.rstrip(b"\r"))] if rest and not self._skipping else []


def _decode(line: bytes) -> tuple[str, Reason | None]:
    try:
        return line.decode("utf-8"), None
    except UnicodeDecodeError:
        return line.decode("utf-8", "backslashreplace"), Reason.NOT_TEXT


class StdinScanner:
    """Reads stdin through the event loop (add_reader on its descriptor). `run()` returns at end of input."""

    def __init__(self, settings: StdinScannerSettings, sink: FrameSink, on_status: StatusSink = ignore_status,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.time):
        self.name = settings.name
        self.sink, self.on_status, self.clock = sink, on_status, clock
        self.fd = (stream or sys.stdin).fileno()
        self._splitter = LineSplitter()
        self._done: asyncio.Future | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._done = self._loop.create_future()
        os.set_blocking(self.fd, False)
        self._loop.add_reader(self.fd, self._on_readable)
        self.on_status(self.name, "attached", "stdin")
        try:
            await self._done
        finally:
            self.close()

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.fd)
            os.set_blocking(self.fd, True)  # leave the terminal as we found it
            self._loop = None
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _on_readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self.on_status(self.name, "detached", f"stdin read failed: {exc.strerror}")
            data = b""
        lines = self._splitter.feed(data) if data else self._splitter.finish()
        for text, error in lines:
            if not text and error is None:
                continue  # Enter on an empty line is not a scan
            self.sink(Frame(self.name, "stdin", text, self.clock(), (), error))
        if not data:
            self.on_status(self.name, "detached", "end of input")
            self.close()
