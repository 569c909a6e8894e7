"""Shared SQLite plumbing for tagd's durable stores (roster cache, outbox): connections, fsync, migrations.

Every connection here uses autocommit mode (`isolation_level=None`): the stores open their transactions
explicitly (`BEGIN IMMEDIATE` ... `COMMIT`), so nothing is committed or left open behind their back.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import quote

from .errors import StoreError

log = logging.getLogger(__name__)

# SQLite before 3.51.3 can corrupt a WAL database when two connections write or checkpoint it at the same moment.
# tagd therefore keeps exactly one writing connection per database file whatever the version; the others are
# read-only (`mode=ro`), and a read-only connection never writes or checkpoints.
WAL_CONCURRENCY_FIX = (3, 51, 3)
BUSY_TIMEOUT_MS = 5000

Migration = Sequence[str]  # the DDL statements that take a schema from version n-1 to n

_version_logged = False


def sqlite_version() -> tuple[int, int, int]:
    major, minor, patch = (int(part) for part in sqlite3.sqlite_version.split(".")[:3])
    return major, minor, patch


def log_sqlite_version() -> bool:
    """Log the linked SQLite version once per process; warn when it predates the WAL fix. True when old."""
    global _version_logged
    old = sqlite_version() < WAL_CONCURRENCY_FIX
    if _version_logged:
        return old
    _version_logged = True
    # Information, not a warning: tagd is built for old versions too (one writer connection per file).
    log.info("SQLite %s%s", sqlite3.sqlite_version,
             f" (older than {'.'.join(map(str, WAL_CONCURRENCY_FIX))}, which can corrupt a WAL database when two "
             "connections write or checkpoint it at once: tagd keeps one writer connection per file)" if old else "")
    return old


def connect_writer(path: str, *, synchronous: str = "FULL", journal_mode: str = "WAL") -> sqlite3.Connection:
    """The one writing connection of a database file, created if missing (and its directory entry fsynced).

    Shareable between threads (`check_same_thread=False`): the owner serialises its use with a lock.
    """
    created = not os.path.exists(path)
    conn = _open(path, f"file:{_uri_path(path)}?mode=rwc")
    try:
        _set_journal_mode(conn, journal_mode)
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        if created:
            fsync_dir(os.path.dirname(os.path.abspath(path)))
    except (sqlite3.Error, OSError) as exc:
        conn.close()
        raise StoreError(f"{path}: cannot configure the database: {exc}") from exc
    return conn


def connect_reader(path: str) -> sqlite3.Connection:
    """A read-only connection (`mode=ro`): it can neither write nor checkpoint, so it never races the writer."""
    conn = _open(path, f"file:{_uri_path(path)}?mode=ro")
    try:
        conn.execute("PRAGMA query_only=ON")
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"{path}: cannot configure the database: {exc}") from exc
    return conn


def _open(path: str, uri: str) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open the database: {exc}") from exc
    return conn


def _uri_path(path: str) -> str:
    return quote(os.path.abspath(path))


def _set_journal_mode(conn: sqlite3.Connection, mode: str) -> None:
    got = conn.execute(f"PRAGMA journal_mode={mode}").fetchone()[0]
    if got.upper() != mode:
        raise sqlite3.OperationalError(f"journal_mode is {got}, not {mode}")


@contextmanager
def transaction(conn: sqlite3.Connection, what: str) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE` ... `COMMIT`, rolled back on any error; SQLite errors become StoreError naming `what`."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise StoreError(f"{what}: {exc}") from exc
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException as exc:
        _rollback(conn)
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"{what}: {exc}") from exc
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        log.exception("rollback failed")


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration], what: str) -> int:
    """Bring the schema up to `len(migrations)`; migration i (from 0) makes version i+1. Returns the version.

    Each step runs in its own transaction together with its `schema_version` update, so a crash leaves the
    database at a whole version. A database newer than this code is refused rather than guessed at.
    """
    with transaction(conn, f"{what}: schema"):
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    current = row[0] or 0
    if current > len(migrations):
        raise StoreError(f"{what}: schema version {current} is newer than this tagd knows ({len(migrations)})")
    for version in range(current + 1, len(migrations) + 1):
        with transaction(conn, f"{what}: migration to version {version}"):
            for statement in migrations[version - 1]:
                conn.execute(statement)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    return len(migrations)


def check_schema(conn: sqlite3.Connection, expected: int, what: str) -> None:
    """For read-only connections, which cannot migrate: refuse a schema other than the one this code knows."""
    try:
        found = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise StoreError(f"{what}: cannot read the schema version: {exc}") from exc
    if found != expected:
        raise StoreError(f"{what}: schema version {found}, this tagd reads version {expected}")


def fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    """Make a directory's entries (a created or renamed file) durable."""
    fd = os.open(path or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_replace(source: str, target: str) -> None:
    """Rename `source` over `target` and make the rename durable. `source` must already be fsynced."""
    os.replace(source, target)
    fsync_dir(os.path.dirname(os.path.abspath(target)))


def remove_database(path: str) -> None:
    """Delete a database file together with any journal, WAL and shared-memory file it left behind."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass
