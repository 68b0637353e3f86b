"""Signing webhooks, so that a carrier can tell ours from anyone's.

Each carrier gets a secret at creation (shown once, like its API key). A webhook carries
``Locker-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is the HMAC-SHA256 under the
secret of ``<t>.<the exact body bytes>`` (the scheme Stripe and others use, so receivers have
code for it). The timestamp lets the receiver refuse old replays; `verify` is what a receiver
does, in Python.

Rotation: a rotated-out secret keeps signing for an overlap period (`DEFAULT_OVERLAP`, or what
the rotation asked), during which the header carries one ``v1=`` per secret, the new one first
(``t=<t>,v1=<new>,v1=<old>``). A receiver accepts the webhook if any ``v1`` matches a secret it
holds, so it can switch to the new secret whenever it likes within the overlap.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

SIGNATURE_HEADER = "Locker-Signature"
# The version of the webhook body (docs/api.md, "Notifications"); bumped on an incompatible
# change, so receivers can tell.
BODY_VERSION = 1
# How long a rotated-out secret keeps signing, beside the new one, unless the rotation says.
DEFAULT_OVERLAP = timedelta(hours=24)


def signature(secret: str, body: bytes, at: datetime, *older: str) -> str:
    """The ``Locker-Signature`` header value for ``body`` sent at ``at``: one ``v1`` under
    ``secret``, then one under each of the ``older`` secrets still in their overlap."""
    t = int(at.timestamp())
    digests = [
        hmac.new(key.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        for key in (secret, *older)
    ]
    return ",".join([f"t={t}", *(f"v1={d}" for d in digests)])


def verify(
    secret: str,
    body: bytes,
    header: str,
    now: datetime,
    tolerance: timedelta = timedelta(minutes=5),
) -> bool:
    """Whether ``header`` signs ``body`` under ``secret``, made within ``tolerance`` of ``now``."""
    try:
        pairs = [item.split("=", 1) for item in header.split(",")]
        [t] = [int(value) for key, value in pairs if key == "t"]
    except ValueError:  # no "=", no t, two t, or a t that is not a number
        return False
    given = [value for key, value in pairs if key == "v1"]
    if abs(now.timestamp() - t) > tolerance.total_seconds():
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    # Every signature compared (no early exit), each in constant time.
    return sum(hmac.compare_digest(expected, value) for value in given) > 0
