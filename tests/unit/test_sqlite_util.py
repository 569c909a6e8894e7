"""Shared SQLite helpers: the version warning, the migration runner, atomic replace."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from daemon import sqlite_util as db
from daemon.errors import StoreError


@pytest.mark.parametrize("version, warned", [("3.40.1", True), ("3.51.2", True), ("3.51.3", False),
                                              ("3.52.0", False)])
def test_sqlite_version_is_logged_once_with_the_wal_caveat_when_old(monkeypatch, caplog, version, warned):
    monkeypatch.setattr(sqlite3, "sqlite_version", version)
    monkeypatch.setattr(db, "_version_logged", False)
    with caplog.at_level(logging.INFO, logger="daemon.sqlite_util"):
        assert db.log_sqlite_version() is warned
        db.log_sqlite_version()
    [message] = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert message.startswith(f"SQLite {version}")
    assert ("one writer connection per file" in message) is warned


MIGRATIONS = [("CREATE TABLE a (x INTEGER)",), ("ALTER TABLE a ADD COLUMN y TEXT", "CREATE INDEX a_y ON a (y)")]


def test_migrations_run_once_and_in_order(tmp_path):
    path = str(tmp_path / "m.db")
    conn = db.connect_writer(path)
    assert db.migrate(conn, MIGRATIONS[:1], "m") == 1
    conn.execute("INSERT INTO a (x) VALUES (1)")
    assert db.migrate(conn, MIGRATIONS, "m") == 2
    assert db.migrate(conn, MIGRATIONS, "m") == 2
    assert conn.execute("SELECT x, y FROM a").fetchall() == [(1, None)]
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
    conn.close()


def test_a_failing_migration_leaves_the_previous_version_whole(tmp_path):
    conn = db.connect_writer(str(tmp_path / "m.db"))
    broken = [MIGRATIONS[0], ("ALTER TABLE a ADD COLUMN y TEXT", "CREATE INDEX a_z ON a (no_such_column)")]
    with pytest.raises(StoreError, match="migration to version 2"):
        db.migrate(conn, broken, "m")
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    assert [row[1] for row in conn.execute("PRAGMA table_info(a)")] == ["x"]
    conn.close()


def test_atomic_replace_puts_the_new_file_in_place(tmp_path):
    old, new = tmp_path / "f", tmp_path / "f.new"
    old.write_text("old")
    new.write_text("new")
    db.fsync_file(str(new))
    db.atomic_replace(str(new), str(old))
    assert (old.read_text(), new.exists()) == ("new", False)


def test_a_reader_cannot_write(tmp_path):
    path = str(tmp_path / "r.db")
    writer = db.connect_writer(path)
    writer.execute("CREATE TABLE t (x)")
    reader = db.connect_reader(path)
    with pytest.raises(sqlite3.OperationalError, match="readonly|query_only"):
        reader.execute("INSERT INTO t VALUES (1)")
    reader.close(), writer.close()
