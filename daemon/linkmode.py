"""Link mode: staff link a new key tag to a client at the reader. A pure state machine.

Inputs are method calls carrying the time (`now`, seconds on any monotonic clock); each returns the actions to
run, as values: signals for the feedback outputs, requests for the server, a roster update, log lines. The shell
(daemon.linking) runs them and feeds the answers back. Nothing here does I/O or reads a clock.

The story. A short press (or a staff card, or `tagd link`) switches the reader from check-ins to link mode and asks
the server for the desk's link target. With a target, the next scanned tag is linked to that client. Without, two
scans: the client's current ID, then the new tag. A tag the local roster already knows as another client's ID is
refused at once; the server stays the authority (409 `id_taken`). When the client already has another ID (409
`id_exists`), the reader asks for confirmation: a press within `confirm_s` sends the link again with
`replace=True`; anything else aborts and ends link mode. Link mode ends after a successful link, on another press
or staff card, on a long press, on `tagd link --off`, when the server is unreachable (a link is never queued: it
could conflict later) and `timeout_s` after its last step (entering, a scan taken, a server answer), so a reader
is never left in link mode. Every exit signals `link-mode-off` first, then its outcome if it has one (`linked`,
`offline`, `error`): an output that plays one signal at a time shows the outcome, and one that keeps the link
mode indicator apart turns the indicator off before showing the outcome.

Scans arriving while a request is with the server are ignored with the `denied` signal (the staff member scans
again once the answer is shown). A press then is ignored too; a long press still ends link mode, and an answer
arriving after link mode ended is only logged, except a successful link, which still updates the roster.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum, StrEnum

from .roster import roster_key
from .settings import LinkSettings


class State(Enum):
    CHECKIN = "checkin"  # not in link mode: scans are check-ins
    LOADING_TARGET = "loading_target"  # asking the server for the desk's link target
    AWAIT_TAG = "await_tag"  # a link target is set: the next scan is the tag for that client
    AWAIT_CLIENT = "await_client"  # no target: the next scan is the client's current ID
    AWAIT_NEW_TAG = "await_new_tag"  # the client is known: the next scan is the new tag
    LINKING = "linking"  # the link request is with the server
    CONFIRM = "confirm"  # the client has another ID: a press within confirm_s replaces it


BUSY = (State.LOADING_TARGET, State.LINKING)


class SignalName(StrEnum):
    """The signals link mode gives (a subset of the feedback outputs' vocabulary, plus `offline`, `link-mode-off`)."""

    ACCEPTED = "accepted"  # the client's current ID is taken: scan the new tag
    DENIED = "denied"  # a scan ignored because a request is with the server
    UNKNOWN = "unknown"  # the client's ID is unknown (local roster or server)
    DUPLICATE = "duplicate"  # the new tag is the ID just scanned as the client's
    INVALID = "invalid"  # unreadable scan, or a tag the server's ID rules refuse
    LINK_MODE_ON = "link-mode-on"
    LINK_MODE_OFF = "link-mode-off"  # link mode ended, whatever the reason; the first signal of every exit
    CONFIRM_NEEDED = "confirm-needed"  # press within confirm_s to replace the client's existing ID
    LINKED = "linked"
    LINK_CONFLICT = "link-conflict"  # the tag is already another client's ID
    OFFLINE = "offline"  # the server is unreachable: link mode refused
    ERROR = "error"  # the server refused for another reason (token, selection withdrawn, bad reply)


class Failure(StrEnum):
    """Why a request to the server failed, as far as link mode cares."""

    OFFLINE = "offline"  # unreachable, timed out, throttled or a server fault: retryable, but never queued here
    ID_TAKEN = "id_taken"  # 409: the tag is another client's ID
    ID_EXISTS = "id_exists"  # 409: the client has another ID and replace was false
    CLIENT_NOT_FOUND = "client_not_found"  # 404: no client has the ID scanned first
    NO_LINK_TARGET = "no_link_target"  # 404: the desk's selection was withdrawn or used meanwhile
    INVALID_ID = "invalid_id"  # 422: the tag breaks the business's ID rules
    REFUSED = "refused"  # anything else (token rejected, bad reply, other 4xx): retrying will not help


@dataclass(frozen=True, slots=True)
class Target:
    """The client staff selected at the desk for this reader's next link."""

    ref: int
    client_id: str | None  # the client's current ID, if any


@dataclass(frozen=True, slots=True)
class Linked:
    """The server made the tag the client's ID."""

    client_id: str  # the client's ID now, as the server stores it
    status: str  # the client's status: 'active' or 'inactive'
    changed: bool  # False when the tag already was the client's ID
    previous_client_id: str | None


# ---- actions -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Signal:
    name: SignalName


@dataclass(frozen=True, slots=True)
class FetchTarget:
    request: int  # pass back to target_loaded


@dataclass(frozen=True, slots=True)
class RequestLink:
    request: int  # pass back to server_result
    tag: str
    client_id: str | None  # the client's current ID; None: the desk's link target
    replace: bool


@dataclass(frozen=True, slots=True)
class RosterPut:
    client_id: str
    status: str


@dataclass(frozen=True, slots=True)
class Log:
    """A log line. IDs are raw here; the shell writes them as keyed hashes."""

    event: str
    reason: str = ""
    tag: str | None = None
    client_id: str | None = None
    level: int = logging.INFO


Action = Signal | FetchTarget | RequestLink | RosterPut | Log


def same_id(a: str, b: str | None) -> bool:
    """IDs match like the server's uniqueness rule: ASCII case-insensitively."""
    return b is not None and roster_key(a) == roster_key(b)


class LinkMode:
    """The link mode of one reader. Read `state`, `is_active` and `deadline` (call `tick` then) between inputs."""

    def __init__(self, settings: LinkSettings):
        self.settings = settings
        self._staff_cards = frozenset(roster_key(card) for card in settings.staff_cards)
        self.state = State.CHECKIN
        self._requests = 0  # numbers the requests, so an answer to an abandoned one is known as such
        self._pending: int | None = None
        self._target: Target | None = None
        self._client: str | None = None  # two-scan flow: the client's current ID
        self._link: RequestLink | None = None  # the last link sent (resent with replace=True on confirmation)
        self._until: float | None = None  # link mode ends at this time
        self._confirm_until: float | None = None

    @property
    def is_active(self) -> bool:
        return self.state is not State.CHECKIN

    @property
    def deadline(self) -> float | None:
        """When `tick` must be called next; None when nothing is timed."""
        if self.state is State.CONFIRM:
            return min(self._until, self._confirm_until)
        return self._until

    def is_staff_card(self, client_id: str) -> bool:
        return roster_key(client_id) in self._staff_cards

    def claims(self, client_id: str | None) -> bool:
        """Whether a scan of `client_id` (None: unreadable) belongs to link mode rather than to check-ins."""
        return self.is_active or (client_id is not None and self.is_staff_card(client_id))

    # ---- inputs: people ------------------------------------------------------------------------------------------

    def press(self, now: float) -> list[Action]:
        """A short press of the staff button."""
        if self.state is State.CHECKIN:
            return self._enter(now, "button")
        if self.state is State.CONFIRM:
            return self._confirm(now)
        if self.state in BUSY:
            return [Log("press ignored", "a request is with the server", level=logging.DEBUG)]
        return self._leave("button")

    def long_press(self, now: float) -> list[Action]:
        """A press held 2 s or longer: cancel, whatever link mode is doing."""
        if self.state is State.CHECKIN:
            return []
        if self.state is State.CONFIRM:
            return self._leave("replacement cancelled by a long press")
        return self._leave("cancelled by a long press")

    def command(self, now: float, on: bool = True) -> list[Action]:
        """`tagd link` (on) or `tagd link --off` from a technician on the device."""
        if on and self.state is State.CHECKIN:
            return self._enter(now, "command")
        if on:
            return [Log("command ignored", "already in link mode")]
        return self._leave("command") if self.is_active else []

    def stop(self, now: float) -> list[Action]:
        """tagd stops or reloads its configuration: leave link mode; an answer still to come is only logged."""
        return self._leave("tagd stopping") if self.is_active else []

    def scan(self, client_id: str | None, roster_status: str | None, now: float) -> list[Action]:
        """A scan while `claims(client_id)`: its ID (None when unreadable) and what the local roster says of it."""
        if self.state in BUSY:
            return [Signal(SignalName.DENIED), Log("scan ignored", "a request is with the server", level=logging.DEBUG)]
        if self.state is State.CONFIRM:
            return self._leave("replacement not confirmed: a scan came instead")
        if client_id is not None and self.is_staff_card(client_id):
            return self._enter(now, "staff card") if self.state is State.CHECKIN else self._leave("staff card")
        if self.state is State.CHECKIN:
            return []  # not claimed (see `claims`): a check-in
        if client_id is None:
            return [Signal(SignalName.INVALID), Log("scan ignored", "not a valid ID")]
        if self.state is State.AWAIT_TAG:
            return self._tag_for(self._target.client_id, client_id, roster_status, now)
        if self.state is State.AWAIT_CLIENT:
            return self._client_scanned(client_id, roster_status, now)
        return self._new_tag(client_id, roster_status, now)

    def tick(self, now: float) -> list[Action]:
        """Time passed: end link mode when its deadline is reached."""
        deadline = self.deadline
        if deadline is None or now < deadline:
            return []
        if self.state is State.CONFIRM:
            return self._leave("replacement not confirmed in time", level=logging.WARNING)
        return self._leave("timed out", level=logging.WARNING)

    # ---- inputs: the server --------------------------------------------------------------------------------------

    def target_loaded(self, request: int, target: Target | None | Failure, now: float) -> list[Action]:
        """The answer to FetchTarget(request): the link target, None when none is set, or why it failed."""
        if request != self._pending or self.state is not State.LOADING_TARGET:
            return [Log("link target answer ignored", "link mode ended meanwhile", level=logging.DEBUG)]
        self._pending = None
        if isinstance(target, Failure):
            return self._failed(target, "cannot load the link target")
        self._target, self._until = target, now + self.settings.timeout_s
        if target is None:
            self.state = State.AWAIT_CLIENT
            return [Log("no link target", "scan the client's current ID, then the new tag")]
        self.state = State.AWAIT_TAG
        return [Log("link target", f"client ref {target.ref}", client_id=target.client_id)]

    def server_result(self, request: int, result: Linked | Failure, now: float) -> list[Action]:
        """The answer to RequestLink(request)."""
        if request != self._pending or self.state is not State.LINKING:
            return _late(result)
        self._pending = None
        if isinstance(result, Linked):
            return self._linked(result)
        if result is Failure.ID_EXISTS and not self._link.replace:
            self.state, self._confirm_until = State.CONFIRM, now + self.settings.confirm_s
            return [Log("link needs confirmation", "the client already has another ID", self._link.tag,
                        self._linked_client()), Signal(SignalName.CONFIRM_NEEDED)]
        if result in (Failure.ID_TAKEN, Failure.INVALID_ID):
            return self._retry_with_another_tag(result, now)
        if result is Failure.CLIENT_NOT_FOUND and self._target is None:
            self.state, self._client, self._until = State.AWAIT_CLIENT, None, now + self.settings.timeout_s
            return [Log("link refused", "the server knows no client with this ID", self._link.tag,
                        self._linked_client(), logging.WARNING), Signal(SignalName.UNKNOWN)]
        return self._failed(result, "link failed")

    # ---- steps -----------------------------------------------------------------------------------------------------

    def _enter(self, now: float, how: str) -> list[Action]:
        self.state, self._until = State.LOADING_TARGET, now + self.settings.timeout_s
        self._target = self._client = self._link = None
        self._pending = self._next_request()
        return [Log("link mode on", how), Signal(SignalName.LINK_MODE_ON), FetchTarget(self._pending)]

    def _leave(self, reason: str, *signals: SignalName, level: int = logging.INFO) -> list[Action]:
        self.state, self._pending, self._until, self._confirm_until = State.CHECKIN, None, None, None
        self._target = self._client = self._link = None
        return [Log("link mode off", reason, level=level), Signal(SignalName.LINK_MODE_OFF), *map(Signal, signals)]

    def _client_scanned(self, client_id: str, roster_status: str | None, now: float) -> list[Action]:
        if roster_status is None:
            return [Signal(SignalName.UNKNOWN), Log("link refused", "not in the local roster", client_id=client_id)]
        self.state, self._client, self._until = State.AWAIT_NEW_TAG, client_id, now + self.settings.timeout_s
        return [Signal(SignalName.ACCEPTED), Log("client to link", roster_status, client_id=client_id)]

    def _new_tag(self, tag: str, roster_status: str | None, now: float) -> list[Action]:
        if same_id(tag, self._client):
            return [Signal(SignalName.DUPLICATE), Log("scan ignored", "the client's own ID again: scan the new tag")]
        return self._tag_for(self._client, tag, roster_status, now)

    def _tag_for(self, client_id: str | None, tag: str, roster_status: str | None, now: float) -> list[Action]:
        """Link `tag` to the client whose ID is `client_id` (the link target's client when no client was scanned)."""
        if roster_status is not None and not same_id(tag, client_id):
            return [Signal(SignalName.LINK_CONFLICT),
                    Log("link refused", "the tag is another client's ID (local roster)", tag, client_id)]
        return self._send(RequestLink(self._next_request(), tag, self._client, replace=False), now)

    def _confirm(self, now: float) -> list[Action]:
        if now >= self._confirm_until:
            return self._leave("replacement not confirmed in time", level=logging.WARNING)
        return self._send(RequestLink(self._next_request(), self._link.tag, self._link.client_id, replace=True), now)

    def _send(self, link: RequestLink, now: float) -> list[Action]:
        self.state, self._link, self._pending = State.LINKING, link, link.request
        self._until, self._confirm_until = now + self.settings.timeout_s, None
        reason = "replacing the client's ID" if link.replace else (
            "to the desk's link target" if self._target else "to the client scanned first")
        return [Log("link attempt", reason, link.tag, self._linked_client()), link]

    def _linked_client(self) -> str | None:
        """The current ID of the client the tag goes to (for the log): the desk's target or the one scanned."""
        return self._target.client_id if self._target else self._link.client_id

    def _linked(self, result: Linked) -> list[Action]:
        reason = "replaced the client's ID" if result.previous_client_id and result.changed else (
            "new ID" if result.changed else "already the client's ID")
        return [RosterPut(result.client_id, result.status),
                Log("linked", f"{reason}; client {result.status}", result.client_id, result.previous_client_id),
                *self._leave("linked", SignalName.LINKED)]

    def _retry_with_another_tag(self, failure: Failure, now: float) -> list[Action]:
        self.state = State.AWAIT_TAG if self._target else State.AWAIT_NEW_TAG
        self._until = now + self.settings.timeout_s
        signal = SignalName.LINK_CONFLICT if failure is Failure.ID_TAKEN else SignalName.INVALID
        why = "the tag is another client's ID" if failure is Failure.ID_TAKEN else "the tag breaks the ID rules"
        return [Log("link refused by the server", f"{failure.value}: {why}", self._link.tag, self._linked_client(),
                    logging.WARNING), Signal(signal)]

    def _failed(self, failure: Failure, what: str) -> list[Action]:
        if failure is Failure.OFFLINE:
            return self._leave(f"{what}: the server is unreachable", SignalName.OFFLINE, level=logging.WARNING)
        return self._leave(f"{what}: {failure.value}", SignalName.ERROR, level=logging.ERROR)

    def _next_request(self) -> int:
        self._requests += 1
        return self._requests


def _late(result: Linked | Failure) -> list[Action]:
    """An answer to a link sent before link mode ended. A link the server made is still put in the roster."""
    if isinstance(result, Linked):
        return [RosterPut(result.client_id, result.status),
                Log("linked", "answer arrived after link mode ended", result.client_id, result.previous_client_id)]
    return [Log("link answer ignored", f"link mode ended meanwhile ({result.value})", level=logging.DEBUG)]
