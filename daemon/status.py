"""Status: the running daemon's view (status.json, written when something changes) and `tagd status`.

`tagd status` combines status.json (scanners, server, last sync: what only the daemon knows) with counts read
straight from the databases through read-only connections (queue depth, dead letters, roster size), so it is true
even when the daemon is not running.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

from .errors import TagdError

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


def store_counts(state_dir: str) -> dict[str, Any]:
    """Counts read from the databases themselves, for when no daemon is running, through read-only connections
    (a daemon that is just starting, not yet in status.json, may be building its first roster)."""
    from .outbox import Outbox
    from .roster import read_meta

    counts: dict[str, Any] = {}
    outbox_path, roster_path = os.path.join(state_dir, "outbox.db"), os.path.join(state_dir, "roster.db")
    if os.path.exists(outbox_path):
        with contextlib.suppress(TagdError), contextlib.closing(Outbox(outbox_path, readonly=True)) as outbox:
            counts.update(queue_depth=outbox.depth(), oldest_queued_at=outbox.oldest_pending(),
                          dead_letters=outbox.dead_letter_count())
    if os.path.exists(roster_path):
        with contextlib.suppress(TagdError):
            meta = read_meta(roster_path)
            counts.update(roster_size=meta.size, roster_synced_at=meta.synced_at)
    return counts


def collect(state_dir: str, clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """Everything `tagd status` shows, as one JSON-ready dict.

    While the daemon runs, its own status.json is the source (it holds the only writer connections, and opening
    roster.db from here could make a full-sync swap back off); otherwise the databases are read directly.
    """
    runtime = read_status(state_dir) or {}
    running = daemon_alive(runtime)
    counts = runtime.get("stores", {}) if running else store_counts(state_dir)
    synced_at, oldest = counts.get("roster_synced_at"), counts.get("oldest_queued_at")
    return {
        "running": running,
        "pid": runtime.get("pid") if running else None,
        "state_dir": state_dir,
        "roster_size": counts.get("roster_size"),
        "roster_synced_at": synced_at,
        "roster_age_s": None if synced_at is None else round(clock() - synced_at, 1),
        "last_sync": runtime.get("last_sync"),
        "queue_depth": counts.get("queue_depth"),
        "oldest_queued_at": oldest,
        "oldest_queued_age_s": None if oldest is None else round(clock() - oldest, 1),
        "dead_letters": counts.get("dead_letters"),
        "scanners": runtime.get("scanners", {}) if running else {},
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
        ("server", f"{server.get('url') or 'none configured'} · {reachable}"
                   + ("" if s["running"] or not server else " (when last running)")),
        ("decision policy", s["decision_policy"] or "-"),
        ("roster", f"{s['roster_size'] if s['roster_size'] is not None else '-'} IDs, synced "
                   f"{age(s['roster_age_s'])}"),
        ("queue", f"{s['queue_depth'] if s['queue_depth'] is not None else '-'} check-ins waiting"
                  + (f", oldest {age(s['oldest_queued_age_s'])}" if s["oldest_queued_at"] else "")),
        ("dead letters", str(s["dead_letters"] if s["dead_letters"] is not None else "-")),
        ("scanners", scanners),
    ]
    return "".join(f"{label:16} {value}\n" for label, value in rows)
