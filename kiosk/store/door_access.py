"""Doors within reach (issue 10): the operator's per-door ``accessible`` flag, from the cloud.

The cloud sends it in the change log (``door_access``) and in every snapshot (part 1's
``accessible_doors``). The kiosk needs it when it puts a parcel in another door than the one the
cloud gave it (`kiosk.flows.drop_off.choose_door`): a parcel the cloud placed in a door within
reach may be for a customer who asked for one, so its substitute is within reach too.
"""

from __future__ import annotations

from sqlite_utils import Database

from kiosk.store.changes import ApplyOutcome, ApplyResult
from kiosk.store.database import Store


def set_accessible(store: Store, door: int, accessible: bool) -> ApplyResult:
    """Records a door's flag; refused for a door this kiosk does not have."""
    with store.transaction() as db:
        row = next(db.query("SELECT accessible FROM doors WHERE number = ?", [door]), None)
        if row is None:
            return ApplyResult(ApplyOutcome.REFUSED, "no such door here")
        if bool(row["accessible"]) == accessible:
            return ApplyResult(ApplyOutcome.UNCHANGED)
        db.execute("UPDATE doors SET accessible = ? WHERE number = ?", [int(accessible), door])
    return ApplyResult(ApplyOutcome.APPLIED)


def is_accessible(db: Database, door: int) -> bool:
    """Whether the cloud flagged the door within reach (False for an unknown door)."""
    row = next(db.query("SELECT accessible FROM doors WHERE number = ?", [door]), None)
    return row is not None and bool(row["accessible"])


def accessible_doors(db: Database) -> set[int]:
    """The numbers of the doors flagged within reach."""
    return {row["number"] for row in db.query("SELECT number FROM doors WHERE accessible = 1")}
