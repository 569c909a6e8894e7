"""`tagd listen`: scanners and the core only, one JSON object per scan on stdout. For technicians checking hardware."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from typing import TextIO

from .bootstrap import ScannerFactory, build_pipeline, build_scanner, build_scanners
from .scan import Frame
from .settings import Settings

log = logging.getLogger("tagd.listen")


def log_status(scanner: str, state: str, detail: str) -> None:
    level = logging.WARNING if state == "error" else logging.INFO
    log.log(level, "scanner %s %s: %s", scanner, state, detail)


async def listen(settings: Settings, out: TextIO, factory: ScannerFactory = build_scanner,
                 stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or `stop`), or until every scanner has ended (stdin at end of input)."""
    pipeline = build_pipeline(settings)

    def on_frame(frame: Frame) -> None:
        out.write(json.dumps(pipeline.process(frame).as_json()) + "\n")
        out.flush()

    scanners = build_scanners(settings, on_frame, log_status, factory)
    stop = stop or asyncio.Event()
    await run_until_stopped(scanners, stop)


async def run_until_stopped(scanners: list, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    tasks = [asyncio.create_task(s.run(), name=f"scanner {s.name}") for s in scanners]
    stopper = asyncio.create_task(stop.wait())
    try:
        pending = set(tasks)
        while pending and not stop.is_set():
            done, pending = await asyncio.wait(pending | {stopper}, return_when=asyncio.FIRST_COMPLETED)
            pending.discard(stopper)
            for task in done - {stopper}:
                _report_if_crashed(task)
    finally:
        await shut_down(scanners, tasks + [stopper])
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def shut_down(scanners: list, tasks: list[asyncio.Task]) -> None:
    """Release every device first (ungrab, close), then cancel what is still running."""
    for scanner in scanners:
        try:
            scanner.close()
        except Exception:  # one scanner failing to close must not keep the others grabbed
            log.exception("closing scanner %s failed", scanner.name)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _report_if_crashed(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped: %r", task.get_name(), task.exception(), exc_info=task.exception())
