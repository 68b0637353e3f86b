"""A valid payload of every kiosk event type, for tests that need an event of some type."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kiosk.store.records import OutboxEvent
from shared.events import EventType, InvalidEvent, KioskEvent, parse_payload

OPERATION = "6f1c0d7e-2a4b-4c3d-9e8f-0a1b2c3d4e5f"

SAMPLES: dict[EventType, dict[str, Any]] = {
    EventType.CODE_USED: {
        "kind": "pickup",
        "code_ref": "abcd1234",
        "allocation_ids": ["a1"],
        "doors": [1],
        "via": "keypad",
    },
    EventType.CODE_RELEASED: {"operation_id": OPERATION, "reason": "door never opened"},
    EventType.DOOR_OPENED: {
        "operation_id": OPERATION,
        "door": 1,
        "purpose": "pickup",
        "actor": "customer",
        "allocation_id": "a1",
        "attempt": 1,
        "detail": None,
    },
    EventType.DOOR_OPEN_NOT_DETECTED: {
        "operation_id": OPERATION,
        "door": 1,
        "purpose": "drop_off",
        "actor": "driver",
        "allocation_id": "a1",
        "attempt": 1,
        "detail": "no opening seen",
    },
    EventType.DOOR_COMMAND_FAILED: {
        "operation_id": OPERATION,
        "door": 1,
        "purpose": "open",
        "actor": "staff",
        "allocation_id": None,
        "attempt": 2,
        "detail": "board 1 did not answer",
    },
    EventType.DOOR_CLOSED: {"door": 1, "occupied": None, "operation_id": None},
    EventType.DOOR_TAMPERED: {"door": 1, "how": "monitor"},
    EventType.DOOR_LEFT_OPEN: {
        "door": 1,
        "open_since": "2026-01-05T10:00:00+00:00",
        "operation_id": None,
    },
    EventType.DOOR_MAINTENANCE: {
        "door": 1,
        "on": True,
        "reason": "driver reported: did not open",
        "actor": "driver",
        "detached_allocation_id": None,
    },
    EventType.DOOR_SUBSTITUTED: {
        "allocation_id": "a1",
        "door": 2,
        "replaced_door": 1,
        "actor": "driver",
    },
    EventType.PROPOSED_DOOR_UNAVAILABLE: {
        "allocation_id": "a1",
        "proposed_door": 1,
        "reason": "door is occupied",
    },
    EventType.OPERATION_ABANDONED: {"operation_id": OPERATION, "door": 1, "reason": "jammed"},
    EventType.PARCEL_DEPOSITED: {
        "allocation_id": "a1",
        "door": 1,
        "barcode": "PKG-1",
        "driver_id": "drv-7",
        "pickup_expires_at": "2026-01-08T10:00:00+00:00",
    },
    EventType.PARCEL_PICKED_UP: {"allocation_id": "a1", "door": 1},
    EventType.PARCEL_EXPIRED: {"allocation_id": "a1", "door": 1},
    EventType.PARCEL_COLLECTED: {
        "allocation_id": "a1",
        "door": 1,
        "kind": "delivery",
        "staff_id": "staff-1",
    },
    EventType.RETURN_DEPOSITED: {
        "allocation_id": "r1",
        "door": 1,
        "barcode": "RET-1",
        "driver_id": None,
        "pickup_expires_at": None,
    },
    EventType.KEYPAD_LOCKED: {"failures": 5, "locked_until": "2026-01-05T10:15:00+00:00"},
    EventType.REMOTE_OPEN_REFUSED: {
        "command_id": "0b7f8c9d-1e2f-4a3b-8c4d-5e6f7a8b9c0d",
        "door": 1,
        "reason": "door_busy",
        "requested_by": "operator@example.com",
    },
    EventType.CLOUD_CHANGE_REFUSED: {
        "revision": 42,
        "allocation_id": "a1",
        "door": None,
        "reason": "the kiosk has it deposited",
        "deferred": True,
    },
    EventType.DOOR_BANK_UNAVAILABLE: {"error": "PortError: serial port /dev/ttyUSB0 failed"},
    EventType.DOOR_BANK_RESTORED: {"failed_polls": 4},
    EventType.CODE_GIVEN_BACK: {
        "code_ref": "3f2a9c1b",
        "allocation_ids": ["a1"],
        "reason": "interrupted before the pulse",
    },
    EventType.STAFF_PIN_LOCKED: {"failures": 5, "locked_until": "2026-01-05T10:15:00+00:00"},
    EventType.COURIER_CODE_LOCKED: {"failures": 5, "locked_until": "2026-01-05T10:15:00+00:00"},
    EventType.CODE_SECRET_ROTATED: {
        "generation": 2,
        "kiosk_public": "ab" * 32,
        "fingerprint": "cd" * 32,
    },
    EventType.SIGNING_KEY_ROTATED: {
        "new_public_key": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        "proof": "c2lnbmF0dXJl",
    },
}


def sample(event_type: EventType, **fields: Any) -> KioskEvent:
    """A valid event of ``event_type``, with ``fields`` replacing the sample's."""
    return parse_payload(event_type, 1, {**SAMPLES[event_type], **fields})


def assert_all_valid(events: Iterable[OutboxEvent]) -> set[EventType]:
    """Checks that the cloud would accept every one of a kiosk's outbox events, unchanged.

    Returns:
        The event types seen.
    """
    seen = set()
    for event in events:
        try:
            parsed = parse_payload(event.type, event.version, event.payload)
        except InvalidEvent as error:  # pragma: no cover - the failure report
            raise AssertionError(
                f"outbox event {event.sequence} would be refused: {error}"
            ) from error
        assert parsed.payload() == event.payload, event
        seen.add(event.type)
    return seen
