"""Shared set-up for the server tests: a business with an admin, a staff member and an enrolled device."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from server import service
from server.app import create_app
from server.rules import format_time


@dataclass
class Clock:
    """The server's clock, moved by the test."""

    now: datetime = field(default_factory=lambda: datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def now_str(self) -> str:
        return format_time(self.now)


class World:
    """A test client plus tokens; `admin`, `staff`, `device` send requests as that caller."""

    def __init__(self, app, clock: Clock):
        self.app, self.clock, self.client = app, clock, app.test_client()
        store = app.extensions["tagd"].store
        with store.transaction() as tx:
            self.business_id, self.admin_token = service.init_business(tx, "Gym", ["Main", "North"], clock.now_str())
            self.staff_token = service.issue_token(tx, self.business_id, "staff", "desk", clock.now_str())
        self.main, self.north = 1, 2
        self.device_token = self.enrol(self.main)["token"]

    def call(self, token: str | None, method: str, path: str, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def admin(self, method: str, path: str, **kwargs):
        return self.call(self.admin_token, method, path, **kwargs)

    def staff(self, method: str, path: str, **kwargs):
        return self.call(self.staff_token, method, path, **kwargs)

    def device(self, method: str, path: str, **kwargs):
        return self.call(self.device_token, method, path, **kwargs)

    def enrol(self, location_id: int, name: str = "front door") -> dict:
        code = self.staff("POST", "/v1/enrolment-codes", json={"location_id": location_id}).json["code"]
        reply = self.call(None, "POST", "/v1/device/enrol", json={"code": code, "hardware_id": "hw-1", "name": name})
        assert reply.status_code == 201, reply.json
        return reply.json

    def add_client(self, name: str, client_id: str | None = None, status: str = "active") -> dict:
        body = {"name": name, "status": status} | ({"client_id": client_id} if client_id else {})
        reply = self.staff("POST", "/v1/clients", json=body)
        assert reply.status_code == 201, reply.json
        return reply.json

    def roster(self, cursor: str | None = None, limit: int | None = None, **kwargs):
        query = {k: v for k, v in (("cursor", cursor), ("limit", limit)) if v is not None}
        return self.device("GET", "/v1/device/roster", query_string=query, **kwargs)

    def checkin(self, client_id: str, event_id: str | None = None, **fields) -> dict:
        event = {"event_id": event_id or str(uuid.uuid4()), "client_id": client_id,
                 "scanned_at": "2025-03-01T08:59:00Z", "decision": "accepted", "offline": False} | fields
        reply = self.device("POST", "/v1/device/checkins", json={"events": [event]})
        assert reply.status_code == 200, reply.json
        return reply.json["results"][0]


def error_code(reply) -> str:
    """The contract's error code of a reply, after checking the error shape."""
    assert set(reply.json) == {"error"} and set(reply.json["error"]) == {"code", "message"}, reply.json
    assert reply.json["error"]["message"]
    return reply.json["error"]["code"]


@pytest.fixture
def world(tmp_path) -> World:
    clock = Clock()
    app = create_app(str(tmp_path / "server.db"), clock=clock, prune_interval=timedelta(0))
    yield World(app, clock)
    app.extensions["tagd"].store.close()
