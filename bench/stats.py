"""Small measuring helpers shared by the bench's processes."""

from __future__ import annotations

import math
import resource


def summary(samples: list[float], scale: float = 1.0) -> dict:
    """p50, p99 and max (nearest rank) of `samples`, multiplied by `scale` (e.g. 1e3 for s -> ms)."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * scale

    return {"p50": rank(0.50), "p99": rank(0.99), "max": ordered[-1] * scale, "count": len(ordered)}


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """The numeric `kB` and counter fields of /proc/PID/status (VmRSS, VmHWM, voluntary_ctxt_switches, ...)."""
    fields = {}
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            key, _, value = line.partition(":")
            parts = value.split()
            if parts and parts[0].isdigit():
                fields[key] = int(parts[0])
    return fields


def peak_rss_kb() -> int:
    """This process's peak resident set (ru_maxrss is in kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
