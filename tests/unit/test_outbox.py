"""The outbox on real SQLite files: order, results, dead letters, history bounds and the durability contract."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading

import pytest

from daemon.errors import StoreError
from daemon.outbox import CheckinEvent, Outbox


class FakeClock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "outbox.db")


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def outbox(path, clock):
    with Outbox(path, clock=clock) as outbox:
        yield outbox


def event(n: int, decision: str = "accepted") -> CheckinEvent:
    return CheckinEvent.new(f"ID{n:04d}", "front-door", 1_700_000_000.0 + n, decision, n % 2 == 0, "accepted")


def test_pending_comes_back_in_recording_order(outbox):
    events = [event(n) for n in (5, 1, 9, 3)]
    for e in events:
        outbox.record(e)
    assert outbox.pending(10) == events
    assert outbox.pending(2) == events[:2]


def test_results_move_events_into_the_history(outbox, clock):
    events = [event(n) for n in range(4)]
    for e in events:
        outbox.record(e)
    clock.now += 5
    moved = outbox.mark_results([(events[0].event_id, "accepted", "ok"),
                                 (events[1].event_id, "unknown_client", "no such client"),
                                 (events[2].event_id, "inactive", "client inactive")])
    assert moved == 3
    assert outbox.pending(10) == [events[3]]
    recent = outbox.recent(10)
    assert [(d.event, d.result, d.message) for d in recent] == [
        (events[2], "inactive", "client inactive"), (events[1], "unknown_client", "no such client"),
        (events[0], "accepted", "ok")]
    assert {d.delivered_at for d in recent} == {clock.now}


def test_duplicate_counts_as_delivered_and_marking_twice_is_harmless(outbox):
    e = event(1)
    outbox.record(e)
    assert outbox.mark_results([(e.event_id, "duplicate", "already recorded")]) == 1
    assert outbox.mark_results([(e.event_id, "accepted", "late second reply")]) == 0
    assert outbox.depth() == 0
    assert [(d.event.event_id, d.result) for d in outbox.recent(5)] == [(e.event_id, "duplicate")]


def test_conflict_is_dead_lettered_never_retried_never_dropped(outbox):
    e = event(1)
    outbox.record(e)
    outbox.mark_results([(e.event_id, "conflict", "different content")])
    assert outbox.depth() == 0
    [letter] = outbox.dead_letters()
    assert (letter.event, letter.reason) == (e, "conflict: different content")


def test_an_unknown_result_changes_nothing(outbox):
    a, b = event(1), event(2)
    outbox.record(a), outbox.record(b)
    with pytest.raises(StoreError, match="unknown server result 'lost'"):
        outbox.mark_results([(a.event_id, "accepted", ""), (b.event_id, "lost", "")])
    assert outbox.pending(10) == [a, b]


def test_dead_letters_are_kept_and_listed_newest_first(outbox, clock):
    events = [event(n) for n in range(3)]
    for e in events:
        outbox.record(e)
    assert outbox.dead_letter(events[0].event_id, "400 invalid_request: scanned_at")
    clock.now += 1
    assert outbox.dead_letter(events[2].event_id, "400 invalid_request: client_id too long")
    assert not outbox.dead_letter("not-queued", "whatever")
    assert outbox.dead_letter_count() == 2
    assert [(d.event, d.reason, d.dead_at) for d in outbox.dead_letters(10)] == [
        (events[2], "400 invalid_request: client_id too long", clock.now),
        (events[0], "400 invalid_request: scanned_at", clock.now - 1)]
    assert outbox.pending(10) == [events[1]]


def test_depth_and_oldest_pending(outbox):
    assert (outbox.depth(), outbox.oldest_pending()) == (0, None)
    first, second = event(7), event(3)
    outbox.record(first), outbox.record(second)
    assert (outbox.depth(), outbox.oldest_pending()) == (2, first.scanned_at)
    outbox.mark_results([(first.event_id, "accepted", "")])
    assert (outbox.depth(), outbox.oldest_pending()) == (1, second.scanned_at)


def test_the_history_is_bounded_by_count_and_by_age(path, clock):
    with Outbox(path, clock=clock, history_limit=3, history_days=1) as outbox:
        events = [event(n) for n in range(5)]
        for e in events:
            outbox.record(e)
            outbox.mark_results([(e.event_id, "accepted", "")])
        assert [d.event for d in outbox.recent(10)] == events[:1:-1]
        clock.now += 86400 + 1
        outbox.record(late := event(9))
        outbox.mark_results([(late.event_id, "accepted", "")])
        assert [d.event for d in outbox.recent(10)] == [late]


def test_the_queue_and_everything_else_survive_close_and_reopen(path):
    events = [event(n) for n in range(3)]
    with Outbox(path) as outbox:
        for e in events:
            outbox.record(e)
        outbox.mark_results([(events[0].event_id, "accepted", "ok")])
        outbox.dead_letter(events[1].event_id, "malformed")
    with Outbox(path) as outbox:
        assert outbox.pending(10) == [events[2]]
        assert [d.event for d in outbox.recent(5)] == [events[0]]
        assert [d.event for d in outbox.dead_letters(5)] == [events[1]]


def test_the_same_event_cannot_be_queued_twice(outbox):
    e = event(1)
    outbox.record(e)
    with pytest.raises(StoreError, match="UNIQUE"):
        outbox.record(e)
    assert outbox.pending(10) == [e]


@pytest.mark.parametrize("changes, problem", [
    ({"decision": "maybe"}, "decision must be"),
    ({"event_id": "42"}, "not a UUID"),
    ({"scanned_at": float("nan")}, "not a finite time"),
])
def test_malformed_events_are_refused_when_built(changes, problem):
    fields = {"event_id": "0b8f5c1e-7d0a-4d8e-9a55-2d1f3c4b5a69", "client_id": "AB12", "scanner": "s",
              "scanned_at": 1.0, "decision": "accepted", "offline": False, "outcome": "accepted"}
    with pytest.raises(StoreError, match=problem):
        CheckinEvent(**(fields | changes))


def test_wire_form_matches_the_contract_and_is_stable():
    e = CheckinEvent("0b8f5c1e-7d0a-4d8e-9a55-2d1f3c4b5a69", "AB12", "door", 1_700_000_000.25, "rejected", True,
                     "denied_unknown")
    assert e.as_wire() == {"event_id": "0b8f5c1e-7d0a-4d8e-9a55-2d1f3c4b5a69", "client_id": "AB12",
                           "scanned_at": "2023-11-14T22:13:20.250000Z", "decision": "rejected", "offline": True}


def test_record_and_mark_results_from_two_threads_lose_nothing(outbox):
    recorded = [event(n) for n in range(200)]

    def deliver():
        delivered = 0
        while delivered < len(recorded):
            batch = outbox.pending(7)
            delivered += outbox.mark_results([(e.event_id, "accepted", "") for e in batch])

    worker = threading.Thread(target=deliver)
    worker.start()
    for e in recorded:
        outbox.record(e)
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert outbox.depth() == 0
    assert [d.event for d in outbox.recent(1000)] == recorded[::-1]


def test_a_closed_outbox_raises_a_store_error(path):
    outbox = Outbox(path)
    outbox.close()
    outbox.close()
    with pytest.raises(StoreError, match="closed"):
        outbox.record(event(1))
    with pytest.raises(StoreError, match="closed"):
        outbox.depth()


def test_an_outbox_from_a_newer_tagd_is_refused(path):
    Outbox(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 2")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer than this tagd"):
        Outbox(path)


_RECORD_UNTIL_KILLED = textwrap.dedent("""
    import sys
    from daemon.outbox import CheckinEvent, Outbox
    outbox = Outbox(sys.argv[1])
    k = 0
    while True:
        event = CheckinEvent.new(f"ID{k}", "door", 1700000000.0 + k, "accepted", True, "accepted")
        outbox.record(event)
        k += 1
        print("recorded", k, event.event_id, flush=True)
""")


def test_every_event_recorded_before_a_sigkill_is_there_after_it(path):
    child = subprocess.Popen([sys.executable, "-c", _RECORD_UNTIL_KILLED, path], stdout=subprocess.PIPE, text=True)
    acknowledged = []
    try:
        while len(acknowledged) < 150:
            line = child.stdout.readline().split()
            assert line[:1] == ["recorded"], f"the recording child stopped: {line}"
            acknowledged.append(line[2])
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    with Outbox(path) as outbox:
        queued = [e.event_id for e in outbox.pending(100_000)]
    assert queued[:len(acknowledged)] == acknowledged
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    check.close()


def test_commits_are_fsynced_in_wal_mode(outbox):
    # A SIGKILL cannot show a missing fsync (the page cache survives the process); a power cut would. So check
    # the settings that make the commit wait for the disk: WAL with synchronous=FULL (2).
    assert outbox._conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert outbox._conn.execute("PRAGMA synchronous").fetchone() == (2,)


def test_a_read_only_outbox_shows_the_queue_beside_the_writer_and_refuses_writes(path, outbox):
    queued, dead = event(1), event(2)
    outbox.record(queued), outbox.record(dead)
    outbox.dead_letter(dead.event_id, "malformed")
    with Outbox(path, readonly=True) as status:
        assert (status.depth(), status.dead_letter_count()) == (1, 1)
        assert [d.reason for d in status.dead_letters()] == ["malformed"]
        with pytest.raises(StoreError, match="read-only"):
            status.record(event(3))
        outbox.record(event(4))
        assert status.depth() == 2
    assert outbox.depth() == 2


def test_a_read_only_outbox_opens_a_closed_file_and_not_a_missing_one(path, tmp_path):
    with Outbox(path) as outbox:
        outbox.record(event(1))
    with Outbox(path, readonly=True) as status:
        assert status.depth() == 1
    with pytest.raises(StoreError, match="cannot open"):
        Outbox(str(tmp_path / "missing.db"), readonly=True)
    assert not (tmp_path / "missing.db").exists()
