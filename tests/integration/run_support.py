"""Shared set-up for the `tagd run` tests: the real reference server on loopback with an enrolled reader, settings
for an in-process Reader, a `tagd run` subprocess fed through a pipe, a forwarding proxy that injects faults only
where the real server cannot misbehave, and polling with deadlines."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

import requests

from daemon.api_client import ServerClient
from daemon.decision import Decision
from daemon.settings import (DeliverySettings, ScanSettings, ServerSettings, Settings, StateSettings,
                             StdinScannerSettings, SyncSettings)
from drivers.fake import FakeScanner
from server import service
from server.demo import seed_demo
from server.embedded import ServerHandle, start_server
from server.rules import format_time

from .fault_http import FaultHandler, FaultServer

TAGD = [sys.executable, "-m", "daemon.cli"]
MEMBER, INACTIVE = "M1001", "M1007"  # from server.demo: M1001..M1036 are members, M1007 is inactive
DEMO_ROSTER_SIZE = 36


# --- waiting ----------------------------------------------------------------------------------------------------

def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)
    return value


async def until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.01)
    return value


# --- the server side --------------------------------------------------------------------------------------------

class Site:
    """The reference server with the demo business, and this reader enrolled: `url`, `token_file`, `checkins()`."""

    def __init__(self, root: str):
        self.db = os.path.join(root, "server.db")
        self.seed = seed_demo(self.db)
        self.business_id = self.seed["business_id"]
        self.handle: ServerHandle | None = start_server(self.db)
        self.url = self.handle.url
        self.port = int(self.url.rsplit(":", 1)[1])
        with ServerClient(ServerSettings(url=self.url)) as client:
            enrolment = client.enrol(self.seed["enrolment_code"]["code"], "hw-test", "test reader")
        self.token, self.device_id = enrolment.token, enrolment.device_id
        self.token_file = os.path.join(root, "token")
        with open(self.token_file, "w") as file:
            file.write(self.token + "\n")

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.stop()
            self.handle = None

    def restart(self) -> None:
        """Back on the same port, from the same database (an outage ends)."""
        self.stop()
        self.handle = start_server(self.db, port=self.port)

    def transaction(self):
        """A write transaction on the running server's own store (its one writer connection)."""
        return self.handle.app.extensions["tagd"].store.transaction()

    def now(self) -> str:
        return format_time(datetime.now(timezone.utc))

    def add_clients(self, count: int, prefix: str = "N", status: str = "active") -> list[str]:
        ids = [f"{prefix}{number:06d}" for number in range(count)]
        with self.transaction() as tx:
            for client_id in ids:
                tx.add_client(self.business_id, f"client {client_id}", status, client_id, self.now())
        return ids

    def set_status(self, client_id: str, status: str) -> None:
        with self.transaction() as tx:
            client = tx.client_by_key(self.business_id, client_id.lower())
            tx.update_client(self.business_id, client.ref, client.name, status)

    def expire_cursors(self) -> str:
        """Take an ID away and forget its tombstone at once: every cursor from before now answers 410."""
        victim = next(c["client_id"] for c in self.seed["clients"] if c["client_id"] == "M1036")
        with self.transaction() as tx:
            client = tx.client_by_key(self.business_id, victim.lower())
            service.clear_id(tx, self.business_id, client.ref, self.now())
            future = format_time(datetime.now(timezone.utc) + timedelta(days=1))
            assert tx.prune_tombstones(self.business_id, future) == 1
        return victim

    def office(self, method: str, path: str, **kwargs) -> requests.Response:
        """A back-office request as the front desk's staff makes it."""
        with requests.Session() as session:
            session.trust_env = False
            return session.request(method, f"{self.url}{path}", timeout=10,
                                   headers={"Authorization": f"Bearer {self.seed['staff_token']}"}, **kwargs)

    def checkins(self) -> list[dict]:
        """The server's check-in list (GET /v1/checkins as the staff sees it), in the order it recorded them."""
        items, after = [], 0
        with requests.Session() as session:
            session.trust_env = False
            while after is not None:
                reply = session.get(f"{self.url}/v1/checkins", params={"after": after, "limit": 500},
                                    headers={"Authorization": f"Bearer {self.seed['staff_token']}"}, timeout=10)
                assert reply.status_code == 200, reply.text
                page = reply.json()
                items += page["items"]
                after = page["next_after"]
        return items


def wire_time(at: float) -> str:
    """A scan time as the server lists it."""
    return format_time(datetime.fromtimestamp(at, timezone.utc))


# --- the reader side, in process --------------------------------------------------------------------------------

class RecordingFeedback:
    """The feedback port, keeping what the member would have seen."""

    def __init__(self):
        self.decisions: list[Decision] = []
        self.faults: list[str] = []
        self.signals: list[str] = []  # link mode's signals (link-mode-on, linked, ...)

    def show(self, decision: Decision) -> None:
        self.decisions.append(decision)

    def fault(self, message: str) -> None:
        self.faults.append(message)

    def signal(self, name: str) -> None:
        self.signals.append(name)

    def outcomes(self) -> list[tuple[str, str, bool]]:
        return [(d.scan.client_id, d.outcome.value, d.offline) for d in self.decisions]


def reader_settings(state_dir: str, url: str = "", token_file: str = "", **sections) -> Settings:
    """Small delays everywhere: first sync at once, retries within a fraction of a second."""
    settings = Settings(
        source=os.path.join(state_dir, "tagd.toml"), scanners=(StdinScannerSettings(name="fake"),),
        scan=ScanSettings(debounce_seconds=2.0),
        server=ServerSettings(url=url, token_file=token_file, connect_timeout_s=1.0, read_timeout_s=5.0),
        state=StateSettings(dir=state_dir), sync=SyncSettings(interval_s=300.0, jitter_s=0.0, page_size=1000),
        delivery=DeliverySettings(batch_size=20, backoff_initial_s=0.05, backoff_max_s=0.2))
    return replace(settings, **sections)


def fake_scanners(settings, sink, on_status) -> FakeScanner:
    return FakeScanner(settings.name, sink, on_status)


# --- the reader side, as a subprocess ---------------------------------------------------------------------------

def config_toml(state_dir: str, url: str, token_file: str, **tables: dict) -> str:
    """A `tagd run` configuration: one stdin scanner, quick sync and delivery; `tables` add or replace keys."""
    base: dict[str, dict] = {
        "logging": {"level": "info"},
        "server": {"url": url, "token_file": token_file, "connect_timeout_s": 1.0, "read_timeout_s": 5.0},
        "state": {"dir": state_dir},
        "scan": {"debounce_seconds": 2.0},
        "sync": {"interval_s": 300.0, "jitter_s": 0.0, "page_size": 1000},
        "delivery": {"batch_size": 20, "backoff_initial_s": 0.05, "backoff_max_s": 0.2},
    }
    for name, keys in tables.items():
        base[name] = {**base.get(name, {}), **keys}
    lines = []
    for name, keys in base.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    lines += ["[[scanners]]", 'type = "stdin"', 'name = "terminal"']
    return "\n".join(lines) + "\n"


class Daemon:
    """`tagd run --feedback terminal` with stdin on a pipe: scans go in, one feedback line per decision comes out.

    A line on stdout means the decision was shown, so (for a check-in) that its record was committed first.
    """

    def __init__(self, config_path: str, log_path: str):
        self.config_path = config_path
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen([*TAGD, "run", "--config", config_path, "--feedback", "terminal"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     env={k: v for k, v in os.environ.items() if k != "TAGD_CONFIG"})
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    def _read_stdout(self) -> None:
        for raw in self.proc.stdout:
            self.lines.append(raw.decode().rstrip("\n"))

    def scan(self, *texts: str) -> None:
        self.proc.stdin.write("".join(f"{text}\n" for text in texts).encode())
        self.proc.stdin.flush()

    def acknowledged(self) -> list[str]:
        """The client IDs of the decisions shown so far, in order ('WELCOME — M1001' → 'M1001')."""
        return [line.split(" — ")[1].split(" · ")[0] for line in list(self.lines) if " — " in line]

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as file:
            return file.read()

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def kill(self) -> None:
        self.proc.kill()
        self.wait()

    def wait(self, timeout: float = 10.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        self._log.close()
        return code

    def stop(self) -> int:
        """SIGTERM, and the exit status."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait()


def tagd_status(config_path: str) -> dict:
    proc = subprocess.run([*TAGD, "status", "--json", "--config", config_path], capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# --- a proxy that injects faults --------------------------------------------------------------------------------

Fault = Callable[[FaultHandler, "Forwarded | None"], None]


@dataclass
class Forwarded:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Hit:
    at: float  # time.monotonic() on arrival
    path: str
    fault: str  # the fault's name, or '' when forwarded untouched


@dataclass
class FaultProxy:
    """In front of the real server: forwards every request, except that a queued fault answers (or mangles the
    answer to) the next request to its path. `forward_first` faults see the real server's reply: the server has
    then recorded the request, only the answer is lost or broken on its way back."""

    target: str
    faults: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    hits: list[Hit] = field(default_factory=list)

    PATHS = ("/v1/device/checkins", "/v1/device/roster", "/v1/device/me")

    def __post_init__(self):
        self.server = FaultServer()
        self.url = self.server.url
        for path in self.PATHS:
            self.server.on(path, self._handle)

    def inject(self, path: str, name: str, fault: Fault, times: int = 1, forward_first: bool = False) -> None:
        for _ in range(times):
            self.faults[path].append((name, fault, forward_first))

    def hits_on(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path == path]

    def close(self) -> None:
        self.server.close()

    def _handle(self, handler: FaultHandler) -> None:
        path = handler.path.split("?")[0]
        name, fault, forward_first = self.faults[path].popleft() if self.faults[path] else ("", None, False)
        self.hits.append(Hit(time.monotonic(), path, name))
        if fault is None:
            send_forwarded(handler, self._forward(handler))
        else:
            fault(handler, self._forward(handler) if forward_first else None)

    def _forward(self, handler: FaultHandler) -> Forwarded:
        return forward(handler, self.target)


def forward(handler: FaultHandler, target: str) -> Forwarded:
    """Pass the request `handler` received on to `target` (the real server) and return its reply, unsent."""
    seen = next(s for s in reversed(handler.server.seen) if s.client_port == handler.client_address[1])
    headers = {k: v for k, v in seen.headers.items()
               if k.lower() in ("authorization", "content-type", "if-none-match", "accept")}
    reply = requests.request(handler.command, target + handler.path, headers=headers, data=seen.body, timeout=10)
    kept = {k: v for k, v in reply.headers.items() if k.lower() in ("content-type", "etag", "retry-after")}
    return Forwarded(reply.status_code, kept, reply.content)


def send_forwarded(handler: FaultHandler, reply: Forwarded) -> None:
    handler.head(reply.status, {**reply.headers, "Content-Length": str(len(reply.body))})
    handler.body(reply.body)


def status_reply(status: int, headers: dict[str, str] | None = None) -> Fault:
    body = json.dumps({"error": {"code": "busy" if status in (429, 503) else "internal", "message": "injected"}})

    def fault(handler: FaultHandler, _: Forwarded | None) -> None:
        send_forwarded(handler, Forwarded(status, {"Content-Type": "application/json", **(headers or {})}, body.encode()))
    return fault


def garbage_reply(content_type: str = "text/html", body: bytes = b"<html>502 Bad Gateway</html>") -> Fault:
    def fault(handler: FaultHandler, _: Forwarded | None) -> None:
        send_forwarded(handler, Forwarded(200, {"Content-Type": content_type}, body))
    return fault
