"""Allocation rows: reading them as `Allocation` records, and every write to them.

Every status write goes through `set_status`, which checks the shared transition table twice:
in Python, on the records the caller holds (so an illegal move raises before anything is
written), and in SQL, where the row must still be in a status the table allows to move to the
target (so a row changed meanwhile by a foreign writer is never moved illegally).

Every writer notes the allocations it changed on its `Unit`, which logs them at its end.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from psycopg import AsyncCursor
from psycopg.rows import DictRow

from cloud.store import carrier_events
from cloud.store.database import Conn
from cloud.store.doors import FIT_SQL, fit_params
from cloud.store.records import Allocation, AllocationKind
from shared.sizes import Dimensions, Size
from shared.states import (
    ALLOCATION_TRANSITIONS,
    LIVE_ALLOCATION_STATUSES,
    AllocationStatus,
    DoorStatus,
    IllegalTransition,
    door_transition,
    sources,
    transition,
)

if TYPE_CHECKING:
    from cloud.store.transaction import Unit

LIVE = sorted(s.value for s in LIVE_ALLOCATION_STATUSES)


def code_secret_sql(location: str, code_created: str) -> str:
    """A scalar sub-select: the code secrets of the location ``location`` (an SQL expression).

    issue 9: one secret per kiosk. A JSON array of ``[kiosk_id, secret in hex, generation]``, one
    per registered kiosk that is not revoked, the newest first; NULL before any kiosk is
    registered. ``location`` must be a parameter or a qualified column (``a.location_id``): a
    bare ``location_id`` would name the sub-select's own ``kiosks.location_id`` and match every
    kiosk. Code-secret rotation: each kiosk's secret is the generation that was newest when the
    code was created (``code_created``, an SQL expression), so a live code keeps the hash it was
    issued with; generation 1, ``kiosks.code_secret``, for a code from before any rotation
    (`cloud.store.code_secrets`).
    """
    return (
        "(SELECT jsonb_agg(jsonb_build_array(k.kiosk_id,"
        " encode(coalesce(g.secret, k.code_secret), 'hex'), coalesce(g.generation, 1))"
        " ORDER BY k.registered_at DESC, k.kiosk_id)"
        " FROM kiosks k LEFT JOIN LATERAL (SELECT s.generation, s.secret"
        " FROM code_secret_generations s WHERE s.kiosk_id = k.kiosk_id"
        f" AND s.activated_at <= {code_created} AND s.secret IS NOT NULL"
        " ORDER BY s.generation DESC LIMIT 1) g ON true"
        f" WHERE k.location_id = {location} AND k.revoked_at IS NULL)"
    )


_VIEW = f"""
    SELECT a.allocation_id, a.carrier_id, a.location_id, a.kind, a.package_id, a.order_id,
           a.customer_id, a.size, a.status, a.door_id, a.pickup_code_id, a.request_fingerprint,
           a.reserved_at, a.reservation_expires_at, a.deposited_at, a.driver_id,
           a.pickup_expires_at, a.picked_up_at, a.expired_at, a.collected_at, a.cancelled_at,
           a.cancel_reason,
           d.door_number, d.label AS door_label, d.size AS door_size,
           l.name AS location_name, l.address, l.timezone,
           c.code AS pickup_code, r.reason AS return_reason,
           {code_secret_sql("a.location_id", "c.created_at")} AS code_secret
    FROM allocations a
    JOIN doors d ON d.door_id = a.door_id
    JOIN locations l ON l.location_id = a.location_id
    JOIN pickup_codes c ON c.pickup_code_id = a.pickup_code_id
    LEFT JOIN returns r ON r.allocation_id = a.allocation_id
"""


async def _one(cur: AsyncCursor[DictRow]) -> Allocation | None:
    row = await cur.fetchone()
    return None if row is None else Allocation.from_row(row)


async def _all(cur: AsyncCursor[DictRow]) -> list[Allocation]:
    return [Allocation.from_row(row) for row in await cur.fetchall()]


# Reading.


async def get(conn: Conn, allocation_id: uuid.UUID) -> Allocation | None:
    return await _one(await conn.execute(_VIEW + " WHERE a.allocation_id = %s", (allocation_id,)))


async def load(conn: Conn, allocation_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Allocation]:
    """The allocations of ``allocation_ids`` that exist, by id."""
    cur = await conn.execute(_VIEW + " WHERE a.allocation_id = ANY(%s)", (list(allocation_ids),))
    return {a.allocation_id: a for a in await _all(cur)}


async def find_by_package(conn: Conn, carrier_id: str, package_id: str) -> Allocation | None:
    cur = await conn.execute(
        _VIEW + " WHERE a.carrier_id = %s AND a.package_id = %s", (carrier_id, package_id)
    )
    return await _one(cur)


async def live_at(conn: Conn, location_id: str) -> list[Allocation]:
    """Every live allocation (reserved, deposited, expired) of a location, by door number."""
    cur = await conn.execute(
        _VIEW + " WHERE a.location_id = %s AND a.status = ANY(%s) ORDER BY d.door_number",
        (location_id, LIVE),
    )
    return await _all(cur)


async def stream_live_at(
    conn: Conn, location_id: str, *, batch: int = 500
) -> AsyncGenerator[Allocation, None]:
    """`live_at`'s allocations through a server-side cursor, ``batch`` rows per fetch: a
    location's snapshot of any size is read without holding its rows all at once (issue 14).

    Must run inside a transaction (a named cursor lives in one).
    """
    async with conn.cursor(name=f"live_{uuid.uuid4().hex}") as cur:
        cur.itersize = batch
        await cur.execute(
            _VIEW + " WHERE a.location_id = %s AND a.status = ANY(%s) ORDER BY d.door_number",
            (location_id, LIVE),
        )
        async for row in cur:
            yield Allocation.from_row(row)


async def lock(
    conn: Conn, allocation_id: uuid.UUID, location_id: str | None = None
) -> Allocation | None:
    """The allocation, row-locked to the end of the transaction; optionally only at a location."""
    cur = await conn.execute(
        _VIEW + " WHERE a.allocation_id = %s AND (%s::text IS NULL OR a.location_id = %s)"
        " FOR UPDATE OF a",
        (allocation_id, location_id, location_id),
    )
    return await _one(cur)


async def lock_on_code(
    conn: Conn,
    pickup_code_id: int,
    statuses: Sequence[AllocationStatus],
    *,
    except_ids: Sequence[uuid.UUID] = (),
) -> list[Allocation]:
    """The allocations of a code in ``statuses``, locked, by door number."""
    cur = await conn.execute(
        _VIEW + " WHERE a.pickup_code_id = %s AND a.status = ANY(%s)"
        " AND NOT (a.allocation_id = ANY(%s)) ORDER BY d.door_number FOR UPDATE OF a",
        (pickup_code_id, [s.value for s in statuses], list(except_ids)),
    )
    return await _all(cur)


async def lock_live_on_door(
    conn: Conn, door_id: int, other_than: uuid.UUID | None = None
) -> Allocation | None:
    """The live allocation holding a door (there is at most one), other than ``other_than``."""
    cur = await conn.execute(
        _VIEW + " WHERE a.door_id = %s AND a.status = ANY(%s)"
        " AND a.allocation_id IS DISTINCT FROM %s FOR UPDATE OF a",
        (door_id, LIVE, other_than),
    )
    return await _one(cur)


async def lock_due_reservations(conn: Conn, now: datetime, batch: int) -> list[Allocation]:
    """Reservations whose hold ran out by ``now``, oldest first; rows others hold are skipped."""
    cur = await conn.execute(
        _VIEW + " WHERE a.status = 'reserved' AND a.reservation_expires_at <= %s"
        " ORDER BY a.reservation_expires_at LIMIT %s FOR UPDATE OF a SKIP LOCKED",
        (now, batch),
    )
    return await _all(cur)


async def lock_due_pickups(conn: Conn, now: datetime, batch: int) -> list[Allocation]:
    """Deposited deliveries whose pickup window ended by ``now``, oldest first; others skipped."""
    cur = await conn.execute(
        _VIEW + " WHERE a.status = 'deposited' AND a.kind = 'delivery'"
        " AND a.pickup_expires_at <= %s"
        " ORDER BY a.pickup_expires_at LIMIT %s FOR UPDATE OF a SKIP LOCKED",
        (now, batch),
    )
    return await _all(cur)


# Reserving: one statement for the single request and the batch.


# One reservation in one statement: location check, door claim, the customer's pickup code
# (joined or issued), allocation insert and the read-back, as data-modifying CTEs. The CTEs that
# modify data run once each, whether or not the final SELECT reads them, so each one is guarded
# by what it depends on: no code is issued unless a door was found, and no door is claimed unless
# the code was obtained. The free-door search keeps its status literal: it is the predicate of
# the partial index ``doors_free``, which a parameter would keep the (generic) plan from using.
RESERVE_SQL = (
    """
WITH loc AS MATERIALIZED (
    SELECT location_id, name, address, timezone, active
    FROM locations WHERE location_id = %(loc)s
),
dup AS MATERIALIZED (
    SELECT 1 FROM allocations WHERE carrier_id = %(carrier)s AND package_id = %(package)s
),
free AS MATERIALIZED (
    SELECT door_id FROM doors
    WHERE location_id = %(loc)s AND status = 'available' AND size_rank >= %(rank)s
      AND (accessible OR NOT %(accessible)s::boolean)
      AND EXISTS (SELECT 1 FROM loc WHERE active) AND NOT EXISTS (SELECT 1 FROM dup)
      AND """
    + FIT_SQL
    + """
    ORDER BY size_rank, door_number
    LIMIT 1
    FOR UPDATE SKIP LOCKED
),
old_code AS MATERIALIZED (
    SELECT pickup_code_id, code, created_at FROM pickup_codes
    WHERE location_id = %(loc)s AND carrier_id = %(carrier)s AND customer_id = %(customer)s
      AND kind = 'pickup' AND used_at IS NULL AND retired_at IS NULL
      AND given_back_at IS NULL  -- a code given back is not joined (migration 0013)
      AND EXISTS (SELECT 1 FROM free)
    FOR UPDATE
),
new_code AS (
    INSERT INTO pickup_codes (location_id, carrier_id, customer_id, kind, code, created_at)
    SELECT %(loc)s, %(carrier)s, %(customer)s, 'pickup', %(code)s, %(now)s
    WHERE EXISTS (SELECT 1 FROM free) AND NOT EXISTS (SELECT 1 FROM old_code)
    ON CONFLICT DO NOTHING
    RETURNING pickup_code_id, code, created_at
),
code AS MATERIALIZED (
    SELECT pickup_code_id, code, created_at FROM old_code
    UNION ALL
    SELECT pickup_code_id, code, created_at FROM new_code
),
claimed AS (
    UPDATE doors d SET status = %(door_to)s, status_changed_at = %(now)s
    FROM free
    WHERE d.door_id = free.door_id AND EXISTS (SELECT 1 FROM code)
    RETURNING d.door_id, d.door_number, d.label, d.size
),
ins AS (
    INSERT INTO allocations (
        allocation_id, carrier_id, location_id, door_id, kind, package_id, order_id,
        customer_id, size, status, pickup_code_id, request_fingerprint,
        reserved_at, reservation_expires_at, updated_at)
    SELECT %(id)s, %(carrier)s, %(loc)s, claimed.door_id, %(kind)s, %(package)s, %(order)s,
           %(customer)s, %(size)s, %(status)s, code.pickup_code_id, %(fingerprint)s,
           %(now)s, %(expires)s, %(now)s
    FROM claimed CROSS JOIN code
    ON CONFLICT (carrier_id, package_id) DO NOTHING
    RETURNING *
)
SELECT EXISTS (SELECT 1 FROM loc) AS location_found,
       coalesce((SELECT active FROM loc), false) AS location_active,
       EXISTS (SELECT 1 FROM dup) AS duplicate,
       EXISTS (SELECT 1 FROM free) AS door_found,
       ins.allocation_id, ins.carrier_id, ins.location_id, ins.kind, ins.package_id,
       ins.order_id, ins.customer_id, ins.size, ins.status, ins.door_id, ins.pickup_code_id,
       ins.request_fingerprint, ins.reserved_at, ins.reservation_expires_at, ins.deposited_at,
       ins.driver_id, ins.pickup_expires_at, ins.picked_up_at, ins.expired_at, ins.collected_at,
       ins.cancelled_at, ins.cancel_reason,
       claimed.door_number, claimed.label AS door_label, claimed.size AS door_size,
       loc.name AS location_name, loc.address, loc.timezone,
       code.code AS pickup_code, NULL::text AS return_reason,
       CASE WHEN ins.allocation_id IS NOT NULL THEN """
    + code_secret_sql("%(loc)s", "code.created_at")
    + """ END AS code_secret
FROM (SELECT 1) AS one
LEFT JOIN ins ON true
LEFT JOIN claimed ON true
LEFT JOIN code ON true
LEFT JOIN loc ON true
"""
)


def reserve_params(
    *,
    allocation_id: uuid.UUID,
    carrier_id: str,
    location_id: str,
    package_id: str,
    order_id: str,
    customer_id: str,
    size: Size,
    dimensions: Dimensions | None,
    code: str,
    fingerprint: str,
    now: datetime,
    hold: timedelta,
    accessible: bool = False,
) -> dict[str, Any]:
    """The parameters of `RESERVE_SQL` for one request (``code``: the one issued if needed)."""
    return {
        "accessible": accessible,
        "id": allocation_id,
        "loc": location_id,
        "carrier": carrier_id,
        "package": package_id,
        "order": order_id,
        "customer": customer_id,
        "size": size.value,
        "rank": size.rank,
        **fit_params(dimensions),
        "code": code,
        "fingerprint": fingerprint,
        "now": now,
        "expires": now + hold,
        "kind": AllocationKind.DELIVERY.value,
        "status": AllocationStatus.RESERVED.value,
        "door_to": door_transition(DoorStatus.AVAILABLE, DoorStatus.RESERVED).value,
    }


async def hold_packages(work: Unit, packages: Sequence[tuple[str, str]]) -> None:
    """Waits for, then holds to the end of the transaction, each (carrier, package id) given.

    A retry of a package racing its first request would otherwise find no allocation (the
    first one's is not committed yet) and no free door either (the first one holds it, and
    `RESERVE_SQL` skips locked doors), and answer ``location_full``. Held first, the retry's
    statement starts after the first request committed, sees its allocation and replays it.
    Transaction-scoped advisory locks, taken in key order so two batches never deadlock.
    """
    keys = sorted({_package_key(carrier, package) for carrier, package in packages})
    await work.conn.execute(
        "SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(k, n)"
        " ORDER BY n",
        (keys,),
    )


def _package_key(carrier_id: str, package_id: str) -> int:
    digest = hashlib.blake2b(f"{carrier_id}\x1f{package_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def send_reserve(work: Unit, params: Mapping[str, Any]) -> AsyncCursor[DictRow]:
    """Sends one `RESERVE_SQL`; its single row is read with `reserved_from`.

    In a pipeline the statement is only queued, so a batch sends all of its requests at once.
    """
    return await work.conn.execute(RESERVE_SQL, dict(params))


async def prefer_generic_plan(work: Unit) -> None:
    """For this transaction, plans `RESERVE_SQL` once instead of on every execution.

    Left to choose, PostgreSQL plans the statement afresh on every execution (its custom plans
    look cheaper than the generic one), which costs more CPU than executing it. The generic plan
    uses the same indexes. LOCAL: only for this transaction, not the pooled connection's next.
    """
    await work.conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")


def reserved_from(work: Unit, row: DictRow) -> Allocation | None:
    """The new allocation a `RESERVE_SQL` row holds (noted on the unit), or None if none."""
    if row["allocation_id"] is None:
        return None
    allocation = Allocation.from_row(row)
    work.changed_to(allocation)
    return allocation


async def insert_reserved_return(
    work: Unit,
    *,
    allocation_id: uuid.UUID,
    carrier_id: str,
    location_id: str,
    door_id: int,
    order_id: str,
    customer_id: str,
    size: Size,
    pickup_code_id: int,
    fingerprint: str,
    hold: timedelta,
) -> bool:
    """Inserts the reserved allocation of a return on its claimed door.

    Returns:
        False if a concurrent insert of the same return won (the caller must roll back).
    """
    cur = await work.conn.execute(
        """
        INSERT INTO allocations (
            allocation_id, carrier_id, location_id, door_id, kind, package_id, order_id,
            customer_id, size, status, pickup_code_id, request_fingerprint,
            reserved_at, reservation_expires_at, updated_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (carrier_id, package_id) DO NOTHING
        RETURNING allocation_id
        """,
        (
            allocation_id,
            carrier_id,
            location_id,
            door_id,
            AllocationKind.RETURN.value,
            f"RET-{order_id}",
            order_id,
            customer_id,
            size.value,
            AllocationStatus.RESERVED.value,
            pickup_code_id,
            fingerprint,
            work.now,
            work.now + hold,
            work.now,
        ),
    )
    if await cur.fetchone() is None:
        return False
    work.changed(allocation_id)
    return True


# Changing.

# The timestamp each status is entered with.
_STAMP = {
    AllocationStatus.DEPOSITED: "deposited_at",
    AllocationStatus.PICKED_UP: "picked_up_at",
    AllocationStatus.EXPIRED: "expired_at",
    AllocationStatus.COLLECTED: "collected_at",
    AllocationStatus.CANCELLED: "cancelled_at",
}


async def set_status(
    work: Unit,
    allocations: Sequence[Allocation],
    target: AllocationStatus,
    *,
    at: datetime | None = None,
    table: Mapping[AllocationStatus, frozenset[AllocationStatus]] = ALLOCATION_TRANSITIONS,
    cancel_reason: str | None = None,
    driver_id: str | None = None,
    pickup_expires_at: datetime | None = None,
    pickup_code_id: int | None = None,
) -> None:
    """Moves allocations to ``target``, stamped ``at`` (default: the unit's time).

    ``table`` is the shared transition table the move must be in: the service's own
    (`ALLOCATION_TRANSITIONS`), or for a kiosk's physical fact `FACT_ALLOCATION_TRANSITIONS`.
    The other arguments set their column when given (a deposit's driver, window and code).

    Raises:
        IllegalTransition: the table does not allow the move for one of them (nothing written),
            or a row moved meanwhile to a status from which it does not.
    """
    if not allocations:
        return
    for allocation in allocations:
        transition(table, allocation.status, target)
    stamp = _STAMP[target]
    ids = [a.allocation_id for a in allocations]
    cur = await work.conn.execute(
        f"""
        UPDATE allocations
        SET status = %(to)s, {stamp} = %(at)s, updated_at = %(now)s,
            cancel_reason = coalesce(%(reason)s, cancel_reason),
            driver_id = CASE WHEN %(deposit)s THEN %(driver)s ELSE driver_id END,
            pickup_expires_at = CASE WHEN %(deposit)s THEN %(expires)s
                                     ELSE pickup_expires_at END,
            pickup_code_id = coalesce(%(code)s, pickup_code_id)
        WHERE allocation_id = ANY(%(ids)s) AND status = ANY(%(from)s)
        """,
        {
            "to": target.value,
            "deposit": target is AllocationStatus.DEPOSITED,
            "at": at or work.now,
            "now": work.now,
            "reason": cancel_reason,
            "driver": driver_id,
            "expires": pickup_expires_at,
            "code": pickup_code_id,
            "ids": ids,
            "from": [s.value for s in sources(table, target)],
        },
    )
    if cur.rowcount != len(ids):
        raise IllegalTransition("AllocationStatus", "a status changed meanwhile", target.value)
    work.changed(*ids)
    # issue 10: the carrier's state-change webhook, in the same transaction.
    await carrier_events.state_changed(work, ids, target)


async def move_to_door(work: Unit, allocation_ids: Sequence[uuid.UUID], door_id: int) -> None:
    """Gives allocations another door (the door's own status is the caller's to set)."""
    await work.conn.execute(
        "UPDATE allocations SET door_id = %s, updated_at = %s WHERE allocation_id = ANY(%s)",
        (door_id, work.now, list(allocation_ids)),
    )
    work.changed(*allocation_ids)


async def swap_doors(work: Unit, first: Allocation, second: Allocation) -> None:
    """The two live allocations exchange doors.

    One live allocation per door is an exclusion constraint checked at each row unless
    deferred; deferred here, to this transaction's end, the two moves pass through a moment
    where one door has both.
    """
    await work.conn.execute("SET CONSTRAINTS allocations_one_live_per_door DEFERRED")
    await move_to_door(work, [first.allocation_id], second.door_id)
    await move_to_door(work, [second.allocation_id], first.door_id)
    await work.conn.execute("SET CONSTRAINTS allocations_one_live_per_door IMMEDIATE")


async def set_code(work: Unit, allocation_ids: Sequence[uuid.UUID], pickup_code_id: int) -> None:
    """Moves allocations to another pickup code (parcels still coming, when theirs was spent)."""
    await work.conn.execute(
        "UPDATE allocations SET pickup_code_id = %s, updated_at = %s WHERE allocation_id = ANY(%s)",
        (pickup_code_id, work.now, list(allocation_ids)),
    )
    work.changed(*allocation_ids)


# issue 10: a deposited parcel's code re-issued, its pickup deadline extended.


async def count_code_reissue(work: Unit, allocation_id: uuid.UUID) -> int:
    """Counts one more re-issue of the allocation's code; returns how many there were."""
    cur = await work.conn.execute(
        "UPDATE allocations SET code_reissues = code_reissues + 1, updated_at = %s"
        " WHERE allocation_id = %s RETURNING code_reissues",
        (work.now, allocation_id),
    )
    row = await cur.fetchone()
    assert row is not None, "the caller holds the allocation"
    count: int = row["code_reissues"]
    return count


async def extend_pickup(work: Unit, allocation_id: uuid.UUID, until: datetime) -> int:
    """Moves a deposited parcel's pickup deadline to ``until``; returns the extensions so far."""
    cur = await work.conn.execute(
        "UPDATE allocations SET pickup_expires_at = %s, pickup_extensions = pickup_extensions + 1,"
        " updated_at = %s WHERE allocation_id = %s AND status = 'deposited'"
        " RETURNING pickup_extensions",
        (until, work.now, allocation_id),
    )
    row = await cur.fetchone()
    assert row is not None, "the caller holds the deposited allocation"
    work.changed(allocation_id)
    count: int = row["pickup_extensions"]
    return count


async def pickup_extensions(conn: Conn, allocation_id: uuid.UUID) -> int:
    cur = await conn.execute(
        "SELECT pickup_extensions FROM allocations WHERE allocation_id = %s", (allocation_id,)
    )
    row = await cur.fetchone()
    return 0 if row is None else int(row["pickup_extensions"])


async def relocate(
    work: Unit,
    allocation_id: uuid.UUID,
    *,
    location_id: str,
    door_id: int,
    pickup_code_id: int,
    fingerprint: str,
) -> None:
    """Moves a reservation to another location's door and code (a redirect before deposit)."""
    await work.conn.execute(
        "UPDATE allocations SET location_id = %s, door_id = %s, pickup_code_id = %s,"
        " request_fingerprint = %s, updated_at = %s"
        " WHERE allocation_id = %s AND status = 'reserved'",
        (location_id, door_id, pickup_code_id, fingerprint, work.now, allocation_id),
    )
    work.changed(allocation_id)
