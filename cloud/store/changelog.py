"""The per-location change log: what each location's kiosk must learn from the cloud.

Every cloud change a kiosk must know (an allocation created, moved to another door, or changed in
status; a door put in or out of maintenance) is appended to ``location_changes`` with the
location's next **revision**, in the transaction of the change (``docs/protocol.md``). A change
that rolls back leaves no change behind, and a committed one always has its entry.

Nobody calls this module to log a change: the store's writers note what they changed on the
transaction's `cloud.store.transaction.Unit`, and the unit calls `append` once, **last**, just
before COMMIT. So no writer can forget the log, and each transaction appends once. `append` bumps
``locations.revision`` (a row lock held to commit, which makes revisions consecutive and in
commit order) and inserts the entries; taking the location's lock last, and several locations in
sorted order, keeps the transactions that change allocations from deadlocking on it. An insert
trigger notifies ``locker_location_changes`` so the sync workers publish the new entries after
commit.

An allocation whose final state the writer already holds (a reservation's statement returns it,
code secret included) is logged from that record, with no read-back; the others are read back
in one query. Appends are sent without waiting for their answers, so in a pipeline (the
allocation batch) they travel with the COMMIT: one round trip per batch however many locations
it touches (docs/BENCHMARKS.md).

Code hashes: an allocation change carries ``code_hashes``, the HMAC-SHA256 of its pickup or
return code under each unrevoked kiosk's own code secret, by kiosk id (issue 9: one secret per
kiosk; ``code_hash`` is the newest kiosk's, for older kiosks; `shared.codes.code_hash`). Before a
kiosk is registered there is no secret for it, so changes are logged without its hash;
registering a kiosk records the location's revision then (``kiosks.registered_revision``) and a
kiosk asking for revisions at or below it gets a snapshot, whose code hashes are computed afresh.
A transaction that read the secrets before a registration and appends after it (the
registration race) logs changes without that kiosk's hash past that revision: its append raises
the kiosk's ``registered_revision`` to its own last revision, in the same statement, so those
changes are never served as they are.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloud.store import allocations
from cloud.store.database import Conn, Pool
from cloud.store.records import (
    Allocation,
    AllocationKind,
    DoorAccessNote,
    DoorLabelNote,
    MaintenanceNote,
)
from shared.codes import PickupCode, code_hash
from shared.protocol import (
    AllocationChange,
    AllocationState,
    Change,
    CodeSecretRotationChange,
    CourierChange,
    DoorAccessChange,
    DoorLabelChange,
    MaintenanceChange,
    StaffChange,
)

NOTIFY_CHANNEL = "locker_location_changes"


def state_of(allocation: Allocation) -> AllocationState:
    """An allocation's state as the log (and a snapshot) records it."""
    secret = allocation.code_secret
    code = PickupCode(allocation.pickup_code)
    is_return = allocation.kind is AllocationKind.RETURN
    return AllocationState(
        allocation_id=str(allocation.allocation_id),
        kind=allocation.kind.value,
        barcode=allocation.package_id,
        size=allocation.size,
        status=allocation.status,
        # A finished allocation holds no door in the cloud any more.
        proposed_door=allocation.door_number if allocation.status.holds_door else None,
        code_hash=None if secret is None else code_hash(secret, code),
        code_hashes={kiosk: code_hash(key, code) for kiosk, key in allocation.code_secrets} or None,
        # Sent only once a kiosk has rotated: generation 1 is what its absence means.
        code_generations={k: g for k, g in allocation.code_generations if g > 1} or None,
        reservation_expires_at=allocation.reservation_expires_at,
        pickup_expires_at=allocation.pickup_expires_at,
        order_id=allocation.order_id if is_return else None,
        return_reason=allocation.return_reason if is_return else None,
        carrier_id=allocation.carrier_id,
    )


async def allocation_states(
    conn: Conn, allocation_ids: Sequence[uuid.UUID]
) -> list[tuple[str, AllocationState]]:
    """(location id, state) of each allocation as it is now, in the order of ``allocation_ids``."""
    found = await allocations.load(conn, allocation_ids)
    return [(found[i].location_id, state_of(found[i])) for i in allocation_ids if i in found]


async def live_allocation_states(conn: Conn, location_id: str) -> list[AllocationState]:
    """Every live allocation (reserved, deposited, expired) of a location: a snapshot's list."""
    return [state_of(a) for a in await allocations.live_at(conn, location_id)]


_APPEND_SQL = """
    WITH bump AS (
        UPDATE locations SET revision = revision + %(n)s
        WHERE location_id = %(loc)s
        RETURNING revision
    ), unhashed AS (
        -- Allocation entries without a code hash for a kiosk registered meanwhile (between
        -- this transaction's read of the code secrets and this append, which waited for the
        -- registration's lock on the location): that kiosk must not take them as they are.
        -- Raising its floor makes a request from before them get a snapshot, hashed afresh.
        UPDATE kiosks SET registered_revision = bump.revision
        FROM bump
        WHERE %(has_allocations)s AND kiosks.location_id = %(loc)s
          AND kiosks.revoked_at IS NULL
          AND NOT (kiosks.kiosk_id = ANY(%(hashed_for)s::text[]))
          AND kiosks.registered_revision < bump.revision
    )
    INSERT INTO location_changes (location_id, revision, change, created_at)
    SELECT %(loc)s, bump.revision - %(n)s + t.ord, t.change, %(now)s
    FROM bump, jsonb_array_elements(%(changes)s::jsonb) WITH ORDINALITY AS t(change, ord)
"""


async def append(
    conn: Conn,
    now: datetime,
    changed: Mapping[uuid.UUID, Allocation | None],
    maintenance: Sequence[MaintenanceNote],
    labels: Sequence[DoorLabelNote] = (),
    departed: Sequence[Allocation] = (),
    access: Sequence[DoorAccessNote] = (),
    *,
    people: Sequence[tuple[str, dict[str, Any]]] = (),
    rotations: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> None:
    """Appends a change per allocation (its final state) and per maintenance note.

    Only `cloud.store.transaction` calls this, last in the transaction. Allocation changes come
    first, in the order noted, then maintenance, then door labels. ``changed`` maps each
    allocation to its final record, or to None to have it read back.
    """
    unread = [i for i, a in changed.items() if a is None]
    read = await allocations.load(conn, unread) if unread else {}
    pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for gone in departed:  # first: the old location's kiosk lets go of the door
        pending[gone.location_id].append(
            {"kind": "allocation", "allocation": state_of(gone).model_dump(mode="json")}
        )
    for allocation_id, known in changed.items():
        allocation = known or read.get(allocation_id)
        if allocation is not None:
            state = state_of(allocation)
            pending[allocation.location_id].append(
                {"kind": "allocation", "allocation": state.model_dump(mode="json")}
            )
    for note in maintenance:
        pending[note.location_id].append(
            {"kind": "door_maintenance", "door": note.door_number, "on": note.on,
             "reason": note.reason}
        )  # fmt: skip
    for label in labels:
        pending[label.location_id].append(
            {"kind": "door_label", "door": label.door_number, "label": label.label}
        )
    for flag in access:  # issue 10: last, after the labels
        pending[flag.location_id].append(
            {"kind": "door_access", "door": flag.door_number, "accessible": flag.accessible}
        )
    for location_id, person in people:  # issue 11: staff and couriers, already as entries
        pending[location_id].append(person)
    for location_id, entry in rotations:  # issue 9: code_secret_rotation requests
        pending[location_id].append(dict(entry))
    for location_id in sorted(pending):  # sorted: two transactions lock locations in one order
        entries = pending[location_id]
        # Not waited for: a failure surfaces at COMMIT and rolls the transaction back.
        await conn.execute(
            _APPEND_SQL,
            {
                "loc": location_id,
                "n": len(entries),
                "changes": json.dumps(entries),
                "now": now,
                **_hashed_for(entries),
            },
        )


def _hashed_for(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The append's parameters naming the kiosks every allocation entry carries a hash for."""
    hashes = [e["allocation"]["code_hashes"] or {} for e in entries if e["kind"] == "allocation"]
    common = set.intersection(*(set(h) for h in hashes)) if hashes else set()
    return {"has_allocations": bool(hashes), "hashed_for": sorted(common)}


@dataclass(frozen=True, slots=True)
class Catchup:
    """What answers "every change after ``since``".

    Attributes:
        revision: The location's current revision.
        changes: The changes after ``since``, consecutive, oldest first (at most the limit asked).
        needs_snapshot: The log no longer holds them all (compacted, or logged before the kiosk's
            code secret was known): answer with a snapshot instead.
    """

    revision: int
    changes: list[Change]
    needs_snapshot: bool


def parse_change(revision: int, change: dict[str, Any]) -> Change:
    """A stored entry as the protocol's change model."""
    if change["kind"] == "allocation":
        return AllocationChange.model_validate({"revision": revision, **change})
    if change["kind"] == "door_label":
        return DoorLabelChange.model_validate({"revision": revision, **change})
    if change["kind"] == "door_access":
        return DoorAccessChange.model_validate({"revision": revision, **change})
    if change["kind"] == "staff":
        return StaffChange.model_validate({"revision": revision, **change})
    if change["kind"] == "courier":
        return CourierChange.model_validate({"revision": revision, **change})
    if change["kind"] == "code_secret_rotation":
        return CodeSecretRotationChange.model_validate({"revision": revision, **change})
    return MaintenanceChange.model_validate({"revision": revision, **change})


async def changes_since(conn: Conn, location_id: str, since: int, limit: int = 200) -> Catchup:
    """The changes of a location after revision ``since``, or that a snapshot is needed.

    Raises:
        LookupError: no such location.
    """
    cur = await conn.execute(
        """
        SELECT l.revision,
               coalesce((SELECT max(k.registered_revision) FROM kiosks k
                         WHERE k.location_id = l.location_id), 0) AS floor,
               (SELECT coalesce(jsonb_agg(jsonb_build_array(c.revision, c.change)
                                          ORDER BY c.revision), '[]')
                FROM (SELECT revision, change FROM location_changes
                      WHERE location_id = l.location_id AND revision > %(since)s
                      ORDER BY revision LIMIT %(limit)s) c) AS entries
        FROM locations l WHERE l.location_id = %(loc)s
        """,
        {"loc": location_id, "since": since, "limit": limit},
    )
    row = await cur.fetchone()
    if row is None:
        raise LookupError(f"no location {location_id!r}")
    revision: int = row["revision"]
    if since >= revision:
        # Up to date, or (after a database restore) ahead of the cloud: only a snapshot can say
        # what the cloud holds then.
        return Catchup(revision, [], needs_snapshot=since > revision)
    if since < row["floor"]:
        return Catchup(revision, [], needs_snapshot=True)
    entries = row["entries"]
    if not entries or any(rev != since + 1 + i for i, (rev, _) in enumerate(entries)):
        return Catchup(revision, [], needs_snapshot=True)  # compacted away
    return Catchup(revision, [parse_change(rev, ch) for rev, ch in entries], needs_snapshot=False)


async def compact(pool: Pool, cutoff: datetime, batch: int = 5000) -> int:
    """Deletes log entries created before ``cutoff``, oldest first.

    Only a prefix of each location's log is ever deleted (the entries at or below the newest
    revision older than the cutoff), so the log stays consecutive; a kiosk asking for revisions
    no longer kept gets a snapshot.

    Returns:
        How many entries were deleted.
    """
    total = 0
    while True:
        async with pool.connection() as conn:
            cur = await conn.execute(
                """
                WITH old AS (
                    SELECT location_id, revision FROM location_changes
                    WHERE created_at < %(cutoff)s
                    ORDER BY created_at LIMIT %(batch)s
                ), upto AS (
                    SELECT location_id, max(revision) AS revision FROM old GROUP BY location_id
                )
                DELETE FROM location_changes c USING upto
                WHERE c.location_id = upto.location_id AND c.revision <= upto.revision
                """,
                {"cutoff": cutoff, "batch": batch},
            )
            deleted = cur.rowcount
        total += deleted
        if deleted < batch:
            return total
