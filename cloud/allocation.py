"""Allocating doors to parcels, and everything that moves an allocation along.

Plain functions over a psycopg connection and a time (``now``) given by the
caller's clock. Each public function is one transaction. The invariant "a door
never holds two parcels" rests on three things here and in the schema:

1. the free door is claimed by one UPDATE whose sub-select takes the row with
   ``FOR UPDATE SKIP LOCKED``, so concurrent requests never pick the same door;
2. the door's status changes in the same transaction as the allocation;
3. a partial unique index refuses a second live allocation on one door, whatever
   code (ours or a foreign writer's) tries it.

Idempotency: (carrier, package id) is unique; a retried request returns the
allocation made the first time, and a reuse of the package id with different
details is refused.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import DictRow

from cloud import changelog, errors, notifications
from cloud.pickup_codes import issue_code, pickup_code_for, retire_if_orphaned
from cloud.store.database import Conn
from shared.codes import InvalidCode, normalize_code
from shared.sizes import Dimensions, Size
from shared.states import AllocationStatus, IllegalTransition, allocation_transition


@dataclass(frozen=True, slots=True)
class AllocationRequest:
    """A carrier's request for a door. ``size`` is already resolved from dimensions."""

    location_id: str
    package_id: str
    order_id: str
    customer_id: str
    size: Size
    dimensions: Dimensions | None = None

    def fingerprint(self) -> str:
        """What must match for a repeated request to count as a retry of this one."""
        fields = [self.location_id, self.order_id, self.customer_id, self.size.value]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:32]


class _LostInsertRace(Exception):
    """A concurrent request for the same package committed first."""


ALLOCATION_VIEW = """
    SELECT a.allocation_id, a.carrier_id, a.location_id, a.kind, a.package_id, a.order_id,
           a.customer_id, a.size, a.status, a.reserved_at, a.reservation_expires_at,
           a.deposited_at, a.driver_id, a.pickup_expires_at, a.picked_up_at, a.expired_at,
           a.collected_at, a.cancelled_at, a.cancel_reason, a.request_fingerprint,
           d.door_id, d.door_number, d.size AS door_size,
           l.name AS location_name, l.address, l.timezone,
           c.code AS pickup_code
    FROM allocations a
    JOIN doors d ON d.door_id = a.door_id
    JOIN locations l ON l.location_id = a.location_id
    JOIN pickup_codes c ON c.pickup_code_id = a.pickup_code_id
"""


async def get_allocation(conn: Conn, allocation_id: uuid.UUID, carrier_id: str | None) -> DictRow:
    """One allocation as the API shows it. ``carrier_id`` None means the admin (sees all).

    Raises:
        AllocationNotFound: no such allocation, or it belongs to another carrier.
    """
    cur = await conn.execute(ALLOCATION_VIEW + " WHERE a.allocation_id = %s", (allocation_id,))
    row = await cur.fetchone()
    if row is None or (carrier_id is not None and row["carrier_id"] != carrier_id):
        raise errors.AllocationNotFound(f"no allocation {allocation_id}")
    return row


async def _find_by_package(conn: Conn, carrier_id: str, package_id: str) -> DictRow | None:
    cur = await conn.execute(
        ALLOCATION_VIEW + " WHERE a.carrier_id = %s AND a.package_id = %s",
        (carrier_id, package_id),
    )
    return await cur.fetchone()


def _replay(existing: DictRow, request: AllocationRequest) -> DictRow:
    if existing["request_fingerprint"] != request.fingerprint():
        raise errors.IdempotencyConflict(
            f"package {request.package_id} was already allocated with different details",
            details={"allocation_id": str(existing["allocation_id"])},
        )
    return existing


async def active_location(conn: Conn, location_id: str) -> DictRow:
    """The location row, if it exists and takes parcels.

    Raises:
        LocationNotFound, LocationInactive.
    """
    cur = await conn.execute(
        "SELECT location_id, latitude, longitude, timezone, active, address"
        " FROM locations WHERE location_id = %s",
        (location_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise errors.LocationNotFound(f"no location {location_id!r}")
    if not row["active"]:
        raise errors.LocationInactive(f"location {location_id!r} is not taking parcels")
    return row


async def claim_free_door(
    conn: Conn,
    location_id: str,
    size: Size,
    now: datetime,
    dimensions: Dimensions | None = None,
    exclude_door_id: int | None = None,
) -> DictRow | None:
    """Marks the smallest free door of ``size`` or larger as reserved and returns it.

    Smallest size first, then lowest door number, so large doors stay free for large
    parcels. With ``dimensions``, the door's own interior must fit them too (doors
    may be built larger or smaller than the standard for their size).
    """
    fit = ""
    params: dict[str, Any] = {
        "loc": location_id,
        "rank": size.rank,
        "now": now,
        "exclude": exclude_door_id,
    }
    if dimensions is not None:
        a, b, c = dimensions.sorted_sides()
        params.update(a=a, b=b, c=c)
        fit = """
          AND least(width_in, height_in, depth_in) >= %(a)s
          AND width_in + height_in + depth_in
              - least(width_in, height_in, depth_in)
              - greatest(width_in, height_in, depth_in) >= %(b)s
          AND greatest(width_in, height_in, depth_in) >= %(c)s"""
    cur = await conn.execute(
        f"""
        UPDATE doors SET status = 'reserved', status_changed_at = %(now)s
        WHERE door_id = (
            SELECT door_id FROM doors
            WHERE location_id = %(loc)s AND status = 'available' AND size_rank >= %(rank)s
              AND door_id IS DISTINCT FROM %(exclude)s {fit}
            ORDER BY size_rank, door_number
            LIMIT 1
            FOR UPDATE SKIP LOCKED)
        RETURNING door_id, door_number, size
        """,
        params,
    )
    return await cur.fetchone()


async def reserve(
    conn: Conn,
    *,
    carrier_id: str,
    request: AllocationRequest,
    now: datetime,
    hold: timedelta,
) -> tuple[DictRow, bool]:
    """Reserves a door for a parcel.

    Returns:
        The allocation, and True if it was created now (False for a retry).

    Raises:
        LocationNotFound, LocationInactive, IdempotencyConflict,
        LocationFull: no free door fits; ``details["nearest"]`` is filled by the caller.
    """
    existing = await _find_by_package(conn, carrier_id, request.package_id)
    if existing is not None:
        return _replay(existing, request), False
    allocation_id = uuid.uuid4()
    try:
        # Not in pipeline mode: it would send the change-log append with the COMMIT, one
        # round trip less, but psycopg's pipeline costs more client CPU per statement than
        # that saves here, where every other statement waits for its answer (measured:
        # docs/BENCHMARKS.md).
        async with conn.transaction():
            await active_location(conn, request.location_id)
            door = await claim_free_door(
                conn, request.location_id, request.size, now, request.dimensions
            )
            if door is None:
                raise errors.LocationFull(
                    f"no free {request.size.value} or larger door at {request.location_id}",
                    details={"location_id": request.location_id, "size": request.size.value},
                )
            code = await pickup_code_for(
                conn,
                location_id=request.location_id,
                carrier_id=carrier_id,
                customer_id=request.customer_id,
                now=now,
            )
            inserted = await _insert_reserved(
                conn,
                allocation_id=allocation_id,
                carrier_id=carrier_id,
                door_id=door["door_id"],
                kind="delivery",
                package_id=request.package_id,
                request=request,
                pickup_code_id=code["pickup_code_id"],
                now=now,
                hold=hold,
            )
            # The inserted row, its door and code are the allocation's final state here.
            state = changelog.state_of(
                {
                    **inserted,
                    "door_number": door["door_number"],
                    "code": code["code"],
                    "return_reason": None,
                }
            )
            await changelog.record_states(conn, now, [(request.location_id, state)])
    except _LostInsertRace:
        # The transaction rolled back, door claim included; answer as the winner did.
        existing = await _find_by_package(conn, carrier_id, request.package_id)
        assert existing is not None, "a conflicting insert committed, so the row exists"
        return _replay(existing, request), False
    return await get_allocation(conn, allocation_id, carrier_id), True


async def _lock_allocation(conn: Conn, allocation_id: uuid.UUID, carrier_id: str | None) -> DictRow:
    cur = await conn.execute(
        "SELECT a.*, l.timezone, l.address, d.door_number FROM allocations a"
        " JOIN locations l ON l.location_id = a.location_id"
        " JOIN doors d ON d.door_id = a.door_id"
        " WHERE a.allocation_id = %s FOR UPDATE OF a",
        (allocation_id,),
    )
    row = await cur.fetchone()
    if row is None or (carrier_id is not None and row["carrier_id"] != carrier_id):
        raise errors.AllocationNotFound(f"no allocation {allocation_id}")
    return row


def _check_transition(row: DictRow, target: AllocationStatus, action: str) -> None:
    try:
        allocation_transition(AllocationStatus(row["status"]), target)
    except IllegalTransition:
        raise errors.WrongState(
            f"cannot {action} an allocation that is {row['status']}",
            details={"status": row["status"]},
        ) from None


async def set_door_status(conn: Conn, door_ids: Sequence[int], status: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE doors SET status = %s, status_changed_at = %s WHERE door_id = ANY(%s)",
        (status, now, list(door_ids)),
    )


def notification_payload(row: Mapping[str, Any], code: str) -> dict[str, Any]:
    return {
        "allocation_id": str(row["allocation_id"]),
        "package_id": row["package_id"],
        "order_id": row["order_id"],
        "location_id": row["location_id"],
        "address": row["address"],
        "locker_number": row["door_number"],
        "pickup_code": code,
        "expires_at": row["pickup_expires_at"],
    }


async def deposit(
    conn: Conn,
    *,
    carrier_id: str | None,
    allocation_id: uuid.UUID,
    driver_id: str,
    scan_code: str,
    now: datetime,
    window: timedelta,
) -> DictRow:
    """Records that the driver put the parcel into its door, and queues the customer's code.

    Raises:
        AllocationNotFound, WrongState (not reserved, or a return),
        ScanMismatch: the scanned barcode is not this allocation's package.
    """
    async with conn.transaction():
        row = await _lock_allocation(conn, allocation_id, carrier_id)
        if row["kind"] != "delivery":
            raise errors.WrongState("a return is dropped off by the customer with its return code")
        _check_transition(row, AllocationStatus.DEPOSITED, "deposit")
        if row["reservation_expires_at"] <= now:
            raise errors.WrongState(
                "the reservation has timed out; request a new allocation",
                details={"status": "reservation_expired"},
            )
        if scan_code.strip() != row["package_id"]:
            raise errors.ScanMismatch(
                "the scanned barcode does not match this allocation's package",
                details={"expected_package_id": row["package_id"]},
            )
        cur = await conn.execute(
            """
            UPDATE allocations
            SET status = 'deposited', deposited_at = %(now)s, driver_id = %(driver)s,
                pickup_expires_at = %(expires)s, updated_at = %(now)s
            WHERE allocation_id = %(id)s
            RETURNING *
            """,
            {"now": now, "driver": driver_id, "expires": now + window, "id": allocation_id},
        )
        updated = await cur.fetchone()
        assert updated is not None
        await set_door_status(conn, [row["door_id"]], "occupied", now)
        code_cur = await conn.execute(
            "SELECT code FROM pickup_codes WHERE pickup_code_id = %s", (row["pickup_code_id"],)
        )
        code_row = await code_cur.fetchone()
        assert code_row is not None
        merged = {**row, **updated}
        await notifications.schedule_after_deposit(
            conn,
            allocation=merged,
            payload=notification_payload(merged, code_row["code"]),
            timezone=row["timezone"],
            now=now,
        )
        await changelog.record(conn, now, allocations=[allocation_id])
    return await get_allocation(conn, allocation_id, carrier_id)


async def cancel(
    conn: Conn,
    *,
    carrier_id: str | None,
    allocation_id: uuid.UUID,
    reason: str,
    now: datetime,
) -> DictRow:
    """Cancels a reservation and frees its door. Cancelling twice is a no-op.

    Raises:
        AllocationNotFound, WrongState: the parcel is already in (or out of) the locker.
    """
    async with conn.transaction():
        row = await _lock_allocation(conn, allocation_id, carrier_id)
        if row["status"] != AllocationStatus.CANCELLED:
            _check_transition(row, AllocationStatus.CANCELLED, "cancel")
            await finish_allocations(conn, [row], "cancelled", now, cancel_reason=reason)
            await changelog.record(conn, now, allocations=[allocation_id])
    return await get_allocation(conn, allocation_id, carrier_id)


async def collect(
    conn: Conn, *, carrier_id: str | None, allocation_id: uuid.UUID, now: datetime
) -> DictRow:
    """Staff or the carrier emptied the door: an expired parcel, a return, or a recall.

    Raises:
        AllocationNotFound, WrongState.
    """
    async with conn.transaction():
        row = await _lock_allocation(conn, allocation_id, carrier_id)
        if row["status"] != AllocationStatus.COLLECTED:
            _check_transition(row, AllocationStatus.COLLECTED, "collect")
            await finish_allocations(conn, [row], "collected", now)
            await changelog.record(conn, now, allocations=[allocation_id])
    return await get_allocation(conn, allocation_id, carrier_id)


async def finish_allocations(
    conn: Conn,
    rows: Sequence[DictRow],
    status: str,
    now: datetime,
    cancel_reason: str | None = None,
) -> None:
    """Moves allocations to a final status, frees their doors, tidies codes and messages."""
    ids = [r["allocation_id"] for r in rows]
    stamp = {"cancelled": "cancelled_at", "collected": "collected_at", "picked_up": "picked_up_at"}
    await conn.execute(
        f"""
        UPDATE allocations SET status = %s, {stamp[status]} = %s, updated_at = %s,
               cancel_reason = coalesce(%s, cancel_reason)
        WHERE allocation_id = ANY(%s)
        """,
        (status, now, now, cancel_reason, ids),
    )
    await set_door_status(conn, [r["door_id"] for r in rows], "available", now)
    await notifications.cancel_pending(conn, ids)
    for code_id in sorted({r["pickup_code_id"] for r in rows}):
        await retire_if_orphaned(conn, code_id, now)


async def pickup(
    conn: Conn,
    *,
    location_id: str,
    code_text: str,
    carrier_id: str | None,
    now: datetime,
) -> list[DictRow]:
    """Opens every deposited parcel of a pickup code at its location, once.

    Parcels of the same code that are still on their way (reserved) move to a new
    code, sent to the customer when they are deposited: a spent code opens nothing.

    Returns:
        The allocations opened now, with their door numbers.

    Raises:
        InvalidCode, CodeNotFound, CodeAlreadyUsed, CodeExpired, NothingToPickUp.
    """
    code = _parse_code(code_text)
    async with conn.transaction():
        row = await _lock_code(conn, location_id, code, "pickup", carrier_id)
        cur = await conn.execute(
            "SELECT a.*, d.door_number FROM allocations a JOIN doors d ON d.door_id = a.door_id"
            " WHERE a.pickup_code_id = %s AND a.status IN ('reserved', 'deposited')"
            " ORDER BY d.door_number FOR UPDATE OF a",
            (row["pickup_code_id"],),
        )
        live = await cur.fetchall()
        openable = [a for a in live if a["status"] == "deposited" and a["pickup_expires_at"] > now]
        if not openable:
            if any(a["status"] == "reserved" for a in live):
                raise errors.NothingToPickUp("your parcel has not been put in the locker yet")
            raise errors.CodeExpired("the pickup window of this code has ended")
        await finish_allocations(conn, openable, "picked_up", now)
        await conn.execute(
            "UPDATE pickup_codes SET used_at = %s WHERE pickup_code_id = %s",
            (now, row["pickup_code_id"]),
        )
        still_coming = [a for a in live if a["status"] == "reserved"]
        if still_coming:
            fresh = await issue_code(
                conn,
                location_id=location_id,
                carrier_id=row["carrier_id"],
                customer_id=row["customer_id"],
                kind="pickup",
                now=now,
            )
            await conn.execute(
                "UPDATE allocations SET pickup_code_id = %s, updated_at = %s"
                " WHERE allocation_id = ANY(%s)",
                (fresh["pickup_code_id"], now, [a["allocation_id"] for a in still_coming]),
            )
        # Parcels still on their way changed code: the kiosk gets their new code hash.
        await changelog.record(
            conn, now, allocations=[a["allocation_id"] for a in [*openable, *still_coming]]
        )
    for a in openable:
        a["status"] = "picked_up"
        a["picked_up_at"] = now
    return openable


def _parse_code(code_text: str) -> str:
    try:
        return normalize_code(code_text)
    except InvalidCode as exc:
        raise errors.InvalidCode(str(exc)) from None


async def _lock_code(
    conn: Conn, location_id: str, code: str, kind: str, carrier_id: str | None
) -> DictRow:
    """The code row at this location (live first), locked; raises if it cannot be used."""
    carrier_filter = "" if carrier_id is None else " AND carrier_id = %(carrier)s"
    params = {"loc": location_id, "code": code, "kind": kind, "carrier": carrier_id}
    cur = await conn.execute(
        f"""
        SELECT * FROM pickup_codes
        WHERE location_id = %(loc)s AND code = %(code)s AND kind = %(kind)s {carrier_filter}
        ORDER BY (used_at IS NULL AND retired_at IS NULL) DESC, created_at DESC
        LIMIT 1
        FOR UPDATE
        """,
        params,
    )
    row = await cur.fetchone()
    if row is None:
        cur = await conn.execute(
            f"""
            SELECT location_id FROM pickup_codes
            WHERE code = %(code)s AND kind = %(kind)s AND used_at IS NULL
              AND retired_at IS NULL {carrier_filter}
            LIMIT 1
            """,
            params,
        )
        elsewhere = await cur.fetchone()
        if elsewhere is not None:
            raise errors.CodeNotFound(
                "this code is for another locker location",
                details={"reason": "wrong_location", "location_id": elsewhere["location_id"]},
            )
        raise errors.CodeNotFound("no such code at this location", details={"reason": "unknown"})
    if row["used_at"] is not None:
        raise errors.CodeAlreadyUsed("this code has already been used")
    if row["retired_at"] is not None:
        raise errors.CodeExpired("this code is no longer valid")
    return row


@dataclass(frozen=True, slots=True)
class ReturnRequest:
    location_id: str
    order_id: str
    customer_id: str
    size: Size
    reason: str | None = None

    def fingerprint(self) -> str:
        fields = [self.location_id, self.customer_id, self.size.value]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:32]


async def _find_return(conn: Conn, carrier_id: str, order_id: str) -> DictRow | None:
    cur = await conn.execute(
        "SELECT r.return_id, r.reason, v.* FROM returns r"
        " JOIN (" + ALLOCATION_VIEW + ") v ON v.allocation_id = r.allocation_id"
        " WHERE r.carrier_id = %s AND r.order_id = %s",
        (carrier_id, order_id),
    )
    return await cur.fetchone()


async def create_return(
    conn: Conn, *, carrier_id: str, request: ReturnRequest, now: datetime, hold: timedelta
) -> tuple[DictRow, bool]:
    """Reserves a door for a customer's return and issues its return code.

    Idempotent on (carrier, order id).

    Raises:
        LocationNotFound, LocationInactive, LocationFull, IdempotencyConflict.
    """
    existing = await _find_return(conn, carrier_id, request.order_id)
    if existing is not None:
        if existing["request_fingerprint"] != request.fingerprint():
            raise errors.IdempotencyConflict(
                f"order {request.order_id} already has a return with different details",
                details={"return_id": str(existing["return_id"])},
            )
        return existing, False
    allocation_id, return_id = uuid.uuid4(), uuid.uuid4()
    try:
        async with conn.transaction():
            location = await active_location(conn, request.location_id)
            door = await claim_free_door(conn, request.location_id, request.size, now)
            if door is None:
                raise errors.LocationFull(
                    f"no free {request.size.value} or larger door at {request.location_id}",
                    details={"location_id": request.location_id, "size": request.size.value},
                )
            code = await issue_code(
                conn,
                location_id=request.location_id,
                carrier_id=carrier_id,
                customer_id=request.customer_id,
                kind="return",
                now=now,
            )
            await _insert_reserved(
                conn,
                allocation_id=allocation_id,
                carrier_id=carrier_id,
                door_id=door["door_id"],
                kind="return",
                package_id=f"RET-{request.order_id}",
                request=request,
                pickup_code_id=code["pickup_code_id"],
                now=now,
                hold=hold,
            )
            await conn.execute(
                "INSERT INTO returns (return_id, allocation_id, carrier_id, order_id,"
                " customer_id, reason, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    return_id,
                    allocation_id,
                    carrier_id,
                    request.order_id,
                    request.customer_id,
                    request.reason,
                    now,
                ),
            )
            await notifications.enqueue(
                conn,
                allocation_id=allocation_id,
                carrier_id=carrier_id,
                customer_id=request.customer_id,
                kind="return_code",
                payload={
                    "return_id": str(return_id),
                    "order_id": request.order_id,
                    "location_id": request.location_id,
                    "address": location["address"],
                    "locker_number": door["door_number"],
                    "return_code": code["code"],
                    "expires_at": now + hold,
                },
                due_at=now,
                now=now,
            )
            await changelog.record(conn, now, allocations=[allocation_id])
    except _LostInsertRace:
        existing = await _find_return(conn, carrier_id, request.order_id)
        assert existing is not None
        return existing, False
    found = await _find_return(conn, carrier_id, request.order_id)
    assert found is not None
    return found, True


async def drop_off_return(
    conn: Conn, *, location_id: str, code_text: str, carrier_id: str | None, now: datetime
) -> DictRow:
    """The customer put the return into its door: the door is occupied until collected.

    Raises:
        InvalidCode, CodeNotFound, CodeAlreadyUsed, CodeExpired.
    """
    code = _parse_code(code_text)
    async with conn.transaction():
        row = await _lock_code(conn, location_id, code, "return", carrier_id)
        cur = await conn.execute(
            "SELECT * FROM allocations WHERE pickup_code_id = %s AND status = 'reserved'"
            " FOR UPDATE",
            (row["pickup_code_id"],),
        )
        allocation = await cur.fetchone()
        if allocation is None or allocation["reservation_expires_at"] <= now:
            raise errors.CodeExpired("this return code is no longer valid")
        await conn.execute(
            "UPDATE allocations SET status = 'deposited', deposited_at = %s, updated_at = %s"
            " WHERE allocation_id = %s",
            (now, now, allocation["allocation_id"]),
        )
        await set_door_status(conn, [allocation["door_id"]], "occupied", now)
        await conn.execute(
            "UPDATE pickup_codes SET used_at = %s WHERE pickup_code_id = %s",
            (now, row["pickup_code_id"]),
        )
        await changelog.record(conn, now, allocations=[allocation["allocation_id"]])
    return await get_allocation(conn, allocation["allocation_id"], None)


async def _insert_reserved(
    conn: Conn,
    *,
    allocation_id: uuid.UUID,
    carrier_id: str,
    door_id: int,
    kind: str,
    package_id: str,
    request: AllocationRequest | ReturnRequest,
    pickup_code_id: int,
    now: datetime,
    hold: timedelta,
) -> DictRow:
    """Inserts a reserved allocation (delivery or return) on its claimed door.

    Returns:
        The new row's columns that `changelog.state_of` reads, with the location's code secret.

    Raises:
        _LostInsertRace: a concurrent insert of the same carrier and package id won; the
            caller's transaction must roll back (its door claim with it).
    """
    cur = await conn.execute(
        """
        INSERT INTO allocations AS a (
            allocation_id, carrier_id, location_id, door_id, kind, package_id, order_id,
            customer_id, size, status, pickup_code_id, request_fingerprint,
            reserved_at, reservation_expires_at, updated_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'reserved', %s, %s, %s, %s, %s)
        ON CONFLICT (carrier_id, package_id) DO NOTHING
        RETURNING allocation_id, kind, package_id, size, status, reservation_expires_at,
                  pickup_expires_at, order_id, """
        + changelog.code_secret_sql("a.location_id")
        + """ AS code_secret
        """,
        (
            allocation_id,
            carrier_id,
            request.location_id,
            door_id,
            kind,
            package_id,
            request.order_id,
            request.customer_id,
            request.size.value,
            pickup_code_id,
            request.fingerprint(),
            now,
            now + hold,
            now,
        ),
    )
    row = await cur.fetchone()
    if row is None:
        raise _LostInsertRace
    return row
