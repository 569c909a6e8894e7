"""The server client against a fault-injecting HTTP server on loopback: every way a reply can go wrong."""

from __future__ import annotations

import gzip
import socket
import tracemalloc
import uuid
from datetime import datetime, timezone

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection

from daemon.api_client import ServerClient
from daemon.api_http import CHUNK_BYTES, parse_retry_after
from daemon.api_types import CheckinEvent
from daemon.errors import (AuthRejected, BadReply, Conflict, CursorExpired, InsecureURL, RequestRejected,
                           ServerError, ServerFault, ServerTimeout, Throttled, Unreachable)
from daemon.settings import ServerSettings

from .fault_http import (FaultServer, drip, endless, redirect, reply, reply_json, stall_after_headers,
                         stall_before_headers, truncated)

READ_TIMEOUT_S = 0.3
BOUND = 256 * 1024
HEALTHY = {"status": "ok", "api_version": "1.0.0"}


@pytest.fixture
def server():
    fault_server = FaultServer()
    yield fault_server
    fault_server.close()


def client_for(server: FaultServer, token: str | None = "device-token", session: requests.Session | None = None,
               **overrides) -> ServerClient:
    settings = ServerSettings(url=server.url, connect_timeout_s=1.0, read_timeout_s=READ_TIMEOUT_S,
                              max_response_bytes=BOUND, **overrides)
    return ServerClient(settings, token, session)


def error_from(server: FaultServer, behaviour, path: str = "/v1/device/me", call=None) -> ServerError:
    server.on(path, behaviour)
    with client_for(server) as client, pytest.raises(ServerError) as raised:
        (call or ServerClient.me)(client)
    return raised.value


# --- status codes -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [401, 403])
def test_a_rejected_token_is_reported_and_not_retryable(server, status):
    error = error_from(server, reply_json(status, {"error": {"code": "unauthorized", "message": "unknown token"}}))
    assert type(error) is AuthRejected and error.retryable is False
    assert (error.status, error.code) == (status, "unauthorized")
    assert str(error) == f"GET /v1/device/me: HTTP {status} unauthorized: token rejected: unknown token"


def test_calling_without_a_token_says_to_enrol(server):
    server.on("/v1/device/me", reply_json(401, {"error": {"code": "unauthorized", "message": "no token"}}))
    with client_for(server, token=None) as client, pytest.raises(AuthRejected, match="enrol first"):
        client.me()
    assert "Authorization" not in server.seen[0].headers


def test_429_with_retry_after_seconds_is_throttled_for_that_long(server):
    error = error_from(server, reply_json(429, {"error": {"code": "slow_down", "message": "busy"}},
                                          {"Retry-After": "7"}))
    assert type(error) is Throttled and error.retryable
    assert error.retry_after == 7.0 and "retry after 7 s" in str(error)


def test_retry_after_as_an_http_date_counts_from_the_servers_own_clock(server):
    # the server's Date is years in the past: measuring from our clock would give 0, from its clock 30 s
    headers = {"Date": "Wed, 21 Oct 2015 07:28:00 GMT", "Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}
    error = error_from(server, reply(503, b"", headers))
    assert type(error) is Throttled and error.retry_after == 30.0 and error.status == 503


def test_503_without_retry_after_is_throttled_with_no_hint(server):
    error = error_from(server, reply(503, b"<h1>Service Unavailable</h1>", content_type="text/html"))
    assert type(error) is Throttled and error.retry_after is None and "no Retry-After" in str(error)


@pytest.mark.parametrize(("value", "expected"), [
    ("0", 0.0), (" 120 ", 120.0), ("-5", None), ("1.5", None), ("soon", None), ("", None), (None, None),
    ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # a date already past: no waiting, never negative
])
def test_retry_after_values(value, expected):
    assert parse_retry_after(value, datetime(2015, 10, 21, 7, 28, tzinfo=timezone.utc)) == expected


@pytest.mark.parametrize("status", [500, 502, 504])
def test_other_5xx_is_a_retryable_server_fault(server, status):
    error = error_from(server, reply_json(status, {"error": {"code": "internal", "message": "db locked"}}))
    assert type(error) is ServerFault and error.retryable and error.status == status
    assert "db locked" in str(error)


def test_a_proxys_html_error_page_becomes_a_fault_naming_the_content_type(server):
    page = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
    error = error_from(server, reply(502, page, content_type="text/html"))
    assert type(error) is ServerFault and error.code is None
    assert str(error) == f"GET /v1/device/me: HTTP 502: no error detail (text/html, {len(page)} bytes)"


def test_a_captive_portals_html_page_with_200_is_a_bad_reply(server):
    error = error_from(server, reply(200, b"<html>Log in to the Wi-Fi</html>", content_type="text/html"))
    assert type(error) is BadReply and error.retryable and "expected JSON, got text/html" in str(error)


def test_409_carries_the_contracts_code_and_message(server):
    error = error_from(server, reply_json(409, {"error": {"code": "id_taken", "message": "ID in use"}}),
                       "/v1/device/link", lambda client: client.link("AB12"))
    assert type(error) is Conflict and not error.retryable
    assert (error.code, error.server_message) == ("id_taken", "ID in use")


def test_410_on_the_roster_is_cursor_expired(server):
    error = error_from(server, reply_json(410, {"error": {"code": "cursor_expired", "message": "resync"}}),
                       "/v1/device/roster", lambda client: client.roster_page("17"))
    assert type(error) is CursorExpired and not error.retryable
    assert server.seen[0].path == "/v1/device/roster?cursor=17"


def test_410_elsewhere_is_a_rejected_request(server):
    error = error_from(server, reply_json(410, {"error": {"code": "enrolment_code_expired", "message": "old"}}),
                       "/v1/device/enrol", lambda client: client.enrol("K7QX-M2PD", "hw", "Front desk"))
    assert type(error) is RequestRejected and error.code == "enrolment_code_expired" and not error.retryable


# --- broken bodies ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    b"{not json", b"", b"\xff\xfe\x00garbage", b"[" * 100_000, b'{"status": NaN, "api_version": "1"}',
    b'{"status": "ok", "api_version": "1.0.0"} trailing',
])
def test_garbage_json_is_a_bad_reply(server, body):
    server.on("/v1/health", reply(200, body))
    with client_for(server) as client, pytest.raises(BadReply, match="GET /v1/health: HTTP 200: malformed JSON"):
        client.health()


@pytest.mark.parametrize(("document", "field"), [
    ([], "expected an object"), ({"status": "ok"}, "api_version: missing"),
    ({"status": 1, "api_version": "1"}, "status: expected a string, got a number"),
])
def test_json_of_the_wrong_shape_is_a_bad_reply_naming_the_field(server, document, field):
    server.on("/v1/health", reply_json(200, document))
    with client_for(server) as client, pytest.raises(BadReply, match=f"does not match the contract: .*{field}"):
        client.health()


def test_a_reply_cut_short_of_its_content_length_is_a_bad_reply(server):
    server.on("/v1/health", truncated(500, b'{"status": "ok", '))
    with client_for(server) as client, pytest.raises(BadReply, match="broken off"):
        client.health()


def test_a_dripping_reply_times_out_as_a_whole(server):
    # every byte comes well inside the read timeout; only the whole-body deadline can stop it
    body = b'{"status": "ok", "api_version": "1.0.0", "padding": "' + b"x" * 200 + b'"}'
    server.on("/v1/health", drip(body, every_s=0.02))
    with client_for(server) as client, pytest.raises(ServerTimeout, match="still arriving after 0.3 s") as raised:
        client.health()
    assert raised.value.retryable
    assert server.sent("/v1/health").bytes < len(body)  # the client hung up before the end


def test_a_reply_that_stalls_mid_body_times_out(server):
    server.on("/v1/health", stall_after_headers(5.0))
    with client_for(server) as client, pytest.raises(ServerTimeout, match="stalled"):
        client.health()


def test_no_reply_at_all_times_out(server):
    server.on("/v1/health", stall_before_headers(5.0))
    with client_for(server) as client, pytest.raises(ServerTimeout, match="no reply within 0.3 s"):
        client.health()


class SmallReceiveBuffer(HTTPAdapter):
    """A client socket with a small receive buffer, so the kernel cannot hide megabytes in flight."""

    def init_poolmanager(self, *args, **kwargs):
        kwargs["socket_options"] = [*HTTPConnection.default_socket_options,
                                    (socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)]
        super().init_poolmanager(*args, **kwargs)


def test_a_huge_reply_is_cut_off_at_the_bound_with_bounded_memory(server):
    session = requests.Session()
    session.mount("http://", SmallReceiveBuffer())
    server.on("/v1/health", endless(64 * 1024 * 1024))  # chunked: no Content-Length to refuse it early
    tracemalloc.start()
    try:
        with client_for(server, session=session) as client, pytest.raises(BadReply, match="exceeds the 262144"):
            client.health()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        session.close()
    sent = server.sent("/v1/health")
    in_flight = 256 * 1024  # generous: both socket buffers plus the reader's buffer
    assert sent.cut_off and sent.bytes <= BOUND + CHUNK_BYTES + in_flight
    assert peak < 4 * BOUND


def test_a_compressed_bomb_is_cut_off_at_the_bound_after_decoding(server):
    bomb = gzip.compress(b" " * (64 * 1024 * 1024), compresslevel=9)  # about 64 KiB on the wire
    server.on("/v1/health", reply(200, bomb, {"Content-Encoding": "gzip"}))
    tracemalloc.start()
    try:
        with client_for(server) as client, pytest.raises(BadReply, match="exceeds the 262144-byte bound"):
            client.health()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * BOUND + len(bomb)


def test_a_declared_oversized_reply_is_refused_before_reading_its_body(server):
    server.on("/v1/health", endless(64 * 1024 * 1024, declare_length=True))
    with client_for(server) as client, pytest.raises(BadReply, match="reply of 67108864 bytes exceeds"):
        client.health()
    assert server.sent("/v1/health").cut_off


def test_an_oversized_error_page_still_reports_the_status(server):
    server.on("/v1/device/me", endless(4 * 1024 * 1024, status=500, content_type="text/html"))
    with client_for(server) as client, pytest.raises(ServerFault, match="HTTP 500: no error detail"):
        client.me()


# --- redirects, URLs, connections ---------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_to_another_host_is_not_followed_and_the_token_stays_home(server, status):
    elsewhere = FaultServer("127.0.0.2")  # another host (still loopback: no traffic leaves this machine)
    try:
        elsewhere.on("/v1/device/checkins", reply_json(200, {"results": []}))
        server.on("/v1/device/checkins", redirect(status, elsewhere.url + "/v1/device/checkins"))
        event = CheckinEvent(str(uuid.uuid4()), "AB12", datetime.now(timezone.utc), "accepted", False)
        with client_for(server) as client, pytest.raises(BadReply, match="not followed") as raised:
            client.send_checkins([event])
        assert raised.value.status == status and elsewhere.url in str(raised.value)
        assert elsewhere.seen == []
        assert server.seen[0].headers["Authorization"] == "Bearer device-token"
    finally:
        elsewhere.close()


@pytest.mark.parametrize("url", ["http://reader.invalid", "http://reader.invalid:8080/prefix",
                                 "http://10.0.0.5", "http://[2001:db8::1]/"])
def test_plain_http_to_a_non_loopback_host_is_refused_before_any_connection(url):
    session = requests.Session()
    session.mount("http://", RecordingAdapter())
    with pytest.raises(InsecureURL, match="would expose the device token") as raised:
        ServerClient(ServerSettings(url=url), "device-token", session)
    assert not raised.value.retryable and url in str(raised.value)
    assert session.adapters["http://"].sent == []


class RecordingAdapter(HTTPAdapter):
    def __init__(self):
        super().__init__()
        self.sent: list[str] = []

    def send(self, request, **kwargs):
        self.sent.append(request.url)
        raise AssertionError("no request may be sent")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://127.9.9.9", "http://[::1]:9000/", "http://localhost",
                                 "http://LOCALHOST:1/x/", "https://reader.invalid/tagd"])
def test_loopback_http_and_any_https_are_allowed(url):
    with ServerClient(ServerSettings(url=url)) as client:
        assert client.base_url == url.rstrip("/")


def test_allow_insecure_http_permits_a_non_loopback_http_url():
    with ServerClient(ServerSettings(url="http://reader.invalid", allow_insecure_http=True)) as client:
        assert client.base_url == "http://reader.invalid"


@pytest.mark.parametrize("url", ["", "reader.invalid", "ftp://reader.invalid", "https://", "https://user:pw@host",
                                 "https://host/?x=1", "https://host:port"])
def test_an_unusable_url_is_refused(url):
    with pytest.raises(InsecureURL):
        ServerClient(ServerSettings(url=url))


def test_a_closed_port_is_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with ServerClient(ServerSettings(url=f"http://127.0.0.1:{port}")) as client:
        with pytest.raises(Unreachable, match=f"GET /v1/health: cannot reach http://127.0.0.1:{port}") as raised:
            client.health()
    assert raised.value.retryable and raised.value.status is None


def test_a_server_hanging_up_without_a_reply_is_unreachable_and_retryable(server):
    server.on("/v1/device/checkins", stall_before_headers(0))  # reads the request, closes without a word
    event = CheckinEvent(str(uuid.uuid4()), "AB12", datetime.now(timezone.utc), "accepted", False)
    with client_for(server) as client, pytest.raises(Unreachable, match="without response") as raised:
        client.send_checkins([event])
    assert raised.value.retryable  # check-ins are idempotent per event_id: resending is safe
    assert len(server.seen) == 1  # and the client itself did not resend behind the caller's back


def test_calls_reuse_one_connection_and_send_the_token_only_where_needed(server):
    server.on("/v1/health", reply_json(200, HEALTHY))
    me = {"device_id": 3, "name": "Front", "business_id": 1, "location_id": 2, "id_min_length": 4,
          "id_max_length": 32}
    server.on("/v1/device/me", reply_json(200, me))
    with client_for(server) as client:
        client.health()
        assert client.me().name == "Front"
        client.health()
    assert len({seen.client_port for seen in server.seen}) == 1
    assert ["Authorization" in seen.headers for seen in server.seen] == [False, True, False]


def test_a_cut_off_reply_does_not_poison_the_next_call(server):
    server.on("/v1/health", endless(4 * 1024 * 1024))
    with client_for(server) as client:
        with pytest.raises(BadReply):
            client.health()
        server.on("/v1/health", reply_json(200, HEALTHY))
        assert client.health().status == "ok"


def test_health_reads_the_servers_clock_from_the_date_header(server):
    server.on("/v1/health", reply_json(200, HEALTHY, {"Date": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    with client_for(server) as client:
        assert client.health().server_time == datetime(2015, 10, 21, 7, 28, tzinfo=timezone.utc)
