"""The per-location change log: what each location's kiosk must learn from the cloud.

Every cloud change a kiosk must know (an allocation created, moved to another door, or changed in
status; a door put in or out of maintenance) is appended to ``location_changes`` with the
location's next **revision**, in the transaction of the change (``docs/protocol.md``). A change
that rolls back leaves no change behind, and a committed one always has its entry.

`record` is the one way in. Call it **last** in the transaction, once the rows it describes are
final: it reads the allocations' current state, bumps ``locations.revision`` (a row lock held to
commit, which makes revisions consecutive and in commit order) and inserts the entries. Taking
the location's lock last, and several locations in sorted order, keeps the transactions that
change allocations from deadlocking on it. An insert trigger notifies
``locker_location_changes`` so the sync workers publish the new entries after commit.

The allocation paths (``allocation.reserve``, ``allocation_batch.reserve_many``) already hold
each new allocation's state when they would call `record` (their statements return it, and the
code secret with it: `code_secret_sql`), so they call `record_states` instead: no read-back.
The appends are not waited for, so in ``reserve_many``'s pipeline they travel with the COMMIT
(one round trip per batch however many locations it touches; `record` took one per location).
Those round trips were the change log's main cost (docs/BENCHMARKS.md).

Code hashes: an allocation change carries ``code_hash``, the HMAC-SHA256 of its pickup or return
code under the code secret of the location's kiosk (`code_hash`). Before a kiosk is registered
there is no secret, so changes are logged without a hash; registering a kiosk records the
location's revision then (``kiosks.registered_revision``) and a kiosk asking for revisions at or
below it gets a snapshot, whose code hashes are computed afresh.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import DictRow

from cloud.store.database import Conn, Pool
from shared.codes import PickupCode, code_hash
from shared.protocol import (
    AllocationChange,
    AllocationState,
    Change,
    MaintenanceChange,
)
from shared.states import AllocationStatus

NOTIFY_CHANNEL = "locker_location_changes"


@dataclass(frozen=True, slots=True)
class MaintenanceNote:
    """A door put in (``on``) or out of maintenance."""

    location_id: str
    door_number: int
    on: bool
    reason: str | None = None


def code_secret_sql(location: str) -> str:
    """A scalar sub-select: the code secret of the location ``location`` (an SQL expression).

    The newest registered kiosk's; NULL before any kiosk is registered. ``location`` must be a
    parameter or a qualified column (``a.location_id``): a bare ``location_id`` would name the
    sub-select's own ``kiosks.location_id`` and match every kiosk.
    """
    return (
        f"(SELECT k.code_secret FROM kiosks k WHERE k.location_id = {location}"
        " ORDER BY k.registered_at DESC LIMIT 1)"
    )


_STATE_SQL = f"""
    SELECT a.allocation_id, a.location_id, a.kind, a.package_id, a.size, a.status,
           d.door_number, c.code, a.reservation_expires_at, a.pickup_expires_at, a.order_id,
           r.reason AS return_reason, {code_secret_sql("a.location_id")} AS code_secret
    FROM allocations a
    JOIN doors d ON d.door_id = a.door_id
    JOIN pickup_codes c ON c.pickup_code_id = a.pickup_code_id
    LEFT JOIN returns r ON r.allocation_id = a.allocation_id
"""


def state_of(row: Mapping[str, Any]) -> AllocationState:
    """An allocation's state as the log records it, from a row with the columns of `_STATE_SQL`.

    `record` reads the row; `record_states` callers hold it already.
    """
    status = AllocationStatus(row["status"])
    secret = row["code_secret"]
    is_return = row["kind"] == "return"
    return AllocationState(
        allocation_id=str(row["allocation_id"]),
        kind=row["kind"],
        barcode=row["package_id"],
        size=row["size"],
        status=status,
        # A finished allocation holds no door in the cloud any more.
        proposed_door=row["door_number"] if status.holds_door else None,
        code_hash=None if secret is None else code_hash(bytes(secret), PickupCode(row["code"])),
        reservation_expires_at=row["reservation_expires_at"],
        pickup_expires_at=row["pickup_expires_at"],
        order_id=row["order_id"] if is_return else None,
        return_reason=row["return_reason"] if is_return else None,
    )


async def allocation_states(
    conn: Conn, allocation_ids: Sequence[uuid.UUID]
) -> list[tuple[str, AllocationState]]:
    """(location id, state) of each allocation, in the order of ``allocation_ids``."""
    cur = await conn.execute(
        _STATE_SQL + " WHERE a.allocation_id = ANY(%s)", (list(allocation_ids),)
    )
    by_id = {row["allocation_id"]: row for row in await cur.fetchall()}
    return [(by_id[i]["location_id"], state_of(by_id[i])) for i in allocation_ids if i in by_id]


async def live_allocation_states(conn: Conn, location_id: str) -> list[AllocationState]:
    """Every live allocation (reserved, deposited, expired) of a location: a snapshot's list."""
    cur = await conn.execute(
        _STATE_SQL
        + " WHERE a.location_id = %s AND a.status IN ('reserved', 'deposited', 'expired')"
        " ORDER BY d.door_number",
        (location_id,),
    )
    return [state_of(row) for row in await cur.fetchall()]


_APPEND_SQL = """
    WITH bump AS (
        UPDATE locations SET revision = revision + %(n)s
        WHERE location_id = %(loc)s
        RETURNING revision
    )
    INSERT INTO location_changes (location_id, revision, change, created_at)
    SELECT %(loc)s, bump.revision - %(n)s + t.ord, t.change, %(now)s
    FROM bump, jsonb_array_elements(%(changes)s::jsonb) WITH ORDINALITY AS t(change, ord)
    RETURNING revision
"""


async def record(
    conn: Conn,
    now: datetime,
    *,
    allocations: Iterable[uuid.UUID] = (),
    maintenance: Iterable[MaintenanceNote] = (),
) -> dict[str, int]:
    """Appends a change per allocation (its state now) and per maintenance note.

    Must run inside the caller's transaction, after its last change to the rows described.
    Allocation changes come first, in the order given (repeats folded), then maintenance.

    Returns:
        The new revision of each location that got changes.
    """
    ids = list(dict.fromkeys(allocations))
    pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if ids:
        for location_id, state in await allocation_states(conn, ids):
            pending[location_id].append(_allocation_entry(state))
    for note in maintenance:
        pending[note.location_id].append(
            {
                "kind": "door_maintenance",
                "door": note.door_number,
                "on": note.on,
                "reason": note.reason,
            }
        )
    revisions: dict[str, int] = {}
    for location_id, cur in await _append(conn, now, pending):
        rows = await cur.fetchall()
        revisions[location_id] = max(row["revision"] for row in rows)
    return revisions


def _allocation_entry(state: AllocationState) -> dict[str, Any]:
    return {"kind": "allocation", "allocation": state.model_dump(mode="json")}


async def _append(
    conn: Conn, now: datetime, pending: Mapping[str, list[dict[str, Any]]]
) -> list[tuple[str, AsyncCursor[DictRow]]]:
    """Sends one append per location, in sorted order; returns their cursors, unread."""
    sent = []
    for location_id in sorted(pending):  # sorted: two transactions lock locations in one order
        entries = pending[location_id]
        cur = await conn.execute(
            _APPEND_SQL,
            {"loc": location_id, "n": len(entries), "changes": json.dumps(entries), "now": now},
        )
        sent.append((location_id, cur))
    return sent


async def record_states(
    conn: Conn, now: datetime, states: Iterable[tuple[str, AllocationState]]
) -> None:
    """Appends a change per (location id, allocation state), as `record` does from a read-back.

    For a caller that has just written the allocations and holds their final state (built with
    `state_of` from rows carrying `code_secret_sql`). Same rules as `record`: inside the
    caller's transaction, last, one entry per state in the order given, locations locked in
    sorted order. The appends are sent and not waited for: in pipeline mode they go with the
    COMMIT, and a failure surfaces there and rolls the whole transaction back.
    """
    pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for location_id, state in states:
        pending[location_id].append(_allocation_entry(state))
    await _append(conn, now, pending)


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
