-- Issue 11: the people who sign in at a location's kiosk, provisioned from the cloud
-- (`locker-cloud staff|courier add|revoke|list`, cloud/store/people.py). A PIN or courier code is
-- kept only as its scrypt hash under the location's salt (shared/people.py), and reaches the
-- kiosk in the change log (kinds `staff`, `courier`) and in snapshot part 1.

-- One salt per location, drawn when its first person is added.
ALTER TABLE locations ADD COLUMN people_salt text CHECK (people_salt ~ '^[0-9a-f]{32}$');

CREATE TABLE staff_members (
    location_id  text NOT NULL REFERENCES locations,
    staff_id     text NOT NULL CHECK (staff_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    pin_hash     text NOT NULL CHECK (pin_hash ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    PRIMARY KEY (location_id, staff_id)
);
-- Two live staff members with one PIN would be indistinguishable at the kiosk.
CREATE UNIQUE INDEX staff_members_live_pin ON staff_members (location_id, pin_hash)
    WHERE revoked_at IS NULL;

CREATE TABLE couriers (
    location_id  text NOT NULL REFERENCES locations,
    courier_id   text NOT NULL CHECK (courier_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    carrier_id   text NOT NULL REFERENCES carriers,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    code_hash    text NOT NULL CHECK (code_hash ~ '^[0-9a-f]{64}$'),
    permissions  text[] NOT NULL
        CHECK (permissions <@ ARRAY['drop_off', 'collect_expired', 'collect_returns']),
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    PRIMARY KEY (location_id, courier_id)
);
CREATE UNIQUE INDEX couriers_live_code ON couriers (location_id, code_hash)
    WHERE revoked_at IS NULL;
