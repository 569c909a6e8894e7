"""Roster lookup cost on the scan path at a given roster size (default 1M IDs), and the full sync that built it.

Usage: python bench/roster_lookup.py [DIRECTORY] [SIZE]
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from daemon.roster import RosterCache


def build(cache: RosterCache, size: int, page: int = 1000) -> float:
    start = time.perf_counter()
    with cache.begin_full_sync() as sync:
        for first in range(0, size, page):
            sync.add((f"ID{n:08d}", "active" if n % 7 else "inactive") for n in range(first, min(first + page, size)))
        sync.commit("1", None, time.time())
    return time.perf_counter() - start


def lookups(cache: RosterCache, size: int, count: int = 100_000) -> list[float]:
    ids = [f"id{random.randrange(size * 2):08d}" for _ in range(count)]  # half known, half unknown
    timings = []
    for client_id in ids:
        start = time.perf_counter()
        cache.lookup(client_id)
        timings.append(time.perf_counter() - start)
    return timings


def main() -> None:
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    with tempfile.TemporaryDirectory(dir=sys.argv[1] if len(sys.argv) > 1 else None) as directory:
        with RosterCache(str(Path(directory) / "roster.db")) as cache:
            seconds = build(cache, size)
            cuts = statistics.quantiles(lookups(cache, size), n=100)
    print(f"full sync of {size} IDs: {seconds:.1f} s; lookup p50 {cuts[49] * 1e6:.1f} us, "
          f"p99 {cuts[98] * 1e6:.1f} us")


if __name__ == "__main__":
    main()
