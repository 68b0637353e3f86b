-- The cloud side of the MQTT sync (docs/protocol.md): the per-location change log, registered
-- kiosks and their presence, the per-kiosk event cursor and the events received, fleet alerts,
-- and remote door commands waiting to be published.

-- The revision of the last change appended to the location's log (0: none yet). Bumped by
-- cloud.changelog in the transaction of the change, which row-locks the location until commit,
-- so revisions are consecutive and in commit order.
ALTER TABLE locations ADD COLUMN revision bigint NOT NULL DEFAULT 0 CHECK (revision >= 0);

-- What a location's kiosk must know, one row per revision. `change` is the change without its
-- revision (an allocation's state, or a door's maintenance), as shared.protocol models it.
-- Compaction deletes old rows; a request for revisions no longer here gets a snapshot.
CREATE TABLE location_changes (
    location_id  text NOT NULL REFERENCES locations,
    revision     bigint NOT NULL CHECK (revision > 0),
    change       jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (location_id, revision)
);
CREATE INDEX location_changes_created ON location_changes (created_at);

-- Every committed change wakes the sync workers (LISTEN locker_location_changes). Identical
-- notifications of one transaction are folded into one by PostgreSQL: one per location.
CREATE FUNCTION notify_location_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('locker_location_changes', NEW.location_id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER location_changes_notify AFTER INSERT ON location_changes
    FOR EACH ROW EXECUTE FUNCTION notify_location_change();

-- How far each location's log has been published on its changes topic.
CREATE TABLE location_publications (
    location_id         text PRIMARY KEY REFERENCES locations,
    published_revision  bigint NOT NULL DEFAULT 0,
    published_at        timestamptz
);

CREATE TABLE kiosks (
    kiosk_id      text PRIMARY KEY CHECK (kiosk_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    location_id   text NOT NULL REFERENCES locations,
    -- Raw Ed25519 public key, base64 (shared.signing.Verifier.from_base64).
    public_key    text NOT NULL,
    -- Key of the HMAC under which code hashes are sent to this location (one per location:
    -- a second kiosk at a location is provisioned with the same secret).
    code_secret   bytea NOT NULL CHECK (length(code_secret) >= 16),
    -- The location's revision when the kiosk was registered: changes at or below it were
    -- logged without (or with another) code hash, so older requests get a snapshot.
    registered_revision bigint NOT NULL,
    registered_at timestamptz NOT NULL,
    -- Presence (birth, death, heartbeat).
    status        text NOT NULL DEFAULT 'never_seen'
                      CHECK (status IN ('never_seen', 'online', 'offline')),
    epoch         bigint,
    firmware      text,
    last_revision bigint,
    birth_at      timestamptz,
    death_at      timestamptz,
    heartbeat_at  timestamptz,
    heartbeat     jsonb
);
CREATE INDEX kiosks_location ON kiosks (location_id);

-- Every event of a kiosk up to and including through_sequence is applied (docs/protocol.md).
CREATE TABLE kiosk_cursors (
    kiosk_id          text PRIMARY KEY REFERENCES kiosks,
    through_sequence  bigint NOT NULL DEFAULT 0 CHECK (through_sequence >= 0),
    updated_at        timestamptz
);

-- Each kiosk event received and what applying it did: the dedupe record and the audit trail.
CREATE TABLE kiosk_events (
    kiosk_id     text NOT NULL REFERENCES kiosks,
    sequence     bigint NOT NULL CHECK (sequence > 0),
    event_id     uuid NOT NULL,
    type         text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('applied', 'unchanged', 'recorded', 'ignored')),
    detail       text,
    PRIMARY KEY (kiosk_id, sequence),
    -- Per kiosk: one kiosk cannot take another's event ids.
    UNIQUE (kiosk_id, event_id)
);

-- Things an operator should look at: tampering, doors left open, abandoned operations, ...
CREATE TABLE fleet_alerts (
    alert_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    location_id  text NOT NULL REFERENCES locations,
    kiosk_id     text REFERENCES kiosks,
    kind         text NOT NULL,
    door_number  integer,
    detail       jsonb NOT NULL DEFAULT '{}',
    raised_at    timestamptz NOT NULL,
    resolved_at  timestamptz
);
CREATE INDEX fleet_alerts_open ON fleet_alerts (location_id, raised_at) WHERE resolved_at IS NULL;

-- Remote door openings asked for through the admin API, published by a sync worker.
CREATE TABLE remote_commands (
    command_id    uuid PRIMARY KEY,
    location_id   text NOT NULL REFERENCES locations,
    door_number   integer NOT NULL CHECK (door_number > 0),
    reason        text NOT NULL,
    requested_by  text NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'published', 'expired')),
    published_at  timestamptz
);
CREATE INDEX remote_commands_pending ON remote_commands (created_at) WHERE status = 'pending';

CREATE FUNCTION notify_remote_command() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('locker_remote_commands', NEW.location_id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER remote_commands_notify AFTER INSERT ON remote_commands
    FOR EACH ROW EXECUTE FUNCTION notify_remote_command();

-- The carrier is told when the cloud cancels a reservation on its own (no door left for it).
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN
    ('pickup_code', 'reminder', 'expires_today', 'expired', 'return_code', 'cancelled'));
