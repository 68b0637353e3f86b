"""Carriers: their name, webhook, and the hash of their API key."""

from __future__ import annotations

from datetime import datetime

from psycopg.errors import UniqueViolation

from cloud import errors
from cloud.store.database import Conn


async def insert(
    conn: Conn,
    *,
    carrier_id: str,
    name: str,
    api_key_hash: bytes,
    webhook_url: str | None,
    now: datetime,
    webhook_secret: str | None = None,
    state_events: bool = False,
) -> None:
    """Adds a carrier.

    Raises:
        AlreadyExists: the carrier id (or, against all odds, the key's hash) is taken.
    """
    try:
        # Its own (sub)transaction, so a taken id leaves the caller's transaction usable.
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO carriers (carrier_id, name, api_key_hash, webhook_url, created_at,"
                " webhook_secret, state_events) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (carrier_id, name, api_key_hash, webhook_url, now, webhook_secret, state_events),
            )
    except UniqueViolation:
        raise errors.AlreadyExists(f"carrier {carrier_id!r} already exists") from None


async def carrier_for_key_hash(conn: Conn, api_key_hash: bytes) -> str | None:
    """The id of the carrier whose API key has this hash, if any."""
    cur = await conn.execute(
        "SELECT carrier_id FROM carriers WHERE api_key_hash = %s", (api_key_hash,)
    )
    row = await cur.fetchone()
    return None if row is None else str(row["carrier_id"])


async def rotate_webhook_secret(
    conn: Conn, carrier_id: str, new_secret: str, previous_until: datetime
) -> datetime | None:
    """Makes ``new_secret`` the carrier's webhook secret; the one it replaces keeps signing
    until ``previous_until`` (none when the carrier had none).

    Returns:
        Until when the previous secret signs (None: there was none).

    Raises:
        CarrierNotFound.
    """
    cur = await conn.execute(
        """
        UPDATE carriers SET
            previous_webhook_secret = webhook_secret,
            previous_webhook_secret_until = CASE WHEN webhook_secret IS NULL THEN NULL
                                                 ELSE %(until)s::timestamptz END,
            webhook_secret = %(secret)s
        WHERE carrier_id = %(carrier)s
        RETURNING previous_webhook_secret_until
        """,
        {"carrier": carrier_id, "secret": new_secret, "until": previous_until},
    )
    row = await cur.fetchone()
    if row is None:
        raise errors.CarrierNotFound(f"no carrier {carrier_id!r}")
    until: datetime | None = row["previous_webhook_secret_until"]
    return until
