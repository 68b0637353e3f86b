"""What each kiosk event changes in the cloud: physical facts win (``docs/protocol.md``).

`apply_fact` runs inside the event's transaction (`cloud.sync.events`), which also advances the
kiosk's cursor, in a unit of its own (`cloud.store.transaction`). This module only resolves door
authority; what changes a parcel is the operation the API uses too (`cloud.parcels`): deposit,
pick up, collect, cancel, spend a code. Their moves are checked against the shared transition
tables for physical facts (``FACT_*`` in `shared.states`), and the unit logs every allocation or
door changed, so the kiosk (and any other kiosk of the location) learns the cloud's new view.

Door authority: the kiosk owns the physical doors. The door a kiosk reports is applied as a fact;
if another allocation held that door in the cloud's view, a reservation is moved to another free
door (or, with none left, cancelled with reason ``no_door`` and its carrier told), see
`_give_door`. A parcel the cloud believes is in that door is a contradiction between two
parcels: nothing is moved, the event is recorded as ignored and an alert raised for operators.

Events arrive validated (`shared.events`: one typed model per type, ``cloud.sync.events``
refuses the others); the handlers read their typed fields. An event that names an unknown
allocation or door, or that contradicts what the cloud knows for certain (a parcel picked up
twice), raises `Ignored`: the event's changes are rolled back, and it is recorded with the reason
and acknowledged, so it never blocks the kiosk's later events. An `Ignored` that carries an alert
(a door conflict) raises it after the rollback, so the operators see it.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cloud.parcels import finish, pickup
from cloud.parcels.deposit import deposit
from cloud.store import (
    alerts,
    allocations,
    carrier_events,
    code_secrets,
    codes,
    doors,
    fleet_health,
    kiosk_keys,
)
from cloud.store.database import Conn
from cloud.store.records import Allocation, AllocationKind, Door, MaintenanceNote
from cloud.store.transaction import Unit, unit
from shared.events import (
    CodeGivenBack,
    CodeSecretRotated,
    CodeUsed,
    DoorCommandFailed,
    DoorMaintenance,
    DoorOpenNotDetected,
    DoorSubstituted,
    EventType,
    KioskEvent,
    ParcelCollected,
    ParcelDeposited,
    ParcelPickedUp,
    ProposedDoorUnavailable,
    ReturnDeposited,
    SigningKeyRotated,
)
from shared.key_rotation import check_proof
from shared.protocol import EventRecord
from shared.signing import SigningError
from shared.states import (
    FACT_ALLOCATION_TRANSITIONS,
    FACT_DOOR_TRANSITIONS,
    AllocationStatus,
    DoorStatus,
)

log = logging.getLogger(__name__)

# Events an operator should see (fleet_alerts), besides being recorded.
ALERT_EVENTS = frozenset(
    {
        EventType.DOOR_TAMPERED,
        EventType.DOOR_LEFT_OPEN,
        EventType.OPERATION_ABANDONED,
        EventType.DOOR_COMMAND_FAILED,
        EventType.DOOR_OPEN_NOT_DETECTED,
        EventType.KEYPAD_LOCKED,
        EventType.REMOTE_OPEN_REFUSED,
        # A change of the cloud's log the kiosk refused for good: the kiosk's own events carry
        # the physical facts that win (deposit after cancel, pickup after expiry); an operator
        # sees what was refused and why.
        EventType.CLOUD_CHANGE_REFUSED,
        EventType.DOOR_BANK_UNAVAILABLE,
        EventType.STAFF_PIN_LOCKED,
        EventType.COURIER_CODE_LOCKED,
    }
)
# Events kept for the audit trail only: they change nothing the cloud keeps.
AUDIT_EVENTS = frozenset(
    {
        EventType.DOOR_OPENED,
        EventType.DOOR_CLOSED,
        EventType.CODE_RELEASED,
        EventType.PARCEL_EXPIRED,
        EventType.DOOR_BANK_RESTORED,
    }
)

NO_DOOR = finish.NO_DOOR
DEFAULT_KEY_GRACE = timedelta(hours=72)
"""LOCKER_KIOSK_KEY_GRACE_HOURS's default: a pickup code's life, as `rotate-kiosk-key`'s."""
KEY_ROTATION_REFUSED = "key_rotation_refused"
"""The alert of a ``signing_key_rotated`` whose proof does not verify."""
_LIVE = (AllocationStatus.RESERVED, AllocationStatus.DEPOSITED, AllocationStatus.EXPIRED)


class Ignored(Exception):
    """The event cannot be applied; it is recorded with this reason and acknowledged.

    Args:
        reason: Why, for the event's record.
        alert: The kind of alert to raise (after the event's changes are rolled back), and its
            detail; None for none.
    """

    def __init__(self, reason: str, alert: tuple[str, dict[str, Any]] | None = None) -> None:
        super().__init__(reason)
        self.alert = alert


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
    fact: KioskEvent  # the event's typed payload
    now: datetime
    pickup_window: timedelta
    # How long a kiosk's previous signing key is still accepted after an over-the-air rotation.
    key_grace: timedelta = field(default_factory=lambda: DEFAULT_KEY_GRACE)

    @property
    def payload(self) -> dict[str, Any]:
        return self.event.payload

    @property
    def happened_at(self) -> datetime:
        """When the kiosk saw it (never later than now: a kiosk clock ahead is not believed)."""
        return min(self.event.created_at, self.now)


async def apply_fact(ctx: FactContext) -> Outcome:
    """Applies one kiosk event in the caller's transaction, in a unit (a savepoint) of its own.

    Raises:
        Ignored: the event names something unknown or contradicts a certain fact (its changes
            rolled back, its alert, if any, raised).
    """
    try:
        async with unit(ctx.conn, ctx.now) as work:
            return await _apply(ctx, work)
    except Ignored as why:
        if why.alert is not None:
            kind, detail = why.alert
            await _raise_alert(ctx, kind, **detail)
        raise


async def _drop_off_fault(work: Unit, fact: KioskEvent) -> None:
    """issue 10: ``parcel.door_fault.v1`` for the carrier when a door failed during its parcel's
    drop-off (the door did not open, or the driver reported a problem with it)."""
    allocation_id: str | None = None
    fault, door = "", 0
    if isinstance(fact, DoorOpenNotDetected | DoorCommandFailed) and fact.purpose in (
        "drop_off",
        "return",
    ):
        allocation_id, fault, door = fact.allocation_id, fact.type.value, fact.door
    elif isinstance(fact, DoorMaintenance) and fact.on and fact.detached_allocation_id:
        allocation_id, fault, door = (
            fact.detached_allocation_id,
            fact.reason or "reported",
            fact.door,
        )
    if allocation_id is None:
        return
    try:
        parsed = uuid.UUID(allocation_id)
    except ValueError:
        return  # not one of the cloud's allocations; the event's own handling says so
    await carrier_events.door_fault(work, parsed, door_number=door, fault=fault[:200])


async def _apply(ctx: FactContext, work: Unit) -> Outcome:
    await _drop_off_fault(work, ctx.fact)
    match ctx.fact:
        case ParcelDeposited() | ReturnDeposited() as fact:
            return await _parcel_deposited(ctx, work, fact)
        case DoorSubstituted() as fact:
            return await _door_substituted(ctx, work, fact)
        case ProposedDoorUnavailable() as fact:
            return await _proposed_door_unavailable(ctx, work, fact)
        case ParcelPickedUp() as fact:
            return await _finish(ctx, work, fact.allocation_id, AllocationStatus.PICKED_UP)
        case ParcelCollected() as fact:
            return await _finish(ctx, work, fact.allocation_id, AllocationStatus.COLLECTED)
        case DoorMaintenance() as fact:
            return await _door_maintenance(ctx, work, fact)
        case CodeUsed() as fact:
            return await _code_used(ctx, work, fact)
        case CodeGivenBack() as fact:
            return await _code_given_back(ctx, work, fact)
        case CodeSecretRotated() as fact:
            return await _code_secret_rotated(ctx, fact)
        case SigningKeyRotated() as fact:
            return await _signing_key_rotated(ctx, fact)
    if ctx.fact.type in ALERT_EVENTS:
        await _raise_alert(ctx)
        return Outcome("recorded", "alert raised")
    if ctx.fact.type is EventType.DOOR_CLOSED:
        # A door seen shut ends its "left open" alert (cloud.fleet_health).
        await fleet_health.end_door_alerts(
            ctx.conn,
            location_id=ctx.location_id,
            door_number=ctx.payload["door"],
            kinds=(EventType.DOOR_LEFT_OPEN.value,),
            now=ctx.now,
            resolution="door closed",
        )
    if ctx.fact.type is EventType.DOOR_BANK_RESTORED:
        # The boards answer again: the kiosk's "unavailable" alert ends (cloud.fleet_health).
        await fleet_health.end_kiosk_alerts(
            ctx.conn,
            kiosk_id=ctx.kiosk_id,
            kinds=(EventType.DOOR_BANK_UNAVAILABLE.value,),
            now=ctx.now,
            resolution="boards answering",
        )
    if ctx.fact.type in AUDIT_EVENTS:
        return Outcome("recorded")
    raise Ignored(f"no handler for event type {ctx.fact.type.value!r}")


# Reading the payload and the rows it names.


def _allocation_id(value: str) -> uuid.UUID:
    """The cloud's id of the allocation a kiosk names (the kiosk's ids are the cloud's)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Ignored(f"not an allocation id: {value!r}") from None


async def _lock_allocation(ctx: FactContext, value: str) -> Allocation:
    allocation_id = _allocation_id(value)
    found = await allocations.lock(ctx.conn, allocation_id, ctx.location_id)
    if found is None:
        raise Ignored(f"no allocation {allocation_id} at {ctx.location_id}")
    return found


async def _lock_door(ctx: FactContext, number: int) -> Door:
    door = await doors.lock(ctx.conn, ctx.location_id, number)
    if door is None:
        raise Ignored(f"no door {number} at {ctx.location_id}")
    return door


async def _raise_alert(ctx: FactContext, kind: str | None = None, **detail: Any) -> None:
    door = ctx.payload.get("door")
    await alerts.raise_alert(
        ctx.conn,
        location_id=ctx.location_id,
        kiosk_id=ctx.kiosk_id,
        kind=kind or ctx.event.type,
        door_number=door if isinstance(door, int) and not isinstance(door, bool) else None,
        detail=json.dumps({**ctx.payload, **detail, "event_id": str(ctx.event.event_id)}),
        now=ctx.now,
    )


# Door authority.


async def _move_reservation_away(work: Unit, holder: Allocation, door: Door) -> str:
    """Moves a reservation off ``door`` to another free door, or cancels it (``no_door``).

    Returns:
        What happened, for the event's record.
    """
    replacement = await doors.claim_free(
        work, door.location_id, holder.size, exclude_door_id=door.door_id
    )
    if replacement is not None:
        await allocations.move_to_door(work, [holder.allocation_id], replacement.door_id)
        return f"reservation {holder.allocation_id} moved to door {replacement.door_number}"
    await finish.cancel_for_no_door(work, holder)
    return f"reservation {holder.allocation_id} cancelled: no other free door"


async def _give_door(
    ctx: FactContext, work: Unit, allocation: Allocation, door: Door
) -> str | None:
    """Puts ``allocation`` in ``door``, as the kiosk reported (door authority rule 4).

    A reservation holding that door in the cloud's view moves to another free door; with none
    free, to the door the allocation leaves (a swap); with none at all, it is cancelled
    (``no_door``) and its carrier told. The allocation's previous door is freed if it still held
    it. The new door's own status is left to the caller.

    Raises:
        Ignored: the cloud believes another parcel is in that door.
    """
    live = allocation.status.holds_door
    if live and allocation.door_id == door.door_id:
        return None  # it holds the door, so nobody else does (one live allocation per door)
    holder = await allocations.lock_live_on_door(ctx.conn, door.door_id, allocation.allocation_id)
    if holder is not None and holder.status is not AllocationStatus.RESERVED:
        raise Ignored(
            f"door {door.door_number} holds parcel {holder.allocation_id} "
            f"({holder.status.value}) in the cloud's view",
            alert=(
                "door_conflict",
                {
                    "door": door.door_number,
                    "cloud_allocation_id": str(holder.allocation_id),
                    "cloud_status": holder.status.value,
                },
            ),
        )
    notes = []
    if holder is not None:
        # Claimed while the allocation's old door is still taken, so that door is the last
        # resort (a swap), not the first choice.
        replacement = await doors.claim_free(
            work, ctx.location_id, holder.size, exclude_door_id=door.door_id
        )
        if replacement is not None:
            await allocations.move_to_door(work, [holder.allocation_id], replacement.door_id)
            notes.append(
                f"reservation {holder.allocation_id} moved to door {replacement.door_number}"
            )
        elif live:
            await allocations.swap_doors(work, allocation, holder)
            return (
                f"door {allocation.door_number} -> {door.door_number}; reservation "
                f"{holder.allocation_id} moved to door {allocation.door_number}"
            )
        else:
            notes.append(await _move_reservation_away(work, holder, door))
    if live:
        # Its old door is free now (unless that door went into maintenance meanwhile).
        await doors.set_status(
            work,
            [allocation.door_id],
            DoorStatus.AVAILABLE,
            only_from=(DoorStatus.RESERVED, DoorStatus.OCCUPIED, DoorStatus.AWAITING_COLLECTION),
        )
    if allocation.door_id != door.door_id:
        await allocations.move_to_door(work, [allocation.allocation_id], door.door_id)
        notes.insert(0, f"door {allocation.door_number} -> {door.door_number}")
    return "; ".join(notes) or None


# The handlers.


async def _parcel_deposited(
    ctx: FactContext, work: Unit, fact: ParcelDeposited | ReturnDeposited
) -> Outcome:
    allocation = await _lock_allocation(ctx, fact.allocation_id)
    door = await _lock_door(ctx, fact.door)
    status = allocation.status
    if status in (AllocationStatus.PICKED_UP, AllocationStatus.COLLECTED):
        raise Ignored(f"allocation {allocation.allocation_id} is already {status.value}")
    moved = await _give_door(ctx, work, allocation, door)
    if status in (AllocationStatus.DEPOSITED, AllocationStatus.EXPIRED):
        if moved is None:
            return Outcome("unchanged", f"already {status.value} in door {door.door_number}")
        await doors.set_status(
            work, [door.door_id], DoorStatus.OCCUPIED, table=FACT_DOOR_TRANSITIONS
        )
        return Outcome("applied", f"parcel in another door: {moved}")
    is_return = allocation.kind is AllocationKind.RETURN
    await deposit(
        work,
        allocation,
        at=ctx.happened_at,
        driver_id=None if is_return else (fact.driver_id or None),
        window=ctx.pickup_window,
        door_id=door.door_id,
        table=FACT_ALLOCATION_TRANSITIONS,
        door_table=FACT_DOOR_TRANSITIONS,
    )
    notes = [f"deposited (was {status.value})"] + ([moved] if moved else [])
    return Outcome("applied", "; ".join(notes))


async def _door_substituted(ctx: FactContext, work: Unit, fact: DoorSubstituted) -> Outcome:
    allocation = await _lock_allocation(ctx, fact.allocation_id)
    door = await _lock_door(ctx, fact.door)
    if allocation.status is not AllocationStatus.RESERVED:
        if allocation.door_id == door.door_id:
            return Outcome("unchanged")
        raise Ignored(
            f"allocation {allocation.allocation_id} is {allocation.status.value}: "
            "only its deposit can place it now"
        )
    moved = await _give_door(ctx, work, allocation, door)
    if moved is None:
        return Outcome("unchanged")
    await doors.set_status(work, [door.door_id], DoorStatus.RESERVED)
    return Outcome("applied", moved)


async def _proposed_door_unavailable(
    ctx: FactContext, work: Unit, fact: ProposedDoorUnavailable
) -> Outcome:
    allocation = await _lock_allocation(ctx, fact.allocation_id)
    proposed = fact.proposed_door
    if allocation.status is not AllocationStatus.RESERVED or allocation.door_number != proposed:
        return Outcome("unchanged", "the allocation no longer holds that door")
    replacement = await doors.claim_free(
        work, ctx.location_id, allocation.size, exclude_door_id=allocation.door_id
    )
    if replacement is None:
        return Outcome("unchanged", "no other free door: the kiosk chooses one at drop-off")
    await allocations.move_to_door(work, [allocation.allocation_id], replacement.door_id)
    await doors.set_status(
        work, [allocation.door_id], DoorStatus.AVAILABLE, only_from=(DoorStatus.RESERVED,)
    )
    return Outcome(
        "applied",
        f"proposed door {replacement.door_number} instead of {proposed} ({fact.reason})",
    )


async def _finish(
    ctx: FactContext, work: Unit, allocation_id: str, target: AllocationStatus
) -> Outcome:
    allocation = await _lock_allocation(ctx, allocation_id)
    status = allocation.status
    if status is target:
        return Outcome("unchanged")
    # From expired too: the parcel was taken out, whatever the cloud decided meanwhile; ending
    # it drops the pending messages, an 'expired' notice included.
    if status not in (AllocationStatus.DEPOSITED, AllocationStatus.EXPIRED):
        raise Ignored(
            f"allocation {allocation.allocation_id} is {status.value}, not {target.value}"
        )
    await finish.end(
        work, [allocation], target, at=ctx.happened_at, table=FACT_ALLOCATION_TRANSITIONS
    )
    return Outcome("applied", f"{status.value} -> {target.value}")


async def _door_maintenance(ctx: FactContext, work: Unit, fact: DoorMaintenance) -> Outcome:
    door = await _lock_door(ctx, fact.door)
    reason = (fact.reason or "")[:128] or "reported at the kiosk"
    if not fact.on:
        if door.status is not DoorStatus.MAINTENANCE:
            return Outcome("unchanged")
        await doors.set_status(work, [door.door_id], DoorStatus.AVAILABLE)
        work.maintenance(MaintenanceNote(ctx.location_id, door.door_number, False, reason))
        return Outcome("applied", "back in service")
    if door.status is DoorStatus.MAINTENANCE:
        return Outcome("unchanged")
    detail = None
    if door.status in (DoorStatus.OCCUPIED, DoorStatus.AWAITING_COLLECTION):
        holder = await allocations.lock_live_on_door(ctx.conn, door.door_id)
        raise Ignored(
            f"door {door.door_number} holds parcel "
            f"{None if holder is None else holder.allocation_id} in the cloud's view",
            alert=("door_conflict", {"door": door.door_number}),
        )
    if door.status is DoorStatus.RESERVED:
        holder = await allocations.lock_live_on_door(ctx.conn, door.door_id)
        if holder is not None:
            detail = await _move_reservation_away(work, holder, door)
    await doors.put_in_maintenance(work, door, reason)
    return Outcome("applied", detail)


async def _code_used(ctx: FactContext, work: Unit, fact: CodeUsed) -> Outcome:
    opened = [await _lock_allocation(ctx, value) for value in fact.allocation_ids]
    opened_ids = [a.allocation_id for a in opened]
    spent = 0
    for code_id in sorted({a.pickup_code_id for a in opened}):
        code = await codes.lock(ctx.conn, code_id)
        # As at the API's pickup: parcels still on their way leave the spent code.
        if await pickup.spend(work, code, ctx.happened_at, opened=opened_ids):
            spent += 1
    return Outcome("applied", f"{spent} code(s) spent") if spent else Outcome("unchanged")


async def _code_given_back(ctx: FactContext, work: Unit, fact: CodeGivenBack) -> Outcome:
    """The kiosk spent a pickup code on doors it never pulsed: the code works again for its
    parcels still deposited (the kiosk has made it live already)."""
    parcels = [await _lock_allocation(ctx, value) for value in fact.allocation_ids]
    waiting = [a for a in parcels if a.status is AllocationStatus.DEPOSITED]
    given = 0
    for code_id in sorted({a.pickup_code_id for a in waiting}):
        if await codes.give_back(work, code_id) is not None:
            given += 1
    if not given:
        return Outcome("unchanged", "no spent code of a deposited parcel could be given back")
    work.changed(*(a.allocation_id for a in waiting))
    return Outcome("applied", f"{given} code(s) given back")


async def _code_secret_rotated(ctx: FactContext, fact: CodeSecretRotated) -> Outcome:
    """issue 9: the kiosk made the generation asked of it; new codes are hashed under it.

    A refused answer (no such request, a fingerprint the cloud cannot reproduce) changes
    nothing and raises a ``code_secret_rotation_refused`` alert: codes stay hashed under the
    kiosk's older generation meanwhile, so no code stops working.
    """
    try:
        activated = await code_secrets.activate(
            ctx.conn,
            ctx.kiosk_id,
            fact.generation,
            bytes.fromhex(fact.kiosk_public),
            fact.fingerprint,
            ctx.now,
        )
    except code_secrets.RotationRefused as why:
        raise Ignored(
            str(why), alert=("code_secret_rotation_refused", {"reason": str(why)})
        ) from None
    if not activated:
        return Outcome("unchanged", f"generation {fact.generation} already active")
    log.info("kiosk %s: code secret generation %d active", ctx.kiosk_id, fact.generation)
    return Outcome("applied", f"generation {fact.generation} active")


async def _signing_key_rotated(ctx: FactContext, fact: SigningKeyRotated) -> Outcome:
    """The kiosk's own next key becomes its key; the previous one stays accepted for
    ``key_grace`` (the kiosk signs with it until it sees this event acknowledged, and its
    messages in flight were signed with it). The event arrived signed by the current key (or
    one in its grace): a revoked kiosk's messages are refused before they get here."""
    try:
        check_proof(ctx.kiosk_id, fact.new_public_key, fact.proof)
    except SigningError as error:
        raise Ignored(
            f"new signing key refused: {error}",
            alert=(KEY_ROTATION_REFUSED, {"new_public_key": fact.new_public_key}),
        ) from None
    old = await kiosk_keys.rotate(
        ctx.conn,
        ctx.kiosk_id,
        new_public_key=fact.new_public_key,
        accept_old_until=ctx.now + ctx.key_grace,
        now=ctx.now,
    )
    if old == fact.new_public_key:
        return Outcome("unchanged", "already the kiosk's key")
    log.info(
        "kiosk %s: new signing key %s; the old one is accepted until %s",
        ctx.kiosk_id,
        fact.new_public_key,
        (ctx.now + ctx.key_grace).isoformat(),
    )
    return Outcome("applied", f"signing key rotated; old key accepted for {ctx.key_grace}")
