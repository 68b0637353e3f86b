"""The unit of work: one transaction, and the change log entries it owes.

Every store function that writes takes a `Unit`, and notes on it what it changed (an allocation,
a door put in or out of maintenance). When the unit's block ends without an error, `unit` appends
those changes to the change log, last, and commits; on an error it rolls back and logs nothing.
This is the one place the change log is appended to, so no writer can forget it.

A unit opened on a connection already in a transaction is a savepoint: its changes go to the log
with its own end, and an error inside rolls back only what the unit did (the kiosk-event path
uses this to refuse one event without losing the cursor it advances).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloud.store import changelog
from cloud.store.database import Conn
from cloud.store.records import Allocation, DoorLabelNote, MaintenanceNote


@dataclass
class Unit:
    """A transaction in progress: its connection, its time, and what it changed.

    Attributes:
        conn: The connection the transaction runs on.
        now: The time every row written in it is stamped with.
    """

    conn: Conn
    now: datetime
    _changed: dict[uuid.UUID, Allocation | None] = field(default_factory=dict)
    _maintenance: list[MaintenanceNote] = field(default_factory=list)
    _labels: list[DoorLabelNote] = field(default_factory=list)
    _departed: list[Allocation] = field(default_factory=list)
    _people: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def changed(self, *allocation_ids: uuid.UUID) -> None:
        """Notes allocations changed in this unit; their state is read back at its end."""
        for allocation_id in allocation_ids:
            self._changed.pop(allocation_id, None)  # keep the order of the last change
            self._changed[allocation_id] = None

    def changed_to(self, allocation: Allocation) -> None:
        """Notes an allocation whose final state in this unit is ``allocation`` (no read-back)."""
        self._changed.pop(allocation.allocation_id, None)
        self._changed[allocation.allocation_id] = allocation

    def maintenance(self, note: MaintenanceNote) -> None:
        """Notes a door put in or out of maintenance."""
        self._maintenance.append(note)

    def departed(self, allocation: Allocation) -> None:
        """Notes an allocation that left its location (redirected): ``allocation`` is how that
        location's kiosk must see it now (cancelled there)."""
        self._departed.append(allocation)

    def labelled(self, note: DoorLabelNote) -> None:
        """Notes a door's label set (a new door)."""
        self._labels.append(note)

    def person(self, location_id: str, entry: dict[str, Any]) -> None:
        """Notes a staff member's or courier's new state (issue 11: `cloud.store.people`), as
        its change log entry (kind ``staff`` or ``courier``)."""
        self._people.append((location_id, entry))


@asynccontextmanager
async def unit(conn: Conn, now: datetime) -> AsyncIterator[Unit]:
    """Runs the block in a transaction (a savepoint if one is open) and logs what it changed.

    Raises:
        Whatever the block raises, after rolling its changes back.
    """
    async with conn.transaction():
        work = Unit(conn, now)
        yield work
        if work._changed or work._maintenance or work._labels or work._departed or work._people:
            # ``people`` only when there are some (issue 11), so that a wrapper of `append`
            # written before it (a test's, another branch's) keeps working.
            extra = {"people": work._people} if work._people else {}
            await changelog.append(
                conn, now, work._changed, work._maintenance, work._labels, work._departed, **extra
            )
