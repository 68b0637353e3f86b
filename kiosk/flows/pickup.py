"""Customer pickup: a code typed (or read from a QR code) opens every door it is for, once.

One transaction uses the code, commits an opening per parcel, audits the attempt and writes the
``code_used`` event; only then are the doors pulsed (invariant 3). Each parcel is marked picked up
by the door monitor when its door shuts again, not when it opens: a customer who opens the door
and walks away without the parcel has not picked it up.

A code works at most once (invariant 4): it is stamped used in the same transaction that commits
its openings, so a second attempt, even in a race, finds it used. Parcels of the same customer
still on their way leave the spent code, as they do in the cloud. It works only here (the store
holds only this location's codes), and only before its parcels' pickup window ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.flows import code_entry, opening
from kiosk.flows.context import FlowContext
from kiosk.flows.opening import DoorOpening, PendingOpening
from kiosk.flows.refusals import FlowRefused, Refusal
from kiosk.store import allocations, codes, outbox
from kiosk.store.code_hash import code_reference
from kiosk.store.records import Actor, Allocation, AllocationKind, CodeKind, Purpose
from shared.events import CodeUsed
from shared.states import AllocationStatus


@dataclass(frozen=True, slots=True)
class PickupResult:
    """The doors a pickup code opened.

    Attributes:
        openings: One per parcel, by door. A door whose opening was not detected or failed can
            be retried with `kiosk.flows.opening.retry_opening`.
        expired_parcels: Parcels of the same code left shut because their window has passed.
    """

    openings: tuple[DoorOpening, ...]
    expired_parcels: int = 0

    @property
    def doors(self) -> tuple[int, ...]:
        return tuple(o.door for o in self.openings)

    @property
    def all_opened(self) -> bool:
        return all(o.opened for o in self.openings)


async def pick_up(ctx: FlowContext, raw_code: str, *, via: str = "keypad") -> PickupResult:
    """Opens the doors of the parcels waiting for ``raw_code``.

    Args:
        ctx: The kiosk.
        raw_code: What the customer typed or the scanner read.
        via: ``keypad`` or ``scanner``, for the audit log.

    Raises:
        FlowRefused: KEYPAD_LOCKED, INVALID_CODE, UNKNOWN_CODE, WRONG_KIND_OF_CODE, CODE_USED,
            CODE_EXPIRED, NOT_YET_DEPOSITED or BOARDS_DOWN (the code stays valid). Nothing was
            opened; the attempt is audited.
    """
    pending: list[PendingOpening] = []
    refusal: FlowRefused | None = None
    expired = 0
    with ctx.store.transaction() as db:
        now = ctx.clock.now()
        code, refusal = code_entry.look_up_code(ctx, db, raw_code, CodeKind.PICKUP, via=via)
        if code is not None:
            parcels = [
                a
                for a in allocations.allocations_with_code(db, code.code_id)
                if a.kind is AllocationKind.DELIVERY
            ]
            ready = [a for a in parcels if _ready(ctx, a)]
            expired = sum(1 for a in parcels if _expired(ctx, a))
            if not ready:
                refusal = _nothing_to_open(parcels, expired)
                code_entry.audit_attempt(db, now, refusal.refusal.value, code, via)
            elif (down := opening.boards_down_refusal(ctx)) is not None:
                # Before the code is spent: on a bank known not to answer the pulse would
                # fail and strand the parcel behind a spent code.
                refusal = down
                code_entry.audit_attempt(db, now, refusal.refusal.value, code, via)
            else:
                codes.mark_used(db, code.code_id, now)
                # As in the cloud: parcels still on their way leave the spent code; the cloud
                # issues them a new one, sent to the customer when they are deposited.
                for parcel in parcels:
                    if parcel.status is AllocationStatus.RESERVED:
                        allocations.update_fields(db, parcel.allocation_id, now, code_id=None)
                for parcel in ready:
                    assert parcel.door is not None
                    pending.append(
                        opening.begin_opening(
                            ctx,
                            db,
                            door=parcel.door,
                            purpose=Purpose.PICKUP,
                            actor=Actor.CUSTOMER,
                            allocation_id=parcel.allocation_id,
                            code_id=code.code_id,
                        )
                    )
                doors = [p.operation.door for p in pending]
                code_entry.audit_attempt(db, now, "accepted", code, via, doors=doors)
                used = CodeUsed(
                    kind=CodeKind.PICKUP.value,
                    code_ref=code_reference(code.code_hash),
                    allocation_ids=[parcel.allocation_id for parcel in ready],
                    doors=doors,
                    via=via,
                )
                outbox.append_event(db, used, now)
    if refusal is not None:
        raise refusal
    openings = [await opening.pulse(ctx, p) for p in pending]
    return PickupResult(tuple(openings), expired)


def _ready(ctx: FlowContext, parcel: Allocation) -> bool:
    return (
        parcel.status is AllocationStatus.DEPOSITED
        and parcel.door is not None
        and not _expired(ctx, parcel)
    )


def _expired(ctx: FlowContext, parcel: Allocation) -> bool:
    if parcel.status is AllocationStatus.EXPIRED:
        return True
    return (
        parcel.status is AllocationStatus.DEPOSITED
        and parcel.pickup_expires_at is not None
        and parcel.pickup_expires_at <= ctx.clock.now()
    )


def _nothing_to_open(parcels: list[Allocation], expired: int) -> FlowRefused:
    if expired:
        return FlowRefused(
            Refusal.CODE_EXPIRED,
            "This code has expired: the parcel was kept for the time allowed and will go back "
            "to the sender. Contact the carrier to arrange another delivery.",
        )
    if any(p.status is AllocationStatus.RESERVED for p in parcels):
        return FlowRefused(
            Refusal.NOT_YET_DEPOSITED,
            "Your parcel has not been put in the locker yet. You will get a message when it "
            "is ready.",
        )
    return FlowRefused(
        Refusal.CODE_USED,
        "The parcels for this code have already been picked up or were cancelled.",
    )
