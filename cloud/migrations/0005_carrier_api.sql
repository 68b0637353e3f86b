-- issue 10 (carrier API). Failed pickup attempts counted per carrier and per location, in fixed windows, so
-- that guessing codes through POST /api/v1/pickup is throttled (cloud.parcels.guessing).
-- One row per (scope, key): the window restarts in place, so the table stays as small as the
-- number of carriers and locations that were tried.
CREATE TABLE pickup_guesses (
    scope         text NOT NULL CHECK (scope IN ('carrier', 'location')),
    key           text NOT NULL,
    window_start  timestamptz NOT NULL,
    attempts      integer NOT NULL CHECK (attempts >= 0),
    PRIMARY KEY (scope, key)
);

-- issue 10: door labels ("A1", "B5"), what carriers and customers call a door (`locker_number`
-- in the API). Set at creation (default: column letter and row, else the door number); unique
-- per location, carried to the kiosk in the change log (kind door_label).
ALTER TABLE doors ADD COLUMN label text;
UPDATE doors SET label = door_number::text;
ALTER TABLE doors ALTER COLUMN label SET NOT NULL;
ALTER TABLE doors ADD CONSTRAINT doors_label_format CHECK (label ~ '^[A-Za-z0-9-]{1,8}$');
ALTER TABLE doors ADD CONSTRAINT doors_label_unique UNIQUE (location_id, label);

-- issue 10: a deposited parcel's pickup code can be re-issued and its pickup deadline extended,
-- each a limited number of times (cloud.parcels.pickup_changes).
ALTER TABLE allocations ADD COLUMN code_reissues integer NOT NULL DEFAULT 0
    CHECK (code_reissues >= 0);
ALTER TABLE allocations ADD COLUMN pickup_extensions integer NOT NULL DEFAULT 0
    CHECK (pickup_extensions >= 0);
-- Those are told to the customer each time: `round` tells the n-th notice of one kind apart
-- (0 for the kinds sent once).
ALTER TABLE notifications ADD COLUMN round integer NOT NULL DEFAULT 0 CHECK (round >= 0);
ALTER TABLE notifications DROP CONSTRAINT notifications_allocation_id_kind_key;
ALTER TABLE notifications ADD CONSTRAINT notifications_once_per_round
    UNIQUE (allocation_id, kind, round);
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN
    ('pickup_code', 'reminder', 'expires_today', 'expired', 'return_code', 'cancelled',
     'code_reissued', 'deadline_extended', 'state_changed'));

-- issue 10: doors within reach (an operator's flag, e.g. the lowest rows), for allocations that
-- ask for one.
ALTER TABLE doors ADD COLUMN accessible boolean NOT NULL DEFAULT false;

-- issue 10: each carrier's webhook signing secret (HMAC-SHA256, shown once at creation; NULL
-- for carriers created before: their webhooks go unsigned until a secret is set).
ALTER TABLE carriers ADD COLUMN webhook_secret text;

-- issue 10: carriers that asked for a webhook on each state change of their parcels (kind
-- state_changed, one per allocation and state: `round` is the state's place in the machine).
ALTER TABLE carriers ADD COLUMN state_events boolean NOT NULL DEFAULT false;
