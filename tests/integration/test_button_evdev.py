"""The evdev staff button on a real event loop, real inotify and pipe fds, above the fake evdev boundary, fed
real evdev.InputEvent streams. Long-press deadlines run on a manual clock, so nothing depends on elapsed time."""

from __future__ import annotations

import asyncio
import contextlib

import evdev
import pytest
from evdev import ecodes

from daemon.errors import ConfigError
from daemon.gestures import Gesture
from daemon.scheduler import ManualScheduler
from daemon.settings import ButtonSettings
from drivers.button import EvdevButton
from drivers.fake_evdev import FakeEvdevBackend, FakeInputDevice

WAIT = 5.0


def key(value: int, code: int = ecodes.KEY_PROG1) -> list[evdev.InputEvent]:
    return [evdev.InputEvent(0, 0, ecodes.EV_KEY, code, value), evdev.InputEvent(0, 0, ecodes.EV_SYN, 0, 0)]


async def until(condition) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)
    await asyncio.wait_for(poll(), WAIT)


@contextlib.asynccontextmanager
async def running(tmp_path, **settings):
    backend = FakeEvdevBackend(str(tmp_path))
    clock = ManualScheduler()
    gestures: list[tuple[float, Gesture]] = []
    statuses: list[tuple[str, str, str]] = []
    button = EvdevButton(ButtonSettings(kind="evdev", **settings), lambda g: gestures.append((clock.time(), g)),
                         lambda *status: statuses.append(status), backend=backend, input_dir=str(tmp_path),
                         scheduler=clock)
    task = asyncio.create_task(button.run())
    try:
        yield backend, button, clock, gestures, statuses
    finally:
        button.close()
        await asyncio.wait_for(task, WAIT)
        assert backend.open_handles == []


def button_device(backend: FakeEvdevBackend, number: int = 0, **kwargs) -> FakeInputDevice:
    kwargs.setdefault("keys", (ecodes.KEY_PROG1,))
    return FakeInputDevice(backend.event_path(number), name="button@11", vendor=0, product=0, **kwargs)


def test_press_and_release_is_a_short_press_and_the_device_is_grabbed(tmp_path):
    async def scenario():
        async with running(tmp_path, name_pattern="button@*") as (backend, button, clock, gestures, statuses):
            device = backend.plug(button_device(backend))
            await until(lambda: button.attached)
            assert device.grabbed_by is not None and statuses[0][1] == "attached"
            device.emit(key(1) + key(0))
            await until(lambda: gestures)
            assert gestures == [(0.0, Gesture.SHORT_PRESS)]
    asyncio.run(scenario())


def test_hold_with_autorepeat_fires_one_long_press_at_the_deadline(tmp_path):
    async def scenario():
        async with running(tmp_path, name_pattern="button@*") as (backend, button, clock, gestures, _):
            device = backend.plug(button_device(backend))
            await until(lambda: button.attached)
            device.emit(key(1))
            await until(lambda: clock.pending == 1)  # the long-press deadline is armed
            device.emit(key(2) * 5)  # autorepeat while held
            clock.advance(1.9)
            assert gestures == []
            clock.advance(0.1)
            assert gestures == [(2.0, Gesture.LONG_PRESS)]
            device.emit(key(2) + key(0))
            device.emit(key(1) + key(0))  # and a new short press afterwards
            await until(lambda: len(gestures) == 2)
            assert gestures[1][1] == Gesture.SHORT_PRESS
    asyncio.run(scenario())


def test_other_keys_and_devices_without_the_key_are_ignored(tmp_path):
    async def scenario():
        async with running(tmp_path, key="KEY_F13", name_pattern="*") as (backend, button, clock, gestures, _):
            keyboard = backend.plug(button_device(backend, 0, keys=(ecodes.KEY_A, ecodes.KEY_PROG1)))
            pad = backend.plug(button_device(backend, 1, keys=(ecodes.KEY_F13, ecodes.KEY_PROG1)))
            await until(lambda: button.attached == [pad.path])
            await until(lambda: backend.opened >= 2 and len(backend.open_handles) == 1)
            assert keyboard.grabbed_by is None
            pad.emit(key(1) + key(0))  # KEY_PROG1 on the right device: not our key
            pad.emit(key(1, ecodes.KEY_F13) + key(0, ecodes.KEY_F13))
            await until(lambda: gestures)
            assert gestures == [(0.0, Gesture.SHORT_PRESS)]
    asyncio.run(scenario())


def test_unplug_mid_hold_forgets_the_press_and_replug_binds_again(tmp_path):
    async def scenario():
        async with running(tmp_path, name_pattern="button@*") as (backend, button, clock, gestures, statuses):
            device = backend.plug(button_device(backend))
            await until(lambda: button.attached)
            device.emit(key(1))
            await until(lambda: clock.pending == 1)
            backend.unplug(device.path)
            await until(lambda: not button.attached)
            clock.advance(5)
            assert gestures == [] and statuses[-1][1] == "detached"
            device = backend.plug(button_device(backend))
            await until(lambda: button.attached)
            device.emit(key(1) + key(0))
            await until(lambda: gestures)
            assert gestures == [(5.0, Gesture.SHORT_PRESS)]
    asyncio.run(scenario())


def test_a_button_grabbed_by_another_program_is_reported(tmp_path):
    async def scenario():
        async with running(tmp_path, device=str(tmp_path / "event0")) as (backend, button, _, _, statuses):
            device = backend.plug(button_device(backend))
            other = backend.hold_grab(device.path)
            backend.set_readable(device.path)  # an ATTRIB: the driver tries again, and is refused again
            await until(lambda: any(s[1] == "error" for s in statuses))
            assert "grabbed by another program" in statuses[-1][2]
            other.close()
    asyncio.run(scenario())


def test_an_unknown_key_name_is_a_config_error():
    with pytest.raises(ConfigError, match="button.key: 'KEY_NOPE' is not an evdev key code name"):
        EvdevButton(ButtonSettings(kind="evdev", key="KEY_NOPE", name_pattern="*"), lambda g: None)
