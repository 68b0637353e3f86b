"""Staff sign-in is guarded (issue 11): wrong PINs are counted, the fifth locks sign-in with an
operator alert, a reboot does not reset it, and every attempt is audited without the PIN."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kiosk.flows import staff_sign_in
from kiosk.flows.refusals import FlowRefused, Refusal
from kiosk.store import audit
from kiosk.store.records import EventType
from kiosk.ui.services import pin_checker

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
