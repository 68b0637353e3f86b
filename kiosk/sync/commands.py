"""Commands from the cloud that act on doors: ``remote_open``.

The message has already passed `shared.protocol.open_message` (signed by the cloud, fresh, for
this location, not a replay this process has seen). What is left is the replay no in-memory
guard can see: the same command after a restart, or the same ``command_id`` in a new message.
So the decision (open, or refuse) is committed together with the command's id
(`kiosk.store.commands`), and only then is the door pulsed; a command whose id is recorded opens
nothing (invariant 7).

A refused command (no such door, door in use) is recorded too, so a replay later, when the door
is free, still opens nothing; the cloud learns of the refusal from a ``remote_open_refused``
outbox event, and of an accepted one from the door events of its opening.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from kiosk.flows import opening, staff
from kiosk.flows.context import FlowContext
from kiosk.flows.opening import DoorOpening, PendingOpening
from kiosk.flows.refusals import FlowRefused
from kiosk.store import audit, outbox
from kiosk.store import commands as command_records
from kiosk.store.commands import AppliedCommand
from kiosk.store.records import Actor
from shared.events import RemoteOpenRefused
from shared.protocol import MessageType, RemoteOpenBody

log = logging.getLogger(__name__)

KEEP_COMMANDS_FOR = timedelta(days=1)
"""How long past its expiry a command's id is remembered (a clock set back must not revive it)."""


class CommandOutcome(StrEnum):
    OPENED = "opened"  # committed and pulsed (see `CommandResult.opening` for what the door did)
    REFUSED = "refused"  # recorded as refused: no door, or the door is in use
    ALREADY_DONE = "already_done"  # the command id was decided before: nothing happens


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a remote command did.

    Attributes:
        outcome: See `CommandOutcome`.
        reason: The refusal, or what the earlier decision was for a repeated command.
        opening: The door opening, when the door was pulsed.
    """

    outcome: CommandOutcome
    reason: str | None = None
    opening: DoorOpening | None = None


async def remote_open(
    ctx: FlowContext,
    body: RemoteOpenBody,
    *,
    expires_at: datetime,
    keep_for: timedelta = KEEP_COMMANDS_FOR,
) -> CommandResult:
    """Opens the door a verified ``remote_open`` names, once per command id.

    Args:
        ctx: The kiosk.
        body: The verified command.
        expires_at: The message's expiry; the id is remembered ``keep_for`` beyond it.
        keep_for: See `KEEP_COMMANDS_FOR`.

    Raises:
        sqlite3.Error: the store failed (nothing was decided, nothing pulsed).
    """
    result, pending = decide_remote_open(ctx, body, expires_at=expires_at, keep_for=keep_for)
    if pending is None:
        return result
    door_opening = await opening.pulse(ctx, pending)
    log.info(
        "remote open %s of door %d by %s: %s",
        body.command_id,
        body.door,
        body.requested_by,
        door_opening.outcome,
    )
    return CommandResult(CommandOutcome.OPENED, opening=door_opening)


def decide_remote_open(
    ctx: FlowContext,
    body: RemoteOpenBody,
    *,
    expires_at: datetime,
    keep_for: timedelta = KEEP_COMMANDS_FOR,
) -> tuple[CommandResult, PendingOpening | None]:
    """Commits the decision on a remote open with its command id; pulses nothing.

    Returns:
        The decision, and the committed opening to pulse (None when nothing is to open).
    """
    command_id = str(body.command_id)
    with ctx.store.transaction() as db:
        now = ctx.clock.now()
        earlier = command_records.find_command(db, command_id)
        if earlier is not None:
            log.warning(
                "remote open %s repeated (decided %s at %s): nothing done",
                command_id,
                earlier.outcome,
                earlier.decided_at.isoformat(),
            )
            return CommandResult(CommandOutcome.ALREADY_DONE, earlier.outcome), None
        pending: PendingOpening | None = None
        refusal: FlowRefused | None = None
        try:
            pending = staff.begin_open_door(
                ctx,
                db,
                body.door,
                actor=Actor.REMOTE,
                reason=body.reason,
                requested_by=body.requested_by,
                detail={"command_id": command_id},
            )
        except FlowRefused as refused:
            refusal = refused
        outcome = "opening" if refusal is None else f"refused:{refusal.refusal.value}"
        command_records.record_command(
            db,
            AppliedCommand(
                command_id=command_id,
                kind=MessageType.REMOTE_OPEN.value,
                door=body.door,
                outcome=outcome,
                operation_id=None if pending is None else pending.operation.operation_id,
                decided_at=now,
                keep_until=max(expires_at, now) + keep_for,
            ),
        )
        if refusal is None:
            return CommandResult(CommandOutcome.OPENED), pending
        event = RemoteOpenRefused(
            command_id=body.command_id,
            door=body.door,
            reason=refusal.refusal.value,
            requested_by=body.requested_by,
        )
        detail = event.payload()
        outbox.append_event(db, event, now)
        audit.record_entry(
            db, now, Actor.REMOTE, "remote_open", "refused", door=body.door, detail=detail
        )
    log.warning(
        "remote open %s of door %d refused (%s): %s",
        command_id,
        body.door,
        refusal.refusal,
        refusal.message,
    )
    return CommandResult(CommandOutcome.REFUSED, refusal.refusal.value), None
