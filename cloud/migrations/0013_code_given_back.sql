-- Issue 11: a pickup code the kiosk gives back (spent on doors never pulsed) is live again even
-- when the customer has been issued another live code at the location meanwhile. The per-customer
-- index ("later parcels join the customer's live code") only counts codes never given back, so
-- both can be live: the given-back one opens its own parcels, new parcels join the other.
ALTER TABLE pickup_codes ADD COLUMN given_back_at timestamptz;

DROP INDEX pickup_codes_live_customer;
CREATE UNIQUE INDEX pickup_codes_live_customer ON pickup_codes (location_id, carrier_id, customer_id)
    WHERE kind = 'pickup' AND used_at IS NULL AND retired_at IS NULL AND given_back_at IS NULL;
