"""Debounce: the same client ID again within the window is a duplicate, not a new scan. Pure."""

from __future__ import annotations


class Debouncer:
    """Remembers when each ID was last seen; memory holds only IDs seen within the window.

    Each sighting restarts the window, so a tag held in front of the scanner (re-read every half second) counts once.
    IDs compare case-insensitively, like the server's uniqueness rule.
    """

    def __init__(self, window_s: float):
        self.window_s = window_s
        self._last_seen: dict[str, float] = {}

    def is_duplicate(self, client_id: str, at: float) -> bool:
        self._forget_before(at - self.window_s)
        key = client_id.casefold()
        previous = self._last_seen.get(key)
        self._last_seen[key] = at
        return previous is not None and at - previous < self.window_s

    def forget(self, client_id: str) -> None:
        """A tag just linked at this reader: its next scan is a check-in, not a duplicate of the link scan."""
        self._last_seen.pop(client_id.casefold(), None)

    def _forget_before(self, cutoff: float) -> None:
        if len(self._last_seen) < 64:
            return  # pruning a handful of entries costs more than it saves
        self._last_seen = {k: t for k, t in self._last_seen.items() if t >= cutoff}
