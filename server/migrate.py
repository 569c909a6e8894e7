"""A tiny schema migration runner: numbered SQL files applied in order, recorded in `schema_version`."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from server.errors import StorageError

MIGRATIONS = Path(__file__).parent / "migrations"  # shipped as package data
_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


def available_migrations() -> list[tuple[int, str]]:
    """(version, sql) for every migration shipped in server/migrations, oldest first."""
    found = []
    for entry in MIGRATIONS.iterdir():
        match = _NAME.fullmatch(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found)


def current_version(conn: sqlite3.Connection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
    return conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the newest schema; return its version. Each migration is one transaction."""
    version = current_version(conn)
    migrations = available_migrations()
    newest = migrations[-1][0] if migrations else 0
    if version > newest:
        raise StorageError(f"database schema v{version} is newer than this server (v{newest}): upgrade the server")
    for number, sql in migrations:
        if number > version:
            _apply(conn, number, sql)
            version = number
    return version


def _apply(conn: sqlite3.Connection, number: int, sql: str) -> None:
    # executescript commits any open transaction first, so the BEGIN/COMMIT live inside the script itself.
    try:
        conn.executescript(
            f"BEGIN IMMEDIATE;\n{sql}\n"
            f"INSERT INTO schema_version VALUES ({number}, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));\nCOMMIT;"
        )
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.rollback()
        raise StorageError(f"migration {number:04d} failed: {exc}") from exc
