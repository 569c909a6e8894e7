"""The local roster cache: client ID -> status, in a SQLite file of the state directory, mirroring the server's
`GET /v1/device/roster` change feed (RosterPage / RosterEntry in server/openapi.yaml).

Threads. `lookup()` is for the event loop thread: the scan path. It (like `meta()` and `size()`, cheap and
safe from any thread) uses its own read-only connection, never waits for a delta being applied (WAL readers
do not block on the writer), and waits only during the few milliseconds of a full-sync swap (close, rename,
fsync the directory, reopen). Everything that writes (`apply_delta`, `put`, `begin_full_sync` and the
FullSync it returns) is for ONE worker thread: those calls may take long (fsync of a whole new roster file)
and must never run on the loop. Locks make any interleaving of the two threads safe, not just this split.

Files. `<path>` is the roster (WAL mode, one writer connection, one read-only lookup connection).
A full sync builds `<path>.new`, fsyncs it, renames it over `<path>` and fsyncs the directory: a crash at any
point leaves either the old roster or the new one, whole. A `.new` left by a crash is deleted at open.

Matching is on the ASCII lower-cased client ID, as the server's uniqueness rule (`AB12` == `ab12`, while
non-ASCII letters are never folded: the Kelvin sign is not `k`).
"""

from __future__ import annotations

import logging
import os
import itertools
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from . import sqlite_util as db
from .errors import StoreError

log = logging.getLogger(__name__)

STATUSES = ("active", "inactive")
TOMBSTONE = "deleted"
_ALL_STATUSES = frozenset((*STATUSES, TOMBSTONE))
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

_MIGRATIONS: list[db.Migration] = [
    (  # v1
        "CREATE TABLE roster (client_key TEXT PRIMARY KEY,"
        " status TEXT NOT NULL CHECK (status IN ('active', 'inactive'))) WITHOUT ROWID",
        "CREATE TABLE sync_state (only_row INTEGER PRIMARY KEY CHECK (only_row = 1),"
        " cursor TEXT, etag TEXT, synced_at REAL, size INTEGER NOT NULL DEFAULT 0)",
        "INSERT INTO sync_state (only_row) VALUES (1)",
    ),
]


class RosterEntry(NamedTuple):
    """One item of a RosterPage. A plain `(client_id, status)` tuple is accepted wherever this is."""

    client_id: str
    status: str  # 'active' | 'inactive' | 'deleted' (tombstone)


@dataclass(frozen=True)
class RosterMeta:
    cursor: str | None  # next_cursor of the last page applied; None: never synced, do a full sync
    etag: str | None  # ETag of that reply, for If-None-Match
    synced_at: float | None  # epoch seconds of the last successful sync
    size: int  # number of known client IDs


def roster_key(client_id: str) -> str:
    """The form IDs are matched on: ASCII letters lower-cased, anything else untouched."""
    # str.lower() of an all-ASCII string lowers exactly A-Z, and is several times faster than translate()
    return client_id.lower() if client_id.isascii() else client_id.translate(_ASCII_LOWER)


def _checked(entry: Iterable) -> tuple[str, str]:
    try:
        client_id, status = entry
    except (TypeError, ValueError):
        raise StoreError(f"a roster entry is not a (client_id, status) pair but {type(entry).__name__}") from None
    # The messages go to the log: they name the fault, never the client ID (daemon.privacy).
    if not isinstance(client_id, str) or not client_id:
        raise StoreError(f"a roster entry's client_id must be a non-empty string, not {type(client_id).__name__}")
    if status not in STATUSES and status != TOMBSTONE:
        raise StoreError(f"a roster entry's status must be active, inactive or deleted, not {str(status)[:20]!r}")
    return roster_key(client_id), status


def _checked_rows(entries: Iterable) -> list[tuple[str, str]]:
    """`_checked` of every entry, with the checks made in a few passes over the page; any fault sends the page
    through `_checked`, which raises StoreError for the first bad entry."""
    entries = list(entries)
    try:  # a non-pair raises TypeError/ValueError, an ID without str methods AttributeError
        rows = [(roster_key(client_id), status) for client_id, status in entries]
        # roster_key gives an exact str for any str (bytes also have isascii/lower): this rejects all else
        ok = all(type(key) is str and key for key, _ in rows) and {status for _, status in rows} <= _ALL_STATUSES
    except (TypeError, ValueError, AttributeError):  # TypeError also for an unhashable status
        ok = False
    return rows if ok else [_checked(entry) for entry in entries]


def _apply(conn: sqlite3.Connection, rows: list[tuple[str, str]], *, count: bool = True) -> int:
    """Upsert or delete `rows` (already checked) in order, inside the caller's transaction; returns the change in
    size (0 without `count`: a full sync counts its roster once at the end, and saves a statement per entry).

    Each run of consecutive upserts or tombstones is one executemany, so their relative order is kept.
    """
    growth = 0
    for deleting, run in itertools.groupby(rows, key=lambda row: row[1] == TOMBSTONE):
        run = list(run)
        if deleting:
            growth -= conn.executemany("DELETE FROM roster WHERE client_key = ?", [(key,) for key, _ in run]).rowcount
        elif count:  # the rows inserted are the growth; the others are updated (a no-op when equal)
            growth += conn.executemany("INSERT OR IGNORE INTO roster VALUES (?, ?)", run).rowcount
            conn.executemany("UPDATE roster SET status = ?2 WHERE client_key = ?1 AND status <> ?2", run)
        else:
            conn.executemany("INSERT INTO roster VALUES (?, ?)"
                             " ON CONFLICT (client_key) DO UPDATE SET status = excluded.status", run)
    return growth if count else 0


def read_meta(path: str) -> RosterMeta:
    """The sync state through a read-only connection, for another process (`tagd status`): it neither migrates,
    nor removes a `.new` file that a running daemon may be building, nor ever writes."""
    conn = db.connect_reader(path)
    try:
        row = conn.execute("SELECT cursor, etag, synced_at, size FROM sync_state").fetchone()
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot read the sync state: {exc}") from exc
    finally:
        conn.close()
    return RosterMeta(*row)


class RosterCache:
    """The roster file: indexed lookups for the scan path, deltas and full syncs from the sync worker."""

    def __init__(self, path: str):
        self.path = path
        self._read_lock = threading.Lock()  # guards the lookup connection (and its replacement at a swap)
        self._write_lock = threading.Lock()  # guards the writer connection and the full-sync state
        self._full_sync: FullSync | None = None
        self._closed = False
        if os.path.exists(self.new_path):
            log.warning("%s: removing a partial full sync left by a crash", self.new_path)
        db.remove_database(self.new_path)
        self._writer, self._reader = self._connect()

    @property
    def new_path(self) -> str:
        return self.path + ".new"

    def _connect(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        # synchronous=NORMAL: a power cut may lose the last delta, but its cursor goes with it (same transaction),
        # so the next sync fetches it again. The outbox, not the roster, is where durability is owed.
        writer = db.connect_writer(self.path, synchronous="NORMAL")
        try:
            db.migrate(writer, _MIGRATIONS, self.path)
            return writer, db.connect_reader(self.path)
        except StoreError:
            writer.close()
            raise

    # -- scan path (event loop thread) -------------------------------------------------------------------

    def lookup(self, client_id: str) -> str | None:
        """'active' or 'inactive' for a known ID, None for an unknown one. One primary-key probe."""
        key = roster_key(client_id)
        with self._read_lock:
            try:
                row = self._reader.execute("SELECT status FROM roster WHERE client_key = ?", (key,)).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: roster lookup failed: {exc}") from exc
        return row[0] if row else None

    def meta(self) -> RosterMeta:
        with self._read_lock:
            try:
                row = self._reader.execute("SELECT cursor, etag, synced_at, size FROM sync_state").fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot read the sync state: {exc}") from exc
        return RosterMeta(*row)

    def size(self) -> int:
        return self.meta().size

    # -- sync worker thread ---------------------------------------------------------------------------

    def apply_delta(self, entries: Iterable, cursor: str, etag: str | None, synced_at: float) -> None:
        """Apply one page of a delta sync and store its cursor, all in one transaction (all or nothing).

        'active'/'inactive' entries are upserts, 'deleted' ones remove the ID (unknown IDs are ignored).
        """
        rows = _checked_rows(entries)
        with self._write_lock:
            self._refuse_during_full_sync("apply a delta")
            with db.transaction(self._writer, f"{self.path}: applying a roster delta"):
                growth = _apply(self._writer, rows)
                self._writer.execute("UPDATE sync_state SET cursor = ?, etag = ?, synced_at = ?, size = size + ?",
                                     (cursor, etag, synced_at, growth))

    def put(self, client_id: str, status: str) -> None:
        """Record what a successful link (or another server reply) just told us, ahead of the next delta.

        During a full sync the entry is also carried into the new roster unless the server's pages know the ID.
        """
        if status not in STATUSES:
            raise StoreError(f"roster put: status must be active or inactive, not {str(status)[:20]!r}")
        row = _checked((client_id, status))
        with self._write_lock:
            self._check_open()
            with db.transaction(self._writer, f"{self.path}: storing {client_id!r}"):
                growth = _apply(self._writer, [row])
                self._writer.execute("UPDATE sync_state SET size = size + ?", (growth,))
            if self._full_sync is not None:
                self._full_sync.carry(row)

    def begin_full_sync(self) -> FullSync:
        """Start building a new roster in `<path>.new`; the current one keeps serving lookups until commit."""
        with self._write_lock:
            self._refuse_during_full_sync("start another full sync")
            self._full_sync = FullSync(self)
            return self._full_sync

    def _refuse_during_full_sync(self, what: str) -> None:
        self._check_open()
        if self._full_sync is not None:
            raise StoreError(f"{self.path}: cannot {what} while a full sync is in progress (commit or abort it)")

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.path}: the roster cache is closed")

    def _install(self, sync: FullSync, cursor: str, etag: str | None, synced_at: float) -> None:
        with self._write_lock:
            sync.finish(cursor, etag, synced_at)  # carried puts are merged under the lock: none slips past
            self._full_sync = None
            try:
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # keeps the close below short
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot checkpoint the roster: {exc}") from exc
            with self._read_lock:
                self._swap_files()

    def _swap_files(self) -> None:
        """Close both connections (the last close checkpoints and deletes -wal/-shm), rename, reopen.

        The -wal/-shm of the old file must be gone before the rename: SQLite would otherwise read them as the
        new file's WAL. They survive only when another connection (another process) has the roster open.
        """
        self._reader.close()
        self._writer.close()
        if any(os.path.exists(self.path + suffix) for suffix in ("-wal", "-shm")):
            self._writer, self._reader = self._connect()
            db.remove_database(self.new_path)
            raise StoreError(f"{self.path}: another process has the roster open; full sync not installed")
        try:
            db.atomic_replace(self.new_path, self.path)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot install the new roster: {exc}") from exc
        finally:  # renamed or not, lookups must find an open connection on a whole roster
            self._writer, self._reader = self._connect()

    def _forget(self, sync: FullSync) -> None:
        with self._write_lock:
            if self._full_sync is sync:
                self._full_sync = None

    def close(self) -> None:
        with self._write_lock:
            if self._full_sync is not None:
                self._full_sync.discard()
                self._full_sync = None
            with self._read_lock:
                if not self._closed:
                    self._closed = True
                    self._reader.close()
                    self._writer.close()

    def __enter__(self) -> RosterCache:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class FullSync:
    """A new roster being built from the pages of a full sync (`reset: true`). Sync worker thread only.

    Use as a context manager: leaving the block without `commit()` aborts and deletes the partial file.
    """

    def __init__(self, cache: RosterCache):
        self._cache = cache
        self.path = cache.new_path
        self.added = 0  # entries received so far, tombstones included
        self._carried: list[tuple[str, str]] = []  # puts made meanwhile; few (links are rare)
        db.remove_database(self.path)
        # The file is thrown away on any failure, so it needs no crash safety while it is built: no journal
        # on disk, no fsync per page. It is fsynced once, whole, before it replaces the roster.
        self._conn: sqlite3.Connection | None = db.connect_writer(self.path, synchronous="OFF",
                                                                  journal_mode="MEMORY")
        db.migrate(self._conn, _MIGRATIONS, self.path)

    def add(self, entries: Iterable) -> None:
        """Write one page. Tombstones delete an ID received on an earlier page; those of unknown IDs do nothing."""
        rows = _checked_rows(entries)
        conn = self._open_conn()
        with db.transaction(conn, f"{self.path}: adding a roster page"):
            _apply(conn, rows, count=False)
        self.added += len(rows)

    def commit(self, cursor: str, etag: str | None, synced_at: float) -> None:
        """Make the new roster durable and swap it in. Lookups see the old roster until this returns."""
        self._open_conn()
        try:
            self._cache._install(self, cursor, etag, synced_at)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Give up: delete the partial file. The current roster is untouched. Safe to call twice."""
        self.discard()
        self._cache._forget(self)

    def carry(self, row: tuple[str, str]) -> None:
        self._carried.append(row)

    def finish(self, cursor: str, etag: str | None, synced_at: float) -> None:
        """Called by the cache under its write lock: merge carried puts, store the state, close, fsync."""
        conn = self._open_conn()
        with db.transaction(conn, f"{self.path}: finishing the full sync"):
            conn.executemany("INSERT OR IGNORE INTO roster VALUES (?, ?)", self._carried)
            size = conn.execute("SELECT count(*) FROM roster").fetchone()[0]
            conn.execute("UPDATE sync_state SET cursor = ?, etag = ?, synced_at = ?, size = ?",
                         (cursor, etag, synced_at, size))
        conn.close()
        self._conn = None
        try:
            db.fsync_file(self.path)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot fsync the new roster: {exc}") from exc

    def discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        db.remove_database(self.path)

    def _open_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path}: this full sync is already committed or aborted")
        return self._conn

    def __enter__(self) -> FullSync:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._conn is not None:
            self.abort()
