"""Generations of each kiosk's code secret in the cloud: request, activate, retire (issue 9).

Generation 1 is ``kiosks.code_secret`` (provisioning). A rotation goes:

1. `request_rotation` keeps a fresh X25519 private half in ``code_secret_generations`` and logs a
   ``code_secret_rotation`` change with its public half to the kiosk's location;
2. the kiosk makes the generation and answers with a ``code_secret_rotated`` event
   (`kiosk.store.code_secrets`); `activate` computes the same secret from the kiosk's public
   half, checks its fingerprint, wipes the private half and stamps ``activated_at``;
3. from then on, codes created are hashed for that kiosk under the new generation
   (`cloud.store.allocations.code_secret_sql`); codes created before keep theirs;
4. `retire_unneeded` wipes an older generation's secret once no live code of the location was
   created under it.

Nothing secret crosses the broker (`shared.code_secret_exchange`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cloud.store.database import Conn
from shared import code_secret_exchange
from shared.states import LIVE_ALLOCATION_STATUSES

LIVE = sorted(s.value for s in LIVE_ALLOCATION_STATUSES)

RESEND_AFTER = timedelta(hours=6)
"""A request the kiosk has not answered is logged again after this (`due_kiosks`)."""


class RotationRefused(Exception):
    """A ``code_secret_rotated`` event that cannot be applied (the reason is recorded)."""


@dataclass(frozen=True, slots=True)
class RotationRequest:
    """A generation asked of a kiosk: what its ``code_secret_rotation`` change carries."""

    kiosk_id: str
    location_id: str
    generation: int
    cloud_public: bytes
    new: bool  # False: the request was already waiting (it is logged again)


async def kiosks_of_location(conn: Conn, location_id: str) -> list[str]:
    """The location's unrevoked kiosks.

    Raises:
        LookupError: no such location.
    """
    cur = await conn.execute(
        "SELECT l.location_id, k.kiosk_id FROM locations l LEFT JOIN kiosks k"
        " ON k.location_id = l.location_id AND k.revoked_at IS NULL"
        " WHERE l.location_id = %s ORDER BY k.kiosk_id",
        (location_id,),
    )
    rows = await cur.fetchall()
    if not rows:
        raise LookupError(f"no location {location_id!r}")
    return [row["kiosk_id"] for row in rows if row["kiosk_id"] is not None]


async def request_rotation(
    conn: Conn, kiosk_id: str, now: datetime, requested_by: str
) -> RotationRequest:
    """Asks the kiosk for its next generation, or returns the request already waiting.

    The caller logs the change (`cloud.store.changelog.append_rotation`) in the same
    transaction.

    Raises:
        LookupError: no such kiosk, or it is revoked.
    """
    cur = await conn.execute(
        "SELECT location_id FROM kiosks WHERE kiosk_id = %s AND revoked_at IS NULL FOR UPDATE",
        (kiosk_id,),
    )
    kiosk = await cur.fetchone()
    if kiosk is None:
        raise LookupError(f"no unrevoked kiosk {kiosk_id!r}")
    cur = await conn.execute(
        "SELECT generation, cloud_public FROM code_secret_generations"
        " WHERE kiosk_id = %s AND activated_at IS NULL",
        (kiosk_id,),
    )
    waiting = await cur.fetchone()
    if waiting is not None:
        return RotationRequest(
            kiosk_id, kiosk["location_id"], waiting["generation"], bytes(waiting["cloud_public"]),
            new=False,
        )  # fmt: skip
    private, public = code_secret_exchange.new_half()
    cur = await conn.execute(
        """
        INSERT INTO code_secret_generations
            (kiosk_id, generation, cloud_private, cloud_public, requested_at, requested_by)
        SELECT %(kiosk)s, coalesce(max(generation), 1) + 1, %(private)s, %(public)s, %(now)s,
               %(by)s
        FROM code_secret_generations WHERE kiosk_id = %(kiosk)s
        RETURNING generation
        """,
        {
            "kiosk": kiosk_id,
            "private": code_secret_exchange.private_bytes(private),
            "public": public,
            "now": now,
            "by": requested_by,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return RotationRequest(kiosk_id, kiosk["location_id"], row["generation"], public, new=True)


async def activate(
    conn: Conn,
    kiosk_id: str,
    generation: int,
    kiosk_public: bytes,
    fingerprint: str,
    now: datetime,
) -> bool:
    """Completes the exchange: the generation is the kiosk's newest from now on.

    Returns:
        True if activated now, False if it was already (the event delivered again).

    Raises:
        RotationRefused: no such request, a bad public half, or a fingerprint that differs from
            the secret computed here (nothing is changed).
    """
    cur = await conn.execute(
        "SELECT cloud_private, fingerprint, activated_at FROM code_secret_generations"
        " WHERE kiosk_id = %s AND generation = %s FOR UPDATE",
        (kiosk_id, generation),
    )
    row = await cur.fetchone()
    if row is None:
        raise RotationRefused(f"no rotation to generation {generation} was requested")
    if row["activated_at"] is not None:
        if row["fingerprint"] != fingerprint:
            raise RotationRefused(f"generation {generation} is active with another fingerprint")
        return False
    try:
        secret = code_secret_exchange.generation_secret(
            bytes(row["cloud_private"]), kiosk_public, kiosk_id, generation
        )
    except ValueError as error:
        raise RotationRefused(f"not a usable public half: {error}") from None
    if code_secret_exchange.secret_fingerprint(secret) != fingerprint:
        raise RotationRefused("the fingerprint differs from the secret the cloud computed")
    await conn.execute(
        "UPDATE code_secret_generations SET secret = %s, fingerprint = %s, activated_at = %s,"
        " cloud_private = NULL WHERE kiosk_id = %s AND generation = %s",
        (secret, fingerprint, now, kiosk_id, generation),
    )
    return True


@dataclass(frozen=True, slots=True)
class GenerationInfo:
    """One generation as operators see it (no secret)."""

    kiosk_id: str
    generation: int
    fingerprint: str | None
    requested_at: datetime | None
    activated_at: datetime | None
    retired_at: datetime | None


async def generations(conn: Conn, kiosk_id: str) -> list[GenerationInfo]:
    """The kiosk's generations after the first, oldest first."""
    cur = await conn.execute(
        "SELECT kiosk_id, generation, fingerprint, requested_at, activated_at, retired_at"
        " FROM code_secret_generations WHERE kiosk_id = %s ORDER BY generation",
        (kiosk_id,),
    )
    return [GenerationInfo(**row) for row in await cur.fetchall()]


async def pending_at(conn: Conn, location_id: str) -> list[tuple[str, int, bytes]]:
    """(kiosk id, generation, cloud public half) of each request of the location's unrevoked
    kiosks not answered yet: a snapshot lists them, so a kiosk that catches up past the
    request's change still gets it."""
    cur = await conn.execute(
        "SELECT s.kiosk_id, s.generation, s.cloud_public FROM code_secret_generations s"
        " JOIN kiosks k ON k.kiosk_id = s.kiosk_id"
        " WHERE k.location_id = %s AND k.revoked_at IS NULL AND s.activated_at IS NULL"
        " ORDER BY s.kiosk_id",
        (location_id,),
    )
    return [
        (row["kiosk_id"], row["generation"], bytes(row["cloud_public"]))
        for row in await cur.fetchall()
    ]


async def due_kiosks(conn: Conn, now: datetime, every: timedelta) -> list[str]:
    """Unrevoked kiosks whose newest generation is older than ``every`` (registration counts
    for generation 1), or whose request has waited longer than `RESEND_AFTER` unanswered."""
    cur = await conn.execute(
        """
        SELECT k.kiosk_id FROM kiosks k
        LEFT JOIN LATERAL (
            SELECT max(activated_at) AS activated FROM code_secret_generations s
            WHERE s.kiosk_id = k.kiosk_id AND s.activated_at IS NOT NULL) a ON true
        LEFT JOIN code_secret_generations p
            ON p.kiosk_id = k.kiosk_id AND p.activated_at IS NULL
        WHERE k.revoked_at IS NULL
          AND CASE WHEN p.kiosk_id IS NOT NULL THEN p.requested_at <= %(resend)s
                   ELSE coalesce(a.activated, k.registered_at) <= %(due)s END
        ORDER BY k.kiosk_id
        """,
        {"due": now - every, "resend": now - RESEND_AFTER},
    )
    return [row["kiosk_id"] for row in await cur.fetchall()]


async def retire_unneeded(conn: Conn, now: datetime) -> list[tuple[str, int]]:
    """Wipes each generation's secret that a newer one replaced and no live code needs.

    A live code (of a reserved, deposited or expired allocation, not used) is hashed under the
    generation that was newest when it was created; a generation is needed while such a code
    was created between its activation and the next one's.

    Returns:
        (kiosk id, generation) of each generation retired now.
    """
    cur = await conn.execute(
        """
        WITH span AS (
            SELECT s.kiosk_id, s.generation, s.activated_at,
                   lead(s.activated_at) OVER (PARTITION BY s.kiosk_id ORDER BY s.generation)
                       AS replaced_at
            FROM code_secret_generations s WHERE s.activated_at IS NOT NULL
        )
        UPDATE code_secret_generations g SET secret = NULL, retired_at = %(now)s
        FROM span JOIN kiosks k ON k.kiosk_id = span.kiosk_id
        WHERE g.kiosk_id = span.kiosk_id AND g.generation = span.generation
          AND g.retired_at IS NULL AND span.replaced_at IS NOT NULL
          AND NOT EXISTS (
              SELECT 1 FROM allocations a JOIN pickup_codes c
                ON c.pickup_code_id = a.pickup_code_id
              WHERE a.location_id = k.location_id AND a.status = ANY(%(live)s)
                AND c.used_at IS NULL
                AND c.created_at >= span.activated_at AND c.created_at < span.replaced_at)
        RETURNING g.kiosk_id, g.generation
        """,
        {"now": now, "live": LIVE},
    )
    return [(row["kiosk_id"], row["generation"]) for row in await cur.fetchall()]


def change_entry(request: RotationRequest) -> dict[str, object]:
    """The change log entry of a request (``code_secret_rotation``, ``docs/protocol.md``)."""
    return {
        "kind": "code_secret_rotation",
        "kiosk_id": request.kiosk_id,
        "generation": request.generation,
        "cloud_public": request.cloud_public.hex(),
    }
