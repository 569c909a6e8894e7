"""systemd/tagd.service as CI checks it: `systemd-analyze verify` on the unit rendered as provisioning installs it,
`systemd-analyze security --offline=yes` at an exposure of at most 2.0, and the daemon's own libraries working
under the unit's MemoryDenyWriteExecute=yes (the kernel's PR_SET_MDWE, which systemd ≥ 254 uses for it).

systemd-analyze comes with Debian 12's `systemd` package; without it the unit tests are skipped."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "tagd.service"
PLACEHOLDER = "@TAGD@"
MAX_EXPOSURE = 2.0
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed (Debian: apt install systemd)")


def rendered(tmp_path: Path, text: str | None = None) -> Path:
    """The unit as `tagd provision` installs it: @TAGD@ → the absolute path of the installed tagd command."""
    tagd = Path(sys.executable).with_name("tagd")
    unit = tmp_path / "tagd.service"
    unit.write_text((text or UNIT.read_text()).replace(PLACEHOLDER, str(tagd)))
    return unit


def analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=60)


def exposure(unit: Path) -> float:
    out = analyze("security", "--offline=yes", "--no-pager", str(unit)).stdout
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", out)
    assert match, out
    return float(match.group(1))


def test_the_shipped_unit_has_one_placeholder_for_the_tagd_command():
    text = UNIT.read_text()
    settings = [line for line in text.splitlines() if not line.startswith("#")]
    assert sum(line.count(PLACEHOLDER) for line in settings) == 1
    assert re.search(rf"^ExecStart={PLACEHOLDER} run$", text, re.MULTILINE)


@needs_analyze
def test_the_rendered_unit_verifies(tmp_path):
    result = analyze("verify", "--no-pager", str(rendered(tmp_path)))
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


@needs_analyze
def test_verify_catches_a_unit_left_unrendered(tmp_path):
    """The control for the test above: the placeholder itself is no command systemd could start."""
    unit = tmp_path / "tagd.service"
    unit.write_text(UNIT.read_text())
    assert analyze("verify", "--no-pager", str(unit)).returncode != 0


@needs_analyze
def test_exposure_is_at_most_two(tmp_path):
    assert exposure(rendered(tmp_path)) <= MAX_EXPOSURE


@needs_analyze
def test_exposure_check_sees_hardening_taken_away(tmp_path):
    """The control: without its sandboxing lines the same unit scores far above the bar."""
    kept = [line for line in UNIT.read_text().splitlines()
            if not line.startswith(("Protect", "Private", "Restrict", "SystemCall", "Capability", "DynamicUser",
                                    "MemoryDeny", "NoNewPrivileges", "LockPersonality", "DevicePolicy"))]
    assert exposure(rendered(tmp_path, "\n".join(kept) + "\n")) > MAX_EXPOSURE


UNDER_MDWE = r"""
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:
    sys.exit(77)
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
except OSError:
    pass
else:
    sys.exit("MDWE not in force: a writable executable mapping was made")
import evdev, serial, requests, sqlite3, ssl, systemd.daemon, systemd.journal, inotify_simple
from daemon.keys import KeyDecoder
class Key:
    type, code, value = 1, 30, 1  # EV_KEY, KEY_A, press
    def timestamp(self): return 0.0
assert KeyDecoder("de").feed(Key()).text == "a"  # xkbcommon through cffi
from daemon.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_daemon_runs_with_write_xor_execute_memory(tmp_path):
    """MemoryDenyWriteExecute=yes: evdev, pyserial, requests/ssl, sqlite, systemd-python and xkbcommon (cffi
    API mode: no run-time trampolines) load and work, and `tagd run` starts, decides a scan and stops."""
    config = tmp_path / "tagd.toml"
    config.write_text(f'[state]\ndir = "{tmp_path / "state"}"\n[[scanners]]\ntype = "stdin"\nname = "desk"\n')
    proc = subprocess.Popen([sys.executable, "-c", UNDER_MDWE, "run", "--config", str(config), "--feedback", "terminal"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=UNIT.parents[1])
    try:
        proc.stdin.write(b"M1001\n")
        proc.stdin.flush()
        shown = proc.stdout.readline()  # decided (unknown to an empty roster) and shown; '' if it died
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    if code == 77:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3)")
    assert code == 0 and b"M1001" in shown, proc.stderr.read().decode()


def test_the_mdwe_check_itself_refuses_what_it_should():
    """The control: the same prctl in a child makes a W+X mapping fail, so the test above tests something."""
    child = ("import ctypes, mmap, sys\nlibc = ctypes.CDLL(None)\nsys.exit(77) if libc.prctl(65, 1, 0, 0, 0) else None\n"
             "mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n")
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=30)
    if proc.returncode == 77:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3)")
    assert proc.returncode == 1 and b"PermissionError" in proc.stderr, proc.stderr
