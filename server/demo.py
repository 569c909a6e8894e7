"""A demo business for `tagd demo` and manual trials: two locations, 36 named clients, one inactive."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from server import service
from server.rules import format_time
from server.sqlite_store import SqliteStore

FIRST_NAMES = ("Anna", "Ben", "Chloe", "David", "Emma", "Felix", "Grace", "Hugo", "Isla", "Jonas", "Kira", "Leo")
LAST_NAMES = ("Meyer", "Novak", "Olsen")
INACTIVE_ID = "M1007"


def seed_demo(db_path: str, business: str = "Demo Fitness", enrolment_ttl: timedelta = timedelta(days=7)) -> dict:
    """Create the demo business in the database (created if needed) and return what was made.

    Returns {"business_id", "admin_token", "staff_token", "locations": [{"id", "name"}],
    "clients": [{"ref", "name", "client_id", "status"}], "inactive_client_id", "enrolment_code": {"code",
    "location_id", "expires_at"}}. Client IDs are M1001..M1036; M1007 is inactive. Each call makes a new business.
    """
    store = SqliteStore(db_path)
    now = format_time(datetime.now(timezone.utc))
    try:
        with store.transaction() as tx:
            business_id, admin_token = service.init_business(tx, business, ["Downtown", "Riverside"], now)
            staff_token = service.issue_token(tx, business_id, "staff", "demo front desk", now)
            locations = tx.locations(business_id)
            clients = [_add_client(tx, business_id, number, now) for number in range(36)]
            code, expires_at = service.issue_enrolment_code(tx, business_id, locations[0].id, enrolment_ttl, now)
    finally:
        store.close()
    return {
        "business_id": business_id, "admin_token": admin_token, "staff_token": staff_token,
        "locations": [{"id": loc.id, "name": loc.name} for loc in locations],
        "clients": clients, "inactive_client_id": INACTIVE_ID,
        "enrolment_code": {"code": code, "location_id": locations[0].id, "expires_at": expires_at},
    }


def _add_client(tx, business_id: int, number: int, now: str) -> dict:
    name = f"{FIRST_NAMES[number % 12]} {LAST_NAMES[number // 12]}"
    client_id = f"M{1001 + number}"
    status = "inactive" if client_id == INACTIVE_ID else "active"
    client = service.create_client(tx, business_id, name, status, client_id, now)
    return {"ref": client.ref, "name": client.name, "client_id": client.client_id, "status": client.status}
