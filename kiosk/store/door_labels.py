"""Door labels: what the cloud calls a door ("A1", "B5") and the screen shows.

The cloud sets a label when it creates a door and sends it in the change log (``door_label``)
and in every snapshot; a door without one is shown by its number.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlite_utils import Database

from kiosk.store.changes import ApplyOutcome, ApplyResult
from kiosk.store.database import Store


def set_label(store: Store, door: int, label: str) -> ApplyResult:
    """Records a door's label; refused for a door this kiosk does not have."""
    with store.transaction() as db:
        row = next(db.query("SELECT label FROM doors WHERE number = ?", [door]), None)
        if row is None:
            return ApplyResult(ApplyOutcome.REFUSED, "no such door here")
        if row["label"] == label:
            return ApplyResult(ApplyOutcome.UNCHANGED)
        db.execute("UPDATE doors SET label = ? WHERE number = ?", [label, door])
    return ApplyResult(ApplyOutcome.APPLIED)


def label_of(db: Database, door: int) -> str | None:
    """The door's label, or None if the cloud sent none (or there is no such door)."""
    row = next(db.query("SELECT label FROM doors WHERE number = ?", [door]), None)
    return None if row is None else row["label"]


def door_namer(store: Store) -> Callable[[int], str]:
    """How the screen names a door: its label, else its number (`kiosk.ui.services`)."""

    def name(door: int) -> str:
        return label_of(store.db, door) or str(door)

    return name
