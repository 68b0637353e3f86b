"""Allocations in the store: the status walk, the door that follows, and invariant 1."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

import pytest
from sqlite_utils import Database

from kiosk.store import NotInTransaction, Store
from kiosk.store import allocations as alloc
from kiosk.store import doors as door_records
from kiosk.store.records import AllocationKind
from shared.clock import ManualClock
from shared.sizes import Size
from shared.states import (
    ALLOCATION_TRANSITIONS,
    DOOR_STATUS_FOR_ALLOCATION,
    AllocationStatus,
    DoorStatus,
    IllegalTransition,
)

A = AllocationStatus


def _insert(
    db: Database,
    allocation_id: str,
    now: datetime,
    *,
    status: AllocationStatus = A.RESERVED,
    size: Size = Size.SMALL,
    kind: AllocationKind = AllocationKind.DELIVERY,
    barcode: str | None = None,
    pickup_expires_at: datetime | None = None,
) -> alloc.Allocation:
    return alloc.insert_allocation(
        db,
        allocation_id=allocation_id,
        kind=kind,
        barcode=barcode or f"PKG-{allocation_id}",
        size=size,
        status=status,
        code_id=None,
        proposed_door=None,
        reservation_expires_at=now + timedelta(hours=24),
        pickup_expires_at=pickup_expires_at,
        revision=1,
        now=now,
    )


def _reserve(store: Store, allocation_id: str, door: int, now: datetime) -> None:
    with store.transaction() as db:
        _insert(db, allocation_id, now)
        alloc.assign_door(db, allocation_id, door, now)


def _door_status(store: Store, door: int) -> DoorStatus:
    return door_records.get_door(store.db, door).status


# --- insert and read ---


def test_insert_creates_an_allocation_without_a_door(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        created = _insert(db, "a1", clock.now(), size=Size.MEDIUM)
    assert created == alloc.get_allocation(store.db, "a1")
    assert created.door is None
    assert created.status is A.RESERVED
    assert created.size is Size.MEDIUM
    assert created.reservation_expires_at == clock.now() + timedelta(hours=24)
    assert created.finished_at is None


def test_insert_in_a_final_status_stamps_finished_at(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        created = _insert(db, "a1", clock.now(), status=A.CANCELLED)
    assert created.finished_at == clock.now()


def test_insert_of_an_existing_id_is_an_integrity_error(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        _insert(db, "a1", clock.now())
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as db:
        _insert(db, "a1", clock.now(), barcode="OTHER")
    assert alloc.get_allocation(store.db, "a1").barcode == "PKG-a1"


def test_unknown_allocation(store: Store) -> None:
    with pytest.raises(alloc.UnknownAllocation) as info:
        alloc.get_allocation(store.db, "nope")
    assert info.value.allocation_id == "nope"
    assert alloc.find_allocation(store.db, "nope") is None


def test_allocation_writes_need_a_transaction(store: Store, clock: ManualClock) -> None:
    with pytest.raises(NotInTransaction):
        _insert(store.db, "a1", clock.now())
    assert alloc.list_allocations(store.db) == []


def test_list_allocations_filters_by_status(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        _insert(db, "a1", clock.now())
        _insert(db, "a2", clock.now(), status=A.CANCELLED)
        _insert(db, "a3", clock.now(), status=A.DEPOSITED)
    assert [a.allocation_id for a in alloc.list_allocations(store.db)] == ["a1", "a2", "a3"]
    assert [
        a.allocation_id for a in alloc.list_allocations(store.db, [A.RESERVED, A.DEPOSITED])
    ] == ["a1", "a3"]
    assert alloc.list_allocations(store.db, []) == []


def test_find_by_barcode_prefers_the_live_allocation(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        _insert(db, "old", clock.now(), barcode="PKG-1")
        alloc.move(db, "old", A.CANCELLED, clock.now())
    clock.advance(60)
    with store.transaction() as db:
        _insert(db, "new", clock.now(), barcode="PKG-1")
    clock.advance(60)
    with store.transaction() as db:
        _insert(db, "newest-cancelled", clock.now(), barcode="PKG-1", status=A.CANCELLED)
    found = alloc.find_by_barcode(store.db, "PKG-1", AllocationKind.DELIVERY)
    assert found is not None
    assert found.allocation_id == "new"
    assert alloc.find_by_barcode(store.db, "PKG-1", AllocationKind.RETURN) is None
    assert alloc.find_by_barcode(store.db, "PKG-2", AllocationKind.DELIVERY) is None


def test_update_fields_sets_descriptive_fields_only(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        _insert(db, "a1", clock.now())
        later = clock.now() + timedelta(days=2)
        updated = alloc.update_fields(
            db, "a1", clock.now(), barcode="PKG-X", size=Size.LARGE, pickup_expires_at=later
        )
    assert (updated.barcode, updated.size, updated.pickup_expires_at) == (
        "PKG-X",
        Size.LARGE,
        later,
    )
    with pytest.raises(ValueError, match="status"), store.transaction() as db:
        alloc.update_fields(db, "a1", clock.now(), status="picked_up")
    with pytest.raises(ValueError, match="door"), store.transaction() as db:
        alloc.update_fields(db, "a1", clock.now(), door=3)
    with pytest.raises(alloc.UnknownAllocation), store.transaction() as db:
        alloc.update_fields(db, "zz", clock.now(), barcode="B")
    assert alloc.get_allocation(store.db, "a1").status is A.RESERVED


# --- the status walk and the door that follows ---


def test_a_delivery_walks_reserved_deposited_picked_up_with_its_door(
    store: Store, clock: ManualClock
) -> None:
    _reserve(store, "a1", 2, clock.now())
    assert _door_status(store, 2) is DoorStatus.RESERVED
    window_end = clock.now() + timedelta(days=3)
    deposited_at = clock.advance(60)
    with store.transaction() as db:
        moved = alloc.move(db, "a1", A.DEPOSITED, deposited_at, pickup_expires_at=window_end)
    assert moved.status is A.DEPOSITED
    assert moved.deposited_at == deposited_at
    assert moved.pickup_expires_at == window_end
    assert _door_status(store, 2) is DoorStatus.OCCUPIED
    picked_at = clock.advance(3600)
    with store.transaction() as db:
        done = alloc.move(db, "a1", A.PICKED_UP, picked_at)
    assert done.status is A.PICKED_UP
    assert done.finished_at == picked_at
    assert done.deposited_at == deposited_at
    assert _door_status(store, 2) is DoorStatus.AVAILABLE


def test_a_deposit_keeps_a_pickup_window_already_set(store: Store, clock: ManualClock) -> None:
    first = clock.now() + timedelta(days=1)
    with store.transaction() as db:
        _insert(db, "a1", clock.now(), pickup_expires_at=first)
        alloc.assign_door(db, "a1", 1, clock.now())
        moved = alloc.move(
            db, "a1", A.DEPOSITED, clock.now(), pickup_expires_at=first + timedelta(days=9)
        )
    assert moved.pickup_expires_at == first


def test_expiry_then_collection_walks_the_door_through_awaiting_collection(
    store: Store, clock: ManualClock
) -> None:
    _reserve(store, "a1", 3, clock.now())
    with store.transaction() as db:
        alloc.move(db, "a1", A.DEPOSITED, clock.now())
        alloc.move(db, "a1", A.EXPIRED, clock.now())
    assert _door_status(store, 3) is DoorStatus.AWAITING_COLLECTION
    with store.transaction() as db:
        alloc.move(db, "a1", A.COLLECTED, clock.now())
    assert _door_status(store, 3) is DoorStatus.AVAILABLE


def test_cancelling_a_reservation_frees_its_door_and_keeps_the_reason(
    store: Store, clock: ManualClock
) -> None:
    _reserve(store, "a1", 1, clock.now())
    with store.transaction() as db:
        cancelled = alloc.move(db, "a1", A.CANCELLED, clock.now(), cancel_reason="carrier")
    assert cancelled.status is A.CANCELLED
    assert _door_status(store, 1) is DoorStatus.AVAILABLE
    reason = store.db.execute("SELECT cancel_reason FROM allocations").fetchone()
    assert reason == ("carrier",)


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ([], A.PICKED_UP),
        ([], A.EXPIRED),
        ([A.DEPOSITED], A.RESERVED),
        ([A.DEPOSITED], A.CANCELLED),
        ([A.CANCELLED], A.RESERVED),
        ([A.DEPOSITED, A.PICKED_UP], A.DEPOSITED),
        ([A.DEPOSITED, A.PICKED_UP], A.PICKED_UP),
        ([A.DEPOSITED, A.EXPIRED], A.DEPOSITED),
    ],
)
def test_illegal_allocation_moves_raise_and_change_nothing(
    store: Store, clock: ManualClock, path: list[AllocationStatus], target: AllocationStatus
) -> None:
    _reserve(store, "a1", 4, clock.now())
    with store.transaction() as db:
        for status in path:
            alloc.move(db, "a1", status, clock.now())
    before = (alloc.get_allocation(store.db, "a1"), _door_status(store, 4))
    clock.advance(10)
    with pytest.raises(IllegalTransition), store.transaction() as db:
        alloc.move(db, "a1", target, clock.now())
    assert (alloc.get_allocation(store.db, "a1"), _door_status(store, 4)) == before


@pytest.mark.parametrize(
    "path",
    [
        [A.CANCELLED],
        [A.DEPOSITED, A.PICKED_UP],
        [A.DEPOSITED, A.COLLECTED],
        [A.DEPOSITED, A.EXPIRED],
        [A.DEPOSITED, A.EXPIRED, A.PICKED_UP],
        [A.DEPOSITED, A.EXPIRED, A.COLLECTED],
    ],
)
def test_the_door_always_has_the_status_that_goes_with_its_allocation(
    store: Store, clock: ManualClock, path: list[AllocationStatus]
) -> None:
    _reserve(store, "a1", 5, clock.now())
    for status in path:
        assert status in ALLOCATION_TRANSITIONS[alloc.get_allocation(store.db, "a1").status]
        with store.transaction() as db:
            alloc.move(db, "a1", status, clock.now())
        expected = DOOR_STATUS_FOR_ALLOCATION.get(status, DoorStatus.AVAILABLE)
        assert _door_status(store, 5) is expected


def test_moving_an_allocation_without_a_door_touches_no_door(
    store: Store, clock: ManualClock
) -> None:
    with store.transaction() as db:
        _insert(db, "a1", clock.now())
        alloc.move(db, "a1", A.CANCELLED, clock.now())
    assert {d.status for d in door_records.list_doors(store.db)} == {DoorStatus.AVAILABLE}


def test_move_of_an_unknown_allocation_raises(store: Store, clock: ManualClock) -> None:
    with pytest.raises(alloc.UnknownAllocation), store.transaction() as db:
        alloc.move(db, "ghost", A.CANCELLED, clock.now())


# --- assigning doors ---


def test_assign_door_moves_a_reservation_and_frees_the_old_door(
    store: Store, clock: ManualClock
) -> None:
    _reserve(store, "a1", 1, clock.now())
    with store.transaction() as db:
        moved = alloc.assign_door(db, "a1", 2, clock.now())
    assert moved.door == 2
    assert (_door_status(store, 1), _door_status(store, 2)) == (
        DoorStatus.AVAILABLE,
        DoorStatus.RESERVED,
    )
    with store.transaction() as db:
        none = alloc.assign_door(db, "a1", None, clock.now())
    assert none.door is None
    assert _door_status(store, 2) is DoorStatus.AVAILABLE


def test_assign_door_to_the_same_door_is_a_no_op(store: Store, clock: ManualClock) -> None:
    _reserve(store, "a1", 1, clock.now())
    with store.transaction() as db:
        assert alloc.assign_door(db, "a1", 1, clock.now()).door == 1
    assert _door_status(store, 1) is DoorStatus.RESERVED


def test_assign_door_gives_a_deposited_parcel_an_occupied_door(
    store: Store, clock: ManualClock
) -> None:
    with store.transaction() as db:
        _insert(db, "a1", clock.now(), status=A.DEPOSITED)
        alloc.assign_door(db, "a1", 3, clock.now())
        _insert(db, "a2", clock.now(), status=A.EXPIRED)
        alloc.assign_door(db, "a2", 4, clock.now())
    assert _door_status(store, 3) is DoorStatus.OCCUPIED
    assert _door_status(store, 4) is DoorStatus.AWAITING_COLLECTION


def test_assign_door_refuses_a_door_in_maintenance(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        door_records.set_status(db, 2, DoorStatus.MAINTENANCE, clock.now())
        _insert(db, "a1", clock.now())
    with pytest.raises(IllegalTransition), store.transaction() as db:
        alloc.assign_door(db, "a1", 2, clock.now())
    assert alloc.get_allocation(store.db, "a1").door is None
    assert _door_status(store, 2) is DoorStatus.MAINTENANCE


def test_a_refused_door_assignment_writes_nothing_even_if_the_caller_goes_on(
    store: Store, clock: ManualClock
) -> None:
    """A flow may catch the refusal and try another door in the same transaction."""
    _reserve(store, "a1", 1, clock.now())
    _reserve(store, "a2", 2, clock.now())
    with store.transaction() as db:
        door_records.set_status(db, 3, DoorStatus.MAINTENANCE, clock.now())
    with store.transaction() as db:
        with pytest.raises(sqlite3.IntegrityError):
            alloc.assign_door(db, "a1", 2, clock.now())  # door 2 holds a2
        with pytest.raises(IllegalTransition):
            alloc.assign_door(db, "a1", 3, clock.now())  # door 3 is in maintenance
    assert alloc.get_allocation(store.db, "a1").door == 1
    assert _door_status(store, 1) is DoorStatus.RESERVED
    assert _door_status(store, 3) is DoorStatus.MAINTENANCE
    # And door 1 is still taken: nothing else can be given it.
    free = door_records.find_free_door(store.db, Size.SMALL)
    assert free is not None
    assert free.number == 4


def test_a_refused_move_writes_nothing_even_if_the_caller_goes_on(
    store: Store, clock: ManualClock
) -> None:
    _reserve(store, "a1", 1, clock.now())
    with store.transaction() as db:
        # Out of step on purpose: the door no longer reads reserved.
        db.execute("UPDATE doors SET status = 'maintenance' WHERE number = 1")
    with store.transaction() as db, pytest.raises(IllegalTransition):
        alloc.move(db, "a1", A.DEPOSITED, clock.now())
    assert alloc.get_allocation(store.db, "a1").status is A.RESERVED


# --- invariant 1 as a database constraint ---


def test_two_live_allocations_on_one_door_are_impossible(store: Store, clock: ManualClock) -> None:
    _reserve(store, "a1", 1, clock.now())
    with store.transaction() as db:
        _insert(db, "a2", clock.now())
    # Even bypassing every check in the code, the database refuses.
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as db:
        db.execute("UPDATE allocations SET door = 1 WHERE allocation_id = 'a2'")
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as db:
        db.execute(
            "INSERT INTO allocations (allocation_id, kind, barcode, size, door, status,"
            " created_at, updated_at) VALUES ('a3', 'delivery', 'B', 'small', 1, 'deposited',"
            " 'x', 'x')"
        )
    assert [a.allocation_id for a in alloc.list_allocations(store.db) if a.door == 1] == ["a1"]


@pytest.mark.parametrize("live", [A.RESERVED, A.DEPOSITED, A.EXPIRED])
def test_every_live_status_counts_for_the_one_parcel_per_door_rule(
    store: Store, clock: ManualClock, live: AllocationStatus
) -> None:
    with store.transaction() as db:
        _insert(db, "a1", clock.now(), status=live)
        db.execute("UPDATE allocations SET door = 6 WHERE allocation_id = 'a1'")
        _insert(db, "a2", clock.now(), status=A.RESERVED)
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as db:
        db.execute("UPDATE allocations SET door = 6 WHERE allocation_id = 'a2'")


def test_finished_allocations_do_not_hold_their_door(store: Store, clock: ManualClock) -> None:
    _reserve(store, "a1", 1, clock.now())
    with store.transaction() as db:
        alloc.move(db, "a1", A.DEPOSITED, clock.now())
        alloc.move(db, "a1", A.PICKED_UP, clock.now())
    _reserve(store, "a2", 1, clock.now())
    with store.transaction() as db:
        alloc.move(db, "a2", A.CANCELLED, clock.now())
    _reserve(store, "a3", 1, clock.now())
    assert [a.allocation_id for a in alloc.list_allocations(store.db) if a.door == 1] == [
        "a1",
        "a2",
        "a3",
    ]
    assert _door_status(store, 1) is DoorStatus.RESERVED


def test_an_allocation_has_one_door_column_so_a_new_door_replaces_the_old(
    store: Store, clock: ManualClock
) -> None:
    columns = [row[1] for row in store.db.execute("PRAGMA table_info(allocations)")]
    assert columns.count("door") == 1
    assert not [c for c in columns if c.startswith("door") and c != "door"]
    _reserve(store, "a1", 3, clock.now())
    with store.transaction() as db:
        alloc.assign_door(db, "a1", 4, clock.now())
    held = store.db.execute(
        "SELECT number FROM doors WHERE status != 'available' ORDER BY number"
    ).fetchall()
    assert held == [(4,)]


def test_door_must_exist(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        _insert(db, "a1", clock.now())
    with pytest.raises(door_records.UnknownDoorRecord), store.transaction() as db:
        alloc.assign_door(db, "a1", 77, clock.now())
    # A foreign key, should the code be bypassed.
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as db:
        db.execute("UPDATE allocations SET door = 77 WHERE allocation_id = 'a1'")
    assert alloc.get_allocation(store.db, "a1").door is None


# --- what staff collect ---


def test_collectable_lists_expired_overdue_and_returns(store: Store, clock: ManualClock) -> None:
    now = clock.now()
    with store.transaction() as db:
        _insert(db, "expired", now, status=A.EXPIRED)
        alloc.assign_door(db, "expired", 1, now)
        _insert(db, "overdue", now, status=A.DEPOSITED, pickup_expires_at=now)
        alloc.assign_door(db, "overdue", 2, now)
        _insert(db, "waiting", now, status=A.DEPOSITED, pickup_expires_at=now + timedelta(1))
        alloc.assign_door(db, "waiting", 3, now)
        _insert(db, "return", now, status=A.DEPOSITED, kind=AllocationKind.RETURN)
        alloc.assign_door(db, "return", 4, now)
        _insert(db, "reserved", now)
        alloc.assign_door(db, "reserved", 5, now)
    assert [a.allocation_id for a in alloc.collectable(store.db, now)] == [
        "expired",
        "overdue",
        "return",
    ]
    later = now + timedelta(days=2)
    assert "waiting" in [a.allocation_id for a in alloc.collectable(store.db, later)]


def test_insert_return_keeps_the_first_details(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        _insert(db, "r1", clock.now(), kind=AllocationKind.RETURN)
        alloc.insert_return(db, "r1", "order-1", "too small", clock.now())
        alloc.insert_return(db, "r1", "order-2", "other", clock.now())
    assert store.db.execute("SELECT order_id, reason FROM returns").fetchall() == [
        ("order-1", "too small")
    ]
