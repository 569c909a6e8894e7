"""The systemd notification protocol (sd_notify(3)), as a thin adapter over systemd-python.

Outside systemd (no $NOTIFY_SOCKET) every message is dropped, so the daemon calls the same methods either way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

log = logging.getLogger("tagd.systemd")

Send = Callable[[str], bool]


def watchdog_period_s(environ: Mapping[str, str], pid: int) -> float | None:
    """The watchdog timeout systemd set for this process ($WATCHDOG_USEC), or None when there is none for us.

    $WATCHDOG_PID names the process the timeout is meant for; a child that inherited the variables must not ping.
    """
    usec, owner = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if owner and (not owner.isdigit() or int(owner) != pid):
        return None
    return int(usec) / 1_000_000


def _systemd_send(message: str) -> bool:
    from systemd import daemon

    return daemon.notify(message)


class Notifier:
    """READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1 to the service manager, when there is one."""

    def __init__(self, environ: Mapping[str, str] = os.environ, send: Send = _systemd_send):
        self.enabled = bool(environ.get("NOTIFY_SOCKET"))
        self.watchdog_s = watchdog_period_s(environ, os.getpid()) if self.enabled else None
        self._send = send
        self._status: str | None = None
        self._failed = False

    def ready(self, status: str) -> None:
        self._status = status
        self._notify(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        """STATUS=, sent only when it changed (the service manager keeps the last one)."""
        if status != self._status:
            self._status = status
            self._notify(f"STATUS={status}")

    def watchdog(self) -> None:
        self._notify("WATCHDOG=1")

    def reloading(self) -> None:
        self._notify("RELOADING=1\nSTATUS=reloading the configuration")
        self._status = None

    def stopping(self) -> None:
        self._notify("STOPPING=1\nSTATUS=stopping")

    def _notify(self, message: str) -> None:
        if not self.enabled:
            return
        if not self._send(message) and not self._failed:
            self._failed = True  # say it once: the service manager will notice the silence itself
            log.warning("cannot notify the service manager ($NOTIFY_SOCKET)")
