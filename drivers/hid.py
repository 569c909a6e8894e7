"""The USB HID (evdev) scanner driver: find the matching input devices, hold them, turn their keys into frames.

One HidScanner serves one [[scanners]] entry of kind 'hid'. Several devices may match it (two scanners on one
reader): each gets its own task, KeyDecoder and HidFramer, so their keystrokes never mix.

Per device the lifecycle is OPENING → ATTACHED → CLOSED, and CLOSED is final: a device that comes back (replug,
permissions fixed, grab released and replugged) starts over as a new binding. Opening and grabbing run off the
loop (`run_in_executor`, as Home Assistant's keyboard_remote does); reading is `loop.add_reader` on the device fd.
Teardown is ordered ungrab → remove reader → close → cancel timer and task, and does nothing the second time.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from daemon.framing import HidFramer
from daemon.keys import KeyDecoder
from daemon.scan import Frame
from daemon.settings import HidScannerSettings

from .base import FrameSink, StatusSink, ignore_status
from .evdev_backend import (EvdevBackend, InputBackend, InputDeviceLike, by_id_links, identity_of, is_event_node,
                            open_off_loop, release_device)
from .hotplug import Change, InputWatcher
from .matching import Criteria

log = logging.getLogger("tagd.hid")

_READS_PER_WAKEUP = 16  # a device streaming without pause must not starve the other devices on the loop
_GONE = (errno.ENOENT, errno.ENODEV, errno.ENXIO)  # the node vanished between the event and the open


class _State(Enum):
    OPENING = "opening"
    ATTACHED = "attached"
    CLOSED = "closed"


@dataclass(eq=False)
class _Binding:
    """One device this scanner holds (or is opening)."""

    path: str
    state: _State = _State.OPENING
    device: InputDeviceLike | None = None
    fd: int = -1
    grabbed: bool = False
    decoder: KeyDecoder | None = None
    framer: HidFramer | None = None
    timer: asyncio.TimerHandle | None = None
    task: asyncio.Task | None = None
    retry: bool = False  # a change arrived while opening: try again if this attempt fails


class HidScanner:
    """Delivers the frames of every input device matching `settings` to `sink` until cancelled or closed."""

    def __init__(self, settings: HidScannerSettings, sink: FrameSink, on_status: StatusSink | None = None, *,
                 backend: InputBackend | None = None, input_dir: str = "/dev/input",
                 clock: Callable[[], float] = time.time):
        self.name, self.settings, self.sink = settings.name, settings, sink
        self.on_status = on_status or ignore_status
        self.criteria = Criteria.from_settings(settings)  # ConfigError on a malformed vendor_product
        KeyDecoder(settings.layout, settings.variant)  # KeymapError now, not once per device later
        self.backend = backend or EvdevBackend(input_dir)
        self.input_dir = os.path.abspath(input_dir)
        self.clock = clock  # wall-clock time, the clock of evdev event timestamps
        self._bindings: dict[str, _Binding] = {}
        self._watcher = InputWatcher(self._on_change, (self.input_dir, os.path.join(self.input_dir, "by-id")))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Future | None = None
        self._closed = False

    @property
    def attached(self) -> list[str]:
        """Event paths of the devices held right now."""
        return sorted(p for p, b in self._bindings.items() if b.state is _State.ATTACHED)

    async def run(self) -> None:
        """Watch for devices and deliver frames. Returns when cancelled or closed."""
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
            if node == path:  # the node itself (a by-id link going away says nothing about the device)
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
        binding.task = self._loop.create_task(self._hold(binding), name=f"hid {self.name} {path}")

    # one task per device

    async def _hold(self, binding: _Binding) -> None:
        try:
            if await self._claim(binding):
                self._attach(binding)
                await asyncio.Event().wait()  # held until _detach cancels this task
        except Exception:  # noqa: BLE001 - a bug on one device must not take the other devices down
            log.exception("hid %s: %s failed", self.name, binding.path)
            self.on_status(self.name, "error", f"{binding.path}: internal error (see log)")
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
        """Blocking: open `path`; keep it only if it matches, grabbed when the settings say so."""
        device = self.backend.open(path)
        try:
            identity = identity_of(device, by_id_links(self.input_dir, path))
            if not self.criteria.matches(identity):
                device.close()
                return None
            if self.settings.grab:
                device.grab()
            return device
        except BaseException:
            device.close()
            raise

    def _report_open_failure(self, path: str, exc: OSError) -> None:
        if exc.errno in _GONE:
            log.debug("hid %s: %s went away before it could be opened", self.name, path)
        elif exc.errno in (errno.EACCES, errno.EPERM):
            self._report_no_access(path)
        elif exc.errno == errno.EBUSY:
            self.on_status(self.name, "error", f"{path} is grabbed by another program")
        else:
            log.warning("hid %s: cannot open %s: %s", self.name, path, exc)
            self.on_status(self.name, "error", f"cannot open {path}: {exc.strerror or exc}")

    def _report_no_access(self, path: str) -> None:
        """Unreadable, so unknown whether it is ours. Every node is unreadable for a moment after it appears
        (until udev sets its group), so this is only news while no device is held and the node may be the one."""
        configured = self.criteria.device
        if self.attached or (configured and os.path.realpath(configured) != os.path.realpath(path)):
            log.info("hid %s: no read access to %s (yet)", self.name, path)
            return
        self.on_status(self.name, "error", f"{path}: no read access: add the user to group 'input'")

    def _attach(self, binding: _Binding) -> None:
        device = binding.device
        assert device is not None and self._loop is not None
        binding.state, binding.fd, binding.grabbed = _State.ATTACHED, device.fd, self.settings.grab
        binding.retry = False
        binding.decoder = KeyDecoder(self.settings.layout, self.settings.variant)
        binding.framer = HidFramer(self.name, binding.path, self.settings.terminators,
                                   self.settings.frame_timeout_ms / 1000.0)
        self._loop.add_reader(binding.fd, self._on_readable, binding)
        log.info("hid %s: attached %s (%s)", self.name, binding.path, device.name)
        self.on_status(self.name, "attached", f"{binding.path} ({device.name})")

    # reading and framing

    def _on_readable(self, binding: _Binding) -> None:
        try:
            for _ in range(_READS_PER_WAKEUP):
                if binding.device is None:
                    return  # the sink closed us while handling a frame
                self._feed(binding, binding.device.read())
        except BlockingIOError:
            pass  # everything waiting has been read
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                self._detach(binding, "unplugged")
            else:
                self._detach(binding, f"read error: {exc.strerror}", logging.WARNING)
            return
        self._arm_timer(binding)

    def _feed(self, binding: _Binding, events) -> None:
        assert binding.decoder is not None and binding.framer is not None
        for event in events:
            if binding.state is not _State.ATTACHED:
                return  # the sink closed us while handling a frame
            frame = binding.framer.feed(binding.decoder.feed(event))
            if frame is not None:
                self._deliver(frame)

    def _arm_timer(self, binding: _Binding) -> None:
        """(Re)schedule the framer's deadline: a scan sent without terminator ends after a silence."""
        if binding.timer is not None:
            binding.timer.cancel()
            binding.timer = None
        deadline = binding.framer.deadline if binding.framer is not None else None
        if deadline is not None and binding.state is _State.ATTACHED and self._loop is not None:
            binding.timer = self._loop.call_later(max(0.0, deadline - self.clock()), self._on_deadline, binding)

    def _on_deadline(self, binding: _Binding) -> None:
        binding.timer = None
        if binding.state is not _State.ATTACHED or binding.framer is None:
            return
        frame = binding.framer.expire(self.clock())
        if frame is not None:
            self._deliver(frame)
        self._arm_timer(binding)

    def _deliver(self, frame: Frame) -> None:
        try:
            self.sink(frame)
        except Exception:  # noqa: BLE001 - a failing consumer must not stop the device being read
            log.exception("hid %s: the frame sink failed on a frame from %s", self.name, frame.device)

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
            log.log(level, "hid %s: detached %s: %s", self.name, binding.path, detail)
            self.on_status(self.name, "detached", f"{binding.path}: {detail}")

    def _teardown(self, binding: _Binding) -> None:
        """ungrab → remove reader → close → cancel timer and task. The partial frame is discarded."""
        if binding.state is _State.CLOSED:
            return
        binding.state = _State.CLOSED
        if self._bindings.get(binding.path) is binding:
            del self._bindings[binding.path]
        device, binding.device = binding.device, None
        if device is not None:
            release_device(device, binding.grabbed, binding.fd, self._loop)
        if binding.timer is not None:
            binding.timer.cancel()
        if binding.framer is not None:
            binding.framer.reset()
        if binding.task is not None and binding.task is not asyncio.current_task():
            binding.task.cancel()
