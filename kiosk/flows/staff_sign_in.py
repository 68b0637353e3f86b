"""Staff sign-in at the touchscreen: the PIN checked, wrong PINs counted, a lockout, an alert.

The PIN itself is checked by the check the UI is given (`kiosk.ui.services.pin_checker`); this
flow guards it. The fifth wrong PIN within five minutes (`FlowRules.staff_pin_max_failures`,
`staff_pin_window`) locks staff sign-in for fifteen minutes (`staff_pin_lockout`) and tells the
cloud's operators (``staff_pin_locked``, an alert). Every attempt is audited (``staff_sign_in``),
never with the PIN. Counters and the lock live in SQLite, so a reboot does not reset them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlite_utils import Database

from kiosk.flows.context import FlowContext
from kiosk.flows.refusals import FlowRefused, Refusal
from kiosk.store import audit, outbox, staff_pin_guard
from kiosk.store.records import Actor
from shared.events import StaffPinLocked

SIGN_IN = "staff_sign_in"
"""The audit log's command for a staff PIN attempt."""

MAX_FAILURES = 5
WINDOW = timedelta(minutes=5)
LOCKOUT = timedelta(minutes=15)


def sign_in(ctx: FlowContext, pin: str, check: Callable[[str], bool]) -> None:
    """Lets staff in when ``check`` accepts ``pin`` and sign-in is not locked.

    Raises:
        FlowRefused: STAFF_PIN_LOCKED (too many wrong PINs; the message says for how long),
            or WRONG_STAFF_PIN. The attempt is audited either way.
    """
    # Refusals are raised after the commit, so that their audit entry and count are kept.
    refusal: FlowRefused | None
    with ctx.store.transaction() as db:
        now = ctx.clock.now()
        until = staff_pin_guard.locked_until(db)
        if until is not None and until > now:
            audit.record_entry(db, now, Actor.STAFF, SIGN_IN, Refusal.STAFF_PIN_LOCKED.value)
            refusal = _locked(until - now)
        else:
            refusal = _check(db, now, pin, check)
    if refusal is not None:
        raise refusal


def _check(
    db: Database, now: datetime, pin: str, check: Callable[[str], bool]
) -> FlowRefused | None:
    if check(pin):
        staff_pin_guard.clear(db)
        audit.record_entry(db, now, Actor.STAFF, SIGN_IN, "accepted")
        return None
    failures = staff_pin_guard.record_failure(db, now, WINDOW)
    audit.record_entry(
        db, now, Actor.STAFF, SIGN_IN, Refusal.WRONG_STAFF_PIN.value, detail={"failures": failures}
    )
    if failures >= MAX_FAILURES:
        locked = now + LOCKOUT
        staff_pin_guard.lock(db, locked)
        outbox.append_event(db, StaffPinLocked(failures=failures, locked_until=locked), now)
        return _locked(LOCKOUT)
    left = MAX_FAILURES - failures
    return FlowRefused(
        Refusal.WRONG_STAFF_PIN,
        f"That PIN is not right. {left} {'try' if left == 1 else 'tries'} left before staff "
        "sign-in locks.",
    )


def _locked(left: timedelta) -> FlowRefused:
    minutes = max(1, -(-int(left.total_seconds()) // 60))
    return FlowRefused(
        Refusal.STAFF_PIN_LOCKED,
        f"Too many wrong PINs: staff sign-in is locked for {minutes} more minute(s). The "
        "operators have been told.",
        retry_after=left,
    )
