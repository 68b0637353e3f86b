"""Cloud changes the kiosk cannot apply now: kept with their reason until their blocker ends.

A change of the cloud's log is *blocked* (`ApplyOutcome.BLOCKED`) when a door command of its
parcel or door is under way: a cancel arriving while the driver has the parcel's door open must
wait for the door to shut, when the closing decides (``docs/protocol.md``, "Deferred changes").
Such a change is not dropped:

- it is kept whole in ``deferred_changes`` with why, and its revision is consumed (the log
  moves on: the kiosk neither asks for it again nor stops applying other parcels' changes);
- a later change of the same subject (the same allocation, or the same door) waits behind it,
  so each subject's changes apply in revision order;
- `retry` applies what is kept, lowest revision first, when a door operation settles (the door
  shut, the operation abandoned: `kiosk.monitor`, `kiosk.reconcile`) and before every new
  checkpoint. A change still blocked stays; one now applied is dropped; one refused for good
  (the parcel went in meanwhile: physical facts win) is dropped and reported to the cloud as a
  `cloud_change_refused` event, as is a change refused for good on arrival.

Everything here writes in the caller's transaction (a savepoint of it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlite_utils import Database

from kiosk.store import changes, code_secrets, door_access, door_labels, doors, outbox, people
from kiosk.store.changes import AllocationUpdate, ApplyOutcome, ApplyResult
from kiosk.store.database import Store, require_transaction
from kiosk.store.records import Actor, AllocationKind, to_db_time
from shared.events import CloudChangeRefused
from shared.protocol import (
    AllocationChange,
    AllocationState,
    CodeSecretRotationChange,
    CourierChange,
    DoorAccessChange,
    DoorLabelChange,
    MaintenanceChange,
    StaffChange,
)

log = logging.getLogger(__name__)

CLOUD_ACTOR = Actor.REMOTE
"""Who the audit log names for what the cloud changed (an operator or the service, remotely)."""


class SnapshotCancel(BaseModel):
    """A snapshot's cancel of a live reservation it does not list (``not_in_snapshot``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    revision: Annotated[int, Field(ge=0)]
    kind: Literal["cancel"] = "cancel"
    allocation_id: Annotated[str, Field(min_length=1, max_length=64)]
    reason: Annotated[str, Field(min_length=1, max_length=500)]


CloudChange = Annotated[
    AllocationChange
    | MaintenanceChange
    | DoorLabelChange
    | DoorAccessChange
    | StaffChange
    | CourierChange
    | SnapshotCancel
    | CodeSecretRotationChange,
    Field(discriminator="kind"),
]
"""One change of the cloud's as the kiosk keeps it while it waits."""

_ADAPTER: TypeAdapter[CloudChange] = TypeAdapter(CloudChange)


@dataclass(frozen=True, slots=True)
class DeferredChange:
    """A kept change: its revision, subject, the change itself, and why it waits."""

    revision: int
    subject: str
    change: CloudChange
    reason: str
    deferred_at: datetime


@dataclass(frozen=True, slots=True)
class Considered:
    """What became of one change: applied (or unchanged, stale), deferred, or refused."""

    revision: int
    subject: str
    result: ApplyResult
    deferred: bool = False


def subject_of(change: CloudChange) -> str:
    """What ``change`` changes: ``allocation:<id>``, ``door:<n>`` or ``label:<n>`` (a door's
    label is not held up by its maintenance, nor the other way round)."""
    if isinstance(change, AllocationChange):
        return f"allocation:{change.allocation.allocation_id}"
    if isinstance(change, SnapshotCancel):
        return f"allocation:{change.allocation_id}"
    if isinstance(change, DoorLabelChange):
        return f"label:{change.door}"
    if isinstance(change, DoorAccessChange):
        return f"access:{change.door}"
    if isinstance(change, StaffChange):
        return f"staff:{change.staff_id}"
    if isinstance(change, CourierChange):
        return f"courier:{change.courier_id}"
    if isinstance(change, CodeSecretRotationChange):
        return f"code_secret:{change.kiosk_id}"
    return f"door:{change.door}"


def consider(store: Store, change: CloudChange, now: datetime) -> Considered:
    """Applies one new change of the cloud's now, or keeps it for later.

    A change whose subject already has a kept change waits behind it; a blocked one is kept;
    one refused for good is reported to the cloud (`CloudChangeRefused`).

    Raises:
        sqlite3.Error: the database failed.
    """
    subject = subject_of(change)
    with store.transaction() as db:
        waiting = _first_kept(db, subject)
        if waiting is not None:
            result = ApplyResult(ApplyOutcome.BLOCKED, f"waits for revision {waiting}")
            changes.advance_revision(db, change.revision, now)
            _keep(db, change, subject, result.reason or "", now)
            return Considered(change.revision, subject, result, deferred=True)
        result = apply_change(store, change, now)
        if result.outcome is ApplyOutcome.BLOCKED:
            _keep(db, change, subject, result.reason or "", now)
            log.info("revision %d, %s: deferred (%s)", change.revision, subject, result.reason)
            return Considered(change.revision, subject, result, deferred=True)
        if result.outcome is ApplyOutcome.REFUSED:
            _report(db, change, result.reason or "refused", now, deferred=False)
        return Considered(change.revision, subject, result)


def retry(store: Store, now: datetime) -> list[Considered]:
    """Applies the kept changes whose blocker has ended, lowest revision first.

    Never raises: a failure is logged and rolls back only the retry (the caller's transaction,
    which may hold a door's closing, a physical fact, goes on).

    Returns:
        What became of each kept change tried (those waiting behind a still blocked change of
        their subject are not tried).
    """
    if not kept(store.db, limit=1):
        return []
    try:
        with store.transaction() as db:
            return _retry(store, db, now)
    except Exception:
        log.exception("retrying deferred cloud changes failed; they stay kept")
        return []


def kept(db: Database, *, limit: int = -1) -> list[DeferredChange]:
    """The kept changes, lowest revision first."""
    rows = db.query(
        "SELECT revision, subject, change, reason, deferred_at FROM deferred_changes"
        " ORDER BY revision, subject LIMIT ?",
        [limit],
    )
    return [
        DeferredChange(
            revision=int(row["revision"]),
            subject=str(row["subject"]),
            change=_ADAPTER.validate_json(row["change"]),
            reason=str(row["reason"]),
            deferred_at=datetime.fromisoformat(row["deferred_at"]),
        )
        for row in rows
    ]


def apply_change(store: Store, change: CloudChange, now: datetime) -> ApplyResult:
    """Applies one change to the store (in the caller's transaction if there is one).

    Raises:
        sqlite3.Error: the database failed.
    """
    if isinstance(change, AllocationChange):
        try:
            update = allocation_update(change.allocation, store.identity.kiosk_id)
        except ValueError as error:
            return ApplyResult(ApplyOutcome.REFUSED, str(error))
        applied = changes.apply_allocation(store, update, change.revision, now)
        if change.allocation.carrier_id is not None and applied.outcome is not ApplyOutcome.BLOCKED:
            people.set_carrier(
                store.db, change.allocation.allocation_id, change.allocation.carrier_id
            )
        return applied
    if isinstance(change, StaffChange):
        return people.apply_staff(store, change, now)
    if isinstance(change, CourierChange):
        return people.apply_courier(store, change, now)
    if isinstance(change, SnapshotCancel):
        return changes.cancel_allocation(
            store, change.allocation_id, change.reason, change.revision, now
        )
    if isinstance(change, DoorLabelChange):
        return door_labels.set_label(store, change.door, change.label)
    if isinstance(change, DoorAccessChange):
        return door_access.set_accessible(store, change.door, change.accessible)
    if isinstance(change, CodeSecretRotationChange):
        return _make_code_secret(store, change, now)
    try:
        return changes.set_door_maintenance(
            store,
            change.door,
            change.on,
            reason=change.reason,
            actor=CLOUD_ACTOR,
            now=now,
            revision=change.revision,
        )
    except doors.UnknownDoorRecord:
        return ApplyResult(ApplyOutcome.REFUSED, "no such door here")


def _make_code_secret(store: Store, change: CodeSecretRotationChange, now: datetime) -> ApplyResult:
    """issue 9: a new generation of this kiosk's code secret (`kiosk.store.code_secrets`)."""
    try:
        made = code_secrets.make_generation(
            store, change.kiosk_id, change.generation, bytes.fromhex(change.cloud_public), now
        )
    except ValueError as error:
        return ApplyResult(ApplyOutcome.REFUSED, f"not a usable public half: {error}")
    return ApplyResult(ApplyOutcome.APPLIED if made else ApplyOutcome.UNCHANGED)


def allocation_update(state: AllocationState, kiosk_id: str) -> AllocationUpdate:
    """The store's form of an allocation as the protocol carries it (code as its hash).

    The hash kept is the one under this kiosk's own code secret (issue 9: one secret per kiosk).

    Raises:
        ValueError: the allocation cannot be stored (e.g. a blank barcode).
    """
    return AllocationUpdate(
        allocation_id=state.allocation_id,
        kind=AllocationKind(state.kind),
        barcode=state.barcode,
        size=state.size,
        status=state.status,
        proposed_door=state.proposed_door,
        reservation_expires_at=state.reservation_expires_at,
        pickup_expires_at=state.pickup_expires_at,
        order_id=state.order_id,
        return_reason=state.return_reason,
        code_hash=state.code_hash_for(kiosk_id),
        code_generation=state.code_generation_for(kiosk_id),
    )


def _retry(store: Store, db: Database, now: datetime) -> list[Considered]:
    done: list[Considered] = []
    still_blocked: set[str] = set()
    for entry in kept(db):
        if entry.subject in still_blocked:
            continue
        result = apply_change(store, entry.change, now)
        if result.outcome is ApplyOutcome.BLOCKED:
            still_blocked.add(entry.subject)
            db.execute(
                "UPDATE deferred_changes SET reason = ?, retried_at = ?"
                " WHERE subject = ? AND revision = ?",
                [result.reason, to_db_time(now), entry.subject, entry.revision],
            )
            done.append(Considered(entry.revision, entry.subject, result, deferred=True))
            continue
        db.execute(
            "DELETE FROM deferred_changes WHERE subject = ? AND revision = ?",
            [entry.subject, entry.revision],
        )
        if result.outcome is ApplyOutcome.REFUSED:
            _report(db, entry.change, result.reason or "refused", now, deferred=True)
            log.warning(
                "deferred revision %d, %s: refused for good (%s)",
                entry.revision,
                entry.subject,
                result.reason,
            )
        else:
            log.info(
                "deferred revision %d, %s: %s now", entry.revision, entry.subject, result.outcome
            )
        done.append(Considered(entry.revision, entry.subject, result))
    return done


def _first_kept(db: Database, subject: str) -> int | None:
    row = db.execute(
        "SELECT min(revision) FROM deferred_changes WHERE subject = ?", [subject]
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _keep(db: Database, change: CloudChange, subject: str, reason: str, now: datetime) -> None:
    require_transaction(db)
    db.execute(
        "INSERT INTO deferred_changes (revision, subject, change, reason, deferred_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (subject, revision) DO NOTHING",
        [
            change.revision,
            subject,
            _ADAPTER.dump_json(change).decode(),
            reason,
            to_db_time(now),
        ],
    )


def _report(
    db: Database, change: CloudChange, reason: str, now: datetime, *, deferred: bool
) -> None:
    allocation_id: str | None = None
    door: int | None = None
    if isinstance(change, AllocationChange):
        allocation_id = change.allocation.allocation_id
    elif isinstance(change, SnapshotCancel):
        allocation_id = change.allocation_id
    elif isinstance(change, StaffChange | CourierChange | CodeSecretRotationChange):
        pass  # never refused for good: nothing physical contradicts it
    else:
        door = change.door
    event = CloudChangeRefused(
        revision=change.revision,
        allocation_id=allocation_id,
        door=door,
        reason=reason,
        deferred=deferred,
    )
    outbox.append_event(db, event, now)
