"""Changes from the cloud (and staff) applied to the store: idempotent, ordered by revision,
and never against a physical fact or the kiosk's authority over its doors."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from kiosk.store import Store, audit, changes, codes, operations, outbox
from kiosk.store import allocations as alloc
from kiosk.store import doors as door_records
from kiosk.store.changes import ApplyOutcome, apply_allocation, cancel_allocation, last_revision
from kiosk.store.records import Actor, AllocationKind, EventType, Purpose
from shared.clock import ManualClock
from shared.codes import PickupCode
from shared.sizes import Size
from shared.states import AllocationStatus, DoorStatus
from tests.kiosk.store_helpers import apply, update

A = AllocationStatus


def _door(store: Store, number: int) -> DoorStatus:
    return door_records.get_door(store.db, number).status


def _events(store: Store) -> list[EventType]:
    return [e.type for e in outbox.events(store.db)]


def _busy(store: Store, clock: ManualClock, door: int, allocation_id: str | None = None) -> str:
    with store.transaction() as db:
        return operations.create_operation(
            db,
            door=door,
            purpose=Purpose.DROP_OFF,
            actor=Actor.DRIVER,
            now=clock.now(),
            allocation_id=allocation_id,
        ).operation_id


def _deposit(store: Store, clock: ManualClock, allocation_id: str) -> None:
    with store.transaction() as db:
        alloc.move(db, allocation_id, A.DEPOSITED, clock.now())


# --- the update value ---


def test_an_update_needs_an_id_a_barcode_and_aware_times(clock: ManualClock) -> None:
    good = update("a1", clock=clock)
    with pytest.raises(ValueError, match="id and a barcode"):
        replace(good, allocation_id=" ")
    with pytest.raises(ValueError, match="id and a barcode"):
        replace(good, barcode="")
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(good, reservation_expires_at=clock.now().replace(tzinfo=None))


def test_an_update_never_shows_its_code() -> None:
    assert "K7XW9P" not in repr(update("a1", code="K7XW9P"))


def test_negative_revisions_are_refused(store: Store, clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="revisions"):
        apply(store, clock, "a1", -1)
    with pytest.raises(ValueError, match="revisions"):
        cancel_allocation(store, "a1", "x", -1, clock.now())
    with pytest.raises(ValueError, match="revisions"):
        changes.set_door_maintenance(
            store, 1, True, reason=None, actor=Actor.REMOTE, now=clock.now(), revision=-1
        )
    assert alloc.list_allocations(store.db) == []
    assert _door(store, 1) is DoorStatus.AVAILABLE


# --- apply_allocation ---


def test_a_new_reservation_takes_its_free_proposed_door(store: Store, clock: ManualClock) -> None:
    result = apply(store, clock, "a1", 1, door=3, size=Size.MEDIUM)
    assert result.outcome is ApplyOutcome.APPLIED
    created = alloc.get_allocation(store.db, "a1")
    assert (created.status, created.door, created.proposed_door, created.revision) == (
        A.RESERVED,
        3,
        3,
        1,
    )
    assert _door(store, 3) is DoorStatus.RESERVED
    assert last_revision(store.db) == 1


def test_the_revision_advances_in_the_same_transaction_as_the_change(
    store: Store, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(changes.allocations, "insert_allocation", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        apply(store, clock, "a1", 7, door=1)
    assert last_revision(store.db) == 0
    monkeypatch.undo()
    apply(store, clock, "a1", 7, door=1)
    assert last_revision(store.db) == 7


def test_a_duplicate_changes_nothing(store: Store, clock: ManualClock) -> None:
    apply(store, clock, "a1", 4, door=2, code="K7XW9P")
    before = (
        alloc.get_allocation(store.db, "a1"),
        door_records.list_doors(store.db),
        outbox.events(store.db),
        store.db.execute("SELECT * FROM codes").fetchall(),
    )
    clock.advance(60)
    again = apply(store, clock, "a1", 4, door=2, code="K7XW9P")
    assert again.outcome is ApplyOutcome.STALE
    after = (
        alloc.get_allocation(store.db, "a1"),
        door_records.list_doors(store.db),
        outbox.events(store.db),
        store.db.execute("SELECT * FROM codes").fetchall(),
    )
    assert after == before
    assert last_revision(store.db) == 4


def test_a_stale_revision_is_ignored(store: Store, clock: ManualClock) -> None:
    apply(store, clock, "a1", 5, door=1, barcode="NEW")
    result = apply(store, clock, "a1", 3, door=2, barcode="OLD")
    assert result.outcome is ApplyOutcome.STALE
    current = alloc.get_allocation(store.db, "a1")
    assert (current.barcode, current.door, current.revision) == ("NEW", 1, 5)
    assert _door(store, 2) is DoorStatus.AVAILABLE
    assert last_revision(store.db) == 5  # never goes back


def test_a_newer_revision_updates_the_allocation(store: Store, clock: ManualClock) -> None:
    apply(store, clock, "a1", 1, door=1, code="K7XW9P")
    clock.advance(60)
    result = apply(store, clock, "a1", 2, door=4, size=Size.MEDIUM, barcode="B2", code="HQ4MZT")
    assert result.outcome is ApplyOutcome.APPLIED
    current = alloc.get_allocation(store.db, "a1")
    assert (current.barcode, current.size, current.door, current.revision) == (
        "B2",
        Size.MEDIUM,
        4,
        2,
    )
    assert current.reservation_expires_at == clock.now() + timedelta(hours=24)
    assert (_door(store, 1), _door(store, 4)) == (DoorStatus.AVAILABLE, DoorStatus.RESERVED)
    assert current.code_id is not None
    code = codes.get_code(store.db, current.code_id)
    assert code.code_hash == store.hasher.hash(PickupCode("HQ4MZT"))


def test_a_proposed_door_that_is_taken_is_not_taken(store: Store, clock: ManualClock) -> None:
    apply(store, clock, "a1", 1, door=1)
    result = apply(store, clock, "a2", 2, door=1)
    assert result.outcome is ApplyOutcome.APPLIED
    assert result.reason is not None
    assert "door 1" in result.reason
    second = alloc.get_allocation(store.db, "a2")
    assert (second.door, second.proposed_door, second.status) == (None, 1, A.RESERVED)
    assert alloc.get_allocation(store.db, "a1").door == 1
    (event,) = outbox.events(store.db)
    assert event.type is EventType.PROPOSED_DOOR_UNAVAILABLE
    assert event.payload["allocation_id"] == "a2"
    assert event.payload["proposed_door"] == 1


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        ("maintenance", "maintenance"),
        ("in_use", "in use"),
        ("too_small", "needs large"),
        ("unknown", "no such door"),
    ],
)
def test_a_proposed_door_that_is_not_free_here_is_not_taken(
    store: Store, clock: ManualClock, setup: str, why: str
) -> None:
    door, size = 2, Size.SMALL
    if setup == "maintenance":
        changes.set_door_maintenance(
            store, door, True, reason="hinge", actor=Actor.STAFF, now=clock.now()
        )
    elif setup == "in_use":
        _busy(store, clock, door)
    elif setup == "too_small":
        size = Size.LARGE
    else:
        door = 42
    result = apply(store, clock, "a1", 1, door=door, size=size)
    assert result.outcome is ApplyOutcome.APPLIED
    assert result.reason is not None
    assert why in result.reason
    assert alloc.get_allocation(store.db, "a1").door is None
    assert _events(store)[-1] is EventType.PROPOSED_DOOR_UNAVAILABLE


def test_a_reservation_keeps_its_door_when_a_new_proposal_is_not_free(
    store: Store, clock: ManualClock
) -> None:
    apply(store, clock, "a1", 1, door=1)
    apply(store, clock, "a2", 2, door=2)
    result = apply(store, clock, "a1", 3, door=2)
    assert result.outcome is ApplyOutcome.APPLIED
    assert alloc.get_allocation(store.db, "a1").door == 1
    assert alloc.get_allocation(store.db, "a2").door == 2
    assert _events(store) == []  # it still has a door: nothing to report


def test_a_reservation_without_a_proposal_gets_no_door(store: Store, clock: ManualClock) -> None:
    apply(store, clock, "a1", 1)
    assert alloc.get_allocation(store.db, "a1").door is None
    assert {d.status for d in door_records.list_doors(store.db)} == {DoorStatus.AVAILABLE}


def test_a_deposited_parcel_from_a_snapshot_occupies_its_door(
    store: Store, clock: ManualClock
) -> None:
    apply(store, clock, "a1", 1, door=5, status=A.DEPOSITED)
    apply(store, clock, "a2", 2, door=6, status=A.EXPIRED)
    assert _door(store, 5) is DoorStatus.OCCUPIED
    assert _door(store, 6) is DoorStatus.AWAITING_COLLECTION


def test_its_own_code_sent_again_does_not_revive_a_code_spent_here(
    store: Store, clock: ManualClock
) -> None:
    # The customer's code is spent at the kiosk and the door is open; the cloud, told of the
    # code_used, logs the parcel again with the same code before the door shuts. The code must
    # stay spent (it once came back live: the demo's second scan of a used code then said
    # "nothing to open" instead of "already used").
    apply(store, clock, "a1", 1, door=5, status=A.DEPOSITED, code="K7XW9P")
    parcel = alloc.find_allocation(store.db, "a1")
    assert parcel is not None
    assert parcel.code_id is not None
    with store.transaction() as db:
        codes.mark_used(db, parcel.code_id, clock.now())
    clock.advance(timedelta(seconds=1))

    result = apply(store, clock, "a1", 2, door=5, status=A.DEPOSITED, code="K7XW9P")

    assert result.outcome is ApplyOutcome.APPLIED
    again = alloc.find_allocation(store.db, "a1")
    assert again is not None
    assert again.code_id == parcel.code_id
    live = store.db.execute("SELECT count(*) FROM codes WHERE used_at IS NULL").fetchone()
    assert live == (0,)


def test_a_new_code_for_a_parcel_replaces_its_old_one(store: Store, clock: ManualClock) -> None:
    apply(store, clock, "a1", 1, door=5, status=A.DEPOSITED, code="K7XW9P")
    before = alloc.find_allocation(store.db, "a1")
    apply(store, clock, "a1", 2, door=5, status=A.DEPOSITED, code="M4RT8Q")  # re-issued
    after = alloc.find_allocation(store.db, "a1")
    assert before is not None
    assert after is not None
    assert after.code_id != before.code_id


def test_a_return_records_its_order(store: Store, clock: ManualClock) -> None:
    returned = replace(
        update("r1", kind=AllocationKind.RETURN, clock=clock),
        order_id="order-9",
        return_reason="wrong size",
    )
    apply_allocation(store, returned, 1, clock.now())
    assert store.db.execute("SELECT order_id, reason FROM returns").fetchall() == [
        ("order-9", "wrong size")
    ]


def test_the_cloud_may_cancel_a_reservation_and_expire_a_parcel(
    store: Store, clock: ManualClock
) -> None:
    apply(store, clock, "a1", 1, door=1)
    apply(store, clock, "a2", 2, door=2, status=A.DEPOSITED)
    assert apply(store, clock, "a1", 3, door=1, status=A.CANCELLED).outcome is (
        ApplyOutcome.APPLIED
    )
    assert apply(store, clock, "a2", 4, door=2, status=A.EXPIRED).outcome is (ApplyOutcome.APPLIED)
    assert alloc.get_allocation(store.db, "a1").status is A.CANCELLED
    assert alloc.get_allocation(store.db, "a2").status is A.EXPIRED
    assert (_door(store, 1), _door(store, 2)) == (
        DoorStatus.AVAILABLE,
        DoorStatus.AWAITING_COLLECTION,
    )


@pytest.mark.parametrize(
    ("here", "cloud"),
    [
        (A.DEPOSITED, A.CANCELLED),  # deposited here: the cloud cannot cancel it
        (A.DEPOSITED, A.RESERVED),  # the cloud has not heard of the deposit yet
        (A.PICKED_UP, A.EXPIRED),  # taken out offline after the cloud expired it
        (A.RESERVED, A.DEPOSITED),  # a deposit is made at the kiosk, not reported to it
        (A.RESERVED, A.PICKED_UP),
    ],
)
def test_physical_facts_win_over_the_clouds_status(
    store: Store, clock: ManualClock, here: AllocationStatus, cloud: AllocationStatus
) -> None:
    apply(store, clock, "a1", 1, door=1)
    if here is not A.RESERVED:
        _deposit(store, clock, "a1")
    if here is A.PICKED_UP:
        with store.transaction() as db:
            alloc.move(db, "a1", A.PICKED_UP, clock.now())
    door_before = _door(store, 1)
    result = apply(store, clock, "a1", 2, door=1, status=cloud)
    assert result.outcome is ApplyOutcome.REFUSED
    assert alloc.get_allocation(store.db, "a1").status is here
    assert _door(store, 1) is door_before


def test_the_cloud_cannot_cancel_a_reservation_whose_door_is_open(
    store: Store, clock: ManualClock
) -> None:
    apply(store, clock, "a1", 1, door=1)
    _busy(store, clock, 1, allocation_id="a1")
    result = apply(store, clock, "a1", 2, door=1, status=A.CANCELLED)
    # Blocked, not refused: nothing of it is written (`kiosk.sync.deferred` keeps it).
    assert result.outcome is ApplyOutcome.BLOCKED
    assert alloc.get_allocation(store.db, "a1").status is A.RESERVED
    assert alloc.get_allocation(store.db, "a1").revision == 1
    assert _door(store, 1) is DoorStatus.RESERVED


def test_a_reservation_being_dropped_off_keeps_its_door(store: Store, clock: ManualClock) -> None:
    apply(store, clock, "a1", 1, door=1)
    _busy(store, clock, 1, allocation_id="a1")
    apply(store, clock, "a1", 2, door=2)
    assert alloc.get_allocation(store.db, "a1").door == 1
    assert _door(store, 2) is DoorStatus.AVAILABLE


# --- cancel_allocation ---


def test_cancel_frees_the_door_and_is_idempotent(store: Store, clock: ManualClock) -> None:
    apply(store, clock, "a1", 1, door=4)
    result = cancel_allocation(store, "a1", "carrier recalled", 2, clock.now())
    assert result.outcome is ApplyOutcome.APPLIED
    cancelled = alloc.get_allocation(store.db, "a1")
    assert (cancelled.status, cancelled.revision) == (A.CANCELLED, 2)
    assert _door(store, 4) is DoorStatus.AVAILABLE
    assert last_revision(store.db) == 2
    again = cancel_allocation(store, "a1", "carrier recalled", 2, clock.now())
    assert again.outcome is ApplyOutcome.UNCHANGED
    assert alloc.get_allocation(store.db, "a1") == cancelled


def test_cancel_is_refused_for_a_parcel_already_deposited(store: Store, clock: ManualClock) -> None:
    apply(store, clock, "a1", 1, door=2)
    _deposit(store, clock, "a1")
    result = cancel_allocation(store, "a1", "late cancel", 2, clock.now())
    assert result.outcome is ApplyOutcome.REFUSED
    assert result.reason is not None
    assert "deposited" in result.reason
    assert alloc.get_allocation(store.db, "a1").status is A.DEPOSITED
    assert _door(store, 2) is DoorStatus.OCCUPIED
    assert last_revision(store.db) == 2


def test_cancel_is_refused_while_the_door_is_being_used(store: Store, clock: ManualClock) -> None:
    apply(store, clock, "a1", 1, door=2)
    _busy(store, clock, 2, allocation_id="a1")
    result = cancel_allocation(store, "a1", "x", 2, clock.now())
    assert result.outcome is ApplyOutcome.BLOCKED
    assert alloc.get_allocation(store.db, "a1").status is A.RESERVED


def test_cancel_of_an_unknown_allocation_is_refused(store: Store, clock: ManualClock) -> None:
    result = cancel_allocation(store, "ghost", "x", 3, clock.now())
    assert result.outcome is ApplyOutcome.REFUSED
    assert alloc.list_allocations(store.db) == []


# --- set_door_maintenance ---


def _maintenance(
    store: Store, clock: ManualClock, door: int, on: bool, revision: int | None = None
) -> changes.ApplyResult:
    return changes.set_door_maintenance(
        store, door, on, reason="sensor", actor=Actor.REMOTE, now=clock.now(), revision=revision
    )


def test_maintenance_on_and_off_is_audited_and_reported(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        door_records.set_fault(db, 3, "open_not_detected", clock.now())
    assert _maintenance(store, clock, 3, True, revision=5).outcome is ApplyOutcome.APPLIED
    door = door_records.get_door(store.db, 3)
    assert (door.status, door.maintenance_reason) == (DoorStatus.MAINTENANCE, "sensor")
    assert last_revision(store.db) == 5
    assert _maintenance(store, clock, 3, True).outcome is ApplyOutcome.UNCHANGED
    assert _maintenance(store, clock, 3, False).outcome is ApplyOutcome.APPLIED
    door = door_records.get_door(store.db, 3)
    assert (door.status, door.maintenance_reason, door.fault) == (
        DoorStatus.AVAILABLE,
        None,
        None,
    )
    assert _events(store) == [EventType.DOOR_MAINTENANCE, EventType.DOOR_MAINTENANCE]
    assert [e.payload["on"] for e in outbox.events(store.db)] == [True, False]
    assert [(e.command, e.result) for e in audit.entries(store.db)] == [
        ("maintenance_on", "done"),
        ("maintenance_off", "done"),
    ]


def test_maintenance_on_a_reserved_door_detaches_its_reservation(
    store: Store, clock: ManualClock
) -> None:
    apply(store, clock, "a1", 1, door=2)
    assert _maintenance(store, clock, 2, True).outcome is ApplyOutcome.APPLIED
    assert alloc.get_allocation(store.db, "a1").door is None
    assert alloc.get_allocation(store.db, "a1").status is A.RESERVED
    assert _door(store, 2) is DoorStatus.MAINTENANCE
    (event,) = outbox.events(store.db)
    assert event.payload["detached_allocation_id"] == "a1"


@pytest.mark.parametrize("expired", [False, True])
def test_maintenance_on_a_door_with_a_parcel_is_refused(
    store: Store, clock: ManualClock, expired: bool
) -> None:
    apply(store, clock, "a1", 1, door=2, status=A.EXPIRED if expired else A.DEPOSITED)
    before = _door(store, 2)
    result = _maintenance(store, clock, 2, True)
    assert result.outcome is ApplyOutcome.REFUSED
    assert _door(store, 2) is before
    assert alloc.get_allocation(store.db, "a1").door == 2
    assert _events(store) == []
    assert [(e.command, e.result) for e in audit.entries(store.db)] == [
        ("maintenance_on", "refused")
    ]


def test_maintenance_on_a_door_in_use_is_refused(store: Store, clock: ManualClock) -> None:
    _busy(store, clock, 4)
    assert _maintenance(store, clock, 4, True).outcome is ApplyOutcome.REFUSED
    assert _door(store, 4) is DoorStatus.AVAILABLE


@pytest.mark.parametrize("status", [A.RESERVED, A.DEPOSITED, A.EXPIRED])
def test_maintenance_off_on_a_door_in_service_leaves_its_parcel_alone(
    store: Store, clock: ManualClock, status: AllocationStatus
) -> None:
    apply(store, clock, "a1", 1, door=2, status=status)
    before = (_door(store, 2), alloc.get_allocation(store.db, "a1"))
    result = _maintenance(store, clock, 2, False)
    assert result.outcome is ApplyOutcome.UNCHANGED
    assert _events(store) == []
    assert (_door(store, 2), alloc.get_allocation(store.db, "a1")) == before
    # The door still counts as taken: no second parcel can be given it.
    free = door_records.find_free_door(store.db, Size.SMALL)
    assert free is not None
    assert free.number != 2


def test_maintenance_of_an_unknown_door_raises(store: Store, clock: ManualClock) -> None:
    with pytest.raises(door_records.UnknownDoorRecord):
        _maintenance(store, clock, 99, True, revision=3)
    assert last_revision(store.db) == 0


def test_a_late_duplicate_of_an_older_maintenance_change_is_stale(
    store: Store, clock: ManualClock
) -> None:
    assert _maintenance(store, clock, 5, True, revision=3).outcome is ApplyOutcome.APPLIED
    assert _maintenance(store, clock, 5, False, revision=4).outcome is ApplyOutcome.APPLIED
    late = _maintenance(store, clock, 5, True, revision=3)
    assert late.outcome is ApplyOutcome.STALE
    assert _door(store, 5) is DoorStatus.AVAILABLE
    assert len(_events(store)) == 2
    assert last_revision(store.db) == 4


def test_a_refused_maintenance_change_is_not_applied_by_its_late_duplicate(
    store: Store, clock: ManualClock
) -> None:
    apply(store, clock, "a1", 1, door=2, status=A.DEPOSITED)
    assert _maintenance(store, clock, 2, True, revision=2).outcome is ApplyOutcome.REFUSED
    with store.transaction() as db:
        alloc.move(db, "a1", A.PICKED_UP, clock.now())
    assert _maintenance(store, clock, 2, True, revision=2).outcome is ApplyOutcome.STALE
    assert _door(store, 2) is DoorStatus.AVAILABLE


def test_staff_maintenance_does_not_block_newer_cloud_changes(
    store: Store, clock: ManualClock
) -> None:
    assert _maintenance(store, clock, 5, True, revision=3).outcome is ApplyOutcome.APPLIED
    assert _maintenance(store, clock, 5, False).outcome is ApplyOutcome.APPLIED  # staff, no rev
    assert _maintenance(store, clock, 5, True, revision=3).outcome is ApplyOutcome.STALE
    assert _door(store, 5) is DoorStatus.AVAILABLE
    assert _maintenance(store, clock, 5, True, revision=6).outcome is ApplyOutcome.APPLIED
    assert _door(store, 5) is DoorStatus.MAINTENANCE
