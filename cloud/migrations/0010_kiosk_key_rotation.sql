-- Issue 9: kiosk signing keys rotated over the air (cloud/store/kiosk_keys.py).
--
-- key_created_at: when kiosks.public_key became the kiosk's key (NULL: the key it was registered
-- with, so registered_at). LOCKER_KIOSK_KEY_MAX_AGE_DAYS measures a key's age from it.
-- key_rotation_requested_at / _by: an operator (or the maximum key age) asked the kiosk to make
-- its next key; the cloud sends `rotate_key` at the kiosk's heartbeats until the kiosk's
-- `signing_key_rotated` event is applied, which clears the request.
ALTER TABLE kiosks ADD COLUMN key_created_at timestamptz;
ALTER TABLE kiosks ADD COLUMN key_rotation_requested_at timestamptz;
ALTER TABLE kiosks ADD COLUMN key_rotation_requested_by text;
