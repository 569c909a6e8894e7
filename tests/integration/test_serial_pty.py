"""SerialScanner end to end over real pseudo-terminals: the test holds the master end, the scanner opens the slave.

The scanner is given a symlink we control (like /dev/serial/by-id/...); replugging re-points it at a new pty.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.scan import Frame, Reason
from daemon.settings import SerialFraming, SerialScannerSettings
from drivers.serial import ATTACHED, DETACHED, SerialScanner, list_serial_ports

WAIT_S = 5.0  # generous: only ever reached when something is broken


class PtyCable:
    """A scanner cable made of ptys: plug() makes a new pty and points the link at it, unplug() closes the master."""

    def __init__(self, link: Path):
        self.link = link
        self.master: int | None = None
        self.slave_path = ""

    def plug(self) -> None:
        master, slave = os.openpty()
        self.master, self.slave_path = master, os.ttyname(slave)
        os.close(slave)  # the scanner opens the slave by path; the pty lives on while the master is open
        self.point_link_at(self.slave_path)

    def point_link_at(self, target: str) -> None:
        staging = self.link.with_name(self.link.name + ".new")
        staging.unlink(missing_ok=True)
        staging.symlink_to(target)
        os.replace(staging, self.link)  # atomic, as udev does it

    def unplug(self) -> None:
        if self.master is not None:
            os.close(self.master)
            self.master = None

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    async def drained(self) -> None:
        """Wait until the scanner has read everything sent (the slave's input queue is empty)."""
        probe = os.open(self.slave_path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            async with asyncio.timeout(WAIT_S):
                while struct.unpack("i", fcntl.ioctl(probe, termios.TIOCINQ, b"\0" * 4))[0]:
                    await asyncio.sleep(0.005)
        finally:
            os.close(probe)


class Rig:
    """A running SerialScanner on a PtyCable, with its frames and status reports as queues to await."""

    def __init__(self, tmp_path: Path, **settings):
        self.cable = PtyCable(tmp_path / "scanner")
        defaults = dict(name="desk", port=str(self.cable.link), reconnect_seconds=0.05, frame_timeout_ms=200.0)
        self.settings = SerialScannerSettings(**(defaults | settings))
        self.frames: asyncio.Queue[Frame] = asyncio.Queue()
        self.statuses: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
        self.scanner = SerialScanner(self.settings, self.frames.put_nowait, self._status)
        self.task: asyncio.Task | None = None

    def _status(self, name: str, status: str, reason: str) -> None:
        self.statuses.put_nowait((name, status, reason))

    async def start(self, plugged: bool = True) -> None:
        if plugged:
            self.cable.plug()
        self.task = asyncio.create_task(self.scanner.run())
        if plugged:
            await self.status(ATTACHED)

    async def status(self, expected: str) -> str:
        name, status, reason = await asyncio.wait_for(self.statuses.get(), WAIT_S)
        assert (name, status) == ("desk", expected), reason
        return reason

    async def frame(self) -> Frame:
        return await asyncio.wait_for(self.frames.get(), WAIT_S)

    async def frame_texts(self, count: int) -> list[str]:
        return [(await self.frame()).text for _ in range(count)]

    async def stop(self) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        self.cable.unplug()


def run_rig(tmp_path: Path, story: Callable[[Rig], Awaitable[None]], **settings) -> None:
    async def main() -> None:
        rig = Rig(tmp_path, **settings)
        try:
            await story(rig)
        finally:
            if rig.task is not None and not rig.task.done():
                await rig.stop()
            rig.cable.unplug()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("framing", "chunks"),
    [
        (SerialFraming.CR, [b"AB12\r", b"CD34\r"]),
        (SerialFraming.LF, [b"AB12\n", b"CD", b"34\n"]),
        (SerialFraming.CRLF, [b"AB12\r", b"\n", b"CD34\r\n"]),
        (SerialFraming.ANY_EOL, [b"AB12\r", b"\n", b"CD34\n"]),
        (SerialFraming.STX_ETX, [b"noise\x02AB12\x03\r\n", b"\x02CD34\x03"]),
    ],
)
def test_scans_arrive_framed_for_each_terminator_mode(tmp_path, framing, chunks):
    async def story(rig: Rig) -> None:
        await rig.start()
        for chunk in chunks:
            rig.cable.send(chunk)
        first, second = await rig.frame(), await rig.frame()
        assert (first.text, second.text) == ("AB12", "CD34")
        assert (first.scanner, first.device, first.error) == ("desk", rig.settings.port, None)
        assert rig.frames.empty()  # no empty frame from a split CRLF

    run_rig(tmp_path, story, framing=framing)


def test_timeout_framing_ends_a_scan_after_silence(tmp_path):
    async def story(rig: Rig) -> None:
        await rig.start()
        rig.cable.send(b"AB")
        rig.cable.send(b"12\r\n")
        assert (await rig.frame()).text == "AB12\r\n"
        rig.cable.send(b"CD34")
        assert (await rig.frame()).text == "CD34"

    run_rig(tmp_path, story, framing=SerialFraming.TIMEOUT)


def test_line_without_terminator_is_delivered_after_silence(tmp_path):
    async def story(rig: Rig) -> None:
        await rig.start()
        rig.cable.send(b"AB12")
        frame = await rig.frame()
        assert (frame.text, frame.error) == ("AB12", None)

    run_rig(tmp_path, story, framing=SerialFraming.CR)


def test_garbage_bytes_give_a_not_text_frame_and_scanning_goes_on(tmp_path):
    async def story(rig: Rig) -> None:
        await rig.start()
        rig.cable.send(b"\xff\xfe\x80\rAB12\r")
        garbage, scan = await rig.frame(), await rig.frame()
        assert (garbage.text, garbage.error) == ("\\xff\\xfe\\x80", Reason.NOT_TEXT)
        assert (scan.text, scan.error) == ("AB12", None)

    run_rig(tmp_path, story, framing=SerialFraming.CR)


def test_four_kib_without_terminator_is_one_overflow_frame_then_scans_resume(tmp_path):
    async def story(rig: Rig) -> None:
        await rig.start()
        rig.cable.send(b"7" * 4096 + b"\r")
        rig.cable.send(b"AB12\r")
        overflow, scan = await rig.frame(), await rig.frame()
        assert overflow.error == Reason.OVERFLOW and overflow.text.startswith("7777")
        assert (scan.text, scan.error) == ("AB12", None)

    run_rig(tmp_path, story, framing=SerialFraming.CR)


def test_unplug_reports_detached_and_replug_resumes_scanning(tmp_path):
    async def story(rig: Rig) -> None:
        await rig.start()
        rig.cable.send(b"AB1")  # a scan cut off by the unplug must not reappear later
        await rig.cable.drained()
        rig.cable.unplug()
        reason = await rig.status(DETACHED)
        assert reason.startswith(rig.settings.port) and "unplugged" in reason  # Linux: EOF; others: EIO
        assert not rig.scanner.is_attached
        rig.cable.plug()
        await rig.status(ATTACHED)
        rig.cable.send(b"CD34\r")
        frame = await rig.frame()
        assert (frame.text, frame.error) == ("CD34", None)
        assert rig.frames.empty()

    run_rig(tmp_path, story, framing=SerialFraming.CR)


def test_scanner_waits_for_a_port_that_is_not_there_yet(tmp_path):
    async def story(rig: Rig) -> None:
        rig.cable.point_link_at(str(tmp_path / "nothing-here"))
        await rig.start(plugged=False)
        assert "not found" in await rig.status(DETACHED)
        await asyncio.sleep(3 * rig.settings.reconnect_seconds)  # let it retry: the same failure is reported once
        assert rig.statuses.empty()
        rig.cable.plug()
        await rig.status(ATTACHED)
        rig.cable.send(b"AB12\r")
        assert (await rig.frame()).text == "AB12"

    run_rig(tmp_path, story, framing=SerialFraming.CR)


def test_port_held_exclusively_elsewhere_is_reported_busy_and_retried(tmp_path):
    async def story(rig: Rig) -> None:
        rig.cable.plug()
        holder = os.open(rig.cable.slave_path, os.O_RDWR | os.O_NOCTTY)
        try:
            fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
            await rig.start(plugged=False)
            assert "busy" in await rig.status(DETACHED)
        finally:
            os.close(holder)
        await rig.status(ATTACHED)
        rig.cable.send(b"AB12\r")
        assert (await rig.frame()).text == "AB12"

    run_rig(tmp_path, story, framing=SerialFraming.CR)


def test_something_that_is_not_a_serial_port_is_reported_not_crashed_on(tmp_path):
    async def story(rig: Rig) -> None:
        plain = tmp_path / "plain-file"
        plain.write_bytes(b"")
        rig.cable.point_link_at(str(plain))
        await rig.start(plugged=False)
        reason = await rig.status(DETACHED)
        assert reason.startswith(f"cannot open {rig.settings.port}")
        assert not rig.task.done()

    run_rig(tmp_path, story, framing=SerialFraming.CR)


def open_fds_to(path: str) -> list[int]:
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == path:
                fds.append(int(fd))
        except OSError:
            pass  # the fd listing itself, closed since
    return fds


def test_cancelling_closes_the_port_and_leaks_no_descriptors(tmp_path):
    async def story(rig: Rig) -> None:
        before = len(os.listdir("/proc/self/fd"))
        await rig.start()
        rig.cable.send(b"AB12\r")
        assert (await rig.frame()).text == "AB12"
        assert open_fds_to(rig.cable.slave_path)  # the check below can see an open port
        slave = rig.cable.slave_path
        await rig.stop()  # cancels run() and unplugs the cable
        assert open_fds_to(slave) == []
        assert len(os.listdir("/proc/self/fd")) == before
        rig.scanner.close()  # idempotent after cancellation
        rig.scanner.close()

    run_rig(tmp_path, story, framing=SerialFraming.CR)


def test_replugging_many_times_leaks_no_descriptors(tmp_path):
    async def story(rig: Rig) -> None:
        await rig.start()
        baseline = len(os.listdir("/proc/self/fd"))
        for n in range(5):
            rig.cable.unplug()
            await rig.status(DETACHED)
            rig.cable.plug()
            await rig.status(ATTACHED)
            rig.cable.send(b"SCAN%d\r" % n)
            assert (await rig.frame()).text == f"SCAN{n}"
            assert len(os.listdir("/proc/self/fd")) == baseline

    run_rig(tmp_path, story, framing=SerialFraming.CR)


def test_unusable_line_settings_are_a_config_error_at_start_up():
    settings = SerialScannerSettings(name="desk", port="/dev/ttyUSB0", parity="X")
    with pytest.raises(ConfigError) as raised:
        SerialScanner(settings, lambda frame: None)
    assert raised.value.key == "scanners.desk"


def test_list_serial_ports_shows_by_id_links_and_whether_they_open(tmp_path):
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    master, slave = os.openpty()
    try:
        slave_path = os.ttyname(slave)
        (by_id / "usb-Acme_Scanner_0001-if00").symlink_to(slave_path)
        (by_id / "usb-Acme_Gone_0002-if00").symlink_to(tmp_path / "gone")
        ports = {p["by_id"]: p for p in list_serial_ports(str(by_id))}
    finally:
        os.close(slave)
        os.close(master)
    present = ports[str(by_id / "usb-Acme_Scanner_0001-if00")]
    gone = ports[str(by_id / "usb-Acme_Gone_0002-if00")]
    assert present | {"description": ""} == {
        "by_id": str(by_id / "usb-Acme_Scanner_0001-if00"),
        "device": slave_path,
        "vendor_product": None,
        "description": "",
        "accessible": True,
        "reason": None,
    }
    assert (gone["device"], gone["accessible"]) == (str(tmp_path / "gone"), False)
    assert "missing" in gone["reason"]
