"""Opening a door: commit first, then pulse, then record what the sensor saw.

Every flow opens doors the same way, in two steps around the pulse:

1. `begin_opening`, inside the flow's own transaction (the one that also changes the parcel, uses
   the code and writes the outbox event): a door operation in state ``unlocking`` and a
   ``pending`` audit entry. After the commit the kiosk is committed to the opening; a crash from
   here on leaves a record that boot reconciliation finishes (invariant 3).
2. `pulse`, after the commit: the door bank's unlock, then one transaction recording the result
   (``open``, ``not_detected`` or ``failed``), finishing the audit entry, noting or clearing the
   door's fault, and an outbox event.

"Unlock sent" and "door seen open" stay apart: a pulse whose door the sensor never saw open is
`OpeningOutcome.NOT_DETECTED`, and the person is offered `retry_opening` or another door. The door
monitor may see the door open before the pulse returns; operations only move forward, so whichever
is first wins and the other changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlite_utils import Database

from kiosk.flows.context import FlowContext
from kiosk.flows.refusals import FlowRefused, Refusal
from kiosk.hardware.door_bank import UnlockResult
from kiosk.hardware.errors import LockBoardError, UnknownDoor
from kiosk.store import audit, doors, operations, outbox
from kiosk.store.records import Actor, DoorOperation, OperationState, Purpose
from shared.events import DoorCommandFailed, DoorOpened, DoorOpenNotDetected

UNLOCK = "unlock"
"""The audit log's command for a door pulse."""


class OpeningOutcome(StrEnum):
    """What became of one door command."""

    OPENED = "opened"  # the sensor saw the door open
    NOT_DETECTED = "not_detected"  # pulse delivered, the sensor never read open
    FAILED = "failed"  # the pulse could not be delivered (board silent, bad frames)


@dataclass(frozen=True, slots=True)
class PendingOpening:
    """A door operation committed but not yet pulsed, and its pending audit entry."""

    operation: DoorOperation
    audit_id: int


@dataclass(frozen=True, slots=True)
class DoorOpening:
    """The result of one door command.

    Attributes:
        operation_id: The door operation (retry it with `retry_opening`).
        door: The door.
        purpose: What its closing will complete.
        allocation_id: The parcel it is for, if any.
        outcome: Opened, not detected or failed.
        detail: The hardware's error or the sensor's last error, for the audit log and techs.
    """

    operation_id: str
    door: int
    purpose: Purpose
    allocation_id: str | None
    outcome: OpeningOutcome
    detail: str | None = None

    @property
    def opened(self) -> bool:
        return self.outcome is OpeningOutcome.OPENED


def begin_opening(
    ctx: FlowContext,
    db: Database,
    *,
    door: int,
    purpose: Purpose,
    actor: Actor,
    allocation_id: str | None = None,
    code_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> PendingOpening:
    """Commits (in the caller's transaction) to opening ``door``.

    Raises:
        FlowRefused: BOARDS_DOWN, when the door bank is known not to answer (a pulse would
            fail, and whatever the caller's transaction spent would be stranded); DOOR_BUSY,
            when the door already has an operation under way.
        NotInTransaction: called outside `Store.transaction`.
    """
    now = ctx.clock.now()
    refused = boards_down_refusal(ctx)
    if refused is not None:
        raise refused
    if operations.active_operation(db, door) is not None:
        raise FlowRefused(
            Refusal.DOOR_BUSY, f"Locker {door} is being used right now. Please wait a moment."
        )
    operation = operations.create_operation(
        db,
        door=door,
        purpose=purpose,
        actor=actor,
        now=now,
        allocation_id=allocation_id,
        code_id=code_id,
    )
    operation = operations.count_attempt(db, operation.operation_id, now)
    audit_id = audit.record_entry(
        db,
        now,
        actor,
        UNLOCK,
        audit.PENDING,
        door=door,
        operation_id=operation.operation_id,
        detail={"purpose": purpose.value, "allocation_id": allocation_id, **(detail or {})},
    )
    return PendingOpening(operation, audit_id)


def boards_down_refusal(ctx: FlowContext) -> FlowRefused | None:
    """The refusal for a flow while the door bank is known not to answer, else None."""
    why = ctx.bank_health.unavailable
    if why is None:
        return None
    return FlowRefused(
        Refusal.BOARDS_DOWN,
        "The lock boards are not responding, so no door can open right now. Nothing was "
        "used: codes stay valid. Please come back later.",
    )


async def pulse(ctx: FlowContext, pending: PendingOpening) -> DoorOpening:
    """Pulses the committed door and records the result. Never raises for hardware faults.

    Raises:
        sqlite3.Error: the store failed while recording the result (the pulse was sent; boot
            reconciliation will finish the operation).
    """
    operation = pending.operation
    result: UnlockResult | None = None
    error: str | None = None

    def pulse_started() -> None:
        # Committed before the pulse gets the wire: a crash before this line leaves an
        # operation that never reached its door (its pickup code is given back at boot).
        with ctx.store.transaction() as db:
            operations.mark_pulse_started(db, operation.operation_id, ctx.clock.now())

    try:
        result = await ctx.bank.unlock(operation.door, on_pulse=pulse_started)
    except (LockBoardError, UnknownDoor) as problem:
        error = f"{type(problem).__name__}: {problem}"
    if result is None:
        outcome, detail = OpeningOutcome.FAILED, error
    elif result.opened:
        outcome, detail = OpeningOutcome.OPENED, result.sensor_error
    else:
        outcome, detail = OpeningOutcome.NOT_DETECTED, result.sensor_error
    _record(ctx, pending, outcome, detail)
    return DoorOpening(
        operation.operation_id,
        operation.door,
        operation.purpose,
        operation.allocation_id,
        outcome,
        detail,
    )


async def retry_opening(
    ctx: FlowContext, operation_id: str, actor: Actor, *, detail: dict[str, Any] | None = None
) -> DoorOpening:
    """Pulses again a door whose opening was not detected or failed.

    Raises:
        FlowRefused: UNKNOWN_OPERATION, or NOT_RETRYABLE when the door was already seen open
            or the operation is over.
    """
    with ctx.store.transaction() as db:
        try:
            operation = operations.get_operation(db, operation_id)
        except operations.UnknownOperation:
            raise FlowRefused(Refusal.UNKNOWN_OPERATION, "That door command is unknown.") from None
        if operation.state not in (OperationState.NOT_DETECTED, OperationState.FAILED):
            raise FlowRefused(
                Refusal.NOT_RETRYABLE,
                f"Locker {operation.door} is {_state_words(operation.state)}; nothing to retry.",
            )
        now = ctx.clock.now()
        operation = operations.count_attempt(db, operation_id, now)
        audit_id = audit.record_entry(
            db,
            now,
            actor,
            UNLOCK,
            audit.PENDING,
            door=operation.door,
            operation_id=operation_id,
            detail={
                "purpose": operation.purpose.value,
                "retry": operation.attempts,
                **(detail or {}),
            },
        )
    return await pulse(ctx, PendingOpening(operation, audit_id))


def _record(
    ctx: FlowContext, pending: PendingOpening, outcome: OpeningOutcome, detail: str | None
) -> None:
    operation = pending.operation
    now = ctx.clock.now()
    target = {
        OpeningOutcome.OPENED: OperationState.OPEN,
        OpeningOutcome.NOT_DETECTED: OperationState.NOT_DETECTED,
        OpeningOutcome.FAILED: OperationState.FAILED,
    }[outcome]
    event = {
        OpeningOutcome.OPENED: DoorOpened,
        OpeningOutcome.NOT_DETECTED: DoorOpenNotDetected,
        OpeningOutcome.FAILED: DoorCommandFailed,
    }[outcome]
    with ctx.store.transaction() as db:
        current = operations.get_operation(db, operation.operation_id)
        # The monitor may have seen the door open (or even shut again) while the pulse ran:
        # then the door did open, whatever the unlock's own polling concluded.
        seen_open = current.opened_at is not None
        if not seen_open:
            operations.transition(db, operation.operation_id, target, now, outcome=None)
        result = OpeningOutcome.OPENED.value if seen_open else outcome.value
        audit.finish_entry(db, pending.audit_id, result, now, {"detail": detail} if detail else {})
        opened = seen_open or outcome is OpeningOutcome.OPENED
        if outcome is OpeningOutcome.OPENED and not seen_open:
            # The unlock's own polling saw the door open: the stored reading says so too, so
            # that the monitor's next "shut" reading completes the operation.
            door = doors.get_door(db, operation.door)
            doors.record_sensors(db, operation.door, True, door.sensor_occupied, now)
        fault = None if opened else f"{outcome.value}: {detail or 'no opening seen'}"
        doors.set_fault(db, operation.door, fault, now)
        if seen_open:
            return  # the monitor recorded the opening, and its event, already
        result = event(
            operation_id=operation.operation_id,
            door=operation.door,
            purpose=operation.purpose.value,
            actor=operation.actor.value,
            allocation_id=operation.allocation_id,
            attempt=current.attempts,
            detail=detail,
        )
        outbox.append_event(db, result, now)


def _state_words(state: OperationState) -> str:
    return {
        OperationState.UNLOCKING: "opening now",
        OperationState.OPEN: "already open",
        OperationState.COMPLETED: "already done",
        OperationState.ABANDONED: "no longer in use",
    }.get(state, str(state))
