"""The parts of a large snapshot received so far, kept in the store until the last one is in.

issue 14: kept in SQLite rather than in memory, so a kiosk restarted mid-snapshot keeps the
parts it has and completes the snapshot with the rest. The snapshot is applied only once every
part is in (PowerSync's checkpoint rule, `shared.snapshot_parts`); the application and the
forgetting of its parts are one transaction (`KeptParts.applied`), so a crash leaves either the
parts or the applied snapshot, never neither.

Each part is kept as the JSON of its `SnapshotPartBody`, checked (signature and schema) on
arrival; at most `shared.snapshot_parts.KEPT_SNAPSHOTS` snapshots are kept, the newest by
revision, and none at or below the store's revision (it is past them).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from kiosk.store import changes
from kiosk.store.database import Store
from shared.protocol import SnapshotBody, SnapshotPartBody
from shared.snapshot_parts import KEPT_SNAPSHOTS, InconsistentPart, join_parts


class KeptParts:
    """`shared.snapshot_parts.SnapshotAssembly`'s rules, on the store's ``snapshot_parts``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, part: SnapshotPartBody, now: datetime) -> SnapshotBody | None:
        """Keeps ``part``; returns the whole snapshot once every part is in, else None.

        A repeated part changes nothing. The parts stay kept until `applied` forgets them.

        Raises:
            InconsistentPart: ``part`` names another revision or part count than the parts
                kept before under its snapshot id (nothing is kept of it).
        """
        key = str(part.snapshot_id)
        with self._store.transaction() as db:
            db.execute(
                "DELETE FROM snapshot_parts WHERE revision <= ?", [changes.last_revision(db)]
            )
            known = next(
                db.query(
                    "SELECT revision, parts FROM snapshot_parts WHERE snapshot_id = ? LIMIT 1",
                    [key],
                ),
                None,
            )
            if known is not None and (known["revision"], known["parts"]) != (
                part.revision,
                part.parts,
            ):
                raise InconsistentPart(
                    f"part {part.part} of snapshot {part.snapshot_id} says revision"
                    f" {part.revision} of {part.parts} parts; earlier parts said"
                    f" {known['revision']} of {known['parts']}"
                )
            db.execute(
                "INSERT OR IGNORE INTO snapshot_parts"
                " (snapshot_id, revision, part, parts, body, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    key,
                    part.revision,
                    part.part,
                    part.parts,
                    part.model_dump_json(),
                    now.isoformat(),
                ],
            )
            # Only the newest snapshots are kept: an older unfinished one gives way.
            db.execute(
                "DELETE FROM snapshot_parts WHERE snapshot_id NOT IN ("
                " SELECT snapshot_id FROM snapshot_parts GROUP BY snapshot_id"
                " ORDER BY MAX(revision) DESC, MAX(received_at) DESC LIMIT ?)",
                [KEPT_SNAPSHOTS],
            )
            rows = list(
                db.query(
                    "SELECT body FROM snapshot_parts WHERE snapshot_id = ? ORDER BY part", [key]
                )
            )
        if len(rows) < part.parts:
            return None
        ordered = [SnapshotPartBody.model_validate_json(row["body"]) for row in rows]
        return join_parts(part.revision, ordered)

    def applied(self, snapshot_id: uuid.UUID) -> None:
        """Forgets a snapshot's parts (call it in the transaction that applied it)."""
        with self._store.transaction() as db:
            db.execute("DELETE FROM snapshot_parts WHERE snapshot_id = ?", [str(snapshot_id)])

    def pending(self) -> dict[uuid.UUID, tuple[int, int]]:
        """Snapshots being received: their id, to (parts received, parts)."""
        rows = self._store.db.query(
            "SELECT snapshot_id, COUNT(*) AS received, MAX(parts) AS parts"
            " FROM snapshot_parts GROUP BY snapshot_id"
        )
        return {uuid.UUID(r["snapshot_id"]): (r["received"], r["parts"]) for r in rows}
