"""Device API: enrolment, the roster change feed, check-in batches, linking tags (see openapi.yaml, tag device)."""

from __future__ import annotations

import hashlib
from typing import Iterator

from flask import Blueprint, Response, request

from server import service
from server.app import body, context, require
from server.errors import Gone
from server.rules import RosterCursor, parse_cursor
from server.serialize import id_change_json, link_target_json
from server.storage import RosterSnapshot

device_api = Blueprint("device", __name__)


@device_api.post("/v1/device/enrol")
def enrol():
    data = body()
    ctx = context()
    with ctx.store.transaction() as tx:
        reply = service.enrol(tx, data["code"], data["hardware_id"], data["name"], ctx.now())
    return reply, 201


@device_api.get("/v1/device/me")
def me():
    device = require("device")
    with context().store.read() as tx:
        policy = tx.business(device.business_id).policy
    return {"device_id": device.device_id, "name": device.name, "business_id": device.business_id,
            "location_id": device.location_id, "id_min_length": policy.id_min_length,
            "id_max_length": policy.id_max_length}


@device_api.get("/v1/device/roster")
def roster():
    device = require("device")
    cursor = parse_cursor(request.args.get("cursor"))
    limit = request.args.get("limit", 1000, type=int)
    ctx = context()
    ctx.prune_if_due(device.business_id)
    snapshot = ctx.store.roster_snapshot(device.business_id)
    try:
        if cursor.seq > snapshot.seq or (not cursor.full and cursor.seq < snapshot.horizon):
            raise Gone("cursor_expired", "the roster changed too much since this cursor: start a full sync")
        etag = _roster_etag(ctx.store.instance_id, device.business_id, snapshot, cursor, limit)
        if request.if_none_match.contains(etag):
            snapshot.close()
            response = Response(status=304)
            response.set_etag(etag)
            return response
    except BaseException:
        snapshot.close()
        raise
    response = Response(_stream_page(snapshot, cursor, limit), mimetype="application/json")
    response.set_etag(etag)
    return response


def _roster_etag(instance: str, business_id: int, snapshot: RosterSnapshot, cursor: RosterCursor, limit: int) -> str:
    # The page is a function of these values alone, so equal tags mean equal bytes.
    state = f"{instance}:{business_id}:{snapshot.seq}:{snapshot.horizon}:{cursor}:{limit}"
    return hashlib.sha256(state.encode()).hexdigest()[:32]


def _stream_page(snapshot: RosterSnapshot, cursor: RosterCursor, limit: int) -> Iterator[str]:
    """The page as JSON text, produced while the rows are read: one write per batch of entries (about 100 KB),
    so memory stays flat whatever the limit and waitress gets few, large chunks.
    """
    try:
        head = '{"reset": %s, "items": [' % ("true" if cursor.full else "false")
        count, last, more = 0, cursor.seq, False
        for batch in snapshot.entry_batches(cursor.seq, limit + 1):
            if count + len(batch) > limit:  # the one entry past the limit only says that there is more
                batch, more = batch[:limit - count], True
            if batch:
                yield head + ("," if count else "") + ",".join([text for _, text in batch])
                head, count, last = "", count + len(batch), batch[-1][0]
        # On the last page the device has seen everything up to the snapshot's sequence number: from then on
        # it reads deltas. Mid-way, a full sync's cursor stays a full-sync cursor.
        next_cursor = RosterCursor(last, cursor.full) if more else RosterCursor(snapshot.seq, False)
        yield head + '], "next_cursor": "%s", "more": %s}' % (next_cursor, "true" if more else "false")
    finally:
        snapshot.close()


@device_api.post("/v1/device/checkins")
def checkins():
    device = require("device")
    ctx = context()
    with ctx.store.transaction() as tx:
        results = service.record_checkins(tx, device, body()["events"], ctx.now())
    return {"results": results}


@device_api.get("/v1/device/link-target")
def link_target():
    device = require("device")
    with context().store.read() as tx:
        return link_target_json(tx.link_target(device.device_id))


@device_api.post("/v1/device/link")
def link():
    device = require("device")
    data = body()
    ctx = context()
    with ctx.store.transaction() as tx:
        change = service.link_tag(tx, device, data["tag"], data.get("client_id"), data.get("replace", False),
                                  ctx.now())
    return id_change_json(change)
