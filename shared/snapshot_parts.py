"""A snapshot too large for one message, in parts: split by the cloud, assembled by the kiosk.

A location's snapshot grows with its live allocations (about 370 bytes each): past about 700 it
no longer fits the 262,144-byte payload limit. The cloud then sends it as ``snapshot_part``
messages (`shared.protocol.SnapshotPartBody`), each signed and numbered ``part`` of ``parts``
under one ``snapshot_id``; `SnapshotAssembly` keeps the parts that arrive, in any order and
repeated, and gives the whole `SnapshotBody` only when it holds every part, so the kiosk applies
it in one transaction or not at all (PowerSync's checkpoint rule). A part that never arrives
leaves the snapshot unapplied; the kiosk asks again once the parts stop coming (issue 14), and
the cloud answers with a new snapshot.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

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


PART_ONE_LISTS: tuple[str, ...] = (
    "maintenance",
    "labels",
    "accessible_doors",  # issue 10: door numbers
    "staff",  # issue 11
    "couriers",  # issue 11
    "code_secret_rotations",  # issue 9
)
"""The snapshot's lists besides its allocations, all carried by part 1 of a parted snapshot: the
names of their fields in `SnapshotBody` and `SnapshotPartBody`. A new list (accessible doors,
staff, couriers) is one entry here, one in `cloud.sync.snapshot.part_one_lists` (reading it) and
one in `kiosk.sync.apply.PART_ONE_APPLIERS` (applying it)."""


def part_one_bytes(lists: dict[str, list[Any]]) -> int:
    """The JSON bytes of part 1's lists, counted against that part's allocations (a list of
    models, or of plain values such as door numbers)."""
    return sum(
        len(entry.model_dump_json() if isinstance(entry, BaseModel) else json.dumps(entry)) + 1
        for entries in lists.values()
        for entry in entries
    )


class PartCutter:
    """Decides where parts close, one allocation's JSON size at a time: at ``per_part``
    allocations or `PART_ALLOCATION_BYTES`, whichever first (part 1 starts with its lists'
    bytes). It keeps only the lengths, so the cloud can plan a snapshot read through a cursor
    without holding its allocations."""

    def __init__(self, *, first_part_bytes: int, per_part: int = ALLOCATIONS_PER_PART) -> None:
        if per_part < 1:
            raise ValueError(f"a part holds at least one allocation, not {per_part}")
        self._per_part = per_part
        self._lengths: list[int] = []
        self._count = 0
        self._used = first_part_bytes

    def add(self, size: int) -> None:
        """Counts one allocation of ``size`` JSON bytes (its newline included)."""
        if self._count and (
            self._count >= self._per_part or self._used + size > PART_ALLOCATION_BYTES
        ):
            self._lengths.append(self._count)
            self._count, self._used = 0, 0
        self._count += 1
        self._used += size

    def lengths(self) -> list[int]:
        """Allocations per part, in order (one part, maybe empty, for no allocations).

        Raises:
            ValueError: more than `MAX_SNAPSHOT_PARTS` parts.
        """
        lengths = [*self._lengths, self._count]  # the open part (empty only with no allocation)
        if len(lengths) > MAX_SNAPSHOT_PARTS:
            raise ValueError(f"{len(lengths)} parts exceed the {MAX_SNAPSHOT_PARTS}-part limit")
        return lengths


def snapshot_lists(body: SnapshotBody | SnapshotPartBody) -> dict[str, list[Any]]:
    """The body's `PART_ONE_LISTS`, by field name."""
    return {name: list(getattr(body, name)) for name in PART_ONE_LISTS}


def split_snapshot(
    body: SnapshotBody,
    *,
    per_part: int = ALLOCATIONS_PER_PART,
    snapshot_id: uuid.UUID | None = None,
) -> list[SnapshotPartBody]:
    """The parts of ``body``: its allocations ``per_part`` at a time (fewer where their JSON
    would pass `PART_ALLOCATION_BYTES`), its `PART_ONE_LISTS` in part 1.

    Raises:
        ValueError: ``per_part`` is below 1, or the snapshot would need more than
            `MAX_SNAPSHOT_PARTS` parts.
    """
    lists = snapshot_lists(body)
    cutter = PartCutter(first_part_bytes=part_one_bytes(lists), per_part=per_part)
    for state in body.allocations:
        cutter.add(len(state.model_dump_json()) + 1)
    lengths = cutter.lengths()
    shared_id = snapshot_id or uuid.uuid4()
    parts: list[SnapshotPartBody] = []
    start = 0
    for number, length in enumerate(lengths, start=1):
        parts.append(
            make_part(
                shared_id,
                body.revision,
                number,
                len(lengths),
                body.allocations[start : start + length],
                lists,
            )
        )
        start += length
    return parts


def make_part(
    snapshot_id: uuid.UUID,
    revision: int,
    number: int,
    parts: int,
    allocations: list[AllocationState],
    lists: dict[str, list[Any]],
) -> SnapshotPartBody:
    """Part ``number`` of ``parts``: its allocations, and ``lists`` if it is part 1."""
    empty: dict[str, list[Any]] = {name: [] for name in PART_ONE_LISTS}
    return SnapshotPartBody.model_validate(
        {
            "snapshot_id": snapshot_id,
            "revision": revision,
            "part": number,
            "parts": parts,
            "allocations": allocations,
            **(lists if number == 1 else empty),
        }
    )


def join_parts(revision: int, ordered: list[SnapshotPartBody]) -> SnapshotBody:
    """The whole snapshot of its parts, in order."""
    return SnapshotBody.model_validate(
        {
            "revision": revision,
            "allocations": [state for piece in ordered for state in piece.allocations],
            **{
                name: [entry for piece in ordered for entry in getattr(piece, name)]
                for name in PART_ONE_LISTS
            },
        }
    )


@dataclass
class _Parts:
    revision: int
    parts: int
    received: dict[int, SnapshotPartBody] = field(default_factory=dict)


class InconsistentPart(ValueError):
    """A part contradicts the parts received before under its snapshot id (revision, count)."""


@dataclass
class SnapshotAssembly:
    """The parts of the snapshots being received, in memory (tests and tools; the kiosk keeps
    them in its store with the same rules: `kiosk.store.snapshot_parts.KeptParts`)."""

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
        return join_parts(current.revision, ordered)

    def pending(self) -> dict[uuid.UUID, tuple[int, int]]:
        """Snapshots under assembly: their id, to (parts received, parts)."""
        return {key: (len(p.received), p.parts) for key, p in self._snapshots.items()}
