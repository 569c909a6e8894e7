"""Logging set-up: the journal, with structured fields, when stderr is connected to it; plain text on stderr elsewhere.

Records may carry journal fields through `extra=` (upper-case names, e.g. TAGD_EVENT, TAGD_OUTCOME, TAGD_READER,
TAGD_CLIENT_HASH: see daemon.feedback.decision_fields); the journal keeps them as fields (`journalctl TAGD_OUTCOME=denied_unknown`),
plain text leaves them out. A client ID never goes into a record: only its keyed hash (daemon.privacy).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SYSLOG_IDENTIFIER = "tagd"


def journal_connected(environ: Mapping[str, str] = os.environ, stream=None) -> bool:
    """Whether stderr goes to the journal: systemd sets $JOURNAL_STREAM to its device:inode (systemd.exec(5)).

    Comparing them tells a service's own stderr from a terminal or pipe a child of the service was given."""
    device_inode = environ.get("JOURNAL_STREAM", "")
    if not device_inode:
        return False
    try:
        status = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return device_inode == f"{status.st_dev}:{status.st_ino}"


def journal_handler(sender: Callable | None = None) -> logging.Handler:
    """systemd-python's JournalHandler: every upper-case attribute of a record becomes a journal field."""
    from systemd.journal import JournalHandler

    if sender is None:
        return JournalHandler(SYSLOG_IDENTIFIER=SYSLOG_IDENTIFIER)
    return JournalHandler(sender_function=sender, SYSLOG_IDENTIFIER=SYSLOG_IDENTIFIER)


def setup_logging(level: str = "info", environ: Mapping[str, str] = os.environ) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if journal_connected(environ):
        handler = journal_handler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
