-- Issue 9: kiosk store incarnations, and the security alerts of conflicting events.
--
-- A kiosk's store (its SQLite file) has an incarnation id, made with it. A kiosk whose store was
-- replaced sends its events under a new incarnation, numbered again from 1; the cloud maps them
-- after the previous incarnation's, as cursor sequence = sequence_offset + the kiosk's sequence,
-- so kiosk_events and kiosk_cursors keep counting one sequence per kiosk.
CREATE TABLE kiosk_incarnations (
    kiosk_id         text NOT NULL REFERENCES kiosks,
    incarnation      uuid NOT NULL,
    sequence_offset  bigint NOT NULL CHECK (sequence_offset >= 0),
    first_seen_at    timestamptz NOT NULL,
    PRIMARY KEY (kiosk_id, incarnation)
);

-- The incarnation whose events are applied now (NULL: none seen yet, or a kiosk from before).
ALTER TABLE kiosk_cursors ADD COLUMN incarnation uuid;

-- Kiosk signing keys: revocation, and rotation with a grace period. A revoked kiosk's messages
-- are refused whatever key signed them; a rotated-out key is still accepted until accepted_until
-- (the new key is kiosks.public_key from the rotation on).
ALTER TABLE kiosks ADD COLUMN revoked_at timestamptz;
CREATE TABLE kiosk_retired_keys (
    kiosk_id        text NOT NULL REFERENCES kiosks,
    public_key      text NOT NULL,
    retired_at      timestamptz NOT NULL,
    accepted_until  timestamptz NOT NULL,
    PRIMARY KEY (kiosk_id, public_key)
);
