"""Coverage-guided fuzz targets for atheris (libFuzzer for Python), run one per process:

    python -m tests.faults.atheris_targets serial -runs=20000 -seed=1

Each target takes libFuzzer's bytes and must return normally or raise only tagd's own errors; anything else is
reported by atheris as a crash (with the input saved), and the process exits non-zero. Targets are the pure
parsers, where coverage guidance finds paths that random inputs miss: serial framing, key decoding and framing,
the configuration file, and reply bodies.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["daemon"]):
    from daemon import config
    from daemon.api_http import Reply, json_of
    from daemon.api_types import (ReplyShapeError, parse_checkin_results, parse_device_info, parse_roster_page)
    from daemon.errors import ConfigError, ServerError
    from daemon.framing import HidFramer
    from daemon.keys import KeyDecoder
    from daemon.pipeline import ScanPipeline
    from daemon.serial_framing import SerialFramer
    from daemon.settings import FramingRules, ScanSettings, SerialFraming

import evdev  # noqa: E402 - after the instrumented imports: its C extension needs no coverage

PIPELINE = ScanPipeline(ScanSettings(debounce_seconds=0.0), {"s": FramingRules(prefix="]C0")})
DECODER = KeyDecoder("de")
CONFIG_FILE = os.path.join(tempfile.mkdtemp(prefix="tagd-atheris-"), "tagd.toml")
FRAMINGS = list(SerialFraming)


def serial(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    framer = SerialFramer("s", "tty", FRAMINGS[fdp.ConsumeIntInRange(0, len(FRAMINGS) - 1)], 0.1,
                          encoding=fdp.PickValueInList(["ascii", "utf-8", "latin-1"]), max_bytes=64)
    now, frames = 0.0, []
    while fdp.remaining_bytes():
        now += fdp.ConsumeIntInRange(0, 200) / 1000
        frames += framer.feed(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 16)), now)
    for frame in frames + framer.expire(float("inf")):
        PIPELINE.process(frame)


def keys(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    DECODER.reset()
    framer, at = HidFramer("s", "event0", ("Return", "Tab"), 0.5), 1_750_000_000
    while fdp.remaining_bytes() >= 4:
        at += fdp.ConsumeIntInRange(0, 3)
        event = evdev.InputEvent(at, 0, fdp.ConsumeIntInRange(0, 5), fdp.ConsumeIntInRange(0, 300),
                                 fdp.ConsumeIntInRange(0, 2))
        frame = framer.feed(DECODER.feed(event))
        if frame is not None:
            PIPELINE.process(frame)


def configuration(data: bytes) -> None:
    with open(CONFIG_FILE, "wb") as file:
        file.write(data)
    try:
        config.load(CONFIG_FILE, True)
    except ConfigError:
        pass


PARSERS = [parse_device_info, lambda body: parse_roster_page(body, None), lambda body: parse_checkin_results(body, [])]


def replies(data: bytes) -> None:
    parse = PARSERS[len(data) % len(PARSERS)]  # not from the bytes: the seed corpus's whole replies stay JSON
    reply = Reply("GET /v1/device/me", 200, {"Content-Type": "application/json"}, data)
    try:
        parse(json_of(reply))
    except (ServerError, ReplyShapeError):
        pass


TARGETS = {"serial": serial, "keys": keys, "config": configuration, "replies": replies}


def main(argv: list[str]) -> None:
    target = TARGETS[argv[1]]
    atheris.Setup([argv[0], *argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
