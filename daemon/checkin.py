"""The scan path of `tagd run`: frame → scan result → decision → durable record → feedback → wake delivery.

Everything here runs on the event loop and is fast: a roster lookup is one indexed probe, the outbox commit one
fsync. The record is committed *before* feedback: a green light is a promise that the check-in survives a power cut.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from .decision import Decision, decide
from .errors import TagdError
from .outbox import CheckinEvent, Outbox
from .pipeline import ScanPipeline
from .roster import RosterCache
from .connectivity import Connectivity
from .scan import Frame, Kind, ScanResult
from .settings import CheckinSettings, DecisionPolicy

log = logging.getLogger("tagd.checkin")


class LinkPanel(Protocol):
    """Link mode as the desk sees it (daemon.frontpanel.FrontPanel)."""

    async def settle(self) -> None:
        """Return once link mode has the server's answer to what came before."""

    def take(self, scan: ScanResult) -> bool:
        """True when link mode takes the scan away from check-in (link mode is on, or a staff card)."""


class CheckinDesk:
    """Decides and records check-ins. `feedback` shows the decision (lights, beeper, terminal)."""

    def __init__(self, pipeline: ScanPipeline, roster: RosterCache, outbox: Outbox, connectivity: Connectivity,
                 settings: CheckinSettings, feedback, on_recorded: Callable[[], None] = lambda: None,
                 refresh_roster: Callable[[], Awaitable[object]] | None = None,
                 link: LinkPanel | None = None):
        self.pipeline, self.roster, self.outbox = pipeline, roster, outbox
        self.link = link
        self.connectivity, self.settings, self.feedback = connectivity, settings, feedback
        self.on_recorded, self.refresh_roster = on_recorded, refresh_roster
        self.frames: asyncio.Queue[Frame | Callable[[], None]] = asyncio.Queue()

    def submit(self, frame: Frame) -> None:
        """The drivers' sink: queue the frame; scans are handled one at a time, in arrival order."""
        self.frames.put_nowait(frame)

    def post(self, action: Callable[[], Awaitable[None] | None]) -> None:
        """Queue a button gesture behind the scans that came before it, so inputs act in the order they came."""
        self.frames.put_nowait(action)

    async def run(self) -> None:
        while True:
            await self._next(await self.frames.get())
            # get() does not yield while frames are queued: without this a burst would hold the loop, and with
            # it the scanners' reads and the workers' replies, until the last frame of the burst is handled.
            await asyncio.sleep(0)

    async def drain(self) -> None:
        """Handle what is already queued (at shutdown: scans that arrived must not be dropped)."""
        while not self.frames.empty():
            await self._next(self.frames.get_nowait())

    async def _next(self, item: Frame | Callable[[], None]) -> None:
        if isinstance(item, Frame):
            await self.handle(item)
        elif inspect.isawaitable(result := item()):
            await result

    async def handle(self, frame: Frame) -> Decision | None:
        if self.link is not None:
            await self.link.settle()
        scan = self.pipeline.process(frame)
        if self.link is not None and self.link.take(scan):
            return None
        offline = self.connectivity.offline
        if scan.kind is Kind.VALID and self.settings.policy is DecisionPolicy.ONLINE:
            offline = not await self._refreshed()
        try:
            status = self.roster.lookup(scan.client_id) if scan.kind is Kind.VALID else None
            decision = decide(scan, status, offline, self.settings.unknown_offline)
            if decision.is_checkin:
                self.outbox.record(_event(decision))
        except TagdError as exc:
            # Could not look up or record: never signal success for a check-in that is not safely stored.
            log.error("scan from %s could not be handled: %s", frame.scanner, exc)
            self.feedback.fault(str(exc))
            return None
        self.feedback.show(decision)
        if decision.is_checkin:
            self.on_recorded()
        return decision

    async def _refreshed(self) -> bool:
        """Online policy: pull the roster's latest changes within the time budget. True if the server answered."""
        if self.refresh_roster is None:
            return False
        try:
            report = await asyncio.wait_for(asyncio.shield(self.refresh_roster()),
                                            self.settings.online_timeout_ms / 1000)
        except asyncio.TimeoutError:
            return False  # the refresh goes on in the background; this scan is decided from the roster as it is
        return report is not None


def _event(decision: Decision) -> CheckinEvent:
    scan = decision.scan
    return CheckinEvent.new(scan.client_id, scan.scanner, scan.at, decision.server_decision, decision.offline,
                            decision.outcome.value)
