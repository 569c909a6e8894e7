"""Records to the JSON shapes of openapi.yaml."""

from __future__ import annotations

from server.service import IdChange
from server.storage import Checkin, Client, Device, LinkTarget, Location


def client_json(c: Client) -> dict:
    return {"ref": c.ref, "name": c.name, "status": c.status, "client_id": c.client_id, "created_at": c.created_at}


def id_change_json(change: IdChange) -> dict:
    return {"client": client_json(change.client), "changed": change.changed,
            "previous_client_id": change.previous_client_id}


def link_target_json(target: LinkTarget | None) -> dict:
    if target is None:
        return {"target": None}
    return {"target": {"device_id": target.device_id, "client": client_json(target.client),
                       "selected_at": target.selected_at}}


def location_json(location: Location) -> dict:
    return {"id": location.id, "name": location.name}


def device_json(d: Device) -> dict:
    return {"id": d.id, "name": d.name, "hardware_id": d.hardware_id, "location_id": d.location_id,
            "enrolled_at": d.enrolled_at}


def checkin_json(c: Checkin) -> dict:
    return {"ref": c.ref, "event_id": c.event_id, "device_id": c.device_id, "location_id": c.location_id,
            "client_ref": c.client_ref, "client_id": c.client_id, "scanned_at": c.scanned_at,
            "received_at": c.received_at, "decision": c.decision, "offline": c.offline, "result": c.result}
