"""The HTTP edge of the server client: URL policy, one bounded request, and HTTP outcomes mapped to ServerError.

Every call has explicit connect/read timeouts, verifies TLS, never follows a redirect (the bearer token must not
travel to wherever a Location header points) and reads the body in chunks up to a bound, so neither a huge nor a
dripping reply can hold memory or the caller without limit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from . import __version__
from .api_types import parse_error_body
from .errors import (AuthRejected, BadReply, Conflict, CursorExpired, InsecureURL, RequestRejected, ServerError,
                     ServerFault, ServerTimeout, Throttled, Unreachable)
from .hosts import is_loopback_host
from .privacy import server_message_for_log
from .settings import ServerSettings

CHUNK_BYTES = 64 * 1024
ERROR_BODY_BYTES = 64 * 1024  # error replies only ever carry a short JSON message (or a proxy's page)
ROSTER_PATH = "/v1/device/roster"


@dataclass(frozen=True, slots=True)
class Reply:
    what: str  # 'GET /v1/device/roster', for messages
    status: int
    headers: Mapping[str, str]  # case-insensitive (requests' CaseInsensitiveDict)
    body: bytes

    @property
    def server_time(self) -> datetime | None:
        return parse_http_date(self.headers.get("Date", ""))


def server_base_url(url: str, allow_insecure_http: bool) -> str:
    """The configured URL checked and without trailing slash; raises InsecureURL before any connection is tried."""
    where = f"server URL {url!r}"
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - parsing the port raises ValueError when it is not a number
    except ValueError as exc:
        raise InsecureURL(where, f"not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InsecureURL(where, "needs the form https://host[:port][/prefix]")
    if parts.username is not None or parts.query or parts.fragment:
        raise InsecureURL(where, "must not carry credentials, a query or a fragment")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback_host(host):
        raise InsecureURL(where, "plain http:// to a non-loopback host would expose the device token; "
                                 "use https:// (or set allow_insecure_http = true on a trusted network)")
    return url.strip().rstrip("/")


def parse_http_date(value: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), never negative; None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    moment = parse_http_date(value)
    return None if moment is None else max(0.0, (moment - now).total_seconds())


def json_of(reply: Reply) -> Any:
    """The reply body as JSON, or BadReply when it is not JSON (a proxy's HTML page, garbage, ...)."""
    content_type = reply.headers.get("Content-Type", "")
    media = content_type.split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise BadReply(reply.what, f"expected JSON, got {content_type or 'no content type'} "
                                   f"({len(reply.body)} bytes)", reply.status)
    try:
        return json.loads(reply.body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested arrays
        raise BadReply(reply.what, f"malformed JSON ({str(exc)[:120]})", reply.status) from None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def error_for(reply: Reply, has_token: bool) -> ServerError:
    """The ServerError for a reply outside 2xx/304, carrying the contract's error code/message when present."""
    code, message = _error_detail(reply)
    message = message and server_message_for_log(message)  # never repeated whole: it may echo our request
    detail = {"code": code, "server_message": message}
    problem = message or _no_detail(reply)
    status, what = reply.status, reply.what
    if status in (401, 403):
        hint = "" if has_token else " (no device token: enrol first)"
        return AuthRejected(what, f"token rejected{hint}: {problem}", status, **detail)
    if status == 409:
        return Conflict(what, problem, status, **detail)
    if status == 410 and (code == "cursor_expired" or what.endswith(ROSTER_PATH)):
        return CursorExpired(what, problem, status, **detail)
    if status in (429, 503):
        now = reply.server_time or datetime.now(timezone.utc)  # the server's clock: skew must not stretch the wait
        wait = parse_retry_after(reply.headers.get("Retry-After"), now)
        said = f"retry after {wait:g} s" if wait is not None else "no Retry-After"
        return Throttled(what, f"server busy, {said}: {problem}", status, wait, **detail)
    if 500 <= status <= 599:
        return ServerFault(what, problem, status, **detail)
    if 400 <= status <= 499:
        return RequestRejected(what, problem, status, **detail)
    location = reply.headers.get("Location")
    if 300 <= status <= 399 and location:
        return BadReply(what, f"redirect to {location[:200]} not followed (the token stays here); "
                              "check server.url", status)
    return BadReply(what, f"unexpected status ({problem})", status)


def _error_detail(reply: Reply) -> tuple[str | None, str | None]:
    try:
        return parse_error_body(json_of(reply))
    except BadReply:
        return None, None


def _no_detail(reply: Reply) -> str:
    content_type = reply.headers.get("Content-Type") or "no content type"
    return f"no error detail ({content_type}, {len(reply.body)} bytes)"


class Transport:
    """Sends one request on a shared session and returns the whole (bounded) reply, or raises a ServerError."""

    def __init__(self, settings: ServerSettings, session: requests.Session):
        self.base_url = server_base_url(settings.url, settings.allow_insecure_http)
        self.settings, self.session = settings, session
        self.verify: bool | str = settings.ca_file or True

    def request(self, method: str, path: str, *, token: str | None, body: Any = None,
                params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None) -> Reply:
        what = f"{method} {path}"
        response = self._send(what, method, path, token, body, params, headers)
        ok = 200 <= response.status_code <= 299 or response.status_code == 304
        limit = self.settings.max_response_bytes if ok else min(ERROR_BODY_BYTES, self.settings.max_response_bytes)
        try:
            content = b"" if response.status_code in (204, 304) else self._read_body(what, response, limit)
        except ServerError:
            response.close()  # drop the connection: the rest of the body must never be read
            if ok:
                raise
            content = b""  # an error status says enough even when its page is broken or huge
        else:
            response.raw.release_conn()  # fully read: the connection goes back to the pool for reuse
        return Reply(what, response.status_code, response.headers, content)

    def _send(self, what: str, method: str, path: str, token: str | None, body: Any,
              params: Mapping[str, str] | None, headers: Mapping[str, str] | None) -> requests.Response:
        all_headers = {"Accept": "application/json", "User-Agent": f"tagd/{__version__}", **(headers or {})}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        timeouts = (self.settings.connect_timeout_s, self.settings.read_timeout_s)
        try:
            return self.session.request(method, self.base_url + path, json=body, params=params, headers=all_headers,
                                        timeout=timeouts, verify=self.verify, stream=True, allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            raise Unreachable(what, f"TLS handshake with {self.base_url} failed: {_root_cause(exc)}") from None
        except requests.exceptions.ConnectTimeout:
            raise Unreachable(what, f"no connection to {self.base_url} within {timeouts[0]:g} s") from None
        except requests.exceptions.ReadTimeout:
            raise ServerTimeout(what, f"no reply within {timeouts[1]:g} s") from None
        except requests.exceptions.RequestException as exc:
            raise Unreachable(what, f"cannot reach {self.base_url}: {_root_cause(exc)}") from None
        except OSError as exc:  # requests checks ca_file itself and raises a bare OSError when it is missing
            raise Unreachable(what, f"TLS set-up for {self.base_url} failed: {exc}") from None

    def _read_body(self, what: str, response: requests.Response, limit: int) -> bytes:
        """Read up to `limit` bytes in chunks; more than that, a broken-off body or a slow drip is an error."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BadReply(what, f"reply of {declared} bytes exceeds the {limit}-byte bound", response.status_code)
        deadline = time.monotonic() + self.settings.read_timeout_s
        chunks: list[bytes] = []
        size = 0
        while chunk := self._read_chunk(what, response, min(CHUNK_BYTES, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise BadReply(what, f"reply exceeds the {limit}-byte bound (cut off)", response.status_code)
            if time.monotonic() > deadline:
                raise ServerTimeout(what, f"reply still arriving after {self.settings.read_timeout_s:g} s "
                                          f"({size} bytes so far)", response.status_code)
        return b"".join(chunks)

    @staticmethod
    def _read_chunk(what: str, response: requests.Response, amount: int) -> bytes:
        # read1: return what one socket read brings, so the deadline is checked even when a server drips bytes
        try:
            return response.raw.read1(amount, decode_content=True)
        except urllib3.exceptions.ReadTimeoutError:
            raise ServerTimeout(what, "reply stalled mid-body", response.status_code) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BadReply(what, f"reply broken off ({_root_cause(exc)})", response.status_code) from None


def _root_cause(exc: BaseException) -> str:
    """The innermost message of a requests/urllib3 exception chain (they nest the OS error three deep)."""
    for _ in range(8):  # bounded: exception chains can loop through __context__
        reason = getattr(exc, "reason", None)
        nested = next((arg for arg in exc.args if isinstance(arg, BaseException)), None)
        inner = reason if isinstance(reason, BaseException) else nested or exc.__cause__ or exc.__context__
        if inner is None or inner is exc:
            break
        exc = inner
    return str(exc)[:300] or type(exc).__name__
