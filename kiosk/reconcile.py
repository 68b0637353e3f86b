"""Boot reconciliation: finish what a crash or a power cut interrupted, from the door sensors.

Because every door command is committed (operation ``unlocking`` plus a ``pending`` audit entry)
before its pulse, a restart finds each interrupted command in the store. Each is settled from what
the door's sensors read now:

| operation at boot | door reads | what is recorded |
| --- | --- | --- |
| ``open`` | open | nothing yet: the monitor completes it when the door shuts |
| ``open`` | shut | shut while the kiosk was down: completed (picked up, deposited, ...) |
| ``unlocking``, ``not_detected``, ``failed`` | open | the pulse went out: ``open`` |
| ``unlocking``, ``not_detected``, ``failed`` | shut | see below |

For a command found shut, occupancy sensors (where fitted) tell what happened: an empty pickup
compartment was picked up, a full drop-off compartment deposited. Without that evidence the
operation is abandoned as ``interrupted``: a drop-off's parcel stays reserved (the driver scans
again), a return's code is released, and a pickup's code stays used when the pulse may have gone
out (a code opens its doors once), but is given back when the pulse never got the bus (no
``pulse_started_at``: the crash came between the commit and the pulse; see
`kiosk.flows.completion.abandon`). Without occupancy sensors a pickup door that was pulsed,
opened and shut while the kiosk was down cannot be told from one never pulsed: the parcel stays
``deposited`` here and staff find the door empty at collection. This is the one case a kiosk
without occupancy sensors cannot settle on its own.

A door found open with no operation, that was shut when last seen, is recorded as a tamper. A
door never seen before (the first boot, a door new in the layout) found open is not: nobody can
say it was shut, so it is only audited (``found_open_at_first_sight``). When most doors read open
at once the likely cause is the lock-bit polarity or the sensor wiring, not people: the kiosk says
so (a warning in the log, a ``door_bank`` audit entry, `Reconciliation.wiring_suspect`) and raises
no tamper for them.
Audit entries still ``pending`` after all this are closed as ``interrupted``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kiosk.flows import completion
from kiosk.flows.context import FlowContext
from kiosk.hardware.door_bank import DoorState
from kiosk.store import audit, doors, operations
from kiosk.store.records import Actor, OperationState
from kiosk.sync import deferred

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Reconciliation:
    """What boot reconciliation found and did.

    Attributes:
        states: The door readings it started from (the monitor's baseline).
        opened: Operations found with their door open.
        completed: Operations whose door had been shut meanwhile, now completed.
        abandoned: Operations given up as interrupted.
        tampered: Doors found open with no command.
        closed_audit_entries: Pending audit entries closed as interrupted.
    """

    states: dict[int, DoorState]
    opened: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    tampered: list[int] = field(default_factory=list)
    closed_audit_entries: int = 0
    found_open_at_first_sight: list[int] = field(default_factory=list)
    wiring_suspect: bool = False


WIRING_HINT = (
    "{open} of {total} doors read open at once: the lock-bit polarity "
    "(doors.serial.lock_bit_polarity) or the sensor wiring is the likely cause, not people"
)


async def reconcile(ctx: FlowContext) -> Reconciliation:
    """Settles interrupted door operations against the sensors; run before the monitor starts.

    Raises:
        LockBoardError: the door bank did not answer (nothing is changed; retry later).
    """
    states = await ctx.bank.read_states()
    report = Reconciliation(states=dict(states))
    with ctx.store.transaction() as db:
        now = ctx.clock.now()
        for operation in operations.active_operations(db):
            state = states.get(operation.door)
            if state is None:  # the door left the layout
                completion.abandon(db, operation, "interrupted: door not in the layout", now)
                report.abandoned.append(operation.operation_id)
                continue
            doors.record_sensors(db, operation.door, state.is_open, state.occupied, now)
            if state.is_open:
                if operation.state is not OperationState.OPEN:
                    completion.door_seen_open(ctx, db, operation.door, now, "boot")
                    report.opened.append(operation.operation_id)
                continue
            if operation.state is OperationState.OPEN or completion.compartment_settles(
                operation, state.occupied
            ):
                if operation.state is not OperationState.OPEN:
                    # The door opened and shut while the kiosk was down, as the compartment shows.
                    completion.door_seen_open(ctx, db, operation.door, now, "boot")
                completion.door_seen_shut(ctx, db, operation.door, state.occupied, now)
                report.completed.append(operation.operation_id)
            else:
                completion.abandon(db, operation, "interrupted", now)
                report.abandoned.append(operation.operation_id)
        reading_open = sum(1 for state in states.values() if state.is_open)
        report.wiring_suspect = len(states) >= 2 and reading_open * 2 > len(states)
        ctx.bank_health.wiring_hint = None
        if report.wiring_suspect:
            hint = WIRING_HINT.format(open=reading_open, total=len(states))
            ctx.bank_health.wiring_hint = hint
            log.warning("%s", hint)
            audit.record_entry(
                db, now, Actor.KIOSK, "door_bank", "wiring_suspect", detail={"hint": hint}
            )
        for door in doors.list_doors(db):
            state = states.get(door.number)
            if state is None:
                continue
            was_open = door.sensor_open
            changed = doors.record_sensors(db, door.number, state.is_open, state.occupied, now)
            if not (changed and state.is_open and was_open is not True):
                continue
            if was_open is None or report.wiring_suspect:
                audit.record_entry(
                    db, now, Actor.KIOSK, "found_open_at_first_sight", "recorded", door=door.number
                )
                report.found_open_at_first_sight.append(door.number)
                continue
            completion.door_seen_open(ctx, db, door.number, now, "found open at boot")
            report.tampered.append(door.number)
        for entry in audit.pending_entries(db):
            audit.finish_entry(db, entry.audit_id, "interrupted", now)
            report.closed_audit_entries += 1
        # Operations settled: cloud changes kept for them (before a restart) apply now.
        deferred.retry(ctx.store, now)
    return report
