"""Staff members and couriers the cloud provisioned here, and finding who typed a PIN or code.

The cloud sends each person's state in the change log (kinds ``staff`` and ``courier``) and
lists everyone not revoked in every snapshot (`kiosk.sync.apply`, which revokes whoever a
snapshot no longer lists). A PIN or code is kept only as its scrypt hash (`shared.people`):
sign-in hashes what was typed once per salt in use (one per location, so once) and looks the
hash up; a revoked person is never found.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from kiosk.store.changes import ApplyOutcome, ApplyResult
from kiosk.store.database import Store, require_transaction
from kiosk.store.records import to_db_time
from shared.people import CourierPermission, secret_hash
from shared.protocol import CourierChange, StaffChange


@dataclass(frozen=True, slots=True)
class StaffMember:
    staff_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Courier:
    courier_id: str
    name: str
    carrier_id: str
    permissions: frozenset[CourierPermission]

    def may(self, permission: CourierPermission) -> bool:
        return permission in self.permissions


def apply_staff(store: Store, change: StaffChange, now: datetime) -> ApplyResult:
    """Records a staff member's state from the cloud (a revocation stops their sign-in)."""
    with store.transaction() as db:
        seen = _revision(db, "staff_members", "staff_id", change.staff_id)
        if seen is not None and change.revision <= seen:
            return ApplyResult(ApplyOutcome.STALE)
        db.execute(
            "INSERT INTO staff_members (staff_id, name, pin_hash, salt, revoked_at, revision)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (staff_id) DO UPDATE SET name = excluded.name,"
            " pin_hash = excluded.pin_hash, salt = excluded.salt,"
            " revoked_at = excluded.revoked_at, revision = excluded.revision",
            [
                change.staff_id,
                change.name,
                change.pin_hash,
                change.salt,
                to_db_time(now) if change.revoked else None,
                change.revision,
            ],
        )
    return ApplyResult(ApplyOutcome.APPLIED)


def apply_courier(store: Store, change: CourierChange, now: datetime) -> ApplyResult:
    """Records a courier's state from the cloud (a revocation stops their sign-in)."""
    with store.transaction() as db:
        seen = _revision(db, "couriers", "courier_id", change.courier_id)
        if seen is not None and change.revision <= seen:
            return ApplyResult(ApplyOutcome.STALE)
        db.execute(
            "INSERT INTO couriers (courier_id, name, carrier_id, code_hash, salt, permissions,"
            " revoked_at, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (courier_id) DO UPDATE SET name = excluded.name,"
            " carrier_id = excluded.carrier_id, code_hash = excluded.code_hash,"
            " salt = excluded.salt, permissions = excluded.permissions,"
            " revoked_at = excluded.revoked_at, revision = excluded.revision",
            [
                change.courier_id,
                change.name,
                change.carrier_id,
                change.code_hash,
                change.salt,
                json.dumps(sorted(change.permissions)),
                to_db_time(now) if change.revoked else None,
                change.revision,
            ],
        )
    return ApplyResult(ApplyOutcome.APPLIED)


def live_staff_ids(db: Database) -> set[str]:
    return {str(r["staff_id"]) for r in db.query(_LIVE_STAFF)}


def live_courier_ids(db: Database) -> set[str]:
    return {str(r["courier_id"]) for r in db.query(_LIVE_COURIERS)}


def revoke_unlisted(
    db: Database, staff_ids: set[str], courier_ids: set[str], revision: int, now: datetime
) -> int:
    """Revokes everyone a snapshot no longer lists (revoked while the kiosk was away).

    Returns:
        How many were revoked.
    """
    require_transaction(db)
    revoked = 0
    for table, key, keep in (
        ("staff_members", "staff_id", staff_ids),
        ("couriers", "courier_id", courier_ids),
    ):
        live = [
            str(r[key]) for r in db.query(f"SELECT {key} FROM {table} WHERE revoked_at IS NULL")
        ]
        for person in live:
            if person not in keep:
                db.execute(
                    f"UPDATE {table} SET revoked_at = ?, revision = max(revision, ?)"
                    f" WHERE {key} = ?",
                    [to_db_time(now), revision, person],
                )
                revoked += 1
    return revoked


def any_staff(db: Database) -> bool:
    """Whether the cloud has provisioned any staff member here (revoked ones count: once
    per-person PINs are in use, the shared configured PIN never comes back)."""
    return next(db.query("SELECT 1 AS x FROM staff_members LIMIT 1"), None) is not None


def find_staff(db: Database, pin: str) -> StaffMember | None:
    """The live staff member whose PIN this is, or None."""
    for salt in _salts(db, "staff_members"):
        row = next(
            db.query(
                _LIVE_STAFF + " AND pin_hash = ? AND salt = ?", [secret_hash(pin, salt), salt]
            ),
            None,
        )
        if row is not None:
            return StaffMember(str(row["staff_id"]), str(row["name"]))
    return None


def find_courier(db: Database, code: str) -> Courier | None:
    """The live courier whose code this is, or None."""
    for salt in _salts(db, "couriers"):
        row = next(
            db.query(
                _LIVE_COURIERS + " AND code_hash = ? AND salt = ?", [secret_hash(code, salt), salt]
            ),
            None,
        )
        if row is not None:
            return _courier(row)
    return None


def get_courier(db: Database, courier_id: str) -> Courier | None:
    """A live courier by id (None once revoked)."""
    row = next(db.query(_LIVE_COURIERS + " AND courier_id = ?", [courier_id]), None)
    return None if row is None else _courier(row)


def is_live_staff(db: Database, staff_id: str) -> bool:
    return next(db.query(_LIVE_STAFF + " AND staff_id = ?", [staff_id]), None) is not None


_LIVE_STAFF = "SELECT staff_id, name FROM staff_members WHERE revoked_at IS NULL"
_LIVE_COURIERS = (
    "SELECT courier_id, name, carrier_id, permissions FROM couriers WHERE revoked_at IS NULL"
)


def _courier(row: dict[str, object]) -> Courier:
    perms = frozenset(CourierPermission(p) for p in json.loads(str(row["permissions"])))
    return Courier(str(row["courier_id"]), str(row["name"]), str(row["carrier_id"]), perms)


def _salts(db: Database, table: str) -> list[str]:
    query = f"SELECT DISTINCT salt FROM {table} WHERE revoked_at IS NULL ORDER BY salt"
    return [str(r["salt"]) for r in db.query(query)]


def _revision(db: Database, table: str, key: str, value: str) -> int | None:
    row = next(db.query(f"SELECT revision FROM {table} WHERE {key} = ?", [value]), None)
    return None if row is None else int(row["revision"])


def set_carrier(db: Database, allocation_id: str, carrier_id: str) -> None:
    """Records whose parcel an allocation is (from the cloud's allocation change)."""
    db.execute(
        "UPDATE allocations SET carrier_id = ? WHERE allocation_id = ? AND carrier_id IS NOT ?",
        [carrier_id, allocation_id, carrier_id],
    )


def carrier_of(db: Database, allocation_id: str) -> str | None:
    row = next(
        db.query("SELECT carrier_id FROM allocations WHERE allocation_id = ?", [allocation_id]),
        None,
    )
    return None if row is None or row["carrier_id"] is None else str(row["carrier_id"])
