"""What the local store holds, as value objects: doors, allocations, door operations, events.

Rows come out of SQLite as these frozen dataclasses, so flows never handle raw rows. Times are
timezone-aware UTC datetimes here and ISO 8601 text with microseconds in the database (one format
everywhere, so text order is time order).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shared.events import EventType as EventType  # defined with the payloads; re-exported
from shared.sizes import Size
from shared.states import AllocationStatus, DoorStatus


class Actor(StrEnum):
    """Who caused a door command or an audited action."""

    CUSTOMER = "customer"
    DRIVER = "driver"
    STAFF = "staff"
    REMOTE = "remote"  # an operator through the cloud
    KIOSK = "kiosk"  # the kiosk itself: the door monitor, boot reconciliation


class AllocationKind(StrEnum):
    """A parcel brought by a driver for a customer, or a customer's return for the carrier."""

    DELIVERY = "delivery"
    RETURN = "return"


class CodeKind(StrEnum):
    """What a code typed or scanned at the kiosk does."""

    PICKUP = "pickup"
    RETURN = "return"


class Purpose(StrEnum):
    """Why a door is being opened: what its closing will complete."""

    PICKUP = "pickup"
    DROP_OFF = "drop_off"
    RETURN = "return"
    COLLECTION = "collection"
    OPEN = "open"  # staff or remote open: no parcel changes hands


class OperationState(StrEnum):
    """Where a door operation stands.

    ``unlocking`` is committed before the pulse; ``open`` once the door was seen open;
    ``not_detected`` and ``failed`` when the pulse gave no opening or could not be delivered.
    Those four are active: the door belongs to the operation. ``completed`` and ``abandoned`` are
    final.
    """

    UNLOCKING = "unlocking"
    OPEN = "open"
    NOT_DETECTED = "not_detected"
    FAILED = "failed"
    COMPLETED = "completed"
    ABANDONED = "abandoned"

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_OPERATION_STATES


ACTIVE_OPERATION_STATES: frozenset[OperationState] = frozenset(
    {
        OperationState.UNLOCKING,
        OperationState.OPEN,
        OperationState.NOT_DETECTED,
        OperationState.FAILED,
    }
)


@dataclass(frozen=True, slots=True)
class Door:
    """One door of the location as the kiosk knows it.

    Attributes:
        number: The door number (as the door bank numbers it).
        size: Its compartment size.
        status: Its place in the door state machine.
        maintenance_reason: Why it is out of service, when it is.
        sensor_open: The last lock-sensor reading (None before the first).
        sensor_occupied: The last occupancy reading (None without an occupancy sensor).
        sensor_changed_at: When the sensors last read differently.
        fault: The last hardware fault seen on the door, cleared by a good opening.
        left_open_alerted_at: When a left-open alert was raised for the current opening.
    """

    number: int
    size: Size
    status: DoorStatus
    maintenance_reason: str | None = None
    sensor_open: bool | None = None
    sensor_occupied: bool | None = None
    sensor_changed_at: datetime | None = None
    fault: str | None = None
    left_open_alerted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Allocation:
    """A parcel (or a return) known to this location.

    Attributes:
        allocation_id: The cloud's allocation id.
        kind: Delivery or return.
        barcode: The package id the driver scans (for returns: the return's label).
        size: The door size it needs.
        door: The door holding it (or held for it); None when no door is assigned.
        proposed_door: The door the cloud proposed; differs from ``door`` after a substitution.
        status: Its place in the allocation state machine.
        code_id: Its pickup (or return) code row; None when it has no code yet.
        reservation_expires_at: Until when a drop-off is accepted.
        pickup_expires_at: Until when a pickup is accepted (set at deposit at the latest).
        deposited_at: When its door closed on it.
        finished_at: When it reached a final status.
        revision: The cloud revision last applied to it (0: created at the kiosk).
    """

    allocation_id: str
    kind: AllocationKind
    barcode: str
    size: Size
    door: int | None
    proposed_door: int | None
    status: AllocationStatus
    code_id: int | None
    reservation_expires_at: datetime | None
    pickup_expires_at: datetime | None
    deposited_at: datetime | None
    finished_at: datetime | None
    revision: int


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """A pickup or return code, as its keyed hash only.

    Attributes:
        code_id: Row id; allocations refer to it, so several parcels share one code.
        kind: Pickup or return.
        code_hash: HMAC-SHA256 of the code under the kiosk's secret, hex.
        used_at: When the code opened its doors (a code works once); None while unused.
    """

    code_id: int
    kind: CodeKind
    code_hash: str
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class DoorOperation:
    """A door command and what its door's closing will complete.

    Committed (state ``unlocking``) before the door is pulsed, so a crash at any point leaves a
    record that boot reconciliation can finish or roll back.
    """

    operation_id: str
    door: int
    purpose: Purpose
    actor: Actor
    allocation_id: str | None
    code_id: int | None
    state: OperationState
    attempts: int
    created_at: datetime
    opened_at: datetime | None
    finished_at: datetime | None
    outcome: str | None
    pulse_started_at: datetime | None = None

    @property
    def never_reached_door(self) -> bool:
        """Whether no pulse of this operation can have reached its door.

        True for an operation whose door was never seen open and whose pulse either could not
        be delivered (``failed``) or never got the bus (``unlocking`` with no pulse started: a
        crash between the commit and the pulse). Not for ``not_detected``: that pulse was
        delivered, and the door may have opened unseen.
        """
        if self.opened_at is not None:
            return False
        if self.state is OperationState.FAILED:
            return True
        return self.state is OperationState.UNLOCKING and self.pulse_started_at is None


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """An event for the cloud, in the order the kiosk committed it.

    Attributes:
        sequence: Per-kiosk sequence: increasing, without gaps, never reused.
        event_id: A UUID the cloud dedupes on.
        type: What happened.
        payload: Its details (JSON object, as the type's `shared.events` model dumps it).
        created_at: When it was committed.
        acked: Whether the cloud has acknowledged it.
        version: The payload schema's version when it was written (`shared.events`).
    """

    sequence: int
    event_id: str
    type: EventType
    payload: Mapping[str, Any] = field(hash=False)
    created_at: datetime
    acked: bool
    version: int = 1


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited action: a door command with its result, or a code attempt.

    Attributes:
        audit_id: Increasing id.
        at: When the action started.
        actor: Who caused it.
        door: The door concerned, if any.
        command: What was done (``unlock``, ``code_entry``, ``maintenance_on``, ...).
        result: How it ended; ``pending`` while a door command awaits its result.
        operation_id: The door operation, for door commands.
        detail: More facts (never a code in plaintext).
        finished_at: When the result was recorded.
    """

    audit_id: int
    at: datetime
    actor: Actor
    door: int | None
    command: str
    result: str
    operation_id: str | None
    detail: Mapping[str, Any] = field(hash=False)
    finished_at: datetime | None


def to_db_time(when: datetime) -> str:
    """Formats ``when`` for the database: UTC, ISO 8601, always with microseconds.

    Raises:
        ValueError: ``when`` is naive.
    """
    if when.tzinfo is None:
        raise ValueError(f"the store only takes timezone-aware times, got {when!r}")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(text: str | None) -> datetime | None:
    """Parses a time written by `to_db_time`; None stays None."""
    return None if text is None else datetime.fromisoformat(text)


def to_json(value: Mapping[str, Any]) -> str:
    """Compact, key-sorted JSON, so equal payloads are equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def from_json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {text[:40]!r}")
    return value


def optional_bool(value: object) -> bool | None:
    """SQLite's 0/1/NULL as a bool or None."""
    return None if value is None else bool(value)
