"""The guest's half of the power-cut test (test_power_cut.py boots the guest and pulls the plug).

`burst STATE`: the reference server (database on the persistent disk) on the guest's loopback, `tagd run` with
its state on the same disk, and a uinput scanner scanning one member after another. Each scan is announced on
the virtio port before it is typed (`TYPING id`) and reported once the member has been shown WELCOME (`ACK id`):
tagd gives feedback only after the check-in is durably recorded, so an ACK is a promise the host holds it to.
The port's host side is an unbuffered file, so what the host reads was said before the cut.

`verify STATE`: after the reboot, `PRAGMA integrity_check` on every database first, then the server and tagd
again until delivery has settled; writes report.json (integrity, the server's check-ins, tagd's queue).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

from .guest_tools import Tagd, VirtualScanner, hid_scanner_config

PORT = "/dev/virtio-ports/tagd"
SERVER_PORT = 8080
SETTLE_S = 5.0  # delivery has settled when the server's check-ins stop changing for this long
SETTLE_LIMIT_S = 120.0


def burst(state: Path) -> None:
    from server.demo import seed_demo

    state.mkdir(parents=True, exist_ok=True)
    seed = seed_demo(str(state / "server.db"))
    server = _start_server(state)
    _enrol(seed["enrolment_code"]["code"], server.url, state / "token")
    config = _write_config(state, server.url)
    _durable_write(state / "seed.json", json.dumps(seed))
    members = [c["client_id"] for c in seed["clients"] if c["status"] == "active"]
    with open(PORT, "w", buffering=1) as port, VirtualScanner() as scanner:
        tagd = Tagd("run", config=config)
        tagd.wait_all(r"roster full sync", rf"attached {scanner.path} ")
        as_logged = _log_form(state / "tagd")
        port.write("READY\n")
        for member in members:
            port.write(f"TYPING {member}\n")
            scanner.type(member)
            tagd.wait_log(rf"WELCOME.*\b{as_logged(member)}\b", timeout=30)
            port.write(f"ACK {member}\n")
        port.write("DONE\n")
        time.sleep(3600)  # the host cuts the power before this ends


def _log_form(tagd_state: Path):
    """How tagd's log names a client ID: a keyed hash under the device's key (daemon.privacy)."""
    from daemon import privacy

    privacy.set_key(privacy.load_or_create_key(str(tagd_state / "hash.key")))
    return privacy.client_hash


def verify(state: Path, report: Path) -> None:
    integrity = {name: _integrity(state / name) for name in ("server.db", "tagd/outbox.db", "tagd/roster.db")}
    server = _start_server(state)
    tagd = Tagd("run", config=state / "tagd.toml")
    settled = _wait_for_settled_delivery(state)
    tagd.stop()
    server.stop()
    from daemon.status import collect

    queue = collect(str(state / "tagd"))
    checkins = [row[0] for row in _query(state / "server.db", "SELECT client_id FROM checkins ORDER BY id")]
    report.write_text(json.dumps({"integrity": integrity, "checkins": checkins, "settled": settled,
                                  "queue_depth": queue["queue_depth"], "dead_letters": queue["dead_letters"],
                                  "tagd_log": tagd.log_lines[-30:]}, indent=2))


def _start_server(state: Path):
    from server.embedded import start_server

    return start_server(str(state / "server.db"), port=SERVER_PORT)


def _enrol(code: str, url: str, token_file: Path) -> None:
    from daemon.api_client import ServerClient
    from daemon.settings import ServerSettings

    with ServerClient(ServerSettings(url=url, token_file=str(token_file))) as client:
        token = client.enrol(code, "vm-reader", "power-cut reader").token
    _durable_write(token_file, token + "\n")


def _write_config(state: Path, url: str) -> Path:
    text = (f'[server]\nurl = "{url}"\ntoken_file = "{state}/token"\n\n[state]\ndir = "{state}/tagd"\n\n'
            '[sync]\njitter_s = 0.0\n\n[delivery]\nbatch_size = 5\nbackoff_initial_s = 0.2\nbackoff_max_s = 1.0\n\n'
            + hid_scanner_config())
    _durable_write(state / "tagd.toml", text)
    return state / "tagd.toml"


def _durable_write(path: Path, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _integrity(path: Path) -> str:
    if not path.exists():
        return "missing"
    return "; ".join(row[0] for row in _query(path, "PRAGMA integrity_check"))


def _query(path: Path, sql: str) -> list[tuple]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def _wait_for_settled_delivery(state: Path) -> bool:
    """True once tagd's queue is empty and the server's check-ins have not changed for SETTLE_S."""
    from daemon.status import store_counts

    deadline = time.monotonic() + SETTLE_LIMIT_S
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        count = _query(state / "server.db", "SELECT count(*) FROM checkins")[0][0]
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= SETTLE_S and store_counts(str(state / "tagd"))["queue_depth"] == 0:
            return True
        time.sleep(0.5)
    return False


if __name__ == "__main__":
    if sys.argv[1] == "burst":
        burst(Path(sys.argv[2]))
    else:
        verify(Path(sys.argv[2]), Path(sys.argv[3]))
