"""The reference server's database with a large roster, built fast and cached.

The server has no bulk import, and creating a million clients through `service.create_client` (validation, a
uniqueness probe, a business read, one change-sequence update each) would take minutes. The business, its location
and the enrolled device are made through the server's own service functions; the clients are written straight
into the `clients` table with `executemany`, numbered exactly as `add_client` would number them (change sequence
1..N, `roster_seq` = N). The result is cached under bench/.cache/ keyed by the size and a hash of the server's
schema and of this file, and copied for each run (runs add check-ins and change clients).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

SERVER_DIR = Path(__file__).resolve().parent.parent / "server"
INACTIVE_EVERY = 10  # every 10th client is inactive
_BATCH = 50_000


def client_id(number: int) -> str:
    """The tag ID of seeded client `number` (0-based): 'K' and 7 upper-case hex digits, e.g. K000F4A3B."""
    return f"K{number:07X}"


def client_status(number: int) -> str:
    return "inactive" if number % INACTIVE_EVERY == INACTIVE_EVERY - 1 else "active"


@dataclass(frozen=True)
class SeededServer:
    db_path: str
    business_id: int
    token: str  # the enrolled bench device's token
    size: int


def seeded_copy(cache_dir: str, size: int, work_dir: str) -> SeededServer:
    """A private copy (in `work_dir`) of the cached server database with `size` clients, built if missing."""
    cached = Path(cache_dir) / f"server-{size}-{_fingerprint()}.db"
    meta_path = cached.with_suffix(".json")
    if not (cached.exists() and meta_path.exists()):
        _build(str(cached), size, meta_path)
    meta = json.loads(meta_path.read_text())
    copy = os.path.join(work_dir, "server.db")
    shutil.copyfile(cached, copy)
    return SeededServer(copy, meta["business_id"], meta["token"], size)


def _fingerprint() -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for sql in sorted((SERVER_DIR / "migrations").glob("*.sql")):
        digest.update(sql.read_bytes())
    return digest.hexdigest()[:12]


def _build(path: str, size: int, meta_path: Path) -> None:
    from server import service
    from server.rules import format_time
    from server.sqlite_store import SqliteStore

    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path + ".partial"
    for leftover in (partial, partial + "-wal", partial + "-shm"):
        if os.path.exists(leftover):
            os.unlink(leftover)
    store = SqliteStore(partial)
    now = format_time(datetime.now(timezone.utc))
    try:
        with store.transaction() as tx:
            business_id, _ = service.init_business(tx, "Bench Gym", ["Main"], now)
            location = tx.locations(business_id)[0]
            code, _ = service.issue_enrolment_code(tx, business_id, location.id, timedelta(days=1), now)
            token = service.enrol(tx, code, "bench-reader", "bench reader", now)["token"]
            _insert_clients(tx.conn, business_id, size, now)
    finally:
        store.close()
    os.replace(partial, path)
    meta_path.write_text(json.dumps({"business_id": business_id, "token": token, "size": size}))


def _insert_clients(conn, business_id: int, size: int, now: str) -> None:
    for first in range(0, size, _BATCH):
        rows = [(business_id, f"Client {n}", client_status(n), client_id(n), client_id(n).lower(), n + 1, now)
                for n in range(first, min(first + _BATCH, size))]
        conn.executemany("INSERT INTO clients (business_id, name, status, client_id, client_key, seq, created_at)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("UPDATE businesses SET roster_seq = ? WHERE id = ?", (size, business_id))


def apply_changes(db_path: str, business_id: int, size: int, changes: int) -> int:
    """Make `changes` roster changes through the server's storage layer, as staff would: 70 % status flips,
    20 % new clients, 10 % IDs replaced (each a tombstone plus a new ID). Returns the roster entries a delta
    sync will receive."""
    from server.rules import format_time
    from server.sqlite_store import SqliteStore

    store = SqliteStore(db_path)
    now = format_time(datetime.now(timezone.utc))
    flips, new = changes * 7 // 10, changes * 2 // 10
    replaced = changes - flips - new
    try:
        with store.transaction() as tx:
            for ref in _refs(tx, business_id, flips + replaced, size):
                if flips:
                    client = tx.client(business_id, ref)
                    tx.update_client(business_id, ref, client.name,
                                     "inactive" if client.status == "active" else "active")
                    flips -= 1
                else:
                    tx.set_client_id(business_id, ref, f"R{ref:07X}", now)
            for n in range(new):
                tx.add_client(business_id, f"New client {n}", "active", f"N{n:07X}", now)
    finally:
        store.close()
    return changes + replaced


def _refs(tx, business_id: int, count: int, size: int) -> list[int]:
    """Client refs spread evenly over the roster (the first client's ref is found, the rest follow it)."""
    first = tx.client_by_key(business_id, client_id(0).lower()).ref
    step = max(1, size // max(1, count))
    return [first + i * step for i in range(min(count, size))]
