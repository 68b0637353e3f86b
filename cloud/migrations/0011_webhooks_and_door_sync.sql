-- issue 10: the rest of the carrier API's webhooks, and door facts carried to the kiosk.

-- Carriers created before webhook signing (0005) get a secret now, so that every webhook is
-- signed; a carrier learns its secret by rotating it (POST .../webhook-secret), which is the
-- only place a secret is shown after creation. 2 x 122 random bits of gen_random_uuid.
UPDATE carriers
SET webhook_secret = 'whsec_' || replace(gen_random_uuid()::text, '-', '')
                              || replace(gen_random_uuid()::text, '-', '')
WHERE webhook_secret IS NULL;

-- A rotated-out secret keeps signing (beside the new one) until previous_webhook_secret_until,
-- so that a carrier can deploy the new secret without refusing webhooks meanwhile.
ALTER TABLE carriers ADD COLUMN previous_webhook_secret text;
ALTER TABLE carriers ADD COLUMN previous_webhook_secret_until timestamptz;

-- parcel.reserved.v1 is written by a sweep of the dispatcher, not by the reservation (the hot
-- path): how far it has swept. The index serves the sweep's range of new allocations.
CREATE TABLE webhook_sweeps (
    name           text PRIMARY KEY,
    swept_through  timestamptz NOT NULL
);
CREATE INDEX allocations_reserved_at ON allocations (reserved_at);

-- The customer is told when a carrier redirects the parcel to another location (`redirected`).
-- Every existing kind is repeated: this constraint is re-created whole.
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN
    ('pickup_code', 'reminder', 'expires_today', 'expired', 'return_code', 'cancelled',
     'code_reissued', 'deadline_extended', 'state_changed', 'redirected'));

-- Pickup attempts at location ids that do not exist were counted in a row of their own, one per
-- id tried, never cleaned up; they are no longer counted (cloud.store.pickup_guesses).
DELETE FROM pickup_guesses g
WHERE g.scope = 'location'
  AND NOT EXISTS (SELECT 1 FROM locations l WHERE l.location_id = g.key);
