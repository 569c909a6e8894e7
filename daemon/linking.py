"""The shell around link mode (daemon.linkmode): runs its actions and feeds it people, the server and time.

Everything here runs on the event loop and returns at once. Server requests and roster writes go to `executor`
(one worker thread: the server client is not thread-safe, and roster writes must stay off the loop); their
answers come back to the loop as machine inputs. One timer, re-armed after every input, calls `tick` at the
machine's deadline.

Routing scans: CheckinDesk offers every scan result to `take(scan)` before deciding a check-in. True means link mode
took it (link mode is on, or it was a staff card): the desk must not check it in, show or record it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Protocol

from .api_types import IdChange, LinkTarget
from .connectivity import Connectivity
from .errors import AuthRejected, Conflict, RequestRejected, ServerError, ServerTimeout, TagdError, Unreachable
from .linkmode import (Action, FetchTarget, Failure, Linked, LinkMode, Log, RequestLink, RosterPut, Signal,
                       SignalName, Target)
from .privacy import client_hash
from .roster import RosterCache
from .scan import Kind, ScanResult

log = logging.getLogger("tagd.link")

_CODES = {code.value: code for code in (Failure.ID_TAKEN, Failure.ID_EXISTS, Failure.CLIENT_NOT_FOUND,
                                        Failure.NO_LINK_TARGET, Failure.INVALID_ID)}


class SignalSink(Protocol):
    """A feedback output that shows named signals (daemon.linkmode.SignalName values) to the person at the reader."""

    def signal(self, name: str) -> None: ...


class LinkClient(Protocol):
    """The part of daemon.api_client.ServerClient link mode uses."""

    def link_target(self) -> LinkTarget | None: ...

    def link(self, tag: str, *, client_id: str | None = None, replace: bool = False) -> IdChange: ...


def failure_of(error: ServerError) -> Failure:
    """What a failed request means for link mode: retryable failures mean offline (links are never queued)."""
    if error.retryable:
        return Failure.OFFLINE
    if isinstance(error, (Conflict, RequestRejected)) and error.code in _CODES:
        return _CODES[error.code]
    return Failure.REFUSED


def linked(change: IdChange, tag: str) -> Linked:
    client = change.client
    return Linked(client.client_id or tag, client.status, change.changed, change.previous_client_id)


def target_of(target: LinkTarget | None) -> Target | None:
    return None if target is None else Target(target.client.ref, target.client.client_id)


class LinkCoordinator:
    """Runs one reader's LinkMode.

    `executor` must run one job at a time (a WorkerThread): `client` is used from it only. `connectivity` learns
    from every answer. `after_link(new_id)` is called on the loop once a link is in the roster: wire it to the roster
    sync's `request`, so that an ID the link replaced leaves the roster now, not at the next periodic sync.
    `clock` defaults to `loop.time` (monotonic), the clock of the loop's timers.
    """

    def __init__(self, machine: LinkMode, client: LinkClient, executor: Executor, roster: RosterCache,
                 feedback: SignalSink, connectivity: Connectivity | None = None,
                 after_link: Callable[[str], None] = lambda client_id: None, clock: Callable[[], float] | None = None,
                 loop: asyncio.AbstractEventLoop | None = None):
        self.machine, self.client, self.executor, self.roster = machine, client, executor, roster
        self.feedback, self.connectivity, self.after_link = feedback, connectivity, after_link
        self.loop = loop or asyncio.get_running_loop()
        self.clock = clock or self.loop.time
        self._timer: asyncio.TimerHandle | None = None
        self._in_flight: set[asyncio.Future] = set()

    @property
    def is_active(self) -> bool:
        return self.machine.is_active

    # ---- inputs --------------------------------------------------------------------------------------------------

    def press(self) -> None:
        self._input(self.machine.press)

    def long_press(self) -> None:
        self._input(self.machine.long_press)

    def command(self, on: bool = True) -> None:
        self._input(lambda now: self.machine.command(now, on))

    def take(self, scan: ScanResult) -> bool:
        """Offer a scan result. True when link mode took it; the check-in path must then leave it alone."""
        client_id = scan.client_id if scan.kind in (Kind.VALID, Kind.DUPLICATE) else None
        self._expire()
        if not self.machine.claims(client_id):
            return False
        if scan.kind is Kind.DUPLICATE:
            # The same ID again within the debounce window: a double read or a tag held still. Taken silently,
            # so that a second read of the tag just linked (or of a staff card) never acts twice.
            log.debug("link mode: repeated scan ignored")
            return True
        try:
            status = self.roster.lookup(client_id) if client_id is not None else None
        except TagdError as exc:
            log.error("link mode: roster lookup failed, scan ignored: %s", exc)
            self.feedback.signal(SignalName.ERROR)
            return True
        self._input(lambda now: self.machine.scan(client_id, status, now))
        return True

    async def drain(self) -> None:
        """Wait for the requests and roster writes in flight (at shutdown: a link made must reach the roster)."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def close(self) -> None:
        """Leave link mode (the outputs show link-mode-off) and stop the timer. Call after `drain`."""
        self._run(self.machine.stop(self.clock()))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ---- running actions -------------------------------------------------------------------------------------------

    def _input(self, step: Callable[[float], list[Action]]) -> None:
        self._expire()
        self._run(step(self.clock()))

    def _expire(self) -> None:
        """Time out first, so an input arriving after the deadline (timer late) meets the state the person saw."""
        self._run(self.machine.tick(self.clock()))

    def _run(self, actions: Iterable[Action]) -> None:
        for action in actions:
            self._perform(action)
        self._arm_timer()

    def _perform(self, action: Action) -> None:
        match action:
            case Signal(name):
                self.feedback.signal(name)
            case Log():
                _write_log(action)
            case FetchTarget(request):
                self._submit(self.client.link_target, lambda result: self._target_loaded(request, result))
            case RequestLink(request, tag, client_id, replace):
                self._submit(lambda: self.client.link(tag, client_id=client_id, replace=replace),
                             lambda result: self._link_answered(request, tag, result))
            case RosterPut(client_id, status):
                self._submit(lambda: self.roster.put(client_id, status),
                             lambda result: self._roster_written(client_id, result))

    def _target_loaded(self, request: int, result: LinkTarget | None | BaseException) -> None:
        answer = self._server_answer(result, target_of)
        self._input(lambda now: self.machine.target_loaded(request, answer, now))

    def _link_answered(self, request: int, tag: str, result: IdChange | BaseException) -> None:
        answer = self._server_answer(result, lambda change: linked(change, tag))
        self._input(lambda now: self.machine.server_result(request, answer, now))

    def _server_answer(self, result: object, convert: Callable) -> object:
        if not isinstance(result, BaseException):
            self._note(None)
            return convert(result)
        if isinstance(result, ServerError):
            self._note(result)
            log.log(logging.WARNING if result.retryable else logging.INFO, "link mode: %s", _described(result))
            return failure_of(result)
        log.error("link mode: request failed unexpectedly", exc_info=result)
        return Failure.REFUSED

    def _note(self, error: ServerError | None) -> None:
        """Tell the shared connectivity what this request learnt. A 4xx other than 401/403 is still an answer."""
        if self.connectivity is None:
            return
        if error is None or not (error.retryable or isinstance(error, AuthRejected)):
            self.connectivity.succeeded()
        else:
            self.connectivity.failed(error)

    def _roster_written(self, client_id: str, result: object) -> None:
        if isinstance(result, BaseException):
            # The server has the link; the next roster sync brings it, only the immediate check-in is lost.
            log.error("link mode: linked, but the roster could not be updated: %s",
                      str(result).replace(client_id, client_hash(client_id)))
        self.after_link(client_id)

    def _submit(self, job: Callable[[], object], done: Callable[[object], None]) -> None:
        future = self.loop.run_in_executor(self.executor, job)
        self._in_flight.add(future)

        def finished(completed: asyncio.Future) -> None:
            self._in_flight.discard(completed)
            if not completed.cancelled():
                done(completed.exception() or completed.result())

        future.add_done_callback(finished)

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        deadline = self.machine.deadline
        self._timer = None if deadline is None else self.loop.call_later(
            max(0.0, deadline - self.clock()), self._expire)


def _described(error: ServerError) -> str:
    """An error for the log without the server's message: that names the client IDs involved."""
    if isinstance(error, (Unreachable, ServerTimeout)):
        return str(error)  # our own words about the connection
    answer = f"HTTP {error.status}" + (f" {error.code}" if error.code else "") if error.status else ""
    return f"{error.request}: {type(error).__name__} {answer}".rstrip()


def _write_log(entry: Log) -> None:
    """One line per event; IDs as keyed hashes (daemon.privacy), never as themselves."""
    ids = "".join(f" {name}={client_hash(value)}" for name, value in (("tag", entry.tag), ("client", entry.client_id))
                  if value is not None)
    log.log(entry.level, "%s%s%s", entry.event, ids, f" ({entry.reason})" if entry.reason else "")
