"""The USB HID (evdev) scanner driver: find the matching input devices, hold them, turn their keys into frames.

One HidScanner serves one [[scanners]] entry of kind 'hid'. Several devices may match it (two scanners on one
reader): each gets its own `_ScanSession` (KeyDecoder and HidFramer), so their keystrokes never mix.

Finding, holding, reading and letting go of the devices (hotplug, off-loop open and grab, ordered teardown) is the
shared `drivers.evdev_watch.EvdevDeviceSet`; this module says which devices are scanners and what their keys mean.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

import evdev

from daemon.framing import HidFramer
from daemon.keys import KeyDecoder
from daemon.scan import Frame
from daemon.settings import HidScannerSettings

from .base import FrameSink, StatusSink, ignore_status
from .evdev_backend import EvdevBackend, InputBackend
from .evdev_watch import DeviceRole, EvdevDeviceSet
from .matching import Criteria

log = logging.getLogger("tagd.hid")


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
        role = DeviceRole(label=f"hid {self.name}", status_name=self.name, log=log, grab=settings.grab,
                          matches=self.criteria.matches, open_session=self._open_session,
                          no_access_is_news=self._no_access_is_news, read_error_level=logging.WARNING,
                          report_internal_errors=True)
        self._devices = EvdevDeviceSet(role, self.on_status, self.backend, self.input_dir)

    @property
    def attached(self) -> list[str]:
        """Event paths of the devices held right now."""
        return self._devices.attached

    async def run(self) -> None:
        """Watch for devices and deliver frames. Returns when cancelled or closed."""
        await self._devices.run()

    def close(self) -> None:
        """Release every device and stop watching. Safe to call more than once."""
        self._devices.close()

    def _open_session(self, path: str) -> _ScanSession:
        settings = self.settings
        framer = HidFramer(self.name, path, settings.terminators, settings.frame_timeout_ms / 1000.0)
        decoder = KeyDecoder(settings.layout, settings.variant)
        return _ScanSession(decoder, framer, self._deliver, self.clock, asyncio.get_running_loop())

    def _no_access_is_news(self, path: str) -> bool:
        """Unreadable, so unknown whether it is ours. Every node is unreadable for a moment after it appears
        (until udev sets its group), so this is only news while no device is held and the node may be the one."""
        configured = self.criteria.device
        return not self.attached and not (configured and os.path.realpath(configured) != os.path.realpath(path))

    def _deliver(self, frame: Frame) -> None:
        try:
            self.sink(frame)
        except Exception:  # noqa: BLE001 - a failing consumer must not stop the device being read
            log.exception("hid %s: the frame sink failed on a frame from %s", self.name, frame.device)


class _ScanSession:
    """One held scanner device: its own decoder and framer, and the framer's deadline as a loop timer."""

    def __init__(self, decoder: KeyDecoder, framer: HidFramer, deliver: FrameSink, clock: Callable[[], float],
                 loop: asyncio.AbstractEventLoop):
        self.decoder, self.framer, self.deliver, self.clock, self.loop = decoder, framer, deliver, clock, loop
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False

    def feed(self, event: evdev.InputEvent) -> None:
        frame = self.framer.feed(self.decoder.feed(event))
        if frame is not None:
            self.deliver(frame)

    def read_done(self) -> None:
        self._arm_timer()

    def close(self) -> None:
        """The partial frame is discarded."""
        self.closed = True
        self._cancel_timer()
        self.framer.reset()

    def _arm_timer(self) -> None:
        """(Re)schedule the framer's deadline: a scan sent without terminator ends after a silence."""
        self._cancel_timer()
        deadline = self.framer.deadline
        if deadline is not None and not self.closed:
            self.timer = self.loop.call_later(max(0.0, deadline - self.clock()), self._on_deadline)

    def _on_deadline(self) -> None:
        self.timer = None
        if self.closed:
            return
        frame = self.framer.expire(self.clock())
        if frame is not None:
            self.deliver(frame)
        self._arm_timer()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
