"""Status: the running daemon's view (status.json, written when something changes) and `tagd status`.

`tagd status` combines status.json (scanners, server, last sync: what only the daemon knows) with counts read
straight from the databases through read-only connections (queue depth, dead letters, roster size), so it is true
even when the daemon is not running.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from . import sqlite_util as db

STATUS_FILE = "status.json"


def status_path(state_dir: str) -> str:
    return os.path.join(state_dir, STATUS_FILE)


def write_status(state_dir: str, status: dict[str, Any]) -> None:
    """Atomic (write a temporary file, rename) but not fsynced: status is rebuilt at every start."""
    path = status_path(state_dir)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as file:
        json.dump(status, file, indent=1, sort_keys=True)
    os.replace(tmp, path)


def read_status(state_dir: str) -> dict[str, Any] | None:
    try:
        with open(status_path(state_dir)) as file:
            status = json.load(file)
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def daemon_alive(status: dict[str, Any] | None) -> bool:
    pid = (status or {}).get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, but belongs to another user (the service user)
    return True


def _count(path: str, sql: str) -> Any:
    if not os.path.exists(path):
        return None
    try:
        conn = db.connect_reader(path)
    except Exception:
        return None
    try:
        return conn.execute(sql).fetchone()[0]
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def collect(state_dir: str, clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """Everything `tagd status` shows, as one JSON-ready dict."""
    runtime = read_status(state_dir) or {}
    outbox, roster = os.path.join(state_dir, "outbox.db"), os.path.join(state_dir, "roster.db")
    oldest = _count(outbox, "SELECT MIN(scanned_at) FROM pending")
    synced_at = _count(roster, "SELECT synced_at FROM sync_state")
    return {
        "running": daemon_alive(runtime),
        "pid": runtime.get("pid"),
        "state_dir": state_dir,
        "roster_size": _count(roster, "SELECT size FROM sync_state"),
        "roster_synced_at": synced_at,
        "roster_age_s": None if synced_at is None else round(clock() - synced_at, 1),
        "last_sync": runtime.get("last_sync"),
        "queue_depth": _count(outbox, "SELECT COUNT(*) FROM pending"),
        "oldest_queued_at": oldest,
        "oldest_queued_age_s": None if oldest is None else round(clock() - oldest, 1),
        "dead_letters": _count(outbox, "SELECT COUNT(*) FROM dead_letters"),
        "scanners": runtime.get("scanners", {}),
        "server": runtime.get("server", {}),
        "decision_policy": runtime.get("decision_policy"),
        "updated_at": runtime.get("updated_at"),
    }


def format_status(s: dict[str, Any]) -> str:
    def age(seconds: Any) -> str:
        if seconds is None:
            return "never"
        return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"

    server = s["server"] or {}
    reachable = {True: "reachable", False: "unreachable", None: "unknown"}[server.get("reachable")]
    if server.get("auth_rejected"):
        reachable = f"TOKEN REJECTED ({server['auth_rejected']})"
    scanners = ", ".join(f"{name}: {v.get('state')}" for name, v in s["scanners"].items()) or "none"
    rows = [
        ("daemon", f"running (pid {s['pid']})" if s["running"] else "not running"),
        ("server", f"{server.get('url') or 'none configured'} · {reachable}"),
        ("decision policy", s["decision_policy"] or "-"),
        ("roster", f"{s['roster_size'] if s['roster_size'] is not None else '-'} IDs, synced "
                   f"{age(s['roster_age_s'])}"),
        ("queue", f"{s['queue_depth'] if s['queue_depth'] is not None else '-'} check-ins waiting"
                  + (f", oldest {age(s['oldest_queued_age_s'])}" if s["oldest_queued_at"] else "")),
        ("dead letters", str(s["dead_letters"] if s["dead_letters"] is not None else "-")),
        ("scanners", scanners),
    ]
    return "".join(f"{label:16} {value}\n" for label, value in rows)
