"""`kiosk.sync.apply` on an in-memory store: checkpoints all or nothing, refusals, snapshots."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from kiosk.store import CodeHasher, KioskIdentity, Store, allocations, changes, doors
from kiosk.store.records import Actor
from kiosk.sync import apply
from kiosk.sync.apply import CheckpointStatus, apply_changes, apply_snapshot
from shared.protocol import AllocationChange, ChangesBody, MaintenanceChange, SnapshotBody
from shared.states import AllocationStatus, DoorStatus

from .conftest import LAYOUT, SECRET, allocation

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.in_memory(CodeHasher(SECRET), KioskIdentity("loc-a", "kiosk-a")) as store:
        with store.transaction() as db:
            doors.sync_layout(db, LAYOUT, NOW)
        yield store


def body(first: int, *entries: AllocationChange | MaintenanceChange) -> ChangesBody:
    return ChangesBody(
        from_revision=first - 1, to_revision=first + len(entries) - 1, changes=list(entries)
    )


def alloc(revision: int, allocation_id: str, **fields: object) -> AllocationChange:
    return AllocationChange(revision=revision, allocation=allocation(allocation_id, **fields))  # type: ignore[arg-type]


def test_a_checkpoint_is_applied_all_or_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(changes, "set_door_maintenance", broken)
    checkpoint = body(1, alloc(1, "a1", door=1), MaintenanceChange(revision=2, door=2, on=True))
    with pytest.raises(sqlite3.OperationalError):
        apply_changes(store, checkpoint, NOW)
    assert changes.last_revision(store.db) == 0
    assert allocations.list_allocations(store.db) == []


def test_a_refused_change_is_skipped_and_still_moves_the_revision(store: Store) -> None:
    result = apply_changes(
        store,
        body(1, MaintenanceChange(revision=1, door=99, on=True), alloc(2, "a1", door=1)),
        NOW,
    )
    assert result.status is CheckpointStatus.APPLIED
    assert result.last_revision == 2
    assert [(r.revision, r.subject, r.reason) for r in result.refused] == [
        (1, "door 99", "no such door here")
    ]
    assert allocations.get_allocation(store.db, "a1").door == 1


def test_an_inconsistent_checkpoint_changes_nothing(store: Store) -> None:
    skipping = ChangesBody(from_revision=0, to_revision=3, changes=[alloc(1, "a1"), alloc(3, "a3")])
    result = apply_changes(store, skipping, NOW)
    assert result.status is CheckpointStatus.INCONSISTENT
    assert changes.last_revision(store.db) == 0
    assert allocations.list_allocations(store.db) == []


def test_an_empty_checkpoint_ahead_of_the_kiosk_is_a_gap(store: Store) -> None:
    assert apply_changes(store, body(1, alloc(1, "a1")), NOW).status is CheckpointStatus.APPLIED
    up_to_date = ChangesBody(from_revision=1, to_revision=1, changes=[])
    assert apply_changes(store, up_to_date, NOW).status is CheckpointStatus.DUPLICATE
    ahead = ChangesBody(from_revision=5, to_revision=5, changes=[])
    assert apply_changes(store, ahead, NOW).status is CheckpointStatus.GAP


def test_a_partly_known_checkpoint_applies_only_what_is_new(store: Store) -> None:
    apply_changes(store, body(1, alloc(1, "a1", door=1), alloc(2, "a2", door=2)), NOW)
    # The cloud re-sends 2 with 3: revision 2 is not applied again (a2 stays on door 2).
    result = apply_changes(store, body(2, alloc(2, "a2", door=3), alloc(3, "a3", door=4)), NOW)
    assert (result.status, result.applied, result.last_revision) == (
        CheckpointStatus.APPLIED,
        1,
        3,
    )
    assert allocations.get_allocation(store.db, "a2").door == 2


def test_a_snapshot_keeps_a_reservation_whose_door_is_in_use(store: Store) -> None:
    from kiosk.flows.context import FlowContext
    from kiosk.flows.opening import begin_opening
    from kiosk.hardware.fake_bank import FakeDoorBank
    from kiosk.store.records import Purpose
    from shared.clock import ManualClock

    apply_changes(store, body(1, alloc(1, "r1", door=1)), NOW)
    ctx = FlowContext(store, FakeDoorBank(sorted(LAYOUT)), ManualClock(NOW))
    with store.transaction() as db:  # a driver is putting the parcel in right now
        begin_opening(
            ctx, db, door=1, purpose=Purpose.DROP_OFF, actor=Actor.DRIVER, allocation_id="r1"
        )
    result = apply_snapshot(store, SnapshotBody(revision=10, allocations=[], maintenance=[]), NOW)
    assert result.kept == ("r1",)
    assert allocations.get_allocation(store.db, "r1").status is AllocationStatus.RESERVED
    assert changes.last_revision(store.db) == 10


def test_a_snapshot_sets_and_clears_the_clouds_maintenance_only(store: Store) -> None:
    apply_changes(
        store,
        body(
            1,
            MaintenanceChange(revision=1, door=1, on=True, reason="cloud"),
            MaintenanceChange(revision=2, door=2, on=True, reason="cloud"),
        ),
        NOW,
    )
    changes.set_door_maintenance(store, 3, True, reason="staff", actor=Actor.STAFF, now=NOW)
    snapshot = SnapshotBody(
        revision=5,
        allocations=[],
        maintenance=[{"door": 2, "reason": "cloud"}, {"door": 4, "reason": "new"}],  # type: ignore[list-item]
    )
    apply_snapshot(store, snapshot, NOW)
    statuses = {d.number: d.status for d in doors.list_doors(store.db)}
    assert statuses[1] is DoorStatus.AVAILABLE  # the cloud no longer lists it
    assert statuses[2] is DoorStatus.MAINTENANCE
    assert statuses[3] is DoorStatus.MAINTENANCE  # set by staff here: stays
    assert statuses[4] is DoorStatus.MAINTENANCE
    assert apply.CLOUD_ACTOR is Actor.REMOTE
