"""A location's whole state at one revision: the answer when the change log cannot catch up.

Read in one REPEATABLE READ transaction, so the revision, the live allocations and the doors in
maintenance are of one moment: a change committing meanwhile is either wholly in the snapshot
(and below its revision) or wholly after it.

issue 14: a large snapshot is streamed, never built whole. `stream_snapshot` reads the live
allocations twice through a server-side cursor inside that one transaction: once to plan where
the parts close (keeping only their lengths, since each part says how many there are), then
again to yield each part as it fills. Both reads see the same moment, so the plan holds.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from cloud.store import allocations, changelog, code_secrets, people, publications, snapshots
from cloud.store.database import Conn, Pool
from shared.protocol import (
    AllocationState,
    CodeSecretRotationState,
    DoorLabelState,
    MaintenanceState,
    SnapshotBody,
    SnapshotPartBody,
)
from shared.snapshot_parts import (
    ALLOCATIONS_PER_PART,
    PartCutter,
    make_part,
    part_one_bytes,
)


async def part_one_lists(conn: Conn, location_id: str) -> dict[str, list[Any]]:
    """Every list a snapshot carries besides its allocations (part 1 of a parted one), by its
    field name in `SnapshotBody`.

    The one place the cloud gathers them: a new list is one entry here (and its name in
    `shared.snapshot_parts.PART_ONE_LISTS`, its applier in `kiosk.sync.apply`).
    """
    return {
        "maintenance": [
            MaintenanceState(door=m.door, reason=m.reason)
            for m in await snapshots.maintenance_doors(conn, location_id)
        ],
        "labels": [
            DoorLabelState(door=door, label=label)
            for door, label in await snapshots.door_labels(conn, location_id)
        ],
        "accessible_doors": await snapshots.accessible_doors(conn, location_id),  # issue 10
        "staff": await people.live_staff_states(conn, location_id),  # issue 11
        "couriers": await people.live_courier_states(conn, location_id),  # issue 11
        "code_secret_rotations": [  # issue 9: requests not answered yet
            CodeSecretRotationState(kiosk_id=k, generation=g, cloud_public=public.hex())
            for k, g, public in await code_secrets.pending_at(conn, location_id)
        ],
    }


async def build_snapshot(pool: Pool, location_id: str) -> SnapshotBody:
    """Every live allocation and every door in maintenance, with the revision they are at.

    Raises:
        LookupError: no such location.
    """
    async with pool.connection() as conn, conn.transaction():
        await snapshots.read_one_moment(conn)
        revision = await _revision(conn, location_id)
        allocation_states = await changelog.live_allocation_states(conn, location_id)
        lists = await part_one_lists(conn, location_id)
    return SnapshotBody.model_validate(
        {"revision": revision, "allocations": allocation_states, **lists}
    )


async def stream_snapshot(
    conn: Conn, location_id: str, *, per_part: int = ALLOCATIONS_PER_PART
) -> AsyncGenerator[SnapshotBody | SnapshotPartBody, None]:
    """The location's snapshot: one `SnapshotBody` when its allocations fit one part, else its
    `SnapshotPartBody` parts one at a time, each built only when it is due.

    ``conn`` must be in a transaction that `snapshots.read_one_moment` began. Consume it under
    `contextlib.aclosing`, so that stopping early closes its server-side cursor at once.

    Raises:
        LookupError: no such location.
    """
    revision = await _revision(conn, location_id)
    lists = await part_one_lists(conn, location_id)
    cutter = PartCutter(first_part_bytes=part_one_bytes(lists), per_part=per_part)
    async with aclosing(allocations.stream_live_at(conn, location_id)) as rows:
        async for allocation in rows:
            cutter.add(len(changelog.state_of(allocation).model_dump_json()) + 1)
    lengths = cutter.lengths()
    if len(lengths) == 1:
        async with aclosing(allocations.stream_live_at(conn, location_id)) as rows:
            states = [changelog.state_of(a) async for a in rows]
        yield SnapshotBody.model_validate({"revision": revision, "allocations": states, **lists})
        return
    snapshot_id = uuid.uuid4()
    number = 1
    chunk_states: list[AllocationState] = []
    # aclosing: a consumer that stops between parts (a failed publish, a cancelled worker)
    # closes the cursor while its connection is still checked out. A bare ``async for`` leaves
    # the generator suspended with the cursor open, to be closed at garbage collection on a
    # connection long back in the pool (or closed: a ResourceWarning in some later test).
    async with aclosing(allocations.stream_live_at(conn, location_id)) as rows:
        async for allocation in rows:
            chunk_states.append(changelog.state_of(allocation))
            if len(chunk_states) == lengths[number - 1]:
                yield make_part(snapshot_id, revision, number, len(lengths), chunk_states, lists)
                number, chunk_states = number + 1, []
    if number <= len(lengths):
        # The second read saw fewer rows than the first: impossible in one REPEATABLE READ
        # transaction, so a bug; the kiosk would wait for the parts forever.
        raise RuntimeError(f"snapshot of {location_id} ended at part {number} of {len(lengths)}")


async def _revision(conn: Conn, location_id: str) -> int:
    revision = await publications.location_revision(conn, location_id)
    if revision is None:
        raise LookupError(f"no location {location_id!r}")
    return revision
