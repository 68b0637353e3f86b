"""The rows the store hands out, as typed records: what crosses from the store into the service.

Statuses are the shared enums (`shared.states`), sizes `shared.sizes.Size`; every record is frozen,
so a caller that wants a changed allocation asks the store to change it and gets the new record.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.sizes import Size
from shared.states import AllocationStatus, DoorStatus


class AllocationKind(StrEnum):
    DELIVERY = "delivery"  # a carrier's parcel for a customer
    RETURN = "return"  # a customer's parcel for the carrier


class CodeKind(StrEnum):
    PICKUP = "pickup"
    RETURN = "return"


@dataclass(frozen=True, slots=True)
class Allocation:
    """An allocation with its door, location and code, as the API and the operations read it."""

    allocation_id: uuid.UUID
    carrier_id: str
    location_id: str
    kind: AllocationKind
    package_id: str
    order_id: str
    customer_id: str
    size: Size
    status: AllocationStatus
    door_id: int
    door_number: int
    door_label: str
    door_size: Size
    pickup_code_id: int
    pickup_code: str
    request_fingerprint: str
    reserved_at: datetime
    reservation_expires_at: datetime
    deposited_at: datetime | None
    driver_id: str | None
    pickup_expires_at: datetime | None
    picked_up_at: datetime | None
    expired_at: datetime | None
    collected_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    location_name: str
    address: str
    timezone: str
    return_reason: str | None
    # The code secret of each of the location's kiosks, newest first (issue 9: one per kiosk;
    # empty before a kiosk is registered): for the change log's code hashes only, never shown.
    code_secrets: tuple[tuple[str, bytes], ...] = field(repr=False)
    # The generation of each kiosk's secret in ``code_secrets`` (issue 9: rotation).
    code_generations: tuple[tuple[str, int], ...] = ()

    @property
    def code_secret(self) -> bytes | None:
        """The newest kiosk's code secret (for the single ``code_hash`` of older kiosks)."""
        return self.code_secrets[0][1] if self.code_secrets else None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Allocation:
        """From a row with a column per field (`cloud.store.allocations`' queries)."""
        derived = ("code_secrets", "code_generations")
        fields = (name for name in cls.__dataclass_fields__ if name not in derived)
        values: dict[str, Any] = {name: row[name] for name in fields}
        secrets = row["code_secret"] or []
        values.update(
            kind=AllocationKind(row["kind"]),
            size=Size(row["size"]),
            status=AllocationStatus(row["status"]),
            door_size=Size(row["door_size"]),
            code_secrets=tuple((entry[0], bytes.fromhex(entry[1])) for entry in secrets),
            code_generations=tuple(
                (entry[0], int(entry[2])) for entry in secrets if len(entry) > 2
            ),
        )
        return cls(**values)

    @property
    def expires_at(self) -> datetime | None:
        """When the current state ends: the reservation hold, then the pickup window."""
        if self.status is AllocationStatus.RESERVED:
            return self.reservation_expires_at
        if self.status is AllocationStatus.DEPOSITED:
            return self.pickup_expires_at
        return None


@dataclass(frozen=True, slots=True)
class Door:
    """A door of a location, with the live allocation holding it if any."""

    door_id: int
    location_id: str
    door_number: int
    label: str
    accessible: bool
    size: Size
    status: DoorStatus
    width_in: float
    height_in: float
    depth_in: float
    maintenance_reason: str | None
    status_changed_at: datetime
    allocation_id: uuid.UUID | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Door:
        """From a row with a column per field; ``allocation_id`` may be missing (None)."""
        values: dict[str, Any] = {name: row.get(name) for name in cls.__dataclass_fields__}
        values.update(size=Size(row["size"]), status=DoorStatus(row["status"]))
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Code:
    """A pickup or return code of a location. Live until used or retired."""

    pickup_code_id: int
    location_id: str
    carrier_id: str
    customer_id: str
    kind: CodeKind
    code: str
    created_at: datetime
    used_at: datetime | None
    retired_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Code:
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values.update(kind=CodeKind(row["kind"]))
        return cls(**values)

    @property
    def live(self) -> bool:
        return self.used_at is None and self.retired_at is None


@dataclass(frozen=True, slots=True)
class Return:
    """A customer's return: the request, and the allocation holding its door."""

    return_id: uuid.UUID
    reason: str | None
    allocation: Allocation


@dataclass(frozen=True, slots=True)
class DoorLabelNote:
    """A door's label, set (at the door's creation), as the change log records it."""

    location_id: str
    door_number: int
    label: str


@dataclass(frozen=True, slots=True)
class DoorAccessNote:
    """A door flagged within reach or not (issue 10), as the change log records it."""

    location_id: str
    door_number: int
    accessible: bool


@dataclass(frozen=True, slots=True)
class MaintenanceNote:
    """A door put in (``on``) or out of maintenance, as the change log records it."""

    location_id: str
    door_number: int
    on: bool
    reason: str | None = None
