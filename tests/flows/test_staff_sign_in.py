"""Staff sign-in is guarded (issue 11): wrong PINs are counted, the fifth locks sign-in with an
operator alert, a reboot does not reset it, and every attempt is audited without the PIN."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kiosk.flows import staff_sign_in
from kiosk.flows.refusals import FlowRefused, Refusal
from kiosk.store import audit, people
from kiosk.store.records import EventType
from kiosk.ui.services import pin_checker
from shared.people import secret_hash
from shared.protocol import StaffChange

from .conftest import Kiosk

PIN = "2468"


def attempt(kiosk: Kiosk, pin: str) -> Refusal | None:
    try:
        staff_sign_in.sign_in(kiosk.ctx, pin, pin_checker(PIN))
    except FlowRefused as refused:
        return refused.refusal
    return None


def test_the_fifth_wrong_pin_locks_sign_in_and_alerts_the_operators(kiosk: Kiosk) -> None:
    for _ in range(4):
        assert attempt(kiosk, "0000") is Refusal.WRONG_STAFF_PIN
    assert kiosk.events(EventType.STAFF_PIN_LOCKED) == []

    assert attempt(kiosk, "0000") is Refusal.STAFF_PIN_LOCKED
    assert attempt(kiosk, PIN) is Refusal.STAFF_PIN_LOCKED  # even the right PIN, while locked

    [locked] = kiosk.events(EventType.STAFF_PIN_LOCKED)
    assert locked.payload["failures"] == 5
    kiosk.clock.advance(staff_sign_in.LOCKOUT + timedelta(seconds=1))
    assert attempt(kiosk, PIN) is None
    results = [e.result for e in audit.entries(kiosk.store.db, command="staff_sign_in")]
    assert results == ["wrong_staff_pin"] * 4 + ["wrong_staff_pin", "staff_pin_locked", "accepted"]
    assert all(PIN not in str(e.detail) for e in audit.entries(kiosk.store.db))


def test_a_right_pin_forgets_earlier_wrong_ones(kiosk: Kiosk) -> None:
    for _ in range(4):
        attempt(kiosk, "1111")
    assert attempt(kiosk, PIN) is None
    assert attempt(kiosk, "1111") is Refusal.WRONG_STAFF_PIN  # counting starts again


def test_the_message_says_how_many_tries_are_left(kiosk: Kiosk) -> None:
    with pytest.raises(FlowRefused, match="4 tries left"):
        staff_sign_in.sign_in(kiosk.ctx, "9999", pin_checker(PIN))


# Issue 11: per-person PINs, provisioned from the cloud.


def provision(
    kiosk: Kiosk, staff_id: str, pin: str, *, revision: int, revoked: bool = False
) -> None:

    salt = "ab" * 16
    change = StaffChange(
        revision=revision,
        staff_id=staff_id,
        name=staff_id.title(),
        pin_hash=secret_hash(pin, salt),
        salt=salt,
        revoked=revoked,
    )

    assert people.apply_staff(kiosk.store, change, kiosk.clock.now()).outcome.value == "applied"


def test_a_provisioned_pin_names_its_staff_member_in_the_audit(kiosk: Kiosk) -> None:
    provision(kiosk, "ana", "135790", revision=1)
    provision(kiosk, "bo", "246802", revision=2)
    member = staff_sign_in.sign_in(kiosk.ctx, "246802", pin_checker(PIN))
    assert member.staff_id == "bo"
    [entry] = audit.entries(kiosk.store.db, command="staff_sign_in")
    assert entry.result == "accepted"
    assert entry.detail == {"staff_id": "bo"}
    assert "246802" not in str(kiosk.store.db.execute("SELECT * FROM staff_members").fetchall())


def test_once_staff_are_provisioned_the_shared_pin_no_longer_opens(kiosk: Kiosk) -> None:
    assert staff_sign_in.sign_in(kiosk.ctx, PIN, pin_checker(PIN)).staff_id == "staff-touchscreen"
    provision(kiosk, "ana", "135790", revision=1)
    assert attempt(kiosk, PIN) is Refusal.WRONG_STAFF_PIN


def test_a_revoked_pin_is_refused_and_counts_towards_the_lockout(kiosk: Kiosk) -> None:
    provision(kiosk, "ana", "135790", revision=1)
    provision(kiosk, "cy", "111222", revision=2)
    assert attempt(kiosk, "135790") is None
    provision(kiosk, "ana", "135790", revision=3, revoked=True)
    for _ in range(4):
        assert attempt(kiosk, "135790") is Refusal.WRONG_STAFF_PIN
    assert attempt(kiosk, "135790") is Refusal.STAFF_PIN_LOCKED
    assert attempt(kiosk, "111222") is Refusal.STAFF_PIN_LOCKED  # the lockout is per kiosk
