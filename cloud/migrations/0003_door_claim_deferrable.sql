-- Invariant 1 (a door never holds two parcels) becomes an exclusion constraint, which, unlike a
-- partial unique index, can be deferred: a kiosk that put two reserved parcels into each
-- other's doors makes the cloud swap them, and the two moves pass through a moment where one
-- door has both (cloud.store.allocations.swap_doors). Checked at every row otherwise.
DROP INDEX allocations_one_live_per_door;
ALTER TABLE allocations ADD CONSTRAINT allocations_one_live_per_door
    EXCLUDE USING btree (door_id WITH =) WHERE (status IN ('reserved', 'deposited', 'expired'))
    DEFERRABLE INITIALLY IMMEDIATE;
