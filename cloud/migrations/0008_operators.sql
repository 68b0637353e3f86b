-- The operations console (cloud/ops, docs/operations.md): operator accounts, their sessions,
-- and the audit of what each operator did from it.

CREATE TABLE operators (
    username       text PRIMARY KEY CHECK (username ~ '^[a-z0-9._-]{2,64}$'),
    -- argon2id, as argon2-cffi encodes it (parameters and salt inside).
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('viewer', 'support', 'admin')),
    active         boolean NOT NULL DEFAULT true,
    -- Wrong passwords in a row, and until when logins are refused after too many.
    failed_logins  integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until   timestamptz,
    created_at     timestamptz NOT NULL,
    last_login_at  timestamptz
);

-- One row per logged-in browser. The cookie carries a random token; only its SHA-256 is kept,
-- so a read of this table gives no one a session. The CSRF token is sent in every form.
CREATE TABLE operator_sessions (
    token_hash   bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    username     text NOT NULL REFERENCES operators ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX operator_sessions_expiry ON operator_sessions (expires_at);

-- Every action taken from the console, with who took it.
CREATE TABLE operator_actions (
    action_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username     text NOT NULL REFERENCES operators,
    action       text NOT NULL,
    location_id  text REFERENCES locations,
    door_number  integer,
    detail       jsonb NOT NULL DEFAULT '{}',
    at           timestamptz NOT NULL
);
CREATE INDEX operator_actions_location ON operator_actions (location_id, at DESC);

-- Clearing an alert from the console records who and why.
ALTER TABLE fleet_alerts ADD COLUMN resolved_by text;
ALTER TABLE fleet_alerts ADD COLUMN resolution text;
