"""The storage port: records and the operations the service needs, whatever database is behind them.

`server/sqlite_store.py` implements it for SQLite. A PostgreSQL adapter implements the same two classes; the rules
(`server/rules.py`) and the service (`server/service.py`) stay untouched. Uniqueness of client IDs must be enforced
by the database (a unique index on the lower-cased key), and `set_client_id`/`add_client` raise
`Conflict('id_taken')` when it fires, so racing writers leave exactly one winner.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Iterator

from server.rules import Policy


@dataclass(frozen=True)
class Principal:
    """Who is calling: a back-office token (admin/staff) or a device token bound to a location."""

    business_id: int
    role: str
    name: str
    device_id: int | None = None
    location_id: int | None = None


@dataclass(frozen=True)
class Business:
    id: int
    name: str
    policy: Policy
    roster_seq: int
    roster_horizon: int


@dataclass(frozen=True)
class Location:
    id: int
    name: str


@dataclass(frozen=True)
class Device:
    id: int
    location_id: int
    name: str
    hardware_id: str
    enrolled_at: str


@dataclass(frozen=True)
class EnrolmentCode:
    business_id: int
    location_id: int
    expires_at: str
    used_at: str | None


@dataclass(frozen=True)
class Client:
    ref: int
    name: str
    status: str
    client_id: str | None
    created_at: str


@dataclass(frozen=True)
class LinkTarget:
    device_id: int
    client: Client
    selected_at: str


@dataclass(frozen=True)
class Checkin:
    ref: int
    event_id: str
    fingerprint: str
    device_id: int
    location_id: int
    client_ref: int | None
    client_id: str
    scanned_at: str
    received_at: str
    decision: str
    offline: bool
    result: str


@dataclass(frozen=True)
class CheckinQuery:
    since: str | None = None
    until: str | None = None
    location_id: int | None = None
    after: int = 0
    limit: int = 100


@dataclass(frozen=True)
class ClientQuery:
    client_key: str | None = None
    name_contains: str | None = None
    status: str | None = None
    after: int = 0
    limit: int = 100


class RosterSnapshot(ABC):
    """A consistent read of one business's roster, held open while a page streams. Close it when done."""

    seq: int  # last change sequence number in this snapshot
    horizon: int  # cursors below this are too old

    @abstractmethod
    def entry_batches(self, after: int, limit: int) -> Iterator[list[tuple[int, str]]]:
        """Live IDs and tombstones with seq > after, in seq order, at most `limit`, in batches of a few thousand.

        Each entry is `(seq, text)`, `text` being the contract's RosterEntry as a JSON object
        (`{"client_id":"...","status":"..."}`), so a page is written without decoding and re-encoding every row.
        """

    @abstractmethod
    def close(self) -> None: ...


class Tx(ABC):
    """One transaction. Reads see a consistent snapshot; writes commit together or not at all."""

    @abstractmethod
    def create_business(self, name: str, now: str) -> int: ...
    @abstractmethod
    def business(self, business_id: int) -> Business | None: ...
    @abstractmethod
    def business_ids(self) -> list[int]: ...
    @abstractmethod
    def set_policy(self, business_id: int, policy: Policy) -> None: ...
    @abstractmethod
    def add_location(self, business_id: int, name: str) -> Location:
        """Raise Conflict('location_exists') for a name already used in the business."""
    @abstractmethod
    def locations(self, business_id: int) -> list[Location]: ...
    @abstractmethod
    def location_by_name(self, business_id: int, name: str) -> Location | None: ...
    @abstractmethod
    def location(self, business_id: int, location_id: int) -> Location | None: ...
    @abstractmethod
    def add_token(self, token_hash: str, business_id: int, role: str, name: str, device_id: int | None,
                  now: str) -> None: ...
    @abstractmethod
    def principal(self, token_hash: str) -> Principal | None: ...
    @abstractmethod
    def add_enrolment_code(self, code_hash: str, business_id: int, location_id: int, expires_at: str) -> None: ...
    @abstractmethod
    def enrolment_code(self, code_hash: str) -> EnrolmentCode | None: ...
    @abstractmethod
    def use_enrolment_code(self, code_hash: str, device_id: int, now: str) -> None: ...
    @abstractmethod
    def add_device(self, business_id: int, location_id: int, name: str, hardware_id: str, now: str) -> Device: ...
    @abstractmethod
    def devices(self, business_id: int) -> list[Device]: ...
    @abstractmethod
    def device(self, business_id: int, device_id: int) -> Device | None: ...
    @abstractmethod
    def add_client(self, business_id: int, name: str, status: str, client_id: str | None, now: str) -> Client: ...
    @abstractmethod
    def client(self, business_id: int, ref: int) -> Client | None: ...
    @abstractmethod
    def client_by_key(self, business_id: int, client_key: str) -> Client | None: ...
    @abstractmethod
    def clients(self, business_id: int, query: ClientQuery) -> list[Client]: ...
    @abstractmethod
    def update_client(self, business_id: int, ref: int, name: str, status: str) -> Client: ...
    @abstractmethod
    def set_client_id(self, business_id: int, ref: int, client_id: str | None, now: str) -> Client:
        """Give (or with None, take away) the client's ID; the old ID becomes a roster tombstone."""
    @abstractmethod
    def refs_without_id(self, business_id: int, refs: list[int] | None) -> list[int]:
        """Of the given refs (None: all clients), those that have no ID."""
    @abstractmethod
    def count_clients(self, business_id: int, with_id: bool) -> int: ...
    @abstractmethod
    def link_target(self, device_id: int) -> LinkTarget | None: ...
    @abstractmethod
    def set_link_target(self, device_id: int, client_ref: int, now: str) -> None: ...
    @abstractmethod
    def clear_link_target(self, device_id: int) -> None: ...
    @abstractmethod
    def checkin_by_event(self, event_id: str) -> Checkin | None: ...
    @abstractmethod
    def add_checkin(self, business_id: int, checkin: Checkin) -> int: ...
    @abstractmethod
    def checkins(self, business_id: int, query: CheckinQuery) -> list[Checkin]: ...
    @abstractmethod
    def prune_tombstones(self, business_id: int, deleted_before: str) -> int:
        """Forget tombstones deleted before the time; cursors older than the newest forgotten one expire."""


class Store(ABC):
    """A database: write transactions are serialised, reads run beside them."""

    instance_id: str  # random per database, so ETags from a recreated database never match old ones

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Tx]: ...
    @abstractmethod
    def read(self) -> AbstractContextManager[Tx]: ...
    @abstractmethod
    def roster_snapshot(self, business_id: int) -> RosterSnapshot: ...
    @abstractmethod
    def close(self) -> None: ...
