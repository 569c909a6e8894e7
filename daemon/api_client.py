"""tagd's client for the central server's device operations (server/openapi.yaml, /v1).

One requests.Session (connection reuse), explicit timeouts, TLS always verified, no retries here: every failure
is a ServerError whose `retryable` tells the caller (the delivery worker, the roster sync) what to do next.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import requests

from .api_http import ROSTER_PATH, Reply, Transport, error_for, json_of
from .api_types import (CheckinEvent, DeviceInfo, Enrolment, EventResult, Health, IdChange, LinkTarget, NotModified,
                        ReplyShapeError, RosterPage, parse_checkin_results, parse_device_info, parse_enrolment,
                        parse_health, parse_id_change, parse_link_target, parse_roster_page)
from .errors import BadReply
from .settings import ServerSettings

T = TypeVar("T")

MAX_CHECKIN_BATCH = 500  # the contract's maxItems for one POST /v1/device/checkins


class ServerClient:
    """The device side of the contract. Not thread-safe (one session); use one client per thread or task."""

    def __init__(self, settings: ServerSettings, token: str | None = None, session: requests.Session | None = None):
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no ~/.netrc credentials, env CA bundles or proxies behind the config's back
        self._transport = Transport(settings, session)  # checks the URL first: raises InsecureURL
        self._token = token

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections of a session this client created (a caller's session stays open)."""
        if self._own_session:
            self._transport.session.close()

    def health(self) -> Health:
        reply = self._call("GET", "/v1/health", authenticated=False)
        return _parsed(reply, parse_health, reply.server_time)

    def enrol(self, code: str, hardware_id: str, name: str) -> Enrolment:
        """Exchange a one-time enrolment code for a device token (returned once: store it before anything else)."""
        body = {"code": code, "hardware_id": hardware_id, "name": name}
        return _parsed(self._call("POST", "/v1/device/enrol", body=body, expect=201, authenticated=False),
                       parse_enrolment)

    def me(self) -> DeviceInfo:
        return _parsed(self._call("GET", "/v1/device/me"), parse_device_info)

    def roster_page(self, cursor: str | None = None, *, limit: int | None = None,
                    etag: str | None = None) -> RosterPage | NotModified:
        """One page of the roster change feed: from the start (full sync) without cursor, else changes after it.

        With `etag` from an earlier reply to the same cursor and limit, an unchanged roster answers NotModified
        (the server's ETag covers the cursor, so the first poll with a new cursor is always a 200). A cursor the
        server no longer knows raises CursorExpired: start a full sync.
        """
        params = {key: str(value) for key, value in (("cursor", cursor), ("limit", limit)) if value is not None}
        headers = {"If-None-Match": etag} if etag else None
        reply = self._call("GET", ROSTER_PATH, params=params, headers=headers, expect=(200, 304))
        if reply.status == 304:
            return NotModified(reply.headers.get("ETag") or etag)
        return _parsed(reply, parse_roster_page, reply.headers.get("ETag"))

    def send_checkins(self, events: Sequence[CheckinEvent]) -> list[EventResult]:
        """Deliver a batch (at most MAX_CHECKIN_BATCH); one result per event, in order. Safe to resend."""
        if not events:
            return []
        sent = list(events)
        reply = self._call("POST", "/v1/device/checkins", body={"events": [event.to_json() for event in sent]})
        return _parsed(reply, parse_checkin_results, sent)

    def link_target(self) -> LinkTarget | None:
        """The client staff selected for this device's next link, or None."""
        return _parsed(self._call("GET", "/v1/device/link-target"), parse_link_target)

    def link(self, tag: str, *, client_id: str | None = None, replace: bool = False) -> IdChange:
        """Make `tag` the ID of the client whose ID is `client_id`, or of the link target when it is None."""
        body: dict[str, Any] = {"tag": tag, "replace": replace}
        if client_id is not None:
            body["client_id"] = client_id
        return _parsed(self._call("POST", "/v1/device/link", body=body), parse_id_change)

    def _call(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
              headers: dict[str, str] | None = None, expect: int | tuple[int, ...] = 200,
              authenticated: bool = True) -> Reply:
        token = self._token if authenticated else None
        reply = self._transport.request(method, path, token=token, body=body, params=params, headers=headers)
        if reply.status not in (expect if isinstance(expect, tuple) else (expect,)):
            raise error_for(reply, has_token=token is not None)
        return reply


def _parsed(reply: Reply, parse: Callable[..., T], *extra: Any) -> T:
    """Parse a success reply's JSON body; any shape mismatch becomes BadReply naming the request and the field."""
    try:
        return parse(json_of(reply), *extra)
    except ReplyShapeError as exc:
        raise BadReply(reply.what, f"reply does not match the contract: {exc}", reply.status) from None
