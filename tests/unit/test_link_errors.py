"""How the link-mode shell reads the server client's errors, and what it writes to the log about them."""

from __future__ import annotations

import logging

import pytest

from daemon import linking
from daemon.errors import (AuthRejected, BadReply, Conflict, InsecureURL, RequestRejected, ServerFault, ServerTimeout,
                           Throttled, Unreachable)
from daemon.linking import failure_of
from daemon.linkmode import Failure, Log
from daemon.privacy import client_hash

LINK = "POST /v1/device/link"


@pytest.mark.parametrize("error", [
    Unreachable(LINK, "connection refused"),
    ServerTimeout(LINK, "no reply within 10 s"),
    Throttled(LINK, "server busy", 503, 30.0),
    ServerFault(LINK, "internal error", 500),
    BadReply(LINK, "expected JSON", 200),
], ids=lambda error: type(error).__name__)
def test_every_retryable_failure_means_offline(error):
    assert failure_of(error) is Failure.OFFLINE


@pytest.mark.parametrize("error, failure", [
    (Conflict(LINK, "taken", 409, code="id_taken"), Failure.ID_TAKEN),
    (Conflict(LINK, "exists", 409, code="id_exists"), Failure.ID_EXISTS),
    (RequestRejected(LINK, "none", 404, code="no_link_target"), Failure.NO_LINK_TARGET),
    (RequestRejected(LINK, "who", 404, code="client_not_found"), Failure.CLIENT_NOT_FOUND),
    (RequestRejected(LINK, "short", 422, code="invalid_id"), Failure.INVALID_ID),
], ids=lambda value: getattr(value, "code", None) or "")
def test_contract_codes_map_to_their_failures(error, failure):
    assert failure_of(error) is failure


@pytest.mark.parametrize("error", [
    AuthRejected(LINK, "token rejected", 401, code="unauthorized"),
    RequestRejected(LINK, "bad", 400, code="invalid_request"),
    RequestRejected(LINK, "gone", 404, code="not_found"),
    Conflict(LINK, "odd", 409, code="enrolment_code_used"),
    Conflict(LINK, "no body", 409),
    RequestRejected(LINK, "no_link_target in the text only", 404),
    InsecureURL(LINK, "http to a remote host"),
], ids=lambda error: f"{type(error).__name__}-{error.code}")
def test_any_other_refusal_is_refused(error):
    assert failure_of(error) is Failure.REFUSED


def test_the_log_names_the_answer_but_not_the_servers_message_which_names_ids():
    error = Conflict(LINK, "client ID 'M1003' already belongs to another client", 409, code="id_taken",
                     server_message="client ID 'M1003' already belongs to another client")
    assert linking._described(error) == "POST /v1/device/link: Conflict HTTP 409 id_taken"


def test_connection_failures_are_logged_in_full():
    error = Unreachable(LINK, "connection refused")
    assert linking._described(error) == str(error)


def test_log_lines_carry_hashes_of_the_ids(caplog):
    with caplog.at_level(logging.INFO, logger="tagd.link"):
        linking._write_log(Log("link attempt", "to the client scanned first", "TAG9001", "M1002"))
        linking._write_log(Log("link mode on", "button"))
    first, second = caplog.messages
    assert first == (f"link attempt tag={client_hash('TAG9001')} client={client_hash('M1002')} "
                     f"(to the client scanned first)")
    assert second == "link mode on (button)"


def test_log_lines_keep_the_machines_level(caplog):
    with caplog.at_level(logging.DEBUG, logger="tagd.link"):
        linking._write_log(Log("scan ignored", level=logging.DEBUG))
        linking._write_log(Log("link mode off", "timed out", level=logging.WARNING))
    assert [record.levelno for record in caplog.records] == [logging.DEBUG, logging.WARNING]
