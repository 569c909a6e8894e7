"""The fault suite's fixtures: its scale, and the figures each test measures.

Every test records what it measured with `figures.put(name, value)`. When $TAGD_FAULT_RESULTS names a file, the
figures of the whole run are written there as JSON at the end (with each test's outcome and duration), which is
how `python -m tests.faults.report` turns a run into docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.conftest import fault_scale

RESULTS_ENV = "TAGD_FAULT_RESULTS"
_results: dict[str, dict] = {}


class Figures:
    """What one test measured, in the order it measured it."""

    def __init__(self, entry: dict):
        self._values: dict = entry.setdefault("figures", {})

    def put(self, name: str, value) -> None:
        self._values[name] = value

    def add(self, name: str, amount: float = 1) -> None:
        self._values[name] = self._values.get(name, 0) + amount

    def __getitem__(self, name: str):
        return self._values[name]


@pytest.fixture(scope="session")
def scale(request) -> float:
    return fault_scale(request.config)


@pytest.fixture
def figures(request) -> Figures:
    return Figures(_results.setdefault(request.node.nodeid, {}))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.nodeid.startswith("tests/faults/"):
        return
    entry = _results.setdefault(report.nodeid, {})
    entry["duration_s"] = round(entry.get("duration_s", 0.0) + report.duration, 2)
    if report.failed:
        entry["outcome"] = "failed"
        entry.setdefault("failure", str(report.longrepr)[-3000:])
    elif report.skipped:
        entry.setdefault("outcome", "skipped")
    elif report.when == "call":
        entry.setdefault("outcome", "passed")


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    document = {"scale": fault_scale(session.config), "finished_at": time.time(),
                "tests": {nodeid: entry for nodeid, entry in _results.items() if "outcome" in entry}}
    with open(path, "w") as file:
        json.dump(document, file, indent=1)
