"""A snapshot too large for one message, in parts: split by the cloud, assembled by the kiosk.

A location's snapshot grows with its live allocations (about 370 bytes each): past about 700 it
no longer fits the 262,144-byte payload limit. The cloud then sends it as ``snapshot_part``
messages (`shared.protocol.SnapshotPartBody`), each signed and numbered ``part`` of ``parts``
under one ``snapshot_id``; `SnapshotAssembly` keeps the parts that arrive, in any order and
repeated, and gives the whole `SnapshotBody` only when it holds every part, so the kiosk applies
it in one transaction or not at all (PowerSync's checkpoint rule). A part that never arrives
leaves the snapshot unapplied; the kiosk's next heartbeat shows the cloud it is still behind,
and the cloud answers with a new snapshot.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from shared.protocol import MAX_SNAPSHOT_PARTS, AllocationState, SnapshotBody, SnapshotPartBody

ALLOCATIONS_PER_PART = 250
"""About 95 KB of allocations per part: well under the payload limit, with room for long ids
and texts (an allocation's JSON is at most about 1 KB)."""
KEPT_SNAPSHOTS = 2
"""Snapshots assembled at once; an older unfinished one is dropped for a newer one."""


PART_ALLOCATION_BYTES = 200_000
"""issue 9: the allocations' JSON one part carries at most (with part 1's maintenance and labels
counted in), leaving the rest of the payload limit to the envelope and signature. Each kiosk of a
location adds a code hash to every allocation (`AllocationState.code_hashes`), so 250 of the
largest allocations no longer fit, and a part closes at whichever limit comes first."""


def split_snapshot(
    body: SnapshotBody,
    *,
    per_part: int = ALLOCATIONS_PER_PART,
    snapshot_id: uuid.UUID | None = None,
) -> list[SnapshotPartBody]:
    """The parts of ``body``: its allocations ``per_part`` at a time (fewer where their JSON
    would pass `PART_ALLOCATION_BYTES`), its maintenance and door labels in part 1.

    Raises:
        ValueError: ``per_part`` is below 1, or the snapshot would need more than
            `MAX_SNAPSHOT_PARTS` parts.
    """
    if per_part < 1:
        raise ValueError(f"a part holds at least one allocation, not {per_part}")
    extras = (
        sum(len(m.model_dump_json()) + 1 for m in body.maintenance)
        + sum(len(label.model_dump_json()) + 1 for label in body.labels)
        + sum(len(str(door)) + 1 for door in body.accessible_doors)
        + sum(len(r.model_dump_json()) + 1 for r in body.code_secret_rotations)
    )
    extras += sum(len(p.model_dump_json()) + 1 for p in [*body.staff, *body.couriers])
    chunks: list[list[AllocationState]] = []
    chunk: list[AllocationState] = []
    used = extras  # part 1 carries the maintenance and labels
    for state in body.allocations:
        size = len(state.model_dump_json()) + 1
        if chunk and (len(chunk) >= per_part or used + size > PART_ALLOCATION_BYTES):
            chunks.append(chunk)
            chunk, used = [], 0
        chunk.append(state)
        used += size
    chunks = [*chunks, chunk] if chunk or not chunks else chunks
    if len(chunks) > MAX_SNAPSHOT_PARTS:
        raise ValueError(f"{len(chunks)} parts exceed the {MAX_SNAPSHOT_PARTS}-part limit")
    shared_id = snapshot_id or uuid.uuid4()
    return [
        SnapshotPartBody(
            snapshot_id=shared_id,
            revision=body.revision,
            part=number,
            parts=len(chunks),
            allocations=chunk,
            maintenance=body.maintenance if number == 1 else [],
            labels=body.labels if number == 1 else [],
            accessible_doors=body.accessible_doors if number == 1 else [],
            staff=body.staff if number == 1 else [],
            couriers=body.couriers if number == 1 else [],
            code_secret_rotations=body.code_secret_rotations if number == 1 else [],
        )
        for number, chunk in enumerate(chunks, start=1)
    ]


@dataclass
class _Parts:
    revision: int
    parts: int
    received: dict[int, SnapshotPartBody] = field(default_factory=dict)


class InconsistentPart(ValueError):
    """A part contradicts the parts received before under its snapshot id (revision, count)."""


@dataclass
class SnapshotAssembly:
    """The parts of the snapshots being received (in memory: a restart asks afresh)."""

    _snapshots: dict[uuid.UUID, _Parts] = field(default_factory=dict)

    def add(self, part: SnapshotPartBody) -> SnapshotBody | None:
        """Keeps ``part``; returns the whole snapshot once every part is in, else None.

        A repeated part changes nothing. A completed snapshot is forgotten (a late copy of one of
        its parts then starts a new assembly, which never completes unless all are sent again;
        the kiosk's revision makes a second application a no-op anyway).

        Raises:
            InconsistentPart: ``part`` names another revision or part count than the parts
                received before under its snapshot id (nothing is kept of it).
        """
        current = self._snapshots.get(part.snapshot_id)
        if current is None:
            current = _Parts(part.revision, part.parts)
            self._snapshots[part.snapshot_id] = current
            while len(self._snapshots) > KEPT_SNAPSHOTS:
                oldest = min(self._snapshots, key=lambda key: self._snapshots[key].revision)
                del self._snapshots[oldest]
            if part.snapshot_id not in self._snapshots:
                return None  # older than every snapshot being assembled
        elif (current.revision, current.parts) != (part.revision, part.parts):
            raise InconsistentPart(
                f"part {part.part} of snapshot {part.snapshot_id} says revision {part.revision}"
                f" of {part.parts} parts; earlier parts said {current.revision} of"
                f" {current.parts}"
            )
        current.received[part.part] = part
        if len(current.received) < current.parts:
            return None
        del self._snapshots[part.snapshot_id]
        ordered = [current.received[number] for number in range(1, current.parts + 1)]
        return SnapshotBody(
            revision=current.revision,
            allocations=[state for piece in ordered for state in piece.allocations],
            maintenance=[entry for piece in ordered for entry in piece.maintenance],
            labels=[entry for piece in ordered for entry in piece.labels],
            accessible_doors=[door for piece in ordered for door in piece.accessible_doors],
            staff=[entry for piece in ordered for entry in piece.staff],
            couriers=[entry for piece in ordered for entry in piece.couriers],
            code_secret_rotations=[
                entry for piece in ordered for entry in piece.code_secret_rotations
            ],
        )

    def pending(self) -> dict[uuid.UUID, tuple[int, int]]:
        """Snapshots under assembly: their id, to (parts received, parts)."""
        return {key: (len(p.received), p.parts) for key, p in self._snapshots.items()}
