"""The systemd side's pure parts: the STATUS line, the delivery probe, the notifier's messages, the log forms of a
decision and of a server's error message, and the journal handler's fields."""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future

from daemon.decision import Decision, Outcome
from daemon.feedback import LogFeedback, decision_fields, describe, describe_for_log
from daemon.logs import journal_connected, journal_handler
from daemon.privacy import client_hash, server_message_for_log
from daemon.scan import Kind, ScanResult
from daemon.sdnotify import Notifier, watchdog_period_s
from daemon.supervision import DeliveryProbe, status_line, stuck_after_s


def status(scanners=("attached", "attached"), roster=12034, queue=0, reachable=True, **server):
    return {"scanners": {f"s{i}": {"state": s} for i, s in enumerate(scanners)},
            "stores": {"roster_size": roster, "queue_depth": queue, "dead_letters": 0},
            "server": {"url": "https://x", "reachable": reachable, **server}}


def test_status_line_reads_like_the_issue_says():
    assert status_line(status()) == "2 scanners · roster 12,034 · queue 0 · online"


def test_status_line_names_missing_scanners_offline_token_and_trouble():
    line = status_line(status(("attached", "error"), queue=3, reachable=False), "delivery thread stuck for 40 s")
    assert line == "1 of 2 scanners · roster 12,034 · queue 3 · offline · UNHEALTHY: delivery thread stuck for 40 s"
    assert status_line(status(auth_rejected="401")).endswith("token rejected")
    assert status_line({"scanners": {}, "stores": {}, "server": {"url": ""}}) == "0 scanners · roster 0 · queue 0 · standalone"


class HeldExecutor:
    """A thread that is busy until released: submitted jobs stay pending."""

    def __init__(self):
        self.futures: list[Future] = []

    def submit(self, fn):
        self.futures.append(Future())
        return self.futures[-1]


def test_delivery_probe_reports_a_thread_that_takes_no_work_only_after_the_limit():
    now = [0.0]
    executor = HeldExecutor()
    probe = DeliveryProbe(executor, stuck_after=10.0, clock=lambda: now[0])
    assert probe.check() is None  # probe sent
    now[0] = 10.0
    assert probe.check() is None
    now[0] = 10.5
    assert probe.check() == "delivery thread stuck for 10 s"
    executor.futures[0].set_result(None)  # the thread got to it: healthy again, a new probe goes out
    assert probe.check() is None and len(executor.futures) == 2


def test_stuck_limit_is_longer_than_a_request_and_never_below_the_watchdog():
    assert stuck_after_s(60.0, 3.05, 10.0) == 60.0
    assert stuck_after_s(1.0, 3.0, 10.0) == 39.0


def test_watchdog_period_only_for_the_process_it_names():
    assert watchdog_period_s({"WATCHDOG_USEC": "60000000"}, 42) == 60.0
    assert watchdog_period_s({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "42"}, 42) == 60.0
    assert watchdog_period_s({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "41"}, 42) is None
    assert watchdog_period_s({"WATCHDOG_USEC": "0"}, 42) is None
    assert watchdog_period_s({}, 42) is None


def test_notifier_sends_status_only_when_it_changed_and_nothing_without_a_socket():
    sent: list[str] = []
    notifier = Notifier({"NOTIFY_SOCKET": "/run/x"}, send=lambda m: sent.append(m) or True)
    notifier.ready("a")
    notifier.status("a")
    notifier.status("b")
    notifier.watchdog()
    notifier.stopping()
    assert sent == ["READY=1\nSTATUS=a", "STATUS=b", "WATCHDOG=1", "STOPPING=1\nSTATUS=stopping"]
    silent: list[str] = []
    Notifier({}, send=silent.append).ready("a")
    assert silent == []


def decision(outcome: Outcome, client_id: str | None, text: str, kind: Kind = Kind.VALID) -> Decision:
    return Decision(outcome, False, ScanResult(kind, "front", "stdin", text, 0.0, client_id))


def test_the_log_form_of_a_decision_hashes_the_id_the_desk_form_shows_it():
    welcome = decision(Outcome.ACCEPTED, "M1001", "M1001")
    assert describe(welcome) == "WELCOME — M1001"
    assert describe_for_log(welcome) == f"WELCOME — client {client_hash('M1001')}"
    typed = decision(Outcome.TYPED, None, "hello", Kind.TYPED)
    assert "hello" not in describe_for_log(typed) and client_hash("hello") in describe_for_log(typed)


def test_decision_records_carry_journal_fields(caplog):
    with caplog.at_level(logging.INFO, "tagd.feedback"):
        LogFeedback().show(decision(Outcome.DENIED_INACTIVE, "M1007", "M1007"))
    record = caplog.records[-1]
    assert (record.TAGD_EVENT, record.TAGD_OUTCOME, record.TAGD_READER) == ("checkin", "denied_inactive", "front")
    assert record.TAGD_CLIENT_HASH == client_hash("M1007") and "M1007" not in caplog.text
    assert "TAGD_CLIENT_HASH" not in decision_fields(decision(Outcome.INVALID, None, "x", Kind.INVALID))


def test_journal_handler_sends_the_fields_and_the_hash_only():
    sent: list[tuple] = []
    handler = journal_handler(sender=lambda MESSAGE, **fields: sent.append((MESSAGE, fields)))
    logger = logging.getLogger("tagd.feedback")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        LogFeedback().show(decision(Outcome.ACCEPTED, "M1001", "M1001"))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    message, fields = sent[-1]
    assert fields["TAGD_OUTCOME"] == "accepted" and fields["TAGD_CLIENT_HASH"] == client_hash("M1001")
    assert fields["SYSLOG_IDENTIFIER"] == "tagd" and "M1001" not in repr(sent)


def test_journal_is_used_only_when_stderr_is_the_journal_stream(tmp_path):
    with open(tmp_path / "f", "w") as stream:
        st = os.fstat(stream.fileno())
        assert journal_connected({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, stream)
        assert not journal_connected({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, stream)
        assert not journal_connected({}, stream)


def test_server_messages_lose_echoed_values_and_length():
    echoed = "{'events': [{'client_id': 'M1001'}]} is not valid; 'M1001' is too long"
    assert server_message_for_log(echoed) == "… is not valid; … is too long"
    assert server_message_for_log('client ID "M1001" taken') == "client ID … taken"
    assert len(server_message_for_log("x" * 1000)) == 120
