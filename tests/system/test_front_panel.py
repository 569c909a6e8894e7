"""The staff button and the feedback outputs on real kernel devices in the guest: a uinput key, gpio-sim lines."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import evdev
import pytest
from evdev import ecodes

from daemon.gestures import Gesture
from daemon.patterns import OFF, Level, Tone
from daemon.settings import ButtonSettings
from drivers.button import EvdevButton, GpiodButton
from drivers.outputs import GpiodOutput

pytestmark = pytest.mark.system

GPIO_SIM = Path("/sys/kernel/config/gpio-sim")
BUTTON_LINE, GREEN_LINE, BUZZER_LINE = 3, 5, 6


class SimulatedChip:
    """One gpio-sim bank of 8 lines: `pull(line, ...)` plays the outside world, `value(line)` reads what is driven."""

    def __init__(self, name: str):
        self.config = GPIO_SIM / name
        (self.config / "bank0").mkdir(parents=True)
        (self.config / "bank0" / "num_lines").write_text("8")
        (self.config / "live").write_text("1")
        chip = (self.config / "bank0" / "chip_name").read_text().strip()
        self.path = f"/dev/{chip}"
        self.sysfs = Path("/sys/devices/platform") / (self.config / "dev_name").read_text().strip() / chip

    def pull(self, line: int, direction: str) -> None:
        (self.sysfs / f"sim_gpio{line}" / "pull").write_text(direction)

    def value(self, line: int) -> int:
        return int((self.sysfs / f"sim_gpio{line}" / "value").read_text())

    def remove(self) -> None:
        (self.config / "live").write_text("0")
        (self.config / "bank0").rmdir()
        self.config.rmdir()


@pytest.fixture
def chip(request):
    simulated = SimulatedChip(f"tagd-{request.node.name.replace('[', '-').replace(']', '')[:40]}")
    yield simulated
    simulated.remove()


async def _collect_gestures(button, gestures: list[Gesture], actions, settle_s: float = 0.3) -> list[Gesture]:
    """Run `button`, perform `actions()` in a thread once it holds its device, return the gestures it reported."""
    task = asyncio.create_task(button.run())
    await asyncio.sleep(1.0)  # the button takes its device (evdev: found and grabbed; gpiod: line requested)
    await asyncio.get_running_loop().run_in_executor(None, actions)
    await asyncio.sleep(settle_s)
    button.close()
    await asyncio.wait_for(task, 5)
    return gestures


def test_a_uinput_key_is_the_staff_button():
    gestures: list[Gesture] = []
    key = evdev.UInput({ecodes.EV_KEY: [ecodes.KEY_PROG1]}, name="tagd-vm button")
    try:
        button = EvdevButton(ButtonSettings(kind="evdev", name_pattern="tagd-vm button", long_press_s=0.6),
                             gestures.append)

        def press(hold_s: float) -> None:
            key.write(ecodes.EV_KEY, ecodes.KEY_PROG1, 1)
            key.syn()
            time.sleep(hold_s)
            key.write(ecodes.EV_KEY, ecodes.KEY_PROG1, 0)
            key.syn()
            time.sleep(0.2)

        assert asyncio.run(_collect_gestures(button, gestures, lambda: (press(0.05), press(1.0)))) == [
            Gesture.SHORT_PRESS, Gesture.LONG_PRESS]
    finally:
        key.close()


@pytest.mark.parametrize("active_low, bias, press, release", [
    (True, "pull-up", "pull-down", "pull-up"),  # a button to ground with the pull-up
    (False, "pull-down", "pull-up", "pull-down"),  # a button to 3.3 V with the pull-down
])
def test_a_gpio_sim_line_is_the_staff_button(chip, active_low, bias, press, release):
    gestures: list[Gesture] = []
    settings = ButtonSettings(kind="gpiod", chip=chip.path, line=BUTTON_LINE, active_low=active_low, bias=bias,
                              long_press_s=0.6)
    button = GpiodButton(settings, gestures.append)

    def click() -> None:
        chip.pull(BUTTON_LINE, press)
        time.sleep(0.05)
        chip.pull(BUTTON_LINE, release)
        time.sleep(0.2)

    assert asyncio.run(_collect_gestures(button, gestures, click)) == [Gesture.SHORT_PRESS]


def test_gpiod_outputs_drive_the_lines_the_led_and_buzzer_are_on(chip):
    green = GpiodOutput(chip.path, GREEN_LINE, "green")
    buzzer = GpiodOutput(chip.path, BUZZER_LINE, "buzzer")
    try:
        assert (chip.value(GREEN_LINE), chip.value(BUZZER_LINE)) == (0, 0)
        green.show(Level(True))
        buzzer.show(Tone(2000))
        assert (chip.value(GREEN_LINE), chip.value(BUZZER_LINE)) == (1, 1)
        green.show(OFF)
        buzzer.show(Tone(0))
        assert (chip.value(GREEN_LINE), chip.value(BUZZER_LINE)) == (0, 0)
        green.show(Level(True))
    finally:
        green.close()
        buzzer.close()
    assert chip.value(GREEN_LINE) == 0  # closing leaves the LED off


def test_an_active_low_output_line_is_driven_low_when_lit(chip):
    red = GpiodOutput(chip.path, GREEN_LINE, "red", active_low=True)
    try:
        red.show(Level(True))
        assert chip.value(GREEN_LINE) == 0
        red.show(OFF)
        assert chip.value(GREEN_LINE) == 1
    finally:
        red.close()


def test_gpio_sim_is_removed_cleanly():
    """The fixture's teardown leaves no simulated chip behind (later tests count on fresh chips)."""
    before = {p.name for p in GPIO_SIM.iterdir()}
    SimulatedChip("tagd-cleanup").remove()
    assert {p.name for p in GPIO_SIM.iterdir()} == before
