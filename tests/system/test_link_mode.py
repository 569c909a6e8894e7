"""Link mode end to end on real kernel devices: `tagd run` with the staff button as a uinput key, the lights and
buzzer as gpiod output lines on gpio-sim, a uinput scanner, and the reference server on the guest's loopback.

The story as staff live it: press the button, scan the member's current ID, scan a new tag; the member already has
an ID, so the reader asks for a confirming press; press; the new tag is linked and the next scan of it checks the
member in, lighting the green LED (the gpio-sim line's value, read back from sysfs, goes high).
"""

from __future__ import annotations

import time

import evdev
import pytest
from evdev import ecodes

from tests.integration.run_support import Site

from .guest_tools import Tagd, VirtualScanner, hid_scanner_config, write_config
from .test_front_panel import SimulatedChip

pytestmark = pytest.mark.system

BUTTON_NAME = "tagd-vm staff button"
RED_LINE, GREEN_LINE, BUZZER_LINE = 4, 5, 6
MEMBER, NEW_TAG = "M1001", "TAG7001"
STEP_TIMEOUT_S = 60.0  # a slow TCG guest on a busy host; each step normally takes well under a second


class StaffButton:
    """A one-key input device, as the Pi's gpio-key overlay makes of a button: KEY_PROG1 presses."""

    def __init__(self):
        self.ui = evdev.UInput({ecodes.EV_KEY: [ecodes.KEY_PROG1]}, name=BUTTON_NAME)
        self.path = self.ui.device.path
        self.ui.device.close()

    def press(self, hold_s: float = 0.1) -> None:
        for value, pause in ((1, hold_s), (0, 0.0)):
            self.ui.write(ecodes.EV_KEY, ecodes.KEY_PROG1, value)
            self.ui.syn()
            time.sleep(pause)

    def close(self) -> None:
        self.ui.close()


def reader_config(site: Site, state: str, chip: SimulatedChip) -> str:
    outputs = "".join(f'[[outputs]]\ntype = "gpiod"\nname = "{role}"\nrole = "{role}"\nchip = "{chip.path}"\n'
                      f"line = {line}\n\n"
                      for role, line in (("red", RED_LINE), ("green", GREEN_LINE), ("buzzer", BUZZER_LINE)))
    return (f'[server]\nurl = "{site.url}"\ntoken_file = "{site.token_file}"\n\n[state]\ndir = "{state}"\n\n'
            '[sync]\njitter_s = 0.0\n\n[scan]\ndebounce_seconds = 1.0\n\n'
            '[delivery]\nbackoff_initial_s = 0.2\nbackoff_max_s = 1.0\n\n'
            f'[button]\ntype = "evdev"\nname_pattern = "{BUTTON_NAME}"\nkey = "KEY_PROG1"\n\n'
            f"{outputs}{hid_scanner_config(pattern='tagd-vm scanner 8')}")


@pytest.fixture
def site(tmp_path):
    (tmp_path / "server").mkdir()
    site = Site(str(tmp_path / "server"))
    yield site
    site.stop()


@pytest.fixture
def chip():
    simulated = SimulatedChip("tagd-link-mode")
    yield simulated
    simulated.remove()


def wait_for_line(chip: SimulatedChip, line: int, value: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while chip.value(line) != value:
        if time.monotonic() > deadline:
            raise AssertionError(f"line {line} never read {value} ({what}) within {timeout} s")
        time.sleep(0.01)


def test_a_tag_linked_with_button_and_scanner_checks_the_member_in_and_lights_green(site, chip, tmp_path):
    member_ref = next(c["ref"] for c in site.seed["clients"] if c["client_id"] == MEMBER)
    config = write_config(tmp_path / "tagd.toml", reader_config(site, str(tmp_path / "state"), chip))
    button = StaffButton()
    try:
        with VirtualScanner(8) as scanner:
            tagd = Tagd("run", config=config)
            try:
                tagd.wait_all(r"roster full sync", rf"attached {scanner.path} ", rf"attached {button.path} ",
                              timeout=120)
                link_a_new_tag(tagd, button, scanner)
                wait_for_line(chip, GREEN_LINE, 0, 10, "the 'linked' pattern over")
                scanner.type(NEW_TAG)
                wait_for_line(chip, GREEN_LINE, 1, 10, "green for the accepted check-in")
                tagd.wait_log(r"WELCOME", timeout=STEP_TIMEOUT_S)
                checkins = _wait_for_checkins(site, 1)
            finally:
                tagd.stop()
    finally:
        button.close()
    assert [(c["client_id"], c["client_ref"], c["result"]) for c in checkins] == [(NEW_TAG, member_ref, "accepted")]


def link_a_new_tag(tagd: Tagd, button: StaffButton, scanner: VirtualScanner) -> None:
    """Button, member's ID, new tag, confirming press: each step awaited in the reader's log."""
    button.press()
    tagd.wait_log(r"link mode on", timeout=STEP_TIMEOUT_S)
    tagd.wait_log(r"no link target", timeout=STEP_TIMEOUT_S)
    scanner.type(MEMBER)
    tagd.wait_log(r"client to link", timeout=STEP_TIMEOUT_S)
    scanner.type(NEW_TAG)
    tagd.wait_log(r"link needs confirmation", timeout=STEP_TIMEOUT_S)
    button.press()
    tagd.wait_log(r"\blinked\b", timeout=STEP_TIMEOUT_S)


def _wait_for_checkins(site: Site, count: int) -> list[dict]:
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while len(checkins := site.checkins()) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"the server has {checkins}, expected {count} check-in(s)")
        time.sleep(0.2)
    return checkins
