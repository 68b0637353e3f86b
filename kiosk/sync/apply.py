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
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlite_utils import Database

from kiosk.store import allocations, changes, door_labels, doors
from kiosk.store.changes import AllocationUpdate, ApplyOutcome, ApplyResult
from kiosk.store.database import Store
from kiosk.store.records import Actor, AllocationKind
from shared.protocol import (
    AllocationChange,
    AllocationState,
    ChangesBody,
    DoorLabelChange,
    MaintenanceChange,
    SnapshotBody,
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
        for change in body.changes:
            if change.revision <= last:
                continue
            applied += 1
            if isinstance(change, AllocationChange):
                subject = f"allocation {change.allocation.allocation_id}"
                result = _apply_allocation(store, change.allocation, change.revision, now)
            elif isinstance(change, DoorLabelChange):
                subject = f"door {change.door}"
                result = door_labels.set_label(store, change.door, change.label)
            else:
                subject = f"door {change.door}"
                result = _apply_maintenance(store, change, now)
            _note(refused, change.revision, subject, result)
        changes.advance_revision(db, body.to_revision, now)
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
            result = changes.cancel_allocation(
                store, current.allocation_id, SNAPSHOT_CANCEL_REASON, revision, now
            )
            if result.outcome is ApplyOutcome.REFUSED:
                kept.append(current.allocation_id)
            _note(refused, revision, f"allocation {current.allocation_id}", result)
        wanted = {entry.door: entry.reason for entry in body.maintenance}
        for door in doors.list_doors(db):
            if (
                door.status is DoorStatus.MAINTENANCE
                and door.number not in wanted
                and _maintenance_set_by_cloud(db, door.number)
            ):
                result = changes.set_door_maintenance(
                    store,
                    door.number,
                    False,
                    reason=None,
                    actor=CLOUD_ACTOR,
                    now=now,
                    revision=revision,
                )
                _note(refused, revision, f"door {door.number}", result)
        for number, reason in sorted(wanted.items()):
            change = MaintenanceChange(revision=revision, door=number, on=True, reason=reason)
            _note(refused, revision, f"door {number}", _apply_maintenance(store, change, now))
        for state in body.allocations:
            result = _apply_allocation(store, state, revision, now)
            _note(refused, revision, f"allocation {state.allocation_id}", result)
        for entry in body.labels:
            result = door_labels.set_label(store, entry.door, entry.label)
            _note(refused, revision, f"door {entry.door}", result)
        changes.advance_revision(db, revision, now)
    log.info(
        "applied snapshot at revision %d (%d allocations, %d doors in maintenance, %d refused,"
        " %d kept by physical facts)",
        revision,
        len(body.allocations),
        len(wanted),
        len(refused),
        len(kept),
    )
    return CheckpointResult(
        CheckpointStatus.APPLIED,
        revision,
        len(body.allocations) + len(wanted),
        tuple(refused),
        tuple(kept),
    )


def allocation_update(state: AllocationState) -> AllocationUpdate:
    """The store's form of an allocation as the protocol carries it (code as its hash).

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
        code_hash=state.code_hash,
    )


def _apply_allocation(
    store: Store, state: AllocationState, revision: int, now: datetime
) -> ApplyResult:
    try:
        update = allocation_update(state)
    except ValueError as error:
        return ApplyResult(ApplyOutcome.REFUSED, str(error))
    return changes.apply_allocation(store, update, revision, now)


def _apply_maintenance(store: Store, change: MaintenanceChange, now: datetime) -> ApplyResult:
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


def _note(refused: list[RefusedChange], revision: int, subject: str, result: ApplyResult) -> None:
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
