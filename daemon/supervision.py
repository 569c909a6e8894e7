"""The running reader as systemd sees it: READY=1 once it really runs, a STATUS= line kept current, WATCHDOG=1 only
while the main loop and the delivery thread are healthy, STOPPING=1 on the way out.

The watchdog ping comes from a task on the main loop itself, after a health check: a loop that is blocked cannot
run it, and a delivery thread that stopped taking work fails the check, so in both cases the pings stop and
systemd restarts the daemon (WatchdogSec= in systemd/tagd.service).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from .errors import TagdError
from .sdnotify import Notifier

log = logging.getLogger("tagd.systemd")


class StartFailed(TagdError):
    """A part of the reader stopped while it was starting: it is not ready, and must not say so."""


def status_line(status: dict[str, Any], problem: str | None = None) -> str:
    """'2 scanners · roster 12,034 · queue 0 · online', from the reader's status.json content. Pure."""
    states = [s.get("state") for s in status.get("scanners", {}).values()]
    attached = states.count("attached")
    scanners = f"{attached} scanner{'' if attached == 1 else 's'}"
    if len(states) > attached:
        scanners = f"{attached} of {len(states)} scanners"
    stores = status.get("stores", {})
    parts = [scanners, f"roster {stores.get('roster_size') or 0:,}", f"queue {stores.get('queue_depth') or 0}"]
    if stores.get("dead_letters"):
        parts.append(f"{stores['dead_letters']} dead letters")
    parts.append(_server_state(status.get("server", {})))
    if problem:
        parts.append(f"UNHEALTHY: {problem}")
    return " · ".join(parts)


def _server_state(server: dict[str, Any]) -> str:
    if not server.get("url"):
        return "standalone"
    if server.get("auth_rejected"):
        return "token rejected"
    return {True: "online", False: "offline", None: "connecting"}[server.get("reachable")]


def stuck_after_s(watchdog_s: float, connect_timeout_s: float, read_timeout_s: float) -> float:
    """How long the delivery thread may go without taking new work before it counts as stuck: longer than any
    one request may take (connect, headers, then a body with its own deadline: see daemon.api_http), and never
    shorter than the watchdog period itself."""
    return max(watchdog_s, 3 * (connect_timeout_s + read_timeout_s))


def _nothing() -> None:
    return None


class DeliveryProbe:
    """Does the delivery thread still take work? A no-op job queues behind whatever the thread is doing; one that
    has not run after `stuck_after` seconds means the thread is stuck (a request hung past every timeout)."""

    def __init__(self, executor: Executor, stuck_after: float, clock: Callable[[], float] = time.monotonic):
        self.executor, self.stuck_after, self.clock = executor, stuck_after, clock
        self._pending: Future | None = None
        self._sent_at = 0.0

    def check(self) -> str | None:
        """None while healthy, else what is wrong. Call it periodically from the loop."""
        now = self.clock()
        if self._pending is None or self._pending.done():
            self._pending, self._sent_at = self.executor.submit(_nothing), now
            return None
        waited = now - self._sent_at
        return f"delivery thread stuck for {waited:.0f} s" if waited > self.stuck_after else None


def crashed_tasks(tasks: list[asyncio.Task]) -> list[str]:
    return [t.get_name() for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]


class Supervisor:
    """Drives a Notifier from the running reader (any object with `tasks`, `delivery`, `settings`,
    `status_listeners` and `snapshot()`, i.e. daemon.service.Reader)."""

    def __init__(self, notifier: Notifier, clock: Callable[[], float] = time.monotonic):
        self.notifier, self.clock = notifier, clock
        self._reader = None
        self._probe: DeliveryProbe | None = None
        self._problem: str | None = None

    async def started(self, reader) -> None:
        """READY=1, once every task of the newly started reader ran up to its first wait and none failed
        (the configuration was valid and the databases open before: the reader could not be built otherwise).
        Nothing to do for the reader already running (a reload that was refused)."""
        if reader is self._reader:
            return
        await asyncio.sleep(0)
        if crashed := crashed_tasks(reader.tasks):
            raise StartFailed(f"the reader did not start: {', '.join(crashed)} stopped (see the log above)")
        self._reader, self._problem = reader, None
        self._probe = self._delivery_probe(reader)
        reader.status_listeners.append(self._status_written)
        self.notifier.ready(status_line(reader.snapshot()))

    def reloading(self) -> None:
        self.notifier.reloading()

    def stopping(self) -> None:
        self.notifier.stopping()

    async def watch(self) -> None:
        """Ping at half the watchdog period while healthy. Runs until cancelled; does nothing without a watchdog."""
        if self.notifier.watchdog_s is None:
            return
        period = self.notifier.watchdog_s / 2
        while True:
            before = self.clock()
            await asyncio.sleep(period)
            late = self.clock() - before - period
            if late > period:
                log.warning("the main loop was blocked for %.1f s", late)
            self.tick()

    def tick(self) -> None:
        """One health check: WATCHDOG=1 when healthy, else no ping and the problem in STATUS (logged once)."""
        if self._reader is None:
            return  # between readers (a reload): the loop is alive, the new reader is not checked yet
        problem = self.problem()
        if problem != self._problem:
            (log.error if problem else log.warning)("health: %s", problem or "recovered")
            self._problem = problem
            self.notifier.status(status_line(self._reader.snapshot(), problem))
        if problem is None:
            self.notifier.watchdog()

    def problem(self) -> str | None:
        if crashed := crashed_tasks(self._reader.tasks):
            return f"{', '.join(crashed)} stopped"
        return self._probe.check() if self._probe else None

    def forget(self, reader) -> None:
        """The reader is closing (reload or stop): its tasks end now, which is no failure."""
        if reader is self._reader:
            self._reader, self._probe = None, None

    def _delivery_probe(self, reader) -> DeliveryProbe | None:
        if reader.delivery is None or self.notifier.watchdog_s is None:
            return None
        server = reader.settings.server
        limit = stuck_after_s(self.notifier.watchdog_s, server.connect_timeout_s, server.read_timeout_s)
        return DeliveryProbe(reader.delivery.executor, limit, self.clock)

    def _status_written(self, status: dict[str, Any]) -> None:
        self.notifier.status(status_line(status, self._problem))
