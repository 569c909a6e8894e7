"""A scripted, fault-injecting HTTP/1.1 server on loopback for the server client's tests.

Each path gets a behaviour (a function of the request handler): a normal JSON reply, a drip, a truncated body,
a proxy's HTML page, an endless body, a redirect... The server records every request (with the client's port, to
see connection reuse) and how many body bytes each behaviour managed to send before the client hung up.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Behaviour = Callable[["FaultHandler"], None]
SEND_BUFFER = 16 * 1024  # small socket buffers keep "bytes sent" close to "bytes the client read"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


@dataclass
class Sent:
    """Body bytes one behaviour wrote, and whether the client cut it off."""

    bytes: int = 0
    cut_off: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class FaultHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is visible
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0]
        self.server.seen.append(Seen(self.command, self.path, dict(self.headers), body, self.client_address[1]))
        behaviour = self.server.routes.get(path, reply_json(404, {"error": {"code": "not_found", "message": path}}))
        sent = self.server.sent.setdefault(path, Sent())
        try:
            behaviour(self)
        except (BrokenPipeError, ConnectionResetError):
            sent.cut_off = True
            self.close_connection = True
        finally:
            sent.done.set()

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    # helpers for behaviours
    def head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response_only(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Date" not in headers:
            self.send_header("Date", self.date_time_string())
        self.end_headers()

    def body(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()
        self.server.sent[self.path.split("?")[0]].bytes += len(data)

    def pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the test tears the server down."""
        self.server.stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str):
        super().__init__((host, 0), FaultHandler)
        self.routes: dict[str, Behaviour] = {}
        self.seen: list[Seen] = []
        self.sent: dict[str, Sent] = {}
        self.stopping = threading.Event()


class FaultServer:
    def __init__(self, host: str = "127.0.0.1"):
        self._server = _Server(host)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def seen(self) -> list[Seen]:
        return self._server.seen

    def on(self, path: str, behaviour: Behaviour) -> None:
        self._server.routes[path] = behaviour

    def sent(self, path: str, wait_s: float = 5.0) -> Sent:
        """What the behaviour for `path` sent, once it has finished (or gave up on a vanished client)."""
        sent = self._server.sent[path]
        assert sent.done.wait(wait_s), f"the behaviour for {path} did not finish"
        return sent

    def close(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# --- behaviours ---------------------------------------------------------------------------------------------------

def reply(status: int, data: bytes, headers: dict[str, str] | None = None,
          content_type: str = "application/json") -> Behaviour:
    def behave(handler: FaultHandler) -> None:
        handler.head(status, {"Content-Type": content_type, "Content-Length": str(len(data)), **(headers or {})})
        handler.body(data)
    return behave


def reply_json(status: int, document: Any, headers: dict[str, str] | None = None) -> Behaviour:
    return reply(status, json.dumps(document).encode(), headers)


def drip(data: bytes, every_s: float) -> Behaviour:
    """Announce the whole body, then send it one byte at a time: each read is quick, the whole is not."""
    def behave(handler: FaultHandler) -> None:
        handler.head(200, {"Content-Type": "application/json", "Content-Length": str(len(data))})
        for i in range(len(data)):
            handler.body(data[i:i + 1])
            handler.pause(every_s)
    return behave


def stall_after_headers(seconds: float) -> Behaviour:
    def behave(handler: FaultHandler) -> None:
        handler.head(200, {"Content-Type": "application/json", "Content-Length": "100"})
        handler.pause(seconds)
        handler.close_connection = True
    return behave


def stall_before_headers(seconds: float) -> Behaviour:
    def behave(handler: FaultHandler) -> None:
        handler.pause(seconds)
        handler.close_connection = True
    return behave


def truncated(declared: int, data: bytes) -> Behaviour:
    """Content-Length larger than the body, then close."""
    def behave(handler: FaultHandler) -> None:
        handler.head(200, {"Content-Type": "application/json", "Content-Length": str(declared)})
        handler.body(data)
        handler.close_connection = True
    return behave


def endless(total: int, chunk: int = 16 * 1024, declare_length: bool = False, status: int = 200,
            content_type: str = "application/json") -> Behaviour:
    """A body of `total` bytes of valid-looking JSON whitespace, chunked (no Content-Length) unless declared."""
    piece = b" " * chunk

    def behave(handler: FaultHandler) -> None:
        length = {"Content-Length": str(total)} if declare_length else {"Transfer-Encoding": "chunked"}
        handler.head(status, {"Content-Type": content_type, **length})
        for _ in range(total // chunk):
            if declare_length:
                handler.body(piece)
            else:
                handler.wfile.write(b"%x\r\n" % chunk)
                handler.body(piece)
                handler.wfile.write(b"\r\n")
        if not declare_length:
            handler.wfile.write(b"0\r\n\r\n")
    return behave


def redirect(status: int, location: str) -> Behaviour:
    return reply(status, b"", {"Location": location})
