"""SQLite adapter of the storage port: WAL, one writer connection behind a lock, fresh reader connections.

synchronous=FULL on the writer: a check-in batch the server acknowledged survives a power cut. Every write
transaction is BEGIN IMMEDIATE on the single writer, so transactions never interleave; the unique index on
(business_id, client_key) is still the last word on ID uniqueness.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from server.errors import Conflict, StorageError
from server.migrate import migrate
from server.rules import Policy
from server.sqlite_clients import ClientStatements
from server.storage import (Business, Checkin, CheckinQuery, Device, EnrolmentCode, Location, Principal,
                            RosterSnapshot, Store, Tx)

# json_object (SQLite's JSON1, built in since 3.38) writes each entry as JSON text with SQLite's own escaping:
# valid JSON whatever a client_id holds, at C speed instead of one json.dumps per entry in Python.
_ROSTER_PAGE = """
    SELECT seq, json_object('client_id', client_id, 'status', status) FROM clients
     WHERE business_id = :b AND client_key IS NOT NULL AND seq > :after
    UNION ALL
    SELECT seq, json_object('client_id', client_id, 'status', 'deleted') FROM roster_tombstones
     WHERE business_id = :b AND seq > :after
    ORDER BY seq LIMIT :limit
"""
_ROSTER_BATCH = 2500  # rows per fetchmany: about 100 KB of JSON, one write to the socket


def _connect(path: str, *, writer: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    if writer:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
    else:
        conn.execute("PRAGMA query_only = ON")
    return conn


class SqliteStore(Store):
    """The store on one SQLite file. Opening it migrates the schema to the newest version."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        try:
            self._writer = _connect(self.path, writer=True)
            migrate(self._writer)
            self._writer.execute("INSERT OR IGNORE INTO meta VALUES ('instance_id', ?)", (secrets.token_hex(8),))
            self.instance_id = self._writer.execute("SELECT value FROM meta WHERE key = 'instance_id'").fetchone()[0]
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot open the database: {exc}") from exc
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._lock:
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteTx(self._writer)
            except BaseException:
                self._writer.rollback()
                raise
            self._writer.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[Tx]:
        conn = _connect(self.path, writer=False)
        try:
            conn.execute("BEGIN")
            yield SqliteTx(conn)
        finally:
            conn.close()

    def roster_snapshot(self, business_id: int) -> RosterSnapshot:
        return SqliteRosterSnapshot(_connect(self.path, writer=False), business_id)

    def close(self) -> None:
        with self._lock:
            self._writer.close()


class SqliteRosterSnapshot(RosterSnapshot):
    """A read transaction kept open while a roster page streams from its cursor."""

    def __init__(self, conn: sqlite3.Connection, business_id: int):
        self._conn, self._business_id = conn, business_id
        conn.execute("BEGIN")
        row = conn.execute("SELECT roster_seq, roster_horizon FROM businesses WHERE id = ?", (business_id,)).fetchone()
        self.seq, self.horizon = row

    def entry_batches(self, after: int, limit: int) -> Iterator[list[tuple[int, str]]]:
        rows = self._conn.cursor()
        rows.row_factory = None  # plain tuples: no sqlite3.Row per entry
        rows.execute(_ROSTER_PAGE, {"b": self._business_id, "after": after, "limit": limit})
        while batch := rows.fetchmany(_ROSTER_BATCH):
            yield batch

    def close(self) -> None:
        self._conn.close()


class SqliteTx(ClientStatements, Tx):
    """Statements of one transaction on one connection."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def create_business(self, name: str, now: str) -> int:
        return self.conn.execute("INSERT INTO businesses (name, created_at) VALUES (?, ?)", (name, now)).lastrowid

    def business(self, business_id: int) -> Business | None:
        row = self.conn.execute("SELECT * FROM businesses WHERE id = ?", (business_id,)).fetchone()
        if row is None:
            return None
        policy = Policy(bool(row["auto_generate_ids"]), row["id_min_length"], row["id_max_length"],
                        row["generated_length"], row["generated_alphabet"])
        return Business(row["id"], row["name"], policy, row["roster_seq"], row["roster_horizon"])

    def business_ids(self) -> list[int]:
        return [row[0] for row in self.conn.execute("SELECT id FROM businesses ORDER BY id")]

    def set_policy(self, business_id: int, policy: Policy) -> None:
        self.conn.execute(
            "UPDATE businesses SET auto_generate_ids = ?, id_min_length = ?, id_max_length = ?,"
            " generated_length = ?, generated_alphabet = ? WHERE id = ?",
            (int(policy.auto_generate_ids), policy.id_min_length, policy.id_max_length, policy.generated_length,
             policy.generated_alphabet, business_id))

    def add_location(self, business_id: int, name: str) -> Location:
        try:
            cur = self.conn.execute("INSERT INTO locations (business_id, name) VALUES (?, ?)", (business_id, name))
        except sqlite3.IntegrityError:
            raise Conflict("location_exists", f"a location named {name!r} already exists") from None
        return Location(cur.lastrowid, name)

    def locations(self, business_id: int) -> list[Location]:
        rows = self.conn.execute("SELECT id, name FROM locations WHERE business_id = ? ORDER BY id", (business_id,))
        return [Location(*row) for row in rows]

    def location(self, business_id: int, location_id: int) -> Location | None:
        row = self.conn.execute("SELECT id, name FROM locations WHERE business_id = ? AND id = ?",
                                (business_id, location_id)).fetchone()
        return Location(*row) if row else None

    def location_by_name(self, business_id: int, name: str) -> Location | None:
        row = self.conn.execute("SELECT id, name FROM locations WHERE business_id = ? AND name = ?",
                                (business_id, name)).fetchone()
        return Location(*row) if row else None

    def add_token(self, token_hash: str, business_id: int, role: str, name: str, device_id: int | None,
                  now: str) -> None:
        self.conn.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?)",
                          (token_hash, business_id, role, name, device_id, now))

    def principal(self, token_hash: str) -> Principal | None:
        row = self.conn.execute(
            "SELECT t.business_id, t.role, t.name, t.device_id, d.location_id FROM tokens t"
            " LEFT JOIN devices d ON d.id = t.device_id WHERE t.hash = ?", (token_hash,)).fetchone()
        return Principal(*row) if row else None

    def add_enrolment_code(self, code_hash: str, business_id: int, location_id: int, expires_at: str) -> None:
        self.conn.execute("INSERT INTO enrolment_codes (hash, business_id, location_id, expires_at) VALUES (?,?,?,?)",
                          (code_hash, business_id, location_id, expires_at))

    def enrolment_code(self, code_hash: str) -> EnrolmentCode | None:
        row = self.conn.execute("SELECT business_id, location_id, expires_at, used_at FROM enrolment_codes"
                                " WHERE hash = ?", (code_hash,)).fetchone()
        return EnrolmentCode(*row) if row else None

    def use_enrolment_code(self, code_hash: str, device_id: int, now: str) -> None:
        self.conn.execute("UPDATE enrolment_codes SET used_at = ?, device_id = ? WHERE hash = ?",
                          (now, device_id, code_hash))

    def add_device(self, business_id: int, location_id: int, name: str, hardware_id: str, now: str) -> Device:
        cur = self.conn.execute(
            "INSERT INTO devices (business_id, location_id, name, hardware_id, enrolled_at) VALUES (?,?,?,?,?)",
            (business_id, location_id, name, hardware_id, now))
        return Device(cur.lastrowid, location_id, name, hardware_id, now)

    def devices(self, business_id: int) -> list[Device]:
        rows = self.conn.execute("SELECT id, location_id, name, hardware_id, enrolled_at FROM devices"
                                 " WHERE business_id = ? ORDER BY id", (business_id,))
        return [Device(*row) for row in rows]

    def device(self, business_id: int, device_id: int) -> Device | None:
        row = self.conn.execute("SELECT id, location_id, name, hardware_id, enrolled_at FROM devices"
                                " WHERE business_id = ? AND id = ?", (business_id, device_id)).fetchone()
        return Device(*row) if row else None

    def checkin_by_event(self, event_id: str) -> Checkin | None:
        row = self.conn.execute(f"SELECT {_CHECKIN_COLUMNS} FROM checkins WHERE event_id = ?", (event_id,)).fetchone()
        return _checkin(row) if row else None

    def add_checkin(self, business_id: int, c: Checkin) -> int:
        return self.conn.execute(
            "INSERT INTO checkins (event_id, fingerprint, business_id, device_id, location_id, client_ref,"
            " client_id, scanned_at, received_at, decision, offline, result) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (c.event_id, c.fingerprint, business_id, c.device_id, c.location_id, c.client_ref, c.client_id,
             c.scanned_at, c.received_at, c.decision, int(c.offline), c.result)).lastrowid

    def checkins(self, business_id: int, q: CheckinQuery) -> list[Checkin]:
        sql = f"SELECT {_CHECKIN_COLUMNS} FROM checkins WHERE business_id = ? AND id > ?"
        args: list = [business_id, q.after]
        for clause, value in (("scanned_at >= ?", q.since), ("scanned_at < ?", q.until),
                              ("location_id = ?", q.location_id)):
            if value is not None:
                sql += f" AND {clause}"
                args.append(value)
        rows = self.conn.execute(sql + " ORDER BY id LIMIT ?", (*args, q.limit))
        return [_checkin(row) for row in rows]


_CHECKIN_COLUMNS = ("id, event_id, fingerprint, device_id, location_id, client_ref, client_id, scanned_at,"
                    " received_at, decision, offline, result")


def _checkin(row: sqlite3.Row) -> Checkin:
    values = list(row)
    values[10] = bool(values[10])
    return Checkin(*values)
