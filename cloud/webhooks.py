"""Signing webhooks, so that a carrier can tell ours from anyone's.

Each carrier gets a secret at creation (shown once, like its API key). A webhook carries
``Locker-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is the HMAC-SHA256 under the
secret of ``<t>.<the exact body bytes>`` (the scheme Stripe and others use, so receivers have
code for it). The timestamp lets the receiver refuse old replays; `verify` is what a receiver
does, in Python.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

SIGNATURE_HEADER = "Locker-Signature"
# The version of the webhook body (docs/api.md, "Notifications"); bumped on an incompatible
# change, so receivers can tell.
BODY_VERSION = 1


def signature(secret: str, body: bytes, at: datetime) -> str:
    """The ``Locker-Signature`` header value for ``body`` sent at ``at``."""
    t = int(at.timestamp())
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(
    secret: str,
    body: bytes,
    header: str,
    now: datetime,
    tolerance: timedelta = timedelta(minutes=5),
) -> bool:
    """Whether ``header`` signs ``body`` under ``secret``, made within ``tolerance`` of ``now``."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs(now.timestamp() - t) > tolerance.total_seconds():
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)
