"""Driver drop-off by barcode, door substitution and the driver's problem reports."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kiosk.flows.drop_off import DoorProblem, drop_off, report_problem
from kiosk.flows.refusals import FlowRefused, Refusal
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.store import allocations, audit, door_access
from kiosk.store.changes import ApplyOutcome
from kiosk.store.records import Actor, EventType
from shared.sizes import Size
from shared.states import AllocationStatus, DoorStatus

from .conftest import Kiosk


async def test_a_scanned_parcel_opens_its_door_and_closing_it_deposits_the_parcel(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    kiosk.allocate("a1", door=2, barcode="PKG-1")
    assert kiosk.door(2).status is DoorStatus.RESERVED

    result = await drop_off(kiosk.ctx, " PKG-1 ", driver_id="drv-7")

    assert result.door == 2
    assert result.opening.opened
    assert result.replaced_door is None
    assert allocations.get_allocation(kiosk.store.db, "a1").status is AllocationStatus.RESERVED

    fake_bank.close(2)
    await kiosk.poll()

    parcel = allocations.get_allocation(kiosk.store.db, "a1")
    assert parcel.status is AllocationStatus.DEPOSITED
    assert parcel.pickup_expires_at == kiosk.clock.now() + timedelta(days=3)
    assert kiosk.door(2).status is DoorStatus.OCCUPIED
    [event] = kiosk.events(EventType.PARCEL_DEPOSITED)
    assert event.payload["door"] == 2
    assert event.payload["driver_id"] == "drv-7"


async def test_an_unknown_barcode_is_refused_and_audited(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    with pytest.raises(FlowRefused) as refused:
        await drop_off(kiosk.ctx, "NOPE", driver_id="drv-7")

    assert refused.value.refusal is Refusal.UNKNOWN_BARCODE
    assert sum(fake_bank.pulses(d) for d in fake_bank.doors) == 0
    [entry] = audit.entries(kiosk.store.db, command="scan")
    assert entry.result == "unknown_barcode"
    assert entry.actor is Actor.DRIVER


async def test_a_parcel_without_a_door_here_gets_the_smallest_free_door_that_fits(
    kiosk: Kiosk,
) -> None:
    kiosk.allocate("a1", size=Size.MEDIUM, barcode="PKG-M")

    result = await drop_off(kiosk.ctx, "PKG-M", driver_id="d")

    assert result.door == 4
    assert result.door_size is Size.MEDIUM


async def test_a_proposed_door_that_is_taken_here_is_substituted_and_reported(
    kiosk: Kiosk,
) -> None:
    kiosk.allocate("a1", door=1, barcode="PKG-1")
    # The cloud proposes door 1 again for another parcel: the kiosk does not take it.
    kiosk.allocate("a2", door=1, barcode="PKG-2")
    assert allocations.get_allocation(kiosk.store.db, "a2").door is None
    assert [e.payload["allocation_id"] for e in kiosk.events(EventType.PROPOSED_DOOR_UNAVAILABLE)]

    result = await drop_off(kiosk.ctx, "PKG-2", driver_id="d")

    assert result.door == 2
    assert result.replaced_door == 1
    [substituted] = kiosk.events(EventType.DOOR_SUBSTITUTED)
    assert substituted.payload == {
        "allocation_id": "a2",
        "door": 2,
        "replaced_door": 1,
        "actor": "driver",
    }


async def test_door_did_not_open_puts_it_in_maintenance_and_opens_another_of_the_same_size(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    kiosk.allocate("a1", door=4, size=Size.MEDIUM, barcode="PKG-1")
    fake_bank.kill_solenoid(4)
    first = await drop_off(kiosk.ctx, "PKG-1", driver_id="d")
    assert not first.opening.opened

    second = await report_problem(
        kiosk.ctx,
        first.opening.operation_id,
        DoorProblem.DID_NOT_OPEN,
        actor=Actor.DRIVER,
        reporter="d",
    )

    assert second.door == 5
    assert second.opening.opened
    assert second.replaced_door == 4
    assert kiosk.door(4).status is DoorStatus.MAINTENANCE
    assert "did not open" in (kiosk.door(4).maintenance_reason or "")
    assert allocations.get_allocation(kiosk.store.db, "a1").door == 5
    fake_bank.close(5)
    await kiosk.poll()
    assert allocations.get_allocation(kiosk.store.db, "a1").status is AllocationStatus.DEPOSITED


async def test_door_not_empty_moves_the_parcel_to_a_larger_door_when_none_of_its_size_is_free(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    kiosk.allocate("a1", door=6, size=Size.LARGE, barcode="PKG-L")
    first = await drop_off(kiosk.ctx, "PKG-L", driver_id="d")

    second = await report_problem(
        kiosk.ctx,
        first.opening.operation_id,
        DoorProblem.NOT_EMPTY,
        actor=Actor.DRIVER,
        reporter="d",
    )

    assert second.door == 7
    assert second.door_size is Size.XLARGE
    assert kiosk.door(6).status is DoorStatus.MAINTENANCE
    # Door 6 is still physically open; shutting it completes nothing and is no tamper.
    fake_bank.close(6)
    await kiosk.poll()
    assert kiosk.events(EventType.DOOR_TAMPERED) == []


async def test_no_free_door_left_is_refused_but_the_faulty_door_stays_out_of_service(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    kiosk.allocate("a1", door=7, size=Size.XLARGE, barcode="PKG-XL")
    fake_bank.jam(7)
    first = await drop_off(kiosk.ctx, "PKG-XL", driver_id="d")

    with pytest.raises(FlowRefused) as refused:
        await report_problem(
            kiosk.ctx,
            first.opening.operation_id,
            DoorProblem.DID_NOT_OPEN,
            actor=Actor.DRIVER,
            reporter="d",
        )

    assert refused.value.refusal is Refusal.NO_FREE_DOOR
    assert kiosk.door(7).status is DoorStatus.MAINTENANCE
    assert allocations.get_allocation(kiosk.store.db, "a1").door is None


async def test_a_parcel_already_deposited_is_refused_with_its_door(kiosk: Kiosk) -> None:
    kiosk.allocate("a1", door=3, barcode="PKG-1", status=AllocationStatus.DEPOSITED)

    with pytest.raises(FlowRefused) as refused:
        await drop_off(kiosk.ctx, "PKG-1", driver_id="d")

    assert refused.value.refusal is Refusal.ALREADY_DEPOSITED
    assert "locker 3" in refused.value.message


async def test_an_expired_reservation_is_refused(kiosk: Kiosk) -> None:
    kiosk.allocate("a1", door=3, barcode="PKG-1", reservation_hours=1)
    kiosk.clock.advance(timedelta(hours=2))

    with pytest.raises(FlowRefused) as refused:
        await drop_off(kiosk.ctx, "PKG-1", driver_id="d")

    assert refused.value.refusal is Refusal.RESERVATION_EXPIRED


async def test_scanning_again_while_the_door_is_open_says_where_to_put_it(kiosk: Kiosk) -> None:
    kiosk.allocate("a1", door=3, barcode="PKG-1")
    await drop_off(kiosk.ctx, "PKG-1", driver_id="d")

    with pytest.raises(FlowRefused) as refused:
        await drop_off(kiosk.ctx, "PKG-1", driver_id="d")

    assert refused.value.refusal is Refusal.DOOR_BUSY
    assert "Locker 3 is already open" in refused.value.message


async def test_a_door_shut_empty_does_not_deposit_when_the_compartment_sensor_says_empty(
    kiosk: Kiosk,
) -> None:
    bank = FakeDoorBank(sorted(range(1, 9)), kiosk.bank.timing, occupancy_sensors=True)
    ctx = kiosk.ctx.__class__(kiosk.store, bank, kiosk.clock, kiosk.ctx.rules)
    kiosk.allocate("a1", door=3, barcode="PKG-1")
    kiosk.allocate("a2", door=4, barcode="PKG-2", size=Size.MEDIUM)

    await drop_off(ctx, "PKG-1", driver_id="d")
    await drop_off(ctx, "PKG-2", driver_id="d")
    bank.set_occupied(4)
    bank.close(3)
    bank.close(4)
    for door, state in (await bank.read_states()).items():
        from kiosk.monitor import record_reading

        record_reading(ctx, door, state)

    assert allocations.get_allocation(kiosk.store.db, "a1").status is AllocationStatus.RESERVED
    assert allocations.get_allocation(kiosk.store.db, "a2").status is AllocationStatus.DEPOSITED
    closed = audit.entries(kiosk.store.db, command="door_closed")
    assert [(e.door, e.result) for e in closed] == [(3, "closed empty"), (4, "deposited")]


async def test_a_parcel_in_a_door_within_reach_is_substituted_only_by_one_within_reach(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    # issue 10: the cloud flagged doors 1 and 3 within reach (door_access); 2 is the smallest
    # free small door otherwise, and is out of reach.
    for door in (1, 3):
        assert door_access.set_accessible(kiosk.store, door, True).outcome is ApplyOutcome.APPLIED
    kiosk.allocate("a1", door=1, barcode="PKG-1")
    fake_bank.kill_solenoid(1)
    first = await drop_off(kiosk.ctx, "PKG-1", driver_id="d")

    second = await report_problem(
        kiosk.ctx, first.opening.operation_id, DoorProblem.DID_NOT_OPEN, actor=Actor.DRIVER,
        reporter="d",
    )  # fmt: skip

    assert second.door == 3
    assert second.replaced_door == 1


async def test_with_no_other_door_within_reach_the_driver_is_told_to_keep_the_parcel(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    assert door_access.set_accessible(kiosk.store, 1, True).outcome is ApplyOutcome.APPLIED
    kiosk.allocate("a1", door=1, barcode="PKG-1")
    fake_bank.kill_solenoid(1)
    first = await drop_off(kiosk.ctx, "PKG-1", driver_id="d")

    with pytest.raises(FlowRefused) as refused:
        await report_problem(
            kiosk.ctx, first.opening.operation_id, DoorProblem.DID_NOT_OPEN, actor=Actor.DRIVER,
            reporter="d",
        )  # fmt: skip

    assert refused.value.refusal is Refusal.NO_FREE_DOOR
    assert "Keep the parcel" in refused.value.message
