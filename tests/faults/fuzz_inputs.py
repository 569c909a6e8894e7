"""What the fuzz tests feed tagd: key-event streams, serial byte streams, configuration files and raw HTTP replies,
as hypothesis strategies built around real inputs (a scanner's own events, the example configuration, the
contract's replies) so that most inputs are near misses that reach deep into the code, not noise it rejects at once.
Also a loopback server that answers every request with the raw bytes of the reply under test."""

from __future__ import annotations

import gzip
import json
import math
import socket
import threading
import tomllib
import zlib
from datetime import date, datetime, time, timezone
from pathlib import Path

import evdev
from evdev import ecodes
from hypothesis import strategies as st

from daemon.keys import key_events_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = ROOT / "config" / "tagd.example.toml"

# --- key events ---------------------------------------------------------------------------------------------------

EVENT_TYPES = [ecodes.EV_SYN, ecodes.EV_KEY, ecodes.EV_MSC, ecodes.EV_LED, ecodes.EV_REL, 0x1F]
KEY_CODES = st.one_of(st.integers(0, 255), st.integers(-3, ecodes.KEY_MAX + 3), st.sampled_from(
    [ecodes.KEY_LEFTSHIFT, ecodes.KEY_RIGHTALT, ecodes.KEY_CAPSLOCK, ecodes.KEY_NUMLOCK, ecodes.KEY_ENTER,
     ecodes.KEY_KPENTER, ecodes.KEY_TAB]))


@st.composite
def raw_event(draw) -> tuple[int, int, int]:
    kind = draw(st.sampled_from(EVENT_TYPES))
    code = draw(KEY_CODES) if kind == ecodes.EV_KEY else draw(st.integers(-1, 5))
    return kind, code, draw(st.sampled_from([0, 1, 2, -1, 7]))


@st.composite
def key_event_stream(draw) -> list[evdev.InputEvent]:
    """Real scans (each as its layout's scanner types it) interleaved with stray, repeated or impossible events,
    SYN_DROPPED among them, at times that may stall, jump or go backwards."""
    layout = draw(st.sampled_from(["us", "de", "fr"]))
    pieces: list[list[tuple[int, int, int]]] = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            text = draw(st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=1, max_size=40))
            pieces.append([(e.type, e.code, e.value) for e in key_events_for(text, layout, gap_ms=3)])
        else:
            pieces.append(draw(st.lists(raw_event(), max_size=40)))
    events, now = [], 1_750_000_000.0
    for piece in pieces:
        for kind, code, value in piece:
            now += draw(st.sampled_from([0.0, 0.001, 0.003, 0.2, 1.5, -0.5]))
            events.append(_event(now, kind, code, value))
    return [layout, events]


def _event(at: float, kind: int, code: int, value: int) -> evdev.InputEvent:
    seconds = math.floor(at)
    return evdev.InputEvent(seconds, int((at - seconds) * 1e6), kind, code & 0xFFFF if code >= 0 else code, value)


# --- serial bytes -------------------------------------------------------------------------------------------------

SERIAL_SPECIAL = st.sampled_from([b"\r", b"\n", b"\r\n", b"\x02", b"\x03", b"]C0", b"\xff", b"\xc3\xa9", b"\x00"])


@st.composite
def serial_stream(draw) -> list[tuple[bytes, float]]:
    """Chunks as reads return them, each with its arrival time: codes, terminators, envelopes, binary noise."""
    chunks, now = [], 100.0
    for _ in range(draw(st.integers(0, 25))):
        part = draw(st.one_of(SERIAL_SPECIAL, st.binary(max_size=64),
                              st.text(alphabet="ABC0123456789", max_size=40).map(str.encode),
                              st.integers(1, 3000).map(lambda n: b"7" * n)))
        now += draw(st.sampled_from([0.0, 0.001, 0.05, 0.2, 5.0]))
        chunks.append((part, now))
    return chunks


# --- configuration files ------------------------------------------------------------------------------------------

def example_document() -> dict:
    with open(EXAMPLE_CONFIG, "rb") as file:
        return tomllib.load(file)


TOML_SCALAR = st.one_of(
    st.booleans(), st.integers(-2**63, 2**63 - 1), st.sampled_from([0, -1, 1, 10**6, 2**31]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["", "us", "hid", "serial", "stdin", "evdev", "gpiod", "led", "beeper", "terminal", "fake",
                     "none", "/dev/ttyUSB0", "/var/lib/tagd", "https://checkin.example.com", "http://10.0.0.1",
                     "cr", "stx_etx", "timeout", "online", "accept", "green", "red", "on 100ms off 50ms", "*"]),
    st.datetimes(timezones=st.just(timezone.utc)), st.dates(), st.times())
TOML_VALUE = st.recursive(TOML_SCALAR, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=10), inner, max_size=3), max_leaves=6)


@st.composite
def config_text(draw) -> bytes:
    """The example configuration with keys changed, removed or added anywhere; sometimes cut short or garbled."""
    document = example_document()
    for _ in range(draw(st.integers(1, 6))):
        _mutate(document, draw)
    text = dump_toml(document).encode("utf-8", "surrogatepass")
    damage = draw(st.sampled_from(["none", "none", "none", "cut", "bytes"]))
    if damage == "cut":
        text = text[:draw(st.integers(0, len(text)))]
    elif damage == "bytes":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.binary(min_size=1, max_size=8)) + text[at:]
    return text


def _mutate(node, draw, depth: int = 0) -> None:
    if isinstance(node, list):
        if node and isinstance(node[0], dict) and draw(st.booleans()):
            _mutate(draw(st.sampled_from(node)), draw, depth + 1)
        elif draw(st.booleans()):
            node.append(draw(TOML_VALUE) if not node or not isinstance(node[0], dict) else {})
        return
    key = draw(st.sampled_from(sorted(node))) if node else draw(st.text(max_size=10))
    action = draw(st.sampled_from(["descend", "replace", "remove", "add"]))
    if action == "descend" and isinstance(node.get(key), (dict, list)) and depth < 3:
        _mutate(node[key], draw, depth + 1)
    elif action == "remove":
        node.pop(key, None)
    elif action == "add":
        node[draw(st.text(max_size=12))] = draw(TOML_VALUE)
    else:
        node[key] = draw(TOML_VALUE)


def dump_toml(document: dict) -> str:
    """Just enough of a TOML writer for the documents above: every key quoted, tables and arrays of tables."""
    lines: list[str] = []
    _dump_table(document, [], lines)
    return "\n".join(lines) + "\n"


def _dump_table(table: dict, path: list[str], lines: list[str]) -> None:
    nested = {k: v for k, v in table.items() if isinstance(v, dict)
              or (isinstance(v, list) and v and all(isinstance(i, dict) for i in v))}
    for key, value in table.items():
        if key not in nested:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in nested.items():
        header = ".".join(_key(k) for k in [*path, key])
        for item in ([value] if isinstance(value, dict) else value):
            lines.append(f"[{header}]" if isinstance(value, dict) else f"[[{header}]]")
            _dump_table(item, [*path, key], lines)


def _key(key: str) -> str:
    return json.dumps(key)


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, (int,)):
        return str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


# --- raw HTTP replies ---------------------------------------------------------------------------------------------

CALLS = ["health", "me", "roster", "checkins", "link_target"]
GOOD_BODIES = {
    "health": {"status": "ok", "api_version": "1.0.0"},
    "me": {"device_id": 3, "name": "Front", "business_id": 1, "location_id": 2, "id_min_length": 4,
           "id_max_length": 32},
    "roster": {"reset": False, "items": [{"client_id": "M1001", "status": "active"}], "next_cursor": "4",
               "more": True},
    "checkins": {"results": [{"event_id": "EVENT", "result": "accepted", "message": ""}]},
    "link_target": {"target": None},
}
STATUS_LINES = st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.1 304 Not Modified", b"HTTP/1.1 302 Found",
                                b"HTTP/1.1 401 Unauthorized", b"HTTP/1.1 429 Too Many", b"HTTP/1.1 503 Busy",
                                b"HTTP/1.1 500 Oops", b"HTTP/1.0 200 OK", b"HTTP/1.1 999 Odd", b"HTTP/1.1 200",
                                b"HTTP/2 200", b"ICY 200 OK", b"HTTP/1.1 abc", b"", b"\x00\xff"])
HEADERS = st.sampled_from([
    b"Content-Type: application/json", b"Content-Type: text/html", b"Content-Type: application/problem+json",
    b"Content-Type: ", b"Content-Encoding: gzip", b"Content-Encoding: deflate", b"Content-Encoding: br",
    b"Content-Encoding: zstd", b"Content-Encoding: x-nonsense", b"Transfer-Encoding: chunked",
    b"Content-Length: 0", b"Content-Length: -1", b"Content-Length: 99999999999", b"Content-Length: 12abc",
    b"Location: http://evil.example/", b"Retry-After: 3", b"Retry-After: -5", b"Retry-After: 1e9",
    b"Retry-After: Wed, 21 Oct 2015 07:28:00 GMT", b"Date: yesterday", b"ETag: \"x\"", b"Connection: close",
    b"X-" + b"a" * 70000 + b": 1", b"no colon here", b"\xff\xfe: \x00"])


@st.composite
def raw_reply(draw) -> tuple[str, bytes]:
    """A call and the exact bytes the server answers it with: status line, headers, body (maybe compressed,
    chunked, cut short, mis-declared). The body starts from the contract's reply and is often damaged."""
    call = draw(st.sampled_from(CALLS))
    body = json.dumps(GOOD_BODIES[call]).encode()
    body = draw(st.one_of(st.just(body), st.binary(max_size=200), st.just(body[:draw(st.integers(0, len(body)))]),
                          st.just(b"[" * 5000), st.just(b"<html>proxy</html>"),
                          st.just(body).map(lambda b: b.replace(b"accepted", b"teleported"))))
    headers = draw(st.lists(HEADERS, max_size=6))
    encoding = draw(st.sampled_from([None, None, "gzip", "deflate"]))
    if encoding == "gzip":
        body, headers = gzip.compress(body), [*headers, b"Content-Encoding: gzip"]
    elif encoding == "deflate":
        body, headers = zlib.compress(body), [*headers, b"Content-Encoding: deflate"]
    if b"Transfer-Encoding: chunked" in headers and draw(st.booleans()):
        size = draw(st.sampled_from([b"%x" % len(body), b"zz", b"-1", b"ffffffffffffffff"]))
        body = size + b"\r\n" + body + b"\r\n0\r\n\r\n"
    elif draw(st.booleans()):
        headers = [*headers, b"Content-Length: %d" % (len(body) + draw(st.sampled_from([0, 0, 5, -3])))]
    head = draw(STATUS_LINES) + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"
    return call, head + body


class RawReplyServer:
    """Loopback TCP: reads each request's head and body, answers with `reply` (whatever bytes it holds) and
    closes the connection."""

    def __init__(self):
        self.reply = b""
        self.requests = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # closed
            with connection:
                connection.settimeout(2.0)
                try:
                    _read_request(connection)
                    self.requests += 1
                    connection.sendall(self.reply)
                except OSError:
                    pass

    def close(self) -> None:
        self._listener.close()
        self._thread.join(timeout=5)


def _read_request(connection: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return
        body += chunk
