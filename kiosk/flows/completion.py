"""What a door's opening and closing mean: the physical facts the door monitor and boot
reconciliation record.

- A door seen open under an operation moves it to ``open`` (the monitor may see it before the
  pulse returns; either way it is recorded once).
- A door seen open with no operation is a tamper event: nobody commanded it.
- An open door seen shut completes its operation, and with it the parcel's step: a pickup is
  picked up, a drop-off deposited, a return deposited (for staff to collect). Where the doors have
  occupancy sensors, a reading that contradicts the step wins (physical facts win): a drop-off
  door shut empty stays reserved, a pickup door shut with the parcel still inside keeps it
  deposited (its code stays used: a code opens its doors once).

Every function here writes inside the caller's transaction, with its outbox event.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlite_utils import Database

from kiosk.flows.context import FlowContext
from kiosk.store import allocations, audit, codes, doors, operations, outbox
from kiosk.store.code_hash import code_reference
from kiosk.store.records import (
    Actor,
    AllocationKind,
    DoorOperation,
    OperationState,
    Purpose,
    from_json,
)
from shared.events import (
    CodeGivenBack,
    CodeReleased,
    DoorClosed,
    DoorOpened,
    DoorTampered,
    OperationAbandoned,
    ParcelCollected,
    ParcelDeposited,
    ParcelPickedUp,
    ReturnDeposited,
)
from shared.states import AllocationStatus

log = logging.getLogger(__name__)


def door_seen_open(ctx: FlowContext, db: Database, door: int, now: datetime, how: str) -> None:
    """Records an opening: of its operation if it has one, else a tamper event."""
    operation = operations.active_operation(db, door)
    if operation is None:
        log.warning("door %d opened without a command (tamper, seen by %s)", door, how)
        doors.set_fault(db, door, "opened without a command", now)
        outbox.append_event(db, DoorTampered(door=door, how=how), now)
        audit.record_entry(
            db, now, Actor.KIOSK, "forced_open", "detected", door=door, detail={"how": how}
        )
        return
    if operation.state is OperationState.OPEN:
        return
    operations.transition(db, operation.operation_id, OperationState.OPEN, now)
    doors.set_fault(db, door, None, now)
    for entry in audit.pending_entries(db, operation.operation_id):
        audit.finish_entry(db, entry.audit_id, "opened", now, {"seen_by": how})
    opened = DoorOpened(
        operation_id=operation.operation_id,
        door=door,
        purpose=operation.purpose.value,
        actor=operation.actor.value,
        allocation_id=operation.allocation_id,
        attempt=operation.attempts,
        detail=how,
    )
    outbox.append_event(db, opened, now)


def door_seen_shut(
    ctx: FlowContext, db: Database, door: int, occupied: bool | None, now: datetime
) -> DoorOperation | None:
    """Records a closing and completes the door's open operation, if it has one.

    Returns:
        The operation completed, or None.
    """
    operation = operations.active_operation(db, door)
    closed = DoorClosed(
        door=door,
        occupied=occupied,
        operation_id=None if operation is None else operation.operation_id,
    )
    outbox.append_event(db, closed, now)
    if operation is None or operation.state is not OperationState.OPEN:
        return None
    outcome = _complete(ctx, db, operation, occupied, now)
    operations.transition(
        db, operation.operation_id, OperationState.COMPLETED, now, outcome=outcome
    )
    if operation.purpose is Purpose.PICKUP:
        # Another door of its code may have been abandoned unreached while this one was open.
        give_back_pickup_code(db, operation, "another door of the code shut", now)
    audit.record_entry(
        db,
        now,
        Actor.KIOSK,
        "door_closed",
        outcome,
        door=door,
        operation_id=operation.operation_id,
        detail={"purpose": operation.purpose.value, "occupied": occupied},
    )
    return operations.get_operation(db, operation.operation_id)


def compartment_settles(operation: DoorOperation, occupied: bool | None) -> bool:
    """Whether an occupancy reading proves the exchange happened behind a door not seen open.

    The one rule for a door that opened but was not seen open (a broken lock sensor, a door
    opened and shut between polls, a crash): where the compartment has an occupancy sensor, a
    pickup compartment read empty was picked up, a drop-off or return compartment read full was
    deposited. The same rule applies while the kiosk runs (`settle_unseen`) and at boot.
    """
    if occupied is None:
        return False
    if operation.purpose is Purpose.PICKUP:
        return not occupied
    if operation.purpose in (Purpose.DROP_OFF, Purpose.RETURN):
        return occupied
    return False


def settle_unseen(
    ctx: FlowContext,
    db: Database,
    operation: DoorOperation,
    occupied: bool | None,
    now: datetime,
    how: str,
) -> bool:
    """Completes an operation whose door was not seen open, when its compartment proves the
    exchange (`compartment_settles`) and its door reads shut now.

    Returns:
        Whether the operation was completed.
    """
    if operation.state not in (
        OperationState.UNLOCKING,
        OperationState.NOT_DETECTED,
        OperationState.FAILED,
    ) or not compartment_settles(operation, occupied):
        return False
    door_seen_open(ctx, db, operation.door, now, how)
    door_seen_shut(ctx, db, operation.door, occupied, now)
    return True


def abandon(db: Database, operation: DoorOperation, outcome: str, now: datetime) -> None:
    """Gives up an operation whose door never opened (or whose result is lost).

    A return's code is released (it opens a door to put something in, so a second use loses
    nothing). A pickup code is given back (``code_given_back``) only when the operation never
    reached its door (`DoorOperation.never_reached_door`: its pulse never got the bus, or could
    not be delivered) and no other operation of the code is still under way; a pickup code
    whose pulse was delivered stays used: a door whose sensor saw nothing may still have
    opened, and a code opens its doors once (invariant 4). The customer of such a parcel gets
    a new code from the carrier.
    """
    stored = outcome
    if operation.purpose is Purpose.PICKUP and operation.never_reached_door:
        stored += NEVER_REACHED  # kept with the operation: the code may be given back later
    operations.transition(db, operation.operation_id, OperationState.ABANDONED, now, outcome=stored)
    for entry in audit.pending_entries(db, operation.operation_id):
        audit.finish_entry(db, entry.audit_id, outcome, now)
    abandoned = OperationAbandoned(
        operation_id=operation.operation_id, door=operation.door, reason=outcome
    )
    outbox.append_event(db, abandoned, now)
    if operation.purpose is Purpose.RETURN:
        _release_return_code(db, operation, outcome, now)
    log.warning(
        "door %d: operation %s abandoned (%s)", operation.door, operation.operation_id, outcome
    )
    if operation.purpose is Purpose.PICKUP:
        give_back_pickup_code(db, operation, outcome, now)


NEVER_REACHED = " (never reached its door)"
"""Ends the outcome of an abandoned pickup operation whose pulse never reached its door."""


def give_back_pickup_code(
    db: Database, operation: DoorOperation, reason: str, now: datetime
) -> None:
    """Gives the operation's pickup code back when no pulse of it reached a parcel still waiting.

    Called whenever a pickup operation ends (abandoned, or completed: a two-parcel code whose
    second door never got its pulse is given back once the first door has shut). The code is
    given back only when none of its operations is still under way, one of them never reached
    its door, and every parcel the code would open again has only such operations: a parcel
    whose door did open (shut with the parcel inside, say) keeps the code spent.
    """
    code_id = operation.code_id
    if code_id is None or codes.get_code(db, code_id).used_at is None:
        return
    ops = operations.operations_for_code(db, code_id)
    if any(other.state.is_active for other in ops):
        return  # another door of the code may still open; decide when it has ended
    never = {op.operation_id for op in ops if (op.outcome or "").endswith(NEVER_REACHED)}
    if not never:
        return
    waiting = [
        parcel.allocation_id
        for parcel in allocations.allocations_with_code(db, code_id)
        if parcel.kind is AllocationKind.DELIVERY and parcel.status is AllocationStatus.DEPOSITED
    ]
    reached = {op.allocation_id for op in ops if op.operation_id not in never}
    if not waiting or reached & set(waiting) or not codes.release(db, code_id):
        return
    code_ref = code_reference(codes.get_code(db, code_id).code_hash)
    why = reason if reason.endswith(NEVER_REACHED) else reason + NEVER_REACHED
    event = CodeGivenBack(code_ref=code_ref, allocation_ids=waiting, reason=why)
    outbox.append_event(db, event, now)
    for unreached in (op for op in ops if op.operation_id in never):
        # One entry per operation that never reached its door: what made giving it back safe.
        audit.record_entry(
            db,
            now,
            Actor.KIOSK,
            "code_given_back",
            "done",
            door=unreached.door,
            operation_id=unreached.operation_id,
            detail={"code_ref": code_ref, "allocation_ids": waiting, "reason": why},
        )
    log.info("pickup code given back for %s (%s)", ", ".join(waiting), why)


def _complete(
    ctx: FlowContext, db: Database, operation: DoorOperation, occupied: bool | None, now: datetime
) -> str:
    parcel = (
        None
        if operation.allocation_id is None
        else allocations.find_allocation(db, operation.allocation_id)
    )
    if parcel is None or operation.purpose is Purpose.OPEN:
        return "closed"
    allocation_id, door = parcel.allocation_id, operation.door
    if operation.purpose is Purpose.PICKUP:
        if parcel.status not in (AllocationStatus.DEPOSITED, AllocationStatus.EXPIRED):
            return f"closed; parcel already {parcel.status}"
        if occupied is True:
            # The code has opened its door: it stays used; the carrier issues a new one.
            return "closed with the parcel still inside"
        allocations.move(db, parcel.allocation_id, AllocationStatus.PICKED_UP, now)
        outbox.append_event(db, ParcelPickedUp(allocation_id=allocation_id, door=door), now)
        return "picked up"
    if operation.purpose in (Purpose.DROP_OFF, Purpose.RETURN):
        if parcel.status is not AllocationStatus.RESERVED:
            return f"closed; parcel already {parcel.status}"
        if occupied is False:
            if operation.purpose is Purpose.RETURN:
                _release_return_code(db, operation, "door shut empty", now)
            return "closed empty"
        pickup_expires = now + ctx.rules.pickup_window
        allocations.move(
            db,
            parcel.allocation_id,
            AllocationStatus.DEPOSITED,
            now,
            pickup_expires_at=pickup_expires if parcel.kind is AllocationKind.DELIVERY else None,
        )
        deposited = allocations.get_allocation(db, parcel.allocation_id)
        event = ReturnDeposited if operation.purpose is Purpose.RETURN else ParcelDeposited
        payload = event(
            allocation_id=allocation_id,
            door=door,
            barcode=parcel.barcode,
            driver_id=_driver(db, operation),
            pickup_expires_at=deposited.pickup_expires_at,
        )
        outbox.append_event(db, payload, now)
        return "deposited"
    # Collection: staff confirm each parcel; an empty compartment is proof enough.
    if parcel.status.holds_door and occupied is False:
        allocations.move(db, parcel.allocation_id, AllocationStatus.COLLECTED, now)
        collected = ParcelCollected(allocation_id=allocation_id, door=door, kind=parcel.kind.value)
        outbox.append_event(db, collected, now)
        return "collected (compartment empty)"
    return "closed" if not parcel.status.holds_door else "closed; parcel not confirmed collected"


def _release_return_code(
    db: Database, operation: DoorOperation, reason: str, now: datetime
) -> None:
    if operation.code_id is not None and codes.release(db, operation.code_id):
        released = CodeReleased(operation_id=operation.operation_id, reason=reason)
        outbox.append_event(db, released, now)


def _driver(db: Database, operation: DoorOperation) -> str | None:
    # The driver is named in the unlock's audit entry (the operation itself has no free detail).
    row = next(
        db.query(
            "SELECT detail FROM audit_log WHERE operation_id = ? AND command = 'unlock'"
            " ORDER BY audit_id LIMIT 1",
            [operation.operation_id],
        ),
        None,
    )
    driver = None if row is None else from_json(row["detail"]).get("driver_id")
    return None if driver is None else str(driver)
