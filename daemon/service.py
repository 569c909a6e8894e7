"""`tagd run`: the reader daemon. Scanners → core → decision → outbox → delivery, with roster sync beside.

One `Reader` is everything one configuration builds. SIGTERM/SIGINT stop it (devices released, queued scans
handled, databases closed); SIGHUP reloads the configuration (an invalid new one is logged and the reader keeps
running on the old one); SIGUSR1 asks for a roster sync now (`tagd sync`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable

from . import privacy, sqlite_util
from .bootstrap import ScannerFactory, build_pipeline, build_scanner, build_scanners
from .checkin import CheckinDesk
from .connectivity import Connectivity
from .delivery import DeliveryWorker
from .errors import ConfigError, TagdError
from .frontpanel import FrontPanel
from .outbox import Outbox
from .roster import RosterCache
from .rostersync import RosterSync, RosterSyncWorker
from .sdnotify import Notifier
from .settings import Settings
from .status import write_status
from .supervision import Supervisor
from .workers import WorkerThread

log = logging.getLogger("tagd")

SHUTDOWN_GRACE_S = 1.0  # how long a worker thread in the middle of a request may delay the exit
FLUSH_S = 0.5  # at shutdown, how long queued check-ins may still be delivered (SIGTERM must finish within 2 s)


class Reader:
    """One configuration's running reader. `client_factory()` makes a server client (one per worker thread)."""

    def __init__(self, settings: Settings, feedback, client_factory: Callable[[], object] | None,
                 scanner_factory: ScannerFactory = build_scanner, button_factory=None):
        self.settings = settings
        os.makedirs(settings.state.dir, exist_ok=True)
        sqlite_util.log_sqlite_version()
        privacy.set_key(privacy.load_or_create_key(os.path.join(settings.state.dir, "hash.key")))
        self.roster = RosterCache(os.path.join(settings.state.dir, "roster.db"))
        self.outbox = Outbox(os.path.join(settings.state.dir, "outbox.db"))
        self.connectivity = Connectivity()
        self.scanner_states: dict[str, dict] = {}
        self.threads: list[WorkerThread] = []
        self.delivery = self.sync = None
        if client_factory is not None:
            self._start_workers(client_factory)
        pipeline = build_pipeline(settings)
        self.panel = FrontPanel(settings, self.roster, self.connectivity, client_factory,
                                after_link=lambda tag: self._linked(pipeline, tag),
                                on_status=self._scanner_status, post=lambda action: self.desk.post(action),
                                text=feedback, button_factory=button_factory)
        self.desk = CheckinDesk(pipeline, self.roster, self.outbox, self.connectivity,
                                settings.checkin, self.panel.feedback, on_recorded=self._recorded,
                                refresh_roster=self.sync.sync_once if self.sync else None, link=self.panel)
        self.scanners = build_scanners(settings, self.desk.submit, self._scanner_status, scanner_factory)
        self.tasks: list[asyncio.Task] = []
        self._status_timer: asyncio.TimerHandle | None = None
        self.status_listeners: list[Callable[[dict], None]] = []  # each status written (systemd's STATUS= line)

    def _start_workers(self, client_factory: Callable[[], object]) -> None:
        delivery_thread, sync_thread = WorkerThread("tagd-delivery"), WorkerThread("tagd-roster")
        self.threads = [delivery_thread, sync_thread]
        self.delivery = DeliveryWorker(self.outbox, client_factory(), self.settings.delivery, self.connectivity,
                                       delivery_thread, on_change=self.schedule_status)
        syncer = RosterSync(self.roster, client_factory(), self.settings.sync.page_size)
        self.sync = RosterSyncWorker(syncer, self.settings.sync, self.connectivity, sync_thread,
                                     on_change=self.schedule_status)

    def start(self) -> None:
        jobs = [self.desk.run(), self.panel.run()] + [s.run() for s in self.scanners]
        if self.delivery:
            jobs += [self.delivery.run(), self.sync.run()]
            self.delivery.wake()  # whatever is still queued from before a restart goes out now
        self.tasks = [asyncio.create_task(job) for job in jobs]
        for task in self.tasks:
            task.add_done_callback(_report_crash)
        self.write_status()

    async def close(self) -> None:
        for scanner in self.scanners:
            try:
                scanner.close()  # ungrab first: the devices must be free whatever happens next
            except Exception:
                log.exception("closing scanner %s failed", scanner.name)
        await self.desk.drain()
        await self.panel.close()
        await self._flush_queue()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for thread in self.threads:
            thread.shutdown(timeout=SHUTDOWN_GRACE_S)
        if self._status_timer is not None:
            self._status_timer.cancel()  # it would read the stores closed below
        self.write_status(running=False)  # `tagd status` must not take a stopped reader for a running one
        self.outbox.close()
        self.roster.close()

    async def _flush_queue(self) -> None:
        """While the server answers, give the last scans a moment to go out (the queue keeps what does not)."""
        if self.delivery is None or self.connectivity.reachable is not True:
            return
        self.delivery.wake()
        deadline = time.monotonic() + FLUSH_S
        while self.outbox.depth() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def _linked(self, pipeline, tag: str) -> None:
        pipeline.debouncer.forget(tag)  # the member's next scan of the new tag is a check-in, not a duplicate
        if self.sync:
            self.sync.request()  # an ID the link replaced leaves the roster now

    def _recorded(self) -> None:
        if self.delivery:
            self.delivery.wake()
        self.schedule_status()

    def _scanner_status(self, name: str, state: str, detail: str) -> None:
        level = logging.WARNING if state == "error" else logging.INFO
        log.log(level, "scanner %s %s: %s", name, state, detail)
        self.scanner_states[name] = {"state": state, "detail": detail, "since": time.time()}
        self.schedule_status()

    def schedule_status(self) -> None:
        """Coalesce status writes: at most one per half second, and none at all while nothing happens."""
        if self._status_timer is None:
            self._status_timer = asyncio.get_running_loop().call_later(0.5, self.write_status)

    def write_status(self, running: bool = True) -> None:
        """status.json; `running=False` at close, with no pid: the process may live on (a reload, a test)."""
        self._status_timer = None
        status = self.snapshot(running)
        try:
            write_status(self.settings.state.dir, status)
        except OSError as exc:
            log.warning("cannot write status: %s", exc)
        if running:
            for listener in self.status_listeners:
                listener(status)

    def snapshot(self, running: bool = True) -> dict:
        """What status.json holds: scanners, server, store counts, last sync."""
        c = self.connectivity
        report = self.sync.last_report if self.sync else None
        return {
            "pid": os.getpid() if running else None, "updated_at": time.time(), "decision_policy": self.settings.checkin.policy.value,
            "scanners": self.scanner_states,
            "server": {"url": self.settings.server.url, "reachable": c.reachable, "last_ok": c.last_ok,
                       "last_error": c.last_error, "auth_rejected": c.auth_rejected},
            "stores": self._store_counts(),
            "last_sync": None if report is None else {"at": self.sync.last_success, "kind": report.kind,
                                                      "entries": report.entries, "size": report.size},
        }

    def _store_counts(self) -> dict:
        meta = self.roster.meta()
        confirmed = self.sync.last_success if self.sync else None  # a 304 confirms the roster without a write
        synced_at = max(filter(None, (meta.synced_at, confirmed)), default=None)
        return {"roster_size": meta.size, "roster_synced_at": synced_at, "queue_depth": self.outbox.depth(),
                "oldest_queued_at": self.outbox.oldest_pending(), "dead_letters": self.outbox.dead_letter_count()}


def _report_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s stopped: %r", task.get_name(), task.exception(), exc_info=task.exception())


async def serve(settings: Settings, make_reader: Callable[[Settings], Reader],
                reload_settings: Callable[[], Settings], stop: asyncio.Event | None = None,
                supervisor: Supervisor | None = None) -> None:
    """Run readers until stopped, swapping in a new one on SIGHUP when the new configuration is valid.

    `supervisor` tells systemd (daemon.supervision): READY=1 once a reader runs, RELOADING=1 around a SIGHUP,
    watchdog pings while healthy, STOPPING=1 at the end."""
    loop = asyncio.get_running_loop()
    supervisor = supervisor or Supervisor(Notifier(environ={}))
    stop, reload = stop or asyncio.Event(), asyncio.Event()
    reader = make_reader(settings)
    handlers = {signal.SIGTERM: stop.set, signal.SIGINT: stop.set, signal.SIGHUP: reload.set,
                signal.SIGUSR1: lambda: reader.sync.request() if reader.sync else None,
                signal.SIGUSR2: lambda: reader.panel.link_command()}
    for signum, handler in handlers.items():
        loop.add_signal_handler(signum, handler)
    watchdog: asyncio.Task | None = None
    try:
        reader.start()
        await supervisor.started(reader)
        watchdog = asyncio.create_task(supervisor.watch(), name="watchdog")
        while not stop.is_set():
            await _first(stop, reload)
            if reload.is_set():
                reload.clear()
                reader = await _reloaded(reader, make_reader, reload_settings, supervisor)
                await supervisor.started(reader)
    finally:
        supervisor.stopping()
        supervisor.forget(reader)
        if watchdog is not None:
            watchdog.cancel()
        await reader.close()
        for signum in handlers:
            loop.remove_signal_handler(signum)


async def _reloaded(reader: Reader, make_reader, reload_settings, supervisor: Supervisor) -> Reader:
    try:
        settings = reload_settings()
    except ConfigError as exc:
        log.error("configuration reload refused, still running on the previous one: %s", exc)
        return reader
    supervisor.reloading()
    supervisor.forget(reader)
    await reader.close()
    try:
        new = make_reader(settings)
    except (TagdError, OSError) as exc:  # e.g. a state directory that cannot be opened
        log.error("configuration reload failed, back on the previous one: %s", exc)
        new = make_reader(reader.settings)
    else:
        log.info("configuration reloaded from %s", settings.source)
    new.start()
    return new


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
