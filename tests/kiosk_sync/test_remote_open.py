"""A remote open from the cloud opens its door once; replays open nothing, even after a restart."""

from __future__ import annotations

import uuid

import pytest

from kiosk.monitor import record_reading
from kiosk.store import outbox
from kiosk.store.records import EventType
from shared.protocol import Channel, MessageType, RemoteOpenBody

from .conftest import Rig, eventually


def remote_open(door: int, command_id: uuid.UUID | None = None) -> RemoteOpenBody:
    return RemoteOpenBody(
        command_id=command_id or uuid.uuid4(),
        door=door,
        reason="customer on the phone",
        requested_by="op-3",
    )


async def shut(rig: Rig, door: int) -> None:
    """The door is pushed shut and the monitor records it (its operation completes)."""
    kiosk = rig.kiosk
    kiosk.bank.close(door)
    states = await kiosk.bank.read_states()
    record_reading(kiosk.ctx, door, states[door])


async def test_a_remote_open_opens_once_and_no_replay_opens_again(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    kiosk, cloud = rig.kiosk, rig.cloud
    sync = kiosk.start()
    await eventually(lambda: kiosk.connected)
    command = remote_open(3)
    payload = await cloud.send(MessageType.REMOTE_OPEN, command)
    await eventually(lambda: kiosk.bank.pulses(3) == 1)
    await eventually(
        lambda: any(e.type is EventType.DOOR_OPENED for e in outbox.events(kiosk.store.db))
    )
    opened = next(e for e in outbox.events(kiosk.store.db) if e.type is EventType.DOOR_OPENED)
    assert opened.payload["actor"] == "remote"
    await shut(rig, 3)  # the door is free again: only the record of the command stops a replay

    # The same message again: the replay guard drops it.
    await cloud.publish_raw(Channel.CLOUD_COMMANDS, payload)
    await eventually(lambda: sync.status.rejected["replayed"] == 1)
    # The same command id in a new, validly signed message: the stored command id stops it.
    await cloud.send(MessageType.REMOTE_OPEN, remote_open(3, command.command_id))
    await eventually(lambda: caplog.text.count("repeated") == 1)

    # After a restart the replay guard is empty; the stored command id is not.
    sync = await kiosk.restart()
    await eventually(lambda: kiosk.connected)
    await cloud.publish_raw(Channel.CLOUD_COMMANDS, payload)
    await eventually(lambda: caplog.text.count("repeated") == 2)
    assert kiosk.bank.pulses(3) == 1


async def test_a_remote_open_the_kiosk_refuses_is_recorded_and_reported(rig: Rig) -> None:
    kiosk, cloud = rig.kiosk, rig.cloud
    kiosk.start()
    await eventually(lambda: kiosk.connected)
    command = remote_open(42)  # no such door here
    await cloud.send(MessageType.REMOTE_OPEN, command)

    def refused() -> list[dict[str, object]]:
        return [
            m.body.model_dump(mode="json")["events"][0]["payload"]  # type: ignore[union-attr]
            for m in cloud.of_type(MessageType.EVENTS)
            if m.body.events[0].type == "remote_open_refused"  # type: ignore[union-attr]
        ]

    await eventually(refused)
    assert refused()[0] == {
        "command_id": str(command.command_id),
        "door": 42,
        "reason": "unknown_door",
        "requested_by": "op-3",
    }
