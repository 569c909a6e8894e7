"""SerialFramer: bytes in, frames out, time passed in by the test."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import ConfigError
from daemon.scan import Frame, Reason
from daemon.serial_framing import SerialFramer
from daemon.settings import SerialFraming

TIMEOUT_S = 0.1


def framer(framing: SerialFraming, **kwargs) -> SerialFramer:
    return SerialFramer("desk", "/dev/ttyUSB0", framing, TIMEOUT_S, **kwargs)


def texts(frames: list[Frame]) -> list[str]:
    return [f.text for f in frames]


@pytest.mark.parametrize(
    ("framing", "stream", "expected"),
    [
        (SerialFraming.CR, b"AB12\rCD34\r", ["AB12", "CD34"]),
        (SerialFraming.LF, b"AB12\nCD34\n", ["AB12", "CD34"]),
        (SerialFraming.CRLF, b"AB12\r\nCD34\r\n", ["AB12", "CD34"]),
        (SerialFraming.ANY_EOL, b"AB12\rCD34\nEF56\r\n", ["AB12", "CD34", "EF56"]),
        (SerialFraming.STX_ETX, b"\x02AB12\x03\x02CD34\x03", ["AB12", "CD34"]),
    ],
)
def test_each_terminator_mode_cuts_frames_at_its_terminator(framing, stream, expected):
    assert texts(framer(framing).feed(stream, now=10.0)) == expected


def test_frames_carry_scanner_device_and_no_error():
    [frame] = framer(SerialFraming.CR).feed(b"AB12\r", now=10.0)
    assert frame == Frame("desk", "/dev/ttyUSB0", "AB12", at=10.0, gaps_ms=(), error=None)


def test_frame_time_is_when_its_first_byte_arrived():
    f = framer(SerialFraming.CR)
    assert f.feed(b"AB", now=10.0) == []
    [first] = f.feed(b"12\rCD", now=10.05)
    [second] = f.feed(b"34\r", now=10.07)
    assert (first.text, first.at) == ("AB12", 10.0)
    assert (second.text, second.at) == ("CD34", 10.05)


@pytest.mark.parametrize("framing", [SerialFraming.ANY_EOL, SerialFraming.CRLF])
def test_crlf_split_across_reads_gives_one_frame(framing):
    f = framer(framing)
    frames = f.feed(b"AB12\r", now=10.0) + f.feed(b"\n", now=10.001) + f.feed(b"CD34\r\n", now=10.002)
    assert texts(frames) == ["AB12", "CD34"]


def test_lone_cr_is_content_in_crlf_mode():
    assert texts(framer(SerialFraming.CRLF).feed(b"AB\r12\r\n", now=1.0)) == ["AB\r12"]


def test_cr_cut_from_its_lf_by_silence_does_not_become_a_frame_of_its_own():
    f = framer(SerialFraming.CRLF)
    f.feed(b"AB12\r", now=1.0)
    assert texts(f.expire(now=1.2)) == ["AB12"]
    assert f.feed(b"\n", now=1.3) == [] and f.deadline is None


def test_blank_lines_are_not_scans():
    f = framer(SerialFraming.ANY_EOL)
    assert f.feed(b"\r\n\r\n\n\r", now=1.0) == []
    assert f.deadline is None


def test_stx_etx_discards_bytes_outside_the_envelope():
    frames = framer(SerialFraming.STX_ETX).feed(b"noise\r\n\x02AB12\x03junk\x03\x02CD34\x03tail", now=1.0)
    assert texts(frames) == ["AB12", "CD34"]


def test_stx_etx_frame_time_is_when_stx_arrived():
    f = framer(SerialFraming.STX_ETX)
    f.feed(b"xx\x02", now=5.0)
    [frame] = f.feed(b"AB12\x03", now=5.01)
    assert frame.at == 5.0


def test_stx_etx_frame_without_etx_is_reported_cut_off_after_silence():
    f = framer(SerialFraming.STX_ETX)
    f.feed(b"\x02AB1", now=1.0)
    [frame] = f.expire(now=1.0 + TIMEOUT_S)
    assert (frame.text, frame.error) == ("AB1", Reason.MISSING_SUFFIX)


def test_stx_inside_an_open_frame_reports_the_unfinished_one_and_starts_over():
    frames = framer(SerialFraming.STX_ETX).feed(b"\x02AB\x02CD34\x03", now=1.0)
    assert [(f.text, f.error) for f in frames] == [("AB", Reason.MISSING_SUFFIX), ("CD34", None)]


def test_timeout_mode_ends_a_frame_after_silence_only():
    f = framer(SerialFraming.TIMEOUT)
    assert f.feed(b"AB", now=1.0) == []
    assert f.feed(b"12\r\n", now=1.05) == []
    assert f.deadline == pytest.approx(1.05 + TIMEOUT_S)
    assert f.expire(now=1.1) == []
    [frame] = f.expire(now=1.05 + TIMEOUT_S)
    assert (frame.text, frame.at, frame.error) == ("AB12\r\n", 1.0, None)
    assert f.deadline is None and f.expire(now=9.0) == []


def test_bytes_after_a_missed_deadline_start_a_new_frame():
    # the caller was late calling expire: the silence still separates the two scans
    f = framer(SerialFraming.TIMEOUT)
    f.feed(b"AB12", now=1.0)
    [first] = f.feed(b"CD34", now=2.0)
    [second] = f.expire(now=2.0 + TIMEOUT_S)
    assert (first.text, first.at, second.text, second.at) == ("AB12", 1.0, "CD34", 2.0)


def test_partial_line_without_terminator_is_emitted_after_silence():
    f = framer(SerialFraming.CR)
    f.feed(b"AB12", now=1.0)
    assert f.deadline == pytest.approx(1.0 + TIMEOUT_S)
    [frame] = f.expire(now=1.0 + TIMEOUT_S)
    assert (frame.text, frame.error) == ("AB12", None)


def test_no_deadline_while_nothing_is_open():
    f = framer(SerialFraming.STX_ETX)
    f.feed(b"noise outside any frame", now=1.0)
    assert f.deadline is None and f.expire(now=100.0) == []


def test_undecodable_bytes_give_a_not_text_frame_and_framing_goes_on():
    f = framer(SerialFraming.CR)
    frames = f.feed(b"AB\xff\x80\rCD34\r", now=1.0)
    assert [(fr.text, fr.error) for fr in frames] == [("AB\\xff\\x80", Reason.NOT_TEXT), ("CD34", None)]


def test_configured_encoding_decodes_frames():
    [frame] = framer(SerialFraming.CR, encoding="utf-8").feed("Zoë7\r".encode(), now=1.0)
    assert (frame.text, frame.error) == ("Zoë7", None)


def test_four_kib_without_terminator_gives_one_overflow_frame_then_scans_resume():
    f = framer(SerialFraming.ANY_EOL)
    frames = f.feed(b"A" * 4096, now=1.0)
    frames += f.feed(b"B" * 4096 + b"\r\n", now=1.01)
    frames += f.feed(b"CD34\r", now=1.02)
    assert [(fr.error, fr.at) for fr in frames] == [(Reason.OVERFLOW, 1.0), (None, 1.02)]
    assert frames[0].text.startswith("AAAA") and len(frames[0].text) < 64
    assert frames[1].text == "CD34"


def test_overflow_buffer_never_exceeds_max_bytes():
    f = framer(SerialFraming.CR, max_bytes=16)
    for _ in range(100):
        f.feed(b"X" * 1000, now=1.0)
        assert len(f._buffer) <= 16
    assert texts(f.feed(b"\rAB12\r", now=1.0)) == ["AB12"]


def test_frame_of_exactly_max_bytes_is_not_an_overflow():
    [frame] = framer(SerialFraming.CR, max_bytes=8).feed(b"12345678\r", now=1.0)
    assert (frame.text, frame.error) == ("12345678", None)


def test_silence_ends_an_overflowing_frame_without_another_report():
    f = framer(SerialFraming.TIMEOUT, max_bytes=8)
    [overflow] = f.feed(b"0123456789ABCDEF", now=1.0)
    assert overflow.error == Reason.OVERFLOW
    assert f.expire(now=1.0 + TIMEOUT_S) == []
    f.feed(b"AB12", now=2.0)
    assert texts(f.expire(now=2.0 + TIMEOUT_S)) == ["AB12"]


def test_overflow_inside_stx_etx_discards_until_etx():
    f = framer(SerialFraming.STX_ETX, max_bytes=8)
    frames = f.feed(b"\x02" + b"9" * 50 + b"\x03\x02AB12\x03", now=1.0)
    assert [(fr.text[:4], fr.error) for fr in frames] == [("9999", Reason.OVERFLOW), ("AB12", None)]


def test_reset_discards_the_partial_frame_silently():
    f = framer(SerialFraming.CRLF)
    f.feed(b"AB12\r", now=1.0)
    f.reset()
    assert f.deadline is None and f.expire(now=10.0) == []
    [frame] = f.feed(b"CD34\r\n", now=11.0)
    assert (frame.text, frame.at) == ("CD34", 11.0)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"framing": "morse"}, "scanners.desk.framing"),
        ({"timeout_s": 0}, "scanners.desk.frame_timeout_ms"),
        ({"encoding": "no-such-codec"}, "scanners.desk.encoding"),
        ({"encoding": "utf-16"}, "scanners.desk.encoding"),
        ({"max_bytes": 0}, "scanners.desk"),
    ],
)
def test_unusable_arguments_are_config_errors_naming_the_key(kwargs, key):
    arguments = {"framing": SerialFraming.CR, "timeout_s": 0.1} | kwargs
    with pytest.raises(ConfigError) as raised:
        SerialFramer("desk", "/dev/ttyUSB0", **arguments)
    assert raised.value.key == key


streams = st.lists(
    st.sampled_from([b"AB12", b"\r", b"\n", b"\r\n", b"\x02", b"\x03", b"\xff", b"Z" * 40, b" "]), max_size=30
).map(b"".join)


@settings(max_examples=150, deadline=None)
@given(stream=streams, framing=st.sampled_from(list(SerialFraming)), cuts=st.lists(st.integers(0, 2000)))
def test_any_split_into_chunks_gives_the_same_frames_as_feeding_it_whole(stream, framing, cuts):
    whole = framer(framing, max_bytes=64)
    expected = whole.feed(stream, now=1.0) + whole.expire(now=2.0)
    split = framer(framing, max_bytes=64)
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    chunked = [fr for a, b in zip(bounds, bounds[1:]) for fr in split.feed(stream[a:b], now=1.0)]
    assert chunked + split.expire(now=2.0) == expected
