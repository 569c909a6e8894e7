"""Power cut: the guest is killed (SIGKILL to qemu) in the middle of a scan burst, booted again, and checked.

Runs on the host and boots its own guests (power_cut_guest.py is the guest's half). The reference server, its
database and tagd's state all live on a virtio disk (ext4 made here with mkfs.ext4), and all traffic stays on the
guest's loopback. What the guest acknowledged reaches the host through a virtio port written straight to a file,
so the host knows, when it pulls the plug, which scans a member was told were recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .assets import AssetError, ensure_assets
from .vm import GUEST_SHARE, GuestRun, kill, missing_tools, shell_quote

pytestmark = [pytest.mark.system, pytest.mark.boots_vm]

REPO = Path(__file__).resolve().parents[2]
STATE = "/mnt/state"
BOOT_TIMEOUT_S = 300.0


@pytest.fixture(scope="module")
def assets():
    missing = missing_tools()
    if missing:
        pytest.skip(f"VM tier: {', '.join(missing)} not installed")
    try:
        return ensure_assets()
    except AssetError as exc:
        pytest.fail(f"cannot build the guest's kernel and initramfs: {exc}")


@pytest.fixture
def state_disk(tmp_path) -> Path:
    image = tmp_path / "state.img"
    with open(image, "wb") as file:
        file.truncate(128 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "tagd-state", str(image)], check=True)
    return image


def guest_script(*arguments: str) -> str:
    python = shell_quote(sys.executable)  # the interpreter running this test: the guest shares the host's root
    return (f"set -e\nmkdir -p {STATE}\nmount /dev/vda {STATE}\ncd {shell_quote(str(REPO))}\n"
            f"{python} -m tests.system.power_cut_guest {shell_quote(*arguments)}\n")


@pytest.mark.parametrize("cut_after", [("ACK", 1), ("TYPING", 6), ("ACK", 14)],
                         ids=["after-the-first-ack", "while-a-scan-is-recorded", "deep-in-the-burst"])
def test_acknowledged_scans_survive_a_power_cut_exactly_once(assets, state_disk, tmp_path, cut_after):
    acknowledged, typed = cut_during_burst(assets, state_disk, tmp_path / "port.txt", cut_after)
    report = boot_and_verify(assets, state_disk)
    assert report["integrity"] == {"server.db": "ok", "tagd/outbox.db": "ok", "tagd/roster.db": "ok"}
    assert report["settled"] and report["queue_depth"] == 0 and report["dead_letters"] == 0, report
    checkins = report["checkins"]
    assert all(checkins.count(member) == 1 for member in acknowledged), (acknowledged, checkins)
    assert set(checkins) <= set(typed), "a check-in for a scan that never happened"
    assert len(checkins) == len(set(checkins)), f"a scan checked in twice: {checkins}"


def cut_during_burst(assets, disk: Path, port: Path, cut_after: tuple[str, int]) -> tuple[list[str], list[str]]:
    """Boot, let the burst run until the `cut_after` event, SIGKILL qemu. The ACKed and TYPED ids seen by then."""
    run = GuestRun(assets, guest_script("burst", STATE), timeout_s=BOOT_TIMEOUT_S, disks=(disk,), port_file=port)
    process = run.start()
    word, count = cut_after
    try:
        while _count(port, word) < count:
            if process.poll() is not None or time.monotonic() - run.started > BOOT_TIMEOUT_S:
                result = run.finish(process)
                pytest.fail(f"the burst ended before the cut:\n{result.read('output.txt')}\n{result.diagnosis()}")
            time.sleep(0.01)
    finally:
        kill(process)
    return _said(port, "ACK"), _said(port, "TYPING")


def _said(port: Path, word: str) -> list[str]:
    """The ids of the complete `word id` lines the guest wrote to the port (a line cut off by the kill is not)."""
    text = port.read_text() if port.exists() else ""
    complete = text[: text.rfind("\n") + 1].splitlines()
    return [line.split()[1] for line in complete if line.startswith(f"{word} ")]


def _count(port: Path, word: str) -> int:
    return len(_said(port, word))


def boot_and_verify(assets, disk: Path) -> dict:
    run = GuestRun(assets, guest_script("verify", STATE, f"{GUEST_SHARE}/report.json"), timeout_s=BOOT_TIMEOUT_S,
                   disks=(disk,))
    result = run.run()
    if result.exit_status != 0:
        pytest.fail(f"verification failed in the guest:\n{result.read('output.txt')}\n{result.diagnosis()}")
    return json.loads(result.read("report.json"))
