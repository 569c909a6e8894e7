"""The staff button port: edges from a device in, gestures (`daemon.gestures.Gesture`) out to `on_gesture`.

- `EvdevButton`: one key of an input device (the Pi's gpio-key overlay, debounced by the kernel; a USB button or
  keypad). Found, grabbed, hotplugged and let go by `drivers.evdev_watch.EvdevDeviceSet`, as HID scanners are;
  each matching device gets its own gesture state. Autorepeat (value 2) is ignored.
- `GpiodButton`: a GPIO input line through libgpiod v2 (edge events on the request's fd, with add_reader).
- `FakeButton`: `press()`, `hold(seconds)`, raw `edge()`; runs the same gesture logic on any Scheduler.

Long presses fire at their deadline on a timer (a `daemon.scheduler.Scheduler`, the event loop by default).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import evdev
from evdev import ecodes

from daemon.errors import ConfigError
from daemon.gestures import Gesture, GestureDetector
from daemon.scheduler import Cancellable, Scheduler
from daemon.settings import ButtonSettings

from .base import StatusSink, ignore_status
from .evdev_backend import EvdevBackend, InputBackend
from .evdev_watch import DeviceRole, EvdevDeviceSet
from .gpio import request_input
from .matching import DeviceIdentity, parse_vendor_product

log = logging.getLogger("tagd.button")

GestureSink = Callable[[Gesture], None]


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
        role = DeviceRole(label="button", status_name="button", log=log, grab=settings.grab,
                          matches=self.criteria.matches, open_session=self._open_session,
                          link_dirs=("by-id", "by-path"))
        self._devices = EvdevDeviceSet(role, self.on_status, self.backend, self.input_dir)

    @property
    def attached(self) -> list[str]:
        return self._devices.attached

    async def run(self) -> None:
        self.scheduler = self.scheduler or asyncio.get_running_loop()
        await self._devices.run()

    def close(self) -> None:
        """Release every device and stop watching. Safe to call more than once."""
        self._devices.close()

    def _open_session(self, path: str) -> _KeySession:
        assert self.scheduler is not None
        return _KeySession(self.criteria.key, GestureTimer(_detector(self.settings), self.on_gesture,
                                                           self.scheduler, path))


class _KeySession:
    """One held button device: edges of its `key` go to its own gesture state."""

    def __init__(self, key: int, gestures: GestureTimer):
        self.key, self.gestures = key, gestures

    def feed(self, event: evdev.InputEvent) -> None:
        if event.type == ecodes.EV_KEY and event.code == self.key and event.value in (0, 1):
            self.gestures.edge(event.value == 1)  # value 2 is autorepeat: a hold, not a new press

    def read_done(self) -> None:
        """Nothing waits for the end of a read: long presses have their own timer."""

    def close(self) -> None:
        self.gestures.reset()  # forget the press in progress


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
