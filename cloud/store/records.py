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
    # The location's kiosk code secret (None before a kiosk is registered): for the change log's
    # code hash only, never shown.
    code_secret: bytes | None = field(repr=False)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Allocation:
        secret = row["code_secret"]
        return cls(
            allocation_id=row["allocation_id"],
            carrier_id=row["carrier_id"],
            location_id=row["location_id"],
            kind=AllocationKind(row["kind"]),
            package_id=row["package_id"],
            order_id=row["order_id"],
            customer_id=row["customer_id"],
            size=Size(row["size"]),
            status=AllocationStatus(row["status"]),
            door_id=row["door_id"],
            door_number=row["door_number"],
            door_size=Size(row["door_size"]),
            pickup_code_id=row["pickup_code_id"],
            pickup_code=row["pickup_code"],
            request_fingerprint=row["request_fingerprint"],
            reserved_at=row["reserved_at"],
            reservation_expires_at=row["reservation_expires_at"],
            deposited_at=row["deposited_at"],
            driver_id=row["driver_id"],
            pickup_expires_at=row["pickup_expires_at"],
            picked_up_at=row["picked_up_at"],
            expired_at=row["expired_at"],
            collected_at=row["collected_at"],
            cancelled_at=row["cancelled_at"],
            cancel_reason=row["cancel_reason"],
            location_name=row["location_name"],
            address=row["address"],
            timezone=row["timezone"],
            return_reason=row["return_reason"],
            code_secret=None if secret is None else bytes(secret),
        )

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
        return cls(
            door_id=row["door_id"],
            location_id=row["location_id"],
            door_number=row["door_number"],
            size=Size(row["size"]),
            status=DoorStatus(row["status"]),
            width_in=row["width_in"],
            height_in=row["height_in"],
            depth_in=row["depth_in"],
            maintenance_reason=row["maintenance_reason"],
            status_changed_at=row["status_changed_at"],
            allocation_id=row.get("allocation_id"),
        )


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
        return cls(
            pickup_code_id=row["pickup_code_id"],
            location_id=row["location_id"],
            carrier_id=row["carrier_id"],
            customer_id=row["customer_id"],
            kind=CodeKind(row["kind"]),
            code=row["code"],
            created_at=row["created_at"],
            used_at=row["used_at"],
            retired_at=row["retired_at"],
        )

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
class MaintenanceNote:
    """A door put in (``on``) or out of maintenance, as the change log records it."""

    location_id: str
    door_number: int
    on: bool
    reason: str | None = None
