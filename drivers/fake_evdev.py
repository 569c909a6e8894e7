"""A behavioural fake of the evdev boundary, for tests on machines without /dev/input (and for demos).

It behaves like the kernel where the driver can tell the difference:
- `FakeEvdevBackend.plug(device)` creates the node file in the input directory (and its by-id symlink), so a real
  inotify watch sees it appear; `unplug(path)` removes both, and every open handle then reads ENODEV.
- `open(path)` gives a `FakeInputHandle` whose `fd` is the read end of a real pipe: `loop.add_reader` works on it,
  and it becomes readable when events are emitted or the device goes away, as an evdev fd does.
- A handle that grabs the device is the only one that receives its events; a second grab gets OSError(EBUSY).
  "Another program holding the grab" is simply another handle: `backend.open(path).grab()`.
- `readable=False` makes `open` raise PermissionError (EACCES), as a node not yet in group 'input' does;
  `set_readable(path)` fixes it and touches the node's mode, so inotify reports IN_ATTRIB as after udev.
- Every open handle is tracked, so tests can assert that the driver closed what it opened.
"""

from __future__ import annotations

import errno
import os
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import evdev
from evdev import ecodes

from .evdev_backend import list_event_paths

KEYBOARD_KEYS = tuple(range(ecodes.KEY_ESC, ecodes.KEY_KPDOT + 1)) + (ecodes.KEY_KPENTER, ecodes.KEY_RIGHTALT)


@dataclass(frozen=True)
class FakeDeviceInfo:
    bustype: int = 0x03  # BUS_USB
    vendor: int = 0
    product: int = 0
    version: int = 0x0110


class FakeInputDevice:
    """One piece of input hardware. Emitted events reach every open handle, or only the grabbing one."""

    def __init__(self, path: str, name: str = "Fake Barcode Scanner", vendor: int = 0x0C2E, product: int = 0x0B61,
                 *, phys: str = "usb-0000:01:00.0-1.2/input0", keys: Iterable[int] = KEYBOARD_KEYS,
                 by_id: str = "", readable: bool = True):
        self.path, self.name, self.phys = path, name, phys
        self.info = FakeDeviceInfo(vendor=vendor, product=product)
        self.keys = tuple(keys)
        self.by_id = by_id  # symlink name to create in <input_dir>/by-id on plug ('' for none)
        self.readable = readable
        self.plugged = False
        self.handles: list[FakeInputHandle] = []
        self.grabbed_by: FakeInputHandle | None = None

    def emit(self, events: Iterable[evdev.InputEvent]) -> None:
        """The hardware sends `events` (e.g. from daemon.keys.key_events_for)."""
        batch = list(events)
        for handle in self._receivers():
            handle.deliver(batch)

    def fail_read(self, error: int = errno.EIO) -> None:
        """The next read on every open handle raises OSError(error) (EIO: a flaky cable or hub)."""
        for handle in list(self.handles):
            handle.fail(error)

    def _receivers(self) -> list[FakeInputHandle]:
        return [self.grabbed_by] if self.grabbed_by is not None else list(self.handles)


class FakeInputHandle:
    """An opened FakeInputDevice (what `open` returns): InputDeviceLike, with a real pipe as its fd."""

    def __init__(self, device: FakeInputDevice, backend: FakeEvdevBackend):
        self.device, self.backend = device, backend
        self.path, self.name, self.phys, self.info = device.path, device.name, device.phys, device.info
        self._read_end, self._write_end = os.pipe()
        os.set_blocking(self._read_end, False)
        self._queue: deque[evdev.InputEvent] = deque()
        self._error: int | None = None
        self.closed = False
        self.history: list[str] = []  # 'grab', 'ungrab', 'close' in the order they succeeded

    @property
    def fd(self) -> int:
        return -1 if self.closed else self._read_end

    @property
    def pending(self) -> int:
        """Events emitted to this handle and not read yet."""
        return len(self._queue)

    def capabilities(self) -> dict[int, list[int]]:
        return {ecodes.EV_SYN: [0], ecodes.EV_KEY: list(self.device.keys)}

    def grab(self) -> None:
        self._check_usable()
        if self.device.grabbed_by not in (None, self):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        self.device.grabbed_by = self
        self.history.append("grab")

    def ungrab(self) -> None:
        self._check_usable()
        if self.device.grabbed_by is not self:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))  # as EVIOCGRAB 0 without a grab
        self.device.grabbed_by = None
        self.history.append("ungrab")

    def read(self) -> list[evdev.InputEvent]:
        self._check_usable()
        self._drain_wakeups()
        if self._error is not None:
            error, self._error = self._error, None
            raise OSError(error, os.strerror(error))
        if not self._queue:
            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
        events, self._queue = list(self._queue), deque()
        return events

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.history.append("close")
        os.close(self._read_end)
        os.close(self._write_end)
        if self.device.grabbed_by is self:
            self.device.grabbed_by = None  # closing the last fd releases an evdev grab
        self.device.handles.remove(self)
        self.backend.open_handles.remove(self)

    def deliver(self, events: list[evdev.InputEvent]) -> None:
        self._queue.extend(events)
        self._wake()

    def fail(self, error: int) -> None:
        self._error = error
        self._wake()

    def _check_usable(self) -> None:
        if self.closed:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        if not self.device.plugged:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))

    def _wake(self) -> None:
        if not self.closed:
            os.write(self._write_end, b"!")

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._read_end, 4096):
                pass
        except BlockingIOError:
            pass


@dataclass
class FakeEvdevBackend:
    """InputBackend over a temporary directory that plays /dev/input."""

    input_dir: str
    devices: dict[str, FakeInputDevice] = field(default_factory=dict)  # plugged, by event path
    open_handles: list[FakeInputHandle] = field(default_factory=list)
    opened: int = 0  # handles ever opened
    open_errors: list[OSError] = field(default_factory=list)  # raised by the next opens, first first
    refused: list[tuple[str, int]] = field(default_factory=list)  # (path, errno) of every open that failed

    def list_event_paths(self) -> list[str]:
        return list_event_paths(self.input_dir)

    def open(self, path: str) -> FakeInputHandle:
        try:
            device = self._openable(path)
        except OSError as exc:
            self.refused.append((path, exc.errno))
            raise
        handle = FakeInputHandle(device, self)
        device.handles.append(handle)
        self.open_handles.append(handle)
        self.opened += 1
        return handle

    def _openable(self, path: str) -> FakeInputDevice:
        if self.open_errors:
            raise self.open_errors.pop(0)
        device = self.devices.get(os.path.join(self.input_dir, os.path.basename(os.path.realpath(path))))
        if device is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        if not device.readable:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return device

    def plug(self, device: FakeInputDevice) -> FakeInputDevice:
        """Connect: the node appears (inotify IN_CREATE), then its by-id link, in udev's order."""
        device.plugged = True
        self.devices[device.path] = device
        with open(device.path, "w"):
            pass
        if device.by_id:
            by_id = os.path.join(self.input_dir, "by-id")
            os.makedirs(by_id, exist_ok=True)
            os.symlink(os.path.join("..", os.path.basename(device.path)), os.path.join(by_id, device.by_id))
        return device

    def unplug(self, path: str) -> FakeInputDevice:
        """Disconnect: open handles read ENODEV from now on, then the link and the node disappear."""
        device = self.devices.pop(path)
        device.plugged = False
        device.grabbed_by = None
        for handle in list(device.handles):
            handle._wake()  # an evdev fd turns readable (with ENODEV) when its device goes away
        if device.by_id:
            os.unlink(os.path.join(self.input_dir, "by-id", device.by_id))
        os.unlink(path)
        return device

    def set_readable(self, path: str) -> None:
        """udev's permission rule arrives: the node becomes readable and inotify reports IN_ATTRIB."""
        self.devices[path].readable = True
        os.chmod(path, 0o660)

    def hold_grab(self, path: str) -> FakeInputHandle:
        """Another program opens the device and grabs it. Release with `.close()` on the returned handle."""
        handle = self.open(path)
        handle.grab()
        return handle

    def event_path(self, number: int) -> str:
        return os.path.join(self.input_dir, f"event{number}")
