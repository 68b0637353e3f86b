"""Bad messages on the kiosk's topics are rejected with a logged reason and change nothing.

Each is injected with a raw client, as an attacker with access to the broker (or a confused
peer) could; the kiosk stays up and applies the next valid message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from kiosk.store import allocations
from shared.protocol import AllocationChange, ChangesBody, Channel, MessageType, SnapshotBody
from shared.signing import Signer

from .conftest import Cloud, Rig, allocation, eventually

BODY = ChangesBody(
    from_revision=0,
    to_revision=1,
    changes=[AllocationChange(revision=1, allocation=allocation("a1", door=1))],
)


def forged(cloud: Cloud) -> tuple[Channel, bytes]:
    impostor = Cloud(cloud.host, cloud.port, cloud.location_id, cloud.kiosk_id, cloud.kiosk_signer)
    impostor.signer = Signer.generate()
    return Channel.CLOUD_CHANGES, impostor.sealed(MessageType.CHANGES, BODY)


def expired(cloud: Cloud) -> tuple[Channel, bytes]:
    sent = datetime.now(UTC) - timedelta(hours=2)
    return Channel.CLOUD_CHANGES, cloud.sealed(MessageType.CHANGES, BODY, now=sent)


def from_the_future(cloud: Cloud) -> tuple[Channel, bytes]:
    sent = datetime.now(UTC) + timedelta(minutes=10)
    return Channel.CLOUD_CHANGES, cloud.sealed(MessageType.CHANGES, BODY, now=sent)


def unsigned(cloud: Cloud) -> tuple[Channel, bytes]:
    envelope = json.loads(cloud.sealed(MessageType.CHANGES, BODY))
    del envelope["sig"]
    return Channel.CLOUD_CHANGES, json.dumps(envelope).encode()


def tampered(cloud: Cloud) -> tuple[Channel, bytes]:
    envelope = json.loads(cloud.sealed(MessageType.CHANGES, BODY))
    envelope["body"]["changes"][0]["allocation"]["proposed_door"] = 2
    return Channel.CLOUD_CHANGES, json.dumps(envelope).encode()


def wrong_location(cloud: Cloud) -> tuple[Channel, bytes]:
    # Validly signed by the cloud, for another location, and published on this one's topic.
    return Channel.CLOUD_CHANGES, cloud.sealed(MessageType.CHANGES, BODY, location_id="loc-other")


def kiosk_as_sender(cloud: Cloud) -> tuple[Channel, bytes]:
    payload = Cloud(
        cloud.host,
        cloud.port,
        cloud.location_id,
        cloud.kiosk_id,
        cloud.kiosk_signer,
        signer=cloud.kiosk_signer,
    ).sealed(MessageType.CHANGES, BODY, sender=cloud.kiosk_id)
    return Channel.CLOUD_CHANGES, payload


def oversized(cloud: Cloud) -> tuple[Channel, bytes]:
    states = [allocation(f"a{i}-" + "x" * 50, door=None) for i in range(1200)]
    body = SnapshotBody(revision=5, allocations=states, maintenance=[])
    payload = cloud.sealed(MessageType.SNAPSHOT, body)
    assert len(payload) > 262_144
    return Channel.CLOUD_CHANGES, payload


def wrong_topic(cloud: Cloud) -> tuple[Channel, bytes]:
    return Channel.CLOUD_COMMANDS, cloud.sealed(MessageType.CHANGES, BODY)


def malformed(cloud: Cloud) -> tuple[Channel, bytes]:
    return Channel.CLOUD_CHANGES, b'{"v": 1, "type": "changes", '


CASES: dict[str, tuple[Callable[[Cloud], tuple[Channel, bytes]], str]] = {
    "forged": (forged, "bad_signature"),
    "tampered": (tampered, "bad_signature"),
    "expired": (expired, "expired"),
    "from_the_future": (from_the_future, "not_yet_valid"),
    "unsigned": (unsigned, "unsigned"),
    "wrong_location": (wrong_location, "wrong_location"),
    "kiosk_as_sender": (kiosk_as_sender, "unknown_sender"),
    "oversized": (oversized, "too_large"),
    "wrong_topic": (wrong_topic, "wrong_topic"),
    "malformed": (malformed, "malformed_json"),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_bad_message_is_rejected_with_its_reason_and_changes_nothing(
    rig: Rig, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    make, reason = CASES[case]
    kiosk, cloud = rig.kiosk, rig.cloud
    sync = kiosk.start()
    await eventually(lambda: kiosk.connected)
    channel, payload = make(cloud)
    await cloud.publish_raw(channel, payload)
    await eventually(lambda: sync.status.rejected[reason] == 1)
    assert f"rejected a message on locker/v1/{kiosk.identity.location_id}/" in caplog.text
    assert reason in caplog.text
    assert kiosk.last_revision == 0
    assert allocations.list_allocations(kiosk.store.db) == []

    # The kiosk carries on: the next valid message applies.
    await cloud.send(MessageType.CHANGES, BODY)
    await eventually(lambda: kiosk.last_revision == 1)
    assert sync.status.connected


async def test_a_flood_is_dropped_unread_with_one_log_line_and_the_real_change_follows(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    kiosk, cloud = rig.kiosk, rig.cloud
    cloud.answer_sync_requests = True
    # 1/s past the burst of 1,000: at the default 100/s a loaded machine, taking 20 s or more
    # over the 3,000 messages, let nearly all of them through to be parsed.
    sync = kiosk.start(rate_limit_per_s=1.0)
    await eventually(lambda: kiosk.connected)
    started = time.monotonic()
    for n in range(3_000):
        await cloud.publish_raw(Channel.CLOUD_CHANGES, b"junk %d" % n)
    await eventually(lambda: sync.status.rejected["rate_limited"] >= 1_000)
    await eventually(lambda: sync.status.rejected["malformed_json"] >= 1_000)

    # The real change, right behind the junk: dropped with it, or read; either way it is
    # applied, at the latest by the sync request the kiosk sends once the flood is over.
    await cloud.changes(1, allocation("a1", door=1))
    await eventually(lambda: kiosk.last_revision == 1, timeout_s=5)

    floods = [r for r in caplog.records if "flood on a cloud topic" in r.getMessage()]
    # One line per 10 s of flood (a slow machine may take more than 10 s over it), not 3,000.
    allowed = 1 + int((time.monotonic() - started) // 10)
    assert 1 <= len(floods) <= allowed, [r.getMessage() for r in floods]
    # Every junk message is accounted for (and the real change, if it was dropped too).
    seen = sync.status.rejected["malformed_json"] + sync.status.rejected["rate_limited"]
    assert seen in (3_000, 3_001)
