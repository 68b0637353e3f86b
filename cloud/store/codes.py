"""Pickup and return code rows: issuing, sharing, spending, retiring.

A customer with several parcels waiting at one location gets one pickup code that opens all of
them: a new allocation joins the customer's live code there, if any. A code is live until it is
used (it opened its doors) or retired (no parcel it could open remains). Live codes are unique
per location, enforced by a unique index, so a collision on insert simply draws again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from cloud.store.database import Conn
from cloud.store.records import Code, CodeKind
from shared.codes import generate_code

if TYPE_CHECKING:
    from cloud.store.transaction import Unit

# A collision needs another live code at the same location with the same six characters
# (odds ~ live codes / 887M). Running out of tries means something else is wrong, so fail
# loudly instead of looping forever.
MAX_DRAWS = 20

_COLUMNS = "pickup_code_id, location_id, carrier_id, customer_id, kind, code, created_at," \
    " used_at, retired_at"  # fmt: skip


async def issue(
    work: Unit, *, location_id: str, carrier_id: str, customer_id: str, kind: CodeKind
) -> Code:
    """Inserts a new live code.

    Raises:
        RuntimeError: no free code was drawn in `MAX_DRAWS` tries.
    """
    for _ in range(MAX_DRAWS):
        cur = await work.conn.execute(
            f"""
            INSERT INTO pickup_codes (location_id, carrier_id, customer_id, kind, code, created_at)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT DO NOTHING
            RETURNING {_COLUMNS}
            """,
            (location_id, carrier_id, customer_id, kind.value, generate_code(), work.now),
        )
        row = await cur.fetchone()
        if row is not None:
            return Code.from_row(row)
        if kind is CodeKind.PICKUP:
            # The conflict may be the customer's own live code, created by a concurrent
            # allocation since we looked: join it instead.
            existing = await live_customer_code(work.conn, location_id, carrier_id, customer_id)
            if existing is not None:
                return existing
    raise RuntimeError(f"could not draw a free code at {location_id} in {MAX_DRAWS} tries")


async def live_customer_code(
    conn: Conn, location_id: str, carrier_id: str, customer_id: str
) -> Code | None:
    """The customer's live pickup code at the location, locked for this transaction.

    The row lock makes a concurrent pickup (which marks the code used) wait or win: after it
    commits, the re-checked WHERE no longer matches and we issue a new code, so a parcel never
    joins a code that has already been spent.
    """
    cur = await conn.execute(
        f"""
        SELECT {_COLUMNS} FROM pickup_codes
        WHERE location_id = %s AND carrier_id = %s AND customer_id = %s
          AND kind = 'pickup' AND used_at IS NULL AND retired_at IS NULL
          AND given_back_at IS NULL  -- a given-back code is not joined (migration 0013)
        FOR UPDATE
        """,
        (location_id, carrier_id, customer_id),
    )
    row = await cur.fetchone()
    return None if row is None else Code.from_row(row)


async def for_customer(work: Unit, *, location_id: str, carrier_id: str, customer_id: str) -> Code:
    """The customer's live pickup code at the location, issued if there is none."""
    existing = await live_customer_code(work.conn, location_id, carrier_id, customer_id)
    if existing is not None:
        return existing
    return await issue(
        work,
        location_id=location_id,
        carrier_id=carrier_id,
        customer_id=customer_id,
        kind=CodeKind.PICKUP,
    )


async def lock(conn: Conn, pickup_code_id: int) -> Code:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM pickup_codes WHERE pickup_code_id = %s FOR UPDATE",
        (pickup_code_id,),
    )
    row = await cur.fetchone()
    assert row is not None, "an allocation's code exists (foreign key)"
    return Code.from_row(row)


async def lock_at_location(
    conn: Conn, location_id: str, code: str, kind: CodeKind, carrier_id: str | None
) -> Code | None:
    """The code typed at a location (its live row first, else the newest), locked."""
    cur = await conn.execute(
        f"""
        SELECT {_COLUMNS} FROM pickup_codes
        WHERE location_id = %(loc)s AND code = %(code)s AND kind = %(kind)s
          AND (%(carrier)s::text IS NULL OR carrier_id = %(carrier)s)
        ORDER BY (used_at IS NULL AND retired_at IS NULL) DESC, created_at DESC
        LIMIT 1
        FOR UPDATE
        """,
        {"loc": location_id, "code": code, "kind": kind.value, "carrier": carrier_id},
    )
    row = await cur.fetchone()
    return None if row is None else Code.from_row(row)


async def live_elsewhere(
    conn: Conn, code: str, kind: CodeKind, carrier_id: str | None
) -> str | None:
    """The location where ``code`` is live, if any (to tell a customer at the wrong locker)."""
    cur = await conn.execute(
        """
        SELECT location_id FROM pickup_codes
        WHERE code = %(code)s AND kind = %(kind)s AND used_at IS NULL AND retired_at IS NULL
          AND (%(carrier)s::text IS NULL OR carrier_id = %(carrier)s)
        LIMIT 1
        """,
        {"code": code, "kind": kind.value, "carrier": carrier_id},
    )
    row = await cur.fetchone()
    return None if row is None else str(row["location_id"])


async def mark_used(work: Unit, pickup_code_id: int, at: datetime) -> Code | None:
    """Spends a code that is not spent yet.

    Returns:
        The code, or None if it was already used.
    """
    cur = await work.conn.execute(
        f"UPDATE pickup_codes SET used_at = %s WHERE pickup_code_id = %s AND used_at IS NULL"
        f" RETURNING {_COLUMNS}",
        (at, pickup_code_id),
    )
    row = await cur.fetchone()
    return None if row is None else Code.from_row(row)


async def retire_orphaned(work: Unit, pickup_code_ids: Sequence[int]) -> None:
    """Retires the live codes among these that no parcel they could open remains for."""
    await work.conn.execute(
        """
        UPDATE pickup_codes c SET retired_at = %(now)s
        WHERE c.pickup_code_id = ANY(%(ids)s) AND c.used_at IS NULL AND c.retired_at IS NULL
          AND NOT EXISTS (
              SELECT 1 FROM allocations a
              WHERE a.pickup_code_id = c.pickup_code_id AND a.status IN ('reserved', 'deposited'))
        """,
        {"ids": sorted(set(pickup_code_ids)), "now": work.now},
    )


async def give_back(work: Unit, pickup_code_id: int) -> Code | None:
    """Makes a spent code live again (issue 11: the kiosk spent it on doors never pulsed).

    The customer may have been issued another live code at the location since (a parcel that
    arrived after the code was spent): both are live then, the given-back one for its own
    parcels (``given_back_at`` keeps it out of the one-live-code-per-customer rule, so new
    parcels join the other). Refused (None) when the code is not spent, is retired, or another
    live code now holds its six characters at the location.
    """
    cur = await work.conn.execute(
        f"""
        UPDATE pickup_codes c SET used_at = NULL, given_back_at = %s
        WHERE c.pickup_code_id = %s AND c.used_at IS NOT NULL AND c.retired_at IS NULL
          AND NOT EXISTS (
              SELECT 1 FROM pickup_codes o
              WHERE o.location_id = c.location_id AND o.used_at IS NULL
                AND o.retired_at IS NULL AND o.pickup_code_id <> c.pickup_code_id
                AND o.code = c.code)
        RETURNING {_COLUMNS}
        """,
        (work.now, pickup_code_id),
    )
    row = await cur.fetchone()
    return None if row is None else Code.from_row(row)


async def retire(work: Unit, pickup_code_id: int) -> None:
    """Retires a live code at once (it was re-issued): it opens nothing from now on."""
    await work.conn.execute(
        "UPDATE pickup_codes SET retired_at = %s"
        " WHERE pickup_code_id = %s AND used_at IS NULL AND retired_at IS NULL",
        (work.now, pickup_code_id),
    )
