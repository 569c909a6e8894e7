"""Inside the guest: virtual scanners on /dev/uinput and tagd run as a real subprocess, watched line by line."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import evdev
from evdev import ecodes

from daemon.keys import key_events_for

REPO = Path(__file__).resolve().parents[2]
TAGD = [sys.executable, "-m", "daemon.cli"]
SCANNER_NAME = "tagd-vm scanner"
HONEYWELL = 0x0C2E  # Hand Held Products / Honeywell: a real scanner vendor, so discovery treats it as one
ATTACH_TIMEOUT_S = 30.0  # the first start of Python in a fresh guest reads every module over 9p


class VirtualScanner:
    """A USB HID barcode scanner as the kernel sees one: a keyboard on /dev/uinput that types in real time."""

    def __init__(self, number: int = 1, layout: str = "us", variant: str = ""):
        self.name, self.layout, self.variant = f"{SCANNER_NAME} {number}", layout, variant
        self.ui = evdev.UInput({ecodes.EV_KEY: list(range(1, 128))}, name=self.name, vendor=HONEYWELL,
                               product=0x0B00 + number, version=1, bustype=ecodes.BUS_USB)
        self.path = self.ui.device.path  # the event node, e.g. /dev/input/event3
        self.ui.device.close()  # the test is not a reader of its own device unless it says so

    def type(self, text: str, gap_ms: float = 4.0, terminator: str | None = "Return") -> None:
        """Send `text` as the scanner would, at `gap_ms` between key presses, paced in real time."""
        events = key_events_for(text, self.layout, self.variant, gap_ms=gap_ms, terminator=terminator)
        started = time.monotonic()
        for event in events:
            delay = started + event.timestamp() - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if event.type == ecodes.EV_SYN:
                self.ui.syn()
            else:
                self.ui.write(event.type, event.code, event.value)

    def unplug(self) -> None:
        self.ui.close()

    def __enter__(self) -> "VirtualScanner":
        return self

    def __exit__(self, *exc) -> None:
        self.unplug()


class Tagd:
    """`tagd <args>` as a subprocess; stdout lines (JSON scans) and stderr lines (log) are collected as they come."""

    def __init__(self, *args: str, config: Path | None = None, env: dict | None = None):
        command = [*TAGD, *args] + (["--config", str(config)] if config else [])
        self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env={**os.environ, **(env or {})})
        self.scans: queue.Queue[dict] = queue.Queue()
        self.log: queue.Queue[tuple[float, str]] = queue.Queue()
        self.log_lines: list[str] = []
        threading.Thread(target=self._pump, args=(self.process.stdout, self._scan), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.process.stderr, self._log), daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _pump(self, stream, handle) -> None:
        for line in stream:
            handle(line.rstrip("\n"))

    def _scan(self, line: str) -> None:
        self.scans.put(json.loads(line))

    def _log(self, line: str) -> None:
        self.log_lines.append(line)
        self.log.put((time.monotonic(), line))

    def next_scan(self, timeout: float = 5.0) -> dict:
        try:
            return self.scans.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no scan within {timeout} s; tagd log:\n{self.transcript()}") from None

    def wait_log(self, pattern: str, timeout: float = ATTACH_TIMEOUT_S) -> float:
        """Monotonic time at which a log line matching `pattern` arrived (lines before it are consumed)."""
        return self._wait_line(pattern, timeout)[0]

    def _wait_line(self, pattern: str, timeout: float) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                at, line = self.log.get(timeout=left)
            except queue.Empty:
                break
            if re.search(pattern, line):
                return at, line
        raise AssertionError(f"no log line matching {pattern!r} within {timeout} s; tagd log:\n{self.transcript()}")

    def wait_all(self, *patterns: str, timeout: float = ATTACH_TIMEOUT_S) -> float:
        """Wait until a log line has matched each of `patterns`, in any order; the time the last one came."""
        waiting, at = list(patterns), 0.0
        while waiting:
            at, line = self._wait_line("|".join(f"(?:{p})" for p in waiting), timeout)
            waiting = [p for p in waiting if not re.search(p, line)]
        return at

    def wait_attached(self, *paths: str, timeout: float = ATTACH_TIMEOUT_S) -> float:
        """Wait until every one of `paths` is attached, in any order; the time the last one was."""
        return self.wait_all(*(rf"attached {re.escape(p)} " for p in paths), timeout=timeout)

    def open_fds(self) -> list[str]:
        """What the process holds open right now (targets of /proc/PID/fd)."""
        fd_dir = f"/proc/{self.pid}/fd"
        targets = []
        for fd in os.listdir(fd_dir):
            try:
                targets.append(os.readlink(f"{fd_dir}/{fd}"))
            except FileNotFoundError:
                pass  # closed while listing
        return sorted(targets)

    def transcript(self) -> str:
        return "\n".join(self.log_lines[-40:])

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def hid_scanner_config(name: str = "scanners", pattern: str = f"{SCANNER_NAME}*", layout: str = "us",
                       extra: str = "") -> str:
    return (f'[[scanners]]\ntype = "hid"\nname = "{name}"\nname_pattern = "{pattern}"\nlayout = "{layout}"\n'
            f"{extra}")
