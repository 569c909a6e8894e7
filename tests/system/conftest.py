"""The VM tier's machinery: on the host, boot one guest for the whole run and mirror its results test by test.

With --run-system on the host, every collected test of this directory (except those marked `boots_vm`, which
run on the host and boot guests of their own) is replaced by a stand-in with the same node id. The first
stand-in to run builds the guest's assets if needed and boots the guest once; the guest runs pytest on exactly
those node ids, with the project's interpreter and this checkout (both reach the guest through the shared root),
and reports each phase through guest_report.py. Each stand-in then passes, fails (with the guest's traceback and
captured output) or skips as its test did in the guest.

Where qemu or the build tools are missing, the tier is skipped, saying which; where the guest cannot boot or
breaks down, every test fails with what the host saw of the boot.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .assets import AssetError, ensure_assets
from .vm import GUEST_SHARE, GuestRun, missing_tools

HERE = Path(__file__).resolve().parent
GUEST_ENV = "TAGD_SYSTEM_GUEST"
IN_GUEST = os.environ.get(GUEST_ENV) == "1"
GUEST_TIMEOUT_S = float(os.environ.get("TAGD_SYSTEM_TIMEOUT_S", "1200"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "boots_vm: runs on the host and boots guests of its own (power cut)")


def in_guest() -> bool:
    return IN_GUEST


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IN_GUEST or not config.getoption("--run-system"):
        return
    mirrored = [i for i in items if _runs_in_guest(i)]
    if not mirrored:
        return
    session = GuestSession(config.rootpath, [i.nodeid for i in mirrored])
    items[:] = [GuestOutcome.mirror(i, session) if _runs_in_guest(i) else i for i in items]


def _runs_in_guest(item: pytest.Item) -> bool:
    return HERE in Path(item.path).resolve().parents and item.get_closest_marker("boots_vm") is None


@dataclass
class GuestSession:
    """The one boot that runs every mirrored test; started by the first stand-in, remembered for the rest."""

    rootdir: Path
    nodeids: list[str]
    outcomes: dict[str, dict] | None = None
    problem: str | None = None  # why there are no outcomes (guest failed to boot, timed out, ...)
    skip_reason: str | None = None
    notes: list[str] = field(default_factory=list)

    def outcome(self, nodeid: str) -> dict | None:
        if self.outcomes is None and self.problem is None and self.skip_reason is None:
            self._run()
        if self.skip_reason:
            pytest.skip(self.skip_reason)
        return (self.outcomes or {}).get(nodeid)

    def _run(self) -> None:
        missing = missing_tools()
        if missing:
            self.skip_reason = (f"VM tier: {', '.join(missing)} not installed "
                                "(apt-get install qemu-system-x86 cpio e2fsprogs make gcc-12)")
            return
        try:
            assets = ensure_assets(log=self.notes.append)
        except AssetError as exc:
            self.problem = f"cannot build the guest's kernel and initramfs: {exc}"
            return
        result = GuestRun(assets, self.script(), timeout_s=GUEST_TIMEOUT_S).run()
        self.outcomes = _read_outcomes(result.read("results.jsonl"))
        if result.exit_status is None or not self.outcomes:
            self.problem = f"{result.diagnosis()}\n\nguest pytest output:\n{result.read('output.txt')[-8000:]}"
        self.notes.append(f"guest run: {result.seconds:.0f} s, pytest exit status {result.exit_status}")

    def script(self) -> str:
        """The guest's pytest run: this interpreter, this checkout, these node ids."""
        arguments = [sys.executable, "-m", "pytest", "--run-system", "-p", "no:cacheprovider",
                     "-p", "tests.system.guest_report", "-rA", "-v", "--durations=0", *self.nodeids]
        return (f"cd {shlex.quote(str(self.rootdir))}\nexport {GUEST_ENV}=1 PYTHONDONTWRITEBYTECODE=1 "
                f"TAGD_SYSTEM_RESULTS={GUEST_SHARE}/results.jsonl\n{shlex.join(arguments)}\n")


def _read_outcomes(text: str) -> dict[str, dict]:
    """Per node id: the first phase that did not pass, else the call phase."""
    outcomes: dict[str, dict] = {}
    for line in text.splitlines():
        report = json.loads(line)
        current = outcomes.get(report["nodeid"])
        if current is None or (current["outcome"] == "passed" and report["outcome"] != "passed"):
            outcomes[report["nodeid"]] = report
    return outcomes


class GuestFailure(Exception):
    """A test failed in the guest; the message is the guest's own report."""


class GuestOutcome(pytest.Item):
    """Stands in on the host for a test that runs in the guest."""

    @classmethod
    def mirror(cls, item: pytest.Item, session: GuestSession) -> "GuestOutcome":
        outcome = cls.from_parent(item.parent, name=item.name)
        outcome.guest = session
        outcome.own_markers.extend(item.own_markers)
        outcome.keywords.update(item.keywords)
        return outcome

    def runtest(self) -> None:
        report = self.guest.outcome(self.nodeid)
        for note in self.guest.notes:
            self.add_report_section("call", "vm", note)
        if report is None:
            raise GuestFailure(self.guest.problem or "the guest did not run this test")
        if report["outcome"] == "skipped":
            pytest.skip(f"in the guest: {report['text']}")
        if report["outcome"] == "failed":
            raise GuestFailure(f"failed in the guest ({report['when']}):\n{report['text']}")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, GuestFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"[guest] {self.name}"
