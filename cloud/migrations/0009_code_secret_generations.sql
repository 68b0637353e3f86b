-- Issue 9: rotation of each kiosk's code secret (cloud/store/code_secrets.py, docs/security.md).
-- Generation 1 is kiosks.code_secret, as provisioned. Each later generation starts as a request
-- (the cloud's X25519 half, sent to the kiosk in the change log) and becomes usable once the
-- kiosk answers with its half (a code_secret_rotated event): the secret is then computed here
-- and the cloud's private half wiped. A code is hashed under the newest generation activated
-- when the code was created, for its whole life; a generation no live code needs any more is
-- retired and its secret wiped.

CREATE TABLE code_secret_generations (
    kiosk_id       text NOT NULL REFERENCES kiosks,
    generation     integer NOT NULL CHECK (generation >= 2),
    cloud_private  bytea CHECK (cloud_private IS NULL OR length(cloud_private) = 32),
    cloud_public   bytea NOT NULL CHECK (length(cloud_public) = 32),
    requested_at   timestamptz NOT NULL,
    requested_by   text NOT NULL,
    secret         bytea CHECK (secret IS NULL OR length(secret) >= 16),
    fingerprint    text,
    activated_at   timestamptz,
    retired_at     timestamptz,
    PRIMARY KEY (kiosk_id, generation),
    CHECK (activated_at IS NULL OR fingerprint IS NOT NULL)
);

-- At most one request waiting for its kiosk's answer.
CREATE UNIQUE INDEX code_secret_generations_pending ON code_secret_generations (kiosk_id)
    WHERE activated_at IS NULL;
