"""A TLS front for the reference server that turns hostile on command: it drips, stalls, truncates, answers HTML,
sends 100 MB bodies or gzip bombs, redirects elsewhere, or presents a certificate for another host or from another
CA. In mode "sane" it forwards every request to the real server untouched. Every request is recorded as a Hit."""

from __future__ import annotations

import functools
import gzip
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import trustme

from tests.integration import fault_http
from tests.integration.fault_http import FaultHandler, drip, endless, redirect, reply, stall_before_headers, truncated
from tests.integration.run_support import forward, send_forwarded

HUNDRED_MB = 100 * 1024 * 1024
DEVICE_PATHS = ("/v1/device/checkins", "/v1/device/roster", "/v1/device/me", "/v1/device/link-target")


@dataclass
class Hit:
    path: str
    mode: str
    started: float  # time.monotonic()
    ended: float | None = None


def gzip_bomb() -> Callable[[FaultHandler], None]:
    """A small gzip body (about 100 KB) that decodes to 100 MB of JSON whitespace."""
    def behave(handler: FaultHandler) -> None:
        body = _bomb()
        handler.head(200, {"Content-Type": "application/json", "Content-Encoding": "gzip",
                           "Content-Length": str(len(body))})
        handler.body(body)
    return behave


@functools.cache
def _bomb() -> bytes:
    return gzip.compress(b" " * HUNDRED_MB, compresslevel=9)


def behaviours(elsewhere: str) -> dict[str, Callable[[FaultHandler], None]]:
    """The hostile replies to a delivery, by name. `elsewhere` is another host's URL that redirects point to."""
    return {
        "slow drip": drip(b'{"results": []}' + b" " * 2000, every_s=0.05),
        "stall before headers": stall_before_headers(30.0),
        "truncated body": truncated(1000, b'{"results": [{"event_id": '),
        "HTML page": reply(200, b"<html><body>Please log in to the Wi-Fi</body></html>", content_type="text/html"),
        "100 MB body": endless(HUNDRED_MB),
        "gzip bomb": gzip_bomb(),
        "redirect to another host": redirect(307, f"{elsewhere}/v1/device/checkins"),
    }


TLS_MODES = ("wrong TLS host", "wrong CA")


class _TlsServer(fault_http._Server):
    """The fault server, speaking TLS with whichever context `tls` holds when a connection arrives."""

    def __init__(self, host: str, tls: ssl.SSLContext):
        super().__init__(host)
        self.tls = tls
        self.refused: list[tuple[str, float]] = []  # (mode, time.monotonic()) of each handshake that failed
        self.mode = "sane"

    def get_request(self):
        connection, address = self.socket.accept()
        return self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request, client_address) -> None:
        pass  # a handshake the client refuses, a client that hangs up: what some modes are for


class _TlsHandler(FaultHandler):
    def setup(self) -> None:
        self.request.settimeout(10)
        try:
            self.request.do_handshake()
        except (OSError, ssl.SSLError):
            self.server.refused.append((self.server.mode, time.monotonic()))
            raise
        super().setup()


class HostileProxy:
    """https://localhost:<port>, trusted through `ca_pem` (write it where the reader's server.ca_file points)."""

    def __init__(self, target: str, elsewhere: str):
        self.target, self.mode = target, "sane"
        self.behaviours = behaviours(elsewhere)
        ca, stranger = trustme.CA(), trustme.CA()
        self.ca_pem = ca.cert_pem.bytes()
        self.contexts = {"sane": _context(ca.issue_cert("localhost")),
                         "wrong TLS host": _context(ca.issue_cert("checkin.example.com")),
                         "wrong CA": _context(stranger.issue_cert("localhost"))}
        self.hits: list[Hit] = []
        self._server = _TlsServer("127.0.0.1", self.contexts["sane"])
        self._server.RequestHandlerClass = _TlsHandler
        for path in DEVICE_PATHS:
            self._server.routes[path] = self._handle
        self.url = f"https://localhost:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def set_mode(self, mode: str) -> None:
        self.mode = self._server.mode = mode
        self._server.tls = self.contexts.get(mode, self.contexts["sane"])

    def attempts(self, mode: str) -> list[float]:
        """When the reader tried to deliver in `mode`: requests to the checkins path, or refused handshakes."""
        if mode in TLS_MODES:
            return [at for refused_in, at in self._server.refused if refused_in == mode]
        return [hit.started for hit in self.hits if hit.path == "/v1/device/checkins" and hit.mode == mode]

    def close(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handle(self, handler: FaultHandler) -> None:
        path, mode = handler.path.split("?")[0], self.mode
        hit = Hit(path, mode, time.monotonic())
        self.hits.append(hit)
        try:
            if mode in self.behaviours and path == "/v1/device/checkins":
                self.behaviours[mode](handler)
            else:
                self._forward(handler)
        finally:
            hit.ended = time.monotonic()

    def _forward(self, handler: FaultHandler) -> None:
        send_forwarded(handler, forward(handler, self.target))


def _context(certificate: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    return context

