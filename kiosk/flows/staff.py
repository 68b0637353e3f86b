"""Staff and remote door flows: collection of expired parcels, maintenance, opening a door.

Collection: `open_for_collection` opens every door whose parcel staff should take away (expired
parcels, parcels past their pickup window, customers' returns); `confirm_collected` records each
parcel taken, one by one. A door shut on a parcel staff did not confirm keeps its parcel.

`open_door` is for staff at the kiosk and for an operator's remote open (actor ``remote``): it
opens one door without changing any parcel. Accepting a remote open from the cloud (signature,
freshness, replay) is sync's job; this is what it calls once it has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlite_utils import Database

from kiosk.flows import opening
from kiosk.flows.context import FlowContext
from kiosk.flows.opening import DoorOpening, PendingOpening
from kiosk.flows.refusals import FlowRefused, Refusal
from kiosk.store import allocations, audit, changes, doors, operations, outbox
from kiosk.store.records import Actor, Allocation, OperationState, Purpose
from shared.events import ParcelCollected
from shared.states import AllocationStatus


async def open_for_collection(
    ctx: FlowContext,
    *,
    staff_id: str,
    only: Callable[[Allocation], bool] | None = None,
    actor: Actor = Actor.STAFF,
) -> tuple[DoorOpening, ...]:
    """Opens every door with a parcel to collect (skipping doors in use right now): "collect
    all" of everything due at this location in one go.

    ``only`` narrows it (a courier collects their carrier's parcels their permissions allow:
    `kiosk.flows.courier`), audited under ``actor``.

    Returns:
        One opening per door, by door number (empty when there is nothing to collect).
    """
    pending: list[PendingOpening] = []
    with ctx.store.transaction() as db:
        now = ctx.clock.now()
        for parcel in allocations.collectable(db, now):
            assert parcel.door is not None
            if operations.active_operation(db, parcel.door) is not None:
                continue
            if only is not None and not only(parcel):
                continue
            pending.append(
                opening.begin_opening(
                    ctx,
                    db,
                    door=parcel.door,
                    purpose=Purpose.COLLECTION,
                    actor=actor,
                    allocation_id=parcel.allocation_id,
                    detail=_person(actor, staff_id),
                )
            )
    return tuple([await opening.pulse(ctx, p) for p in pending])


def confirm_collected(
    ctx: FlowContext, allocation_id: str, *, staff_id: str, actor: Actor = Actor.STAFF
) -> Allocation:
    """Records that staff took the parcel out; its door is free once shut.

    A courier's collection (`kiosk.flows.courier`) is audited under actor ``driver`` with their
    ``driver_id``, so that the audit names who took each parcel.

    Raises:
        FlowRefused: NOT_COLLECTABLE for an unknown parcel or one that is not due for
            collection (still within its pickup window, already gone).
    """
    with ctx.store.transaction() as db:
        now = ctx.clock.now()
        parcel = allocations.find_allocation(db, allocation_id)
        due = {a.allocation_id for a in allocations.collectable(db, now)}
        if parcel is None or allocation_id not in due:
            raise FlowRefused(
                Refusal.NOT_COLLECTABLE,
                "This parcel is not due for collection: leave it in its locker.",
            )
        collected = allocations.move(db, allocation_id, AllocationStatus.COLLECTED, now)
        event = ParcelCollected(
            allocation_id=allocation_id,
            door=parcel.door,
            kind=parcel.kind.value,
            staff_id=staff_id,
        )
        outbox.append_event(db, event, now)
        audit.record_entry(
            db,
            now,
            actor,
            "confirm_collected",
            "done",
            door=parcel.door,
            detail={"allocation_id": allocation_id, **_person(actor, staff_id)},
        )
        return collected


def _person(actor: Actor, person_id: str) -> dict[str, str]:
    # The audit detail naming who acted: a courier as the drop-off names its driver
    # (``driver_id``), staff by their staff id.
    return {"driver_id": person_id} if actor is Actor.DRIVER else {"staff_id": person_id}


def set_maintenance(
    ctx: FlowContext, door: int, on: bool, *, reason: str | None, actor: Actor = Actor.STAFF
) -> None:
    """Takes a door out of service (``on``) or puts it back.

    Raises:
        FlowRefused: UNKNOWN_DOOR; DOOR_HAS_PARCEL or DOOR_BUSY when the door cannot leave
            service now (the refusal is audited).
    """
    try:
        result = changes.set_door_maintenance(
            ctx.store, door, on, reason=reason, actor=actor, now=ctx.clock.now()
        )
    except doors.UnknownDoorRecord:
        raise FlowRefused(Refusal.UNKNOWN_DOOR, f"There is no locker {door} here.") from None
    if result.outcome is changes.ApplyOutcome.REFUSED:
        refusal = (
            Refusal.DOOR_BUSY if "in use" in (result.reason or "") else Refusal.DOOR_HAS_PARCEL
        )
        raise FlowRefused(refusal, f"Locker {door} cannot change now: {result.reason}.")


async def open_door(
    ctx: FlowContext, door: int, *, actor: Actor, reason: str, requested_by: str
) -> DoorOpening:
    """Opens one door for staff or a remote operator; no parcel changes hands.

    Staff at a door whose operation is waiting in "door did not open" (``not_detected`` or
    ``failed``: a customer or driver standing at it) re-pulse that operation at once instead of
    being told the door is busy: the retry is audited with the staff member's name, and the
    door's closing settles the waiting person's parcel as theirs would have.

    Raises:
        FlowRefused: UNKNOWN_DOOR, or DOOR_BUSY when the door is in use right now.
    """
    if actor is Actor.STAFF:
        with ctx.store.transaction() as db:
            waiting = operations.active_operation(db, door)
        if waiting is not None and waiting.state in (
            OperationState.NOT_DETECTED,
            OperationState.FAILED,
        ):
            if (down := opening.boards_down_refusal(ctx)) is not None:
                raise down
            return await opening.retry_opening(
                ctx,
                waiting.operation_id,
                Actor.STAFF,
                detail={"reason": reason, "requested_by": requested_by},
            )
    with ctx.store.transaction() as db:
        pending = begin_open_door(
            ctx, db, door, actor=actor, reason=reason, requested_by=requested_by
        )
    return await opening.pulse(ctx, pending)


def begin_open_door(
    ctx: FlowContext,
    db: Database,
    door: int,
    *,
    actor: Actor,
    reason: str,
    requested_by: str,
    detail: Mapping[str, Any] | None = None,
) -> PendingOpening:
    """The first half of `open_door`, in the caller's transaction: commits to opening ``door``.

    For a caller that records something with the decision (sync records a remote command's id);
    it pulses with `opening.pulse` after the commit. Refuses before writing anything.

    Raises:
        FlowRefused: UNKNOWN_DOOR, or DOOR_BUSY when the door is in use right now.
        NotInTransaction: called outside `Store.transaction`.
    """
    try:
        doors.get_door(db, door)
    except doors.UnknownDoorRecord:
        raise FlowRefused(Refusal.UNKNOWN_DOOR, f"There is no locker {door} here.") from None
    return opening.begin_opening(
        ctx,
        db,
        door=door,
        purpose=Purpose.OPEN,
        actor=actor,
        detail={"reason": reason, "requested_by": requested_by, **(detail or {})},
    )
