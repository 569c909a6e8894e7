"""Bench: full roster sync of 1M client IDs from the reference server over loopback (5000 per page).

Run: .venv/bin/python bench/server_roster_sync.py [COUNT]. Prints the query plan (a MERGE of two index range
scans: keyset pagination, no OFFSET, no sort) and the times of a full sync and of an empty delta poll.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time

import requests

from server.demo import seed_demo
from server.embedded import start_server
from server.sqlite_store import _ROSTER_PAGE


def fill(db: str, count: int) -> None:
    """Bulk-insert `count` clients with IDs straight into the business seeded by seed_demo."""
    conn = sqlite3.connect(db)
    with conn:
        rows = ((f"n{i}", f"B{i:07d}", f"b{i:07d}", 1000 + i) for i in range(count))
        conn.executemany("INSERT INTO clients (business_id, name, status, client_id, client_key, seq, created_at)"
                         " VALUES (1, ?, 'active', ?, ?, ?, '2025-01-01T00:00:00.000000Z')", rows)
        conn.execute("UPDATE businesses SET roster_seq = ? WHERE id = 1", (1000 + count,))
    print("plan:", [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + _ROSTER_PAGE,
                                                    {"b": 1, "after": 5, "limit": 5001})])
    conn.close()


def full_sync(session: requests.Session, url: str) -> tuple[int, int, str]:
    count, pages, cursor = 0, 0, None
    while True:
        page = session.get(f"{url}/v1/device/roster",
                           params={"limit": 5000} | ({"cursor": cursor} if cursor else {})).json()
        count, pages, cursor = count + len(page["items"]), pages + 1, page["next_cursor"]
        if not page["more"]:
            return count, pages, cursor


def main(count: int) -> None:
    db = os.path.join(tempfile.mkdtemp(), "roster.db")
    made = seed_demo(db)
    fill(db, count)
    with start_server(db) as handle:
        token = requests.post(f"{handle.url}/v1/device/enrol", json={
            "code": made["enrolment_code"]["code"], "hardware_id": "bench", "name": "bench"}).json()["token"]
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        started = time.perf_counter()
        ids, pages, cursor = full_sync(session, handle.url)
        print(f"full sync: {ids} IDs in {pages} pages, {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        reply = session.get(f"{handle.url}/v1/device/roster", params={"cursor": cursor})
        print(f"delta poll: {reply.status_code}, {len(reply.json()['items'])} changes,"
              f" {(time.perf_counter() - started) * 1000:.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
