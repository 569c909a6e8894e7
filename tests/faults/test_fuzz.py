"""Fuzz (hypothesis): key-event streams, serial byte streams, configuration files and raw server replies. Each input
gives values or tagd's own errors, never a crash, and memory stays bounded. Counts scale with the run; at the CI
scale the inputs are derandomized (the same every run), at larger scales every run explores new ones."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from daemon import config
from daemon.api_client import ServerClient
from daemon.api_types import CheckinEvent
from daemon.errors import ConfigError, ServerError
from daemon.framing import MAX_FRAME_CHARS, HidFramer
from daemon.keys import KeyDecoder
from daemon.pipeline import ScanPipeline
from daemon.scan import Frame, Kind, ScanResult
from daemon.serial_framing import PREVIEW_BYTES, SerialFramer
from daemon.settings import FramingRules, ScanSettings, SerialFraming, ServerSettings

from .fuzz_inputs import RawReplyServer, config_text, key_event_stream, raw_reply, serial_stream
from .support import mib, read_resources, reset_peak_rss, scaled

pytestmark = pytest.mark.faults

EXAMPLES = {"keys": 400, "serial": 600, "config": 500, "replies": 300}  # at the CI scale
MEMORY_BOUND_MIB = 64  # how far the test process's peak RSS may rise while one fuzz test runs
SCAN = ScanSettings(min_length=4, max_length=32, debounce_seconds=2.0)
DECODERS = {layout: KeyDecoder(layout) for layout in ("us", "de", "fr")}  # compiled once; reset per input


def fuzz_settings(scale: float, name: str):
    return settings(max_examples=scaled(EXAMPLES[name], scale), deadline=None, derandomize=scale <= 1,
                    database=None, suppress_health_check=list(HealthCheck))


class Budget:
    """Counts the inputs a fuzz test tried and watches this process's peak memory while it runs."""

    def __init__(self, figures):
        self.figures, self.inputs = figures, 0
        self.pid = os.getpid()
        self.peak_resettable = reset_peak_rss(self.pid)
        self.start = read_resources(self.pid)

    def tried(self) -> None:
        self.inputs += 1

    def report(self) -> None:
        end = read_resources(self.pid)
        rise = end.peak_rss_kib - (self.start.rss_kib if self.peak_resettable else self.start.peak_rss_kib)
        self.figures.put("inputs tried", self.inputs)
        self.figures.put("crashes", 0)  # any crash fails the test before this line
        self.figures.put("peak RSS rise (MiB)", mib(max(rise, 0)))
        self.figures.put("open fds before/after", f"{self.start.fds}/{end.fds}")
        assert rise < MEMORY_BOUND_MIB * 1024, f"peak memory rose by {mib(rise)} MiB"
        assert end.fds <= self.start.fds + 2, "file descriptors leaked"


def check_result(result: ScanResult) -> None:
    assert isinstance(result.kind, Kind)
    if result.kind is Kind.VALID:
        assert SCAN.min_length <= len(result.client_id) <= SCAN.max_length and result.client_id.isalnum()


def test_key_event_streams_give_bounded_frames_and_scan_results(scale, figures):
    budget = Budget(figures)
    pipeline = ScanPipeline(SCAN, {"hid": FramingRules(typed_threshold_ms=40.0)})

    @fuzz_settings(scale, "keys")
    @given(stream=key_event_stream())
    def run(stream):
        budget.tried()
        layout, events = stream
        decoder, framer = DECODERS[layout], HidFramer("hid", "event0", ("Return", "KP_Enter", "Tab"), 0.5)
        decoder.reset()
        frames = [framer.feed(decoder.feed(event)) for event in events]
        frames.append(framer.expire(float("inf")))
        for frame in filter(None, frames):
            assert len(frame.text) <= MAX_FRAME_CHARS + 1
            check_result(pipeline.process(frame))

    run()
    budget.report()


@pytest.mark.parametrize("framing", list(SerialFraming))
def test_serial_byte_streams_give_bounded_frames_and_scan_results(framing, scale, figures):
    budget = Budget(figures)
    pipeline = ScanPipeline(SCAN, {"serial": FramingRules(prefix="]C0", strip_aim=True)})

    @fuzz_settings(scale / len(SerialFraming), "serial")
    @given(chunks=serial_stream(), encoding=st.sampled_from(["ascii", "utf-8", "latin-1"]))
    def run(chunks, encoding):
        budget.tried()
        framer = SerialFramer("serial", "ttyUSB0", framing, 0.1, encoding=encoding, max_bytes=256)
        frames: list[Frame] = []
        for data, now in chunks:
            frames += framer.feed(data, now)
        frames += framer.expire(float("inf"))
        for frame in frames:
            assert len(frame.text) <= 256 + PREVIEW_BYTES
            check_result(pipeline.process(frame))

    run()
    budget.report()


def test_configuration_files_give_settings_or_a_config_error_naming_the_file(tmp_path, scale, figures):
    budget = Budget(figures)
    path = tmp_path / "tagd.toml"
    outcomes = {"settings": 0, "config error": 0}

    @fuzz_settings(scale, "config")
    @given(text=config_text())
    def run(text):
        budget.tried()
        path.write_bytes(text)
        try:
            config.load(str(path), True)
        except ConfigError as exc:
            outcomes["config error"] += 1
            assert str(exc).startswith("tagd.toml"), exc
        else:
            outcomes["settings"] += 1

    run()
    budget.report()
    figures.put("valid / refused", f"{outcomes['settings']} / {outcomes['config error']}")
    assert outcomes["settings"] and outcomes["config error"], "the inputs never reached one of the outcomes"


CALL = {
    "health": ServerClient.health, "me": ServerClient.me, "roster": lambda c: c.roster_page("3", limit=10),
    "link_target": ServerClient.link_target,
    "checkins": lambda c: c.send_checkins([CheckinEvent("EVENT", "M1001", datetime.now(timezone.utc),
                                                        "accepted", False)]),
}


def test_raw_server_replies_give_values_or_server_errors(scale, figures):
    budget = Budget(figures)
    server = RawReplyServer()
    outcomes: dict[str, int] = {}
    settings_ = ServerSettings(url=server.url, connect_timeout_s=1.0, read_timeout_s=0.5,
                               max_response_bytes=64 * 1024)
    try:
        with ServerClient(settings_, "device-token") as client:

            @fuzz_settings(scale, "replies")
            @given(case=raw_reply())
            def run(case):
                budget.tried()
                call, server.reply = case
                try:
                    CALL[call](client)
                    outcome = "value"
                except ServerError as exc:
                    outcome = type(exc).__name__
                    assert str(exc), "an error without a message"
                outcomes[outcome] = outcomes.get(outcome, 0) + 1

            run()
    finally:
        server.close()
    budget.report()
    figures.put("outcomes", dict(sorted(outcomes.items())))
    assert len(outcomes) >= 4, f"the replies reached too few outcomes: {outcomes}"
