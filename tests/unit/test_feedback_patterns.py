"""Patterns and the player, on a manual clock with recording outputs; signal_for and SignalFeedback."""

from __future__ import annotations

import errno
import io
import logging

import pytest

from daemon.config_fields import Problem
from daemon.decision import Decision, Outcome
from daemon.patterns import (DEFAULT_TABLE, OFF, Blink, Level, Signal, Step, Tone, format_pattern, parse_pattern,
                             timeline)
from daemon.player import Player
from daemon.scan import Kind, ScanResult
from daemon.scheduler import ManualScheduler
from daemon.settings import PatternOverride
from daemon.signals import SignalFeedback, pattern_table, signal_for
from drivers.outputs import FakeOutput, TerminalOutput

ON = Level(True)


def rig(*roles: str, table=DEFAULT_TABLE, hardware_blink: bool = False):
    clock = ManualScheduler()
    outputs = [FakeOutput(role, clock.time, hardware_blink=hardware_blink) for role in roles]
    return Player(outputs, table, clock), clock, outputs


def test_every_signal_has_a_default_pattern_that_round_trips_through_text():
    assert set(DEFAULT_TABLE) == set(Signal)
    for roles in DEFAULT_TABLE.values():
        for pattern in roles.values():
            assert parse_pattern(format_pattern(pattern)) == pattern


def test_pattern_text_parses_into_steps():
    assert parse_pattern("on:1500") == (Step(ON, 1500),)
    assert parse_pattern("tone:880:150, silence:50 tone:440") == (Step(Tone(880), 150), Step(Tone(0), 50),
                                                                   Step(Tone(440), None))
    assert parse_pattern("blink:100:200:1000 off") == (Step(Blink(100, 200), 1000), Step(OFF, None))
    assert parse_pattern("  ") == ()


@pytest.mark.parametrize("text, says", [
    ("flash:100", "'flash:100' is not a step"),
    ("on:0", "numbers must be 1..600000"),
    ("tone:5:100", "20..20000 Hz"),
    ("on off:100", "only the last step may omit its duration"),
    ("blink:100", "is not a step"),
])
def test_bad_pattern_text_names_the_step(text, says):
    with pytest.raises(Problem, match=says):
        parse_pattern(text)


def test_software_blink_is_spelled_out_and_cut_at_its_total():
    steps = list(timeline(parse_pattern("blink:100:200:450"), hardware_blink=False))
    assert steps == [(ON, 100), (OFF, 200), (ON, 100), (OFF, 50), (OFF, None)]


def test_hardware_blink_is_one_state():
    assert list(timeline(parse_pattern("blink:100:200:450"), hardware_blink=True)) == [(Blink(100, 200), 450),
                                                                                      (OFF, None)]


def test_accepted_plays_in_order_on_the_injected_clock():
    player, clock, (green, red, buzzer) = rig("green", "red", "buzzer")
    player.play(Signal.ACCEPTED)
    clock.advance(5)
    assert green.shown == [(0.0, ON), (1.5, OFF)]
    assert red.shown == [(0.0, OFF)]
    assert buzzer.shown == [(0.0, Tone(2000)), (pytest.approx(0.12), OFF)]


def test_a_new_signal_cancels_the_pattern_still_playing():
    player, clock, (green, red) = rig("green", "red")
    player.play(Signal.ACCEPTED)
    clock.advance(0.5)
    player.play(Signal.DENIED)
    clock.advance(10)
    assert green.shown == [(0.0, ON), (0.5, OFF)]  # no late 'off' at 1.5 from the cancelled pattern
    assert red.shown == [(0.0, OFF), (0.5, ON), (2.5, OFF)]
    assert clock.pending == 0


def test_a_pattern_without_end_holds_until_the_next_signal():
    player, clock, (green,) = rig("green", hardware_blink=True)
    player.play(Signal.LINK_MODE_ON)
    clock.advance(600)
    assert green.shown == [(0.0, Blink(500, 500))]
    player.play(Signal.LINK_MODE_OFF)
    assert green.state == OFF


def test_an_endless_software_blink_keeps_blinking_on_timers():
    player, clock, (green,) = rig("green")
    player.play(Signal.CONFIRM_NEEDED)
    clock.advance(1.0)
    assert [state for _, state in green.shown][:8] == [ON, OFF] * 4
    assert clock.pending == 1


def test_a_failing_output_never_raises_is_logged_once_and_the_others_play(caplog):
    player, clock, (green, red) = rig("green", "red")
    red.failure = errno.EIO
    with caplog.at_level(logging.INFO, "tagd.feedback"):
        player.play(Signal.UNKNOWN)
        clock.advance(5)
        player.play(Signal.DENIED)
        red.failure = None
        player.play(Signal.DENIED)
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1 and "Input/output error" in failures[0].getMessage()
    assert any("works again" in r.getMessage() for r in caplog.records)
    assert green.shown[-1][1] == OFF and red.state == ON


def test_an_unknown_signal_turns_outputs_off_without_raising(caplog):
    player, clock, (green,) = rig("green")
    player.play(Signal.ACCEPTED)
    player.play("no-such-signal")
    assert green.state == OFF
    assert "no pattern for signal 'no-such-signal'" in caplog.text


def test_close_turns_everything_off_and_closes_the_outputs():
    player, clock, outputs = rig("green", "buzzer")
    player.play(Signal.LINK_MODE_ON)
    player.close()
    assert all(o.closed and o.state == OFF for o in outputs)
    assert clock.pending == 0


def test_overrides_replace_one_cell_and_keep_the_rest():
    table = pattern_table([PatternOverride("accepted", "buzzer", ""), PatternOverride("linked", "amber", "on:100")])
    assert table["accepted"]["buzzer"] == ()
    assert table["accepted"]["green"] == DEFAULT_TABLE["accepted"]["green"]
    assert table["linked"]["amber"] == (Step(ON, 100),)


def decision(outcome: Outcome, offline: bool = False) -> Decision:
    kinds = {Outcome.DUPLICATE: Kind.DUPLICATE, Outcome.INVALID: Kind.INVALID, Outcome.TYPED: Kind.TYPED}
    scan = ScanResult(kinds.get(outcome, Kind.VALID), "desk", "/dev/input/event3", "M123", 0.0, client_id="M123")
    return Decision(outcome, offline, scan)


@pytest.mark.parametrize("outcome, offline, signal", [
    (Outcome.ACCEPTED, False, Signal.ACCEPTED),
    (Outcome.ACCEPTED, True, Signal.OFFLINE_ACCEPTED),
    (Outcome.DENIED_INACTIVE, True, Signal.DENIED),
    (Outcome.DENIED_UNKNOWN, False, Signal.UNKNOWN),
    (Outcome.DUPLICATE, False, Signal.DUPLICATE),
    (Outcome.INVALID, False, Signal.INVALID),
    (Outcome.TYPED, False, Signal.INVALID),
])
def test_signal_for_each_decision(outcome, offline, signal):
    assert signal_for(decision(outcome, offline)) is signal


def test_signal_feedback_plays_and_writes_a_line_for_decisions_modes_and_faults():
    player, clock, (green, red) = rig("green", "red")
    stream = io.StringIO()
    feedback = SignalFeedback(player, TerminalOutput(stream, color=False))
    feedback.show(decision(Outcome.ACCEPTED, offline=True))
    assert player.playing == Signal.OFFLINE_ACCEPTED and green.state == ON
    feedback.signal(Signal.LINK_MODE_ON)
    feedback.fault("roster store unreadable")
    assert player.playing == Signal.ERROR and red.state == ON
    assert stream.getvalue().splitlines() == ["WELCOME — M123 · offline",
                                              "LINK MODE · scan the new tag (member chosen at the desk) or the "
                                              "member's ID first",
                                              "ERROR — roster store unreadable"]


def test_signal_feedback_without_terminal_logs(caplog):
    player, _, _ = rig("green")
    with caplog.at_level(logging.INFO, "tagd.feedback"):
        SignalFeedback(player).signal(Signal.LINKED)
        SignalFeedback(player).show(decision(Outcome.DUPLICATE))
    assert "feedback: linked" in caplog.text and "already checked in" in caplog.text


def test_link_mode_lights_come_back_after_a_short_signal_and_stop_at_link_mode_off():
    player, clock, (green, red, buzzer) = rig("green", "red", "buzzer", hardware_blink=True)
    feedback = SignalFeedback(player)
    feedback.signal("link-mode-on")
    assert green.state == Blink(500, 500)
    feedback.signal("link-conflict")  # a refused tag: red blinks for 2 s
    assert red.state == Blink(100, 100) and green.state == OFF
    clock.advance(2.0)
    assert green.state == Blink(500, 500) and red.state == Blink(500, 500)  # back in link mode, visibly
    feedback.signal("link-mode-off")
    clock.advance(60.0)
    assert green.state == OFF and red.state == OFF and player.background is None


def test_a_held_signal_never_hands_back_to_the_mode():
    player, clock, (green,) = rig("green", hardware_blink=True)
    player.set_background("link-mode-on")
    player.play("confirm-needed")  # holds until the next signal
    clock.advance(120.0)
    assert green.state == Blink(120, 120)
