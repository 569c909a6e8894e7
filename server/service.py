"""The server's operations over the storage port: IDs, clients, enrolment, tokens, links and check-ins.

Each function runs inside one transaction (`tx`) the caller opened, so its checks and writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

from server.errors import Conflict, Gone, InvalidRequest, NotFound, RuleViolation, Unauthorized
from server.rules import (GENERATION_ATTEMPTS, ID_CHARS, MAX_ID_LENGTH, alphabet_problem, canonical_time,
                          format_time, hash_secret, new_enrolment_code, new_token, normalise_enrolment_code,
                          normalise_id, parse_time, random_id, validate_id)
from server.storage import Checkin, Client, Device, Principal, Tx


@dataclass(frozen=True)
class IdChange:
    client: Client
    changed: bool
    previous_client_id: str | None


def issue_token(tx: Tx, business_id: int, role: str, name: str, now: str, device_id: int | None = None) -> str:
    token = new_token()
    tx.add_token(hash_secret(token), business_id, role, name, device_id, now)
    return token


def authenticate(tx: Tx, authorization: str | None) -> Principal:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("unauthorized", "send Authorization: Bearer <token>")
    principal = tx.principal(hash_secret(token.strip()))
    if principal is None:
        raise Unauthorized("unauthorized", "unknown or revoked token")
    return principal


def init_business(tx: Tx, name: str, locations: list[str], now: str) -> tuple[int, str]:
    """Create a business with its locations; return its id and its first admin token."""
    business_id = tx.create_business(name, now)
    for location in locations:
        tx.add_location(business_id, location)
    return business_id, issue_token(tx, business_id, "admin", "initial admin", now)


def issue_enrolment_code(tx: Tx, business_id: int, location_id: int, ttl: timedelta, now: str) -> tuple[str, str]:
    """A one-time code for enrolling a device at the location; returns (code, expires_at)."""
    if tx.location(business_id, location_id) is None:
        raise NotFound("location_not_found", f"no location {location_id} in this business")
    code = new_enrolment_code()
    expires_at = format_time(parse_time(now) + ttl)
    tx.add_enrolment_code(hash_secret(normalise_enrolment_code(code)), business_id, location_id, expires_at)
    return code, expires_at


def enrol(tx: Tx, code: str, hardware_id: str, name: str, now: str) -> dict:
    code_hash = hash_secret(normalise_enrolment_code(code))
    entry = tx.enrolment_code(code_hash)
    if entry is None:
        raise NotFound("enrolment_code_unknown", "no such enrolment code")
    if entry.used_at is not None:
        raise Conflict("enrolment_code_used", "this enrolment code was already used; ask for a new one")
    if entry.expires_at <= now:
        raise Gone("enrolment_code_expired", f"this enrolment code expired at {entry.expires_at}")
    device = tx.add_device(entry.business_id, entry.location_id, name, hardware_id, now)
    tx.use_enrolment_code(code_hash, device.id, now)
    token = issue_token(tx, entry.business_id, "device", name, now, device_id=device.id)
    business, location = tx.business(entry.business_id), tx.location(entry.business_id, entry.location_id)
    return {"device_id": device.id, "token": token, "business_id": business.id, "business_name": business.name,
            "location_id": location.id, "location_name": location.name}


def existing_client(tx: Tx, business_id: int, ref: int) -> Client:
    client = tx.client(business_id, ref)
    if client is None:
        raise NotFound("client_not_found", f"no client {ref} in this business")
    return client


def create_client(tx: Tx, business_id: int, name: str, status: str, client_id: str | None, now: str) -> Client:
    policy = tx.business(business_id).policy
    if client_id is not None:
        _check_free(tx, business_id, validate_id(client_id, policy), None)
        return tx.add_client(business_id, name, status, client_id, now)
    client = tx.add_client(business_id, name, status, None, now)
    if policy.auto_generate_ids:
        client = generate_id(tx, business_id, client.ref, False, None, None, now).client
    return client


def _check_free(tx: Tx, business_id: int, client_id: str, ref: int | None) -> None:
    holder = tx.client_by_key(business_id, normalise_id(client_id))
    if holder is not None and holder.ref != ref:
        raise Conflict("id_taken", f"client ID {client_id!r} already belongs to another client")


def assign_id(tx: Tx, business_id: int, ref: int, client_id: str, replace: bool, now: str) -> IdChange:
    """Make `client_id` the client's ID. A different existing ID is only replaced with `replace`."""
    client = existing_client(tx, business_id, ref)
    validate_id(client_id, tx.business(business_id).policy)
    if client.client_id == client_id:
        return IdChange(client, False, client_id)
    _check_free(tx, business_id, client_id, ref)
    same_id = client.client_id is not None and normalise_id(client.client_id) == normalise_id(client_id)
    if client.client_id is not None and not same_id and not replace:
        raise Conflict("id_exists", f"client {ref} already has ID {client.client_id!r}; send replace: true")
    return IdChange(tx.set_client_id(business_id, ref, client_id, now), True, client.client_id)


def clear_id(tx: Tx, business_id: int, ref: int, now: str) -> IdChange:
    client = existing_client(tx, business_id, ref)
    if client.client_id is None:
        return IdChange(client, False, None)
    return IdChange(tx.set_client_id(business_id, ref, None, now), True, client.client_id)


def generate_id(tx: Tx, business_id: int, ref: int, replace: bool, length: int | None, alphabet: str | None,
                now: str) -> IdChange:
    """Give the client a random unused ID (policy length/alphabet unless given)."""
    client = existing_client(tx, business_id, ref)
    if client.client_id is not None and not replace:
        raise Conflict("id_exists", f"client {ref} already has ID {client.client_id!r}; send replace: true")
    new_id = _free_random_id(tx, business_id, length, alphabet)
    return IdChange(tx.set_client_id(business_id, ref, new_id, now), True, client.client_id)


def _free_random_id(tx: Tx, business_id: int, length: int | None, alphabet: str | None) -> str:
    policy = tx.business(business_id).policy
    alphabet = alphabet or policy.generated_alphabet
    problem = alphabet_problem(alphabet)
    if problem:
        raise RuleViolation("invalid_alphabet", problem)
    length = length or policy.generated_length
    validate_id(alphabet[0] * length, policy)  # the length must fit the ID rules
    for _ in range(GENERATION_ATTEMPTS):
        candidate = random_id(length, alphabet)
        if tx.client_by_key(business_id, normalise_id(candidate)) is None:
            return candidate
    raise Conflict("id_space_exhausted", f"no free ID of length {length} found; use a longer length")


def bulk_generate(tx: Tx, business_id: int, refs: list[int] | None, now: str) -> tuple[int, int]:
    """Random IDs for the selected clients (None: all) that have none; returns (generated, skipped)."""
    if refs is not None:
        missing = set(refs) - {c.ref for c in (tx.client(business_id, r) for r in set(refs)) if c}
        if missing:
            raise NotFound("client_not_found", f"no clients {sorted(missing)} in this business")
        selected = len(set(refs))
    else:
        selected = tx.count_clients(business_id, True) + tx.count_clients(business_id, False)
    todo = tx.refs_without_id(business_id, refs)
    for ref in todo:
        tx.set_client_id(business_id, ref, _free_random_id(tx, business_id, None, None), now)
    return len(todo), selected - len(todo)


def link_tag(tx: Tx, device: Principal, tag: str, client_id: str | None, replace: bool, now: str) -> IdChange:
    """A device links a scanned tag to a client given by its current ID, or to the device's link target."""
    business_id = device.business_id
    target = None
    if client_id is not None:
        client = tx.client_by_key(business_id, normalise_id(client_id))
        if client is None:
            raise NotFound("client_not_found", f"no client has ID {client_id!r}")
    else:
        target = tx.link_target(device.device_id)
        if target is None:
            raise NotFound("no_link_target", "no client is selected for this device; select one in the back office")
        client = target.client
    change = assign_id(tx, business_id, client.ref, tag, replace, now)
    if target is not None:
        tx.clear_link_target(device.device_id)
    return change


def existing_device(tx: Tx, business_id: int, device_id: int) -> Device:
    device = tx.device(business_id, device_id)
    if device is None:
        raise NotFound("device_not_found", f"no device {device_id} in this business")
    return device


def set_link_target(tx: Tx, business_id: int, device_id: int, client_ref: int, now: str) -> None:
    existing_device(tx, business_id, device_id)
    existing_client(tx, business_id, client_ref)
    tx.set_link_target(device_id, client_ref, now)


_MESSAGES = {
    "accepted": "recorded",
    "unknown_client": "recorded; no client has this ID",
    "inactive": "recorded; the client is inactive",
}


def record_checkins(tx: Tx, device: Principal, events: list[dict], now: str) -> list[dict]:
    """Record each event once; see openapi.yaml postCheckins for the meaning of each result."""
    return [_record_one(tx, device, event, now) for event in events]


def _record_one(tx: Tx, device: Principal, event: dict, now: str) -> dict:
    event_id = _canonical_uuid(event["event_id"])
    scanned_at = canonical_time(event["scanned_at"])
    fingerprint = _fingerprint(device.device_id, event["client_id"], scanned_at, event["decision"], event["offline"])
    stored = tx.checkin_by_event(event_id)
    if stored is not None:
        if stored.fingerprint == fingerprint:
            return _result(event["event_id"], "duplicate", f"already recorded ({stored.result})")
        return _result(event["event_id"], "conflict", "event_id already used by a different event; not recorded")
    client = _lookup(tx, device.business_id, event["client_id"])
    result = "unknown_client" if client is None else "accepted" if client.status == "active" else "inactive"
    tx.add_checkin(device.business_id, Checkin(
        0, event_id, fingerprint, device.device_id, device.location_id, client.ref if client else None,
        event["client_id"], scanned_at, now, event["decision"], event["offline"], result))
    return _result(event["event_id"], result, _MESSAGES[result])


def _canonical_uuid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise InvalidRequest("invalid_request", f"event_id {text!r} is not a UUID") from None


def _lookup(tx: Tx, business_id: int, text: str) -> Client | None:
    # Any well-formed ID is looked up, even one outside today's length rules (rules may have changed since).
    if not (text.isascii() and ID_CHARS.fullmatch(text) and len(text) <= MAX_ID_LENGTH):
        return None
    return tx.client_by_key(business_id, normalise_id(text))


def _fingerprint(device_id: int, client_id: str, scanned_at: str, decision: str, offline: bool) -> str:
    content = json.dumps([device_id, client_id, scanned_at, decision, offline])
    return hashlib.sha256(content.encode()).hexdigest()


def _result(event_id: str, result: str, message: str) -> dict:
    return {"event_id": event_id, "result": result, "message": message}
