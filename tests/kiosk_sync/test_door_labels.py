"""Door labels from the cloud (issue 10): applied from changes and snapshots, shown on screen."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from kiosk.store import CodeHasher, KioskIdentity, Store, door_access, doors
from kiosk.store.door_labels import door_namer, label_of
from kiosk.sync.apply import CheckpointStatus, apply_changes, apply_snapshot
from shared.protocol import (
    ChangesBody,
    DoorAccessChange,
    DoorLabelChange,
    DoorLabelState,
    SnapshotBody,
)
from shared.snapshot_parts import SnapshotAssembly, split_snapshot

from .conftest import LAYOUT, SECRET

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.in_memory(CodeHasher(SECRET), KioskIdentity("loc-a", "kiosk-a")) as store:
        with store.transaction() as db:
            doors.sync_layout(db, LAYOUT, NOW)
        yield store


def test_a_label_change_names_the_door_on_screen(store: Store) -> None:
    name = door_namer(store)
    assert name(1) == "1"  # no label yet: the number
    body = ChangesBody(
        from_revision=0,
        to_revision=2,
        changes=[
            DoorLabelChange(revision=1, door=1, label="A1"),
            DoorLabelChange(revision=2, door=999, label="Z9"),
        ],
    )
    result = apply_changes(store, body, NOW)
    assert result.status is CheckpointStatus.APPLIED
    assert label_of(store.db, 1) == "A1"
    assert name(1) == "A1"
    # A door this kiosk does not have is refused, and the revision still moves on.
    assert [(r.revision, r.reason) for r in result.refused] == [(2, "no such door here")]
    assert result.last_revision == 2


def test_a_snapshot_carries_every_label(store: Store) -> None:
    numbers = sorted(LAYOUT)
    body = SnapshotBody(
        revision=5,
        allocations=[],
        maintenance=[],
        labels=[DoorLabelState(door=n, label=f"B{n}") for n in numbers],
    )
    assert apply_snapshot(store, body, NOW).status is CheckpointStatus.APPLIED
    assert [label_of(store.db, n) for n in numbers] == [f"B{n}" for n in numbers]


def test_a_bad_label_is_refused_by_the_protocol() -> None:
    with pytest.raises(ValueError, match="pattern"):
        DoorLabelChange(revision=1, door=1, label="A 1; DROP")


def test_the_accessible_flag_arrives_in_changes_and_snapshots(store: Store) -> None:
    # issue 10: door_access in the change log, accessible_doors in a snapshot's part 1.
    body = ChangesBody(
        from_revision=0,
        to_revision=2,
        changes=[
            DoorAccessChange(revision=1, door=1, accessible=True),
            DoorAccessChange(revision=2, door=999, accessible=True),
        ],
    )
    result = apply_changes(store, body, NOW)
    assert result.status is CheckpointStatus.APPLIED
    assert door_access.accessible_doors(store.db) == {1}
    assert [(r.revision, r.reason) for r in result.refused] == [(2, "no such door here")]
    # A snapshot lists every door within reach: door 1 is no longer, 2 and 3 are.
    parts = split_snapshot(
        SnapshotBody(revision=5, allocations=[], maintenance=[], accessible_doors=[2, 3])
    )
    assert parts[0].accessible_doors == [2, 3]
    whole = SnapshotAssembly().add(parts[0])
    assert whole is not None
    assert apply_snapshot(store, whole, NOW).status is CheckpointStatus.APPLIED
    assert door_access.accessible_doors(store.db) == {2, 3}
