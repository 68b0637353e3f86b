-- Initial schema of the allocation service.
-- Statuses mirror shared/states.py; the CHECK constraints keep foreign writers honest.

CREATE EXTENSION IF NOT EXISTS cube;

CREATE TABLE carriers (
    carrier_id    text PRIMARY KEY,
    name          text NOT NULL,
    -- SHA-256 of the API key; the key itself is shown once, at creation.
    api_key_hash  bytea NOT NULL UNIQUE,
    webhook_url   text,
    created_at    timestamptz NOT NULL
);

CREATE TABLE locations (
    location_id      text PRIMARY KEY,
    name             text NOT NULL,
    address          text NOT NULL,
    latitude         double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude        double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    -- Unit-sphere point of (latitude, longitude): the GiST index on it answers
    -- "nearest first" by chord length, which orders exactly like great-circle distance.
    geo              cube NOT NULL,
    timezone         text NOT NULL,
    -- {"mon": [["06:00","22:00"]], ...}; an absent day is closed. NULL means always open.
    operating_hours  jsonb,
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL
);
CREATE INDEX locations_geo_active ON locations USING gist (geo) WHERE active;

CREATE TABLE doors (
    door_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    location_id    text NOT NULL REFERENCES locations,
    door_number    integer NOT NULL CHECK (door_number > 0),
    size           text NOT NULL CHECK (size IN ('small', 'medium', 'large', 'xlarge')),
    -- 0..3 in size order, so "this size or larger, smallest first" is a range scan.
    size_rank      smallint NOT NULL CHECK (size_rank BETWEEN 0 AND 3),
    status         text NOT NULL DEFAULT 'available' CHECK (status IN
                       ('available', 'reserved', 'occupied', 'awaiting_collection', 'maintenance')),
    width_in       real NOT NULL CHECK (width_in > 0),
    height_in      real NOT NULL CHECK (height_in > 0),
    depth_in       real NOT NULL CHECK (depth_in > 0),
    maintenance_reason text,
    status_changed_at  timestamptz NOT NULL,
    UNIQUE (location_id, door_number)
);
-- The allocation search: free doors of a location, smallest size first.
CREATE INDEX doors_free ON doors (location_id, size_rank, door_number) WHERE status = 'available';

CREATE TABLE pickup_codes (
    pickup_code_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    location_id     text NOT NULL REFERENCES locations,
    carrier_id      text NOT NULL REFERENCES carriers,
    customer_id     text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('pickup', 'return')),
    code            text NOT NULL CHECK (code ~ '^[2-9A-HJKMNP-Z]{6}$'),
    created_at      timestamptz NOT NULL,
    -- Set when the code has opened its doors (pickup) or its door (return): a code works once.
    used_at         timestamptz,
    -- Set when no live allocation refers to the code any more (cancelled, expired, collected).
    retired_at      timestamptz
);
-- Unique among live codes at a location (a code only works at its own location).
CREATE UNIQUE INDEX pickup_codes_live_code ON pickup_codes (location_id, code)
    WHERE used_at IS NULL AND retired_at IS NULL;
-- One live pickup code per customer per location: later parcels join it.
CREATE UNIQUE INDEX pickup_codes_live_customer ON pickup_codes (location_id, carrier_id, customer_id)
    WHERE kind = 'pickup' AND used_at IS NULL AND retired_at IS NULL;

CREATE TABLE allocations (
    allocation_id      uuid PRIMARY KEY,
    carrier_id         text NOT NULL REFERENCES carriers,
    location_id        text NOT NULL REFERENCES locations,
    door_id            bigint NOT NULL REFERENCES doors,
    kind               text NOT NULL DEFAULT 'delivery' CHECK (kind IN ('delivery', 'return')),
    package_id         text NOT NULL,
    order_id           text NOT NULL,
    customer_id        text NOT NULL,
    size               text NOT NULL CHECK (size IN ('small', 'medium', 'large', 'xlarge')),
    status             text NOT NULL CHECK (status IN
                           ('reserved', 'deposited', 'picked_up', 'expired', 'collected', 'cancelled')),
    pickup_code_id     bigint NOT NULL REFERENCES pickup_codes,
    -- What the carrier asked for, to tell a true retry from a conflicting reuse of package_id.
    request_fingerprint text NOT NULL,
    reserved_at        timestamptz NOT NULL,
    reservation_expires_at timestamptz NOT NULL,
    deposited_at       timestamptz,
    driver_id          text,
    pickup_expires_at  timestamptz,
    picked_up_at       timestamptz,
    expired_at         timestamptz,
    collected_at       timestamptz,
    cancelled_at       timestamptz,
    cancel_reason      text,
    updated_at         timestamptz NOT NULL,
    -- Idempotency: a carrier's package is allocated at most once.
    UNIQUE (carrier_id, package_id)
);
-- Invariant 1: a door never holds two parcels. While an allocation is live it owns
-- its door; the database refuses a second live allocation on the same door.
CREATE UNIQUE INDEX allocations_one_live_per_door ON allocations (door_id)
    WHERE status IN ('reserved', 'deposited', 'expired');
CREATE INDEX allocations_code ON allocations (pickup_code_id);
CREATE INDEX allocations_reservation_due ON allocations (reservation_expires_at)
    WHERE status = 'reserved';
CREATE INDEX allocations_pickup_due ON allocations (pickup_expires_at)
    WHERE status = 'deposited';

CREATE TABLE returns (
    return_id      uuid PRIMARY KEY,
    -- The door is held by an allocation of kind 'return'; this row keeps the request.
    allocation_id  uuid NOT NULL UNIQUE REFERENCES allocations,
    carrier_id     text NOT NULL REFERENCES carriers,
    order_id       text NOT NULL,
    customer_id    text NOT NULL,
    reason         text,
    created_at     timestamptz NOT NULL,
    UNIQUE (carrier_id, order_id)
);

-- Transactional outbox of customer notifications: written in the same transaction
-- as the state change that causes it, sent later by the notification dispatcher.
CREATE TABLE notifications (
    notification_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Stable across retries and crashes: receivers dedupe on it.
    idempotency_key  uuid NOT NULL UNIQUE,
    allocation_id    uuid NOT NULL REFERENCES allocations,
    carrier_id       text NOT NULL REFERENCES carriers,
    customer_id      text NOT NULL,
    kind             text NOT NULL CHECK (kind IN
                         ('pickup_code', 'reminder', 'expires_today', 'expired', 'return_code')),
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN
                         ('pending', 'sent', 'cancelled', 'failed')),
    due_at           timestamptz NOT NULL,
    next_attempt_at  timestamptz NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    created_at       timestamptz NOT NULL,
    sent_at          timestamptz,
    UNIQUE (allocation_id, kind)
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
