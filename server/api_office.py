"""Back-office API: policy, locations, tokens, devices and link targets, clients and IDs, check-ins."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from flask import Blueprint, request

from server import service
from server.app import body, context, require
from server.rules import Policy, canonical_time, normalise_id, validate_policy
from server.serialize import (checkin_json, client_json, device_json, id_change_json, link_target_json,
                              location_json)
from server.storage import CheckinQuery, ClientQuery

office_api = Blueprint("office", __name__)
STAFF = ("staff", "admin")


@office_api.get("/v1/policy")
def get_policy():
    principal = require(*STAFF)
    with context().store.read() as tx:
        return asdict(tx.business(principal.business_id).policy)


@office_api.put("/v1/policy")
def put_policy():
    principal = require("admin")
    policy = validate_policy(Policy(**body()))
    with context().store.transaction() as tx:
        tx.set_policy(principal.business_id, policy)
    return asdict(policy)


@office_api.get("/v1/locations")
def list_locations():
    principal = require(*STAFF)
    with context().store.read() as tx:
        return {"items": [location_json(loc) for loc in tx.locations(principal.business_id)]}


@office_api.post("/v1/locations")
def create_location():
    principal = require("admin")
    with context().store.transaction() as tx:
        return location_json(tx.add_location(principal.business_id, body()["name"])), 201


@office_api.post("/v1/enrolment-codes")
def issue_enrolment_code():
    principal = require(*STAFF)
    data, ctx = body(), context()
    with ctx.store.transaction() as tx:
        code, expires_at = service.issue_enrolment_code(
            tx, principal.business_id, data["location_id"], timedelta(seconds=data.get("ttl_seconds", 3600)),
            ctx.now())
    return {"code": code, "location_id": data["location_id"], "expires_at": expires_at}, 201


@office_api.post("/v1/staff-tokens")
def issue_staff_token():
    principal = require("admin")
    data, ctx = body(), context()
    with ctx.store.transaction() as tx:
        token = service.issue_token(tx, principal.business_id, data["role"], data["name"], ctx.now())
    return {"token": token, "role": data["role"], "name": data["name"]}, 201


@office_api.get("/v1/devices")
def list_devices():
    principal = require(*STAFF)
    with context().store.read() as tx:
        return {"items": [device_json(d) for d in tx.devices(principal.business_id)]}


@office_api.route("/v1/devices/<int:device_id>/link-target", methods=["GET", "PUT", "DELETE"])
def device_link_target(device_id: int):
    principal = require(*STAFF)
    ctx = context()
    with ctx.store.transaction() as tx:
        service.existing_device(tx, principal.business_id, device_id)
        if request.method == "PUT":
            service.set_link_target(tx, principal.business_id, device_id, body()["client_ref"], ctx.now())
        elif request.method == "DELETE":
            tx.clear_link_target(device_id)
            return "", 204
        return link_target_json(tx.link_target(device_id))


@office_api.get("/v1/clients")
def list_clients():
    principal = require(*STAFF)
    args = request.args
    client_id = args.get("client_id")
    query = ClientQuery(normalise_id(client_id) if client_id else None, args.get("q"), args.get("status"),
                        args.get("after", 0, type=int), args.get("limit", 100, type=int))
    with context().store.read() as tx:
        items = tx.clients(principal.business_id, query)
    next_after = items[-1].ref if len(items) == query.limit else None
    return {"items": [client_json(c) for c in items], "next_after": next_after}


@office_api.post("/v1/clients")
def create_client():
    principal = require(*STAFF)
    data, ctx = body(), context()
    with ctx.store.transaction() as tx:
        client = service.create_client(tx, principal.business_id, data["name"], data.get("status", "active"),
                                       data.get("client_id"), ctx.now())
    return client_json(client), 201


@office_api.post("/v1/clients/generate-ids")
def bulk_generate_ids():
    principal = require(*STAFF)
    data, ctx = body(), context()
    with ctx.store.transaction() as tx:
        generated, skipped = service.bulk_generate(tx, principal.business_id, data.get("client_refs"), ctx.now())
    return {"generated": generated, "skipped": skipped}


@office_api.get("/v1/clients/<int:client_ref>")
def get_client(client_ref: int):
    principal = require(*STAFF)
    with context().store.read() as tx:
        return client_json(service.existing_client(tx, principal.business_id, client_ref))


@office_api.patch("/v1/clients/<int:client_ref>")
def update_client(client_ref: int):
    principal = require(*STAFF)
    data = body()
    with context().store.transaction() as tx:
        client = service.existing_client(tx, principal.business_id, client_ref)
        updated = tx.update_client(principal.business_id, client_ref, data.get("name", client.name),
                                   data.get("status", client.status))
    return client_json(updated)


@office_api.route("/v1/clients/<int:client_ref>/client-id", methods=["PUT", "DELETE"])
def client_id(client_ref: int):
    principal = require(*STAFF)
    ctx = context()
    with ctx.store.transaction() as tx:
        if request.method == "DELETE":
            change = service.clear_id(tx, principal.business_id, client_ref, ctx.now())
        else:
            data = body()
            change = service.assign_id(tx, principal.business_id, client_ref, data["client_id"],
                                       data.get("replace", False), ctx.now())
    return id_change_json(change)


@office_api.post("/v1/clients/<int:client_ref>/client-id/generate")
def generate_client_id(client_ref: int):
    principal = require(*STAFF)
    data, ctx = body(), context()
    with ctx.store.transaction() as tx:
        change = service.generate_id(tx, principal.business_id, client_ref, data.get("replace", False),
                                     data.get("length"), data.get("alphabet"), ctx.now())
    return id_change_json(change)


@office_api.get("/v1/checkins")
def list_checkins():
    principal = require(*STAFF)
    args = request.args
    since, until = args.get("since"), args.get("until")
    query = CheckinQuery(canonical_time(since) if since else None, canonical_time(until) if until else None,
                         args.get("location_id", type=int), args.get("after", 0, type=int),
                         args.get("limit", 100, type=int))
    with context().store.read() as tx:
        items = tx.checkins(principal.business_id, query)
    next_after = items[-1].ref if len(items) == query.limit else None
    return {"items": [checkin_json(c) for c in items], "next_after": next_after}
