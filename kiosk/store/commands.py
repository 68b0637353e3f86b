"""Cloud commands already decided: so that a replayed command does nothing, even after a restart.

A signed command (a remote open) carries a ``command_id``. The kiosk records the id, with what it
decided, in the same transaction as the decision (the door operation it commits to, or the
refusal), so a second delivery of the command, the same message replayed or the same id in a new
message, finds the record and opens nothing. The in-memory replay guard of `shared.protocol` is
empty after a restart; this table is not.

Records are kept well past the command's own expiry (a day by default), since a kiosk's clock can
be set back after a power cut and make an old command look fresh again for a while.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from kiosk.store.database import Store, require_transaction
from kiosk.store.records import from_db_time, to_db_time


@dataclass(frozen=True, slots=True)
class AppliedCommand:
    """A command the kiosk has decided.

    Attributes:
        command_id: The cloud's id of the command.
        kind: The message type (``remote_open``).
        door: The door it named, if any.
        outcome: What was decided: ``opening``, or ``refused:<reason>``.
        operation_id: The door operation committed for it, if any.
        decided_at: When.
        keep_until: When the record may be pruned.
    """

    command_id: str
    kind: str
    door: int | None
    outcome: str
    operation_id: str | None
    decided_at: datetime
    keep_until: datetime


def find_command(db: Database, command_id: str) -> AppliedCommand | None:
    """The record of ``command_id``, or None for a command never seen."""
    row = next(db.query("SELECT * FROM applied_commands WHERE command_id = ?", [command_id]), None)
    return None if row is None else _command(row)


def record_command(db: Database, command: AppliedCommand) -> None:
    """Records a decided command, in the caller's transaction (the one of the decision).

    Raises:
        NotInTransaction: called outside `Store.transaction`.
        sqlite3.IntegrityError: the command was recorded already.
    """
    require_transaction(db)
    db.execute(
        "INSERT INTO applied_commands"
        " (command_id, kind, door, outcome, operation_id, decided_at, keep_until)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            command.command_id,
            command.kind,
            command.door,
            command.outcome,
            command.operation_id,
            to_db_time(command.decided_at),
            to_db_time(command.keep_until),
        ],
    )


def prune_commands(store: Store, now: datetime) -> int:
    """Deletes records whose ``keep_until`` has passed.

    Returns:
        How many were deleted.
    """
    with store.transaction() as db:
        cursor = db.execute("DELETE FROM applied_commands WHERE keep_until < ?", [to_db_time(now)])
        return cursor.rowcount


def _command(row: Mapping[str, Any]) -> AppliedCommand:
    decided = from_db_time(row["decided_at"])
    keep = from_db_time(row["keep_until"])
    assert decided is not None
    assert keep is not None
    return AppliedCommand(
        command_id=row["command_id"],
        kind=row["kind"],
        door=row["door"],
        outcome=row["outcome"],
        operation_id=row["operation_id"],
        decided_at=decided,
        keep_until=keep,
    )
