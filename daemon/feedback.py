"""Feedback: showing a decision to the member. This module has the terminal and log outputs; lights and
beepers join them behind the same two methods (`show`, `fault`)."""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from .decision import Decision, Outcome
from .privacy import client_hash

log = logging.getLogger("tagd.feedback")

_LABELS = {  # what a person at the desk reads, and the colour it is shown in (ANSI SGR)
    Outcome.ACCEPTED: ("WELCOME", "1;32"),
    Outcome.DENIED_INACTIVE: ("DENIED · membership inactive", "1;31"),
    Outcome.DENIED_UNKNOWN: ("DENIED · unknown tag, please see the desk", "1;31"),
    Outcome.DUPLICATE: ("already checked in", "33"),
    Outcome.INVALID: ("not a valid tag", "33"),
    Outcome.TYPED: ("typed input ignored (scan the tag)", "33"),
}


def describe(decision: Decision) -> str:
    """The line a person at the desk reads: it names the client ID (or shows what was scanned)."""
    return _line(decision, decision.scan.client_id or repr(decision.scan.text))


def describe_for_log(decision: Decision) -> str:
    """The log's form of `describe`: the ID, or the scanned text, only as its keyed hash (daemon.privacy)."""
    scan = decision.scan
    return _line(decision, f"client {client_hash(scan.client_id)}" if scan.client_id
                 else f"scan {client_hash(scan.text)} ({len(scan.text)} characters)")


def decision_fields(decision: Decision) -> dict[str, str]:
    """Journal fields of a decision's log record (`extra=`): `journalctl TAGD_OUTCOME=denied_unknown`."""
    scan = decision.scan
    fields = {"TAGD_EVENT": "checkin" if decision.is_checkin else "scan", "TAGD_OUTCOME": decision.outcome.value,
              "TAGD_READER": scan.scanner, "TAGD_OFFLINE": "1" if decision.offline else "0"}
    if scan.client_id:
        fields["TAGD_CLIENT_HASH"] = client_hash(scan.client_id)
    return fields


def _line(decision: Decision, who: str) -> str:
    label = _LABELS[decision.outcome][0]
    reason = f" ({decision.scan.reason.value})" if decision.outcome is Outcome.INVALID and decision.scan.reason else ""
    offline = " · offline" if decision.offline and decision.is_checkin else ""
    return f"{label}{reason} — {who}{offline}"


class TerminalFeedback:
    """One line per scan, coloured where the terminal supports it (and NO_COLOR is not set)."""

    def __init__(self, stream: TextIO = sys.stdout, color: bool | None = None):
        self.stream = stream
        self.color = color if color is not None else (stream.isatty() and "NO_COLOR" not in os.environ)

    def show(self, decision: Decision) -> None:
        self._line(describe(decision), _LABELS[decision.outcome][1])

    def fault(self, message: str) -> None:
        self._line(f"ERROR — {message}", "1;37;41")

    def _line(self, text: str, sgr: str) -> None:
        self.stream.write(f"\x1b[{sgr}m{text}\x1b[0m\n" if self.color else text + "\n")
        self.stream.flush()


class LogFeedback:
    """For a reader without any output configured: decisions go to the log, client IDs as keyed hashes."""

    def show(self, decision: Decision) -> None:
        log.info("%s", describe_for_log(decision), extra=decision_fields(decision))

    def fault(self, message: str) -> None:
        log.error("%s", message)
