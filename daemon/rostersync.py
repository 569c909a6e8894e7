"""Roster sync: keeps the local roster cache in step with the server, never on the scan path.

Delta by cursor; `410` (cursor expired) or no cursor yet → full sync into a new file, swapped in atomically;
`304` costs nothing, not even a write: the roster's `synced_at` is when a sync last wrote, and the running
daemon reports its last successful sync instead when that is newer. Runs at start-up, periodically with random
jitter, when the server becomes reachable again, and when asked (`tagd sync`, the online decision policy).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

from .api_types import NotModified, RosterPage
from .connectivity import Connectivity
from .errors import CursorExpired, ServerError, StoreError
from .roster import FullSync, RosterCache
from .settings import SyncSettings

log = logging.getLogger("tagd.roster")


@dataclass(frozen=True)
class SyncReport:
    kind: str  # 'full', 'delta' or 'unchanged'
    entries: int  # entries applied
    size: int  # roster size afterwards


class RosterSync:
    """The blocking sync itself (runs in a worker thread). One at a time: callers hold RosterSyncWorker's lock."""

    def __init__(self, roster: RosterCache, client, page_size: int, clock: Callable[[], float] = time.time):
        self.roster, self.client, self.page_size, self.clock = roster, client, page_size, clock

    def sync(self) -> SyncReport:
        meta = self.roster.meta()
        if meta.cursor is None:
            return self.full()
        try:
            return self.delta(meta.cursor, meta.etag)
        except CursorExpired:
            log.info("roster cursor expired on the server: full resync")
            return self.full()

    def delta(self, cursor: str, etag: str | None) -> SyncReport:
        applied = 0
        while True:
            page = self.client.roster_page(cursor, limit=self.page_size, etag=etag)
            if isinstance(page, NotModified):  # nothing to write: the cursor and ETag stored are still right
                return SyncReport("unchanged" if not applied else "delta", applied, self.roster.size())
            self.roster.apply_delta(page.items, page.next_cursor, page.etag, self.clock())
            applied += len(page.items)
            cursor, etag = page.next_cursor, page.etag
            if not page.more:
                return SyncReport("delta", applied, self.roster.size())

    def full(self) -> SyncReport:
        """Fetch page n+1 on a helper thread while page n is stored: the server's work and ours overlap.

        Never more than one page ahead (memory stays bounded), and the client is never used by two threads at
        once: while the helper holds a request this thread only stores, and it waits for the helper before
        it returns or raises.
        """
        build = self.roster.begin_full_sync()
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="tagd-roster-fetch") as fetcher:
                applied, page = self._fetch_all(build, fetcher)
            build.commit(page.next_cursor, page.etag, self.clock())
        except BaseException:
            build.abort()  # the old roster stays in service, untouched
            raise
        log.info("roster full sync: %d entries", applied)
        return SyncReport("full", applied, self.roster.size())

    def _fetch_all(self, build: FullSync, fetcher: Executor) -> tuple[int, RosterPage]:
        """Every page into `build`; the number of entries and the last page."""
        applied, ahead = 0, fetcher.submit(self.client.roster_page, None, limit=self.page_size)
        while True:
            page = ahead.result()
            if page.more:
                ahead = fetcher.submit(self.client.roster_page, page.next_cursor, limit=self.page_size)
            try:
                build.add(page.items)
            except BaseException:
                ahead.cancel()  # the executor's exit waits for a request already under way
                raise
            applied += len(page.items)
            if not page.more:
                return applied, page


class RosterSyncWorker:
    """Schedules RosterSync on its own thread: at start, every interval (+ jitter), on demand, when back online."""

    def __init__(self, sync: RosterSync, settings: SyncSettings, connectivity: Connectivity, executor: Executor,
                 rng: random.Random | None = None, on_change: Callable[[], None] = lambda: None):
        """`on_change` is called on the loop after every sync attempt, successful or not."""
        self.syncer, self.settings, self.connectivity, self.executor = sync, settings, connectivity, executor
        self.on_change = on_change
        self.rng = rng or random.Random()
        self.lock = asyncio.Lock()
        self._now = asyncio.Event()
        self.last_report: SyncReport | None = None
        self.last_success: float | None = None
        connectivity.when_back_online(self.request)

    def request(self) -> None:
        """Sync as soon as possible (coalesced with one already asked for)."""
        self._now.set()

    async def run(self) -> None:
        delay = self.rng.uniform(0, self.settings.jitter_s)  # first sync soon, but not in step with the fleet
        while True:
            try:
                await asyncio.wait_for(self._now.wait(), delay)
            except asyncio.TimeoutError:
                pass
            self._now.clear()
            await self.sync_once()
            delay = self.settings.interval_s + self.rng.uniform(0, self.settings.jitter_s)

    async def sync_once(self) -> SyncReport | None:
        """One sync now (waiting for one in progress). None when the server could not be reached."""
        report = await self._locked_sync()
        self.on_change()
        return report

    async def _locked_sync(self) -> SyncReport | None:
        async with self.lock:
            loop = asyncio.get_running_loop()
            try:
                report = await loop.run_in_executor(self.executor, self.syncer.sync)
            except ServerError as exc:
                self.connectivity.failed(exc)
                log.info("roster sync failed: %s", exc)
                return None
            except StoreError as exc:  # a full disk must not end the worker: the next attempt may succeed
                log.error("roster sync could not store the roster: %s", exc)
                return None
            self.connectivity.succeeded()
            self.last_report, self.last_success = report, time.time()
            return report
