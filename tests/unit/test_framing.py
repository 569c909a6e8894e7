from hypothesis import given, settings, strategies as st

from daemon.framing import HidFramer
from daemon.scan import DROPPED, KeyStroke, Reason

TERMINATORS = ("Return", "KP_Enter", "Tab")


def strokes(text, start=100.0, gap=0.005, terminator="Return"):
    out = [KeyStroke(ch, ch, start + i * gap) for i, ch in enumerate(text)]
    if terminator:
        out.append(KeyStroke("\r", terminator, start + len(text) * gap))
    return out


def feed_all(framer, items):
    return [f for f in (framer.feed(s) for s in items) if f is not None]


def framer(**kw):
    return HidFramer("front", "/dev/input/event3", kw.pop("terminators", TERMINATORS), kw.pop("timeout", 0.5), **kw)


def test_enter_ends_a_scan_with_its_gaps_and_first_key_time():
    [frame] = feed_all(framer(), strokes("A123", start=50.0, gap=0.004))
    assert (frame.text, frame.at, frame.scanner, frame.device) == ("A123", 50.0, "front", "/dev/input/event3")
    assert [round(g, 3) for g in frame.gaps_ms] == [4.0, 4.0, 4.0, 4.0]


def test_keypad_enter_and_tab_terminate_too():
    f = framer()
    assert [fr.text for fr in feed_all(f, strokes("AB12", terminator="KP_Enter") + strokes("CD34", terminator="Tab"))] \
        == ["AB12", "CD34"]


def test_custom_terminator_list_is_honoured():
    f = framer(terminators=("Tab",))
    frames = feed_all(f, strokes("AB12", terminator="Return"))
    assert frames == []  # Return is not a terminator here, and produces '\r' that stays in the frame
    assert f.deadline is not None


def test_stray_terminator_is_not_a_scan():
    assert framer().feed(KeyStroke("\r", "Return", 1.0)) is None


def test_modifier_keys_do_not_enter_the_frame():
    f = framer()
    items = [KeyStroke("", "Shift_L", 1.0), KeyStroke("A", "A", 1.001), KeyStroke("1", "1", 1.002),
             KeyStroke("\r", "Return", 1.003)]
    [frame] = feed_all(f, items)
    assert frame.text == "A1" and len(frame.gaps_ms) == 2


def test_without_terminator_a_frame_ends_after_the_silence_timeout():
    f = framer(terminators=(), timeout=0.1)
    assert feed_all(f, strokes("A123", start=10.0, gap=0.01, terminator=None)) == []
    assert f.deadline == 10.03 + 0.1
    assert f.expire(10.1) is None  # not silent long enough yet
    frame = f.expire(10.2)
    assert frame.text == "A123" and f.deadline is None


def test_syn_dropped_discards_the_partial_scan():
    f = framer()
    feed_all(f, strokes("A12", terminator=None))
    assert f.feed(DROPPED) is None
    [frame] = feed_all(f, strokes("B456", start=200.0))
    assert frame.text == "B456"


def test_overlong_frame_is_reported_once_and_memory_stays_bounded():
    f = framer(max_chars=32)
    frames = feed_all(f, strokes("X" * 5000))
    assert len(frames) == 1 and frames[0].error is Reason.OVERFLOW
    assert len(f._partial.chars) == 0
    [after] = feed_all(f, strokes("OK12", start=500.0))
    assert after.text == "OK12" and after.error is None


@settings(max_examples=60)
@given(st.lists(st.text(alphabet="ABC123", min_size=1, max_size=20), min_size=1, max_size=5))
def test_any_sequence_of_terminated_scans_comes_out_unchanged(texts):
    f = framer()
    items = [s for i, t in enumerate(texts) for s in strokes(t, start=i * 10.0)]
    assert [fr.text for fr in feed_all(f, items)] == texts
