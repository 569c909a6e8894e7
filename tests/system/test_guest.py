"""The guest itself: what the other system tests rely on is really there."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.system


def test_systemd_is_pid_1():
    assert Path("/proc/1/comm").read_text().strip() == "systemd"
    state = subprocess.run(["systemctl", "is-system-running"], capture_output=True, text=True).stdout.strip()
    assert state in ("running", "starting", "degraded")  # 'starting': this very test is part of the boot


def test_uinput_and_gpio_sim_are_available():
    assert os.path.exists("/dev/uinput")
    assert Path("/sys/kernel/config/gpio-sim").is_dir()


def test_the_guest_has_only_loopback_networking():
    assert sorted(os.listdir("/sys/class/net")) == ["lo"]
