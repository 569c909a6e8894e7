"""What tagd currently knows about the server: reachable or not, and whether it still accepts our token."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .errors import AuthRejected, Conflict, CursorExpired, RequestRejected, ServerError

log = logging.getLogger("tagd.server")


class Connectivity:
    """Shared by the scan path (is it offline?), the delivery and roster workers (who learn it) and status."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.reachable: bool | None = None  # None until the first request answered or failed
        self.auth_rejected: str | None = None  # the server's refusal of our token, until a reload
        self.last_ok: float | None = None
        self.last_error: str | None = None
        self._on_back_online: list[Callable[[], None]] = []

    @property
    def offline(self) -> bool:
        """Known to be unreachable. Before the first contact the server is presumed there: marking the first
        scans after a boot 'offline' would claim a failure nobody has seen."""
        return self.reachable is False

    def when_back_online(self, callback: Callable[[], None]) -> None:
        self._on_back_online.append(callback)

    def succeeded(self) -> None:
        was_offline = self.reachable is False
        self.reachable, self.last_ok = True, self.clock()
        if was_offline:
            log.info("server reachable again")
            for callback in self._on_back_online:
                callback()

    def failed(self, error: ServerError) -> None:
        self.last_error = str(error)
        if isinstance(error, AuthRejected):
            self.auth_rejected = str(error)
            self.reachable = True  # it answered: the network is fine, our credentials are not
            return
        if isinstance(error, (RequestRejected, Conflict, CursorExpired)):
            self.reachable = True  # it answered and refused this one request: scans are not decided offline
            return
        if self.reachable is not False:
            log.warning("server unreachable: %s", error)
        self.reachable = False
