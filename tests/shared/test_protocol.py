"""The sync protocol's envelope: signing, and every reason a message is rejected."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.protocol import (
    CLOUD_SUBSCRIPTION,
    MAX_JSON_DEPTH,
    MAX_NUMBER_DIGITS,
    MAX_PAYLOAD_BYTES,
    AckBody,
    Channel,
    EventRecord,
    EventsBody,
    MessageType,
    Rejected,
    RejectReason,
    RemoteOpenBody,
    ReplayGuard,
    SyncRequestBody,
    check_envelope_shape,
    check_signature_field,
    kiosk_subscription,
    open_message,
    parse_topic,
    seal,
    topic,
)
from shared.signing import Signer, SigningError, Verifier

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CLOUD = Signer.generate()
KIOSK_A = Signer.generate()  # kiosk-a at loc-a
KIOSK_B = Signer.generate()  # kiosk-b at loc-b
KIOSKS = {("loc-a", "kiosk-a"): KIOSK_A.verifier, ("loc-b", "kiosk-b"): KIOSK_B.verifier}


def cloud_keys(location_id: str, sender: str) -> Verifier | None:
    return CLOUD.verifier if sender == "cloud" else None


def kiosk_keys(location_id: str, sender: str) -> Verifier | None:
    return KIOSKS.get((location_id, sender))


def events_from(
    signer: Signer, location_id: str, kiosk_id: str, *, now: datetime = NOW, body_kiosk: str = ""
) -> bytes:
    body = EventsBody(
        kiosk_id=body_kiosk or kiosk_id,
        events=[
            EventRecord(
                sequence=1,
                event_id=uuid.uuid4(),
                type="parcel_deposited",
                created_at=now,
                payload={"door": 3},
            )
        ],
    )
    return seal(
        signer, MessageType.EVENTS, location_id=location_id, sender=kiosk_id, body=body, now=now
    )


def reason(payload: bytes, topic_name: str, keys=kiosk_keys, now: datetime = NOW) -> RejectReason:  # type: ignore[no-untyped-def]
    with pytest.raises(Rejected) as rejected:
        open_message(payload, topic_name, keys=keys, now=now)
    return rejected.value.reason


def test_a_signed_kiosk_message_opens_with_its_body() -> None:
    payload = events_from(KIOSK_A, "loc-a", "kiosk-a")

    message = open_message(payload, topic("loc-a", Channel.KIOSK_EVENTS), keys=kiosk_keys, now=NOW)

    assert message.type is MessageType.EVENTS
    assert message.location_id == "loc-a"
    assert isinstance(message.body, EventsBody)
    assert message.body.events[0].payload == {"door": 3}


def test_field_order_does_not_matter_to_the_signature() -> None:
    payload = events_from(KIOSK_A, "loc-a", "kiosk-a")
    shuffled = json.dumps(dict(reversed(list(json.loads(payload).items())))).encode()

    message = open_message(shuffled, topic("loc-a", Channel.KIOSK_EVENTS), keys=kiosk_keys, now=NOW)

    assert message.sender == "kiosk-a"


def test_a_tampered_body_fails_the_signature() -> None:
    raw = json.loads(events_from(KIOSK_A, "loc-a", "kiosk-a"))
    raw["body"]["events"][0]["payload"]["door"] = 4

    assert (
        reason(json.dumps(raw).encode(), topic("loc-a", Channel.KIOSK_EVENTS))
        is RejectReason.BAD_SIGNATURE
    )


def test_a_message_signed_with_another_key_is_refused() -> None:
    forged = events_from(Signer.generate(), "loc-a", "kiosk-a")

    assert reason(forged, topic("loc-a", Channel.KIOSK_EVENTS)) is RejectReason.BAD_SIGNATURE


def test_an_unsigned_message_is_refused() -> None:
    raw = json.loads(events_from(KIOSK_A, "loc-a", "kiosk-a"))
    del raw["sig"]

    assert (
        reason(json.dumps(raw).encode(), topic("loc-a", Channel.KIOSK_EVENTS))
        is RejectReason.UNSIGNED
    )


def test_one_kiosks_key_cannot_inject_events_for_another_location() -> None:
    # Kiosk A signs, correctly, a message claiming to be kiosk-b at loc-b.
    payload = events_from(KIOSK_A, "loc-b", "kiosk-b")
    assert reason(payload, topic("loc-b", Channel.KIOSK_EVENTS)) is RejectReason.BAD_SIGNATURE

    # Kiosk A signs as itself but publishes on loc-b's topic.
    own = events_from(KIOSK_A, "loc-a", "kiosk-a")
    assert reason(own, topic("loc-b", Channel.KIOSK_EVENTS)) is RejectReason.WRONG_LOCATION

    # Kiosk A names itself as sender for loc-b: not a sender there.
    claimed = events_from(KIOSK_A, "loc-b", "kiosk-a")
    assert reason(claimed, topic("loc-b", Channel.KIOSK_EVENTS)) is RejectReason.UNKNOWN_SENDER


def test_a_kiosk_cannot_write_events_in_another_kiosks_name() -> None:
    payload = events_from(KIOSK_A, "loc-a", "kiosk-a", body_kiosk="kiosk-z")

    assert reason(payload, topic("loc-a", Channel.KIOSK_EVENTS)) is RejectReason.UNKNOWN_SENDER


def test_a_kiosk_cannot_speak_on_a_cloud_topic() -> None:
    body = AckBody(kiosk_id="kiosk-a", through_sequence=9)
    payload = seal(
        KIOSK_A, MessageType.ACK, location_id="loc-a", sender="kiosk-a", body=body, now=NOW
    )

    assert (
        reason(payload, topic("loc-a", Channel.CLOUD_ACKS), keys=kiosk_keys)
        is RejectReason.UNKNOWN_SENDER
    )


def test_a_message_type_on_the_wrong_topic_is_refused() -> None:
    payload = events_from(KIOSK_A, "loc-a", "kiosk-a")

    assert reason(payload, topic("loc-a", Channel.KIOSK_SYNC)) is RejectReason.WRONG_TOPIC
    assert reason(payload, "some/other/topic") is RejectReason.WRONG_TOPIC


def test_an_expired_message_is_refused() -> None:
    payload = events_from(KIOSK_A, "loc-a", "kiosk-a")

    late = NOW + timedelta(hours=1, seconds=1)
    assert reason(payload, topic("loc-a", Channel.KIOSK_EVENTS), now=late) is RejectReason.EXPIRED


def test_a_message_from_the_future_is_refused() -> None:
    payload = events_from(KIOSK_A, "loc-a", "kiosk-a", now=NOW + timedelta(minutes=5))

    assert reason(payload, topic("loc-a", Channel.KIOSK_EVENTS)) is RejectReason.NOT_YET_VALID


def test_a_remote_open_expires_within_seconds() -> None:
    body = RemoteOpenBody(command_id=uuid.uuid4(), door=5, reason="phone", requested_by="op-1")
    payload = seal(
        CLOUD, MessageType.REMOTE_OPEN, location_id="loc-a", sender="cloud", body=body, now=NOW
    )
    where = topic("loc-a", Channel.CLOUD_COMMANDS)

    assert open_message(payload, where, keys=cloud_keys, now=NOW + timedelta(seconds=29))
    assert (
        reason(payload, where, keys=cloud_keys, now=NOW + timedelta(seconds=31))
        is RejectReason.EXPIRED
    )
    with pytest.raises(ValueError, match="at most"):
        seal(
            CLOUD,
            MessageType.REMOTE_OPEN,
            location_id="loc-a",
            sender="cloud",
            body=body,
            now=NOW,
            ttl=timedelta(minutes=5),
        )


def test_a_remote_open_signed_to_live_long_is_refused() -> None:
    body = RemoteOpenBody(command_id=uuid.uuid4(), door=5, reason="phone", requested_by="op-1")
    raw = json.loads(
        seal(
            CLOUD, MessageType.REMOTE_OPEN, location_id="loc-a", sender="cloud", body=body, now=NOW
        )
    )
    raw["expires_at"] = (NOW + timedelta(hours=1)).isoformat()
    resigned = json.dumps(CLOUD.seal({k: v for k, v in raw.items() if k != "sig"})).encode()

    assert (
        reason(resigned, topic("loc-a", Channel.CLOUD_COMMANDS), keys=cloud_keys)
        is RejectReason.TOO_LONG_LIVED
    )


def test_a_replayed_message_is_refused() -> None:
    guard = ReplayGuard()
    payload = events_from(KIOSK_A, "loc-a", "kiosk-a")
    where = topic("loc-a", Channel.KIOSK_EVENTS)
    open_message(payload, where, keys=kiosk_keys, now=NOW, replay_guard=guard)

    with pytest.raises(Rejected) as rejected:
        open_message(payload, where, keys=kiosk_keys, now=NOW, replay_guard=guard)

    assert rejected.value.reason is RejectReason.REPLAYED


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"{not json", RejectReason.MALFORMED_JSON),
        (b"\xff\xfe", RejectReason.MALFORMED_JSON),
        (b"[1, 2]", RejectReason.MALFORMED_JSON),
        (b'{"v": 2, "sig": "x"}', RejectReason.UNKNOWN_VERSION),
        (b'{"v": 1, "type": "events"}', RejectReason.UNSIGNED),
        (b'{"v": 1, "type": "events", "sig": "x"}', RejectReason.SCHEMA),
        (b"x" * (MAX_PAYLOAD_BYTES + 1), RejectReason.TOO_LARGE),
    ],
)
def test_hostile_payloads_are_rejected_with_a_reason(
    payload: bytes, expected: RejectReason
) -> None:
    assert reason(payload, topic("loc-a", Channel.KIOSK_EVENTS)) is expected


def test_a_body_that_breaks_its_schema_is_refused_even_when_signed() -> None:
    raw = {
        "v": 1,
        "type": "sync_request",
        "location_id": "loc-a",
        "sender": "kiosk-a",
        "message_id": str(uuid.uuid4()),
        "issued_at": NOW.isoformat(),
        "expires_at": (NOW + timedelta(minutes=1)).isoformat(),
        "body": {"since_revision": -1},
    }
    payload = json.dumps(KIOSK_A.seal(raw)).encode()

    assert reason(payload, topic("loc-a", Channel.KIOSK_SYNC)) is RejectReason.SCHEMA
    ok = seal(
        KIOSK_A,
        MessageType.SYNC_REQUEST,
        location_id="loc-a",
        sender="kiosk-a",
        body=SyncRequestBody(since_revision=0),
        now=NOW,
    )
    assert open_message(ok, topic("loc-a", Channel.KIOSK_SYNC), keys=kiosk_keys, now=NOW)


def test_topics_parse_back_and_subscriptions_cover_them() -> None:
    assert parse_topic(topic("loc-a", Channel.CLOUD_CHANGES)) == ("loc-a", Channel.CLOUD_CHANGES)
    assert parse_topic("locker/v1/loc-a/cloud/unknown") is None
    assert kiosk_subscription("loc-a") == "locker/v1/loc-a/cloud/#"
    assert CLOUD_SUBSCRIPTION == "$share/locker-cloud/locker/v1/+/kiosk/#"
    with pytest.raises(ValueError, match="location id"):
        topic("loc/a", Channel.CLOUD_CHANGES)


def test_keys_round_trip_through_pem_and_base64() -> None:
    signer = Signer.from_pem(KIOSK_A.private_pem())
    verifier = Verifier.from_base64(KIOSK_A.verifier.public_base64())
    verifier.verify(signer.seal({"a": 1}))
    with pytest.raises(SigningError):
        Verifier.from_base64("not-base64!")
    with pytest.raises(SigningError):
        Signer.from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_every_topic_and_message_type_is_in_the_protocol_doc(repo_root) -> None:  # type: ignore[no-untyped-def]
    doc = (repo_root / "docs" / "protocol.md").read_text(encoding="utf-8")

    missing = [c.value for c in Channel if f"`locker/v1/{{loc}}/{c.value}`" not in doc]
    missing += [t.value for t in MessageType if f"`{t.value}`" not in doc]
    missing += [r.value for r in RejectReason if f"`{r.value}`" not in doc]
    assert missing == []
    assert f"`{CLOUD_SUBSCRIPTION}`" in doc


def deeply_nested(depth: int) -> bytes:
    return b'{"v": 1, "sig": "x", "body": ' + b"[" * depth + b"]" * depth + b"}"


TOO_DEEP_OR_TOO_LONG = pytest.mark.parametrize(
    "payload",
    [
        deeply_nested(100_000),
        deeply_nested(MAX_JSON_DEPTH),  # with the envelope's own object, one level too deep
        b'{"v": 1, "body": ' + b'{"a":' * 5_000 + b"1" + b"}" * 5_000 + b"}",
        b'{"v": 1, "sig": "x", "body": {"n": ' + b"9" * 5_000 + b"}}",
        b'{"v": 1, "sig": "x", "body": {"n": -' + b"1" * (MAX_NUMBER_DIGITS + 1) + b"}}",
        b'{"v": 1, "sig": "x", "body": ' + b"[" * 40 + b"}",  # unbalanced
    ],
    ids=[
        "deep-100000",
        "deep-just-past",
        "deep-objects",
        "huge-int",
        "long-negative",
        "unbalanced",
    ],
)


@TOO_DEEP_OR_TOO_LONG
def test_too_deep_json_and_huge_numbers_are_refused_as_malformed(payload: bytes) -> None:
    assert reason(payload, topic("loc-a", Channel.KIOSK_EVENTS)) is RejectReason.MALFORMED_JSON


@TOO_DEEP_OR_TOO_LONG
def test_too_deep_json_and_huge_numbers_are_refused_before_parsing(
    payload: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def parse(*args: object, **kwargs: object) -> object:
        raise AssertionError("json.loads ran on a payload its bounds refuse")

    monkeypatch.setattr("shared.protocol.json.loads", parse)

    assert reason(payload, topic("loc-a", Channel.KIOSK_EVENTS)) is RejectReason.MALFORMED_JSON


def test_brackets_and_digits_inside_strings_do_not_count_against_the_bounds() -> None:
    text = '[{"\\"' + "[" * 200 + "9" * 200
    body = EventsBody(
        kiosk_id="kiosk-a",
        events=[
            EventRecord(
                sequence=1,
                event_id=uuid.uuid4(),
                type="parcel_deposited",
                created_at=NOW,
                payload={"note": text, "nested": [[[[{"door": 3}]]]]},
            )
        ],
    )
    payload = seal(
        KIOSK_A, MessageType.EVENTS, location_id="loc-a", sender="kiosk-a", body=body, now=NOW
    )

    message = open_message(payload, topic("loc-a", Channel.KIOSK_EVENTS), keys=kiosk_keys, now=NOW)

    assert isinstance(message.body, EventsBody)
    assert message.body.events[0].payload["note"] == text


def test_nesting_up_to_the_bound_is_parsed() -> None:
    payload = deeply_nested(MAX_JSON_DEPTH - 1)

    # Past the bounds check, it fails the schema like any other body that is not an envelope.
    assert reason(payload, topic("loc-a", Channel.KIOSK_EVENTS)) is RejectReason.SCHEMA


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", RejectReason.MALFORMED_JSON),
        (bytes(range(256)) * 64, RejectReason.MALFORMED_JSON),  # random-looking binary
        (b"[" * 100_000, RejectReason.MALFORMED_JSON),
        (b"  [1, 2]  ", RejectReason.MALFORMED_JSON),
        (b'{"v": 1, "junk": "' + b"x" * 200_000 + b'"}', RejectReason.UNSIGNED),
    ],
)
def test_cheap_junk_is_refused_on_its_raw_bytes(
    payload: bytes, expected: RejectReason, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 9: refused before the JSON parse (bench/junk_rejection_bench.py has the cost).
    def parse(*args: object, **kwargs: object) -> object:
        raise AssertionError("json.loads ran on junk its raw bytes refuse")

    monkeypatch.setattr("shared.protocol.json.loads", parse)
    assert reason(payload, topic("loc-a", Channel.KIOSK_EVENTS)) is expected


def test_a_real_envelope_passes_the_raw_shape_check() -> None:
    signer = Signer.generate()
    body = SyncRequestBody(since_revision=3)
    payload = seal(signer, MessageType.SYNC_REQUEST, location_id="loc-a", sender="k", body=body,
                   now=NOW)  # fmt: skip
    check_envelope_shape(payload)
    check_signature_field(payload)
    check_envelope_shape(b"\n " + json.dumps(json.loads(payload), indent=2).encode() + b"\n")
