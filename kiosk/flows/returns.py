"""Customer return drop-off: a return code opens a free door, and its closing confirms the return.

The cloud issues a return (an allocation of kind ``return``) with a code and, usually, a proposed
door. At the kiosk the code is checked like a pickup code (audited, brute-force guarded), the
return gets its door as a driver's parcel does (the one it holds here, else the smallest free door
that fits), and the door monitor confirms the return when the door shuts. The parcel then waits
for staff collection.

The code is used when the door is committed to open. If the door never opens, the operation is
abandoned later and the code released (a return code opens a door to put something in, so letting
it work again loses nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.flows import code_entry
from kiosk.flows.context import FlowContext
from kiosk.flows.drop_off import DropOffResult, open_parcel_door, pulse_parcel_door
from kiosk.flows.opening import PendingOpening
from kiosk.flows.refusals import FlowRefused, Refusal
from kiosk.store import allocations, codes, outbox
from kiosk.store.code_hash import code_reference
from kiosk.store.records import Actor, Allocation, AllocationKind, CodeKind, Purpose
from shared.events import CodeUsed
from shared.states import AllocationStatus

__all__ = ["ReturnResult", "drop_off_return"]


@dataclass(frozen=True, slots=True)
class ReturnResult:
    """The door a return goes into (as for a driver's parcel)."""

    drop_off: DropOffResult

    @property
    def door(self) -> int:
        return self.drop_off.door

    @property
    def opened(self) -> bool:
        return self.drop_off.opening.opened


async def drop_off_return(ctx: FlowContext, raw_code: str, *, via: str = "keypad") -> ReturnResult:
    """Opens a door for the return with this code.

    Raises:
        FlowRefused: KEYPAD_LOCKED, INVALID_CODE, UNKNOWN_CODE, WRONG_KIND_OF_CODE, CODE_USED,
            RESERVATION_EXPIRED, ALREADY_DEPOSITED or NO_FREE_DOOR. Nothing was opened.
    """
    refusal: FlowRefused | None = None
    pending: PendingOpening | None = None
    parcel: Allocation | None = None
    with ctx.store.transaction() as db:
        now = ctx.clock.now()
        code, refusal = code_entry.look_up_code(ctx, db, raw_code, CodeKind.RETURN, via=via)
        if code is not None:
            waiting = [
                a
                for a in allocations.allocations_with_code(db, code.code_id)
                if a.kind is AllocationKind.RETURN
            ]
            parcel = next((a for a in waiting if a.status is AllocationStatus.RESERVED), None)
            refusal = _refusal(ctx, parcel, waiting)
            if refusal is None:
                assert parcel is not None
                try:
                    with ctx.store.transaction():  # a savepoint: a refusal undoes it all
                        codes.mark_used(db, code.code_id, now)
                        pending, _ = open_parcel_door(
                            ctx, db, parcel, Purpose.RETURN, Actor.CUSTOMER, {}
                        )
                        used = CodeUsed(
                            kind=CodeKind.RETURN.value,
                            code_ref=code_reference(code.code_hash),
                            allocation_ids=[parcel.allocation_id],
                            doors=[pending.operation.door],
                            via=via,
                        )
                        outbox.append_event(db, used, now)
                except FlowRefused as refused:
                    refusal = refused
            result = "accepted" if refusal is None else refusal.refusal.value
            code_entry.audit_attempt(db, now, result, code, via)
    if refusal is not None:
        raise refusal
    assert pending is not None
    assert parcel is not None
    return ReturnResult(await pulse_parcel_door(ctx, parcel, pending, None))


def _refusal(
    ctx: FlowContext, parcel: Allocation | None, waiting: list[Allocation]
) -> FlowRefused | None:
    if parcel is None:
        if any(a.status is AllocationStatus.DEPOSITED for a in waiting):
            return FlowRefused(Refusal.ALREADY_DEPOSITED, "This return is already in the locker.")
        return FlowRefused(
            Refusal.NOT_FOR_DROP_OFF,
            "This return was cancelled or already handled. Contact the shop you bought from.",
        )
    expires = parcel.reservation_expires_at
    if expires is not None and expires <= ctx.clock.now():
        return FlowRefused(
            Refusal.RESERVATION_EXPIRED,
            "This return code has expired. Request a new return from the shop.",
        )
    return None
