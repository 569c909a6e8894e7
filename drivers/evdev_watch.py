"""The device lifecycle every evdev driver shares (the HID scanner, the staff button): find, hold, read, let go.

An `EvdevDeviceSet` watches the input directory (`InputWatcher`, started before listing, so a device plugged in
meanwhile is not missed), binds every event node its `DeviceRole` says is the driver's, reads each one with
`loop.add_reader`, and lets it go on unplug, read error or close. What a driver does with the events lives in a
`DeviceSession`, one per held device, so two devices never share decoding or gesture state.

Per device the lifecycle is OPENING → ATTACHED → CLOSED, and CLOSED is final: a device that comes back (replug,
permissions fixed, grab released and replugged) starts over as a new binding. Opening and grabbing run off the
loop (`open_off_loop`, as Home Assistant's keyboard_remote does). Teardown is ordered ungrab → remove reader →
close → end the session → cancel the task, and does nothing the second time.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import evdev

from .base import StatusSink
from .evdev_backend import (InputBackend, InputDeviceLike, by_id_links, identity_of, is_event_node, open_off_loop,
                            release_device)
from .hotplug import Change, InputWatcher
from .matching import DeviceIdentity

_READS_PER_WAKEUP = 16  # a device streaming without pause must not starve the other devices on the loop
_GONE = (errno.ENOENT, errno.ENODEV, errno.ENXIO)  # the node vanished between the event and the open


class DeviceSession(Protocol):
    """What a driver does with one held device's events, from attach to teardown."""

    def feed(self, event: evdev.InputEvent) -> None: ...

    def read_done(self) -> None: ...  # every waiting event of this wake-up has been fed

    def close(self) -> None: ...  # the device is gone: drop what is half done (a partial scan, a press)


@dataclass(frozen=True)
class DeviceRole:
    """What differs between the drivers: which devices are theirs, what they do with one, and their words."""

    label: str  # how the log names the driver: 'hid door', 'button'
    status_name: str  # the first argument of every on_status call
    log: logging.Logger
    grab: bool
    matches: Callable[[DeviceIdentity], bool]
    open_session: Callable[[str], DeviceSession]  # called on the loop when the device at `path` is attached
    link_dirs: tuple[str, ...] = ("by-id",)  # watched too, under input_dir: links there name event nodes
    no_access_is_news: Callable[[str], bool] = lambda path: False  # else only logged: udev sets the group soon
    read_error_level: int = logging.INFO
    report_internal_errors: bool = False


class _State(Enum):
    OPENING = "opening"
    ATTACHED = "attached"
    CLOSED = "closed"


@dataclass(eq=False)
class _Binding:
    """One device the set holds (or is opening)."""

    path: str
    state: _State = _State.OPENING
    device: InputDeviceLike | None = None
    fd: int = -1
    session: DeviceSession | None = None
    task: asyncio.Task | None = None
    retry: bool = False  # a change arrived while opening: try again if this attempt fails


class EvdevDeviceSet:
    """Holds every input device `role` matches, feeding each one's events to its own session, until closed."""

    def __init__(self, role: DeviceRole, on_status: StatusSink, backend: InputBackend, input_dir: str):
        self.role, self.on_status, self.backend = role, on_status, backend
        self.input_dir = os.path.abspath(input_dir)
        self._bindings: dict[str, _Binding] = {}
        link_dirs = tuple(os.path.join(self.input_dir, name) for name in role.link_dirs)
        self._watcher = InputWatcher(self._on_change, (self.input_dir, *link_dirs))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Future | None = None
        self._closed = False

    @property
    def attached(self) -> list[str]:
        """Event paths of the devices held right now."""
        return sorted(p for p, b in self._bindings.items() if b.state is _State.ATTACHED)

    async def run(self) -> None:
        """Watch for devices and hold them. Returns when cancelled or closed."""
        if self._closed:
            return
        self._loop = asyncio.get_running_loop()
        self._stopped = self._loop.create_future()
        self._watcher.start(self._loop)  # before listing, so a device plugged in meanwhile is not missed
        self._rescan()
        try:
            await self._stopped
        finally:
            self.close()

    def close(self) -> None:
        """Release every device and stop watching. Safe to call more than once."""
        self._closed = True
        self._watcher.close()
        for binding in list(self._bindings.values()):
            self._detach(binding, "stopped")
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    # hotplug

    def _on_change(self, change: Change, path: str) -> None:
        if change is Change.RESCAN:
            self._rescan()
            return
        node = self._event_node(path)
        if node is None:
            return
        if change is Change.REMOVED:
            if node == path:  # the node itself (a link going away says nothing about the device)
                self._detach_path(node, "unplugged")
            return
        self._consider(node)

    def _event_node(self, path: str) -> str | None:
        """The event node `path` is or links to, spelled inside input_dir; None for anything else."""
        if os.path.dirname(path) != self.input_dir:
            path = os.path.join(self.input_dir, os.path.basename(os.path.realpath(path)))
            if not os.path.exists(path):
                return None
        return path if is_event_node(path) else None

    def _rescan(self) -> None:
        present = set(self.backend.list_event_paths())
        for path in [p for p in self._bindings if p not in present]:
            self._detach_path(path, "unplugged")
        for path in sorted(present):
            self._consider(path)

    def _consider(self, path: str) -> None:
        if self._closed or self._loop is None:
            return
        binding = self._bindings.get(path)
        if binding is not None:
            binding.retry = binding.state is _State.OPENING
            return
        binding = self._bindings[path] = _Binding(path)
        binding.task = self._loop.create_task(self._hold(binding), name=f"{self.role.label} {path}")

    # one task per device

    async def _hold(self, binding: _Binding) -> None:
        try:
            if await self._claim(binding):
                self._attach(binding)
                await asyncio.Event().wait()  # held until _detach cancels this task
        except Exception:  # noqa: BLE001 - a bug on one device must not take the other devices down
            self.role.log.exception("%s: %s failed", self.role.label, binding.path)
            if self.role.report_internal_errors:
                self._status("error", f"{binding.path}: internal error (see log)")
        finally:
            retry = binding.retry and binding.state is _State.OPENING
            self._teardown(binding)
            if retry:
                self._consider(binding.path)

    async def _claim(self, binding: _Binding) -> bool:
        """Open, check and grab off the loop. False (status reported) when the device is not ours to hold."""
        try:
            binding.device = await open_off_loop(self._open_matching, binding.path)
        except OSError as exc:
            self._report_open_failure(binding.path, exc)
            return False
        return binding.device is not None

    def _open_matching(self, path: str) -> InputDeviceLike | None:
        """Blocking: open `path`; keep it only if it matches, grabbed when the role says so."""
        device = self.backend.open(path)
        try:
            if not self.role.matches(identity_of(device, by_id_links(self.input_dir, path))):
                device.close()
                return None
            if self.role.grab:
                device.grab()
            return device
        except BaseException:
            device.close()
            raise

    def _report_open_failure(self, path: str, exc: OSError) -> None:
        label, log = self.role.label, self.role.log
        if exc.errno in _GONE:
            log.debug("%s: %s went away before it could be opened", label, path)
        elif exc.errno in (errno.EACCES, errno.EPERM) and self.role.no_access_is_news(path):
            self._status("error", f"{path}: no read access: add the user to group 'input'")
        elif exc.errno in (errno.EACCES, errno.EPERM):
            log.info("%s: no read access to %s (yet)", label, path)
        elif exc.errno == errno.EBUSY:
            self._status("error", f"{path} is grabbed by another program")
        else:
            log.warning("%s: cannot open %s: %s", label, path, exc)
            self._status("error", f"cannot open {path}: {exc.strerror or exc}")

    def _attach(self, binding: _Binding) -> None:
        device = binding.device
        assert device is not None and self._loop is not None
        binding.state, binding.fd, binding.retry = _State.ATTACHED, device.fd, False
        binding.session = self.role.open_session(binding.path)
        self._loop.add_reader(binding.fd, self._on_readable, binding)
        self.role.log.info("%s: attached %s (%s)", self.role.label, binding.path, device.name)
        self._status("attached", f"{binding.path} ({device.name})")

    # reading

    def _on_readable(self, binding: _Binding) -> None:
        try:
            for _ in range(_READS_PER_WAKEUP):
                if binding.device is None:
                    return  # the session's consumer closed us
                self._feed(binding, binding.device.read())
        except BlockingIOError:
            pass  # everything waiting has been read
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                self._detach(binding, "unplugged")
            else:
                self._detach(binding, f"read error: {exc.strerror}", self.role.read_error_level)
            return
        if binding.state is _State.ATTACHED and binding.session is not None:
            binding.session.read_done()

    def _feed(self, binding: _Binding, events) -> None:
        for event in events:
            if binding.state is not _State.ATTACHED or binding.session is None:
                return  # the session's consumer closed us while handling an event
            binding.session.feed(event)

    # teardown

    def _detach_path(self, path: str, detail: str) -> None:
        binding = self._bindings.get(path)
        if binding is not None:
            self._detach(binding, detail)

    def _detach(self, binding: _Binding, detail: str, level: int = logging.INFO) -> None:
        """Tear down now (so a replugged node with the same path binds afresh) and say so if it was attached."""
        was_attached = binding.state is _State.ATTACHED
        self._teardown(binding)
        if was_attached:
            self.role.log.log(level, "%s: detached %s: %s", self.role.label, binding.path, detail)
            self._status("detached", f"{binding.path}: {detail}")

    def _teardown(self, binding: _Binding) -> None:
        """ungrab → remove reader → close → end the session → cancel the task."""
        if binding.state is _State.CLOSED:
            return
        binding.state = _State.CLOSED
        if self._bindings.get(binding.path) is binding:
            del self._bindings[binding.path]
        device, binding.device = binding.device, None
        if device is not None:
            release_device(device, self.role.grab, binding.fd, self._loop)
        if binding.session is not None:
            binding.session.close()
        if binding.task is not None and binding.task is not asyncio.current_task():
            binding.task.cancel()

    def _status(self, state: str, detail: str) -> None:
        self.on_status(self.role.status_name, state, detail)
