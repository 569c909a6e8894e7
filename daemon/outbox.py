"""The check-in outbox: every check-in is committed here, durably, before the reader gives feedback, and leaves
only when the server has answered for it (`POST /v1/device/checkins`, CheckinEvent/CheckinResult in
server/openapi.yaml) or when it is moved to the dead letters.

Tables: `pending` (the queue, in `seq` order), `delivered` (a bounded history with the server's result) and
`dead_letters` (events the server will never take, with the reason; kept until someone looks at them).

Threads. One writer connection (SQLite before 3.51.3 can corrupt a WAL file when two connections write or
checkpoint it at once), shared under a lock by the event loop thread and the delivery worker thread:
- loop thread: `record()` (one INSERT and one fsync'd commit: a few milliseconds on a healthy disk), and the
  cheap reads `depth()`, `oldest_pending()`, `dead_letter_count()`;
- delivery worker thread: `pending()`, `mark_results()`, `dead_letter()`, `dead_letters()`, `recent()`.
Every call holds the lock only for its own short transaction, so `record()` waits at most for one batch's
bookkeeping, never for the network.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from . import sqlite_util as db
from .errors import StoreError

DECISIONS = ("accepted", "rejected")
DELIVERED_RESULTS = ("accepted", "duplicate", "unknown_client", "inactive")  # the server holds the event
CONFLICT = "conflict"  # the server holds a DIFFERENT event under this event_id: dead-lettered, never retried

_EVENT_COLUMNS = "event_id, client_id, scanner, scanned_at, decision, offline, outcome"
_MIGRATIONS: list[db.Migration] = [
    (  # v1
        f"CREATE TABLE pending (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, client_id TEXT NOT NULL,"
        f" scanner TEXT NOT NULL, scanned_at REAL NOT NULL,"
        f" decision TEXT NOT NULL CHECK (decision IN {DECISIONS}), offline INTEGER NOT NULL,"
        f" outcome TEXT NOT NULL, recorded_at REAL NOT NULL)",
        "CREATE TABLE delivered (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, client_id TEXT NOT NULL,"
        " scanner TEXT NOT NULL, scanned_at REAL NOT NULL, decision TEXT NOT NULL, offline INTEGER NOT NULL,"
        " outcome TEXT NOT NULL, result TEXT NOT NULL, message TEXT NOT NULL, delivered_at REAL NOT NULL)",
        "CREATE INDEX delivered_by_time ON delivered (delivered_at)",
        "CREATE TABLE dead_letters (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, client_id TEXT NOT NULL,"
        " scanner TEXT NOT NULL, scanned_at REAL NOT NULL, decision TEXT NOT NULL, offline INTEGER NOT NULL,"
        " outcome TEXT NOT NULL, reason TEXT NOT NULL, dead_at REAL NOT NULL)",
    ),
]


@dataclass(frozen=True)
class CheckinEvent:
    """One check-in as the reader decided it. `event_id` is the server's idempotency key: never regenerated."""

    event_id: str  # UUID4, made once by `new()`
    client_id: str  # the scanned ID as the reader saw it
    scanner: str  # configured scanner name
    scanned_at: float  # epoch seconds
    decision: str  # 'accepted' | 'rejected'
    offline: bool  # decided from the local roster without asking the server
    outcome: str  # tagd's local outcome: 'accepted', 'denied_inactive', 'denied_unknown', ...

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise StoreError(f"check-in {self.event_id}: decision must be accepted or rejected, not {self.decision!r}")
        try:
            uuid.UUID(self.event_id)
        except (ValueError, TypeError, AttributeError):
            raise StoreError(f"check-in event_id {self.event_id!r} is not a UUID") from None
        if not isinstance(self.scanned_at, (int, float)) or not math.isfinite(self.scanned_at):
            raise StoreError(f"check-in {self.event_id}: scanned_at {self.scanned_at!r} is not a finite time")

    @classmethod
    def new(cls, client_id: str, scanner: str, scanned_at: float, decision: str, offline: bool,
            outcome: str) -> CheckinEvent:
        return cls(str(uuid.uuid4()), client_id, scanner, scanned_at, decision, offline, outcome)

    def as_wire(self) -> dict:
        """The CheckinEvent JSON object. Deterministic, so every retry sends byte-identical content."""
        at = datetime.fromtimestamp(self.scanned_at, timezone.utc).isoformat(timespec="microseconds")
        return {"event_id": self.event_id, "client_id": self.client_id, "scanned_at": at.replace("+00:00", "Z"),
                "decision": self.decision, "offline": self.offline}

    def _row(self) -> tuple:
        return (self.event_id, self.client_id, self.scanner, float(self.scanned_at), self.decision,
                int(self.offline), self.outcome)

    @classmethod
    def _from_row(cls, row: tuple) -> CheckinEvent:
        event_id, client_id, scanner, scanned_at, decision, offline, outcome = row
        return cls(event_id, client_id, scanner, scanned_at, decision, bool(offline), outcome)


@dataclass(frozen=True)
class DeliveredEvent:
    event: CheckinEvent
    result: str  # the server's CheckinResult.result
    message: str
    delivered_at: float


@dataclass(frozen=True)
class DeadLetter:
    event: CheckinEvent
    reason: str
    dead_at: float


class Outbox:
    """The outbox file. See the module docstring for which thread calls what."""

    def __init__(self, path: str, *, readonly: bool = False, history_limit: int = 10_000,
                 history_days: float = 30.0, clock: Callable[[], float] = time.time):
        """Open (creating and migrating) the outbox. `readonly=True` is for another process such as
        `tagd status` while the daemon runs: a read-only connection never writes or checkpoints, so the
        daemon's connection stays the file's only writer. Write methods of a read-only outbox raise."""
        self.path = path
        self.readonly = readonly
        self._history_limit = history_limit
        self._history_seconds = history_days * 86400
        self._clock = clock
        self._lock = threading.Lock()
        db.log_sqlite_version()
        self._conn: sqlite3.Connection | None = (db.connect_reader(path) if readonly
                                                  else db.connect_writer(path, synchronous="FULL"))
        try:
            if readonly:
                db.check_schema(self._conn, len(_MIGRATIONS), path)
            else:
                db.migrate(self._conn, _MIGRATIONS, path)
        except StoreError:
            self.close()
            raise

    def record(self, event: CheckinEvent) -> None:
        """The durability point: when this returns the event is on disk (WAL fsynced). Loop thread."""
        with self._lock, self._transaction(f"recording check-in {event.event_id}") as conn:
            conn.execute(f"INSERT INTO pending ({_EVENT_COLUMNS}, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (*event._row(), self._clock()))

    def pending(self, limit: int) -> list[CheckinEvent]:
        """The oldest `limit` queued events, in the order they were recorded. Delivery worker."""
        rows = self._read(f"SELECT {_EVENT_COLUMNS} FROM pending ORDER BY seq LIMIT ?", (limit,))
        return [CheckinEvent._from_row(row) for row in rows]

    def mark_results(self, results: Iterable[tuple[str, str, str]]) -> int:
        """Apply a batch reply: `(event_id, result, message)` per event. Returns how many left the queue.

        accepted/duplicate/unknown_client/inactive: the server holds the event; it moves to the history.
        conflict: the server holds another event under this ID and never will take this one; dead-lettered.
        IDs no longer pending (already marked) are skipped. An unknown result changes nothing and raises.
        """
        results = list(results)
        for event_id, result, _ in results:
            if result not in DELIVERED_RESULTS and result != CONFLICT:
                raise StoreError(f"check-in {event_id}: unknown server result {result!r}; outbox unchanged")
        now = self._clock()
        moved = 0
        with self._lock, self._transaction("recording delivery results") as conn:
            for event_id, result, message in results:
                if result == CONFLICT:
                    moved += _to_dead_letters(conn, event_id, f"conflict: {message}", now)
                else:
                    moved += _to_history(conn, event_id, result, message, now)
            self._prune_history(conn, now)
        return moved

    def dead_letter(self, event_id: str, reason: str) -> bool:
        """Move an event the server rejects as malformed out of the queue, keeping it with `reason`."""
        with self._lock, self._transaction(f"dead-lettering {event_id}") as conn:
            return bool(_to_dead_letters(conn, event_id, reason, self._clock()))

    def depth(self) -> int:
        return self._read("SELECT count(*) FROM pending")[0][0]

    def oldest_pending(self) -> float | None:
        """scanned_at of the first queued event, None when the queue is empty."""
        rows = self._read("SELECT scanned_at FROM pending ORDER BY seq LIMIT 1")
        return rows[0][0] if rows else None

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters first."""
        rows = self._read(f"SELECT {_EVENT_COLUMNS}, reason, dead_at FROM dead_letters ORDER BY seq DESC LIMIT ?",
                          (limit,))
        return [DeadLetter(CheckinEvent._from_row(row[:7]), row[7], row[8]) for row in rows]

    def dead_letter_count(self) -> int:
        return self._read("SELECT count(*) FROM dead_letters")[0][0]

    def recent(self, limit: int = 20) -> list[DeliveredEvent]:
        """The most recently delivered events first, with the server's results."""
        rows = self._read(f"SELECT {_EVENT_COLUMNS}, result, message, delivered_at FROM delivered"
                          f" ORDER BY seq DESC LIMIT ?", (limit,))
        return [DeliveredEvent(CheckinEvent._from_row(row[:7]), row[7], row[8], row[9]) for row in rows]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _prune_history(self, conn: sqlite3.Connection, now: float) -> None:
        # Both deletes walk an index from its low end: cost proportional to what is removed.
        conn.execute("DELETE FROM delivered WHERE seq <= (SELECT max(seq) FROM delivered) - ?",
                     (self._history_limit,))
        conn.execute("DELETE FROM delivered WHERE delivered_at < ?", (now - self._history_seconds,))

    def _transaction(self, what: str):
        if self.readonly:
            raise StoreError(f"{self.path}: {what}: the outbox is open read-only")
        return db.transaction(self._open_conn(), f"{self.path}: {what}")

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._open_conn().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: read failed: {exc}") from exc

    def _open_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path}: the outbox is closed")
        return self._conn


def _to_history(conn: sqlite3.Connection, event_id: str, result: str, message: str, now: float) -> int:
    moved = conn.execute(f"INSERT INTO delivered ({_EVENT_COLUMNS}, result, message, delivered_at)"
                         f" SELECT {_EVENT_COLUMNS}, ?, ?, ? FROM pending WHERE event_id = ?",
                         (result, message, now, event_id)).rowcount
    conn.execute("DELETE FROM pending WHERE event_id = ?", (event_id,))
    return moved


def _to_dead_letters(conn: sqlite3.Connection, event_id: str, reason: str, now: float) -> int:
    moved = conn.execute(f"INSERT INTO dead_letters ({_EVENT_COLUMNS}, reason, dead_at)"
                         f" SELECT {_EVENT_COLUMNS}, ?, ? FROM pending WHERE event_id = ?",
                         (reason, now, event_id)).rowcount
    conn.execute("DELETE FROM pending WHERE event_id = ?", (event_id,))
    return moved
