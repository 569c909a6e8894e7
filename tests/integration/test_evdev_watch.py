"""The shared evdev device lifecycle (drivers.evdev_watch) through its contract with a driver: the DeviceRole says
which devices are the driver's, each held device gets its own DeviceSession. Above the fake evdev boundary, with a
real inotify watch on a temporary input directory."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os

import evdev
import pytest
from evdev import ecodes

from drivers.evdev_watch import DeviceRole, EvdevDeviceSet
from drivers.fake_evdev import FakeEvdevBackend, FakeInputDevice
from drivers.matching import DeviceIdentity

WAIT = 5.0
log = logging.getLogger("tagd.test_evdev_watch")


def key(code: int, value: int = 1) -> evdev.InputEvent:
    return evdev.InputEvent(0, 0, ecodes.EV_KEY, code, value)


class RecordingSession:
    def __init__(self, path: str, on_event=None):
        self.path, self.on_event = path, on_event
        self.log: list[object] = []  # fed event codes, 'done' after a read, 'closed'

    def feed(self, event: evdev.InputEvent) -> None:
        self.log.append(event.code)
        if self.on_event is not None:
            self.on_event(event)

    def read_done(self) -> None:
        self.log.append("done")

    def close(self) -> None:
        self.log.append("closed")


class Driver:
    """A minimal driver on the shared lifecycle: it holds devices named 'mine*' and records everything."""

    def __init__(self, backend: FakeEvdevBackend, **role):
        self.sessions: list[RecordingSession] = []
        self.statuses: list[tuple[str, str, str]] = []
        self.on_event = role.pop("on_event", None)
        fields = dict(label="test", status_name="tester", log=log, grab=True, matches=self.matches,
                      open_session=self.open_session)
        self.devices = EvdevDeviceSet(DeviceRole(**(fields | role)), lambda *s: self.statuses.append(s), backend,
                                      backend.input_dir)

    @staticmethod
    def matches(identity: DeviceIdentity) -> bool:
        return identity.name.startswith("mine")

    def open_session(self, path: str) -> RecordingSession:
        self.sessions.append(RecordingSession(path, self.on_event))
        return self.sessions[-1]


async def until(condition) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.002)
    await asyncio.wait_for(poll(), WAIT)


@pytest.fixture
def backend(tmp_path) -> FakeEvdevBackend:
    return FakeEvdevBackend(str(tmp_path))


@contextlib.asynccontextmanager
async def running(driver: Driver):
    task = asyncio.create_task(driver.devices.run())
    try:
        yield driver
    finally:
        driver.devices.close()
        await asyncio.wait_for(task, WAIT)


def test_each_matching_device_gets_its_own_session_fed_in_order(backend):
    first = backend.plug(FakeInputDevice(backend.event_path(1), name="mine one"))
    second = backend.plug(FakeInputDevice(backend.event_path(2), name="mine two"))
    backend.plug(FakeInputDevice(backend.event_path(3), name="a keyboard"))

    async def scenario():
        async with running(Driver(backend)) as driver:
            await until(lambda: len(driver.devices.attached) == 2)
            first.emit([key(ecodes.KEY_1), key(ecodes.KEY_2)])
            second.emit([key(ecodes.KEY_9)])
            await until(lambda: all("done" in s.log for s in driver.sessions))
            one, two = sorted(driver.sessions, key=lambda s: s.path)
            assert (one.path, one.log, two.path, two.log) == (
                first.path, [ecodes.KEY_1, ecodes.KEY_2, "done"], second.path, [ecodes.KEY_9, "done"])
            assert first.grabbed_by is not None and second.grabbed_by is not None
        assert [s.log[-1] for s in driver.sessions] == ["closed", "closed"]
        assert [state for _, state, _ in driver.statuses] == ["attached", "attached", "detached", "detached"]
        assert {who for who, _, _ in driver.statuses} == {"tester"} and backend.open_handles == []

    asyncio.run(scenario())


def test_a_session_is_fed_nothing_more_once_its_consumer_closes_the_set(backend):
    device = backend.plug(FakeInputDevice(backend.event_path(1), name="mine"))

    async def scenario():
        driver = Driver(backend, on_event=lambda event: driver.devices.close())
        async with running(driver):
            await until(lambda: driver.devices.attached)
            device.emit([key(ecodes.KEY_1), key(ecodes.KEY_2), key(ecodes.KEY_3)])
            await until(lambda: "closed" in driver.sessions[0].log)
            await asyncio.sleep(0.01)  # a further read or read_done would have come by now
        assert driver.sessions[0].log == [ecodes.KEY_1, "closed"]
        assert backend.open_handles == [] and device.grabbed_by is None

    asyncio.run(scenario())


@pytest.mark.parametrize("report", [True, False])
def test_a_session_that_cannot_start_frees_the_device_and_is_reported_if_the_role_asks(backend, report):
    device = backend.plug(FakeInputDevice(backend.event_path(1), name="mine"))

    def broken(path: str):
        raise RuntimeError("a bug")

    async def scenario():
        async with running(Driver(backend, open_session=broken, report_internal_errors=report)) as driver:
            await until(lambda: backend.opened == 1 and backend.open_handles == [])
            assert driver.devices.attached == [] and device.grabbed_by is None
            expected = [("tester", "error", f"{device.path}: internal error (see log)")] if report else []
            assert driver.statuses == expected

    asyncio.run(scenario())


@pytest.mark.parametrize("news", [True, False])
def test_an_unreadable_node_is_an_error_status_only_when_the_role_calls_it_news(backend, news):
    device = backend.plug(FakeInputDevice(backend.event_path(1), name="mine", readable=False))
    asked: list[str] = []

    def is_news(path: str) -> bool:
        asked.append(path)
        return news

    async def scenario():
        async with running(Driver(backend, no_access_is_news=is_news)) as driver:
            await until(lambda: asked)
            expected = [("tester", "error", f"{device.path}: no read access: add the user to group 'input'")]
            assert driver.statuses == (expected if news else [])
            backend.set_readable(device.path)
            await until(lambda: driver.devices.attached == [device.path])

    asyncio.run(scenario())


@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING])
def test_a_read_error_detaches_at_the_roles_log_level_and_ends_the_session(backend, caplog, level):
    device = backend.plug(FakeInputDevice(backend.event_path(1), name="mine"))

    async def scenario():
        async with running(Driver(backend, read_error_level=level)) as driver:
            await until(lambda: driver.devices.attached)
            device.fail_read(errno.EIO)
            await until(lambda: not driver.devices.attached)
            assert driver.sessions[0].log == ["closed"] and backend.open_handles == []
            assert driver.statuses[-1] == ("tester", "detached", f"{device.path}: read error: {os.strerror(errno.EIO)}")

    with caplog.at_level(logging.DEBUG, logger=log.name):
        asyncio.run(scenario())
    detached = [r for r in caplog.records if "detached" in r.getMessage()]
    assert [r.levelno for r in detached] == [level]


@pytest.mark.parametrize("link_dirs", [("by-id", "by-path"), ("by-id",)])
def test_a_link_appearing_in_a_watched_link_dir_has_its_node_considered_again(backend, tmp_path, link_dirs):
    path = backend.event_path(1)
    link = tmp_path / "by-path" / "platform-button-event"
    link.parent.mkdir()
    ours = {"now": False}  # e.g. a settings `device` naming the link: the node is the driver's once it exists

    async def scenario():
        async with running(Driver(backend, link_dirs=link_dirs, matches=lambda _: ours["now"])) as driver:
            await asyncio.sleep(0)
            device = backend.plug(FakeInputDevice(path, name="mine"))
            await until(lambda: backend.opened == 1 and backend.open_handles == [])  # not ours yet: closed again
            ours["now"] = True
            os.symlink(path, link)  # udev adds the link a moment after the node
            if "by-path" in link_dirs:
                await until(lambda: driver.devices.attached == [device.path])
            else:
                await asyncio.sleep(0.05)  # the link went unseen: nothing opened the node again
                assert (driver.devices.attached, backend.opened) == ([], 1)

    asyncio.run(scenario())
