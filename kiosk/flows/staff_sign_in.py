"""Staff sign-in at the touchscreen: the PIN checked, wrong PINs counted, a lockout, an alert.

Each staff member has their own PIN, provisioned from the cloud (``locker-cloud staff add``,
change kind ``staff``; `kiosk.store.people`): the PIN typed names the person, and everything
they do is audited under their staff id. A revoked PIN is a wrong PIN. Only a kiosk the cloud
has never sent a staff member to falls back on the one PIN it is configured with (the check the
UI is given, `kiosk.ui.services.pin_checker`), signed in as `SHARED_PIN_STAFF`.
This flow guards both. The fifth wrong PIN within five minutes (`FlowRules.staff_pin_max_failures`,
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
from kiosk.store import audit, outbox, people, staff_pin_guard
from kiosk.store.people import StaffMember
from kiosk.store.records import Actor
from shared.events import StaffPinLocked

SIGN_IN = "staff_sign_in"
"""The audit log's command for a staff PIN attempt."""

MAX_FAILURES = 5
WINDOW = timedelta(minutes=5)
LOCKOUT = timedelta(minutes=15)

SHARED_PIN_STAFF = StaffMember("staff-touchscreen", "Staff")
"""Who the shared configured PIN signs in (a kiosk with no staff provisioned)."""


def sign_in(ctx: FlowContext, pin: str, check: Callable[[str], bool]) -> StaffMember:
    """Lets the staff member whose PIN this is in, unless sign-in is locked.

    Returns:
        Who signed in (`SHARED_PIN_STAFF` for the configured PIN of a kiosk without staff).

    Raises:
        FlowRefused: STAFF_PIN_LOCKED (too many wrong PINs; the message says for how long),
            or WRONG_STAFF_PIN. The attempt is audited either way.
    """
    # Refusals are raised after the commit, so that their audit entry and count are kept.
    refusal: FlowRefused | StaffMember
    with ctx.store.transaction() as db:
        now = ctx.clock.now()
        until = staff_pin_guard.locked_until(db)
        if until is not None and until > now:
            audit.record_entry(db, now, Actor.STAFF, SIGN_IN, Refusal.STAFF_PIN_LOCKED.value)
            refusal = _locked(until - now)
        else:
            refusal = _check(db, now, pin, check)
    if isinstance(refusal, FlowRefused):
        raise refusal
    return refusal


def _who(db: Database, pin: str, check: Callable[[str], bool]) -> StaffMember | None:
    if people.any_staff(db):
        return people.find_staff(db, pin)
    return SHARED_PIN_STAFF if check(pin) else None


def _check(
    db: Database, now: datetime, pin: str, check: Callable[[str], bool]
) -> FlowRefused | StaffMember:
    member = _who(db, pin, check)
    if member is not None:
        staff_pin_guard.clear(db)
        audit.record_entry(
            db, now, Actor.STAFF, SIGN_IN, "accepted", detail={"staff_id": member.staff_id}
        )
        return member
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
