"""Pickup and return codes in the database: issuing, sharing, retiring.

A customer with several parcels waiting at one location gets one pickup code that
opens all of them: a new allocation joins the customer's live code there, if any.
A code is live until it is used (it opened its doors) or retired (no parcel it
could open remains). Live codes are unique per location, enforced by a unique
index, so a collision on insert simply draws again.
"""

from __future__ import annotations

from datetime import datetime

from psycopg.rows import DictRow

from cloud.store.database import Conn
from shared.codes import generate_code

# A collision needs another live code at the same location with the same six
# characters (odds ~ live codes / 887M). Running out of tries means something
# else is wrong, so fail loudly instead of looping forever.
_MAX_DRAWS = 20


async def issue_code(
    conn: Conn,
    *,
    location_id: str,
    carrier_id: str,
    customer_id: str,
    kind: str,
    now: datetime,
) -> DictRow:
    """Inserts a new live code. Must run inside the caller's transaction.

    Raises:
        RuntimeError: no free code was drawn in `_MAX_DRAWS` tries.
    """
    for _ in range(_MAX_DRAWS):
        cur = await conn.execute(
            """
            INSERT INTO pickup_codes (location_id, carrier_id, customer_id, kind, code, created_at)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT DO NOTHING
            RETURNING pickup_code_id, code
            """,
            (location_id, carrier_id, customer_id, kind, generate_code(), now),
        )
        row = await cur.fetchone()
        if row is not None:
            return row
        if kind == "pickup":
            # The conflict may be the customer's own live code, created by a
            # concurrent allocation since we looked: join it instead.
            existing = await live_customer_code(conn, location_id, carrier_id, customer_id)
            if existing is not None:
                return existing
    raise RuntimeError(f"could not draw a free code at {location_id} in {_MAX_DRAWS} tries")


async def live_customer_code(
    conn: Conn, location_id: str, carrier_id: str, customer_id: str
) -> DictRow | None:
    """The customer's live pickup code at the location, locked for this transaction.

    The row lock makes a concurrent pickup (which marks the code used) wait or win:
    after it commits, the re-checked WHERE no longer matches and we issue a new code,
    so a parcel never joins a code that has already been spent.
    """
    cur = await conn.execute(
        """
        SELECT pickup_code_id, code FROM pickup_codes
        WHERE location_id = %s AND carrier_id = %s AND customer_id = %s
          AND kind = 'pickup' AND used_at IS NULL AND retired_at IS NULL
        FOR UPDATE
        """,
        (location_id, carrier_id, customer_id),
    )
    return await cur.fetchone()


async def pickup_code_for(
    conn: Conn, *, location_id: str, carrier_id: str, customer_id: str, now: datetime
) -> DictRow:
    """The customer's live pickup code at the location, issued if there is none."""
    existing = await live_customer_code(conn, location_id, carrier_id, customer_id)
    if existing is not None:
        return existing
    return await issue_code(
        conn,
        location_id=location_id,
        carrier_id=carrier_id,
        customer_id=customer_id,
        kind="pickup",
        now=now,
    )


async def retire_if_orphaned(conn: Conn, pickup_code_id: int, now: datetime) -> None:
    """Retires a live code once no parcel it could still open remains."""
    await conn.execute(
        """
        UPDATE pickup_codes SET retired_at = %(now)s
        WHERE pickup_code_id = %(id)s AND used_at IS NULL AND retired_at IS NULL
          AND NOT EXISTS (
              SELECT 1 FROM allocations
              WHERE pickup_code_id = %(id)s AND status IN ('reserved', 'deposited'))
        """,
        {"id": pickup_code_id, "now": now},
    )
