"""The HID driver on a real event loop, real inotify and real pipe fds, above the fake evdev boundary.

A temporary directory plays /dev/input: plugging creates the node file, so hotplug goes through the kernel's
inotify exactly as on the reader. Waits are on queues and conditions with generous timeouts; nothing here
asserts on elapsed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
from collections.abc import Callable

import pytest

from daemon.keys import key_events_for
from daemon.scan import Frame
from daemon.settings import HidScannerSettings
from drivers.fake_evdev import FakeEvdevBackend, FakeInputDevice
from drivers.hid import HidScanner

WAIT = 5.0  # seconds; only reached when something is broken


class Recorder:
    """The sink and status callback, as things the test awaits."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[Frame] = asyncio.Queue()
        self.statuses: list[tuple[str, str, str]] = []
        self._awaited: set[int] = set()
        self._new_status = asyncio.Event()

    def sink(self, frame: Frame) -> None:
        self.frames.put_nowait(frame)

    def on_status(self, scanner: str, state: str, detail: str) -> None:
        self.statuses.append((scanner, state, detail))
        self._new_status.set()

    async def frame(self) -> Frame:
        return await asyncio.wait_for(self.frames.get(), WAIT)

    async def status(self, state: str, about: str = "") -> str:
        """The earliest report in `state` whose detail mentions `about` and that no earlier call returned.
        Reports about different devices may come in any order, since each device is opened by its own task."""
        async def wanted() -> str:
            while True:
                for index, (_, got, detail) in enumerate(self.statuses):
                    if index not in self._awaited and got == state and about in detail:
                        self._awaited.add(index)
                        return detail
                self._new_status.clear()
                await self._new_status.wait()
        return await asyncio.wait_for(wanted(), WAIT)


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.001)
    await asyncio.wait_for(poll(), WAIT)


def scan(device: FakeInputDevice, text: str, **kwargs) -> None:
    device.emit(key_events_for(text, start=time.time(), **kwargs))


@pytest.fixture
def backend(tmp_path) -> FakeEvdevBackend:
    input_dir = tmp_path / "input"
    input_dir.mkdir()
    return FakeEvdevBackend(str(input_dir))


def scanner_device(backend: FakeEvdevBackend, number: int, **kwargs) -> FakeInputDevice:
    return FakeInputDevice(backend.event_path(number), **kwargs)


@contextlib.asynccontextmanager
async def running(backend: FakeEvdevBackend, recorder: Recorder, **settings):
    hid = HidScanner(HidScannerSettings(name=settings.pop("name", "door"), **settings), recorder.sink,
                     recorder.on_status, backend=backend, input_dir=backend.input_dir)
    task = asyncio.create_task(hid.run())
    await asyncio.sleep(0)  # let run() start its watch and list the devices already there
    try:
        yield hid
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def run(scenario) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_scan_on_a_plugged_in_scanner_arrives_as_one_frame(backend):
    device = backend.plug(scanner_device(backend, 3, name="Honeywell 1900"))

    async def scenario():
        recorder = Recorder()
        async with running(backend, recorder, vendor_product="0c2e:0b61"):
            assert await recorder.status("attached") == f"{device.path} (Honeywell 1900)"
            scan(device, "A1b2-C3")
            frame = await recorder.frame()
        assert (frame.scanner, frame.device, frame.text, frame.error) == ("door", device.path, "A1b2-C3", None)
        assert len(frame.gaps_ms) == len("A1b2-C3")  # between the presses, the terminator's included
        assert device.grabbed_by is None and backend.open_handles == []

    run(scenario)


def test_scanner_plugged_in_after_start_is_bound_and_grabbed(backend):
    async def scenario():
        recorder = Recorder()
        async with running(backend, recorder, name_pattern="*barcode*"):
            device = backend.plug(scanner_device(backend, 7, name="USB Barcode Reader"))
            await recorder.status("attached", device.path)
            assert device.grabbed_by is not None
            scan(device, "0042")
            assert (await recorder.frame()).text == "0042"
            handle = device.handles[0]
        assert handle.history == ["grab", "ungrab", "close"]  # released in order when the scanner stops

    run(scenario)


def test_with_grab_off_the_device_is_read_but_left_shared(backend):
    device = backend.plug(scanner_device(backend, 3))

    async def scenario():
        recorder = Recorder()
        async with running(backend, recorder, grab=False):
            await recorder.status("attached", device.path)
            other = backend.open(device.path)  # e.g. the console still reads it too
            scan(device, "SHARED1")
            assert (await recorder.frame()).text == "SHARED1"
            assert device.grabbed_by is None and other.pending > 0
            handle = device.handles[0]
            other.close()
        assert handle.history == ["close"]

    run(scenario)


def test_unplug_and_replug_resumes_frames_from_the_new_device(backend):
    path = backend.event_path(4)

    async def scenario():
        recorder = Recorder()
        async with running(backend, recorder, vendor_product="0c2e:0b61") as hid:
            old = backend.plug(FakeInputDevice(path))
            await recorder.status("attached", path)
            backend.unplug(path)
            assert await recorder.status("detached", path) == f"{path}: unplugged"
            assert hid.attached == [] and old.handles == []
            new = backend.plug(FakeInputDevice(path))
            await recorder.status("attached", path)
            scan(new, "REPLUG1")
            assert (await recorder.frame()).text == "REPLUG1"
            assert len(backend.open_handles) == 1 and backend.open_handles[0].device is new

    run(scenario)


def test_grabbed_device_reports_error_others_keep_working_and_it_binds_after_release_and_replug(backend):
    busy = backend.plug(scanner_device(backend, 1))
    free = backend.plug(scanner_device(backend, 2))
    holder = backend.hold_grab(busy.path)  # another program has the scanner

    async def scenario():
        recorder = Recorder()
        async with running(backend, recorder):
            assert await recorder.status("error", busy.path) == f"{busy.path} is grabbed by another program"
            await recorder.status("attached", free.path)
            scan(free, "FREE1")
            assert (await recorder.frame()).device == free.path
            assert backend.open_handles == [holder, *free.handles]  # the busy one was closed, not kept
            holder.close()
            backend.unplug(busy.path)
            again = backend.plug(scanner_device(backend, 1))
            await recorder.status("attached", busy.path)
            scan(again, "BUSY1")
            assert (await recorder.frame()).text == "BUSY1"

    run(scenario)


def test_read_error_mid_scan_discards_the_partial_frame_and_detaches(backend):
    device = backend.plug(scanner_device(backend, 5))

    async def scenario():
        recorder = Recorder()
        async with running(backend, recorder, frame_timeout_ms=50):
            await recorder.status("attached", device.path)
            events = key_events_for("12345678", start=time.time())
            device.emit(events[: len(events) // 2])
            await until(lambda: not any(h.pending for h in device.handles))  # half a scan is in the framer
            device.fail_read(errno.EIO)
            assert await recorder.status("detached") == f"{device.path}: read error: Input/output error"
            assert device.handles == []
            backend.unplug(device.path)
            again = backend.plug(scanner_device(backend, 5))
            await recorder.status("attached", device.path)
            scan(again, "999")
            assert (await recorder.frame()).text == "999"  # the first frame: no half scan came before it
            assert recorder.frames.empty()

    run(scenario)


def test_two_scanners_typing_interleaved_give_two_clean_frames(backend):
    upper = backend.plug(scanner_device(backend, 1))
    lower = backend.plug(scanner_device(backend, 2))

    async def scenario():
        recorder = Recorder()
        async with running(backend, recorder):
            await recorder.status("attached", upper.path)
            await recorder.status("attached", lower.path)
            now = time.time()
            upper_events = key_events_for("ABCDEF", start=now)  # Shift held around every key
            lower_events = key_events_for("ghijkl", start=now)
            for start in range(0, max(len(upper_events), len(lower_events)), 2):  # splits Shift from its key
                upper.emit(upper_events[start:start + 2])
                await until(lambda: not any(h.pending for h in upper.handles))
                lower.emit(lower_events[start:start + 2])
                await until(lambda: not any(h.pending for h in lower.handles))
            frames = {}
            for _ in range(2):
                frame = await recorder.frame()
                frames[frame.device] = frame.text
        assert frames == {upper.path: "ABCDEF", lower.path: "ghijkl"}

    run(scenario)


def test_scan_without_terminator_ends_after_the_frame_timeout(backend):
    device = backend.plug(scanner_device(backend, 9))

    async def scenario():
        recorder = Recorder()
        async with running(backend, recorder, frame_timeout_ms=30):
            await recorder.status("attached", device.path)
            scan(device, "NOTERM7", terminator=None)
            frame = await recorder.frame()
        assert (frame.text, frame.error, len(frame.gaps_ms)) == ("NOTERM7", None, 6)

    run(scenario)


def test_closing_twice_is_harmless_and_releases_everything(backend):
    device = backend.plug(scanner_device(backend, 3))

    async def scenario():
        recorder = Recorder()
        hid = HidScanner(HidScannerSettings(name="door"), recorder.sink, recorder.on_status, backend=backend,
                         input_dir=backend.input_dir)
        task = asyncio.create_task(hid.run())
        await recorder.status("attached", device.path)
        hid.close()
        hid.close()
        await asyncio.wait_for(task, WAIT)  # run() returns once closed
        assert [s for _, s, _ in recorder.statuses] == ["attached", "detached"]
        assert backend.open_handles == [] and device.grabbed_by is None
        backend.unplug(device.path)  # hotplug after close: nobody listens, nothing breaks
        hid.close()

    run(scenario)


def test_no_file_descriptor_leaks_over_50_unplug_replug_cycles(backend):
    path = backend.event_path(6)

    async def scenario():
        recorder = Recorder()
        async with running(backend, recorder):
            backend.plug(FakeInputDevice(path))
            await recorder.status("attached", path)
            before = len(os.listdir("/proc/self/fd"))
            for _ in range(50):
                backend.unplug(path)
                await recorder.status("detached", path)
                backend.plug(FakeInputDevice(path))
                await recorder.status("attached", path)
            after = len(os.listdir("/proc/self/fd"))
            assert (after, len(backend.open_handles), backend.opened) == (before, 1, 51)

    run(scenario)


def test_watcher_survives_an_open_it_cannot_handle(backend):
    backend.open_errors.append(OSError(errno.EMFILE, os.strerror(errno.EMFILE)))

    async def scenario():
        recorder = Recorder()
        async with running(backend, recorder):
            first = backend.plug(scanner_device(backend, 1))
            assert "Too many open files" in await recorder.status("error", first.path)
            second = backend.plug(scanner_device(backend, 2))
            await recorder.status("attached", second.path)
            scan(second, "STILL1")
            assert (await recorder.frame()).text == "STILL1"

    run(scenario)


def test_node_readable_only_after_udev_sets_permissions_binds_on_attrib(backend):
    async def scenario():
        recorder = Recorder()
        async with running(backend, recorder):
            device = backend.plug(scanner_device(backend, 2, readable=False))
            assert await recorder.status("error", device.path) == (
                f"{device.path}: no read access: add the user to group 'input'")
            backend.set_readable(device.path)
            await recorder.status("attached", device.path)

    run(scenario)


def test_an_unreadable_node_is_no_error_while_the_scanner_is_held(backend):
    scanner = backend.plug(scanner_device(backend, 1))

    async def scenario():
        recorder = Recorder()
        async with running(backend, recorder, vendor_product="0c2e:0b61"):
            await recorder.status("attached", scanner.path)
            mouse = backend.plug(scanner_device(backend, 2, name="Mouse", vendor=0x046D, readable=False))
            await until(lambda: (mouse.path, errno.EACCES) in backend.refused)
            backend.set_readable(mouse.path)  # udev's rule arrives: opened, found not ours, closed again
            await until(lambda: backend.opened == 2 and backend.open_handles == scanner.handles)
        assert [state for _, state, _ in recorder.statuses] == ["attached", "detached"]

    run(scenario)


def test_by_id_link_that_appears_after_the_node_binds_the_configured_device(backend):
    by_id = os.path.join(backend.input_dir, "by-id", "usb-Honeywell_1900-event-kbd")

    async def scenario():
        recorder = Recorder()
        async with running(backend, recorder, device=by_id):  # by-id does not even exist yet
            device = backend.plug(scanner_device(backend, 8))
            await until(lambda: backend.opened >= 1 and backend.open_handles == [])  # looked at, not ours
            os.makedirs(os.path.dirname(by_id))
            os.symlink("../event8", by_id)
            await recorder.status("attached", device.path)
            scan(device, "BYID1")
            assert (await recorder.frame()).device == device.path

    run(scenario)


def test_devices_that_do_not_match_are_closed_again(backend):
    keyboard = backend.plug(scanner_device(backend, 1, name="Dell USB Keyboard", vendor=0x413C, product=0x2107))
    scanner = backend.plug(scanner_device(backend, 2))

    async def scenario():
        recorder = Recorder()
        async with running(backend, recorder, vendor_product="0C2E:0B61"):
            await recorder.status("attached", scanner.path)
            await until(lambda: keyboard.handles == [])
            assert keyboard.grabbed_by is None and backend.open_handles == scanner.handles

    run(scenario)


def test_real_evdev_backend_reports_a_node_that_is_not_an_input_device(tmp_path):
    from drivers.evdev_backend import EvdevBackend

    (tmp_path / "event0").touch()  # a regular file: EVIOCGID fails with ENOTTY, as for a non-evdev node
    backend = EvdevBackend(str(tmp_path))

    async def scenario():
        recorder = Recorder()
        before = len(os.listdir("/proc/self/fd"))
        async with running(backend, recorder):  # type: ignore[arg-type]
            detail = await recorder.status("error", "event0")
        assert detail == f"cannot open {tmp_path / 'event0'}: Inappropriate ioctl for device"
        assert len(os.listdir("/proc/self/fd")) == before

    run(scenario)
