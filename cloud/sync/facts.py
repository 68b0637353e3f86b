"""What each kiosk event changes in the cloud: physical facts win (``docs/protocol.md``).

`apply_fact` runs inside the event's transaction (`cloud.sync.events`), which also advances the
kiosk's cursor. It changes allocations and doors with the same helpers as the API path, queues
the same notifications, and ends with `cloud.changelog.record` for every allocation or door it
changed, so the kiosk (and any other kiosk of the location) learns the cloud's new view.

Door authority: the kiosk owns the physical doors. The door a kiosk reports is applied as a fact;
if another allocation held that door in the cloud's view, a reservation is moved to another free
door (or, with none left, cancelled with reason ``no_door`` and its carrier told), see
`_give_door`. A parcel the cloud believes is in that door is a contradiction between two
parcels: nothing is moved, the event is recorded as ignored and an alert raised for operators.

An event that names an unknown allocation or door, or that contradicts what the cloud knows for
certain (a parcel picked up twice), raises `Ignored`: the event's changes are rolled back, and it
is recorded with the reason and acknowledged, so it never blocks the kiosk's later events.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import DictRow

from cloud import changelog, notifications
from cloud.allocation import (
    claim_free_door,
    finish_allocations,
    notification_payload,
    set_door_status,
)
from cloud.pickup_codes import issue_code, pickup_code_for
from cloud.store.database import Conn
from shared.protocol import EventRecord
from shared.sizes import Size

log = logging.getLogger(__name__)

# Events an operator should see (fleet_alerts), besides being recorded.
ALERT_EVENTS = frozenset(
    {
        "door_tampered",
        "door_left_open",
        "operation_abandoned",
        "door_command_failed",
        "door_open_not_detected",
        "keypad_locked",
        "remote_open_refused",
    }
)
# Events kept for the audit trail only: they change nothing the cloud keeps.
AUDIT_EVENTS = frozenset({"door_opened", "door_closed", "code_released", "parcel_expired"})

NO_DOOR = "no_door"


class Ignored(Exception):
    """The event cannot be applied; it is recorded with this reason and acknowledged."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What applying an event did: ``applied``, ``unchanged`` or ``recorded``."""

    result: str
    detail: str | None = None


@dataclass
class FactContext:
    """What applying one event needs to know."""

    conn: Conn
    kiosk_id: str
    location_id: str
    event: EventRecord
    now: datetime
    pickup_window: timedelta
    changed: list[uuid.UUID] = field(default_factory=list)
    maintenance: list[changelog.MaintenanceNote] = field(default_factory=list)

    @property
    def payload(self) -> dict[str, Any]:
        return self.event.payload

    @property
    def happened_at(self) -> datetime:
        """When the kiosk saw it (never later than now: a kiosk clock ahead is not believed)."""
        return min(self.event.created_at, self.now)


async def apply_fact(ctx: FactContext) -> Outcome:
    """Applies one kiosk event in the caller's transaction.

    Raises:
        Ignored: the event names something unknown or contradicts a certain fact.
    """
    handler = _HANDLERS.get(ctx.event.type)
    if handler is not None:
        outcome = await handler(ctx)
    elif ctx.event.type in ALERT_EVENTS:
        await _raise_alert(ctx)
        outcome = Outcome("recorded", "alert raised")
    elif ctx.event.type in AUDIT_EVENTS:
        outcome = Outcome("recorded")
    else:
        raise Ignored(f"unknown event type {ctx.event.type!r}")
    if ctx.changed or ctx.maintenance:
        await changelog.record(
            ctx.conn, ctx.now, allocations=ctx.changed, maintenance=ctx.maintenance
        )
    return outcome


# Reading the payload and the rows it names.


def _int(ctx: FactContext, key: str) -> int:
    value = ctx.payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise Ignored(f"payload.{key} is not a door number: {value!r}")
    return value


def _allocation_id(ctx: FactContext, value: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Ignored(f"not an allocation id: {value!r}") from None


async def _lock_allocation(ctx: FactContext, value: object) -> DictRow:
    allocation_id = _allocation_id(ctx, value)
    cur = await ctx.conn.execute(
        "SELECT a.*, d.door_number, l.timezone, l.address FROM allocations a"
        " JOIN doors d ON d.door_id = a.door_id"
        " JOIN locations l ON l.location_id = a.location_id"
        " WHERE a.allocation_id = %s AND a.location_id = %s FOR UPDATE OF a",
        (allocation_id, ctx.location_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise Ignored(f"no allocation {allocation_id} at {ctx.location_id}")
    return row


async def _lock_door(ctx: FactContext, number: int) -> DictRow:
    cur = await ctx.conn.execute(
        "SELECT * FROM doors WHERE location_id = %s AND door_number = %s FOR UPDATE",
        (ctx.location_id, number),
    )
    row = await cur.fetchone()
    if row is None:
        raise Ignored(f"no door {number} at {ctx.location_id}")
    return row


async def _holder(ctx: FactContext, door: DictRow, other_than: uuid.UUID | None) -> DictRow | None:
    """The live allocation holding ``door`` in the cloud's view, other than ``other_than``."""
    cur = await ctx.conn.execute(
        "SELECT * FROM allocations WHERE door_id = %s AND status IN ('reserved', 'deposited',"
        " 'expired') AND allocation_id IS DISTINCT FROM %s FOR UPDATE",
        (door["door_id"], other_than),
    )
    return await cur.fetchone()


async def _raise_alert(ctx: FactContext, kind: str | None = None, **detail: Any) -> None:
    door = ctx.payload.get("door")
    await ctx.conn.execute(
        "INSERT INTO fleet_alerts (location_id, kiosk_id, kind, door_number, detail, raised_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (
            ctx.location_id,
            ctx.kiosk_id,
            kind or ctx.event.type,
            door if isinstance(door, int) and not isinstance(door, bool) else None,
            json.dumps({**ctx.payload, **detail, "event_id": str(ctx.event.event_id)}),
            ctx.now,
        ),
    )


# Door authority.


async def _move_reservation_away(ctx: FactContext, holder: DictRow, door: DictRow) -> str:
    """Moves a reservation off ``door`` to another free door, or cancels it (``no_door``).

    Returns:
        What happened, for the event's record.
    """
    ctx.changed.append(holder["allocation_id"])
    replacement = await claim_free_door(
        ctx.conn, ctx.location_id, Size(holder["size"]), ctx.now, exclude_door_id=door["door_id"]
    )
    if replacement is not None:
        await ctx.conn.execute(
            "UPDATE allocations SET door_id = %s, updated_at = %s WHERE allocation_id = %s",
            (replacement["door_id"], ctx.now, holder["allocation_id"]),
        )
        return f"reservation {holder['allocation_id']} moved to door {replacement['door_number']}"
    await finish_allocations(ctx.conn, [holder], "cancelled", ctx.now, cancel_reason=NO_DOOR)
    await notifications.enqueue(
        ctx.conn,
        allocation_id=holder["allocation_id"],
        carrier_id=holder["carrier_id"],
        customer_id=holder["customer_id"],
        kind="cancelled",
        payload={
            "allocation_id": str(holder["allocation_id"]),
            "package_id": holder["package_id"],
            "order_id": holder["order_id"],
            "location_id": ctx.location_id,
            "reason": NO_DOOR,
        },
        due_at=ctx.now,
        now=ctx.now,
    )
    return f"reservation {holder['allocation_id']} cancelled: no other free door"


async def _swap(ctx: FactContext, allocation: DictRow, holder: DictRow, door: DictRow) -> str:
    """The allocation takes ``door``; the reservation there takes the allocation's old door.

    The unique index allows one live allocation per door after every row written, so the
    reservation steps out of the live statuses for the moment of the swap (inside the
    transaction: nobody sees it).
    """
    ctx.changed.append(holder["allocation_id"])
    await ctx.conn.execute(
        "UPDATE allocations SET status = 'cancelled' WHERE allocation_id = %s",
        (holder["allocation_id"],),
    )
    await ctx.conn.execute(
        "UPDATE allocations SET door_id = %s, updated_at = %s WHERE allocation_id = %s",
        (door["door_id"], ctx.now, allocation["allocation_id"]),
    )
    await ctx.conn.execute(
        "UPDATE allocations SET door_id = %s, status = 'reserved', updated_at = %s"
        " WHERE allocation_id = %s",
        (allocation["door_id"], ctx.now, holder["allocation_id"]),
    )
    await set_door_status(ctx.conn, [allocation["door_id"]], "reserved", ctx.now)
    return (
        f"door {allocation['door_number']} -> {door['door_number']}; reservation "
        f"{holder['allocation_id']} moved to door {allocation['door_number']}"
    )


async def _give_door(ctx: FactContext, allocation: DictRow, door: DictRow) -> str | None:
    """Puts ``allocation`` in ``door``, as the kiosk reported (door authority rule 4).

    A reservation holding that door in the cloud's view moves to another free door; with none
    free, to the door the allocation leaves; with none at all, it is cancelled (``no_door``) and
    its carrier told. The allocation's previous door is freed if it still held it. The new
    door's own status is left to the caller.

    Raises:
        Ignored: the cloud believes another parcel is in that door.
    """
    live = allocation["status"] in ("reserved", "deposited", "expired")
    if live and allocation["door_id"] == door["door_id"]:
        return None  # it holds the door, so nobody else does (one live allocation per door)
    holder = await _holder(ctx, door, allocation["allocation_id"])
    if holder is not None and holder["status"] != "reserved":
        await _raise_alert(
            ctx,
            "door_conflict",
            door=door["door_number"],
            cloud_allocation_id=str(holder["allocation_id"]),
            cloud_status=holder["status"],
        )
        raise Ignored(
            f"door {door['door_number']} holds parcel {holder['allocation_id']} "
            f"({holder['status']}) in the cloud's view"
        )
    notes = []
    if holder is not None:
        # Claimed while the allocation's old door is still taken, so that door is the last
        # resort (a swap), not the first choice.
        replacement = await claim_free_door(
            ctx.conn,
            ctx.location_id,
            Size(holder["size"]),
            ctx.now,
            exclude_door_id=door["door_id"],
        )
        if replacement is not None:
            ctx.changed.append(holder["allocation_id"])
            await ctx.conn.execute(
                "UPDATE allocations SET door_id = %s, updated_at = %s WHERE allocation_id = %s",
                (replacement["door_id"], ctx.now, holder["allocation_id"]),
            )
            notes.append(
                f"reservation {holder['allocation_id']} moved to door {replacement['door_number']}"
            )
        elif live:
            return await _swap(ctx, allocation, holder, door)
        else:
            notes.append(await _move_reservation_away(ctx, holder, door))
    if live:
        # Its old door is free now (unless that door went into maintenance meanwhile).
        await ctx.conn.execute(
            "UPDATE doors SET status = 'available', status_changed_at = %s"
            " WHERE door_id = %s AND status <> 'maintenance'",
            (ctx.now, allocation["door_id"]),
        )
    if allocation["door_id"] != door["door_id"]:
        await ctx.conn.execute(
            "UPDATE allocations SET door_id = %s, updated_at = %s WHERE allocation_id = %s",
            (door["door_id"], ctx.now, allocation["allocation_id"]),
        )
        notes.insert(0, f"door {allocation['door_number']} -> {door['door_number']}")
    return "; ".join(notes) or None


# The handlers.


async def _parcel_deposited(ctx: FactContext) -> Outcome:
    allocation = await _lock_allocation(ctx, ctx.payload.get("allocation_id"))
    door = await _lock_door(ctx, _int(ctx, "door"))
    status = allocation["status"]
    if status in ("picked_up", "collected"):
        raise Ignored(f"allocation {allocation['allocation_id']} is already {status}")
    moved = await _give_door(ctx, allocation, door)
    if status in ("deposited", "expired"):
        if moved is None:
            return Outcome("unchanged", f"already {status} in door {door['door_number']}")
        await set_door_status(ctx.conn, [door["door_id"]], "occupied", ctx.now)
        ctx.changed.append(allocation["allocation_id"])
        return Outcome("applied", f"parcel in another door: {moved}")
    is_return = allocation["kind"] == "return"
    at = ctx.happened_at
    code = await _deposit_code(ctx, allocation, at, is_return)
    cur = await ctx.conn.execute(
        """
        UPDATE allocations
        SET status = 'deposited', deposited_at = %(at)s, driver_id = %(driver)s,
            pickup_expires_at = %(expires)s, pickup_code_id = %(code)s, updated_at = %(now)s
        WHERE allocation_id = %(id)s
        RETURNING *
        """,
        {
            "at": at,
            "driver": None if is_return else _text(ctx.payload.get("driver_id")),
            "expires": None if is_return else at + ctx.pickup_window,
            "code": code["pickup_code_id"],
            "now": ctx.now,
            "id": allocation["allocation_id"],
        },
    )
    updated = await cur.fetchone()
    assert updated is not None
    await set_door_status(ctx.conn, [door["door_id"]], "occupied", ctx.now)
    if not is_return:
        merged = {**allocation, **updated, "door_number": door["door_number"]}
        await notifications.schedule_after_deposit(
            ctx.conn,
            allocation=merged,
            payload=notification_payload(merged, code["code"]),
            timezone=allocation["timezone"],
            now=ctx.now,
        )
    ctx.changed.append(allocation["allocation_id"])
    notes = [f"deposited (was {status})"] + ([moved] if moved else [])
    return Outcome("applied", "; ".join(notes))


async def _deposit_code(
    ctx: FactContext, allocation: DictRow, at: datetime, is_return: bool
) -> DictRow:
    """The code of a parcel being deposited: its own, or (retired by a cancel) a live one."""
    cur = await ctx.conn.execute(
        "SELECT * FROM pickup_codes WHERE pickup_code_id = %s FOR UPDATE",
        (allocation["pickup_code_id"],),
    )
    code = await cur.fetchone()
    assert code is not None
    if is_return:
        # The customer typed the return code to open the door: it is spent.
        await ctx.conn.execute(
            "UPDATE pickup_codes SET used_at = coalesce(used_at, %s) WHERE pickup_code_id = %s",
            (at, code["pickup_code_id"]),
        )
        return code
    if code["used_at"] is None and code["retired_at"] is None:
        return code
    # A cancelled reservation's code was retired (or spent meanwhile): the parcel the kiosk
    # holds needs a live code for its customer.
    return await pickup_code_for(
        ctx.conn,
        location_id=ctx.location_id,
        carrier_id=allocation["carrier_id"],
        customer_id=allocation["customer_id"],
        now=ctx.now,
    )


def _text(value: object) -> str | None:
    return value[:128] if isinstance(value, str) and value else None


async def _door_substituted(ctx: FactContext) -> Outcome:
    allocation = await _lock_allocation(ctx, ctx.payload.get("allocation_id"))
    door = await _lock_door(ctx, _int(ctx, "door"))
    if allocation["status"] != "reserved":
        if allocation["door_id"] == door["door_id"]:
            return Outcome("unchanged")
        raise Ignored(
            f"allocation {allocation['allocation_id']} is {allocation['status']}: "
            "only its deposit can place it now"
        )
    moved = await _give_door(ctx, allocation, door)
    if moved is None:
        return Outcome("unchanged")
    await set_door_status(ctx.conn, [door["door_id"]], "reserved", ctx.now)
    ctx.changed.append(allocation["allocation_id"])
    return Outcome("applied", moved)


async def _proposed_door_unavailable(ctx: FactContext) -> Outcome:
    allocation = await _lock_allocation(ctx, ctx.payload.get("allocation_id"))
    proposed = _int(ctx, "proposed_door")
    if allocation["status"] != "reserved" or allocation["door_number"] != proposed:
        return Outcome("unchanged", "the allocation no longer holds that door")
    replacement = await claim_free_door(
        ctx.conn,
        ctx.location_id,
        Size(allocation["size"]),
        ctx.now,
        exclude_door_id=allocation["door_id"],
    )
    if replacement is None:
        return Outcome("unchanged", "no other free door: the kiosk chooses one at drop-off")
    await ctx.conn.execute(
        "UPDATE allocations SET door_id = %s, updated_at = %s WHERE allocation_id = %s",
        (replacement["door_id"], ctx.now, allocation["allocation_id"]),
    )
    await ctx.conn.execute(
        "UPDATE doors SET status = 'available', status_changed_at = %s"
        " WHERE door_id = %s AND status = 'reserved'",
        (ctx.now, allocation["door_id"]),
    )
    ctx.changed.append(allocation["allocation_id"])
    reason = ctx.payload.get("reason")
    return Outcome(
        "applied", f"proposed door {replacement['door_number']} instead of {proposed} ({reason})"
    )


async def _finish(ctx: FactContext, target: str, allowed: tuple[str, ...]) -> Outcome:
    allocation = await _lock_allocation(ctx, ctx.payload.get("allocation_id"))
    status = allocation["status"]
    if status == target:
        return Outcome("unchanged")
    if status not in allowed:
        raise Ignored(f"allocation {allocation['allocation_id']} is {status}, not {target}")
    await finish_allocations(ctx.conn, [allocation], target, ctx.happened_at)
    await ctx.conn.execute(
        "UPDATE allocations SET updated_at = %s WHERE allocation_id = %s",
        (ctx.now, allocation["allocation_id"]),
    )
    ctx.changed.append(allocation["allocation_id"])
    return Outcome("applied", f"{status} -> {target}")


async def _parcel_picked_up(ctx: FactContext) -> Outcome:
    # From expired too: the parcel was taken out, whatever the cloud decided meanwhile.
    # finish_allocations cancels the pending messages, an 'expired' notice included.
    return await _finish(ctx, "picked_up", ("deposited", "expired"))


async def _parcel_collected(ctx: FactContext) -> Outcome:
    return await _finish(ctx, "collected", ("deposited", "expired"))


async def _door_maintenance(ctx: FactContext) -> Outcome:
    door = await _lock_door(ctx, _int(ctx, "door"))
    on = ctx.payload.get("on")
    if not isinstance(on, bool):
        raise Ignored(f"payload.on is not true or false: {on!r}")
    reason = _text(ctx.payload.get("reason")) or "reported at the kiosk"
    note = changelog.MaintenanceNote(ctx.location_id, door["door_number"], on, reason)
    if not on:
        if door["status"] != "maintenance":
            return Outcome("unchanged")
        await ctx.conn.execute(
            "UPDATE doors SET status = 'available', maintenance_reason = NULL,"
            " status_changed_at = %s WHERE door_id = %s",
            (ctx.now, door["door_id"]),
        )
        ctx.maintenance.append(note)
        return Outcome("applied", "back in service")
    if door["status"] == "maintenance":
        return Outcome("unchanged")
    detail = None
    if door["status"] in ("occupied", "awaiting_collection"):
        holder = await _holder(ctx, door, None)
        await _raise_alert(ctx, "door_conflict", door=door["door_number"])
        raise Ignored(
            f"door {door['door_number']} holds parcel "
            f"{None if holder is None else holder['allocation_id']} in the cloud's view"
        )
    if door["status"] == "reserved":
        holder = await _holder(ctx, door, None)
        if holder is not None:
            detail = await _move_reservation_away(ctx, holder, door)
    await ctx.conn.execute(
        "UPDATE doors SET status = 'maintenance', maintenance_reason = %s,"
        " status_changed_at = %s WHERE door_id = %s",
        (reason, ctx.now, door["door_id"]),
    )
    ctx.maintenance.append(note)
    return Outcome("applied", detail)


async def _code_used(ctx: FactContext) -> Outcome:
    ids = ctx.payload.get("allocation_ids")
    if not isinstance(ids, list) or not ids:
        raise Ignored("payload.allocation_ids is not a list of allocation ids")
    opened = [await _lock_allocation(ctx, value) for value in ids]
    spent = 0
    for code_id in sorted({row["pickup_code_id"] for row in opened}):
        cur = await ctx.conn.execute(
            "UPDATE pickup_codes SET used_at = %s WHERE pickup_code_id = %s AND used_at IS NULL"
            " RETURNING *",
            (ctx.happened_at, code_id),
        )
        code = await cur.fetchone()
        if code is None:
            continue
        spent += 1
        if code["kind"] != "pickup":
            continue
        # As at the API's pickup: parcels still on their way leave the spent code.
        cur = await ctx.conn.execute(
            "SELECT allocation_id FROM allocations WHERE pickup_code_id = %s"
            " AND status = 'reserved' AND NOT (allocation_id = ANY(%s)) FOR UPDATE",
            (code_id, [row["allocation_id"] for row in opened]),
        )
        coming = [row["allocation_id"] for row in await cur.fetchall()]
        if coming:
            fresh = await issue_code(
                ctx.conn,
                location_id=ctx.location_id,
                carrier_id=code["carrier_id"],
                customer_id=code["customer_id"],
                kind="pickup",
                now=ctx.now,
            )
            await ctx.conn.execute(
                "UPDATE allocations SET pickup_code_id = %s, updated_at = %s"
                " WHERE allocation_id = ANY(%s)",
                (fresh["pickup_code_id"], ctx.now, coming),
            )
            ctx.changed.extend(coming)
    return Outcome("applied", f"{spent} code(s) spent") if spent else Outcome("unchanged")


_HANDLERS: dict[str, Callable[[FactContext], Awaitable[Outcome]]] = {
    "parcel_deposited": _parcel_deposited,
    "return_deposited": _parcel_deposited,
    "door_substituted": _door_substituted,
    "proposed_door_unavailable": _proposed_door_unavailable,
    "parcel_picked_up": _parcel_picked_up,
    "parcel_collected": _parcel_collected,
    "door_maintenance": _door_maintenance,
    "code_used": _code_used,
}
