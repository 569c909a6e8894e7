"""pytest plugin used inside the guest: one JSON line per test phase, for the host to mirror (see conftest.py)."""

from __future__ import annotations

import json
import os

import pytest

RESULTS = os.environ.get("TAGD_SYSTEM_RESULTS", "/tagd-vm/results.jsonl")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    line = {"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
            "duration": report.duration, "text": _text(report)}
    with open(RESULTS, "a") as results:
        results.write(json.dumps(line) + "\n")
        results.flush()
        os.fsync(results.fileno())


def _text(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return report.longrepr[2]  # the skip reason
    if report.passed:
        return ""
    sections = "".join(f"\n----- {name} -----\n{content}" for name, content in report.sections)
    return report.longreprtext + sections
