"""Helpers of the fault suite: counts scaled to the run, a process's resources read from /proc, and a server that
goes down and comes back at random moments."""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from dataclasses import dataclass, field

from daemon.outbox import Outbox
from daemon.status import read_status
from tests.integration.run_support import Site


def scaled(base: float, scale: float, minimum: int = 1) -> int:
    """`base` at the CI scale (1), proportionally more or fewer at another scale, never below `minimum`."""
    return max(minimum, round(base * scale))


# --- a running daemon's state, read without disturbing it ---------------------------------------------------------

def queue_depth(state_dir: str) -> int:
    """The outbox's queue through a read-only connection (never a writer beside the daemon's)."""
    with contextlib.closing(Outbox(os.path.join(state_dir, "outbox.db"), readonly=True)) as outbox:
        return outbox.depth()


def delivered_count(state_dir: str) -> int:
    """Check-ins the outbox has seen answered (its bounded history) or dead-lettered."""
    with contextlib.closing(Outbox(os.path.join(state_dir, "outbox.db"), readonly=True)) as outbox:
        return len(outbox.recent(1_000_000)) + outbox.dead_letter_count()


def daemon_status(state_dir: str) -> dict:
    """The running daemon's own status.json. Not `daemon.status.collect`: before status.json names a live pid,
    collect opens the stores itself, and opening roster.db removes a full sync in progress (roster.db.new)."""
    return read_status(state_dir) or {}


def roster_size(state_dir: str) -> int | None:
    return daemon_status(state_dir).get("stores", {}).get("roster_size")


def last_error(state_dir: str) -> str:
    return daemon_status(state_dir).get("server", {}).get("last_error") or ""


# --- a process's resources ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Resources:
    """One reading of a process: resident memory now and at its peak (KiB), open file descriptors."""

    at: float
    rss_kib: int
    peak_rss_kib: int
    fds: int


def read_resources(pid: int) -> Resources:
    fields = {}
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            key, _, value = line.partition(":")
            fields[key] = value.split()[0] if value.split() else ""
    return Resources(time.monotonic(), int(fields["VmRSS"]), int(fields["VmHWM"]), len(os.listdir(f"/proc/{pid}/fd")))


def reset_peak_rss(pid: int) -> bool:
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM). False where that is refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as file:
            file.write("5")
    except OSError:
        return False
    return True


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


# --- a flapping server --------------------------------------------------------------------------------------------

@dataclass
class Flapper:
    """Stops and restarts the site's server at random moments from a thread, until `stop()` (which leaves it up).

    Each period up lasts `up_s` and each outage `down_s` (ranges, in seconds)."""

    site: Site
    rng: random.Random
    up_s: tuple[float, float] = (0.3, 1.2)
    down_s: tuple[float, float] = (0.2, 0.8)
    outages: int = 0
    _stopping: threading.Event = field(default_factory=threading.Event)
    _down: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def down(self) -> bool:
        return self._down.is_set()

    def start(self) -> Flapper:
        self._thread = threading.Thread(target=self._run, name="flapper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.down:
            self._up()

    def _run(self) -> None:
        while not self._stopping.wait(self.rng.uniform(*self.up_s)):
            self.site.stop()
            self._down.set()
            self.outages += 1
            if self._stopping.wait(self.rng.uniform(*self.down_s)):
                break
            self._up()

    def _up(self) -> None:
        for attempt in range(50):  # the port may still be held for a moment by the closing server
            try:
                self.site.restart()
            except OSError:
                time.sleep(0.1)
                continue
            self._down.clear()
            return
        raise RuntimeError(f"the server could not be restarted on port {self.site.port}")
