"""Kiosk events for the cloud: their types and payloads, typed and validated (``docs/protocol.md``).

The kiosk builds every outbox event as one of these models (`kiosk.store.outbox.append_event`
takes nothing else), so it cannot commit a payload the cloud would refuse; the cloud checks each
received event with `parse_event`, one event at a time, so one event it refuses does not hold
up the others of its message.

Versions: each payload schema has a version (`PayloadModel.VERSION`, 1 for every type today),
stored with the event in the kiosk's outbox and sent as ``EventRecord.version``. A kiosk that
sends no version (firmware before versions) means 1. A change that a cloud reading the old
schema would misread gets a new version for that type; the cloud keeps accepting the versions
listed in `SUPPORTED_VERSIONS`, so kiosks can be upgraded after the cloud.

A payload is a JSON object of the model's fields (``type`` is not in it: it travels beside it).
Models forbid unknown fields: a field the cloud does not know is a new version, not a silent
addition. Numbers and booleans are strict (``"3"`` is not a door, ``1`` is not ``true``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)

from shared.protocol import EventRecord


class EventType(StrEnum):
    """Types of outbox events for the cloud (payloads below and in ``docs/protocol.md``)."""

    CODE_USED = "code_used"
    CODE_RELEASED = "code_released"
    DOOR_OPENED = "door_opened"
    DOOR_OPEN_NOT_DETECTED = "door_open_not_detected"
    DOOR_COMMAND_FAILED = "door_command_failed"
    DOOR_CLOSED = "door_closed"
    DOOR_TAMPERED = "door_tampered"
    DOOR_LEFT_OPEN = "door_left_open"
    DOOR_MAINTENANCE = "door_maintenance"
    DOOR_SUBSTITUTED = "door_substituted"
    PROPOSED_DOOR_UNAVAILABLE = "proposed_door_unavailable"
    OPERATION_ABANDONED = "operation_abandoned"
    PARCEL_DEPOSITED = "parcel_deposited"
    PARCEL_PICKED_UP = "parcel_picked_up"
    PARCEL_EXPIRED = "parcel_expired"
    PARCEL_COLLECTED = "parcel_collected"
    RETURN_DEPOSITED = "return_deposited"
    KEYPAD_LOCKED = "keypad_locked"
    REMOTE_OPEN_REFUSED = "remote_open_refused"
    CLOUD_CHANGE_REFUSED = "cloud_change_refused"
    # Issue 11: hardware faults and pickup codes given back.
    DOOR_BANK_UNAVAILABLE = "door_bank_unavailable"
    DOOR_BANK_RESTORED = "door_bank_restored"
    CODE_GIVEN_BACK = "code_given_back"
    STAFF_PIN_LOCKED = "staff_pin_locked"
    # Issue 9: code-secret rotation.
    CODE_SECRET_ROTATED = "code_secret_rotated"  # noqa: S105 (an event type)
    # Issue 9: the kiosk's next signing key, announced under its current one.
    SIGNING_KEY_ROTATED = "signing_key_rotated"
    # Issue 11: the courier code's lockout, as the staff PIN's.
    COURIER_CODE_LOCKED = "courier_code_locked"


# Field types. Ids as the sync protocol bounds them (`shared.protocol.AllocationState`); free
# text is bounded generously, since a kiosk must never fail a flow over a long message.

DoorNumber = Annotated[StrictInt, Field(gt=0)]
AllocationId = Annotated[StrictStr, Field(min_length=1, max_length=64)]
OperationId = Annotated[StrictStr, Field(min_length=1, max_length=64)]
Text = Annotated[StrictStr, Field(max_length=2000)]
Reason = Annotated[StrictStr, Field(min_length=1, max_length=2000)]
PersonId = Annotated[StrictStr, Field(max_length=128)]
Actor = Literal["customer", "driver", "staff", "remote", "kiosk"]
Purpose = Literal["pickup", "drop_off", "return", "collection", "open"]
AllocationKind = Literal["delivery", "return"]
CodeKind = Literal["pickup", "return"]


class PayloadModel(BaseModel):
    """The base of every event model: frozen, unknown fields refused, one schema version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    VERSION: ClassVar[int] = 1
    """The payload schema's version, sent beside the payload (``EventRecord.version``)."""

    type: EventType

    def payload(self) -> dict[str, Any]:
        """The JSON object the outbox stores and the kiosk sends (every field but ``type``)."""
        return self.model_dump(mode="json", exclude={"type"})


class CodeUsed(PayloadModel):
    """A code opened its doors (it is spent: a code works once)."""

    type: Literal[EventType.CODE_USED] = EventType.CODE_USED
    kind: CodeKind
    code_ref: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    allocation_ids: Annotated[list[AllocationId], Field(min_length=1, max_length=100)]
    doors: Annotated[list[DoorNumber], Field(min_length=1, max_length=100)]
    via: Annotated[StrictStr, Field(min_length=1, max_length=32)]


class CodeReleased(PayloadModel):
    """A return code works again: its door never opened, or shut with nothing put in."""

    type: Literal[EventType.CODE_RELEASED] = EventType.CODE_RELEASED
    operation_id: OperationId
    reason: Reason


class _DoorCommandResult(PayloadModel):
    operation_id: OperationId
    door: DoorNumber
    purpose: Purpose
    actor: Actor
    allocation_id: AllocationId | None = None
    attempt: Annotated[StrictInt, Field(ge=0)]
    detail: Text | None = None


class DoorOpened(_DoorCommandResult):
    """A commanded door was seen open."""

    type: Literal[EventType.DOOR_OPENED] = EventType.DOOR_OPENED


class DoorOpenNotDetected(_DoorCommandResult):
    """The unlock pulse went out but the sensor did not report the door open in time."""

    type: Literal[EventType.DOOR_OPEN_NOT_DETECTED] = EventType.DOOR_OPEN_NOT_DETECTED


class DoorCommandFailed(_DoorCommandResult):
    """The unlock pulse could not be delivered (the lock board did not answer)."""

    type: Literal[EventType.DOOR_COMMAND_FAILED] = EventType.DOOR_COMMAND_FAILED


class DoorClosed(PayloadModel):
    """A door was seen shut."""

    type: Literal[EventType.DOOR_CLOSED] = EventType.DOOR_CLOSED
    door: DoorNumber
    occupied: StrictBool | None = None
    operation_id: OperationId | None = None


class DoorTampered(PayloadModel):
    """A door opened with no command."""

    type: Literal[EventType.DOOR_TAMPERED] = EventType.DOOR_TAMPERED
    door: DoorNumber
    how: Annotated[StrictStr, Field(min_length=1, max_length=200)]


class DoorLeftOpen(PayloadModel):
    """A door has stayed open longer than the kiosk's ``left_open_after``."""

    type: Literal[EventType.DOOR_LEFT_OPEN] = EventType.DOOR_LEFT_OPEN
    door: DoorNumber
    open_since: AwareDatetime
    operation_id: OperationId | None = None


class DoorMaintenance(PayloadModel):
    """A door went out of service (``on``) or back in service."""

    type: Literal[EventType.DOOR_MAINTENANCE] = EventType.DOOR_MAINTENANCE
    door: DoorNumber
    on: StrictBool
    reason: Text | None = None
    actor: Actor
    detached_allocation_id: AllocationId | None = None


class DoorSubstituted(PayloadModel):
    """The kiosk put a parcel in another door than the one it held (or was proposed)."""

    type: Literal[EventType.DOOR_SUBSTITUTED] = EventType.DOOR_SUBSTITUTED
    allocation_id: AllocationId
    door: DoorNumber
    replaced_door: DoorNumber
    actor: Actor


class ProposedDoorUnavailable(PayloadModel):
    """The door the cloud proposed for a reservation cannot take it here."""

    type: Literal[EventType.PROPOSED_DOOR_UNAVAILABLE] = EventType.PROPOSED_DOOR_UNAVAILABLE
    allocation_id: AllocationId
    proposed_door: DoorNumber
    reason: Reason


class OperationAbandoned(PayloadModel):
    """A door command was given up (its door never opened, or a problem was reported)."""

    type: Literal[EventType.OPERATION_ABANDONED] = EventType.OPERATION_ABANDONED
    operation_id: OperationId
    door: DoorNumber
    reason: Reason


class _Deposited(PayloadModel):
    allocation_id: AllocationId
    door: DoorNumber
    barcode: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    driver_id: PersonId | None = None
    pickup_expires_at: AwareDatetime | None = None


class ParcelDeposited(_Deposited):
    """A driver's parcel is in its door, shut."""

    type: Literal[EventType.PARCEL_DEPOSITED] = EventType.PARCEL_DEPOSITED


class ReturnDeposited(_Deposited):
    """A customer's return is in its door, shut (for staff to collect)."""

    type: Literal[EventType.RETURN_DEPOSITED] = EventType.RETURN_DEPOSITED


class ParcelPickedUp(PayloadModel):
    """The customer took the parcel out (its door shut empty)."""

    type: Literal[EventType.PARCEL_PICKED_UP] = EventType.PARCEL_PICKED_UP
    allocation_id: AllocationId
    door: DoorNumber


class ParcelExpired(PayloadModel):
    """Defined for the protocol, not written by the kiosk: expiry is the cloud's decision."""

    type: Literal[EventType.PARCEL_EXPIRED] = EventType.PARCEL_EXPIRED
    allocation_id: AllocationId
    door: DoorNumber | None = None


class ParcelCollected(PayloadModel):
    """Staff took a parcel out (an expired parcel or a return)."""

    type: Literal[EventType.PARCEL_COLLECTED] = EventType.PARCEL_COLLECTED
    allocation_id: AllocationId
    door: DoorNumber | None = None
    kind: AllocationKind
    staff_id: PersonId | None = None


class KeypadLocked(PayloadModel):
    """Too many wrong codes: the keypad refuses codes until ``locked_until``."""

    type: Literal[EventType.KEYPAD_LOCKED] = EventType.KEYPAD_LOCKED
    failures: Annotated[StrictInt, Field(gt=0)]
    locked_until: AwareDatetime


class RemoteOpenRefused(PayloadModel):
    """The kiosk refused a signed remote open from the cloud."""

    type: Literal[EventType.REMOTE_OPEN_REFUSED] = EventType.REMOTE_OPEN_REFUSED
    command_id: uuid.UUID
    door: DoorNumber
    reason: Reason
    requested_by: Annotated[StrictStr, Field(min_length=1, max_length=128)]


class CloudChangeRefused(PayloadModel):
    """A change of the cloud's log that the kiosk refused for good (physical facts win).

    Its revision was consumed; the kiosk's own events say what is true here. Written when the
    change arrives, or when a deferred change is refused once its blocker has ended.
    """

    type: Literal[EventType.CLOUD_CHANGE_REFUSED] = EventType.CLOUD_CHANGE_REFUSED
    revision: Annotated[StrictInt, Field(ge=0)]
    allocation_id: AllocationId | None = None
    door: DoorNumber | None = None
    reason: Reason
    deferred: StrictBool = False


# Issue 11: hardware faults and pickup codes given back.


class DoorBankUnavailable(PayloadModel):
    """The lock boards stopped answering (a lost port, a silent board): no door opens now."""

    type: Literal[EventType.DOOR_BANK_UNAVAILABLE] = EventType.DOOR_BANK_UNAVAILABLE
    error: Reason


class DoorBankRestored(PayloadModel):
    """The lock boards answer again after ``failed_polls`` failed polls."""

    type: Literal[EventType.DOOR_BANK_RESTORED] = EventType.DOOR_BANK_RESTORED
    failed_polls: Annotated[StrictInt, Field(ge=0)]


class CodeGivenBack(PayloadModel):
    """A spent pickup code works again: the doors it was spent on were never pulsed open.

    Sent when every door operation of the code ended without its door being seen open and
    without a pulse known to have gone out (a kill -9 between the commit and the pulse, a
    pulse that could not be delivered). The parcels named are still deposited.
    """

    type: Literal[EventType.CODE_GIVEN_BACK] = EventType.CODE_GIVEN_BACK
    code_ref: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    allocation_ids: Annotated[list[AllocationId], Field(min_length=1, max_length=100)]
    reason: Reason


class StaffPinLocked(PayloadModel):
    """Too many wrong staff PINs: staff sign-in is refused until ``locked_until``."""

    type: Literal[EventType.STAFF_PIN_LOCKED] = EventType.STAFF_PIN_LOCKED
    failures: Annotated[StrictInt, Field(gt=0)]
    locked_until: AwareDatetime


class CourierCodeLocked(PayloadModel):
    """Too many wrong courier codes: courier sign-in is refused until ``locked_until``."""

    type: Literal[EventType.COURIER_CODE_LOCKED] = EventType.COURIER_CODE_LOCKED
    failures: Annotated[StrictInt, Field(gt=0)]
    locked_until: AwareDatetime


Hex32 = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]


class CodeSecretRotated(PayloadModel):
    """The kiosk made generation ``generation`` of its code secret (`shared.code_secret_exchange`).

    ``kiosk_public`` is its X25519 public half (not secret); ``fingerprint`` is the new secret's
    fingerprint, which the cloud checks against its own computation before using the secret.
    """

    type: Literal[EventType.CODE_SECRET_ROTATED] = EventType.CODE_SECRET_ROTATED
    generation: Annotated[StrictInt, Field(ge=2)]
    kiosk_public: Hex32
    fingerprint: Hex32


class SigningKeyRotated(PayloadModel):
    """The kiosk made its next Ed25519 signing key (`shared.key_rotation`). The event travels
    in an ``events`` message signed by the current key; ``proof`` is the new key's signature of
    the announcement, so nobody can announce a key they do not hold."""

    type: Literal[EventType.SIGNING_KEY_ROTATED] = EventType.SIGNING_KEY_ROTATED
    new_public_key: Annotated[StrictStr, Field(min_length=44, max_length=44)]
    proof: Annotated[StrictStr, Field(min_length=1, max_length=128)]


KioskEvent = Annotated[
    CodeUsed
    | CodeReleased
    | DoorOpened
    | DoorOpenNotDetected
    | DoorCommandFailed
    | DoorClosed
    | DoorTampered
    | DoorLeftOpen
    | DoorMaintenance
    | DoorSubstituted
    | ProposedDoorUnavailable
    | OperationAbandoned
    | ParcelDeposited
    | ParcelPickedUp
    | ParcelExpired
    | ParcelCollected
    | ReturnDeposited
    | KeypadLocked
    | RemoteOpenRefused
    | CloudChangeRefused
    | DoorBankUnavailable
    | DoorBankRestored
    | CodeGivenBack
    | StaffPinLocked
    | CodeSecretRotated
    | SigningKeyRotated
    | CourierCodeLocked,
    Field(discriminator="type"),
]
"""Any kiosk event, told apart by its ``type``."""

_ADAPTER: TypeAdapter[KioskEvent] = TypeAdapter(KioskEvent)

EVENT_MODELS: dict[EventType, type[PayloadModel]] = {
    model.model_fields["type"].default: model for model in get_args(get_args(KioskEvent)[0])
}
"""The model of each event type."""

SUPPORTED_VERSIONS: dict[EventType, frozenset[int]] = {
    event_type: frozenset({model.VERSION}) for event_type, model in EVENT_MODELS.items()
}
"""The payload versions the cloud accepts for each type."""


class InvalidReason(StrEnum):
    """Why an event was refused (machine-readable; recorded with the event)."""

    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    INVALID_PAYLOAD = "invalid_payload"


class InvalidEvent(Exception):
    """An event that must not be applied, with why.

    Attributes:
        reason: The machine-readable reason.
        detail: A message naming the type, version or field at fault.
        field: The payload field at fault, for ``invalid_payload`` (None for the whole payload).
    """

    def __init__(self, reason: InvalidReason, detail: str, field: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.field = field


def parse_payload(event_type: str, version: int, payload: Mapping[str, Any]) -> KioskEvent:
    """The typed event of a type, a payload version and a payload.

    Raises:
        InvalidEvent: an unknown type, a version not supported for it, or a payload that does
            not fit the type's model (the first field at fault is named).
    """
    try:
        known = EventType(event_type)
    except ValueError:
        raise InvalidEvent(
            InvalidReason.UNKNOWN_TYPE, f"unknown event type {event_type!r}"
        ) from None
    if version not in SUPPORTED_VERSIONS[known]:
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_VERSIONS[known]))
        raise InvalidEvent(
            InvalidReason.UNSUPPORTED_VERSION,
            f"{known} payload version {version!r} is not supported (supported: {supported})",
        )
    if "type" in payload:
        raise InvalidEvent(
            InvalidReason.INVALID_PAYLOAD,
            f"{known} payload.type: the type travels beside the payload, not in it",
            "type",
        )
    try:
        return _ADAPTER.validate_python({**payload, "type": known.value})
    except ValidationError as error:
        first = error.errors()[0]
        # The first part of the location is the union's tag (the type) for a tagged union.
        parts = [str(part) for part in first["loc"]][1:]
        field = ".".join(parts) or None
        where = f"payload.{field}" if field else "payload"
        raise InvalidEvent(
            InvalidReason.INVALID_PAYLOAD, f"{known} {where}: {first['msg']}", field
        ) from None


def parse_event(record: EventRecord) -> KioskEvent:
    """The typed event of a received `EventRecord` (see `parse_payload`).

    Raises:
        InvalidEvent: the event cannot be read as a known event.
    """
    return parse_payload(record.type, record.version, record.payload)
