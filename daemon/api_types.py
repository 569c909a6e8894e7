"""Values exchanged with the central server (server/openapi.yaml, /v1), and pure parsers from decoded JSON.

The parsers check every field by hand: a reply of the wrong shape raises ReplyShapeError (the client turns it
into BadReply naming the request), never a KeyError or TypeError from deep inside the daemon.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, Literal, NamedTuple, TypeVar

from .errors import TagdError

T = TypeVar("T")

_CLIENT_ID = re.compile(r"[A-Za-z0-9]{1,64}")
_MAX_ID = 9007199254740991  # the contract's Id maximum (2**53 - 1)


class ReplyShapeError(TagdError):
    """A decoded reply body does not have the shape the contract promises. `where` is a JSON path like 'items[3]'."""

    def __init__(self, where: str, problem: str):
        self.where, self.problem = where, problem
        super().__init__(f"{where}: {problem}" if where else problem)


class RosterStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    DELETED = "deleted"  # a tombstone: the ID no longer belongs to anyone


class CheckinOutcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # already recorded with the same content: safe resend
    UNKNOWN_CLIENT = "unknown_client"
    INACTIVE = "inactive"
    CONFLICT = "conflict"  # the event_id was recorded with different content; nothing stored


@dataclass(frozen=True, slots=True)
class Health:
    status: str
    api_version: str
    server_time: datetime | None  # from the reply's Date header (for clock-skew checks), None if absent/garbled


@dataclass(frozen=True, slots=True)
class Enrolment:
    device_id: int
    token: str = field(repr=False)  # shown once by the server; kept out of logs and reprs
    business_id: int
    business_name: str
    location_id: int
    location_name: str


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """The calling device as the server knows it, with the business's ID length rules."""

    device_id: int
    name: str
    business_id: int
    location_id: int
    id_min_length: int
    id_max_length: int


class RosterEntry(NamedTuple):
    """A tuple, so that a page's entries go to the roster cache (which takes `(client_id, status)` pairs) as they
    are: a million of them in a full sync, each made once."""

    client_id: str
    status: RosterStatus


@dataclass(frozen=True, slots=True)
class RosterPage:
    reset: bool  # a page of a full sync: replace the local roster with the union of these pages
    items: tuple[RosterEntry, ...]
    next_cursor: str
    more: bool  # another page is available right now
    etag: str | None  # send back as If-None-Match with next_cursor; None if the server (or a proxy) gave none


@dataclass(frozen=True, slots=True)
class NotModified:
    """304 on a roster poll: nothing changed since the page whose ETag was sent."""

    etag: str | None


@dataclass(frozen=True, slots=True)
class CheckinEvent:
    event_id: str  # client-generated UUID, the idempotency key
    client_id: str  # as the reader saw it
    scanned_at: datetime  # timezone-aware
    decision: Literal["accepted", "rejected"]
    offline: bool

    def __post_init__(self) -> None:
        if self.scanned_at.tzinfo is None:  # a naive time would be sent as whatever the local zone makes of it
            raise ValueError(f"check-in {self.event_id}: scanned_at must be timezone-aware")

    def to_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "client_id": self.client_id, "scanned_at": rfc3339(self.scanned_at),
                "decision": self.decision, "offline": self.offline}


@dataclass(frozen=True, slots=True)
class EventResult:
    event_id: str
    result: CheckinOutcome
    message: str


@dataclass(frozen=True, slots=True)
class Client:
    ref: int
    name: str
    status: str  # 'active' or 'inactive'
    client_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IdChange:
    client: Client
    changed: bool  # False when the tag already was this client's ID (a retried link)
    previous_client_id: str | None


@dataclass(frozen=True, slots=True)
class LinkTarget:
    device_id: int
    client: Client
    selected_at: datetime


def rfc3339(moment: datetime) -> str:
    """An aware datetime as the contract writes times: UTC with a 'Z' suffix."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# --- field readers ------------------------------------------------------------------------------------------------

def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ReplyShapeError(where, f"expected an object, got {_kind(value)}")
    return value


def _get(obj: dict[str, Any], key: str, where: str, check: Callable[[Any, str], T]) -> T:
    path = f"{where}.{key}" if where else key
    if key not in obj:
        raise ReplyShapeError(path, "missing")
    return check(obj[key], path)


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ReplyShapeError(where, f"expected a string, got {_kind(value)}")
    return value


def _opt_str(value: Any, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ReplyShapeError(where, f"expected true/false, got {_kind(value)}")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):  # bool is an int to Python, not to JSON
        raise ReplyShapeError(where, f"expected an integer, got {_kind(value)}")
    return value


def _id(value: Any, where: str) -> int:
    number = _int(value, where)
    if not 1 <= number <= _MAX_ID:
        raise ReplyShapeError(where, f"id {number} out of range")
    return number


def _time(value: Any, where: str) -> datetime:
    text = _str(value, where)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ReplyShapeError(where, f"not an RFC 3339 time: {text[:40]!r}") from None
    if moment.tzinfo is None:
        raise ReplyShapeError(where, f"time without offset: {text[:40]!r}")
    return moment


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ReplyShapeError(where, f"expected an array, got {_kind(value)}")
    return value


def _enum(kind: type[StrEnum]) -> Callable[[Any, str], Any]:
    def check(value: Any, where: str) -> Any:
        try:
            return kind(_str(value, where))
        except ValueError:
            raise ReplyShapeError(where, f"unexpected value {value[:40]!r}") from None
    return check


def _client_id(value: Any, where: str) -> str:
    text = _str(value, where)
    if not _CLIENT_ID.fullmatch(text):
        raise ReplyShapeError(where, f"not a client ID: {text[:70]!r}")
    return text


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


# --- reply parsers ------------------------------------------------------------------------------------------------

def parse_health(body: Any, server_time: datetime | None) -> Health:
    obj = _obj(body, "")
    return Health(_get(obj, "status", "", _str), _get(obj, "api_version", "", _str), server_time)


def parse_enrolment(body: Any) -> Enrolment:
    obj = _obj(body, "")
    return Enrolment(
        device_id=_get(obj, "device_id", "", _id), token=_get(obj, "token", "", _str),
        business_id=_get(obj, "business_id", "", _id), business_name=_get(obj, "business_name", "", _str),
        location_id=_get(obj, "location_id", "", _id), location_name=_get(obj, "location_name", "", _str))


def parse_device_info(body: Any) -> DeviceInfo:
    obj = _obj(body, "")
    return DeviceInfo(
        device_id=_get(obj, "device_id", "", _id), name=_get(obj, "name", "", _str),
        business_id=_get(obj, "business_id", "", _id), location_id=_get(obj, "location_id", "", _id),
        id_min_length=_get(obj, "id_min_length", "", _int), id_max_length=_get(obj, "id_max_length", "", _int))


def _roster_entry(value: Any, where: str) -> RosterEntry:
    obj = _obj(value, where)
    return RosterEntry(_get(obj, "client_id", where, _client_id), _get(obj, "status", where, _enum(RosterStatus)))


_ROSTER_STATUSES = {status.value: status for status in RosterStatus}


def _roster_entries(items: list[Any]) -> tuple[RosterEntry, ...]:
    """The same checks as `_roster_entry`, made cheap enough for a million entries: per entry two dict lookups,
    one type test and one compiled regex. On the first failure the page goes through the field-by-field checks,
    which raise ReplyShapeError naming the entry and the field.
    """
    entries, statuses, is_client_id = [], _ROSTER_STATUSES, _CLIENT_ID.fullmatch
    for item in items:
        try:
            client_id, status = item["client_id"], statuses[item["status"]]  # a non-dict raises TypeError
        except (TypeError, KeyError):
            break
        if type(client_id) is not str or not is_client_id(client_id):
            break
        entries.append(RosterEntry(client_id, status))
    else:
        return tuple(entries)
    return tuple(_roster_entry(item, f"items[{i}]") for i, item in enumerate(items))


def parse_roster_page(body: Any, etag: str | None) -> RosterPage:
    obj = _obj(body, "")
    items = _get(obj, "items", "", _list)
    return RosterPage(
        reset=_get(obj, "reset", "", _bool), items=_roster_entries(items),
        next_cursor=_get(obj, "next_cursor", "", _str), more=_get(obj, "more", "", _bool), etag=etag)


def _event_result(value: Any, where: str) -> EventResult:
    obj = _obj(value, where)
    return EventResult(_get(obj, "event_id", where, _str), _get(obj, "result", where, _enum(CheckinOutcome)),
                       _get(obj, "message", where, _str))


def parse_checkin_results(body: Any, sent: list[CheckinEvent]) -> list[EventResult]:
    """One result per sent event, in request order: anything else would pair results with the wrong events."""
    results = _get(_obj(body, ""), "results", "", _list)
    if len(results) != len(sent):
        raise ReplyShapeError("results", f"{len(results)} results for {len(sent)} events")
    parsed = [_event_result(item, f"results[{i}]") for i, item in enumerate(results)]
    for i, (result, event) in enumerate(zip(parsed, sent)):
        if result.event_id != event.event_id:
            raise ReplyShapeError(f"results[{i}].event_id", f"{result.event_id[:40]!r}, sent {event.event_id!r}")
    return parsed


def _client(value: Any, where: str) -> Client:
    obj = _obj(value, where)
    status = _get(obj, "status", where, _str)
    if status not in ("active", "inactive"):
        raise ReplyShapeError(f"{where}.status", f"unexpected value {status[:40]!r}")
    return Client(ref=_get(obj, "ref", where, _id), name=_get(obj, "name", where, _str), status=status,
                  client_id=_get(obj, "client_id", where, _opt_str), created_at=_get(obj, "created_at", where, _time))


def parse_id_change(body: Any) -> IdChange:
    obj = _obj(body, "")
    return IdChange(client=_get(obj, "client", "", _client), changed=_get(obj, "changed", "", _bool),
                    previous_client_id=_get(obj, "previous_client_id", "", _opt_str))


def parse_link_target(body: Any) -> LinkTarget | None:
    target = _get(_obj(body, ""), "target", "", lambda value, where: value)
    if target is None:
        return None
    obj = _obj(target, "target")
    return LinkTarget(device_id=_get(obj, "device_id", "target", _id), client=_get(obj, "client", "target", _client),
                      selected_at=_get(obj, "selected_at", "target", _time))


def parse_error_body(body: Any) -> tuple[str | None, str | None]:
    """The contract's `{"error": {"code", "message"}}`, or (None, None) when the body is something else."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    code, message = error.get("code"), error.get("message")
    return (code if isinstance(code, str) else None), (message if isinstance(message, str) else None)
