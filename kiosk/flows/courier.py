"""Couriers at the touchscreen: sign in with their own code, drop off, collect their carrier's.

A courier (a carrier's driver, provisioned from the cloud: ``locker-cloud courier add``,
`kiosk.store.people`) signs in with their 8-digit code and gets a session
(`kiosk.store.courier_sessions`) that records every parcel they handle. What they may do is
their permissions': ``drop_off`` (the drop-off flow, audited under their courier id instead of
``touchscreen``), ``collect_expired`` (their carrier's parcels past their pickup window) and
``collect_returns`` (customers' returns for their carrier). Carrier scoping: a parcel whose
carrier the kiosk does not know, or another carrier's, is never opened for them.

Every step checks the courier is still live: a revocation arriving mid-session ends it.

Courier codes are guarded against guessing as staff PINs are (`kiosk.flows.staff_sign_in`'s
rule, `kiosk.store.sign_in_guard`'s mechanism, its own count per kiosk): the fifth wrong code
within five minutes locks courier sign-in for fifteen minutes and tells the operators
(``courier_code_locked``, an alert). A wrong code gets the same answer whether or not some
courier's code is near it, or was revoked: the answer never reveals which codes exist. Couriers
are audited under actor ``driver`` with their ``driver_id``, as the drop-off names its driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlite_utils import Database

from kiosk.flows import drop_off, staff, staff_sign_in
from kiosk.flows.context import FlowContext
from kiosk.flows.drop_off import DropOffResult
from kiosk.flows.opening import DoorOpening
from kiosk.flows.refusals import FlowRefused, Refusal
from kiosk.store import allocations, audit, courier_sessions, outbox, people, sign_in_guard
from kiosk.store.people import Courier
from kiosk.store.records import Actor, Allocation, AllocationKind
from shared.events import CourierCodeLocked
from shared.people import CourierPermission
from shared.states import AllocationStatus

SIGN_IN = "courier_sign_in"

# The staff PIN's rule: one rule for the secrets people type to sign in.
MAX_FAILURES = staff_sign_in.MAX_FAILURES
WINDOW = staff_sign_in.WINDOW
LOCKOUT = staff_sign_in.LOCKOUT


@dataclass(frozen=True, slots=True)
class CourierSession:
    session_id: int
    courier: Courier


def sign_in(ctx: FlowContext, code: str) -> CourierSession:
    """Starts a session for the courier whose code this is, unless courier sign-in is locked.

    Raises:
        FlowRefused: COURIER_CODE_LOCKED (too many wrong codes; the message says for how long),
            or WRONG_COURIER_CODE. The attempt is audited either way, never with the code.
    """
    # Refusals are raised after the commit, so that their audit entry and count are kept.
    outcome: FlowRefused | CourierSession
    with ctx.store.transaction() as db:
        now = ctx.clock.now()
        until = sign_in_guard.locked_until(db, sign_in_guard.COURIER_CODE)
        if until is not None and until > now:
            audit.record_entry(db, now, Actor.DRIVER, SIGN_IN, Refusal.COURIER_CODE_LOCKED.value)
            outcome = _locked(until - now)
        else:
            outcome = _check(db, now, code)
    if isinstance(outcome, FlowRefused):
        raise outcome
    return outcome


def _check(db: Database, now: datetime, code: str) -> FlowRefused | CourierSession:
    courier = people.find_courier(db, code.strip())
    if courier is not None:
        sign_in_guard.clear(db, sign_in_guard.COURIER_CODE)
        session_id = courier_sessions.start(db, courier.courier_id, now)
        audit.record_entry(
            db,
            now,
            Actor.DRIVER,
            SIGN_IN,
            "accepted",
            detail={"courier_id": courier.courier_id, "session_id": session_id},
        )
        return CourierSession(session_id, courier)
    failures = sign_in_guard.record_failure(db, sign_in_guard.COURIER_CODE, now, WINDOW)
    audit.record_entry(
        db,
        now,
        Actor.DRIVER,
        SIGN_IN,
        Refusal.WRONG_COURIER_CODE.value,
        detail={"failures": failures},
    )
    if failures >= MAX_FAILURES:
        locked = now + LOCKOUT
        sign_in_guard.lock(db, sign_in_guard.COURIER_CODE, locked)
        outbox.append_event(db, CourierCodeLocked(failures=failures, locked_until=locked), now)
        return _locked(LOCKOUT)
    left = MAX_FAILURES - failures
    return FlowRefused(
        Refusal.WRONG_COURIER_CODE,
        f"That courier code is not right. Check it and try again: {left} "
        f"{'try' if left == 1 else 'tries'} left before courier sign-in locks.",
    )


def _locked(left: timedelta) -> FlowRefused:
    minutes = max(1, -(-int(left.total_seconds()) // 60))
    return FlowRefused(
        Refusal.COURIER_CODE_LOCKED,
        f"Too many wrong courier codes: courier sign-in is locked. Come back in {minutes} "
        "minute(s), or ask your carrier's dispatcher. The operators have been told.",
        retry_after=left,
    )


def sign_out(ctx: FlowContext, session: CourierSession) -> None:
    with ctx.store.transaction() as db:
        courier_sessions.end(db, session.session_id, ctx.clock.now())


async def drop_off_parcel(ctx: FlowContext, session: CourierSession, barcode: str) -> DropOffResult:
    """The drop-off flow for a courier allowed to drop off, recorded in their session.

    Raises:
        FlowRefused: SESSION_ENDED, NOT_PERMITTED, or the drop-off's own refusals.
    """
    _require(ctx, session, CourierPermission.DROP_OFF)
    result = await drop_off.drop_off(ctx, barcode, driver_id=session.courier.courier_id)
    with ctx.store.transaction() as db:
        courier_sessions.record_parcel(
            db, session.session_id, result.allocation_id, "drop_off", ctx.clock.now()
        )
    return result


def may_collect(courier: Courier, parcel: Allocation, carrier_id: str | None) -> bool:
    """Whether ``courier`` may take ``parcel`` (of ``carrier_id``) away."""
    if carrier_id != courier.carrier_id:
        return False
    if parcel.kind is AllocationKind.RETURN:
        return courier.may(CourierPermission.COLLECT_RETURNS)
    return courier.may(CourierPermission.COLLECT_EXPIRED)


async def collect_all(ctx: FlowContext, session: CourierSession) -> tuple[DoorOpening, ...]:
    """Opens every door due for collection that this courier may empty, in one go.

    Raises:
        FlowRefused: SESSION_ENDED, or NOT_PERMITTED for a courier with no collect permission.
    """
    courier = _live(ctx, session)
    if not (
        courier.may(CourierPermission.COLLECT_EXPIRED)
        or courier.may(CourierPermission.COLLECT_RETURNS)
    ):
        raise _not_permitted("collect parcels")
    db = ctx.store.db

    def theirs(parcel: Allocation) -> bool:
        return may_collect(courier, parcel, people.carrier_of(db, parcel.allocation_id))

    openings = await staff.open_for_collection(
        ctx, staff_id=courier.courier_id, only=theirs, actor=Actor.DRIVER
    )
    with ctx.store.transaction() as tx:
        for opened in openings:
            if opened.allocation_id is not None:
                courier_sessions.record_parcel(
                    tx, session.session_id, opened.allocation_id, "collect_opened", ctx.clock.now()
                )
    return openings


def confirm_collected(ctx: FlowContext, session: CourierSession, allocation_id: str) -> Allocation:
    """Records that the courier took the parcel out (only one they may collect).

    Raises:
        FlowRefused: SESSION_ENDED, NOT_PERMITTED (another carrier's, or not allowed), or
            NOT_COLLECTABLE.
    """
    courier = _live(ctx, session)
    with ctx.store.transaction() as db:
        parcel = next((a for a in staff_collectable(ctx) if a.allocation_id == allocation_id), None)
        if parcel is not None and not may_collect(
            courier, parcel, people.carrier_of(db, allocation_id)
        ):
            raise _not_permitted("take this parcel")
        collected = staff.confirm_collected(
            ctx, allocation_id, staff_id=courier.courier_id, actor=Actor.DRIVER
        )
        courier_sessions.record_parcel(
            db, session.session_id, allocation_id, "collected", ctx.clock.now()
        )
    assert collected.status is AllocationStatus.COLLECTED
    return collected


def staff_collectable(ctx: FlowContext) -> list[Allocation]:
    return allocations.collectable(ctx.store.db, ctx.clock.now())


def _live(ctx: FlowContext, session: CourierSession) -> Courier:
    db = ctx.store.db
    courier = people.get_courier(db, session.courier.courier_id)
    if courier is None or not courier_sessions.is_open(db, session.session_id):
        raise FlowRefused(
            Refusal.SESSION_ENDED, "Your courier session has ended. Sign in again to go on."
        )
    return courier


def _require(ctx: FlowContext, session: CourierSession, permission: CourierPermission) -> None:
    if not _live(ctx, session).may(permission):
        raise _not_permitted(permission.value.replace("_", " "))


def _not_permitted(what: str) -> FlowRefused:
    return FlowRefused(
        Refusal.NOT_PERMITTED,
        f"Your courier account may not {what} here. Ask your carrier's dispatcher.",
    )
