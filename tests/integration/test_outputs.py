"""Output adapters on real files and fds: an LED class directory laid out like /sys/class/leds/NAME, a FIFO
standing in for an EV_SND device node, and gpiod where the package or a chip is missing."""

from __future__ import annotations

import errno
import logging
import os
import struct
import sys

import evdev
import pytest
from evdev import ecodes

from daemon.errors import DeviceError
from daemon.patterns import OFF, Blink, Level, Signal, Tone
from daemon.player import Player
from daemon.scheduler import ManualScheduler
from daemon.settings import OutputSettings
from drivers.outputs import EvdevBeeper, GpiodOutput, LedClassOutput, open_outputs


def make_led(root, name: str = "green", triggers: str = "[none] timer heartbeat", max_brightness: int = 255):
    led = root / name
    led.mkdir()
    files = {"brightness": "255", "max_brightness": str(max_brightness), "trigger": triggers}
    if "timer" in triggers:
        files.update(delay_on="500", delay_off="500")
    for file, text in files.items():
        (led / file).write_text(text + "\n")
    return led


def read(led, attribute: str) -> str:
    return (led / attribute).read_text().strip()


def test_led_starts_off_and_steady_states_write_brightness(tmp_path):
    led = make_led(tmp_path)
    output = LedClassOutput.named("green", "green", str(tmp_path))
    assert (read(led, "trigger"), read(led, "brightness")) == ("none", "0")
    output.show(Level(True))
    assert read(led, "brightness") == "255"
    output.show(Tone(0))
    assert read(led, "brightness") == "0"


def test_led_blinks_with_the_kernel_timer_trigger_and_close_restores_none_and_off(tmp_path):
    led = make_led(tmp_path)
    output = LedClassOutput(str(led), "green")
    assert output.hardware_blink
    output.show(Blink(120, 380))
    assert (read(led, "trigger"), read(led, "delay_on"), read(led, "delay_off")) == ("timer", "120", "380")
    output.show(Level(True))
    assert (read(led, "trigger"), read(led, "brightness")) == ("none", "255")
    output.show(Blink(100, 100))
    output.close()
    assert (read(led, "trigger"), read(led, "brightness")) == ("none", "0")


def test_led_without_timer_trigger_is_blinked_by_the_player_step_by_step(tmp_path):
    led = make_led(tmp_path, triggers="[none] heartbeat", max_brightness=1)
    clock = ManualScheduler()
    output = LedClassOutput(str(led), "green")
    assert not output.hardware_blink
    player = Player([output], scheduler=clock)
    player.play(Signal.DUPLICATE)  # green blink:100:100:800
    seen = [read(led, "brightness")]
    for _ in range(8):
        clock.advance(0.1)
        seen.append(read(led, "brightness"))
    assert seen == ["1", "0"] * 4 + ["0"]
    assert not (led / "delay_on").exists() and read(led, "trigger") == "none"


def test_missing_led_is_a_device_error_naming_it(tmp_path):
    with pytest.raises(DeviceError, match="LED .*/nosuch: No such file or directory"):
        LedClassOutput(str(tmp_path / "nosuch"), "green")


def test_led_write_failure_through_the_player_never_raises_and_is_logged_once(tmp_path, caplog):
    led = make_led(tmp_path, "red")
    output = LedClassOutput(str(led), "red")
    (led / "brightness").unlink()
    (led / "brightness").mkdir()  # every write now fails (EISDIR), as a vanished LED would fail with EIO
    player = Player([output], scheduler=ManualScheduler())
    with caplog.at_level(logging.WARNING, "tagd.feedback"):
        for signal in (Signal.DENIED, Signal.INVALID, Signal.ERROR):
            player.play(signal)
    assert [r.getMessage() for r in caplog.records if "output red failed" in r.getMessage()] == [
        "feedback: output red failed: [Errno 21] Is a directory: "
        f"'{led}/brightness' (further failures not logged until it works)"]


def open_fifo(tmp_path) -> tuple[str, int]:
    path = str(tmp_path / "event7")
    os.mkfifo(path)
    return path, os.open(path, os.O_RDONLY | os.O_NONBLOCK)


_EVENT = struct.Struct("llHHi")


def written_events(fd: int) -> list[evdev.InputEvent]:
    data = os.read(fd, 4096)
    assert len(data) % _EVENT.size == 0
    return [evdev.InputEvent(*fields) for fields in _EVENT.iter_unpack(data)]


def sounds(events: list[evdev.InputEvent]) -> list[tuple[int, int, int]]:
    return [(e.type, e.code, e.value) for e in events]


def test_beeper_writes_snd_tone_events_for_each_state(tmp_path):
    path, reader = open_fifo(tmp_path)
    beeper = EvdevBeeper(path, "buzzer")
    beeper.show(Tone(880))
    beeper.show(Level(True))
    beeper.show(OFF)
    syn = (ecodes.EV_SYN, ecodes.SYN_REPORT, 0)
    assert sounds(written_events(reader)) == [(ecodes.EV_SND, ecodes.SND_TONE, 880), syn,
                                             (ecodes.EV_SND, ecodes.SND_TONE, 2000), syn,
                                             (ecodes.EV_SND, ecodes.SND_TONE, 0), syn]
    beeper.close()
    assert sounds(written_events(reader)) == [(ecodes.EV_SND, ecodes.SND_TONE, 0), syn]
    os.close(reader)


def test_beeper_plays_a_pattern_in_order(tmp_path):
    path, reader = open_fifo(tmp_path)
    clock = ManualScheduler()
    player = Player([EvdevBeeper(path, "buzzer")], scheduler=clock)
    player.play(Signal.UNKNOWN)  # tone:400:150 silence:100 tone:400:150
    clock.advance(1)
    tones = [e.value for e in written_events(reader) if e.type == ecodes.EV_SND]
    assert tones == [400, 0, 400, 0]
    os.close(reader)


def test_beeper_whose_device_went_away_never_raises_and_reopens_when_back(tmp_path, caplog):
    path, reader = open_fifo(tmp_path)
    beeper = EvdevBeeper(path, "buzzer")
    player = Player([beeper], scheduler=ManualScheduler())
    os.close(reader)  # no reader: writes fail with EPIPE, and reopening fails with ENXIO
    with caplog.at_level(logging.INFO, "tagd.feedback"):
        player.play(Signal.ACCEPTED)
        player.play(Signal.DENIED)
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        player.play(Signal.ACCEPTED)
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1
    assert "works again" in caplog.text
    assert [e.value for e in written_events(reader) if e.type == ecodes.EV_SND] == [2000]
    os.close(reader)


def test_missing_beeper_is_a_device_error(tmp_path):
    with pytest.raises(DeviceError, match="beeper .*event9: No such file"):
        EvdevBeeper(str(tmp_path / "event9"), "buzzer")


def test_open_outputs_leaves_out_what_cannot_be_opened_and_returns_the_terminal(tmp_path):
    make_led(tmp_path)
    settings = (OutputSettings("led", "green", "green", str(tmp_path / "green")),
                OutputSettings("led", "red", "red", str(tmp_path / "red")),
                OutputSettings("terminal", "terminal-2"))
    failed = []
    outputs, terminal = open_outputs(settings, on_error=lambda s, exc: failed.append((s.name, str(exc))))
    assert [o.name for o in outputs] == ["green"] and terminal is not None
    assert failed == [("red", f"LED {tmp_path}/red: No such file or directory")]
    with pytest.raises(DeviceError):
        open_outputs(settings)


def test_gpiod_output_without_the_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gpiod", None)  # as if not installed: import raises ImportError
    with pytest.raises(DeviceError, match="pip install gpiod"):
        GpiodOutput("/dev/gpiochip0", 17, "buzzer")


def test_gpiod_output_on_a_missing_chip_is_a_device_error(tmp_path):
    pytest.importorskip("gpiod")
    with pytest.raises(DeviceError, match="cannot request GPIO line 17 on .*gpiochip9"):
        GpiodOutput(str(tmp_path / "gpiochip9"), 17, "buzzer")


@pytest.mark.skipif(not any(name.startswith("gpiochip") for name in os.listdir("/dev")), reason="no GPIO chip")
def test_gpiod_output_drives_a_real_line():
    pytest.importorskip("gpiod")
    output = GpiodOutput("/dev/gpiochip0", 0, "buzzer")
    output.show(Level(True))
    output.close()
