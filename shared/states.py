"""State machines for doors and allocations, as explicit transition tables.

Every status change in the kiosk and the cloud goes through `transition`, so an
illegal move raises instead of being written. The cloud's database mirrors these
tables with CHECK constraints on the status columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar


class IllegalTransition(ValueError):
    """A status change that the state machine does not allow."""

    code = "illegal_transition"

    def __init__(self, machine: str, current: str, target: str) -> None:
        super().__init__(f"{machine} cannot go from {current} to {target}")
        self.machine = machine
        self.current = current
        self.target = target


class DoorStatus(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"  # held for an allocation that has not been deposited yet
    OCCUPIED = "occupied"  # a parcel is inside, waiting for its customer (or a return, for staff)
    AWAITING_COLLECTION = "awaiting_collection"  # the pickup window passed; staff must empty it
    MAINTENANCE = "maintenance"  # out of service; never allocated


class AllocationStatus(StrEnum):
    RESERVED = "reserved"
    DEPOSITED = "deposited"
    PICKED_UP = "picked_up"
    EXPIRED = "expired"
    COLLECTED = "collected"
    CANCELLED = "cancelled"

    @property
    def holds_door(self) -> bool:
        """True while the allocation has a claim on its door (a parcel is or will be inside)."""
        return self in LIVE_ALLOCATION_STATUSES

    @property
    def is_final(self) -> bool:
        return not ALLOCATION_TRANSITIONS[self]


DOOR_TRANSITIONS: Mapping[DoorStatus, frozenset[DoorStatus]] = {
    DoorStatus.AVAILABLE: frozenset(
        {DoorStatus.RESERVED, DoorStatus.OCCUPIED, DoorStatus.MAINTENANCE}
    ),
    # A reserved door becomes occupied at deposit, or is released when the
    # reservation is cancelled or times out. It may also be taken out of service
    # (the allocation then moves to another door first).
    DoorStatus.RESERVED: frozenset(
        {DoorStatus.OCCUPIED, DoorStatus.AVAILABLE, DoorStatus.MAINTENANCE}
    ),
    DoorStatus.OCCUPIED: frozenset({DoorStatus.AVAILABLE, DoorStatus.AWAITING_COLLECTION}),
    DoorStatus.AWAITING_COLLECTION: frozenset({DoorStatus.AVAILABLE}),
    DoorStatus.MAINTENANCE: frozenset({DoorStatus.AVAILABLE}),
}

ALLOCATION_TRANSITIONS: Mapping[AllocationStatus, frozenset[AllocationStatus]] = {
    AllocationStatus.RESERVED: frozenset({AllocationStatus.DEPOSITED, AllocationStatus.CANCELLED}),
    # A deposited parcel may still be collected by staff directly (carrier recall).
    AllocationStatus.DEPOSITED: frozenset(
        {AllocationStatus.PICKED_UP, AllocationStatus.EXPIRED, AllocationStatus.COLLECTED}
    ),
    # Physical facts win: a parcel taken out after the cloud expired it was picked up.
    AllocationStatus.EXPIRED: frozenset({AllocationStatus.COLLECTED, AllocationStatus.PICKED_UP}),
    AllocationStatus.PICKED_UP: frozenset(),
    AllocationStatus.COLLECTED: frozenset(),
    AllocationStatus.CANCELLED: frozenset(),
}

# What a kiosk's report of a physical fact may move beyond the tables above (the cloud applies
# these from kiosk events only; docs/protocol.md, "physical facts win"): a parcel the kiosk took
# in after the cloud cancelled its reservation is deposited all the same, and a door the cloud
# had taken out of service holds it.
FACT_ALLOCATION_TRANSITIONS: Mapping[AllocationStatus, frozenset[AllocationStatus]] = {
    **ALLOCATION_TRANSITIONS,
    AllocationStatus.CANCELLED: frozenset({AllocationStatus.DEPOSITED}),
}
FACT_DOOR_TRANSITIONS: Mapping[DoorStatus, frozenset[DoorStatus]] = {
    **DOOR_TRANSITIONS,
    DoorStatus.MAINTENANCE: DOOR_TRANSITIONS[DoorStatus.MAINTENANCE] | {DoorStatus.OCCUPIED},
}

LIVE_ALLOCATION_STATUSES: frozenset[AllocationStatus] = frozenset(
    {AllocationStatus.RESERVED, AllocationStatus.DEPOSITED, AllocationStatus.EXPIRED}
)

# The door status that goes with each live allocation status.
DOOR_STATUS_FOR_ALLOCATION: Mapping[AllocationStatus, DoorStatus] = {
    AllocationStatus.RESERVED: DoorStatus.RESERVED,
    AllocationStatus.DEPOSITED: DoorStatus.OCCUPIED,
    AllocationStatus.EXPIRED: DoorStatus.AWAITING_COLLECTION,
}

_S = TypeVar("_S", DoorStatus, AllocationStatus)


def can_transition(table: Mapping[_S, frozenset[_S]], current: _S, target: _S) -> bool:
    return target in table[current]


def transition(table: Mapping[_S, frozenset[_S]], current: _S, target: _S) -> _S:
    """Returns ``target`` if the table allows ``current -> target``.

    Raises:
        IllegalTransition: the move is not in the table (including staying put).
    """
    if target not in table[current]:
        raise IllegalTransition(type(current).__name__, current.value, target.value)
    return target


def door_transition(current: DoorStatus, target: DoorStatus) -> DoorStatus:
    return transition(DOOR_TRANSITIONS, current, target)


def allocation_transition(current: AllocationStatus, target: AllocationStatus) -> AllocationStatus:
    return transition(ALLOCATION_TRANSITIONS, current, target)


def sources(table: Mapping[_S, frozenset[_S]], target: _S) -> list[_S]:
    """Every status the table allows to move to ``target``, for a guarded SQL write."""
    return [current for current, targets in table.items() if target in targets]


def sql_transition_pairs(table: Mapping[_S, frozenset[_S]]) -> list[tuple[str, str]]:
    """The table as (from, to) string pairs, for mirroring in SQL."""
    return sorted((a.value, b.value) for a, targets in table.items() for b in targets)
