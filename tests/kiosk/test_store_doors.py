"""Doors in the store: layout, the door state machine, sensor readings, faults, free-door choice."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kiosk.store import NotInTransaction, Store, operations
from kiosk.store import doors as door_records
from kiosk.store.records import Actor, Purpose
from shared.clock import ManualClock
from shared.sizes import Size
from shared.states import DoorStatus, IllegalTransition
from tests.kiosk.store_helpers import LAYOUT


def test_sync_layout_adds_every_door_available(bare_store: Store, clock: ManualClock) -> None:
    with bare_store.transaction() as db:
        added = door_records.sync_layout(db, LAYOUT, clock.now())
    assert added == sorted(LAYOUT)
    listed = door_records.list_doors(bare_store.db)
    assert [(d.number, d.size, d.status) for d in listed] == [
        (n, s, DoorStatus.AVAILABLE) for n, s in sorted(LAYOUT.items())
    ]
    assert all(d.sensor_open is None and d.fault is None for d in listed)


def test_sync_layout_again_adds_nothing(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        assert door_records.sync_layout(db, LAYOUT, clock.now()) == []
    assert len(door_records.list_doors(store.db)) == len(LAYOUT)


def test_sync_layout_resizes_only_free_doors(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        door_records.set_status(db, 2, DoorStatus.RESERVED, clock.now())
        door_records.sync_layout(db, {**LAYOUT, 1: Size.LARGE, 2: Size.LARGE}, clock.now())
    assert door_records.get_door(store.db, 1).size is Size.LARGE
    # A reserved door keeps the size its parcel was chosen for.
    assert door_records.get_door(store.db, 2).size is Size.SMALL


def test_sync_layout_puts_free_doors_that_left_the_layout_in_maintenance(
    store: Store, clock: ManualClock
) -> None:
    with store.transaction() as db:
        door_records.set_status(db, 5, DoorStatus.RESERVED, clock.now())
        smaller = {n: s for n, s in LAYOUT.items() if n not in (5, 6)}
        door_records.sync_layout(db, smaller, clock.now())
    six = door_records.get_door(store.db, 6)
    assert six.status is DoorStatus.MAINTENANCE
    assert six.maintenance_reason == "not in the layout"
    # A door holding a reservation is kept as it is: its parcel still needs it.
    assert door_records.get_door(store.db, 5).status is DoorStatus.RESERVED


def test_get_door_of_an_unknown_number_raises(store: Store) -> None:
    with pytest.raises(door_records.UnknownDoorRecord) as info:
        door_records.get_door(store.db, 99)
    assert info.value.door == 99


def test_set_status_follows_the_door_state_machine(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        door = door_records.set_status(db, 1, DoorStatus.RESERVED, clock.now())
        assert door.status is DoorStatus.RESERVED
        door_records.set_status(db, 1, DoorStatus.OCCUPIED, clock.now())
        door_records.set_status(db, 1, DoorStatus.AWAITING_COLLECTION, clock.now())
        door_records.set_status(db, 1, DoorStatus.AVAILABLE, clock.now())
    assert door_records.get_door(store.db, 1).status is DoorStatus.AVAILABLE


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ([DoorStatus.RESERVED, DoorStatus.OCCUPIED], DoorStatus.RESERVED),
        ([DoorStatus.RESERVED, DoorStatus.OCCUPIED], DoorStatus.MAINTENANCE),
        ([DoorStatus.MAINTENANCE], DoorStatus.RESERVED),
        ([], DoorStatus.AWAITING_COLLECTION),
    ],
)
def test_set_status_refuses_illegal_moves_and_writes_nothing(
    store: Store, clock: ManualClock, start: list[DoorStatus], target: DoorStatus
) -> None:
    with store.transaction() as db:
        for status in start:
            door_records.set_status(db, 3, status, clock.now())
    before = door_records.get_door(store.db, 3)
    with pytest.raises(IllegalTransition), store.transaction() as db:
        door_records.set_status(db, 3, target, clock.now())
    assert door_records.get_door(store.db, 3) == before


def test_set_status_to_the_same_status_is_a_no_op(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        assert door_records.set_status(db, 4, DoorStatus.AVAILABLE, clock.now()).status is (
            DoorStatus.AVAILABLE
        )


def test_maintenance_reason_is_kept_in_maintenance_and_cleared_after(
    store: Store, clock: ManualClock
) -> None:
    with store.transaction() as db:
        door_records.set_status(db, 2, DoorStatus.MAINTENANCE, clock.now(), reason="hinge")
    assert door_records.get_door(store.db, 2).maintenance_reason == "hinge"
    with store.transaction() as db:
        door_records.set_status(db, 2, DoorStatus.AVAILABLE, clock.now(), reason="ignored")
    assert door_records.get_door(store.db, 2).maintenance_reason is None


def test_door_writes_need_a_transaction(store: Store, clock: ManualClock) -> None:
    with pytest.raises(NotInTransaction):
        door_records.set_status(store.db, 1, DoorStatus.RESERVED, clock.now())
    with pytest.raises(NotInTransaction):
        door_records.record_sensors(store.db, 1, True, None, clock.now())
    with pytest.raises(NotInTransaction):
        door_records.set_fault(store.db, 1, "jammed", clock.now())
    assert door_records.get_door(store.db, 1).status is DoorStatus.AVAILABLE


def test_sensor_readings_are_stored_only_when_they_change(store: Store, clock: ManualClock) -> None:
    opened_at = clock.now()
    with store.transaction() as db:
        assert door_records.record_sensors(db, 1, True, False, opened_at) is True
    clock.advance(0.5)
    with store.transaction() as db:
        assert door_records.record_sensors(db, 1, True, False, clock.now()) is False
    door = door_records.get_door(store.db, 1)
    assert (door.sensor_open, door.sensor_occupied, door.sensor_changed_at) == (
        True,
        False,
        opened_at,
    )


def test_occupancy_change_keeps_the_time_the_door_opened(store: Store, clock: ManualClock) -> None:
    opened_at = clock.now()
    with store.transaction() as db:
        door_records.record_sensors(db, 1, True, False, opened_at)
    clock.advance(3)
    with store.transaction() as db:
        assert door_records.record_sensors(db, 1, True, True, clock.now()) is True
    door = door_records.get_door(store.db, 1)
    assert door.sensor_occupied is True
    assert door.sensor_changed_at == opened_at


def test_a_door_shut_again_resets_its_left_open_alert(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        door_records.record_sensors(db, 1, True, None, clock.now())
        door_records.mark_left_open_alerted(db, 1, clock.now() + timedelta(minutes=2))
    assert door_records.get_door(store.db, 1).left_open_alerted_at is not None
    clock.advance(300)
    with store.transaction() as db:
        door_records.record_sensors(db, 1, True, True, clock.now())
    # Still open: the alert of this opening stays raised.
    assert door_records.get_door(store.db, 1).left_open_alerted_at is not None
    with store.transaction() as db:
        door_records.record_sensors(db, 1, False, True, clock.now())
    shut = door_records.get_door(store.db, 1)
    assert shut.left_open_alerted_at is None
    assert shut.sensor_open is False
    assert shut.sensor_changed_at == clock.now()


def test_record_sensors_on_an_unknown_door_raises(store: Store, clock: ManualClock) -> None:
    with pytest.raises(door_records.UnknownDoorRecord), store.transaction() as db:
        door_records.record_sensors(db, 42, True, None, clock.now())


def test_fault_is_recorded_and_cleared(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        door_records.set_fault(db, 3, "open_not_detected", clock.now())
    assert door_records.get_door(store.db, 3).fault == "open_not_detected"
    with store.transaction() as db:
        door_records.set_fault(db, 3, None, clock.now())
    assert door_records.get_door(store.db, 3).fault is None


def _free(store: Store, size: Size, exclude: list[int] | None = None) -> int | None:
    door = door_records.find_free_door(store.db, size, exclude or [])
    return None if door is None else door.number


def test_find_free_door_prefers_the_smallest_fitting_then_the_lowest_number(
    store: Store,
) -> None:
    assert _free(store, Size.SMALL) == 1
    assert _free(store, Size.MEDIUM) == 3
    assert _free(store, Size.LARGE) == 5
    assert _free(store, Size.XLARGE) == 6
    assert _free(store, Size.SMALL, exclude=[1, 2]) == 3


def test_find_free_door_skips_doors_not_available_or_in_use(
    store: Store, clock: ManualClock
) -> None:
    with store.transaction() as db:
        door_records.set_status(db, 1, DoorStatus.RESERVED, clock.now())
        door_records.set_status(db, 2, DoorStatus.MAINTENANCE, clock.now())
        operations.create_operation(
            db, door=3, purpose=Purpose.OPEN, actor=Actor.STAFF, now=clock.now()
        )
    free = door_records.find_free_door(store.db, Size.SMALL)
    assert free is not None
    assert free.number == 4


def test_find_free_door_returns_none_when_nothing_fits(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        door_records.set_status(db, 6, DoorStatus.MAINTENANCE, clock.now())
    assert door_records.find_free_door(store.db, Size.XLARGE) is None
    assert door_records.find_free_door(store.db, Size.LARGE, exclude=[5]) is None
