"""Cloud to kiosk over the broker: changes apply in order, once; gaps are filled; snapshots."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from kiosk.flows import staff
from kiosk.flows.pickup import pick_up
from kiosk.store import CodeHasher, Store, allocations, codes, doors
from kiosk.store.records import Actor
from kiosk.sync.apply import apply_changes
from shared.protocol import (
    AllocationChange,
    ChangesBody,
    Channel,
    MaintenanceChange,
    MessageType,
    SnapshotBody,
)
from shared.sizes import Size
from shared.snapshot_parts import split_snapshot
from shared.states import AllocationStatus, DoorStatus

from .conftest import LAYOUT, SECRET, Rig, allocation, eventually, hashed


def state_of(rig: Rig) -> dict[str, tuple[str, int | None]]:
    return snapshot_of(rig.kiosk.store)


def snapshot_of(store: Store) -> dict[str, tuple[str, int | None]]:
    listed = allocations.list_allocations(store.db)
    return {a.allocation_id: (a.status.value, a.door) for a in listed}


async def test_a_change_from_the_cloud_applies_and_its_code_hash_opens_the_door(rig: Rig) -> None:
    kiosk = rig.kiosk
    kiosk.start()
    await eventually(lambda: kiosk.connected)
    await rig.cloud.changes(
        1,
        allocation("a1", status=AllocationStatus.DEPOSITED, door=2, code="ABC-234"),
        allocation("a2", door=3, code="DEF567"),
    )
    await eventually(lambda: kiosk.last_revision == 2)
    assert state_of(rig) == {"a1": ("deposited", 2), "a2": ("reserved", 3)}
    # Only the hash crossed the broker, and only the hash is stored.
    assert codes.find_code(kiosk.store.db, hashed("ABC234")) is not None

    result = await pick_up(kiosk.ctx, "abc234", via="keypad")
    assert result.doors == (2,)
    assert kiosk.bank.pulses(2) == 1


async def test_duplicates_and_out_of_order_delivery_end_in_the_same_state(rig: Rig) -> None:
    kiosk, cloud = rig.kiosk, rig.cloud
    cloud.answer_sync_requests = True
    kiosk.start()
    await eventually(lambda: kiosk.connected)
    first = await cloud.changes(1, allocation("a1", door=1), allocation("a2", door=2))
    await eventually(lambda: kiosk.last_revision == 2)

    # The same message again (a QoS 1 redelivery, a replay) and the same revisions in a new one.
    await cloud.publish_raw(Channel.CLOUD_CHANGES, first)
    await cloud.send(
        MessageType.CHANGES,
        ChangesBody(
            from_revision=0,
            to_revision=2,
            changes=[cloud.log[1], cloud.log[2]],
        ),
    )
    # Then revision 4 before revision 3: 4 is a gap (asked for), 3 applies, the answer brings 4.
    cloud.log[3] = AllocationChange(
        revision=3, allocation=allocation("a1", status=AllocationStatus.CANCELLED, door=1)
    )
    cloud.log[4] = AllocationChange(revision=4, allocation=allocation("a3", door=1))
    await cloud.send(
        MessageType.CHANGES, ChangesBody(from_revision=3, to_revision=4, changes=[cloud.log[4]])
    )
    await cloud.send(
        MessageType.CHANGES, ChangesBody(from_revision=2, to_revision=3, changes=[cloud.log[3]])
    )
    await eventually(lambda: kiosk.last_revision == 4)

    # The same state as a kiosk that got the log once, in order.
    reference = Store.in_memory(CodeHasher(SECRET), kiosk.identity)
    with reference.transaction() as db:
        doors.sync_layout(db, LAYOUT, datetime.now(UTC))
    in_order = ChangesBody(
        from_revision=0, to_revision=4, changes=[cloud.log[r] for r in range(1, 5)]
    )
    apply_changes(reference, in_order, datetime.now(UTC))
    assert state_of(rig) == snapshot_of(reference)
    assert state_of(rig) == {
        "a1": ("cancelled", 1),
        "a2": ("reserved", 2),
        "a3": ("reserved", 1),
    }
    assert kiosk.sync is not None
    assert kiosk.sync.status.rejected["replayed"] == 1


async def test_a_gap_asks_for_the_missing_revisions_and_the_answer_fills_it(rig: Rig) -> None:
    kiosk, cloud = rig.kiosk, rig.cloud
    kiosk.start()
    await eventually(lambda: kiosk.connected)
    # On connect the kiosk asked for everything since its revision (0).
    await eventually(lambda: cloud.of_type(MessageType.SYNC_REQUEST))
    assert cloud.of_type(MessageType.SYNC_REQUEST)[0].body.since_revision == 0  # type: ignore[union-attr]

    await cloud.changes(1, allocation("a1", door=1))
    await eventually(lambda: kiosk.last_revision == 1)
    # Revisions 2 and 3 are lost on the way; 4 arrives.
    cloud.log[2] = AllocationChange(revision=2, allocation=allocation("a2", door=2))
    cloud.log[3] = AllocationChange(revision=3, allocation=allocation("a3", door=3))
    cloud.answer_sync_requests = True
    await cloud.changes(4, allocation("a4", door=4))
    await eventually(lambda: kiosk.last_revision == 4)
    requests = [m.body.since_revision for m in cloud.of_type(MessageType.SYNC_REQUEST)]  # type: ignore[union-attr]
    assert 1 in requests
    assert sorted(state_of(rig)) == ["a1", "a2", "a3", "a4"]


async def test_a_snapshot_replaces_the_state_but_a_deposited_parcel_stays(rig: Rig) -> None:
    kiosk, cloud = rig.kiosk, rig.cloud
    kiosk.start()
    await eventually(lambda: kiosk.connected)
    await cloud.changes(
        1,
        allocation("gone", door=1),
        allocation("kept", door=2),
        allocation("here", status=AllocationStatus.DEPOSITED, door=3, size=Size.MEDIUM),
    )
    await cloud.send(
        MessageType.CHANGES,
        ChangesBody(
            from_revision=3,
            to_revision=4,
            changes=[MaintenanceChange(revision=4, door=5, on=True, reason="hinge")],
        ),
    )
    await eventually(lambda: kiosk.last_revision == 4)
    # Staff put door 4 out of service at the kiosk: the cloud's snapshot does not know yet.
    staff.set_maintenance(kiosk.ctx, 4, True, reason="sticky lock", actor=Actor.STAFF)

    # The log was compacted; the cloud's state at revision 980: "gone" and "here" finished,
    # "kept" moved to door 1, "new" added; door 5 back in service.
    await cloud.send(
        MessageType.SNAPSHOT,
        SnapshotBody(
            revision=980,
            allocations=[allocation("kept", door=1), allocation("new", door=2)],
            maintenance=[],
        ),
    )
    await eventually(lambda: kiosk.last_revision == 980)
    assert state_of(rig) == {
        "gone": ("cancelled", 1),  # its door is free again: "kept" took it
        "kept": ("reserved", 1),
        "here": ("deposited", 3),  # physical facts win: the parcel is in door 3
        "new": ("reserved", 2),
    }
    db = kiosk.store.db
    assert doors.get_door(db, 5).status is DoorStatus.AVAILABLE  # the cloud's maintenance ended
    assert doors.get_door(db, 4).status is DoorStatus.MAINTENANCE  # the staff's stays

    # A late copy of an older snapshot changes nothing.
    await cloud.send(
        MessageType.SNAPSHOT, SnapshotBody(revision=900, allocations=[], maintenance=[])
    )
    await asyncio.sleep(0.3)
    assert state_of(rig)["kept"] == ("reserved", 1)


async def test_a_snapshot_in_parts_applies_only_once_every_part_is_in(rig: Rig) -> None:
    kiosk, cloud = rig.kiosk, rig.cloud
    kiosk.start()
    await eventually(lambda: kiosk.connected)
    await cloud.changes(1, allocation("gone", door=1))
    await eventually(lambda: kiosk.last_revision == 1)
    whole = SnapshotBody(
        revision=50,
        allocations=[allocation(f"p{n}", door=n) for n in (2, 3, 4)],
        maintenance=[],
    )
    first, second, third = split_snapshot(whole, per_part=1)
    for part in (third, first, third):  # out of order, repeated; the second is not there yet
        await cloud.send(MessageType.SNAPSHOT_PART, part)
    await asyncio.sleep(0.5)
    assert kiosk.last_revision == 1  # incomplete: nothing of it applied
    assert state_of(rig) == {"gone": ("reserved", 1)}
    await cloud.send(MessageType.SNAPSHOT_PART, second)
    await eventually(lambda: kiosk.last_revision == 50)
    assert state_of(rig) == {
        "gone": ("cancelled", 1),  # its door kept as history; free again
        "p2": ("reserved", 2),
        "p3": ("reserved", 3),
        "p4": ("reserved", 4),
    }


async def test_a_snapshot_behind_a_gap_asks_at_once_for_what_the_gap_showed(rig: Rig) -> None:
    # The bug behind test_kiosk_offline_while_both_sides_change failing now and then: a change
    # refused as a gap, then a snapshot (the answer to an earlier request) older than it. The
    # kiosk must ask again from the snapshot's revision, not wait for the cloud to notice.
    kiosk, cloud = rig.kiosk, rig.cloud
    kiosk.start()
    await eventually(lambda: kiosk.connected)
    await cloud.changes(1, allocation("a1", door=1))
    await eventually(lambda: kiosk.last_revision == 1)
    await cloud.changes(7, allocation("late", door=3))  # revisions 2..6 not seen: a gap
    await eventually(
        lambda: any(m.body.since_revision == 1 for m in cloud.of_type(MessageType.SYNC_REQUEST))  # type: ignore[union-attr]
    )
    await cloud.send(
        MessageType.SNAPSHOT,
        SnapshotBody(revision=5, allocations=[allocation("a1", door=1)], maintenance=[]),
    )
    await eventually(lambda: kiosk.last_revision == 5)
    await eventually(
        lambda: any(m.body.since_revision == 5 for m in cloud.of_type(MessageType.SYNC_REQUEST))  # type: ignore[union-attr]
    )
    # The answer to that request fills it.
    cloud.log[6] = AllocationChange(revision=6, allocation=allocation("a6", door=2))
    await cloud.answer(5)
    await eventually(lambda: kiosk.last_revision == 7)
    assert sorted(state_of(rig)) == ["a1", "a6", "late"]


async def test_a_snapshot_in_parts_behind_a_gap_asks_at_once_too(rig: Rig) -> None:
    kiosk, cloud = rig.kiosk, rig.cloud
    kiosk.start()
    await eventually(lambda: kiosk.connected)
    await cloud.changes(9, allocation("late", door=3))  # a gap after revision 0
    await eventually(lambda: cloud.of_type(MessageType.SYNC_REQUEST))
    whole = SnapshotBody(
        revision=4, allocations=[allocation(f"p{n}", door=n) for n in (1, 2)], maintenance=[]
    )
    for part in split_snapshot(whole, per_part=1):
        await cloud.send(MessageType.SNAPSHOT_PART, part)
    await eventually(lambda: kiosk.last_revision == 4)
    await eventually(
        lambda: any(m.body.since_revision == 4 for m in cloud.of_type(MessageType.SYNC_REQUEST))  # type: ignore[union-attr]
    )


async def test_a_restart_mid_snapshot_keeps_the_parts_received(rig: Rig) -> None:
    # issue 14: parts were kept in memory, so a restart lost them and the snapshot never
    # completed from the parts still to come.
    kiosk, cloud = rig.kiosk, rig.cloud
    kiosk.start()
    await eventually(lambda: kiosk.connected)
    whole = SnapshotBody(
        revision=30, allocations=[allocation(f"p{n}", door=n) for n in (1, 2, 3)], maintenance=[]
    )
    first, second, third = split_snapshot(whole, per_part=1)
    await cloud.send(MessageType.SNAPSHOT_PART, first)
    await cloud.send(MessageType.SNAPSHOT_PART, second)
    assert kiosk.sync is not None
    sync = kiosk.sync
    await eventually(lambda: sync._snapshot_parts.pending() == {first.snapshot_id: (2, 3)})
    await kiosk.restart()
    await eventually(lambda: kiosk.connected)
    assert kiosk.last_revision == 0
    await cloud.send(MessageType.SNAPSHOT_PART, third)
    await eventually(lambda: kiosk.last_revision == 30)
    assert sorted(state_of(rig)) == ["p1", "p2", "p3"]
    assert kiosk.sync is not None
    assert kiosk.sync._snapshot_parts.pending() == {}  # forgotten once applied


async def test_a_lost_part_asks_again_at_once_not_at_the_next_heartbeat(rig: Rig) -> None:
    kiosk, cloud = rig.kiosk, rig.cloud
    kiosk.start()
    await eventually(lambda: kiosk.connected)
    await eventually(lambda: cloud.of_type(MessageType.SYNC_REQUEST))
    asked = len(cloud.of_type(MessageType.SYNC_REQUEST))
    whole = SnapshotBody(
        revision=30, allocations=[allocation(f"p{n}", door=n) for n in (1, 2)], maintenance=[]
    )
    first, _lost = split_snapshot(whole, per_part=1)
    await cloud.send(MessageType.SNAPSHOT_PART, first)
    # The heartbeat is 30 s away here: only the lost part's recovery asks within this wait.
    await eventually(lambda: len(cloud.of_type(MessageType.SYNC_REQUEST)) > asked, timeout_s=20)
    assert cloud.of_type(MessageType.SYNC_REQUEST)[-1].body.since_revision == 0  # type: ignore[union-attr]
