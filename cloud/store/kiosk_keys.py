"""Kiosk signing keys over their life: rotation with a grace period, and revocation.

``kiosks.public_key`` is the current key; a rotation moves the previous one into
``kiosk_retired_keys`` with the time until which it is still accepted, so that messages the
kiosk signed before it got its new key (its outbox, in flight) still verify. A revoked kiosk
(``kiosks.revoked_at``) has no key at all: nothing it signs is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cloud import errors
from cloud.store.database import Conn, Pool


@dataclass(frozen=True, slots=True)
class KioskKeys:
    """The keys a kiosk's messages may be signed with now: the current one first."""

    kiosk_id: str
    location_id: str
    current: str
    retired: tuple[str, ...]


async def accepted_keys(pool: Pool, kiosk_id: str, now: datetime) -> KioskKeys | None:
    """The kiosk's keys accepted at ``now``; None for an unknown or revoked kiosk."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT kiosk_id, location_id, public_key FROM kiosks"
            " WHERE kiosk_id = %s AND revoked_at IS NULL",
            (kiosk_id,),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        cur = await conn.execute(
            "SELECT public_key FROM kiosk_retired_keys WHERE kiosk_id = %s"
            " AND accepted_until > %s ORDER BY retired_at DESC",
            (kiosk_id, now),
        )
        retired = tuple(r["public_key"] for r in await cur.fetchall())
    return KioskKeys(row["kiosk_id"], row["location_id"], row["public_key"], retired)


async def rotate(
    conn: Conn, kiosk_id: str, *, new_public_key: str, accept_old_until: datetime, now: datetime
) -> str:
    """Makes ``new_public_key`` the kiosk's key; the old one is accepted until
    ``accept_old_until``. Returns the old key.

    Raises:
        KioskNotFound: no such kiosk, or it is revoked.
    """
    cur = await conn.execute(
        "SELECT public_key FROM kiosks WHERE kiosk_id = %s AND revoked_at IS NULL FOR UPDATE",
        (kiosk_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise errors.KioskNotFound(f"no kiosk {kiosk_id!r} (or it is revoked)")
    old: str = row["public_key"]
    await conn.execute(
        "INSERT INTO kiosk_retired_keys (kiosk_id, public_key, retired_at, accepted_until)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (kiosk_id, public_key)"
        " DO UPDATE SET accepted_until = excluded.accepted_until",
        (kiosk_id, old, now, accept_old_until),
    )
    await conn.execute(
        "UPDATE kiosks SET public_key = %s, key_created_at = %s,"
        " key_rotation_requested_at = NULL, key_rotation_requested_by = NULL"
        " WHERE kiosk_id = %s",
        (new_public_key, now, kiosk_id),
    )
    return old


@dataclass(frozen=True, slots=True)
class KeyAge:
    """A kiosk's key: since when it is the kiosk's, and whether a rotation was asked for."""

    kiosk_id: str
    location_id: str
    created_at: datetime
    rotation_requested_at: datetime | None


async def request_rotation(conn: Conn, kiosk_id: str, *, requested_by: str, now: datetime) -> None:
    """Asks the kiosk to make its next key: ``rotate_key`` goes out at its next heartbeats.

    Raises:
        KioskNotFound: no such kiosk, or it is revoked (a revoked kiosk never rotates).
    """
    cur = await conn.execute(
        "UPDATE kiosks SET key_rotation_requested_at = %s, key_rotation_requested_by = %s"
        " WHERE kiosk_id = %s AND revoked_at IS NULL RETURNING kiosk_id",
        (now, requested_by, kiosk_id),
    )
    if await cur.fetchone() is None:
        raise errors.KioskNotFound(f"no kiosk {kiosk_id!r} (or it is revoked)")


async def key_age(conn: Conn, kiosk_id: str) -> KeyAge | None:
    """The kiosk's key age and rotation request; None for an unknown or revoked kiosk."""
    cur = await conn.execute(
        "SELECT kiosk_id, location_id, coalesce(key_created_at, registered_at) AS created_at,"
        " key_rotation_requested_at FROM kiosks WHERE kiosk_id = %s AND revoked_at IS NULL",
        (kiosk_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return KeyAge(
        row["kiosk_id"], row["location_id"], row["created_at"], row["key_rotation_requested_at"]
    )


async def revoke(conn: Conn, kiosk_id: str, now: datetime) -> bool:
    """Revokes the kiosk: none of its keys is accepted any more. False if it already was.

    Raises:
        KioskNotFound: no such kiosk.
    """
    cur = await conn.execute(
        "UPDATE kiosks SET revoked_at = coalesce(revoked_at, %s) WHERE kiosk_id = %s"
        " RETURNING revoked_at = %s AS now_revoked",
        (now, kiosk_id, now),
    )
    row = await cur.fetchone()
    if row is None:
        raise errors.KioskNotFound(f"no kiosk {kiosk_id!r}")
    return bool(row["now_revoked"])
