"""The sync protocol's topics and messages, version 1 (see ``docs/protocol.md``).

Every MQTT payload is a signed envelope (`Envelope`) around a typed body. `seal` builds and signs
one; `open_message` is the single way in: it checks size, JSON, schema, version, topic, location,
sender, signature, freshness and replay, in that order, and raises `Rejected` with a
machine-readable reason for the first check that fails. Nothing is applied from a message that
did not come out of `open_message`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.signing import Signer, SigningError, Verifier
from shared.sizes import Size
from shared.states import AllocationStatus

PROTOCOL_VERSION = 1
MAX_PAYLOAD_BYTES = 262_144
TOPIC_ROOT = "locker/v1"
CLOUD_SENDER = "cloud"
CLOCK_SKEW = timedelta(seconds=60)
SHARED_GROUP = "locker-cloud"
# The deepest a protocol message nests is about six levels (envelope, body, changes, a change, its
# allocation); and no field holds a number of more than about twenty digits. Anything past these
# bounds is refused before `json.loads`, whose C scanner would otherwise recurse until a
# RecursionError, or build an integer of thousands of digits (quadratic) before failing.
MAX_JSON_DEPTH = 32
MAX_NUMBER_DIGITS = 40
_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

MAX_KIOSKS_PER_LOCATION = 4
"""issue 9: kiosks registered (and not revoked) at one location at once. Each adds its own code
hash to every allocation the cloud sends (up to 134 bytes with a 64-character id), which bounds
an allocation's size on the wire (`shared.snapshot_parts.PART_ALLOCATION_BYTES`)."""


class Channel(StrEnum):
    """The part of a topic after ``locker/v1/{location}/``."""

    CLOUD_CHANGES = "cloud/changes"
    CLOUD_ACKS = "cloud/acks"
    CLOUD_COMMANDS = "cloud/commands"
    KIOSK_SYNC = "kiosk/sync"
    KIOSK_EVENTS = "kiosk/events"
    KIOSK_PRESENCE = "kiosk/presence"
    KIOSK_HEARTBEAT = "kiosk/heartbeat"

    @property
    def from_cloud(self) -> bool:
        return self.value.startswith("cloud/")


class MessageType(StrEnum):
    CHANGES = "changes"
    SNAPSHOT = "snapshot"
    ACK = "ack"
    REMOTE_OPEN = "remote_open"
    SYNC_REQUEST = "sync_request"
    EVENTS = "events"
    BIRTH = "birth"
    DEATH = "death"
    HEARTBEAT = "heartbeat"
    SNAPSHOT_PART = "snapshot_part"
    # Issue 9: the cloud asks a kiosk to make its next signing key (`kiosk.sync.key_rotation`).
    ROTATE_KEY = "rotate_key"


CHANNEL_TYPES: dict[Channel, frozenset[MessageType]] = {
    Channel.CLOUD_CHANGES: frozenset(
        {MessageType.CHANGES, MessageType.SNAPSHOT, MessageType.SNAPSHOT_PART}
    ),
    Channel.CLOUD_ACKS: frozenset({MessageType.ACK}),
    Channel.CLOUD_COMMANDS: frozenset({MessageType.REMOTE_OPEN, MessageType.ROTATE_KEY}),
    Channel.KIOSK_SYNC: frozenset({MessageType.SYNC_REQUEST}),
    Channel.KIOSK_EVENTS: frozenset({MessageType.EVENTS}),
    Channel.KIOSK_PRESENCE: frozenset({MessageType.BIRTH, MessageType.DEATH}),
    Channel.KIOSK_HEARTBEAT: frozenset({MessageType.HEARTBEAT}),
}

# How long a message of each type may claim to live (expires_at - issued_at).
MAX_LIFETIME: dict[MessageType, timedelta] = {
    MessageType.REMOTE_OPEN: timedelta(seconds=30),
    MessageType.DEATH: timedelta(days=1),
}
DEFAULT_MAX_LIFETIME = timedelta(hours=1)


def topic(location_id: str, channel: Channel) -> str:
    """The topic of ``channel`` at a location.

    Raises:
        ValueError: the location id is not 1-64 of ``A-Z a-z 0-9 . _ -``.
    """
    if not _ID.match(location_id):
        raise ValueError(f"not a valid location id for a topic: {location_id!r}")
    return f"{TOPIC_ROOT}/{location_id}/{channel.value}"


def parse_topic(name: str) -> tuple[str, Channel] | None:
    """The location and channel of a protocol topic, or None for any other topic."""
    parts = name.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT or not _ID.match(parts[2]):
        return None
    try:
        return parts[2], Channel("/".join(parts[3:]))
    except ValueError:
        return None


def kiosk_subscription(location_id: str) -> str:
    """What a kiosk subscribes to: every cloud channel of its location."""
    return f"{TOPIC_ROOT}/{location_id}/cloud/#"


CLOUD_SUBSCRIPTION = f"$share/{SHARED_GROUP}/{TOPIC_ROOT}/+/kiosk/#"
"""What cloud workers subscribe to: every kiosk's messages, split among the workers."""


# Bodies. Models are strict about shape: unknown fields are a schema error, not ignored.


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AllocationState(_Body):
    """An allocation as the kiosk must know it."""

    allocation_id: Annotated[str, Field(min_length=1, max_length=64)]
    kind: Literal["delivery", "return"]
    barcode: Annotated[str, Field(min_length=1, max_length=128)]
    size: Size
    status: AllocationStatus
    proposed_door: Annotated[int, Field(gt=0)] | None = None
    code_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    reservation_expires_at: AwareDatetime | None = None
    pickup_expires_at: AwareDatetime | None = None
    order_id: Annotated[str, Field(max_length=128)] | None = None
    return_reason: Annotated[str, Field(max_length=500)] | None = None
    # issue 11: whose parcel it is, so that a courier collects only their own carrier's.
    carrier_id: Annotated[str, Field(pattern=_ID.pattern)] | None = None
    # issue 9: one code secret per kiosk. The change log is per location, so an allocation
    # carries its code's hash under each registered kiosk's own secret, by kiosk id; a kiosk
    # takes its own entry only (`code_hash_for`). ``code_hash`` stays for a kiosk that predates
    # per-kiosk secrets (the location's newest kiosk's hash).
    code_hashes: (
        Annotated[
            dict[
                Annotated[str, Field(pattern=_ID.pattern)],
                Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")],
            ],
            Field(max_length=MAX_KIOSKS_PER_LOCATION),
        ]
        | None
    ) = None
    # issue 9, code-secret rotation: the generation of each kiosk's secret its entry of
    # ``code_hashes`` is under (absent: generation 1, the provisioned secret). A live code keeps
    # the generation it was issued under until it ends (`shared.code_secret_exchange`).
    code_generations: (
        Annotated[
            dict[Annotated[str, Field(pattern=_ID.pattern)], Annotated[int, Field(ge=1)]],
            Field(max_length=MAX_KIOSKS_PER_LOCATION),
        ]
        | None
    ) = None

    def code_hash_for(self, kiosk_id: str) -> str | None:
        """The code's hash under ``kiosk_id``'s own secret (None: none was sent for it).

        With ``code_hashes`` present, a kiosk missing from it gets None, never another kiosk's
        hash (which it could not verify): its store then waits for a snapshot hashed for it.
        """
        if self.code_hashes is None:
            return self.code_hash
        return self.code_hashes.get(kiosk_id)

    def code_generation_for(self, kiosk_id: str) -> int:
        """The generation of ``kiosk_id``'s code secret its hash is under (1 when not sent)."""
        return (self.code_generations or {}).get(kiosk_id, 1)


class AllocationChange(_Body):
    revision: Annotated[int, Field(gt=0)]
    kind: Literal["allocation"] = "allocation"
    allocation: AllocationState


class MaintenanceChange(_Body):
    revision: Annotated[int, Field(gt=0)]
    kind: Literal["door_maintenance"] = "door_maintenance"
    door: Annotated[int, Field(gt=0)]
    on: bool
    reason: Annotated[str, Field(max_length=500)] | None = None


# issue 10: door labels.
DoorLabel = Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,8}$")]


class DoorLabelChange(_Body):
    """A door's label ("A1", "B5"): what the kiosk shows for the door."""

    revision: Annotated[int, Field(gt=0)]
    kind: Literal["door_label"] = "door_label"
    door: Annotated[int, Field(gt=0)]
    label: DoorLabel


class DoorLabelState(_Body):
    door: Annotated[int, Field(gt=0)]
    label: DoorLabel


class DoorAccessChange(_Body):
    """issue 10: a door flagged within reach (``accessible``), or no longer: a drop-off the kiosk
    moves out of an accessible door goes to another accessible one."""

    revision: Annotated[int, Field(gt=0)]
    kind: Literal["door_access"] = "door_access"
    door: Annotated[int, Field(gt=0)]
    accessible: bool


# issue 11: the people who may sign in at the kiosk, provisioned by the cloud (`shared.people`).
_Name = Annotated[str, Field(min_length=1, max_length=80)]
_Salt = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
_Hash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
CourierPermissionName = Literal["drop_off", "collect_expired", "collect_returns"]


class StaffState(_Body):
    """A staff member: their PIN as its scrypt hash under ``salt``; ``revoked`` stops sign-in."""

    staff_id: Annotated[str, Field(pattern=_ID.pattern)]
    name: _Name
    pin_hash: _Hash
    salt: _Salt
    revoked: bool = False


class StaffChange(StaffState):
    revision: Annotated[int, Field(gt=0)]
    kind: Literal["staff"] = "staff"


class CourierState(_Body):
    """A carrier's driver: their courier code as its scrypt hash, and what they may do."""

    courier_id: Annotated[str, Field(pattern=_ID.pattern)]
    name: _Name
    carrier_id: Annotated[str, Field(pattern=_ID.pattern)]
    code_hash: _Hash
    salt: _Salt
    permissions: Annotated[list[CourierPermissionName], Field(max_length=3)]
    revoked: bool = False


class CourierChange(CourierState):
    revision: Annotated[int, Field(gt=0)]
    kind: Literal["courier"] = "courier"


class CodeSecretRotationChange(_Body):
    """issue 9: the cloud asks kiosk ``kiosk_id`` to make generation ``generation`` of its code
    secret, from the cloud's X25519 public half (`shared.code_secret_exchange`); other kiosks of
    the location skip it. The kiosk answers with a ``code_secret_rotated`` event."""

    revision: Annotated[int, Field(gt=0)]
    kind: Literal["code_secret_rotation"] = "code_secret_rotation"
    kiosk_id: Annotated[str, Field(pattern=_ID.pattern)]
    generation: Annotated[int, Field(ge=2)]
    cloud_public: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class CodeSecretRotationState(_Body):
    """A rotation request still waiting for its kiosk's answer, as a snapshot lists it."""

    kiosk_id: Annotated[str, Field(pattern=_ID.pattern)]
    generation: Annotated[int, Field(ge=2)]
    cloud_public: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


Change = Annotated[
    AllocationChange
    | MaintenanceChange
    | DoorLabelChange
    | DoorAccessChange
    | StaffChange
    | CourierChange
    | CodeSecretRotationChange,
    Field(discriminator="kind"),
]


class ChangesBody(_Body):
    from_revision: Annotated[int, Field(ge=0)]
    to_revision: Annotated[int, Field(gt=0)]
    changes: Annotated[list[Change], Field(max_length=500)]


class MaintenanceState(_Body):
    door: Annotated[int, Field(gt=0)]
    reason: Annotated[str, Field(max_length=500)] | None = None


class SnapshotBody(_Body):
    revision: Annotated[int, Field(ge=0)]
    allocations: list[AllocationState]
    maintenance: list[MaintenanceState]
    labels: list[DoorLabelState] = []  # issue 10: every door's label
    # issue 10: the numbers of the doors flagged within reach (every other door is not).
    accessible_doors: list[Annotated[int, Field(gt=0)]] = []
    staff: list[StaffState] = []  # issue 11: every staff member not revoked
    couriers: list[CourierState] = []  # issue 11: every courier not revoked
    # issue 9: code-secret rotation requests not answered yet (`CodeSecretRotationChange`).
    code_secret_rotations: list[CodeSecretRotationState] = []


MAX_SNAPSHOT_PARTS = 10_000
"""The most parts one snapshot may be split into (about 2.5 million allocations)."""


class SnapshotPartBody(_Body):
    """One part of a snapshot too large for one message (``docs/protocol.md``, "snapshot_part").

    Every part is a message of its own, signed; the parts of one snapshot share its
    ``snapshot_id`` and ``revision`` and are numbered ``1..parts``. The kiosk applies the
    snapshot only once it holds every part (PowerSync's rule: a checkpoint is applied complete
    or not at all), as one `SnapshotBody` of all their allocations and maintenance.
    """

    snapshot_id: uuid.UUID
    revision: Annotated[int, Field(ge=0)]
    part: Annotated[int, Field(ge=1, le=MAX_SNAPSHOT_PARTS)]
    parts: Annotated[int, Field(ge=1, le=MAX_SNAPSHOT_PARTS)]
    allocations: list[AllocationState]
    maintenance: list[MaintenanceState]
    labels: list[DoorLabelState] = []  # every door's label, in part 1 (as maintenance)
    accessible_doors: list[Annotated[int, Field(gt=0)]] = []  # in part 1 (as labels)
    staff: list[StaffState] = []  # issue 11: in part 1, as labels
    couriers: list[CourierState] = []  # issue 11: in part 1, as labels
    code_secret_rotations: list[CodeSecretRotationState] = []  # issue 9, in part 1

    @model_validator(mode="after")
    def _part_within_parts(self) -> SnapshotPartBody:
        if self.part > self.parts:
            raise ValueError(f"part {self.part} of {self.parts}")
        return self


class AckBody(_Body):
    kiosk_id: Annotated[str, Field(pattern=_ID.pattern)]
    through_sequence: Annotated[int, Field(ge=0)]
    # The store incarnation whose sequence numbers this counts (see `EventsBody`); a kiosk
    # ignores an ack for another incarnation (one meant for the store it replaced).
    incarnation: uuid.UUID | None = None


class RemoteOpenBody(_Body):
    command_id: uuid.UUID
    door: Annotated[int, Field(gt=0)]
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    requested_by: Annotated[str, Field(min_length=1, max_length=128)]


class RotateKeyBody(_Body):
    """Make your next signing key and announce it (``signing_key_rotated``): issue 9."""

    kiosk_id: Annotated[str, Field(pattern=_ID.pattern)]
    requested_by: Annotated[str, Field(min_length=1, max_length=128)]


class SyncRequestBody(_Body):
    since_revision: Annotated[int, Field(ge=0)]


class EventRecord(_Body):
    """One kiosk event. Its type and payload are checked per event (`shared.events`), not
    here, so that one event the cloud cannot read does not make it drop the whole message.
    ``version`` is the payload schema's version; kiosks from before versions send none (1).
    """

    sequence: Annotated[int, Field(gt=0)]
    event_id: uuid.UUID
    type: Annotated[str, Field(min_length=1, max_length=64)]
    version: int = 1
    created_at: AwareDatetime
    payload: dict[str, Any]


class EventsBody(_Body):
    kiosk_id: Annotated[str, Field(pattern=_ID.pattern)]
    events: Annotated[list[EventRecord], Field(min_length=1, max_length=100)]
    # The kiosk store's incarnation: a random id made with the store. A kiosk whose store was
    # replaced (a new SD card) starts its sequence again at 1 under a new incarnation, and the
    # cloud counts that incarnation's sequences after the old one's. None: a kiosk from before
    # incarnations (its one store).
    incarnation: uuid.UUID | None = None


class BirthBody(_Body):
    kiosk_id: Annotated[str, Field(pattern=_ID.pattern)]
    epoch: Annotated[int, Field(gt=0)]
    firmware: Annotated[str, Field(max_length=64)]
    last_revision: Annotated[int, Field(ge=0)]


class DeathBody(_Body):
    kiosk_id: Annotated[str, Field(pattern=_ID.pattern)]
    epoch: Annotated[int, Field(gt=0)]


class HeartbeatBody(_Body):
    kiosk_id: Annotated[str, Field(pattern=_ID.pattern)]
    epoch: Annotated[int, Field(gt=0)]
    door_faults: dict[str, str]
    outbox_depth: Annotated[int, Field(ge=0)]
    last_revision: Annotated[int, Field(ge=0)]
    disk_free_bytes: Annotated[int, Field(ge=0)]
    board_error: str | None = None


Body = (
    ChangesBody
    | SnapshotBody
    | AckBody
    | RemoteOpenBody
    | SyncRequestBody
    | EventsBody
    | BirthBody
    | DeathBody
    | HeartbeatBody
    | SnapshotPartBody
    | RotateKeyBody
)

BODY_MODELS: dict[MessageType, type[_Body]] = {
    MessageType.CHANGES: ChangesBody,
    MessageType.SNAPSHOT: SnapshotBody,
    MessageType.ACK: AckBody,
    MessageType.REMOTE_OPEN: RemoteOpenBody,
    MessageType.SYNC_REQUEST: SyncRequestBody,
    MessageType.EVENTS: EventsBody,
    MessageType.BIRTH: BirthBody,
    MessageType.DEATH: DeathBody,
    MessageType.HEARTBEAT: HeartbeatBody,
    MessageType.SNAPSHOT_PART: SnapshotPartBody,
    MessageType.ROTATE_KEY: RotateKeyBody,
}


class Envelope(BaseModel):
    """The signed wrapper of every message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int
    type: MessageType
    location_id: Annotated[str, Field(pattern=_ID.pattern)]
    sender: Annotated[str, Field(pattern=_ID.pattern)]
    message_id: uuid.UUID
    issued_at: AwareDatetime
    expires_at: AwareDatetime
    body: dict[str, Any]
    sig: Annotated[str, Field(min_length=1)]


class RejectReason(StrEnum):
    TOO_LARGE = "too_large"
    MALFORMED_JSON = "malformed_json"
    UNKNOWN_VERSION = "unknown_version"
    SCHEMA = "schema"
    WRONG_TOPIC = "wrong_topic"
    WRONG_LOCATION = "wrong_location"
    UNKNOWN_SENDER = "unknown_sender"
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    TOO_LONG_LIVED = "too_long_lived"
    REPLAYED = "replayed"


class Rejected(Exception):
    """A message that must not be applied, with why (log it; never crash on it)."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Message:
    """A message that passed every check."""

    envelope: Envelope
    body: Body
    location_id: str
    channel: Channel

    @property
    def type(self) -> MessageType:
        return self.envelope.type

    @property
    def sender(self) -> str:
        return self.envelope.sender


KeyResolver = Callable[[str, str], Verifier | None]
"""(location id, sender) -> the sender's verifier, or None if that sender may not speak there."""


class ReplayGuard:
    """Remembers message ids until they expire, so a captured message cannot be played again.

    In memory: after a restart only expiry protects, which is why commands that open doors live
    30 s at most and are also recorded durably by the kiosk.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self._seen: dict[uuid.UUID, datetime] = {}
        self._max = max_entries

    def check_and_remember(
        self, message_id: uuid.UUID, expires_at: datetime, now: datetime
    ) -> bool:
        """True the first time an unexpired id is seen; False for a repeat."""
        if message_id in self._seen:
            return False
        if len(self._seen) >= self._max:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
        self._seen[message_id] = expires_at
        return True


def seal(
    signer: Signer,
    message_type: MessageType,
    *,
    location_id: str,
    sender: str,
    body: _Body,
    now: datetime,
    ttl: timedelta | None = None,
) -> bytes:
    """A signed payload ready to publish.

    Raises:
        ValueError: ``body`` is not the model of ``message_type``, or ``ttl`` exceeds the type's
            maximum lifetime.
    """
    if not isinstance(body, BODY_MODELS[message_type]):
        raise ValueError(f"a {message_type} message needs a {BODY_MODELS[message_type].__name__}")
    lifetime = ttl or MAX_LIFETIME.get(message_type, DEFAULT_MAX_LIFETIME)
    if lifetime > MAX_LIFETIME.get(message_type, DEFAULT_MAX_LIFETIME):
        raise ValueError(f"a {message_type} message lives at most {MAX_LIFETIME[message_type]}")
    envelope = {
        "v": PROTOCOL_VERSION,
        "type": message_type.value,
        "location_id": location_id,
        "sender": sender,
        "message_id": str(uuid.uuid4()),
        "issued_at": now.astimezone(UTC).isoformat(),
        "expires_at": (now + lifetime).astimezone(UTC).isoformat(),
        "body": _wire_body(body),
    }
    return json.dumps(signer.seal(envelope), separators=(",", ":")).encode()


# Fields added after version 1 shipped: left out of the payload when unset, so that a receiver
# from before them (whose bodies forbid unknown fields) still reads the message.
_OMITTED_WHEN_NONE = frozenset({"incarnation"})


def _wire_body(body: _Body) -> dict[str, Any]:
    dumped = body.model_dump(mode="json")
    return {k: v for k, v in dumped.items() if v is not None or k not in _OMITTED_WHEN_NONE}


def open_message(
    payload: bytes,
    topic_name: str,
    *,
    keys: KeyResolver,
    now: datetime,
    replay_guard: ReplayGuard | None = None,
) -> Message:
    """Checks a received payload and returns it as a `Message`.

    Raises:
        Rejected: the first check that failed, with its reason.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Rejected(RejectReason.TOO_LARGE, f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    where = parse_topic(topic_name)
    if where is None:
        raise Rejected(RejectReason.WRONG_TOPIC, f"not a protocol topic: {topic_name!r}")
    location_id, channel = where
    check_envelope_shape(payload)
    check_json_bounds(payload)
    check_signature_field(payload)
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Rejected(RejectReason.MALFORMED_JSON, str(error)) from None
    if not isinstance(raw, dict):
        raise Rejected(RejectReason.MALFORMED_JSON, "the payload is not a JSON object")
    if raw.get("v") != PROTOCOL_VERSION:
        raise Rejected(RejectReason.UNKNOWN_VERSION, f"version {raw.get('v')!r} is not supported")
    if "sig" not in raw:
        raise Rejected(RejectReason.UNSIGNED, "the message has no signature")
    try:
        envelope = Envelope.model_validate(raw)
    except ValidationError as error:
        raise Rejected(RejectReason.SCHEMA, _first_error(error)) from None
    if envelope.type not in CHANNEL_TYPES[channel]:
        raise Rejected(RejectReason.WRONG_TOPIC, f"a {envelope.type} message on {channel}")
    if envelope.location_id != location_id:
        raise Rejected(
            RejectReason.WRONG_LOCATION,
            f"signed for {envelope.location_id!r}, published on {location_id!r}",
        )
    if channel.from_cloud != (envelope.sender == CLOUD_SENDER):
        raise Rejected(RejectReason.UNKNOWN_SENDER, f"{envelope.sender!r} may not use {channel}")
    verifier = keys(location_id, envelope.sender)
    if verifier is None:
        raise Rejected(
            RejectReason.UNKNOWN_SENDER, f"{envelope.sender!r} is not a sender for {location_id!r}"
        )
    try:
        verifier.verify(raw)
    except SigningError as error:
        raise Rejected(RejectReason.BAD_SIGNATURE, str(error)) from None
    _check_times(envelope, now)
    try:
        body = BODY_MODELS[envelope.type].model_validate(envelope.body)
    except ValidationError as error:
        raise Rejected(RejectReason.SCHEMA, _first_error(error)) from None
    kiosk_id = getattr(body, "kiosk_id", None)
    if kiosk_id is not None and not channel.from_cloud and kiosk_id != envelope.sender:
        raise Rejected(RejectReason.UNKNOWN_SENDER, f"{envelope.sender!r} wrote for {kiosk_id!r}")
    if replay_guard is not None and not replay_guard.check_and_remember(
        envelope.message_id, envelope.expires_at, now
    ):
        raise Rejected(RejectReason.REPLAYED, f"message {envelope.message_id} was seen before")
    return Message(envelope, body, location_id, channel)  # type: ignore[arg-type]


# A JSON string: a quote, then runs of plain characters or escapes, then a quote. Written as an
# unrolled loop so that the regex engine never backtracks on a long string.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST = re.compile(rb"\[\]|\{\}")
_LONG_NUMBER = re.compile(rb"[0-9]{%d,}" % (MAX_NUMBER_DIGITS + 1))


_WHITESPACE = b" \t\r\n"


def check_envelope_shape(payload: bytes) -> None:
    """Refuses, on the raw bytes, what cannot be an envelope, before any scan or parse.

    Junk admitted under the rate limits (`shared.flood_gate`) would otherwise cost a bounds scan
    and a JSON parse each (twice in the cloud worker, which peeks at the sender first). This is
    two C-level byte operations whatever the size: the payload must be a JSON object (its first
    and last non-blank bytes ``{`` and ``}``).

    Raises:
        Rejected: ``malformed_json``.
    """
    body = payload.strip(_WHITESPACE)
    if not body.startswith(b"{") or not body.endswith(b"}"):
        raise Rejected(RejectReason.MALFORMED_JSON, "the payload is not a JSON object")


def check_signature_field(payload: bytes) -> None:
    """Refuses, on the raw bytes, a payload with no ``"sig"`` key, before it is parsed (every
    envelope is signed; a sender must not spell the key with unicode escapes). Run after
    `check_json_bounds`, so that too-deep JSON is still ``malformed_json`` whatever it holds.

    Raises:
        Rejected: ``unsigned``.
    """
    if b'"sig"' not in payload:
        raise Rejected(RejectReason.UNSIGNED, "the message has no signature")


def check_json_bounds(payload: bytes) -> None:
    """Refuses JSON nested deeper than `MAX_JSON_DEPTH` or with a number of more than
    `MAX_NUMBER_DIGITS` digits, in linear time and without recursion.

    Strings are cut out first (brackets and digits inside them are text); what is left is
    structure and scalars. The depth is found by removing innermost empty pairs of brackets once
    per level: a payload still holding brackets after `MAX_JSON_DEPTH` rounds nests deeper (or is
    unbalanced, which is malformed too).

    Raises:
        Rejected: ``malformed_json``, saying which bound was passed.
    """
    outside_strings = _JSON_STRING.sub(b'""', payload)
    if _LONG_NUMBER.search(outside_strings):
        raise Rejected(
            RejectReason.MALFORMED_JSON, f"a number of more than {MAX_NUMBER_DIGITS} digits"
        )
    brackets = outside_strings.translate(None, _NOT_A_BRACKET)
    for _ in range(MAX_JSON_DEPTH):
        if not brackets:
            return
        brackets = _INNERMOST.sub(b"", brackets)
    if brackets:
        raise Rejected(
            RejectReason.MALFORMED_JSON,
            f"nested deeper than {MAX_JSON_DEPTH} levels (or brackets do not balance)",
        )


def _check_times(envelope: Envelope, now: datetime) -> None:
    if envelope.expires_at <= now:
        raise Rejected(RejectReason.EXPIRED, f"expired at {envelope.expires_at.isoformat()}")
    if envelope.issued_at > now + CLOCK_SKEW:
        raise Rejected(RejectReason.NOT_YET_VALID, f"issued at {envelope.issued_at.isoformat()}")
    allowed = MAX_LIFETIME.get(envelope.type, DEFAULT_MAX_LIFETIME)
    if envelope.expires_at - envelope.issued_at > allowed:
        raise Rejected(RejectReason.TOO_LONG_LIVED, f"a {envelope.type} lives at most {allowed}")


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "message"
    return f"{where}: {first['msg']}"
