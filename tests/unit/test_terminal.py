import asyncio
import os

from daemon.scan import Reason
from daemon.settings import StdinScannerSettings
from drivers.terminal import LineSplitter, StdinScanner


def test_lines_split_across_reads_come_out_whole():
    s = LineSplitter()
    assert s.feed(b"A1") == []
    assert s.feed(b"23\r\nB4") == [("A123", None)]
    assert s.finish() == [("B4", None)]


def test_bytes_that_are_not_utf8_are_reported_not_crashed_on():
    assert LineSplitter().feed(b"\xff\xfeAB\n") == [("\\xff\\xfeAB", Reason.NOT_TEXT)]


def test_an_endless_line_is_reported_once_and_memory_stays_bounded():
    s = LineSplitter(max_bytes=64)
    out = s.feed(b"x" * 1000) + s.feed(b"y" * 1000) + s.feed(b"z\nA123\n")
    assert [r for _, r in out] == [Reason.OVERFLOW, None]
    assert out[-1][0] == "A123"
    assert len(s._buffer) == 0


def test_stdin_scanner_reads_lines_through_the_event_loop_until_end_of_input():
    read_fd, write_fd = os.pipe()
    frames, statuses = [], []

    async def main():
        with os.fdopen(read_fd, "r") as stream:
            scanner = StdinScanner(StdinScannerSettings(), frames.append, lambda *a: statuses.append(a),
                                   stream=stream, clock=lambda: 42.0)
            task = asyncio.create_task(scanner.run())
            os.write(write_fd, b"A123\nB45")
            os.close(write_fd)
            await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert [(f.text, f.device, f.at) for f in frames] == [("A123", "stdin", 42.0), ("B45", "stdin", 42.0)]
    assert statuses[0][1] == "attached" and statuses[-1] == ("terminal", "detached", "end of input")
