"""Issue 11: a door that opened but was not seen open is settled by one rule, with or without a
reboot; staff re-pulse a door whose customer waits at "not detected"; doors found open at first
boot are not tampers, and most doors open at once points at wiring; faults are cleared, audited;
tamper, left-open and abandonment reach the daemon's log."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from kiosk.flows.context import FlowContext, FlowRules
from kiosk.flows.faults import clear_fault
from kiosk.flows.opening import OpeningOutcome
from kiosk.flows.pickup import pick_up
from kiosk.flows.staff import open_door
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.monitor import sweep
from kiosk.reconcile import reconcile
from kiosk.store import allocations, audit, operations
from kiosk.store.records import Actor, EventType, OperationState
from shared.clock import ManualClock
from shared.states import AllocationStatus

from .conftest import FAST, LAYOUT, START, Kiosk, make_store


@pytest.fixture
def sensed() -> Kiosk:
    """A kiosk whose doors have occupancy sensors (the parcels are in their compartments)."""
    bank = FakeDoorBank(sorted(LAYOUT), FAST, occupancy_sensors=True)
    clock = ManualClock(START)
    return Kiosk(FlowContext(make_store(), bank, clock, FlowRules()), clock)


async def _unseen_pickup(k: Kiosk) -> FakeDoorBank:
    bank = k.bank
    assert isinstance(bank, FakeDoorBank)
    k.allocate("a1", code="ABC234", door=2, status=AllocationStatus.DEPOSITED)
    bank.set_occupied(2)
    await k.poll()
    bank.stick_sensor(2, reads_open=False)  # a cut sensor cable: the door opens unseen
    [opening] = (await pick_up(k.ctx, "ABC234")).openings
    assert opening.outcome is OpeningOutcome.NOT_DETECTED
    bank.set_occupied(2, False)  # the customer took the parcel out
    bank.close(2)
    return bank


async def test_an_unseen_opening_with_an_empty_compartment_is_picked_up_while_running(
    sensed: Kiosk,
) -> None:
    await _unseen_pickup(sensed)
    await sensed.poll()
    assert allocations.get_allocation(sensed.store.db, "a1").status is AllocationStatus.PICKED_UP
    [operation] = operations.operations_for_allocation(sensed.store.db, "a1")
    assert operation.state is OperationState.COMPLETED


async def test_the_same_unseen_opening_is_picked_up_after_a_reboot(sensed: Kiosk) -> None:
    await _unseen_pickup(sensed)
    await reconcile(sensed.ctx)  # the kiosk restarted before polling again
    assert allocations.get_allocation(sensed.store.db, "a1").status is AllocationStatus.PICKED_UP


async def test_staff_open_door_re_pulses_a_waiting_pickup_and_settles_its_parcel(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    kiosk.allocate("a1", code="ABC234", door=3, status=AllocationStatus.DEPOSITED)
    fake_bank.jam(3)
    [waiting] = (await pick_up(kiosk.ctx, "ABC234")).openings
    assert waiting.outcome is OpeningOutcome.NOT_DETECTED
    fake_bank.jam(3, False)

    opened = await open_door(
        kiosk.ctx, 3, actor=Actor.STAFF, reason="customer waiting", requested_by="staff-anna"
    )

    assert opened.opened
    assert opened.operation_id == waiting.operation_id  # the customer's own operation
    fake_bank.close(3)
    await kiosk.poll()
    assert allocations.get_allocation(kiosk.store.db, "a1").status is AllocationStatus.PICKED_UP
    retry = [e for e in audit.entries(kiosk.store.db, command="unlock") if e.actor is Actor.STAFF]
    assert retry[0].detail["requested_by"] == "staff-anna"


async def test_doors_found_open_at_first_boot_are_not_tampers(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    fake_bank.open_by_hand(4)

    report = await reconcile(kiosk.ctx)

    assert report.tampered == []
    assert report.found_open_at_first_sight == [4]
    assert not report.wiring_suspect
    assert kiosk.events(EventType.DOOR_TAMPERED) == []
    assert kiosk.door(4).fault is None


async def test_most_doors_open_at_boot_points_at_polarity_or_wiring(
    kiosk: Kiosk, fake_bank: FakeDoorBank, caplog: pytest.LogCaptureFixture
) -> None:
    await reconcile(kiosk.ctx)  # an earlier boot saw every door shut
    for door in range(1, 7):
        fake_bank.open_by_hand(door)

    report = await reconcile(kiosk.ctx)

    assert report.wiring_suspect
    assert report.tampered == []
    assert "lock-bit polarity" in caplog.text
    [entry] = audit.entries(kiosk.store.db, command="door_bank")
    assert entry.result == "wiring_suspect"


async def test_a_fault_is_cleared_and_audited_with_who_cleared_it(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    await kiosk.poll()
    fake_bank.open_by_hand(5)
    await kiosk.poll()
    assert kiosk.door(5).fault == "opened without a command"

    cleared = clear_fault(
        kiosk.store, 5, actor=Actor.STAFF, cleared_by="staff-anna", now=kiosk.clock.now()
    )

    assert cleared == "opened without a command"
    assert kiosk.door(5).fault is None
    [entry] = audit.entries(kiosk.store.db, command="clear_fault")
    assert entry.detail == {"fault": "opened without a command", "cleared_by": "staff-anna"}


async def test_tamper_left_open_and_abandonment_reach_the_log(
    kiosk: Kiosk, fake_bank: FakeDoorBank, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    await kiosk.poll()
    fake_bank.open_by_hand(1)
    await kiosk.poll()
    kiosk.clock.advance(timedelta(minutes=3))
    sweep(kiosk.ctx)
    kiosk.allocate("a1", code="ABC234", door=2, status=AllocationStatus.DEPOSITED)
    fake_bank.jam(2)
    await pick_up(kiosk.ctx, "ABC234")
    kiosk.clock.advance(kiosk.ctx.rules.abandon_after)
    sweep(kiosk.ctx)

    assert "door 1 opened without a command" in caplog.text
    assert "door 1 left open" in caplog.text
    assert "abandoned (door never opened)" in caplog.text
