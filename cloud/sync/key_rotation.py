"""When the cloud asks a kiosk to rotate its signing key (``rotate_key``), issue 9.

The kiosk makes its next key itself and announces it in a ``signing_key_rotated`` event signed
by its current key (`kiosk.sync.key_rotation`, `cloud.sync.facts`); the cloud only decides
*when*. A rotation is due when an operator asked for one (`locker-cloud rotate-kiosk-key
--over-the-air`, `cloud.store.kiosk_keys.request_rotation`) or when the kiosk's key is older
than ``LOCKER_KIOSK_KEY_MAX_AGE_DAYS`` (0, the default: never by age). The worker checks at each
heartbeat of the kiosk (every 30 s), so a kiosk that was offline gets the command when it is
back, and sends ``rotate_key`` until the announcement is applied (which clears the request).

Age-based rotations are spread: a kiosk is due at its key's age plus a share of a quarter of
the maximum age fixed by its id, so switching the setting on for a fleet whose keys are all
older does not rotate every kiosk in the same half minute.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from cloud.store.kiosk_keys import KeyAge

SPREAD_SHARE = 0.25
"""Age-based rotations of a fleet are spread over this share of the maximum age."""


def spread(kiosk_id: str, max_age: timedelta) -> timedelta:
    """The kiosk's own delay past ``max_age``: the same at every check, different per kiosk."""
    fraction = int.from_bytes(hashlib.sha256(kiosk_id.encode()).digest()[:4], "big") / 2**32
    return max_age * SPREAD_SHARE * fraction


def rotation_due(age: KeyAge, now: datetime, max_age: timedelta | None) -> bool:
    """Whether ``rotate_key`` should go to the kiosk now."""
    if age.rotation_requested_at is not None:
        return True
    if max_age is None:
        return False
    return now >= age.created_at + max_age + spread(age.kiosk_id, max_age)
