"""What the figures were measured on: CPU, cores, memory, the disk under the state directory, kernel, versions."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys


def describe(path: str) -> dict[str, str]:
    return {"CPU": _cpu_model(), "Cores": str(os.cpu_count()), "Memory": _memory(), "Disk": _disk(path),
            "Kernel": f"{platform.system()} {platform.release()}", "Python": sys.version.split()[0],
            "SQLite": sqlite3.sqlite_version, "Load average at the start": load()}


def load() -> str:
    """Other work on the machine skews every figure: this tells a reader of the report whether there was any."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min), {fifteen:.2f} (15 min)"


def _cpu_model() -> str:
    fields = _cpuinfo()
    model = fields.get("model name", platform.processor() or "unknown")
    return f"{model} @ {float(fields['cpu MHz']):.0f} MHz" if "cpu MHz" in fields else model


def _cpuinfo() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def _memory() -> str:
    pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return f"{pages * page_size / 2**30:.1f} GiB"


def _disk(path: str) -> str:
    """Device, filesystem and mount options of `path`, and whether the kernel calls the device rotational."""
    try:
        source, fstype, options = subprocess.run(["findmnt", "-no", "SOURCE,FSTYPE,OPTIONS", "--target", path],
                                                 capture_output=True, text=True, check=True).stdout.split()[:3]
    except (OSError, subprocess.CalledProcessError, ValueError):
        return "unknown"
    block = os.path.basename(source)
    vendor = _read(f"/sys/block/{block}/device/vendor")
    model = _read(f"/sys/block/{block}/device/model") or ("virtio block device" if vendor == "0x1af4" else vendor)
    rotational = {"0": "non-rotational", "1": "reported rotational"}.get(_read(f"/sys/block/{block}/queue/rotational"),
                                                                        "")
    details = ", ".join(part for part in (model, rotational, fstype, options) if part)
    return f"{source} ({details})"


def _read(path: str) -> str:
    try:
        with open(path) as file:
            return file.read().strip()
    except OSError:
        return ""
