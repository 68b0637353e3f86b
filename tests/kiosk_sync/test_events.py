"""Kiosk to cloud over the broker: outbox events go out in order, again until acknowledged."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from kiosk.store import meta, outbox
from shared.events import DoorClosed
from shared.protocol import AckBody, EventsBody, MessageType

from .conftest import Rig, eventually


def write_events(rig: Rig, count: int) -> None:
    with rig.kiosk.store.transaction() as db:
        for door in range(count):
            outbox.append_event(db, DoorClosed(door=door % 5 + 1), datetime.now(UTC))


def published(rig: Rig) -> list[list[int]]:
    """The sequences of every ``events`` message the cloud received, in order."""
    return [
        [e.sequence for e in m.body.events]  # type: ignore[union-attr]
        for m in rig.cloud.of_type(MessageType.EVENTS)
    ]


async def test_events_are_sent_again_until_acknowledged_then_pruned(rig: Rig) -> None:
    write_events(rig, 3)
    kiosk = rig.kiosk
    kiosk.start(ack_timeout_s=0.5, event_retention_s=0.001)
    # Sent on connect, lowest first, and again while no ack comes.
    await eventually(lambda: len(published(rig)) >= 2)
    assert published(rig)[:2] == [[1, 2, 3], [1, 2, 3]]
    body = rig.cloud.of_type(MessageType.EVENTS)[0].body
    assert isinstance(body, EventsBody)
    assert body.kiosk_id == kiosk.identity.kiosk_id
    assert [e.type for e in body.events] == ["door_closed"] * 3

    await rig.cloud.send(
        MessageType.ACK, AckBody(kiosk_id=kiosk.identity.kiosk_id, through_sequence=3)
    )
    await eventually(lambda: not outbox.pending_events(kiosk.store.db))
    # Acknowledged and older than the retention: pruned.
    await eventually(lambda: not outbox.events(kiosk.store.db))
    sent = len(published(rig))
    await asyncio.sleep(1.5)  # three ack timeouts: nothing is sent again
    assert len(published(rig)) == sent


async def test_many_events_go_in_batches_of_100_lowest_first_and_new_ones_follow(
    rig: Rig,
) -> None:
    write_events(rig, 250)
    kiosk = rig.kiosk
    sync = kiosk.start()
    await eventually(lambda: len(published(rig)) >= 3)
    assert published(rig)[:3] == [
        list(range(1, 101)),
        list(range(101, 201)),
        list(range(201, 251)),
    ]
    await rig.cloud.send(
        MessageType.ACK, AckBody(kiosk_id=kiosk.identity.kiosk_id, through_sequence=250)
    )
    await eventually(lambda: not outbox.pending_events(kiosk.store.db))

    # An event committed while connected goes out at once when the flows say so.
    write_events(rig, 1)
    sync.outbox_changed.set()
    await eventually(lambda: [251] in published(rig))


async def test_an_ack_for_another_kiosk_of_the_location_acknowledges_nothing(rig: Rig) -> None:
    write_events(rig, 2)
    kiosk = rig.kiosk
    kiosk.start()
    await eventually(lambda: published(rig))
    await rig.cloud.send(MessageType.ACK, AckBody(kiosk_id="kiosk-other", through_sequence=2))
    await rig.cloud.send(
        MessageType.ACK, AckBody(kiosk_id=kiosk.identity.kiosk_id, through_sequence=1)
    )
    await eventually(lambda: len(outbox.pending_events(kiosk.store.db)) == 1)
    assert [e.sequence for e in outbox.pending_events(kiosk.store.db)] == [2]


async def test_events_carry_the_stores_incarnation_and_an_ack_for_another_is_ignored(
    rig: Rig,
) -> None:
    write_events(rig, 2)
    kiosk = rig.kiosk
    kiosk.start()
    await eventually(lambda: published(rig))
    mine = meta.store_incarnation(kiosk.store.db)
    [first, *_] = rig.cloud.of_type(MessageType.EVENTS)
    assert isinstance(first.body, EventsBody)
    assert first.body.incarnation == mine

    # An ack counted for the store this one replaced: its numbers are not this store's.
    await rig.cloud.send(
        MessageType.ACK,
        AckBody(kiosk_id=kiosk.identity.kiosk_id, through_sequence=2, incarnation=uuid.uuid4()),
    )
    await rig.cloud.send(
        MessageType.ACK,
        AckBody(kiosk_id=kiosk.identity.kiosk_id, through_sequence=1, incarnation=mine),
    )
    await eventually(lambda: len(outbox.pending_events(kiosk.store.db)) == 1)
    assert [e.sequence for e in outbox.pending_events(kiosk.store.db)] == [2]
