"""The staff button port: edges from a device in, gestures (`daemon.gestures.Gesture`) out to `on_gesture`.

- `EvdevButton`: one key of an input device (the Pi's gpio-key overlay, debounced by the kernel; a USB button or
  keypad). Found, grabbed and hotplugged with the HID scanner's pieces: the evdev backend, the inotify watcher,
  the off-loop open and the ordered teardown. Autorepeat (value 2) is ignored.
- `GpiodButton`: a GPIO input line through libgpiod v2 (edge events on the request's fd, with add_reader).
- `FakeButton`: `press()`, `hold(seconds)`, raw `edge()`; runs the same gesture logic on any Scheduler.

Long presses fire at their deadline on a timer (a `daemon.scheduler.Scheduler`, the event loop by default).
"""

from __future__ import annotations

import asyncio
import errno
import fnmatch
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from evdev import ecodes

from daemon.errors import ConfigError
from daemon.gestures import Gesture, GestureDetector
from daemon.scheduler import Cancellable, Scheduler
from daemon.settings import ButtonSettings

from .base import StatusSink, ignore_status
from .evdev_backend import (EvdevBackend, InputBackend, InputDeviceLike, by_id_links, identity_of, is_event_node,
                            open_off_loop, release_device)
from .gpio import request_input
from .hotplug import Change, InputWatcher
from .matching import DeviceIdentity, parse_vendor_product

log = logging.getLogger("tagd.button")

GestureSink = Callable[[Gesture], None]
_GONE = (errno.ENOENT, errno.ENODEV, errno.ENXIO)
_READS_PER_WAKEUP = 16


class Button(Protocol):
    async def run(self) -> None: ...

    def close(self) -> None: ...


class GestureTimer:
    """Feeds edges to a GestureDetector and calls its `expire` when its deadline comes, on `scheduler`."""

    def __init__(self, detector: GestureDetector, on_gesture: GestureSink, scheduler: Scheduler, name: str = ""):
        self.detector, self.on_gesture, self.scheduler, self.name = detector, on_gesture, scheduler, name
        self._timer: Cancellable | None = None
        self._armed_for = 0.0

    def edge(self, pressed: bool, at: float | None = None) -> None:
        """The button went down (`pressed`) or up at `at` (default: now on the scheduler's clock)."""
        self._emit(self.detector.edge(pressed, self.scheduler.time() if at is None else at))
        self._arm()

    def reset(self) -> None:
        self._cancel()
        self.detector.reset()

    def _arm(self) -> None:
        self._cancel()
        deadline = self.detector.deadline
        if deadline is not None:
            self._armed_for = deadline
            self._timer = self.scheduler.call_later(max(0.0, deadline - self.scheduler.time()), self._expire)

    def _expire(self) -> None:
        self._timer = None
        # A loop timer may run a hair early (clock resolution): it ran because the deadline came.
        self._emit(self.detector.expire(max(self.scheduler.time(), self._armed_for)))
        self._arm()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _emit(self, gestures: list[Gesture]) -> None:
        for gesture in gestures:
            log.debug("button %s: %s", self.name, gesture)
            try:
                self.on_gesture(gesture)
            except Exception:  # noqa: BLE001 - a failing consumer must not stop the button being read
                log.exception("button %s: the gesture handler failed on %s", self.name, gesture)


def _detector(settings: ButtonSettings) -> GestureDetector:
    return GestureDetector(settings.long_press_s, settings.debounce_ms / 1000.0)


def key_code(name: str) -> int:
    """'KEY_PROG1' → its code; 'BTN_0' works too. ConfigError for a name evdev does not know."""
    code = ecodes.ecodes.get(name.strip().upper()) if name.strip().upper().startswith(("KEY_", "BTN_")) else None
    if code is None:
        raise ConfigError("", "button.key", f"{name!r} is not an evdev key code name such as \"KEY_PROG1\"")
    return code


@dataclass(frozen=True)
class ButtonCriteria:
    """Which input device is the button: it must report `key`, and every criterion that is set must hold."""

    key: int
    device: str = ""
    vendor_product: tuple[int, int] | None = None
    name_pattern: str = ""

    @classmethod
    def from_settings(cls, settings: ButtonSettings) -> ButtonCriteria:
        return cls(key_code(settings.key), settings.device, parse_vendor_product(settings.vendor_product),
                   settings.name_pattern)

    def matches(self, identity: DeviceIdentity, resolve: Callable[[str], str] = os.path.realpath) -> bool:
        if self.key not in identity.keys:
            return False
        if self.device and resolve(self.device) != resolve(identity.path):
            return False
        if self.vendor_product and self.vendor_product != (identity.vendor, identity.product):
            return False
        return not self.name_pattern or fnmatch.fnmatchcase(identity.name.lower(), self.name_pattern.lower())


@dataclass(eq=False)
class _Binding:
    path: str
    gestures: GestureTimer
    device: InputDeviceLike | None = None
    fd: int = -1
    attached: bool = False
    closed: bool = False
    retry: bool = False  # a change arrived while opening: try again if this attempt fails
    task: asyncio.Task | None = None


class EvdevButton:
    """Every input device matching the settings is a button (each with its own gesture state)."""

    def __init__(self, settings: ButtonSettings, on_gesture: GestureSink, on_status: StatusSink | None = None, *,
                 backend: InputBackend | None = None, input_dir: str = "/dev/input",
                 scheduler: Scheduler | None = None):
        self.settings, self.on_gesture = settings, on_gesture
        self.on_status = on_status or ignore_status
        self.criteria = ButtonCriteria.from_settings(settings)  # ConfigError now, not at the first device
        self.backend = backend or EvdevBackend(input_dir)
        self.input_dir = os.path.abspath(input_dir)
        self.scheduler = scheduler
        self._bindings: dict[str, _Binding] = {}
        link_dirs = (os.path.join(self.input_dir, "by-id"), os.path.join(self.input_dir, "by-path"))
        self._watcher = InputWatcher(self._on_change, (self.input_dir, *link_dirs))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Future | None = None
        self._closed = False

    @property
    def attached(self) -> list[str]:
        return sorted(path for path, binding in self._bindings.items() if binding.attached)

    async def run(self) -> None:
        if self._closed:
            return
        self._loop = asyncio.get_running_loop()
        self.scheduler = self.scheduler or self._loop
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

    def _on_change(self, change: Change, path: str) -> None:
        if change is Change.RESCAN:
            self._rescan()
            return
        node = self._event_node(path)
        if node is None:
            return
        if change is Change.REMOVED:
            if node == path and node in self._bindings:
                self._detach(self._bindings[node], "unplugged")
            return
        self._consider(node)

    def _event_node(self, path: str) -> str | None:
        if os.path.dirname(path) != self.input_dir:  # a by-id or by-path link
            path = os.path.join(self.input_dir, os.path.basename(os.path.realpath(path)))
            if not os.path.exists(path):
                return None
        return path if is_event_node(path) else None

    def _rescan(self) -> None:
        present = set(self.backend.list_event_paths())
        for path in [p for p in self._bindings if p not in present]:
            self._detach(self._bindings[path], "unplugged")
        for path in sorted(present):
            self._consider(path)

    def _consider(self, path: str) -> None:
        if self._closed or self._loop is None:
            return
        binding = self._bindings.get(path)
        if binding is not None:
            binding.retry = not binding.attached
            return
        assert self.scheduler is not None
        gestures = GestureTimer(_detector(self.settings), self.on_gesture, self.scheduler, path)
        binding = self._bindings[path] = _Binding(path, gestures)
        binding.task = self._loop.create_task(self._hold(binding), name=f"button {path}")

    async def _hold(self, binding: _Binding) -> None:
        try:
            binding.device = await open_off_loop(self._open_matching, binding.path)
            if binding.device is not None:
                self._attach(binding)
                await asyncio.Event().wait()  # held until _detach cancels this task
        except OSError as exc:
            self._report_open_failure(binding.path, exc)
        except Exception:  # noqa: BLE001 - a bug on one device must not take the others down
            log.exception("button: %s failed", binding.path)
        finally:
            retry = binding.retry and not binding.attached
            self._teardown(binding)
            if retry:
                self._consider(binding.path)

    def _open_matching(self, path: str) -> InputDeviceLike | None:
        """Blocking: open `path`; keep it only if it is the button, grabbed when the settings say so."""
        device = self.backend.open(path)
        try:
            links = by_id_links(self.input_dir, path)
            if not self.criteria.matches(identity_of(device, links)):
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
            log.debug("button: %s went away before it could be opened", path)
        elif exc.errno in (errno.EACCES, errno.EPERM):
            log.info("button: no read access to %s (yet)", path)  # udev sets the group a moment later
        elif exc.errno == errno.EBUSY:
            self.on_status("button", "error", f"{path} is grabbed by another program")
        else:
            log.warning("button: cannot open %s: %s", path, exc)
            self.on_status("button", "error", f"cannot open {path}: {exc.strerror or exc}")

    def _attach(self, binding: _Binding) -> None:
        assert binding.device is not None and self._loop is not None
        binding.attached, binding.fd, binding.retry = True, binding.device.fd, False
        self._loop.add_reader(binding.fd, self._on_readable, binding)
        log.info("button: attached %s (%s)", binding.path, binding.device.name)
        self.on_status("button", "attached", f"{binding.path} ({binding.device.name})")

    def _on_readable(self, binding: _Binding) -> None:
        try:
            for _ in range(_READS_PER_WAKEUP):
                if binding.device is None:
                    return  # a gesture handler closed us
                self._feed(binding, binding.device.read())
        except BlockingIOError:
            pass
        except OSError as exc:
            self._detach(binding, "unplugged" if exc.errno == errno.ENODEV else f"read error: {exc.strerror}")

    def _feed(self, binding: _Binding, events: Any) -> None:
        for event in events:
            if event.type == ecodes.EV_KEY and event.code == self.criteria.key and event.value in (0, 1):
                binding.gestures.edge(event.value == 1)  # value 2 is autorepeat: a hold, not a new press

    def _detach(self, binding: _Binding, detail: str) -> None:
        was_attached = binding.attached
        self._teardown(binding)
        if was_attached:
            log.info("button: detached %s: %s", binding.path, detail)
            self.on_status("button", "detached", f"{binding.path}: {detail}")

    def _teardown(self, binding: _Binding) -> None:
        """ungrab → remove reader → close → forget the press in progress → cancel the task."""
        if binding.closed:
            return
        binding.closed, binding.attached = True, False
        if self._bindings.get(binding.path) is binding:
            del self._bindings[binding.path]
        device, binding.device = binding.device, None
        if device is not None:
            release_device(device, self.settings.grab, binding.fd, self._loop)
        binding.gestures.reset()
        if binding.task is not None and binding.task is not asyncio.current_task():
            binding.task.cancel()


class GpiodButton:
    """A GPIO input line; both edges are read from the line request's fd. Needs `gpiod` (imported on run)."""

    def __init__(self, settings: ButtonSettings, on_gesture: GestureSink, *, scheduler: Scheduler | None = None):
        self.settings, self.on_gesture, self.scheduler = settings, on_gesture, scheduler
        self._request: Any = None
        self._gestures: GestureTimer | None = None
        self._stopped: asyncio.Future | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self) -> None:
        """Hold the line until closed. DeviceError when it cannot be requested (no gpiod, no chip, line busy)."""
        self._loop = asyncio.get_running_loop()
        settings = self.settings
        self._request = request_input(settings.chip, settings.line, settings.active_low, settings.bias)
        self._gestures = GestureTimer(_detector(settings), self.on_gesture, self.scheduler or self._loop,
                                      f"{settings.chip}:{settings.line}")
        self._stopped = self._loop.create_future()
        self._loop.add_reader(self._request.fd, self._on_readable)
        log.info("button: holding GPIO line %s on %s", settings.line, settings.chip)
        try:
            await self._stopped
        finally:
            self.close()

    def close(self) -> None:
        request, self._request = self._request, None
        if request is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(request.fd)
            request.release()
        if self._gestures is not None:
            self._gestures.reset()
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    def _on_readable(self) -> None:
        from gpiod.edge_event import EdgeEvent

        assert self._request is not None and self._gestures is not None
        for event in self._request.read_edge_events():
            # Edges are logical (active_low already applied); timestamps are CLOCK_MONOTONIC, the loop's clock.
            self._gestures.edge(event.event_type is EdgeEvent.Type.RISING_EDGE, event.timestamp_ns / 1e9)


class FakeButton:
    """A button a test (or a demo) presses. Runs the real gesture logic on `scheduler`."""

    def __init__(self, settings: ButtonSettings, on_gesture: GestureSink, scheduler: Scheduler):
        self.scheduler = scheduler
        self.gestures = GestureTimer(_detector(settings), on_gesture, scheduler, "fake")
        self._stopped = asyncio.Event()

    def down(self) -> None:
        self.gestures.edge(True)

    def up(self) -> None:
        self.gestures.edge(False)

    def press(self) -> None:
        """A quick press and release."""
        self.down()
        self.up()

    def hold(self, seconds: float) -> Cancellable:
        """Press now and release `seconds` later on the scheduler's clock (ManualScheduler: when advanced)."""
        self.down()
        return self.scheduler.call_later(seconds, self.up)

    def edge(self, pressed: bool) -> None:
        """A raw edge, as a bouncing contact produces them."""
        self.gestures.edge(pressed)

    async def run(self) -> None:
        await self._stopped.wait()

    def close(self) -> None:
        self.gestures.reset()
        self._stopped.set()


def open_button(settings: ButtonSettings, on_gesture: GestureSink, on_status: StatusSink | None = None, *,
                scheduler: Scheduler | None = None) -> Button | None:
    """The button the settings describe; None for kind 'none'. 'fake' needs `scheduler` (the running loop)."""
    if settings.kind == "evdev":
        return EvdevButton(settings, on_gesture, on_status, scheduler=scheduler)
    if settings.kind == "gpiod":
        return GpiodButton(settings, on_gesture, scheduler=scheduler)
    if settings.kind == "fake":
        if scheduler is None:
            raise ConfigError("", "button.type", "a fake button needs a scheduler (the event loop)")
        return FakeButton(settings, on_gesture, scheduler)
    return None
