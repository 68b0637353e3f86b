"""Carriers and their API keys.

Keys are 32 random bytes, shown once at creation; only their SHA-256 is stored.
A plain hash (no salt, no slow KDF) is right here: the key has 256 bits of
entropy, so there is nothing to brute-force, and lookups stay one index probe.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from cloud.store import carriers as store
from cloud.store.database import Conn

KEY_PREFIX = "lk_"


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create_carrier(
    conn: Conn,
    *,
    carrier_id: str,
    name: str,
    webhook_url: str | None,
    now: datetime,
    api_key: str | None = None,
    webhook_secret: str | None = None,
    state_events: bool = False,
) -> str:
    """Registers a carrier and returns its API key (the only time it is visible).

    ``webhook_secret`` signs its webhooks (`cloud.webhooks`); None: unsigned.

    Raises:
        AlreadyExists.
    """
    key = api_key or new_api_key()
    await store.insert(
        conn,
        carrier_id=carrier_id,
        name=name,
        api_key_hash=hash_key(key),
        webhook_url=webhook_url,
        now=now,
        webhook_secret=webhook_secret,
        state_events=state_events,
    )
    return key


def new_webhook_secret() -> str:
    """A carrier's webhook signing secret: 32 random bytes, as text."""
    return "whsec_" + secrets.token_urlsafe(32)


async def carrier_for_key(conn: Conn, key: str) -> str | None:
    """The id of the carrier whose API key this is, if any."""
    return await store.carrier_for_key_hash(conn, hash_key(key))


async def rotate_webhook_secret(
    conn: Conn, carrier_id: str, now: datetime, overlap: timedelta
) -> tuple[str, datetime | None]:
    """Gives the carrier a new webhook secret (the only time it is visible); the old one keeps
    signing beside it for ``overlap`` (`cloud.webhooks`, "Rotation").

    Returns:
        The new secret, and until when the old one signs (None: the carrier had none).

    Raises:
        CarrierNotFound.
    """
    secret = new_webhook_secret()
    until = await store.rotate_webhook_secret(conn, carrier_id, secret, now + overlap)
    return secret, until
