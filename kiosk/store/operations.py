"""Door operations: each door command, from the commit before its pulse to its door's closing.

An operation is created (state ``unlocking``) in the same transaction as the state change and the
outbox event that justify opening the door, before the pulse. It belongs to its door until it is
completed (the door closed) or abandoned (rolled back, replaced, timed out); a unique index lets a
door have only one active operation, so the door monitor can always tell a commanded opening
from a forced one.

States only move forward (a late "not detected" cannot undo an "open" the monitor already saw),
except that a retry puts a ``not_detected`` or ``failed`` operation back to ``unlocking``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from kiosk.store.database import require_transaction
from kiosk.store.records import (
    ACTIVE_OPERATION_STATES,
    Actor,
    DoorOperation,
    OperationState,
    Purpose,
    from_db_time,
    to_db_time,
)

S = OperationState
_FINAL = frozenset({S.COMPLETED, S.ABANDONED})
_ALLOWED: Mapping[OperationState, frozenset[OperationState]] = {
    S.UNLOCKING: frozenset({S.OPEN, S.NOT_DETECTED, S.FAILED}) | _FINAL,
    S.NOT_DETECTED: frozenset({S.UNLOCKING, S.OPEN, S.FAILED}) | _FINAL,
    S.FAILED: frozenset({S.UNLOCKING, S.OPEN, S.NOT_DETECTED}) | _FINAL,
    S.OPEN: _FINAL,
    S.COMPLETED: frozenset(),
    S.ABANDONED: frozenset(),
}
_ACTIVE_SQL = ", ".join(f"'{state.value}'" for state in sorted(ACTIVE_OPERATION_STATES))


class UnknownOperation(LookupError):
    """An operation id the store does not have."""

    def __init__(self, operation_id: str) -> None:
        super().__init__(f"no door operation {operation_id}")
        self.operation_id = operation_id


def create_operation(
    db: Database,
    *,
    door: int,
    purpose: Purpose,
    actor: Actor,
    now: datetime,
    allocation_id: str | None = None,
    code_id: int | None = None,
) -> DoorOperation:
    """Commits to opening ``door``: a new operation in state ``unlocking``.

    Raises:
        sqlite3.IntegrityError: the door already has an active operation.
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    operation_id = str(uuid.uuid4())
    db.execute(
        "INSERT INTO door_operations (operation_id, door, purpose, actor, allocation_id,"
        " code_id, state, attempts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
        [
            operation_id,
            door,
            purpose.value,
            actor.value,
            allocation_id,
            code_id,
            S.UNLOCKING.value,
            to_db_time(now),
        ],
    )
    return get_operation(db, operation_id)


def get_operation(db: Database, operation_id: str) -> DoorOperation:
    """The operation ``operation_id``.

    Raises:
        UnknownOperation: no such operation.
    """
    row = next(
        db.query("SELECT * FROM door_operations WHERE operation_id = ?", [operation_id]), None
    )
    if row is None:
        raise UnknownOperation(operation_id)
    return _operation(row)


def active_operation(db: Database, door: int) -> DoorOperation | None:
    """The door's active operation, if any."""
    row = next(
        db.query(
            f"SELECT * FROM door_operations WHERE door = ? AND state IN ({_ACTIVE_SQL})", [door]
        ),
        None,
    )
    return None if row is None else _operation(row)


def active_operations(db: Database) -> list[DoorOperation]:
    """Every active operation, oldest first."""
    rows = db.query(
        f"SELECT * FROM door_operations WHERE state IN ({_ACTIVE_SQL}) ORDER BY created_at, door"
    )
    return [_operation(row) for row in rows]


def operations_for_code(db: Database, code_id: int) -> list[DoorOperation]:
    """The operations a code started, oldest first."""
    rows = db.query(
        "SELECT * FROM door_operations WHERE code_id = ? ORDER BY created_at, door", [code_id]
    )
    return [_operation(row) for row in rows]


def operations_for_allocation(db: Database, allocation_id: str) -> list[DoorOperation]:
    """The operations on an allocation's behalf, oldest first."""
    rows = db.query(
        "SELECT * FROM door_operations WHERE allocation_id = ? ORDER BY created_at",
        [allocation_id],
    )
    return [_operation(row) for row in rows]


def recent_operations(db: Database, limit: int = 50) -> list[DoorOperation]:
    """The latest operations, newest first."""
    rows = db.query("SELECT * FROM door_operations ORDER BY created_at DESC, door LIMIT ?", [limit])
    return [_operation(row) for row in rows]


def transition(
    db: Database,
    operation_id: str,
    target: OperationState,
    now: datetime,
    *,
    outcome: str | None = None,
) -> bool:
    """Moves an operation to ``target`` if that is a step forward.

    Opening stamps ``opened_at``; a final state stamps ``finished_at`` and keeps ``outcome``.

    Returns:
        Whether the operation changed (False for a move the rules do not allow).

    Raises:
        UnknownOperation: no such operation.
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    operation = get_operation(db, operation_id)
    if target not in _ALLOWED[operation.state]:
        return False
    stamp = to_db_time(now)
    db.execute(
        "UPDATE door_operations SET state = ?,"
        " opened_at = CASE WHEN ? THEN coalesce(opened_at, ?) ELSE opened_at END,"
        " finished_at = CASE WHEN ? THEN ? ELSE finished_at END,"
        " outcome = coalesce(?, outcome)"
        " WHERE operation_id = ?",
        [
            target.value,
            int(target is S.OPEN),
            stamp,
            int(target in _FINAL),
            stamp,
            outcome,
            operation_id,
        ],
    )
    return True


def count_attempt(db: Database, operation_id: str, now: datetime) -> DoorOperation:
    """Records one more pulse for the operation; a failed or undetected one is unlocking again.

    Raises:
        UnknownOperation: no such operation.
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    operation = get_operation(db, operation_id)
    if operation.state in (S.NOT_DETECTED, S.FAILED):
        transition(db, operation_id, S.UNLOCKING, now)
    if operation.state is S.FAILED:
        # The failed pulse was not delivered: until this retry's pulse gets the bus, the
        # operation has not reached its door.
        db.execute(
            "UPDATE door_operations SET pulse_started_at = NULL WHERE operation_id = ?",
            [operation_id],
        )
    db.execute(
        "UPDATE door_operations SET attempts = attempts + 1 WHERE operation_id = ?",
        [operation_id],
    )
    return get_operation(db, operation_id)


def mark_pulse_started(db: Database, operation_id: str, now: datetime) -> None:
    """Records that the operation's pulse has the bus and is about to go out.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    db.execute(
        "UPDATE door_operations SET pulse_started_at = ? WHERE operation_id = ?",
        [to_db_time(now), operation_id],
    )


def _operation(row: Mapping[str, Any]) -> DoorOperation:
    created = from_db_time(row["created_at"])
    assert created is not None
    return DoorOperation(
        operation_id=row["operation_id"],
        door=row["door"],
        purpose=Purpose(row["purpose"]),
        actor=Actor(row["actor"]),
        allocation_id=row["allocation_id"],
        code_id=row["code_id"],
        state=OperationState(row["state"]),
        attempts=row["attempts"],
        created_at=created,
        opened_at=from_db_time(row["opened_at"]),
        finished_at=from_db_time(row["finished_at"]),
        outcome=row["outcome"],
        pulse_started_at=from_db_time(row.get("pulse_started_at")),
    )
