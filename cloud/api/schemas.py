"""Request and response bodies of the HTTP API.

Requests forbid unknown fields, so a typo in a field name is an error rather than
a silently ignored value. Identifiers are printable, bounded strings.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from cloud.store.records import Allocation, AllocationKind
from shared.sizes import Size
from shared.states import AllocationStatus, DoorStatus

MAX_DOOR_NUMBER = 100_000

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$"
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=IDENTIFIER_PATTERN)]
# PostgreSQL text cannot hold NUL; refused here, so it is a 422 rather than a failed write.
_NO_NUL = r"^[^\x00]*$"
# Free text: no NUL, and something besides white space.
FreeText = Annotated[
    str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")
]
# What a customer types: six characters of the code alphabet (shared.codes), any case, with
# spaces or dashes anywhere (``ab3-k7x``). Anything else is 422 invalid_code.
CODE_PATTERN = r"^[ -]*([2-9A-HJKMNP-Za-hjkmnp-z][ -]*){6}$"
DoorLabelText = Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,8}$")]
CodeText = Annotated[str, Field(min_length=6, max_length=32, pattern=CODE_PATTERN)]
TimeZone = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+/-]+$")]
ScanCode = Annotated[str, Field(min_length=1, max_length=128, pattern=_NO_NUL)]


# Path parameters, with the rules of the fields they name.
LocationIdPath = Annotated[
    str, Path(min_length=1, max_length=128, pattern=IDENTIFIER_PATTERN, description="a location id")
]
CarrierIdPath = Annotated[
    str, Path(min_length=1, max_length=128, pattern=IDENTIFIER_PATTERN, description="a carrier id")
]
DoorNumberPath = Annotated[int, Path(gt=0, le=MAX_DOOR_NUMBER, description="a door number")]


class Request(BaseModel):
    # Values are taken as sent (no stripping), so that the schema's lengths and patterns are
    # exactly the rules the server applies.
    model_config = ConfigDict(extra="forbid")


class DimensionsIn(Request):
    """Package dimensions in inches: from a hundredth of an inch (below that a float the
    database keeps underflows) to 1,000 inches."""

    length: float = Field(ge=0.01, le=1000, strict=True)
    width: float = Field(ge=0.01, le=1000, strict=True)
    height: float = Field(ge=0.01, le=1000, strict=True)


class SizedRequest(Request):
    """``package_size`` or ``dimensions``, or both (the size must then hold the package)."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["package_size"]}, {"required": ["dimensions"]}]}
    )

    package_size: Size | None = None
    dimensions: DimensionsIn | None = None

    @model_validator(mode="after")
    def _one_of_size_or_dimensions(self) -> SizedRequest:
        if self.package_size is None and self.dimensions is None:
            raise ValueError("give package_size or dimensions")
        return self


class AllocationIn(SizedRequest):
    location_id: Identifier
    package_id: Identifier
    order_id: Identifier
    customer_id: Identifier
    # Only a door within reach (flagged accessible by the operator); 409 no_accessible_door.
    accessible: bool = Field(default=False, strict=True)
    # How far a 409 location_full looks for alternatives.
    alternatives_within_km: float = Field(default=10.0, gt=0, le=1000, strict=True)


class DepositIn(Request):
    driver_id: Identifier
    scan_code: ScanCode


class CancelIn(Request):
    reason: FreeText = "cancelled_by_carrier"


class RedirectIn(Request):
    """The location a reserved parcel goes to instead."""

    location_id: Identifier


class ExtendIn(Request):
    """The parcel's new pickup deadline (later than the current one)."""

    pickup_expires_at: AwareDatetime


class PickupIn(Request):
    location_id: Identifier
    pickup_code: CodeText


class ReturnIn(SizedRequest):
    location_id: Identifier
    order_id: Identifier
    customer_id: Identifier
    reason: FreeText | None = None


class ReturnDropOffIn(Request):
    location_id: Identifier
    return_code: CodeText


class Response(BaseModel):
    """An answer. Built from the store's records as they are (their attributes), or a mapping."""

    model_config = ConfigDict(from_attributes=True)


class AllocationOut(Response):
    allocation_id: uuid.UUID
    kind: AllocationKind
    status: AllocationStatus
    location_id: str
    location_name: str
    address: str
    # The door's label ("B5"), what carriers and customers call the locker; the kiosk's door
    # number is ``door_number``.
    locker_number: str = Field(validation_alias=AliasChoices("door_label", "locker_number"))
    door_number: int
    door_size: Size
    size: Size
    package_id: str
    order_id: str
    customer_id: str
    pickup_code: str
    # When the current state ends: the reservation hold, then the pickup window.
    expires_at: datetime | None
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

    @classmethod
    def of(cls, allocation: Allocation) -> AllocationOut:
        return cls.model_validate(allocation)


class OpenedDoor(BaseModel):
    allocation_id: uuid.UUID
    package_id: str
    locker_number: str
    door_number: int


class PickupOut(BaseModel):
    location_id: str
    locker_numbers: list[str]
    opened: list[OpenedDoor]


class ReturnOut(BaseModel):
    return_id: uuid.UUID
    allocation_id: uuid.UUID
    status: AllocationStatus
    location_id: str
    address: str
    locker_number: str
    door_number: int
    order_id: str
    customer_id: str
    return_code: str
    expires_at: datetime | None


class CarrierIn(Request):
    carrier_id: Identifier
    name: FreeText
    webhook_url: Annotated[str, Field(max_length=2000, pattern=r"^https?://[^\s\x00]+$")] | None = (
        None
    )
    # A webhook on each state change of its parcels (parcel.deposited.v1, ...).
    state_webhooks: bool = Field(default=False, strict=True)


class CarrierOut(BaseModel):
    carrier_id: str
    name: str
    api_key: str
    # Signs its webhooks (Locker-Signature, docs/api.md); shown only here, like the key.
    webhook_secret: str


class WebhookSecretIn(Request):
    """How long the secret being replaced keeps signing beside the new one (default 24 h; 0:
    stop at once, for a leaked secret)."""

    overlap_hours: int = Field(default=24, ge=0, le=168, strict=True)


class WebhookSecretOut(BaseModel):
    carrier_id: str
    # The new secret: shown only here.
    webhook_secret: str
    # Until when webhooks also carry a signature under the previous secret (null: none).
    previous_secret_valid_until: datetime | None


class DoorLabelIn(Request):
    label: DoorLabelText


class DeliveryOut(Response):
    """A notification in the carrier's delivery log."""

    id: uuid.UUID
    kind: str
    allocation_id: uuid.UUID
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None


class DoorIn(Request):
    """A door. Its label (``locker_number``) is ``label``, else column letter and row
    (``column: 2, row: 5`` is ``B5``), else the door number."""

    door_number: int = Field(gt=0, le=MAX_DOOR_NUMBER, strict=True)
    size: Size
    dimensions: DimensionsIn | None = None
    label: DoorLabelText | None = None
    column: int | None = Field(default=None, ge=1, le=26, strict=True)
    row: int | None = Field(default=None, ge=1, le=999, strict=True)
    # Within reach (e.g. the lowest rows), for allocations that ask for one.
    accessible: bool = Field(default=False, strict=True)


class LocationIn(Request):
    location_id: Identifier
    name: FreeText
    address: FreeText
    latitude: float = Field(ge=-90, le=90, strict=True)
    longitude: float = Field(ge=-180, le=180, strict=True)
    timezone: TimeZone = "UTC"
    operating_hours: dict[str, Any] | None = None
    doors: list[DoorIn] = Field(default_factory=list, max_length=1000)
    # Shorthand for standard doors, numbered on from the listed ones: {"small": 10, ...}
    door_counts: dict[Size, Annotated[int, Field(ge=0, le=1000, strict=True)]] | None = None


class LocationPatch(Request):
    """Fields to change; absent ones stay as they are. ``active: false`` stops allocations
    there (parcels already in keep their doors). ``operating_hours: null`` means open around
    the clock; the other fields cannot be null (leave them out to keep them)."""

    # None only as "not given": an explicit null is refused (the schema shows no null).
    name: FreeText | SkipJsonSchema[None] = None
    address: FreeText | SkipJsonSchema[None] = None
    timezone: TimeZone | SkipJsonSchema[None] = None
    operating_hours: dict[str, Any] | None = None
    active: Annotated[bool, Field(strict=True)] | SkipJsonSchema[None] = None

    @field_validator("name", "address", "timezone", "active", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value


class DoorsIn(Request):
    doors: list[DoorIn] = Field(min_length=1, max_length=1000)


class AccessibleIn(Request):
    accessible: bool = Field(strict=True)


class CapacityOut(BaseModel):
    """What a location can take right now; nothing is held."""

    location_id: str
    active: bool
    # Free doors per size, and of those the accessible ones.
    free_doors: dict[Size, int]
    free_accessible_doors: dict[Size, int]
    # Per parcel size: whether a free door of that size or larger exists (any / accessible).
    can_take: dict[Size, bool]
    can_take_accessible: dict[Size, bool]


class MaintenanceIn(Request):
    reason: FreeText = "maintenance"


class DoorOut(Response):
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
    allocation_id: uuid.UUID | None = None


class KioskPresenceOut(Response):
    """A kiosk's presence: ``online``, ``stale`` (silent lately), ``offline``, ``never_seen``."""

    kiosk_id: str
    status: str
    epoch: int | None
    firmware: str | None
    last_revision: int | None
    registered_at: datetime
    birth_at: datetime | None
    death_at: datetime | None
    heartbeat_at: datetime | None
    # The last heartbeat's figures: door_faults, outbox_depth, last_revision, disk_free_bytes,
    # board_error.
    heartbeat: dict[str, Any] | None


class LocationOut(BaseModel):
    location_id: str
    name: str
    address: str
    latitude: float
    longitude: float
    timezone: str
    operating_hours: dict[str, Any] | None
    active: bool
    free_doors: dict[str, int]
    # The best status among the location's kiosks (never_seen without any).
    kiosk_status: str = "never_seen"
    # Admin views only: the change log's revision and each kiosk's presence.
    revision: int | None = None
    kiosks: list[KioskPresenceOut] | None = None


class AlertOut(Response):
    alert_id: int
    kiosk_id: str | None
    kind: str
    door_number: int | None
    detail: dict[str, Any]
    raised_at: datetime


class AdminLocationOut(LocationOut):
    open_alerts: list[AlertOut] = Field(default_factory=list)


class RemoteOpenIn(Request):
    reason: FreeText
    requested_by: Identifier = "admin"


class RemoteCommandOut(Response):
    command_id: uuid.UUID
    location_id: str
    door_number: int
    status: str
    expires_at: datetime


class NearbyLocation(BaseModel):
    location_id: str
    name: str
    address: str
    latitude: float
    longitude: float
    timezone: str
    operating_hours: dict[str, Any] | None
    distance_km: float
    free_doors: dict[str, int]


class NearbyOut(BaseModel):
    locations: list[NearbyLocation]


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorOut(BaseModel):
    error: ErrorBody


# The errors any endpoint may answer (docs/api.md), declared on every route so that a client
# generated from the OpenAPI document knows their shape.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "malformed_json, bad_request"},
    401: {"model": ErrorOut, "description": "missing_api_key, invalid_api_key"},
    403: {"model": ErrorOut, "description": "admin_only, carrier_only"},
    413: {"model": ErrorOut, "description": "payload_too_large"},
    422: {"model": ErrorOut, "description": "validation_error (or the field's own code)"},
    500: {"model": ErrorOut, "description": "internal_error"},
}
