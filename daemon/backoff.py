"""Retry delays: capped exponential back-off with full jitter, honouring a server's Retry-After. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """`next_delay()` after each failure, `reset()` after a success.

    Full jitter (a uniform draw between 0 and the capped exponential) spreads a fleet of readers that lost the
    server at the same moment, so they do not all come back in step.
    """

    initial_s: float
    max_s: float
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self, retry_after: float | None = None) -> float:
        ceiling = min(self.max_s, self.initial_s * 2 ** min(self.failures, 62))
        self.failures += 1
        delay = self.rng.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_s))  # the server knows best, within our own cap
        return delay

    def reset(self) -> None:
        self.failures = 0
