"""Clearing a door's fault once someone has looked at the door (staff screen, ``locker-kiosk``).

A door's fault (opened without a command, a pulse that failed or was not seen, ...) stays until a
successful opening clears it or a person does. Clearing is audited with who did it and the fault
it had, so the log says why the door's flag went away.
"""

from __future__ import annotations

from datetime import datetime

from kiosk.flows.refusals import FlowRefused, Refusal
from kiosk.store import audit, doors
from kiosk.store.database import Store
from kiosk.store.records import Actor

CLEAR_FAULT = "clear_fault"
"""The audit log's command for a cleared fault."""


def clear_fault(
    store: Store, door: int, *, actor: Actor, cleared_by: str, now: datetime
) -> str | None:
    """Clears ``door``'s fault; a door with no fault changes nothing but the audit log.

    Returns:
        The fault that was cleared, or None when the door had none.

    Raises:
        FlowRefused: UNKNOWN_DOOR.
    """
    with store.transaction() as db:
        try:
            fault = doors.get_door(db, door).fault
        except doors.UnknownDoorRecord:
            raise FlowRefused(Refusal.UNKNOWN_DOOR, f"There is no locker {door} here.") from None
        if fault is not None:
            doors.set_fault(db, door, None, now)
        audit.record_entry(
            db,
            now,
            actor,
            CLEAR_FAULT,
            "cleared" if fault is not None else "no fault",
            door=door,
            detail={"fault": fault, "cleared_by": cleared_by},
        )
        return fault
