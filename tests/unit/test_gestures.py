"""Button edges to gestures: the pure detector, and the fake button running it on a manual clock."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.gestures import Gesture, GestureDetector
from daemon.scheduler import ManualScheduler
from daemon.settings import ButtonSettings
from drivers.button import FakeButton

SHORT, LONG = Gesture.SHORT_PRESS, Gesture.LONG_PRESS


def test_release_before_two_seconds_is_a_short_press():
    detector = GestureDetector()
    assert detector.edge(True, 10.0) == []
    assert detector.edge(False, 11.9) == [SHORT]


def test_long_press_is_due_at_the_two_second_mark_not_at_release():
    detector = GestureDetector()
    detector.edge(True, 10.0)
    assert detector.deadline == 12.0
    assert detector.expire(11.99) == []
    assert detector.expire(12.0) == [LONG]
    assert detector.deadline is None
    assert detector.edge(False, 15.0) == []


def test_a_release_read_late_still_gives_the_long_press_not_a_short_one():
    detector = GestureDetector()
    detector.edge(True, 0.0)
    assert detector.edge(False, 2.5) == [LONG]


def test_repeats_while_held_are_ignored():
    detector = GestureDetector()
    detector.edge(True, 0.0)
    assert [detector.edge(True, t / 10) for t in range(1, 10)] == [[]] * 9
    assert detector.deadline == 2.0
    assert detector.edge(False, 1.0) == [SHORT]


def test_bounces_inside_the_debounce_window_make_one_press():
    detector = GestureDetector(debounce_s=0.02)
    for at, level in [(0.0, True), (0.002, False), (0.004, True), (0.007, False), (0.009, True)]:
        assert detector.edge(level, at) == []
    assert detector.deadline == 2.0  # settled pressed: nothing to reconcile
    for at, level in [(0.5, False), (0.503, True), (0.505, False)]:
        detector.edge(level, at)
    assert detector.expire(0.6) == []
    assert detector.pressed is False


def test_short_press_inside_the_window_is_taken_when_the_window_closes():
    detector = GestureDetector(debounce_s=0.02)
    detector.edge(True, 0.0)
    assert detector.edge(False, 0.01) == []
    assert detector.deadline == 0.02
    assert detector.expire(0.02) == [SHORT]


def test_reset_forgets_a_press_in_progress():
    detector = GestureDetector()
    detector.edge(True, 0.0)
    detector.reset()
    assert detector.deadline is None
    assert detector.edge(False, 0.5) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 3.0), st.booleans()), max_size=30), st.sampled_from([0.0, 0.02]))
def test_every_gesture_needs_a_press_and_every_completed_press_gives_one(steps, debounce):
    detector = GestureDetector(debounce_s=debounce)
    at, gestures = 0.0, []
    for gap, level in steps:
        at += gap
        gestures += detector.edge(level, at)
    gestures += detector.edge(False, at + 10)  # let go, long after everything settled
    raw_presses = sum(1 for _, level in steps if level)
    assert len(gestures) <= raw_presses
    if debounce == 0:  # without debounce every press that the level shows is one gesture
        levels = [False] + [level for _, level in steps] + [False]
        assert len(gestures) == sum(1 for a, b in zip(levels, levels[1:]) if b and not a)


def fake_button(**settings) -> tuple[FakeButton, ManualScheduler, list[tuple[float, Gesture]]]:
    clock = ManualScheduler()
    seen: list[tuple[float, Gesture]] = []
    button = FakeButton(ButtonSettings(kind="fake", **settings), lambda g: seen.append((clock.time(), g)), clock)
    return button, clock, seen


def test_fake_button_press_is_a_short_press():
    button, _, seen = fake_button()
    button.press()
    assert seen == [(0.0, SHORT)]


def test_fake_button_hold_fires_long_press_at_two_seconds_and_nothing_at_release():
    button, clock, seen = fake_button()
    button.hold(5.0)
    clock.advance(1.5)
    assert seen == []
    clock.advance(10.0)
    assert seen == [(2.0, LONG)]
    assert clock.pending == 0


def test_fake_button_hold_shorter_than_the_threshold_is_short():
    button, clock, seen = fake_button(long_press_s=1.0)
    button.hold(0.4)
    clock.advance(5.0)
    assert seen == [(0.4, SHORT)]


def test_a_failing_gesture_handler_does_not_stop_the_button():
    clock = ManualScheduler()
    calls: list[Gesture] = []

    def handler(gesture: Gesture) -> None:
        calls.append(gesture)
        raise RuntimeError("handler bug")

    button = FakeButton(ButtonSettings(kind="fake"), handler, clock)
    button.press()
    button.hold(3.0)
    clock.advance(3.0)
    assert calls == [SHORT, LONG]
