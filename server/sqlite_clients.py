"""SQLite statements about clients, their IDs, the roster change log and link targets (part of SqliteTx).

Every roster-visible change (an ID given or taken away, a status change) takes the next number of the business's
change sequence: the client row carries it, and an ID that stops belonging to anyone leaves a tombstone with it.
"""

from __future__ import annotations

import sqlite3

from server.errors import Conflict
from server.rules import normalise_id
from server.storage import Client, ClientQuery, LinkTarget

_CLIENT_COLUMNS = "id, name, status, client_id, created_at"


class ClientStatements:
    conn: sqlite3.Connection

    def _next_seq(self, business_id: int) -> int:
        return self.conn.execute("UPDATE businesses SET roster_seq = roster_seq + 1 WHERE id = ? RETURNING roster_seq",
                                 (business_id,)).fetchone()[0]

    def add_client(self, business_id: int, name: str, status: str, client_id: str | None, now: str) -> Client:
        key = normalise_id(client_id) if client_id else None
        try:
            cur = self.conn.execute(
                "INSERT INTO clients (business_id, name, status, client_id, client_key, seq, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (business_id, name, status, client_id, key, self._next_seq(business_id), now))
        except sqlite3.IntegrityError:
            raise _id_taken(client_id) from None
        if key:
            self._forget_tombstone(business_id, key)
        return Client(cur.lastrowid, name, status, client_id, now)

    def client(self, business_id: int, ref: int) -> Client | None:
        row = self.conn.execute(f"SELECT {_CLIENT_COLUMNS} FROM clients WHERE business_id = ? AND id = ?",
                                (business_id, ref)).fetchone()
        return Client(*row) if row else None

    def client_by_key(self, business_id: int, client_key: str) -> Client | None:
        row = self.conn.execute(f"SELECT {_CLIENT_COLUMNS} FROM clients WHERE business_id = ? AND client_key = ?",
                                (business_id, client_key)).fetchone()
        return Client(*row) if row else None

    def clients(self, business_id: int, q: ClientQuery) -> list[Client]:
        sql = f"SELECT {_CLIENT_COLUMNS} FROM clients WHERE business_id = ? AND id > ?"
        args: list = [business_id, q.after]
        if q.client_key is not None:
            sql += " AND client_key = ?"
            args.append(q.client_key)
        if q.name_contains is not None:
            sql += " AND instr(lower(name), ?) > 0"
            args.append(q.name_contains.lower())
        if q.status is not None:
            sql += " AND status = ?"
            args.append(q.status)
        rows = self.conn.execute(sql + " ORDER BY id LIMIT ?", (*args, q.limit))
        return [Client(*row) for row in rows]

    def update_client(self, business_id: int, ref: int, name: str, status: str) -> Client:
        old = self.client(business_id, ref)
        seq_change = ", seq = ?" if old and old.status != status else ""
        args = (name, status) + ((self._next_seq(business_id),) if seq_change else ()) + (business_id, ref)
        self.conn.execute(f"UPDATE clients SET name = ?, status = ?{seq_change} WHERE business_id = ? AND id = ?",
                          args)
        return self.client(business_id, ref)

    def set_client_id(self, business_id: int, ref: int, client_id: str | None, now: str) -> Client:
        old = self.client(business_id, ref)
        key = normalise_id(client_id) if client_id else None
        seq = self._next_seq(business_id)
        if old.client_id and normalise_id(old.client_id) != key:
            self._add_tombstone(business_id, old.client_id, seq, now)
            seq = self._next_seq(business_id)
        try:
            self.conn.execute("UPDATE clients SET client_id = ?, client_key = ?, seq = ? WHERE business_id = ? AND id = ?",
                              (client_id, key, seq, business_id, ref))
        except sqlite3.IntegrityError:
            raise _id_taken(client_id) from None
        if key:
            self._forget_tombstone(business_id, key)
        return self.client(business_id, ref)

    def _add_tombstone(self, business_id: int, client_id: str, seq: int, now: str) -> None:
        self.conn.execute(
            "INSERT INTO roster_tombstones (business_id, client_key, client_id, seq, deleted_at) VALUES (?,?,?,?,?)"
            " ON CONFLICT (business_id, client_key) DO UPDATE SET client_id = excluded.client_id,"
            " seq = excluded.seq, deleted_at = excluded.deleted_at",
            (business_id, normalise_id(client_id), client_id, seq, now))

    def _forget_tombstone(self, business_id: int, key: str) -> None:
        # The live row now carries a newer seq for this key; a delta sync applies it over the device's old copy.
        self.conn.execute("DELETE FROM roster_tombstones WHERE business_id = ? AND client_key = ?", (business_id, key))

    def refs_without_id(self, business_id: int, refs: list[int] | None) -> list[int]:
        if refs is None:
            rows = self.conn.execute("SELECT id FROM clients WHERE business_id = ? AND client_key IS NULL ORDER BY id",
                                     (business_id,))
            return [row[0] for row in rows]
        wanted = set(refs)
        rows = self.conn.execute("SELECT id, client_key FROM clients WHERE business_id = ? AND id IN"
                                 " (SELECT value FROM json_each(?))", (business_id, _json_list(wanted)))
        return sorted(ref for ref, key in rows if key is None)

    def count_clients(self, business_id: int, with_id: bool) -> int:
        condition = "IS NOT NULL" if with_id else "IS NULL"
        return self.conn.execute(f"SELECT count(*) FROM clients WHERE business_id = ? AND client_key {condition}",
                                 (business_id,)).fetchone()[0]

    def link_target(self, device_id: int) -> LinkTarget | None:
        row = self.conn.execute(
            "SELECT c.id, c.name, c.status, c.client_id, c.created_at, t.selected_at FROM link_targets t"
            " JOIN clients c ON c.id = t.client_ref WHERE t.device_id = ?", (device_id,)).fetchone()
        return LinkTarget(device_id, Client(*row[:5]), row[5]) if row else None

    def set_link_target(self, device_id: int, client_ref: int, now: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO link_targets VALUES (?, ?, ?)", (device_id, client_ref, now))

    def clear_link_target(self, device_id: int) -> None:
        self.conn.execute("DELETE FROM link_targets WHERE device_id = ?", (device_id,))

    def prune_tombstones(self, business_id: int, deleted_before: str) -> int:
        rows = self.conn.execute("DELETE FROM roster_tombstones WHERE business_id = ? AND deleted_at < ? RETURNING seq",
                                 (business_id, deleted_before)).fetchall()
        if rows:
            self.conn.execute("UPDATE businesses SET roster_horizon = max(roster_horizon, ?) WHERE id = ?",
                              (max(row[0] for row in rows), business_id))
        return len(rows)


def _id_taken(client_id: str | None) -> Conflict:
    return Conflict("id_taken", f"client ID {client_id!r} already belongs to another client")


def _json_list(values: set[int]) -> str:
    return "[" + ",".join(str(int(v)) for v in values) + "]"
