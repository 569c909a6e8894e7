"""How long the durability point takes on this disk: Outbox.record() latency (one INSERT + fsync'd commit).

Usage: python bench/outbox_record_latency.py [DIRECTORY] [COUNT]   (DIRECTORY defaults to a temp dir: pass the
state directory's filesystem, e.g. /var/lib/tagd, to measure the disk the reader really writes to.)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from daemon.outbox import CheckinEvent, Outbox


def measure(directory: str, count: int) -> list[float]:
    with Outbox(str(Path(directory) / "outbox-bench.db")) as outbox:
        timings = []
        for n in range(count):
            event = CheckinEvent.new(f"ID{n:06d}", "bench", time.time(), "accepted", False, "accepted")
            start = time.perf_counter()
            outbox.record(event)
            timings.append(time.perf_counter() - start)
    return timings


def main() -> None:
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    with tempfile.TemporaryDirectory(dir=sys.argv[1] if len(sys.argv) > 1 else None) as directory:
        timings = sorted(measure(directory, count))
    cuts = statistics.quantiles(timings, n=100)
    print(f"Outbox.record() x{count} in {directory}: p50 {cuts[49] * 1e3:.2f} ms, p99 {cuts[98] * 1e3:.2f} ms,"
          f" max {timings[-1] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
