"""The evdev boundary: the few things the HID driver and `tagd devices` need from an input device.

`EvdevBackend` is the real one (python-evdev); `drivers.fake_evdev.FakeEvdevBackend` is the behavioural fake the
tests use, since this machine has no /dev/input. Everything above this module is tested for real.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
import re
from collections.abc import Callable, Iterable
from typing import Protocol

import evdev
from evdev import ecodes

from .matching import DeviceIdentity

log = logging.getLogger("tagd.evdev")


class DeviceInfoLike(Protocol):
    vendor: int
    product: int


class InputDeviceLike(Protocol):
    """An opened input device: the part of evdev.InputDevice tagd uses."""

    path: str
    name: str
    phys: str
    info: DeviceInfoLike

    @property
    def fd(self) -> int: ...  # non-blocking; readable when events (or an unplug error) are waiting

    def capabilities(self) -> dict[int, list[int]]: ...

    def grab(self) -> None: ...  # OSError(EBUSY) when another program holds the grab

    def ungrab(self) -> None: ...

    def read(self) -> Iterable[evdev.InputEvent]:
        """Every event waiting. BlockingIOError when there is none; OSError(ENODEV) once unplugged."""

    def close(self) -> None: ...


class InputBackend(Protocol):
    input_dir: str

    def list_event_paths(self) -> list[str]: ...

    def open(self, path: str) -> InputDeviceLike: ...  # PermissionError without read access


class _ClosingInputDevice(evdev.InputDevice):
    """evdev.InputDevice that closes its fd when a query in the constructor fails (ENOTTY on a node that is no
    evdev device, ENODEV when it vanishes meanwhile). evdev leaves that to the garbage collector, and the raised
    exception's traceback keeps the half-built object, and its fd, alive."""

    def __init__(self, path: str):
        try:
            super().__init__(path)
        except BaseException:
            fd = getattr(self, "fd", -1)
            if fd >= 0:
                os.close(fd)
                self.fd = -1
            raise


class EvdevDevice:
    """evdev.InputDevice as InputDeviceLike: `read()` returns a list, so errors surface where it is called."""

    def __init__(self, device: evdev.InputDevice):
        self._device = device
        self.path, self.name, self.phys, self.info = str(device.path), device.name, device.phys, device.info

    @property
    def fd(self) -> int:
        return self._device.fd

    def capabilities(self) -> dict[int, list[int]]:
        return self._device.capabilities(absinfo=False)

    def grab(self) -> None:
        self._device.grab()

    def ungrab(self) -> None:
        self._device.ungrab()

    def read(self) -> list[evdev.InputEvent]:
        return list(self._device.read())

    def close(self) -> None:
        self._device.close()


class EvdevBackend:
    def __init__(self, input_dir: str = "/dev/input"):
        self.input_dir = input_dir

    def list_event_paths(self) -> list[str]:
        return list_event_paths(self.input_dir)

    def open(self, path: str) -> EvdevDevice:
        return EvdevDevice(_ClosingInputDevice(path))


def list_event_paths(input_dir: str) -> list[str]:
    """The event nodes in `input_dir`, in numeric order (event2 before event10), whoever may open them."""
    return sorted(glob.glob(os.path.join(input_dir, "event*")), key=_event_number)


def is_event_node(path: str) -> bool:
    return re.fullmatch(r"event\d+", os.path.basename(path)) is not None


def by_id_links(input_dir: str, path: str) -> tuple[str, ...]:
    """The /dev/input/by-id symlinks that point at the event node `path`, sorted."""
    by_id = os.path.join(input_dir, "by-id")
    try:
        names = os.listdir(by_id)
    except OSError:
        return ()  # no by-id directory yet: nothing links there
    target = os.path.realpath(path)
    links = (os.path.join(by_id, name) for name in names)
    return tuple(sorted(link for link in links if os.path.realpath(link) == target))


def identity_of(device: InputDeviceLike, by_id: tuple[str, ...] = ()) -> DeviceIdentity:
    keys = frozenset(device.capabilities().get(ecodes.EV_KEY, ()))
    return DeviceIdentity(path=device.path, name=device.name, vendor=device.info.vendor,
                          product=device.info.product, phys=device.phys or "", keys=keys, by_id=by_id)


def _event_number(path: str) -> tuple[int, str]:
    digits = re.search(r"(\d+)$", path)
    return (int(digits.group(1)) if digits else -1, path)


# ---- device lifecycle shared by every evdev driver (scanners, the staff button) -----------------------------------

def release_device(device: InputDeviceLike, grabbed: bool, fd: int, loop: asyncio.AbstractEventLoop | None) -> None:
    """Each step runs even when an earlier one fails: an unplugged device refuses the ungrab but must be closed."""
    if grabbed:
        _quietly(device.ungrab)
    if fd >= 0 and loop is not None and not loop.is_closed():
        loop.remove_reader(fd)
    _quietly(device.close)


def _quietly(step: Callable[[], None]) -> None:
    try:
        step()
    except OSError as exc:
        log.debug("evdev: %s during teardown (device already gone?)", exc)


async def open_off_loop(function: Callable[[str], InputDeviceLike | None], path: str) -> InputDeviceLike | None:
    """Run a blocking open in the executor. If the waiting task is cancelled meanwhile (unplug, shutdown), the
    device the thread still opens is closed when it arrives, not leaked."""
    future = asyncio.get_running_loop().run_in_executor(None, function, path)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(_close_orphan)
        raise


def _close_orphan(future: asyncio.Future) -> None:
    if future.cancelled() or future.exception() is not None or future.result() is None:
        return
    _quietly(future.result().close)  # closing the last fd also ends an evdev grab
