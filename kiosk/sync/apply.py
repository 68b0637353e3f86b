"""Applying the cloud's change log to the store: `changes` checkpoints and `snapshot`s.

A checkpoint (one `changes` message, or one snapshot) is applied in **one** store transaction:
all of it or nothing, so the kiosk never shows a half-applied commit of the cloud (PowerSync's
rule). Revisions make it idempotent (invariant 5):

- changes at or below the stored ``last_revision`` are skipped (a duplicate, or a late copy);
- a checkpoint that starts after ``last_revision + 1`` is a **gap** (an earlier message was lost
  or is late): nothing of it is applied, and the caller asks the cloud with a ``sync_request``;
- a change the store refuses (physical facts win: a parcel in its door is not cancelled from
  afar; or it names a door this kiosk does not have) is logged with its reason and still moves
  the revision on. The kiosk's own events tell the cloud what is true here.

A snapshot replaces the kiosk's view of the cloud's state at one revision (``docs/protocol.md``,
"snapshot").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlite_utils import Database

from kiosk.store import allocations, changes, code_secrets, door_access, doors, people
from kiosk.store.changes import ApplyOutcome
from kiosk.store.database import Store
from kiosk.store.records import Actor
from kiosk.sync import deferred
from shared.protocol import (
    AllocationChange,
    ChangesBody,
    CodeSecretRotationChange,
    CourierChange,
    DoorAccessChange,
    DoorLabelChange,
    MaintenanceChange,
    SnapshotBody,
    StaffChange,
)
from shared.states import LIVE_ALLOCATION_STATUSES, AllocationStatus, DoorStatus

log = logging.getLogger(__name__)

CLOUD_ACTOR = Actor.REMOTE
"""Who the audit log names for what the cloud changed (an operator or the service, remotely)."""

SNAPSHOT_CANCEL_REASON = "not_in_snapshot"


class CheckpointStatus(StrEnum):
    APPLIED = "applied"  # new revisions applied; last_revision moved on
    DUPLICATE = "duplicate"  # nothing new: every revision was applied before
    GAP = "gap"  # starts after last_revision + 1: nothing applied, ask with a sync_request
    INCONSISTENT = "inconsistent"  # its revisions contradict from/to: nothing applied


@dataclass(frozen=True, slots=True)
class RefusedChange:
    """A change the store did not apply (its revision was still consumed)."""

    revision: int
    subject: str
    reason: str


@dataclass(frozen=True, slots=True)
class CheckpointResult:
    """What applying one checkpoint did.

    Attributes:
        status: See `CheckpointStatus`.
        last_revision: The stored revision afterwards.
        applied: Changes applied now (refused ones included: they were considered).
        refused: The changes the store refused, with why.
        kept: For a snapshot: live allocations it did not list that a physical fact keeps here.
        detail: Why a checkpoint was inconsistent.
    """

    status: CheckpointStatus
    last_revision: int
    applied: int = 0
    refused: tuple[RefusedChange, ...] = ()
    kept: tuple[str, ...] = ()
    detail: str | None = None


def apply_changes(store: Store, body: ChangesBody, now: datetime) -> CheckpointResult:
    """Applies a `changes` checkpoint in one transaction.

    Raises:
        sqlite3.Error: the database failed (nothing is applied).
    """
    problem = _inconsistency(body)
    if problem is not None:
        last = changes.last_revision(store.db)
        log.warning("changes %d..%d not applied: %s", body.from_revision, body.to_revision, problem)
        return CheckpointResult(CheckpointStatus.INCONSISTENT, last, detail=problem)
    with store.transaction() as db:
        last = changes.last_revision(db)
        if body.to_revision <= last:
            return CheckpointResult(CheckpointStatus.DUPLICATE, last)
        if body.from_revision > last:
            log.info(
                "changes %d..%d leave a gap after revision %d: asking the cloud",
                body.from_revision + 1,
                body.to_revision,
                last,
            )
            return CheckpointResult(CheckpointStatus.GAP, last)
        refused: list[RefusedChange] = []
        applied = 0
        deferred.retry(store, now)  # older kept changes first: revision order per subject
        for change in body.changes:
            if change.revision <= last:
                continue
            applied += 1
            _note(refused, deferred.consider(store, change, now))
        changes.advance_revision(db, body.to_revision, now)
        code_secrets.retire_unneeded(db, now)  # issue 9: codes ended, generations may go
    log.info(
        "applied changes %d..%d (%d new, %d refused)",
        last + 1,
        body.to_revision,
        applied,
        len(refused),
    )
    return CheckpointResult(CheckpointStatus.APPLIED, body.to_revision, applied, tuple(refused))


def apply_snapshot(store: Store, body: SnapshotBody, now: datetime) -> CheckpointResult:
    """Replaces the kiosk's view of the cloud's state with a snapshot, in one transaction.

    A snapshot at or below the stored revision is a late copy and changes nothing. Otherwise:

    1. a live allocation the snapshot does not list is cancelled, unless a physical fact holds
       it here (its parcel is deposited or expired in a door, or its door is in use right now);
    2. a door in maintenance that the snapshot does not list leaves maintenance if the cloud put
       it there; maintenance set at the kiosk (staff, a driver's problem report) stays until
       staff end it, since the cloud may not have applied the kiosk's report yet;
    3. the listed maintenance and allocations are applied as changes at the snapshot's revision;
    4. ``last_revision`` becomes the snapshot's revision.

    Raises:
        sqlite3.Error: the database failed (nothing is applied).
    """
    revision = body.revision
    with store.transaction() as db:
        last = changes.last_revision(db)
        if revision <= last:
            return CheckpointResult(CheckpointStatus.DUPLICATE, last)
        refused: list[RefusedChange] = []
        kept: list[str] = []
        deferred.retry(store, now)
        listed = {state.allocation_id for state in body.allocations}
        for current in allocations.list_allocations(db, LIVE_ALLOCATION_STATUSES):
            if current.allocation_id in listed:
                continue
            if current.status is not AllocationStatus.RESERVED:
                kept.append(current.allocation_id)
                log.info(
                    "snapshot %d does not list %s, %s here in door %s: kept (physical fact)",
                    revision,
                    current.allocation_id,
                    current.status,
                    current.door,
                )
                continue
            cancel = deferred.SnapshotCancel(
                revision=revision,
                allocation_id=current.allocation_id,
                reason=SNAPSHOT_CANCEL_REASON,
            )
            considered = deferred.consider(store, cancel, now)
            if considered.result.outcome in (ApplyOutcome.REFUSED, ApplyOutcome.BLOCKED):
                kept.append(current.allocation_id)
            _note(refused, considered)
        for applier in PART_ONE_APPLIERS.values():
            for considered in applier(store, body, now):
                _note(refused, considered)
        for state in body.allocations:
            listed_change = AllocationChange(revision=revision, allocation=state)
            _note(refused, deferred.consider(store, listed_change, now))
        changes.advance_revision(db, revision, now)
        code_secrets.retire_unneeded(db, now)
    log.info(
        "applied snapshot at revision %d (%d allocations, %d doors in maintenance, %d refused,"
        " %d kept by physical facts)",
        revision,
        len(body.allocations),
        len(body.maintenance),
        len(refused),
        len(kept),
    )
    return CheckpointResult(
        CheckpointStatus.APPLIED,
        revision,
        len(body.allocations) + len(body.maintenance),
        tuple(refused),
        tuple(kept),
    )


def _apply_maintenance(
    store: Store, body: SnapshotBody, now: datetime
) -> list[deferred.Considered]:
    """Steps 2 and 3's maintenance: the cloud's doors leave or enter maintenance."""
    db, revision = store.db, body.revision
    considered: list[deferred.Considered] = []
    wanted = {entry.door: entry.reason for entry in body.maintenance}
    for door in doors.list_doors(db):
        if (
            door.status is DoorStatus.MAINTENANCE
            and door.number not in wanted
            and _maintenance_set_by_cloud(db, door.number)
        ):
            off = MaintenanceChange(revision=revision, door=door.number, on=False)
            considered.append(deferred.consider(store, off, now))
    for number, reason in sorted(wanted.items()):
        on = MaintenanceChange(revision=revision, door=number, on=True, reason=reason)
        considered.append(deferred.consider(store, on, now))
    return considered


def _apply_labels(store: Store, body: SnapshotBody, now: datetime) -> list[deferred.Considered]:
    return [
        deferred.consider(
            store, DoorLabelChange(revision=body.revision, door=e.door, label=e.label), now
        )
        for e in body.labels
    ]


def _apply_accessible_doors(
    store: Store, body: SnapshotBody, now: datetime
) -> list[deferred.Considered]:
    """issue 10: the doors listed are within reach; every other door is not."""
    reachable = set(body.accessible_doors)
    return [
        deferred.consider(
            store,
            DoorAccessChange(
                revision=body.revision, door=door.number, accessible=door.number in reachable
            ),
            now,
        )
        for door in doors.list_doors(store.db)
        if door.number in reachable or door_access.is_accessible(store.db, door.number)
    ]


def _apply_staff(store: Store, body: SnapshotBody, now: datetime) -> list[deferred.Considered]:
    """issue 11: every staff member listed (whoever is not is revoked by `_apply_couriers`)."""
    return [
        deferred.consider(store, StaffChange(revision=body.revision, **m.model_dump()), now)
        for m in body.staff
    ]


def _apply_couriers(store: Store, body: SnapshotBody, now: datetime) -> list[deferred.Considered]:
    """issue 11: every courier listed; then staff and couriers not listed are revoked."""
    considered = [
        deferred.consider(store, CourierChange(revision=body.revision, **c.model_dump()), now)
        for c in body.couriers
    ]
    people.revoke_unlisted(
        store.db,
        {m.staff_id for m in body.staff},
        {c.courier_id for c in body.couriers},
        body.revision,
        now,
    )
    return considered


def _apply_code_secret_rotations(
    store: Store, body: SnapshotBody, now: datetime
) -> list[deferred.Considered]:
    """issue 9: rotation requests the kiosk has not answered yet."""
    return [
        deferred.consider(
            store, CodeSecretRotationChange(revision=body.revision, **r.model_dump()), now
        )
        for r in body.code_secret_rotations
    ]


PART_ONE_APPLIERS: dict[str, Callable[[Store, SnapshotBody, datetime], list[deferred.Considered]]]
PART_ONE_APPLIERS = {
    "maintenance": _apply_maintenance,
    "labels": _apply_labels,
    "accessible_doors": _apply_accessible_doors,
    "staff": _apply_staff,
    "couriers": _apply_couriers,
    "code_secret_rotations": _apply_code_secret_rotations,
}
"""How a snapshot's lists besides its allocations are applied (part 1 of a parted snapshot),
by field name (`shared.snapshot_parts.PART_ONE_LISTS`), in this order, before the allocations.
The one place on the kiosk: a new list is one entry here, its applier returning what it
considered (`kiosk.sync.deferred.consider`) so refusals are noted like the others'."""


def _note(refused: list[RefusedChange], considered: deferred.Considered) -> None:
    result, revision = considered.result, considered.revision
    subject = considered.subject.replace(":", " ", 1)
    if result.outcome is ApplyOutcome.REFUSED:
        reason = result.reason or "refused"
        refused.append(RefusedChange(revision, subject, reason))
        log.warning("revision %d, %s: refused (%s)", revision, subject, reason)
    elif result.reason:
        log.info("revision %d, %s: %s (%s)", revision, subject, result.outcome, result.reason)


def _inconsistency(body: ChangesBody) -> str | None:
    if body.to_revision < body.from_revision:
        return "to_revision is below from_revision"
    revisions = [change.revision for change in body.changes]
    expected = list(range(body.from_revision + 1, body.to_revision + 1))
    if revisions != expected:
        return (
            f"revisions {revisions[:5]}{'...' if len(revisions) > 5 else ''} are not"
            f" {body.from_revision + 1}..{body.to_revision} in order"
        )
    return None


def _maintenance_set_by_cloud(db: Database, door: int) -> bool:
    row = next(
        db.query(
            "SELECT actor FROM audit_log WHERE door = ? AND command = 'maintenance_on'"
            " AND result = 'done' ORDER BY audit_id DESC LIMIT 1",
            [door],
        ),
        None,
    )
    return row is not None and row["actor"] == CLOUD_ACTOR.value
