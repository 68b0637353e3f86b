"""A location's whole state at one revision: the answer when the change log cannot catch up.

Read in one REPEATABLE READ transaction, so the revision, the live allocations and the doors in
maintenance are of one moment: a change committing meanwhile is either wholly in the snapshot
(and below its revision) or wholly after it.
"""

from __future__ import annotations

from cloud.store import changelog, code_secrets, people, publications, snapshots
from cloud.store.database import Pool
from shared.protocol import DoorLabelState, MaintenanceState, SnapshotBody


async def build_snapshot(pool: Pool, location_id: str) -> SnapshotBody:
    """Every live allocation and every door in maintenance, with the revision they are at.

    Raises:
        LookupError: no such location.
    """
    async with pool.connection() as conn, conn.transaction():
        await snapshots.read_one_moment(conn)
        revision = await publications.location_revision(conn, location_id)
        if revision is None:
            raise LookupError(f"no location {location_id!r}")
        allocations = await changelog.live_allocation_states(conn, location_id)
        maintenance = [
            MaintenanceState(door=m.door, reason=m.reason)
            for m in await snapshots.maintenance_doors(conn, location_id)
        ]
        labels = [
            DoorLabelState(door=door, label=label)
            for door, label in await snapshots.door_labels(conn, location_id)
        ]
        accessible = await snapshots.accessible_doors(conn, location_id)
        staff = await people.live_staff_states(conn, location_id)  # issue 11
        couriers = await people.live_courier_states(conn, location_id)
        rotations = await code_secrets.pending_at(conn, location_id)
    return SnapshotBody.model_validate(
        {
            "revision": revision,
            "allocations": allocations,
            "maintenance": maintenance,
            "labels": labels,
            "accessible_doors": accessible,
            "staff": staff,
            "couriers": couriers,
            "code_secret_rotations": [
                {"kiosk_id": k, "generation": g, "cloud_public": public.hex()}
                for k, g, public in rotations
            ],
        }
    )
