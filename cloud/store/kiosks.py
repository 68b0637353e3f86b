"""Registered kiosks: their keys and code secret, and their presence (birth, death, heartbeat).

The presence updates carry the epoch rules of ``docs/protocol.md`` in their ``WHERE`` clauses,
so that a late message of an older connection changes nothing even when two workers race
(`cloud.sync.presence` explains the rules).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow

from cloud import errors
from cloud.store import publications
from cloud.store.database import Conn, Pool
from shared.protocol import MAX_KIOSKS_PER_LOCATION


@dataclass(frozen=True, slots=True)
class Kiosk:
    """A row of ``kiosks``.

    ``status`` is the stored presence: ``never_seen``, ``online`` or ``offline``.
    """

    kiosk_id: str
    location_id: str
    public_key: str  # raw Ed25519 public key, base64
    code_secret: bytes
    registered_revision: int
    registered_at: datetime
    status: str
    epoch: int | None
    firmware: str | None
    last_revision: int | None
    birth_at: datetime | None
    death_at: datetime | None
    heartbeat_at: datetime | None
    heartbeat: dict[str, Any] | None
    revoked_at: datetime | None = None  # issue 9: nothing it signs is accepted
    # Issue 9, over-the-air key rotation (cloud.store.kiosk_keys): None = registered_at.
    key_created_at: datetime | None = None
    key_rotation_requested_at: datetime | None = None
    key_rotation_requested_by: str | None = None

    @classmethod
    def from_row(cls, row: DictRow) -> Kiosk:
        return cls(**{**row, "code_secret": bytes(row["code_secret"])})


@dataclass(frozen=True, slots=True)
class KioskPresence:
    """A kiosk's presence, as the admin API lists it.

    ``status`` is as stored (``never_seen``, ``online``, ``offline``) when read here;
    `cloud.sync.presence` replaces it with the shown one (which adds ``stale``).
    """

    kiosk_id: str
    status: str
    epoch: int | None
    firmware: str | None
    last_revision: int | None
    registered_at: datetime
    birth_at: datetime | None
    death_at: datetime | None
    heartbeat_at: datetime | None
    heartbeat: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class RegisteredKey:
    """What verifying a kiosk's messages needs: its id, location and public key (base64)."""

    kiosk_id: str
    location_id: str
    public_key: str


@dataclass(frozen=True, slots=True)
class LayoutDoor:
    """A door as a kiosk's ``[layout]`` lists it."""

    door_number: int
    size: str


async def register(
    conn: Conn,
    *,
    kiosk_id: str,
    location_id: str,
    public_key: str,
    code_secret: bytes,
    now: datetime,
) -> Kiosk:
    """Inserts the kiosk, its event cursor and (if new) its location's publication row.

    All in one transaction, with the location's row locked as the change log locks it, so
    ``registered_revision`` is exactly the last revision logged without this secret.

    Raises:
        LocationNotFound: no such location.
        AlreadyExists: the kiosk id is taken.
        LimitReached: the location has `MAX_KIOSKS_PER_LOCATION` unrevoked kiosks already.
    """
    try:
        async with conn.transaction():
            cur = await conn.execute(
                "SELECT revision FROM locations WHERE location_id = %s FOR NO KEY UPDATE",
                (location_id,),
            )
            location = await cur.fetchone()
            if location is None:
                raise errors.LocationNotFound(f"no location {location_id!r}")
            # issue 9: each kiosk adds its own code hash to every allocation sent to the
            # location, and the protocol takes MAX_KIOSKS_PER_LOCATION of them.
            cur = await conn.execute(
                "SELECT count(*) AS n FROM kiosks WHERE location_id = %s AND revoked_at IS NULL",
                (location_id,),
            )
            active = await cur.fetchone()
            if active is not None and active["n"] >= MAX_KIOSKS_PER_LOCATION:
                raise errors.LimitReached(
                    f"location {location_id!r} already has {MAX_KIOSKS_PER_LOCATION} kiosks:"
                    " revoke one (locker-cloud revoke-kiosk) before registering another"
                )
            cur = await conn.execute(
                """
                INSERT INTO kiosks (kiosk_id, location_id, public_key, code_secret,
                                    registered_revision, registered_at)
                VALUES (%s, %s, %s, %s, %s, %s)
                RETURNING *
                """,
                (kiosk_id, location_id, public_key, code_secret, location["revision"], now),
            )
            row = await cur.fetchone()
            assert row is not None
            await conn.execute("INSERT INTO kiosk_cursors (kiosk_id) VALUES (%s)", (kiosk_id,))
            await publications.start_publication(conn, location_id, location["revision"])
    except UniqueViolation:
        raise errors.AlreadyExists(f"kiosk {kiosk_id!r} is already registered") from None
    return Kiosk.from_row(row)


async def latest_code_secret(conn: Conn, location_id: str) -> bytes | None:
    """The code secret of the location's most recently registered kiosk, if it has one."""
    cur = await conn.execute(
        "SELECT code_secret FROM kiosks WHERE location_id = %s ORDER BY registered_at DESC LIMIT 1",
        (location_id,),
    )
    row = await cur.fetchone()
    return None if row is None else bytes(row["code_secret"])


async def registered_key(pool: Pool, kiosk_id: str) -> RegisteredKey | None:
    """The kiosk's location and public key, or None when no such kiosk is registered."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT kiosk_id, location_id, public_key FROM kiosks WHERE kiosk_id = %s",
            (kiosk_id,),
        )
        row = await cur.fetchone()
    return None if row is None else RegisteredKey(**row)


async def mark_born(
    pool: Pool, *, kiosk_id: str, epoch: int, firmware: str, last_revision: int, now: datetime
) -> bool:
    """Marks the kiosk online at ``epoch``, unless it has a newer epoch or this one died.

    Returns:
        Whether the row changed.
    """
    async with pool.connection() as conn:
        cur = await conn.execute(
            """
            UPDATE kiosks SET status = 'online', epoch = %(epoch)s, firmware = %(firmware)s,
                   last_revision = %(revision)s, birth_at = %(now)s
            WHERE kiosk_id = %(kiosk)s
              AND (epoch IS NULL OR epoch < %(epoch)s
                   OR (epoch = %(epoch)s AND status = 'online'))
            """,
            {
                "kiosk": kiosk_id,
                "epoch": epoch,
                "firmware": firmware,
                "revision": last_revision,
                "now": now,
            },
        )
        return cur.rowcount == 1


async def mark_dead(pool: Pool, *, kiosk_id: str, epoch: int, now: datetime) -> bool:
    """Marks the kiosk offline, unless it has a newer epoch or is offline at this one.

    Returns:
        Whether the row changed.
    """
    async with pool.connection() as conn:
        cur = await conn.execute(
            """
            UPDATE kiosks SET status = 'offline', epoch = %(epoch)s, death_at = %(now)s
            WHERE kiosk_id = %(kiosk)s
              AND (epoch IS NULL OR epoch < %(epoch)s
                   OR (epoch = %(epoch)s AND status <> 'offline'))
            """,
            {"kiosk": kiosk_id, "epoch": epoch, "now": now},
        )
        return cur.rowcount == 1


async def keep_heartbeat(
    pool: Pool,
    *,
    kiosk_id: str,
    epoch: int,
    figures: dict[str, Any],
    last_revision: int,
    now: datetime,
) -> int | None:
    """Keeps a heartbeat's figures, unless the kiosk has a newer epoch or this one died.

    Returns:
        The location's change-log revision when the heartbeat was kept (read in the same
        statement, to spare the caller a round trip), or None when it was not.
    """
    async with pool.connection() as conn:
        cur = await conn.execute(
            """
            UPDATE kiosks SET status = 'online', epoch = %(epoch)s, heartbeat_at = %(now)s,
                   heartbeat = %(figures)s, last_revision = %(revision)s
            WHERE kiosk_id = %(kiosk)s
              AND (epoch IS NULL OR epoch < %(epoch)s
                   OR (epoch = %(epoch)s AND status = 'online'))
            RETURNING (SELECT l.revision FROM locations l WHERE l.location_id = kiosks.location_id)
                AS location_revision
            """,
            {
                "kiosk": kiosk_id,
                "epoch": epoch,
                "now": now,
                "figures": json.dumps(figures),
                "revision": last_revision,
            },
        )
        row = await cur.fetchone()
        return None if row is None else int(row["location_revision"])


async def location_presence(conn: Conn, location_id: str) -> list[KioskPresence]:
    """The location's kiosks with their stored presence, by kiosk id."""
    cur = await conn.execute(
        "SELECT kiosk_id, status, epoch, firmware, last_revision, registered_at, birth_at,"
        " death_at, heartbeat_at, heartbeat FROM kiosks WHERE location_id = %s ORDER BY kiosk_id",
        (location_id,),
    )
    return [KioskPresence(**row) for row in await cur.fetchall()]


async def layout_doors(conn: Conn, location_id: str) -> list[LayoutDoor] | None:
    """The location's doors by number, for a new kiosk's configuration.

    Returns:
        The doors (none yet: an empty list), or None when there is no such location.
    """
    # One statement for both answers: a location without doors still has its row.
    cur = await conn.execute(
        "SELECT l.location_id, d.door_number, d.size FROM locations l"
        " LEFT JOIN doors d ON d.location_id = l.location_id"
        " WHERE l.location_id = %s ORDER BY d.door_number",
        (location_id,),
    )
    rows = await cur.fetchall()
    if not rows:
        return None
    return [LayoutDoor(r["door_number"], r["size"]) for r in rows if r["door_number"] is not None]
