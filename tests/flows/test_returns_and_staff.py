"""Customer returns, staff collection and maintenance, staff and remote opening."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kiosk.flows.pickup import pick_up
from kiosk.flows.refusals import FlowRefused, Refusal
from kiosk.flows.returns import drop_off_return
from kiosk.flows.staff import confirm_collected, open_door, open_for_collection, set_maintenance
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.store import allocations, audit
from kiosk.store.records import Actor, AllocationKind, EventType
from shared.sizes import Size
from shared.states import AllocationStatus, DoorStatus

from .conftest import Kiosk

RETURN_CODE = "RTN234"


async def test_a_return_code_opens_a_door_and_closing_it_confirms_the_return(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    kiosk.allocate("r1", code=RETURN_CODE, kind=AllocationKind.RETURN, size=Size.MEDIUM)

    result = await drop_off_return(kiosk.ctx, RETURN_CODE)

    assert result.door == 4
    assert result.opened
    fake_bank.close(4)
    await kiosk.poll()
    parcel = allocations.get_allocation(kiosk.store.db, "r1")
    assert parcel.status is AllocationStatus.DEPOSITED
    assert [e.payload["allocation_id"] for e in kiosk.events(EventType.RETURN_DEPOSITED)] == ["r1"]
    # The return now waits for staff.
    assert [
        a.allocation_id for a in allocations.collectable(kiosk.store.db, kiosk.clock.now())
    ] == ["r1"]
    with pytest.raises(FlowRefused) as refused:
        await drop_off_return(kiosk.ctx, RETURN_CODE)
    assert refused.value.refusal is Refusal.CODE_USED


async def test_a_pickup_code_at_the_return_screen_is_refused_without_counting(
    kiosk: Kiosk,
) -> None:
    kiosk.allocate("a1", code="ABC234", door=1, status=AllocationStatus.DEPOSITED)

    with pytest.raises(FlowRefused) as refused:
        await drop_off_return(kiosk.ctx, "ABC234")

    assert refused.value.refusal is Refusal.WRONG_KIND_OF_CODE
    assert "Pick up a parcel" in refused.value.message


async def test_a_return_whose_door_never_opens_releases_its_code_after_the_limit(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    from kiosk.monitor import sweep

    kiosk.allocate("r1", code=RETURN_CODE, kind=AllocationKind.RETURN, door=1)
    fake_bank.jam(1)
    result = await drop_off_return(kiosk.ctx, RETURN_CODE)
    assert not result.opened

    kiosk.clock.advance(timedelta(minutes=11))
    sweep(kiosk.ctx)

    assert [e.type for e in kiosk.events()][-2:] == [
        EventType.OPERATION_ABANDONED,
        EventType.CODE_RELEASED,
    ]
    fake_bank.jam(1, False)
    again = await drop_off_return(kiosk.ctx, RETURN_CODE)
    assert again.opened


async def test_a_pickup_code_is_never_released_once_its_door_was_pulsed(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    from kiosk.monitor import sweep

    kiosk.allocate("a1", code="ABC234", door=1, status=AllocationStatus.DEPOSITED)
    fake_bank.jam(1)
    await pick_up(kiosk.ctx, "ABC234")
    kiosk.clock.advance(timedelta(minutes=11))
    sweep(kiosk.ctx)

    assert kiosk.events(EventType.OPERATION_ABANDONED)
    assert kiosk.events(EventType.CODE_RELEASED) == []
    with pytest.raises(FlowRefused) as refused:
        await pick_up(kiosk.ctx, "ABC234")
    assert refused.value.refusal is Refusal.CODE_USED


async def test_staff_open_expired_doors_and_confirm_each_collected_parcel(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    kiosk.allocate("a1", code="ABC234", door=1, status=AllocationStatus.DEPOSITED)
    kiosk.allocate("a2", code="DEF234", door=2, status=AllocationStatus.EXPIRED)
    kiosk.allocate(
        "a3",
        code="GHJ234",
        door=3,
        status=AllocationStatus.DEPOSITED,
        pickup_expires_at=kiosk.clock.now() + timedelta(days=3),
    )
    kiosk.clock.advance(timedelta(days=1))

    openings = await open_for_collection(kiosk.ctx, staff_id="s1")

    # a1 has no pickup window from the cloud and the kiosk does not expire it on its own; a2 is
    # expired; a3 is still within its window.
    assert [o.door for o in openings] == [2]
    assert fake_bank.is_open(2)
    assert not fake_bank.is_open(3)

    collected = confirm_collected(kiosk.ctx, "a2", staff_id="s1")
    assert collected.status is AllocationStatus.COLLECTED
    fake_bank.close(2)
    await kiosk.poll()
    assert kiosk.door(2).status is DoorStatus.AVAILABLE
    assert [e.payload["allocation_id"] for e in kiosk.events(EventType.PARCEL_COLLECTED)] == ["a2"]
    # Staff collection stays audited under actor staff with their staff id (couriers': driver).
    [taken] = audit.entries(kiosk.store.db, command="confirm_collected")
    assert (taken.actor, taken.detail) == (Actor.STAFF, {"allocation_id": "a2", "staff_id": "s1"})

    with pytest.raises(FlowRefused) as refused:
        confirm_collected(kiosk.ctx, "a3", staff_id="s1")
    assert refused.value.refusal is Refusal.NOT_COLLECTABLE


async def test_maintenance_takes_a_free_door_out_of_service_and_back(kiosk: Kiosk) -> None:
    set_maintenance(kiosk.ctx, 8, True, reason="hinge broken")
    assert kiosk.door(8).status is DoorStatus.MAINTENANCE
    assert kiosk.door(8).maintenance_reason == "hinge broken"

    set_maintenance(kiosk.ctx, 8, False, reason=None)
    assert kiosk.door(8).status is DoorStatus.AVAILABLE
    results = [(e.command, e.result) for e in audit.entries(kiosk.store.db)]
    assert results == [("maintenance_on", "done"), ("maintenance_off", "done")]


async def test_a_door_with_a_parcel_cannot_go_into_maintenance(kiosk: Kiosk) -> None:
    kiosk.allocate("a1", code="ABC234", door=1, status=AllocationStatus.DEPOSITED)

    with pytest.raises(FlowRefused) as refused:
        set_maintenance(kiosk.ctx, 1, True, reason="x")

    assert refused.value.refusal is Refusal.DOOR_HAS_PARCEL
    assert kiosk.door(1).status is DoorStatus.OCCUPIED
    with pytest.raises(FlowRefused) as unknown:
        set_maintenance(kiosk.ctx, 99, True, reason="x")
    assert unknown.value.refusal is Refusal.UNKNOWN_DOOR


async def test_a_remote_open_opens_one_door_and_is_audited_as_remote(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    kiosk.allocate("a1", code="ABC234", door=1, status=AllocationStatus.DEPOSITED)

    opened = await open_door(
        kiosk.ctx, 1, actor=Actor.REMOTE, reason="customer on the phone", requested_by="op-3"
    )

    assert opened.opened
    fake_bank.close(1)
    await kiosk.poll()
    # Nothing changed hands: the parcel is still there for its customer.
    assert allocations.get_allocation(kiosk.store.db, "a1").status is AllocationStatus.DEPOSITED
    [unlock] = audit.entries(kiosk.store.db, command="unlock")
    assert unlock.actor is Actor.REMOTE
    assert unlock.detail["requested_by"] == "op-3"
    with pytest.raises(FlowRefused) as refused:
        await open_door(kiosk.ctx, 42, actor=Actor.STAFF, reason="x", requested_by="s")
    assert refused.value.refusal is Refusal.UNKNOWN_DOOR
