import uuid
from datetime import UTC, datetime
from typing import get_args

import pytest

from kiosk.store import records
from shared import events
from shared.events import (
    EVENT_MODELS,
    SUPPORTED_VERSIONS,
    EventType,
    InvalidEvent,
    InvalidReason,
    parse_event,
    parse_payload,
)
from shared.protocol import EventRecord
from tests.event_samples import SAMPLES


def test_every_event_type_has_a_model_of_that_type() -> None:
    assert set(EVENT_MODELS) == set(EventType)
    for event_type, model in EVENT_MODELS.items():
        assert model.model_fields["type"].default is event_type
        assert SUPPORTED_VERSIONS[event_type] == {model.VERSION}


def test_the_kiosk_imports_the_shared_event_types() -> None:
    assert records.EventType is EventType
    assert EventType.CLOUD_CHANGE_REFUSED in EventType  # issue 14
    assert EventType.CODE_GIVEN_BACK in EventType  # issue 11
    assert EventType.CODE_SECRET_ROTATED in EventType  # issue 9
    assert EventType.SIGNING_KEY_ROTATED in EventType  # issue 9
    assert EventType.COURIER_CODE_LOCKED in EventType  # issue 11
    assert len(EventType) == 27


@pytest.mark.parametrize("event_type", list(EventType))
def test_a_sample_of_every_type_parses_and_dumps_back(event_type: EventType) -> None:
    event = parse_payload(event_type, 1, SAMPLES[event_type])
    assert event.type is event_type
    assert isinstance(event, EVENT_MODELS[event_type])
    assert parse_payload(event_type, 1, event.payload()) == event
    assert "type" not in event.payload()


@pytest.mark.parametrize(
    ("literal", "enum"),
    [
        (events.Actor, records.Actor),
        (events.Purpose, records.Purpose),
        (events.AllocationKind, records.AllocationKind),
        (events.CodeKind, records.CodeKind),
    ],
)
def test_payload_literals_are_the_kiosks_values(literal: object, enum: type) -> None:
    assert set(get_args(literal)) == {member.value for member in enum}


def _record(event_type: str, payload: dict[str, object], version: int = 1) -> EventRecord:
    return EventRecord(
        sequence=1,
        event_id=uuid.uuid4(),
        type=event_type,
        version=version,
        created_at=datetime.now(UTC),
        payload=payload,
    )


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="door_teleported") as caught:
        parse_event(_record("door_teleported", {"door": 1}))
    assert caught.value.reason is InvalidReason.UNKNOWN_TYPE


def test_an_unsupported_version_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="version 2 is not supported") as caught:
        parse_event(_record("door_closed", {"door": 1}, version=2))
    assert caught.value.reason is InvalidReason.UNSUPPORTED_VERSION


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"allocation_id": "a1"}, "door", "Field required"),
        ({"allocation_id": "a1", "door": "1"}, "door", "valid integer"),
        ({"allocation_id": "a1", "door": True}, "door", "valid integer"),
        ({"allocation_id": "a1", "door": 0}, "door", "greater than 0"),
        ({"allocation_id": "", "door": 1}, "allocation_id", "at least 1"),
        ({"allocation_id": "a1", "door": 1, "more": 1}, "more", "Extra inputs"),
        ({"allocation_id": "a1", "door": 1, "type": "x"}, "type", "beside the payload"),
    ],
)
def test_an_invalid_payload_is_refused_naming_the_field(
    payload: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(_record("parcel_picked_up", payload))
    assert caught.value.reason is InvalidReason.INVALID_PAYLOAD
    assert caught.value.field == field
    assert f"parcel_picked_up payload.{field}: " in caught.value.detail
    assert message in caught.value.detail


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(InvalidEvent, match=r"payload\.locked_until"):
        parse_payload("keypad_locked", 1, {"failures": 5, "locked_until": "2026-01-05T10:15:00"})


def test_optional_fields_may_be_left_out() -> None:
    event = parse_payload("door_closed", 1, {"door": 4})
    assert event.payload() == {"door": 4, "occupied": None, "operation_id": None}


def test_an_event_record_without_a_version_is_version_1() -> None:
    raw = _record("door_closed", {"door": 1}).model_dump(mode="json", exclude={"version"})
    assert EventRecord.model_validate(raw).version == 1
