-- issue 10: failed pickup attempts counted per carrier and per location, in fixed windows, so
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
