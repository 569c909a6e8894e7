-- tagd server schema v1. Times are UTC RFC 3339 text in one fixed format (sortable as text).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE businesses (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL,
    auto_generate_ids  INTEGER NOT NULL DEFAULT 0,
    id_min_length      INTEGER NOT NULL DEFAULT 4,
    id_max_length      INTEGER NOT NULL DEFAULT 32,
    generated_length   INTEGER NOT NULL DEFAULT 8,
    generated_alphabet TEXT NOT NULL DEFAULT '23456789ABCDEFGHJKMNPQRSTUVWXYZ',
    roster_seq         INTEGER NOT NULL DEFAULT 0,  -- last change sequence number handed out
    roster_horizon     INTEGER NOT NULL DEFAULT 0,  -- highest sequence of a pruned tombstone
    created_at         TEXT NOT NULL
);

CREATE TABLE locations (
    id          INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL REFERENCES businesses (id),
    name        TEXT NOT NULL,
    UNIQUE (business_id, name)
);

CREATE TABLE devices (
    id          INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL REFERENCES businesses (id),
    location_id INTEGER NOT NULL REFERENCES locations (id),
    name        TEXT NOT NULL,
    hardware_id TEXT NOT NULL,
    enrolled_at TEXT NOT NULL
);

CREATE TABLE tokens (
    hash        TEXT PRIMARY KEY,  -- sha256 of the token; the token itself is never stored
    business_id INTEGER NOT NULL REFERENCES businesses (id),
    role        TEXT NOT NULL CHECK (role IN ('admin', 'staff', 'device')),
    name        TEXT NOT NULL,
    device_id   INTEGER REFERENCES devices (id),
    created_at  TEXT NOT NULL,
    CHECK ((role = 'device') = (device_id IS NOT NULL))
);

CREATE TABLE enrolment_codes (
    hash        TEXT PRIMARY KEY,
    business_id INTEGER NOT NULL REFERENCES businesses (id),
    location_id INTEGER NOT NULL REFERENCES locations (id),
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    device_id   INTEGER REFERENCES devices (id)
);

CREATE TABLE clients (
    id          INTEGER PRIMARY KEY,  -- the client's `ref`
    business_id INTEGER NOT NULL REFERENCES businesses (id),
    name        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    client_id   TEXT,                 -- the ID on the tag, as set
    client_key  TEXT,                 -- lower(client_id): the uniqueness key
    seq         INTEGER NOT NULL,     -- change sequence of the last roster-visible change
    created_at  TEXT NOT NULL,
    CHECK ((client_id IS NULL) = (client_key IS NULL))
);
-- Case-insensitive uniqueness of IDs across the whole business, enforced by the database itself.
CREATE UNIQUE INDEX clients_by_key ON clients (business_id, client_key);
-- Keyset pagination of the roster change feed (live rows).
CREATE INDEX clients_roster ON clients (business_id, seq) WHERE client_key IS NOT NULL;

-- IDs that stopped belonging to anyone, kept for the retention period so delta syncs can delete them.
CREATE TABLE roster_tombstones (
    business_id INTEGER NOT NULL REFERENCES businesses (id),
    client_key  TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    deleted_at  TEXT NOT NULL,
    PRIMARY KEY (business_id, client_key)
);
CREATE INDEX tombstones_roster ON roster_tombstones (business_id, seq);

CREATE TABLE link_targets (
    device_id   INTEGER PRIMARY KEY REFERENCES devices (id),
    client_ref  INTEGER NOT NULL REFERENCES clients (id),
    selected_at TEXT NOT NULL
);

CREATE TABLE checkins (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,  -- the device's idempotency key
    fingerprint TEXT NOT NULL,         -- hash of the event's content, to tell a resend from a conflict
    business_id INTEGER NOT NULL REFERENCES businesses (id),
    device_id   INTEGER NOT NULL REFERENCES devices (id),
    location_id INTEGER NOT NULL REFERENCES locations (id),
    client_ref  INTEGER REFERENCES clients (id),
    client_id   TEXT NOT NULL,
    scanned_at  TEXT NOT NULL,
    received_at TEXT NOT NULL,
    decision    TEXT NOT NULL CHECK (decision IN ('accepted', 'rejected')),
    offline     INTEGER NOT NULL,
    result      TEXT NOT NULL CHECK (result IN ('accepted', 'unknown_client', 'inactive'))
);
CREATE INDEX checkins_by_time ON checkins (business_id, scanned_at);
