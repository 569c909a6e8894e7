"""Serial barcode scanners through pyserial: open, read on the loop, frame, survive unplugging.

The port is non-blocking and read with `loop.add_reader` on its file descriptor (no threads, no polling). Framing is
the pure `daemon.serial_framing.SerialFramer`; this module only moves bytes and time into it and frames out of it.
"""

from __future__ import annotations

import asyncio
import errno
import grp
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import serial
import serial.tools.list_ports
from serial.tools.list_ports_common import ListPortInfo

from daemon.errors import ConfigError
from daemon.scan import Frame
from daemon.serial_framing import SerialFramer
from daemon.settings import SerialScannerSettings

log = logging.getLogger(__name__)

ATTACHED, DETACHED = "attached", "detached"
READ_SIZE = 4096
BY_ID_DIR = "/dev/serial/by-id"

StatusCallback = Callable[[str, str, str], None]  # (scanner name, ATTACHED | DETACHED, human-readable reason)


class SerialScanner:
    """One configured serial scanner: delivers its frames to `sink` for as long as `run()` runs.

    `on_status(name, status, reason)` hears ATTACHED when the port opens and DETACHED when it is lost or cannot be
    opened (a retry failing the same way is not reported again). A deliberate `close()` or cancellation reports nothing.
    Frame.device is the configured port path (stable across replugs); the status reason names the node it resolved to.
    """

    def __init__(
        self,
        settings: SerialScannerSettings,
        sink: Callable[[Frame], None],
        on_status: StatusCallback | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.settings = settings
        self._sink, self._on_status, self._clock = sink, on_status, clock
        self._port = _unopened_port(settings)  # validates baud rate, parity, ... once, at start-up
        self._framer = SerialFramer(
            settings.name, settings.port, settings.framing, settings.frame_timeout_ms / 1000, settings.encoding
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reading_fd: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._lost: asyncio.Event | None = None
        self._last_status: tuple[str, str] | None = None

    @property
    def is_attached(self) -> bool:
        return self._port.is_open

    async def run(self) -> None:
        """Read frames until cancelled; reopen the port every `reconnect_seconds` while it is gone."""
        self._loop = asyncio.get_running_loop()
        try:
            while True:
                if self._attach():
                    await self._lost.wait()
                await asyncio.sleep(self.settings.reconnect_seconds)
        finally:
            self.close()

    def close(self) -> None:
        """Stop reading and close the port. Safe to call any number of times."""
        if self._reading_fd is not None and self._loop is not None:
            self._loop.remove_reader(self._reading_fd)
        self._reading_fd = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._framer.reset()
        self._port.close()  # pyserial's close is a no-op on a closed port

    def _attach(self) -> bool:
        path = self.settings.port
        self._port.port = path
        try:
            self._port.open()
        except (serial.SerialException, OSError) as error:
            self._report(DETACHED, describe_open_error(path, error))
            return False
        self._lost = asyncio.Event()
        self._reading_fd = self._port.fileno()
        self._loop.add_reader(self._reading_fd, self._on_readable)
        self._report(ATTACHED, f"{path} ({os.path.realpath(path)}) at {_line_settings(self.settings)}")
        return True

    def _detach(self, reason: str) -> None:
        self.close()
        self._report(DETACHED, reason)
        self._lost.set()

    def _on_readable(self) -> None:
        try:
            data = os.read(self._reading_fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return  # woken without data; the next readiness brings it
        except OSError as error:
            self._detach(f"{self.settings.port}: read failed: {error.strerror} (unplugged?)")
            return
        if not data:
            self._detach(f"{self.settings.port}: hung up (unplugged?)")  # a vanished tty reads as end of file
            return
        self._deliver(self._framer.feed(data, self._clock()))

    def _on_deadline(self) -> None:
        self._timer = None
        self._deliver(self._framer.expire(self._clock()))

    def _deliver(self, frames: list[Frame]) -> None:
        for frame in frames:
            try:
                self._sink(frame)
            except Exception:  # a bug downstream must not stop this scanner or lose the frames after it
                log.exception("scanner %s: the frame sink failed on a frame of %d characters",  # not the text: an ID
                              self.settings.name, len(frame.text))
        self._schedule_deadline()

    def _schedule_deadline(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self._framer.deadline
        if deadline is not None:
            # at least a millisecond: the loop's timer may fire a hair before the wall clock reaches the deadline
            delay = max(deadline - self._clock(), 0.001)
            self._timer = self._loop.call_later(delay, self._on_deadline)

    def _report(self, status: str, reason: str) -> None:
        """Tell the status callback about a change; a retry failing the same way again is not news."""
        if self._last_status == (status, reason):
            return
        self._last_status = (status, reason)
        log.log(logging.INFO if status == ATTACHED else logging.WARNING, "scanner %s %s: %s",
                self.settings.name, status, reason)
        if self._on_status is not None:
            self._on_status(self.settings.name, status, reason)


def _unopened_port(settings: SerialScannerSettings) -> serial.Serial:
    """A configured but closed pyserial port; bad line settings surface here as a ConfigError."""
    try:
        return serial.Serial(
            None, settings.baudrate, settings.bytesize, settings.parity, settings.stopbits, timeout=0, exclusive=True
        )
    except ValueError as error:
        raise ConfigError("<settings>", f"scanners.{settings.name}", str(error)) from None


def _line_settings(settings: SerialScannerSettings) -> str:
    stopbits = f"{settings.stopbits:g}"
    return f"{settings.baudrate} {settings.bytesize}{settings.parity}{stopbits}"


_OPEN_ERRORS = {
    errno.ENOENT: "not found (unplugged, or the wrong path?)",
    errno.ENODEV: "not found (unplugged, or the wrong path?)",
    errno.EACCES: "permission denied (is tagd's user in the port's group, e.g. dialout?)",
    errno.EPERM: "permission denied (is tagd's user in the port's group, e.g. dialout?)",
    errno.EBUSY: "busy: another program has it open",
    errno.EWOULDBLOCK: "busy: another program holds it exclusively",
    errno.ENOTTY: "is not a serial port",
}


def describe_open_error(path: str, error: Exception) -> str:
    """One clear line for why `path` could not be opened."""
    known = _OPEN_ERRORS.get(getattr(error, "errno", None) or 0)
    return f"cannot open {path}: {known or error}"


def list_serial_ports(by_id_dir: str = BY_ID_DIR) -> list[dict]:
    """Serial ports for `tagd devices`: pyserial's list plus /dev/serial/by-id links, one entry per device.

    Each entry: by_id (link path or None), device, vendor_product ('abcd:1234' or None), description,
    accessible (this user can open it read-write) and reason (why not, else None).
    """
    by_id = _by_id_links(by_id_dir)
    known = {info.device: info for info in serial.tools.list_ports.comports()}
    devices = sorted(set(known) | set(by_id))
    return [_port_entry(device, known.get(device), by_id.get(device)) for device in devices]


def _by_id_links(by_id_dir: str) -> dict[str, str]:
    """Resolved device path -> its by-id link (dangling links map to where they point)."""
    directory = Path(by_id_dir)
    if not directory.is_dir():
        return {}
    return {os.path.realpath(link): str(link) for link in sorted(directory.iterdir()) if link.is_symlink()}


def _port_entry(device: str, info: ListPortInfo | None, by_id: str | None) -> dict:
    vid, pid = (info.vid, info.pid) if info is not None else (None, None)
    reason = _access_problem(device)
    return {
        "by_id": by_id,
        "device": device,
        "vendor_product": f"{vid:04x}:{pid:04x}" if vid is not None and pid is not None else None,
        "description": info.description if info is not None and info.description != "n/a" else "",
        "accessible": reason is None,
        "reason": reason,
    }


def _access_problem(device: str) -> str | None:
    if not os.path.exists(device):
        return "missing (the link points nowhere)"
    if os.access(device, os.R_OK | os.W_OK):
        return None
    status = os.stat(device)
    try:
        group = grp.getgrgid(status.st_gid).gr_name
    except KeyError:
        group = str(status.st_gid)
    return f"no read/write permission (mode {status.st_mode & 0o777:03o}, group {group}: add tagd's user to it)"
