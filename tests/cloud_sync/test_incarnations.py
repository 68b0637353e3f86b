"""Two events under one kiosk sequence number raise a security alert; a kiosk whose store was
replaced is counted afresh under its new incarnation, and the old store is refused."""

from __future__ import annotations

import json
import uuid
from typing import Any

from cloud.sync.worker import SyncWorker
from shared.protocol import Channel, EventRecord, EventsBody, MessageType

from .conftest import KioskPeer, Site, eventually, now


def _deposit(parcel: Any) -> dict[str, Any]:
    return {
        "allocation_id": str(parcel["allocation_id"]),
        "door": parcel["door_number"],
        "barcode": parcel["package_id"],
        "driver_id": "driver-7",
        "pickup_expires_at": None,
    }


def _taken(parcel: Any) -> dict[str, Any]:
    return {"allocation_id": str(parcel["allocation_id"]), "door": parcel["door_number"]}


def _record(sequence: int, kind: str, payload: dict[str, Any]) -> EventRecord:
    return EventRecord(
        sequence=sequence,
        event_id=uuid.uuid4(),
        type=kind,
        created_at=now(),
        payload=payload,
    )


async def _send(peer: KioskPeer, records: list[EventRecord], incarnation: uuid.UUID) -> None:
    body = EventsBody(kiosk_id=peer.site.kiosk_id, events=records, incarnation=incarnation)
    await peer.send(Channel.KIOSK_EVENTS, MessageType.EVENTS, body)


async def _alerts(site: Site) -> list[tuple[str, dict[str, Any]]]:
    async with site.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT kind, detail FROM fleet_alerts WHERE kiosk_id = %s ORDER BY alert_id",
            (site.kiosk_id,),
        )
        return [(row["kind"], row["detail"]) for row in await cur.fetchall()]


async def test_a_second_event_under_one_sequence_raises_a_security_alert(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    store = uuid.uuid4()
    parcel = await site.reserve()
    await _send(peer, [_record(1, "parcel_deposited", _deposit(parcel))], store)
    await peer.ack_through(1)
    # Someone with the kiosk's key got sequence 2 in first with a pickup ...
    forged = _record(2, "parcel_picked_up", _taken(parcel))
    await _send(peer, [forged], store)
    await peer.ack_through(2)

    # ... so the kiosk's real event 2 arrives under a sequence already taken.
    real = _record(2, "door_left_open", {"door": parcel["door_number"], "open_for_s": 90})
    await _send(peer, [real], store)
    await _send(peer, [real], store)  # resent: still one alert
    await peer.ack_through(2)

    async def alerted() -> bool:
        return [kind for kind, _ in await _alerts(site)] == ["event_conflict"]

    await eventually(alerted)
    [(_, detail)] = await _alerts(site)
    assert detail["sequence"] == 2
    assert detail["applied_event_id"] == str(forged.event_id)
    assert detail["received_event_id"] == str(real.event_id)
    assert detail["received_type"] == "door_left_open"
    assert json.dumps(detail["received_payload"])


async def test_a_replaced_store_starts_again_at_1_and_its_events_are_applied(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    old_store, new_store = uuid.uuid4(), uuid.uuid4()
    first, second = await site.reserve(), await site.reserve()
    await _send(peer, [_record(1, "parcel_deposited", _deposit(first))], old_store)
    await _send(peer, [_record(2, "parcel_picked_up", _taken(first))], old_store)
    ack = await peer.ack_through(2)
    assert ack.incarnation == old_store

    # A new SD card: the store starts at 1 again, under a new incarnation.
    await _send(peer, [_record(1, "parcel_deposited", _deposit(second))], new_store)
    ack = await peer.ack_through(1)

    assert (ack.through_sequence, ack.incarnation) == (1, new_store)
    assert (await site.allocation(second["allocation_id"]))["status"] == "deposited"
    assert [kind for kind, _ in await _alerts(site)] == ["store_replaced"]
    [(_, detail)] = await _alerts(site)
    assert detail["previous_incarnation"] == str(old_store)
    assert detail["first_cursor_sequence"] == 3


async def test_the_replaced_store_speaking_again_is_refused_and_alerts(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    old_store, new_store = uuid.uuid4(), uuid.uuid4()
    first, second = await site.reserve(), await site.reserve()
    await _send(peer, [_record(1, "parcel_deposited", _deposit(first))], old_store)
    await peer.ack_through(1)
    await _send(peer, [_record(1, "parcel_deposited", _deposit(second))], new_store)
    await peer.ack_through(1)

    # The old card, in another box, with the kiosk's key: its events go nowhere.
    await _send(peer, [_record(2, "parcel_picked_up", _taken(first))], old_store)
    await _send(peer, [_record(2, "parcel_picked_up", _taken(first))], old_store)

    async def refused_twice() -> bool:
        return worker.stats["events_refused"] >= 2

    await eventually(refused_twice)
    assert (await site.allocation(first["allocation_id"]))["status"] == "deposited"
    assert [kind for kind, _ in await _alerts(site)] == ["store_replaced", "retired_store"]
