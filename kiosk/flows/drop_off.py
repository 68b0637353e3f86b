"""Driver drop-off: a scanned parcel gets its door, the door opens, and its closing deposits it.

Door authority (invariant 2): the cloud reserves capacity and proposes a door; the kiosk owns the
physical doors and decides at drop-off. The parcel goes into the door its allocation holds here
(the proposed door, when it was free on arrival), else into the smallest free door that fits; a
substitution is reported to the cloud. The door monitor confirms the deposit when the door shuts.

A driver who finds the door did not open, or not empty, reports it with `report_problem`: that
door goes out of service and another free door of the same size or larger opens instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlite_utils import Database

from kiosk.flows import opening
from kiosk.flows.context import FlowContext
from kiosk.flows.opening import DoorOpening, PendingOpening
from kiosk.flows.refusals import FlowRefused, Refusal
from kiosk.store import allocations, audit, door_access, doors, operations, outbox
from kiosk.store.records import (
    Actor,
    Allocation,
    AllocationKind,
    OperationState,
    Purpose,
)
from shared.events import DoorMaintenance, DoorSubstituted, OperationAbandoned
from shared.sizes import Size
from shared.states import AllocationStatus, DoorStatus


class DoorProblem(StrEnum):
    """What a driver (or a customer returning a parcel) can report about the door they got."""

    DID_NOT_OPEN = "did_not_open"
    NOT_EMPTY = "not_empty"


@dataclass(frozen=True, slots=True)
class DropOffResult:
    """The door a parcel goes into.

    Attributes:
        allocation_id: The parcel's allocation.
        barcode: What was scanned.
        parcel_size: The size the parcel needs.
        door_size: The size of the door it got (may be larger).
        opening: The door command; deposited once the door shuts.
        replaced_door: The door given up for this one (a substitution or a reported problem).
    """

    allocation_id: str
    barcode: str
    parcel_size: Size
    door_size: Size
    opening: DoorOpening
    replaced_door: int | None = None

    @property
    def door(self) -> int:
        return self.opening.door


async def drop_off(ctx: FlowContext, barcode: str, *, driver_id: str) -> DropOffResult:
    """Opens the door for the scanned parcel.

    Raises:
        FlowRefused: UNKNOWN_BARCODE, ALREADY_DEPOSITED, NOT_FOR_DROP_OFF, RESERVATION_EXPIRED,
            NO_FREE_DOOR or DOOR_BUSY. Nothing changed but the audit log.
    """
    scanned = barcode.strip()
    refusal: FlowRefused | None = None
    with ctx.store.transaction() as db:
        now = ctx.clock.now()
        parcel = (
            allocations.find_by_barcode(db, scanned, AllocationKind.DELIVERY) if scanned else None
        )
        refusal = _refusal(ctx, db, parcel, scanned)
        if refusal is None:
            assert parcel is not None
            try:
                with ctx.store.transaction():  # a savepoint: a refusal undoes a door change
                    pending, replaced = open_parcel_door(
                        ctx, db, parcel, Purpose.DROP_OFF, Actor.DRIVER, {"driver_id": driver_id}
                    )
            except FlowRefused as refused:
                refusal = refused
        detail = {"barcode": scanned, "driver_id": driver_id}
        result = "accepted" if refusal is None else refusal.refusal.value
        audit.record_entry(db, now, Actor.DRIVER, "scan", result, detail=detail)
    if refusal is not None:
        raise refusal
    assert parcel is not None
    return await pulse_parcel_door(ctx, parcel, pending, replaced)


async def report_problem(
    ctx: FlowContext, operation_id: str, problem: DoorProblem, *, actor: Actor, reporter: str
) -> DropOffResult:
    """Takes the door of a drop-off (or return) out of service and opens another one.

    Raises:
        FlowRefused: UNKNOWN_OPERATION; NOT_RETRYABLE when the operation is over or not a
            drop-off; NO_FREE_DOOR when no other door fits (the door is out of service anyway).
    """
    with ctx.store.transaction() as db:
        now = ctx.clock.now()
        try:
            operation = operations.get_operation(db, operation_id)
        except operations.UnknownOperation:
            raise FlowRefused(Refusal.UNKNOWN_OPERATION, "That door command is unknown.") from None
        if (
            operation.purpose not in (Purpose.DROP_OFF, Purpose.RETURN)
            or not operation.state.is_active
            or operation.allocation_id is None
        ):
            raise FlowRefused(
                Refusal.NOT_RETRYABLE, f"Locker {operation.door} is not waiting for a parcel."
            )
        allocation_id = operation.allocation_id
        bad_door = operation.door
        operations.transition(
            db, operation_id, OperationState.ABANDONED, now, outcome=f"reported {problem.value}"
        )
        for entry in audit.pending_entries(db, operation_id):
            audit.finish_entry(db, entry.audit_id, "abandoned", now, {"problem": problem.value})
        allocations.assign_door(db, allocation_id, None, now)
        reason = f"{actor.value} reported: {problem.value.replace('_', ' ')}"
        doors.set_status(db, bad_door, DoorStatus.MAINTENANCE, now, reason=reason)
        doors.set_fault(db, bad_door, problem.value, now)
        audit.record_entry(
            db,
            now,
            actor,
            "report_problem",
            "maintenance_on",
            door=bad_door,
            operation_id=operation_id,
            detail={"problem": problem.value, "reporter": reporter},
        )
        maintenance = DoorMaintenance(
            door=bad_door,
            on=True,
            reason=reason,
            actor=actor.value,
            detached_allocation_id=allocation_id,
        )
        outbox.append_event(db, maintenance, now)
        abandoned = OperationAbandoned(
            operation_id=operation_id, door=bad_door, reason=problem.value
        )
        outbox.append_event(db, abandoned, now)
    # The faulty door is out of service whatever happens next, so that commit stands alone.
    with ctx.store.transaction() as db:
        parcel = allocations.get_allocation(db, allocation_id)
        pending, _ = open_parcel_door(
            ctx, db, parcel, operation.purpose, actor, {"reporter": reporter}, replaced=bad_door
        )
    return await pulse_parcel_door(ctx, parcel, pending, bad_door)


def choose_door(db: Database, parcel: Allocation, exclude: tuple[int, ...] = ()) -> int | None:
    """The door a parcel goes into: the one it holds here, else the smallest free one that fits.

    issue 10: a parcel the cloud gave a door within reach gets a substitute within reach, or
    none. The kiosk cannot tell whether the carrier asked for reach, and a customer who did must
    not find the parcel out of it; a driver refused keeps the parcel (NO_FREE_DOOR).
    """
    if (
        parcel.door is not None
        and parcel.door not in exclude
        and doors.get_door(db, parcel.door).status is DoorStatus.RESERVED
        and operations.active_operation(db, parcel.door) is None
    ):
        return parcel.door
    given = [d for d in (parcel.door, parcel.proposed_door, *exclude) if d is not None]
    within_reach = any(door_access.is_accessible(db, d) for d in given)
    free = doors.find_free_door(db, parcel.size, exclude=exclude, accessible=within_reach)
    return None if free is None else free.number


def open_parcel_door(
    ctx: FlowContext,
    db: Database,
    parcel: Allocation,
    purpose: Purpose,
    actor: Actor,
    detail: dict[str, object],
    *,
    replaced: int | None = None,
) -> tuple[PendingOpening, int | None]:
    now = ctx.clock.now()
    door = choose_door(db, parcel, exclude=() if replaced is None else (replaced,))
    if door is None:
        raise FlowRefused(
            Refusal.NO_FREE_DOOR,
            f"No free {parcel.size} locker (or larger) is left here. Keep the parcel and report "
            "it to your depot.",
        )
    previous = parcel.door if parcel.door is not None else parcel.proposed_door
    if door != parcel.door:
        allocations.assign_door(db, parcel.allocation_id, door, now)
    if previous is not None and door != previous:
        substituted = DoorSubstituted(
            allocation_id=parcel.allocation_id,
            door=door,
            replaced_door=previous,
            actor=actor.value,
        )
        outbox.append_event(db, substituted, now)
    pending = opening.begin_opening(
        ctx,
        db,
        door=door,
        purpose=purpose,
        actor=actor,
        allocation_id=parcel.allocation_id,
        code_id=parcel.code_id if purpose is Purpose.RETURN else None,
        detail={"barcode": parcel.barcode, **detail},
    )
    return pending, previous if previous != door else None


async def pulse_parcel_door(
    ctx: FlowContext, parcel: Allocation, pending: PendingOpening, replaced: int | None
) -> DropOffResult:
    result = await opening.pulse(ctx, pending)
    with ctx.store.transaction() as db:
        door_size = doors.get_door(db, result.door).size
    return DropOffResult(
        parcel.allocation_id, parcel.barcode, parcel.size, door_size, result, replaced
    )


def _refusal(
    ctx: FlowContext, db: Database, parcel: Allocation | None, barcode: str
) -> FlowRefused | None:
    if parcel is None:
        return FlowRefused(
            Refusal.UNKNOWN_BARCODE,
            f"Parcel {barcode or '(empty scan)'} is not expected at this locker. Check the "
            "address on its label.",
        )
    if parcel.status in (AllocationStatus.DEPOSITED, AllocationStatus.EXPIRED):
        return FlowRefused(
            Refusal.ALREADY_DEPOSITED,
            f"Parcel {barcode} is already in locker {parcel.door}.",
        )
    if parcel.status is not AllocationStatus.RESERVED:
        return FlowRefused(
            Refusal.NOT_FOR_DROP_OFF,
            f"Parcel {barcode} was {parcel.status.value.replace('_', ' ')}; do not leave it here.",
        )
    expires = parcel.reservation_expires_at
    if expires is not None and expires <= ctx.clock.now():
        return FlowRefused(
            Refusal.RESERVATION_EXPIRED,
            f"The reservation for parcel {barcode} has expired. Take it back to your depot.",
        )
    busy = [
        op
        for op in operations.operations_for_allocation(db, parcel.allocation_id)
        if op.state.is_active
    ]
    if busy:
        return FlowRefused(
            Refusal.DOOR_BUSY,
            f"Locker {busy[0].door} is already open for parcel {barcode}: put it in and close "
            "the door.",
        )
    return None
