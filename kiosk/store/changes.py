"""Changes from outside the kiosk's own flows: what cloud sync (and staff) apply to the store.

Sync will call these with each change of the location's change log and its revision:

- `apply_allocation`: create or update an allocation (with its code hashed here, or the hash
  the cloud computed with the kiosk's code secret);
- `cancel_allocation`: cancel a reservation;
- `set_door_maintenance`: take a door out of service or put it back;
- `last_revision`: where to resume the change log; `advance_revision`: move past a change that
  was refused.

Each is one transaction that also advances the stored revision, so a change and "applied up to
revision N" are never separated; wrap several calls in `Store.transaction` to apply a whole
checkpoint atomically. A change older than what an allocation already reflects is ignored
(messages may arrive twice, late or out of order).

Authority rule (invariant 2): the cloud reserves capacity and *proposes* a door; the kiosk owns
the physical doors. A proposed door that is not free here is not taken: the allocation is kept
without a door, an event says so, and the drop-off assigns a free door of the right size.
Physical facts win: the cloud may cancel a reservation or expire a parcel, but a parcel that is
in a door here (or on its way in) is not cancelled from afar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlite_utils import Database

from kiosk.store import allocations, audit, codes, doors, operations, outbox
from kiosk.store.code_hash import CodeHasher
from kiosk.store.database import Store, require_transaction
from kiosk.store.records import Actor, AllocationKind, CodeKind, to_db_time
from shared.codes import PickupCode
from shared.events import DoorMaintenance, ProposedDoorUnavailable
from shared.sizes import Size
from shared.states import AllocationStatus, DoorStatus

_HASH = re.compile(r"[0-9a-f]{64}")

DOOR_IN_USE = "its door is being used right now"
"""Why a cloud change is `ApplyOutcome.BLOCKED`: a door command of the parcel or door runs."""


class ApplyOutcome(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"  # already so (a duplicate, or nothing new)
    STALE = "stale"  # older than what the store has
    REFUSED = "refused"  # contradicts a physical fact here, or names something unknown
    # Cannot be applied now (its door is in use); nothing of it was written, so it can be
    # applied as it is once the door's operation settles (`kiosk.sync.deferred`).
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What applying a change did; ``reason`` says why it was refused or partly applied."""

    outcome: ApplyOutcome
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AllocationUpdate:
    """An allocation as the cloud describes it.

    Attributes:
        allocation_id: The cloud's id.
        kind: Delivery or return.
        barcode: The package id a driver scans (for returns, the return label).
        size: The door size it needs.
        status: Its status in the cloud.
        proposed_door: The door the cloud proposes; the kiosk takes it only if it is free here.
        code: Its pickup or return code in plaintext: hashed on apply, never stored.
        reservation_expires_at: End of the drop-off window.
        pickup_expires_at: End of the pickup window, once deposited.
        order_id: For returns: the customer's order.
        return_reason: For returns: why the customer returns it.
        code_hash: Its code as the cloud sends it over the broker: the HMAC-SHA256 under the
            kiosk's code secret (`shared.codes.code_hash`). Give this or ``code``, not both.

    Raises:
        ValueError: on construction, for an empty id or barcode, naive times, both a code and
            a code hash, or a code hash that is not 64 lowercase hex digits.
    """

    allocation_id: str
    kind: AllocationKind
    barcode: str
    size: Size
    status: AllocationStatus
    proposed_door: int | None = None
    code: PickupCode | None = field(default=None, repr=False)
    reservation_expires_at: datetime | None = None
    pickup_expires_at: datetime | None = None
    order_id: str | None = None
    return_reason: str | None = None
    code_hash: str | None = field(default=None, repr=False)
    code_generation: int = 1  # issue 9: the generation of the secret ``code_hash`` is under

    def __post_init__(self) -> None:
        if not self.allocation_id.strip() or not self.barcode.strip():
            raise ValueError("an allocation needs an id and a barcode")
        if self.code is not None and self.code_hash is not None:
            raise ValueError("give an allocation's code or its code hash, not both")
        if self.code_hash is not None and not _HASH.fullmatch(self.code_hash):
            raise ValueError("a code hash is 64 lowercase hex digits")
        for when in (self.reservation_expires_at, self.pickup_expires_at):
            if when is not None and when.tzinfo is None:
                raise ValueError("allocation times must be timezone-aware")

    @property
    def code_kind(self) -> CodeKind:
        return CodeKind.RETURN if self.kind is AllocationKind.RETURN else CodeKind.PICKUP

    def hashed_code(self, hasher: CodeHasher) -> str | None:
        """The code's keyed hash as the store keeps it, or None when the update has no code."""
        if self.code is not None:
            return hasher.hash(self.code)
        return self.code_hash


# Moves the cloud decides on its own; every other move is a physical fact made at the kiosk.
_CLOUD_MOVES = frozenset(
    {
        (AllocationStatus.RESERVED, AllocationStatus.CANCELLED),
        (AllocationStatus.DEPOSITED, AllocationStatus.EXPIRED),
    }
)


def last_revision(db: Database) -> int:
    """The highest cloud revision applied so far (0 for a new kiosk)."""
    return int(next(db.query("SELECT last_revision FROM sync_state WHERE id = 1"))["last_revision"])


def apply_allocation(
    store: Store, update: AllocationUpdate, revision: int, now: datetime
) -> ApplyResult:
    """Creates or updates an allocation from the cloud's change log.

    Raises:
        ValueError: ``revision`` is negative.
        sqlite3.Error: the database failed (nothing is applied).
    """
    _check_revision(revision)
    with store.transaction() as db:
        advance_revision(db, revision, now)
        current = allocations.find_allocation(db, update.allocation_id)
        if current is not None and revision <= current.revision:
            return ApplyResult(ApplyOutcome.STALE)
        if (
            current is not None
            and (current.status, update.status) in _CLOUD_MOVES
            and _busy(db, update.allocation_id)
        ):
            # Checked before anything is written: the change must stay whole (and newer than
            # the allocation's revision) for when the door's operation settles.
            return ApplyResult(ApplyOutcome.BLOCKED, DOOR_IN_USE)
        # A parcel finished here (or sent finished) needs no code: attaching one would make a
        # code the customer already used live again.
        finished = (update.status if current is None else current.status).is_final
        hashed = update.hashed_code(store.hasher)
        if hashed is None or finished:
            code_id = None
        elif current is not None and _has_code(db, current.code_id, hashed):
            # Its own code sent again (the cloud logs the parcel after the kiosk's code_used):
            # kept as it is. Attaching would find no live row once the code is spent here and
            # make a new, live one: the code the customer just used would work again.
            code_id = current.code_id
        else:
            code_id = codes.attach_code(db, hashed, update.code_kind, now, update.code_generation)
        if current is None:
            return _create(db, update, code_id, revision, now)
        fields: dict[str, object] = {
            "barcode": update.barcode,
            "revision": revision,
            "proposed_door": update.proposed_door,
        }
        if update.reservation_expires_at is not None:
            fields["reservation_expires_at"] = update.reservation_expires_at
        if update.pickup_expires_at is not None:
            fields["pickup_expires_at"] = update.pickup_expires_at
        if code_id is not None and current.status is not AllocationStatus.PICKED_UP:
            fields["code_id"] = code_id
        if current.status is AllocationStatus.RESERVED:
            fields["size"] = update.size
        allocations.update_fields(db, update.allocation_id, now, **fields)
        if update.status is current.status:
            if current.status is AllocationStatus.RESERVED and not _busy(db, update.allocation_id):
                _take_proposed_door(db, update.allocation_id, update.proposed_door, now)
            return ApplyResult(ApplyOutcome.APPLIED)
        if (current.status, update.status) not in _CLOUD_MOVES:
            return ApplyResult(
                ApplyOutcome.REFUSED,
                f"the kiosk has it {current.status}; the cloud's {update.status} is not a move"
                " the cloud can make",
            )
        allocations.move(db, update.allocation_id, update.status, now, cancel_reason="cloud")
        return ApplyResult(ApplyOutcome.APPLIED)


def _has_code(db: Database, code_id: int | None, code_hash: str) -> bool:
    return code_id is not None and codes.get_code(db, code_id).code_hash == code_hash


def cancel_allocation(
    store: Store, allocation_id: str, reason: str, revision: int, now: datetime
) -> ApplyResult:
    """Cancels a reservation and frees its door. Cancelling twice changes nothing.

    Refused for an allocation the kiosk does not know, and for a parcel that is in its door
    or being put in (physical facts win).

    Raises:
        ValueError: ``revision`` is negative.
    """
    _check_revision(revision)
    with store.transaction() as db:
        advance_revision(db, revision, now)
        current = allocations.find_allocation(db, allocation_id)
        if current is None:
            return ApplyResult(ApplyOutcome.REFUSED, "unknown allocation")
        if current.status is AllocationStatus.CANCELLED:
            return ApplyResult(ApplyOutcome.UNCHANGED)
        if current.status is not AllocationStatus.RESERVED:
            return ApplyResult(ApplyOutcome.REFUSED, f"the parcel is {current.status} here")
        if _busy(db, allocation_id):
            return ApplyResult(ApplyOutcome.BLOCKED, DOOR_IN_USE)
        allocations.move(db, allocation_id, AllocationStatus.CANCELLED, now, cancel_reason=reason)
        allocations.update_fields(db, allocation_id, now, revision=max(revision, current.revision))
        return ApplyResult(ApplyOutcome.APPLIED)


def set_door_maintenance(
    store: Store,
    door: int,
    on: bool,
    *,
    reason: str | None,
    actor: Actor,
    now: datetime,
    revision: int | None = None,
) -> ApplyResult:
    """Takes a door out of service (``on``) or puts it back.

    A reserved door's allocation loses it (the drop-off will assign another door). A door with
    a parcel in it, or one in use right now, is refused: empty it first. Audited, and reported in
    the outbox. A change from the cloud (with a ``revision``) no newer than the last one applied
    to the door is ignored as stale.

    Raises:
        UnknownDoorRecord: no such door.
        ValueError: ``revision`` is negative.
    """
    with store.transaction() as db:
        if revision is not None:
            _check_revision(revision)
            advance_revision(db, revision, now)
        current = doors.get_door(db, door)
        if revision is not None and operations.active_operation(db, door) is not None:
            # The cloud's change waits for the door's operation to settle, whole: its revision
            # is not recorded on the door, or it would be stale when it is applied later.
            return ApplyResult(ApplyOutcome.BLOCKED, "the door is in use right now")
        if revision is not None:
            seen = db.execute(
                "SELECT maintenance_revision FROM doors WHERE number = ?", [door]
            ).fetchone()[0]
            if revision <= seen:
                return ApplyResult(ApplyOutcome.STALE)
            db.execute(
                "UPDATE doors SET maintenance_revision = ? WHERE number = ?", [revision, door]
            )
        target = DoorStatus.MAINTENANCE if on else DoorStatus.AVAILABLE
        command = "maintenance_on" if on else "maintenance_off"
        if current.status is target:
            return ApplyResult(ApplyOutcome.UNCHANGED)
        if not on and current.status is not DoorStatus.MAINTENANCE:
            # Already in service: making it "available" would free a door that holds a parcel.
            return ApplyResult(ApplyOutcome.UNCHANGED, f"the door is {current.status}, in service")
        refusal = _maintenance_refusal(db, current.number, current.status, on)
        if refusal is not None:
            audit.record_entry(
                db, now, actor, command, "refused", door=door, detail={"reason": refusal}
            )
            return ApplyResult(ApplyOutcome.REFUSED, refusal)
        detached = None
        if current.status is DoorStatus.RESERVED:
            holder = _live_allocation_in(db, door)
            if holder is not None:
                allocations.assign_door(db, holder, None, now)
                detached = holder
        doors.set_status(db, door, target, now, reason=reason)
        if not on:
            doors.set_fault(db, door, None, now)
        event = DoorMaintenance(
            door=door, on=on, reason=reason, actor=actor.value, detached_allocation_id=detached
        )
        outbox.append_event(db, event, now)
        audit.record_entry(
            db,
            now,
            actor,
            command,
            "done",
            door=door,
            detail={"reason": reason, "detached_allocation_id": detached},
        )
        return ApplyResult(ApplyOutcome.APPLIED)


def _create(
    db: Database, update: AllocationUpdate, code_id: int | None, revision: int, now: datetime
) -> ApplyResult:
    allocations.insert_allocation(
        db,
        allocation_id=update.allocation_id,
        kind=update.kind,
        barcode=update.barcode,
        size=update.size,
        status=update.status,
        code_id=code_id,
        proposed_door=update.proposed_door,
        reservation_expires_at=update.reservation_expires_at,
        pickup_expires_at=update.pickup_expires_at,
        revision=revision,
        now=now,
    )
    if update.kind is AllocationKind.RETURN:
        allocations.insert_return(
            db, update.allocation_id, update.order_id or update.barcode, update.return_reason, now
        )
    if not update.status.holds_door:
        return ApplyResult(ApplyOutcome.APPLIED)
    return _take_proposed_door(db, update.allocation_id, update.proposed_door, now)


def _take_proposed_door(
    db: Database, allocation_id: str, proposed: int | None, now: datetime
) -> ApplyResult:
    current = allocations.get_allocation(db, allocation_id)
    if proposed is None or current.door == proposed:
        return ApplyResult(ApplyOutcome.APPLIED)
    problem = _door_unavailable(db, proposed, current.size)
    if problem is None:
        allocations.assign_door(db, allocation_id, proposed, now)
        return ApplyResult(ApplyOutcome.APPLIED)
    if current.door is None:
        unavailable = ProposedDoorUnavailable(
            allocation_id=allocation_id, proposed_door=proposed, reason=problem
        )
        outbox.append_event(db, unavailable, now)
    return ApplyResult(ApplyOutcome.APPLIED, f"proposed door {proposed} not taken: {problem}")


def _door_unavailable(db: Database, number: int, size: Size) -> str | None:
    try:
        door = doors.get_door(db, number)
    except doors.UnknownDoorRecord:
        return "no such door here"
    if door.status is not DoorStatus.AVAILABLE:
        return f"the door is {door.status} here"
    if operations.active_operation(db, number) is not None:
        return "the door is in use"
    if door.size.rank < size.rank:
        return f"the door is {door.size}, the parcel needs {size}"
    return None


def _maintenance_refusal(db: Database, door: int, status: DoorStatus, on: bool) -> str | None:
    if operations.active_operation(db, door) is not None:
        return "the door is in use right now"
    if on and status in (DoorStatus.OCCUPIED, DoorStatus.AWAITING_COLLECTION):
        return "a parcel is in the door; collect it first"
    return None


def _live_allocation_in(db: Database, door: int) -> str | None:
    row = next(
        db.query(
            "SELECT allocation_id FROM allocations WHERE door = ?"
            " AND status IN ('reserved', 'deposited', 'expired')",
            [door],
        ),
        None,
    )
    return None if row is None else str(row["allocation_id"])


def _busy(db: Database, allocation_id: str) -> bool:
    return any(op.state.is_active for op in operations.operations_for_allocation(db, allocation_id))


def _check_revision(revision: int) -> None:
    if revision < 0:
        raise ValueError(f"revisions are 0 or more, got {revision}")


def advance_revision(db: Database, revision: int, now: datetime) -> None:
    """Raises the stored revision to ``revision`` (never lowers it), in the caller's transaction.

    For a change that was refused or named something unknown: it is still part of the log, and
    the kiosk must not ask for it again.
    """
    require_transaction(db)
    db.execute(
        "UPDATE sync_state SET last_revision = max(last_revision, ?), updated_at = ? WHERE id = 1",
        [revision, to_db_time(now)],
    )
