"""Kiosk events applied through the worker: once, in order, and physical facts win."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from psycopg.rows import DictRow

from cloud import lifecycle
from cloud.sync.worker import SyncWorker
from shared.protocol import EventRecord
from tests import parcel_ops

from .conftest import KioskPeer, Site, now


async def _notifications(site: Site, allocation_id: Any) -> dict[str, str]:
    async with site.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT kind, status FROM notifications WHERE allocation_id = %s", (allocation_id,)
        )
        return {row["kind"]: row["status"] for row in await cur.fetchall()}


async def _events(site: Site) -> list[DictRow]:
    async with site.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT sequence, type, outcome, detail FROM kiosk_events WHERE kiosk_id = %s"
            " ORDER BY sequence",
            (site.kiosk_id,),
        )
        return await cur.fetchall()


def _deposit(parcel: DictRow, door: int | None = None) -> dict[str, Any]:
    return {
        "allocation_id": str(parcel["allocation_id"]),
        "door": door or parcel["door_number"],
        "barcode": parcel["package_id"],
        "driver_id": "driver-7",
        "pickup_expires_at": None,
    }


async def test_events_are_applied_once_in_sequence_order(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    parcel = await site.reserve()
    deposited = peer.event("parcel_deposited", _deposit(parcel))
    taken = peer.event(
        "parcel_picked_up", {"allocation_id": str(parcel["allocation_id"]), "door": 1}
    )

    # The later one first: a gap, not applied.
    await peer.send_events([taken])
    assert (await peer.ack_through(0)).through_sequence == 0
    assert (await site.allocation(parcel["allocation_id"]))["status"] == "reserved"

    await peer.send_events([deposited])
    assert (await peer.ack_through(1)).through_sequence == 1
    row = await site.allocation(parcel["allocation_id"])
    assert row["status"] == "deposited"
    assert row["driver_id"] == "driver-7"
    assert row["door_status"] == "occupied"

    # Both again, as a kiosk resends from its lowest unacknowledged event: 1 is a duplicate.
    await peer.send_events([deposited, taken])
    assert (await peer.ack_through(2)).through_sequence == 2
    await peer.send_events([deposited, taken])
    await peer.ack_through(2)
    assert (await site.allocation(parcel["allocation_id"]))["status"] == "picked_up"
    assert [(e["sequence"], e["outcome"]) for e in await _events(site)] == [
        (1, "applied"),
        (2, "applied"),
    ]
    # The deposit queued the customer's messages; the pickup made the unsent ones moot.
    sent = await _notifications(site, parcel["allocation_id"])
    assert set(sent) == {"pickup_code", "reminder", "expires_today"}
    assert sent["reminder"] == "cancelled"


async def test_a_parcel_picked_up_after_the_cloud_expired_it_was_picked_up(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    parcel = await site.reserve()
    await peer.send_events([peer.event("parcel_deposited", _deposit(parcel))])
    await peer.ack_through(1)
    await lifecycle.expire_pickups(site.pool, now() + timedelta(days=4))
    assert (await site.allocation(parcel["allocation_id"]))["status"] == "expired"
    assert (await _notifications(site, parcel["allocation_id"]))["expired"] == "pending"

    await peer.send_events(
        [peer.event("parcel_picked_up", {"allocation_id": str(parcel["allocation_id"]), "door": 1})]
    )
    await peer.ack_through(2)
    row = await site.allocation(parcel["allocation_id"])
    assert row["status"] == "picked_up"
    assert row["door_status"] == "available"
    # No "expired" notice goes out after the parcel was taken.
    assert (await _notifications(site, parcel["allocation_id"]))["expired"] == "cancelled"


async def test_a_parcel_collected_offline_after_the_cloud_expired_it_is_collected(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    parcel = await site.reserve()
    await peer.send_events([peer.event("parcel_deposited", _deposit(parcel))])
    await peer.ack_through(1)
    await lifecycle.expire_pickups(site.pool, now() + timedelta(days=4))
    assert (await site.allocation(parcel["allocation_id"]))["status"] == "expired"

    collected = {"allocation_id": str(parcel["allocation_id"]), "door": 1, "kind": "delivery"}
    await peer.send_events([peer.event("parcel_collected", collected)])
    await peer.ack_through(2)

    row = await site.allocation(parcel["allocation_id"])
    assert row["status"] == "collected"
    assert row["door_status"] == "available"


async def test_a_parcel_deposited_after_the_cloud_cancelled_it_is_deposited(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    parcel = await site.reserve()
    async with site.pool.connection() as conn:
        await parcel_ops.cancel(
            conn, carrier_id=None, allocation_id=parcel["allocation_id"], reason="x", now=now()
        )
    await peer.send_events([peer.event("parcel_deposited", _deposit(parcel))])
    await peer.ack_through(1)
    row = await site.allocation(parcel["allocation_id"])
    assert row["status"] == "deposited"
    assert row["door_number"] == 1
    assert row["door_status"] == "occupied"
    # The carrier is told, and the customer has a live code for it.
    assert (await _notifications(site, parcel["allocation_id"]))["pickup_code"] == "pending"
    async with site.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT used_at, retired_at FROM pickup_codes WHERE pickup_code_id = %s",
            (row["pickup_code_id"],),
        )
        code = await cur.fetchone()
    assert code == {"used_at": None, "retired_at": None}
    last = (await site.changes())[-1]["change"]["allocation"]
    assert (last["status"], last["proposed_door"]) == ("deposited", 1)


async def test_a_deposit_into_another_door_moves_the_reservation_that_held_it(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    mine = await site.reserve()
    theirs = await site.reserve()
    assert (mine["door_number"], theirs["door_number"]) == (1, 2)
    await peer.send_events(
        [
            peer.event(
                "door_substituted",
                {"allocation_id": str(mine["allocation_id"]), "door": 2, "replaced_door": 1},
            ),
            peer.event("parcel_deposited", _deposit(mine, door=2)),
        ]
    )
    await peer.ack_through(2)
    assert (await site.allocation(mine["allocation_id"]))["door_number"] == 2
    assert (await site.door(1))["status"] == "available"  # the door the kiosk did not use
    moved = await site.allocation(theirs["allocation_id"])
    assert moved["status"] == "reserved"
    assert moved["door_number"] == 3  # the next free door
    assert moved["door_status"] == "reserved"
    logged = [
        e["change"]["allocation"]
        for e in await site.changes()
        if e["change"]["allocation"]["allocation_id"] == str(theirs["allocation_id"])
    ]
    assert logged[-1]["proposed_door"] == 3


async def test_with_no_other_free_door_the_reservations_swap_doors(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    held = [await site.reserve() for _ in range(5)]  # every door is reserved
    mine, theirs = held[0], held[1]
    await peer.send_events([peer.event("parcel_deposited", _deposit(mine, door=2))])
    await peer.ack_through(1)
    deposited = await site.allocation(mine["allocation_id"])
    assert (deposited["status"], deposited["door_number"]) == ("deposited", 2)
    swapped = await site.allocation(theirs["allocation_id"])
    assert (swapped["status"], swapped["door_number"], swapped["door_status"]) == (
        "reserved",
        1,
        "reserved",
    )


async def test_a_reservation_with_no_door_left_is_cancelled_and_its_carrier_told(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    cancelled = await site.reserve()
    async with site.pool.connection() as conn:
        await parcel_ops.cancel(
            conn, carrier_id=None, allocation_id=cancelled["allocation_id"], reason="x", now=now()
        )
    held = [await site.reserve() for _ in range(5)]  # every door is reserved now
    victim = next(h for h in held if h["door_number"] == 2)
    # The kiosk had the cancelled parcel and put it into door 2 while offline.
    await peer.send_events([peer.event("parcel_deposited", _deposit(cancelled, door=2))])
    await peer.ack_through(1)
    assert (await site.allocation(cancelled["allocation_id"]))["status"] == "deposited"
    lost = await site.allocation(victim["allocation_id"])
    assert (lost["status"], lost["cancel_reason"]) == ("cancelled", "no_door")
    assert (await _notifications(site, victim["allocation_id"]))["cancelled"] == "pending"


async def test_an_unavailable_proposed_door_gets_another_proposal(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    parcel = await site.reserve()
    await peer.send_events(
        [
            peer.event(
                "proposed_door_unavailable",
                {"allocation_id": str(parcel["allocation_id"]), "proposed_door": 1, "reason": "x"},
            )
        ]
    )
    await peer.ack_through(1)
    row = await site.allocation(parcel["allocation_id"])
    assert row["door_number"] == 2
    assert (await site.door(1))["status"] == "available"


async def test_a_door_reported_faulty_goes_into_maintenance_and_its_reservation_moves(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    parcel = await site.reserve()
    await peer.send_events(
        [
            peer.event(
                "door_maintenance",
                {
                    "door": 1,
                    "on": True,
                    "reason": "driver reported: did not open",
                    "actor": "driver",
                    "detached_allocation_id": None,
                },
            )
        ]
    )
    await peer.ack_through(1)
    door = await site.door(1)
    assert (door["status"], door["maintenance_reason"]) == (
        "maintenance",
        "driver reported: did not open",
    )
    assert (await site.allocation(parcel["allocation_id"]))["door_number"] == 2
    await peer.send_events(
        [peer.event("door_maintenance", {"door": 1, "on": False, "actor": "staff"})]
    )
    await peer.ack_through(2)
    assert (await site.door(1))["status"] == "available"


async def test_collection_codes_and_alerts_are_recorded(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    first = await site.reserve(customer="anna")
    second = await site.reserve(customer="anna")
    assert first["pickup_code"] == second["pickup_code"]
    ident = str(first["allocation_id"])
    await peer.send_events(
        [
            peer.event("parcel_deposited", _deposit(first)),
            peer.event(
                "code_used",
                {
                    "kind": "pickup",
                    "code_ref": "abcd",
                    "allocation_ids": [ident],
                    "doors": [1],
                    "via": "keypad",
                },
            ),
            peer.event("door_tampered", {"door": 3, "how": "monitor"}),
            peer.event("parcel_collected", {"allocation_id": ident, "door": 1, "kind": "delivery"}),
            peer.event("parcel_picked_up", {"allocation_id": ident, "door": 1}),
            peer.event("something_new", {}),
            peer.event("parcel_picked_up", {"allocation_id": "not-an-id", "door": 1}),
        ]
    )
    assert (await peer.ack_through(7)).through_sequence == 7
    assert (await site.allocation(first["allocation_id"]))["status"] == "collected"
    # The parcel still on its way left the spent code for a new one.
    assert (await site.allocation(second["allocation_id"]))["pickup_code_id"] != (
        (await site.allocation(first["allocation_id"]))["pickup_code_id"]
    )
    outcomes = [(e["type"], e["outcome"]) for e in await _events(site)]
    assert outcomes == [
        ("parcel_deposited", "applied"),
        ("code_used", "applied"),
        ("door_tampered", "recorded"),
        ("parcel_collected", "applied"),
        ("parcel_picked_up", "ignored"),  # impossible after collection: recorded, acknowledged
        ("something_new", "ignored"),
        ("parcel_picked_up", "ignored"),
    ]
    details = [e["detail"] for e in await _events(site)]
    assert details[5].startswith("refused (unknown_type): ")
    assert details[6] == f"not an allocation id: {'not-an-id'!r}"
    async with site.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT kind, door_number FROM fleet_alerts WHERE location_id = %s",
            (site.location_id,),
        )
        assert [(r["kind"], r["door_number"]) for r in await cur.fetchall()] == [
            ("door_tampered", 3)
        ]


async def test_refused_events_are_recorded_with_their_reason_and_the_others_applied(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    parcel = await site.reserve()
    ident = str(parcel["allocation_id"])
    missing_door = {"allocation_id": ident}
    await peer.send_events(
        [
            peer.event("door_teleported", {"door": 1}),
            peer.event("parcel_deposited", _deposit(parcel), version=2),
            peer.event("parcel_deposited", _deposit(parcel)),
            peer.event("parcel_picked_up", missing_door),
            peer.event("door_tampered", {"door": "3", "how": "monitor"}),
            peer.event("door_tampered", {"door": 3, "how": "monitor", "extra": True}),
            peer.event("parcel_picked_up", {"allocation_id": ident, "door": 1}),
        ]
    )
    assert (await peer.ack_through(7)).through_sequence == 7
    # The valid events around the refused ones were applied, in order.
    assert (await site.allocation(parcel["allocation_id"]))["status"] == "picked_up"
    recorded = [(e["type"], e["outcome"], e["detail"]) for e in await _events(site)]
    assert [(kind, outcome) for kind, outcome, _ in recorded] == [
        ("door_teleported", "ignored"),
        ("parcel_deposited", "ignored"),
        ("parcel_deposited", "applied"),
        ("parcel_picked_up", "ignored"),
        ("door_tampered", "ignored"),
        ("door_tampered", "ignored"),
        ("parcel_picked_up", "applied"),
    ]
    details = [detail for _, _, detail in recorded]
    assert details[0] == "refused (unknown_type): unknown event type 'door_teleported'"
    assert details[1].startswith(
        "refused (unsupported_version): parcel_deposited payload version 2"
    )
    assert details[3].startswith("refused (invalid_payload): parcel_picked_up payload.door: ")
    assert "Field required" in details[3]
    assert details[4].startswith("refused (invalid_payload): door_tampered payload.door: ")
    assert details[5].startswith("refused (invalid_payload): door_tampered payload.extra: ")
    # A refused event is kept as the kiosk sent it, for operators.
    async with site.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT payload FROM kiosk_events WHERE kiosk_id = %s AND sequence = 4",
            (site.kiosk_id,),
        )
        row = await cur.fetchone()
    assert row is not None
    assert row["payload"] == missing_door
    # A refused tamper report raised no alert: nothing of a refused event is applied.
    async with site.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM fleet_alerts WHERE location_id = %s", (site.location_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    assert row["n"] == 0


async def test_an_event_without_a_version_is_read_as_version_1(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    parcel = await site.reserve()
    record = peer.event("parcel_deposited", _deposit(parcel))
    # As a kiosk from before payload versions sends it: no "version" at all.
    raw = record.model_dump(mode="json", exclude={"version"})
    assert EventRecord.model_validate(raw).version == 1
    await peer.send_events([EventRecord.model_validate(raw)])
    await peer.ack_through(1)
    assert (await site.allocation(parcel["allocation_id"]))["status"] == "deposited"


async def test_a_deposit_into_a_door_holding_another_parcel_is_ignored_and_alerts_operators(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    mine = await site.reserve()
    theirs = await site.reserve()
    await peer.send_events(
        [
            peer.event("parcel_deposited", _deposit(theirs)),
            # The cloud believes door 2 holds their parcel: two parcels in one door.
            peer.event("parcel_deposited", _deposit(mine, door=theirs["door_number"])),
        ]
    )
    await peer.ack_through(2)
    assert [(e["type"], e["outcome"]) for e in await _events(site)] == [
        ("parcel_deposited", "applied"),
        ("parcel_deposited", "ignored"),
    ]
    assert (await site.allocation(mine["allocation_id"]))["status"] == "reserved"
    async with site.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT kind, door_number FROM fleet_alerts WHERE location_id = %s",
            (site.location_id,),
        )
        assert [(r["kind"], r["door_number"]) for r in await cur.fetchall()] == [
            ("door_conflict", theirs["door_number"])
        ]


async def test_a_code_given_back_by_the_kiosk_works_again_and_a_lost_bank_is_an_alert(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    parcel = await site.reserve(customer="bea")
    ident = str(parcel["allocation_id"])
    used = {"kind": "pickup", "code_ref": "abcd", "allocation_ids": [ident], "doors": [1]}
    await peer.send_events(
        [
            peer.event("parcel_deposited", _deposit(parcel)),
            peer.event("door_bank_unavailable", {"error": "PortError: /dev/ttyUSB0 failed"}),
            peer.event("code_used", {**used, "via": "keypad"}),
            peer.event(
                "code_given_back",
                {"code_ref": "abcd", "allocation_ids": [ident], "reason": "interrupted"},
            ),
            peer.event("door_bank_restored", {"failed_polls": 3}),
        ]
    )
    assert (await peer.ack_through(5)).through_sequence == 5
    outcomes = [(e["type"], e["outcome"]) for e in await _events(site)]
    assert outcomes == [
        ("parcel_deposited", "applied"),
        ("door_bank_unavailable", "recorded"),
        ("code_used", "applied"),
        ("code_given_back", "applied"),
        ("door_bank_restored", "recorded"),
    ]
    async with site.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT used_at FROM pickup_codes WHERE pickup_code_id = %s",
            ((await site.allocation(parcel["allocation_id"]))["pickup_code_id"],),
        )
        row = await cur.fetchone()
        assert row is not None
        assert row["used_at"] is None
        cur = await conn.execute(
            "SELECT kind FROM fleet_alerts WHERE location_id = %s", (site.location_id,)
        )
        assert [r["kind"] for r in await cur.fetchall()] == ["door_bank_unavailable"]
    # The customer's code opens the parcel again, as at the kiosk.
    assert (await site.allocation(parcel["allocation_id"]))["status"] == "deposited"


async def _door_fault_events(site: Site) -> list[dict[str, Any]]:
    async with site.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT payload FROM notifications n JOIN allocations a USING (allocation_id)"
            " WHERE a.location_id = %s AND n.kind = 'state_changed'"
            " AND n.payload->>'event' = 'parcel.door_fault.v1' ORDER BY n.notification_id",
            (site.location_id,),
        )
        return [row["payload"] for row in await cur.fetchall()]


async def test_a_door_fault_during_drop_off_is_a_webhook_for_a_carrier_that_asked(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    # issue 10: parcel.door_fault.v1, for carriers with state webhooks.
    async with site.pool.connection() as conn:
        await conn.execute(
            "UPDATE carriers SET state_events = true WHERE carrier_id = %s", (site.carrier_id,)
        )
    parcel = await site.reserve()
    ident = str(parcel["allocation_id"])
    command = {"operation_id": "op-1", "door": parcel["door_number"], "actor": "driver",
               "allocation_id": ident, "attempt": 0}  # fmt: skip
    await peer.send_events(
        [
            peer.event("door_open_not_detected", {**command, "purpose": "drop_off"}),
            peer.event(
                "door_maintenance",
                {
                    "door": parcel["door_number"],
                    "on": True,
                    "reason": "driver reported: jammed",
                    "actor": "driver",
                    "detached_allocation_id": ident,
                },
            ),
            # A pickup's door failing is no drop-off fault.
            peer.event("door_command_failed", {**command, "purpose": "pickup"}),
        ]
    )
    await peer.ack_through(3)
    faults = await _door_fault_events(site)
    assert [(f["fault"], f["fault_door_number"], f["allocation_id"]) for f in faults] == [
        ("door_open_not_detected", parcel["door_number"], ident),
        ("driver reported: jammed", parcel["door_number"], ident),
    ]


async def test_a_code_given_back_is_live_again_though_the_customer_has_a_newer_live_code(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    # Issue 11: the customer's code was spent (on a door never pulsed) and a second parcel for
    # the same customer then got a new live code. Giving the first code back used to be refused
    # ("unchanged"): one live code per customer at a location.
    first = await site.reserve(customer="cleo")
    ident = str(first["allocation_id"])
    used = {"kind": "pickup", "code_ref": "abcd", "allocation_ids": [ident], "doors": [1]}
    await peer.send_events(
        [
            peer.event("parcel_deposited", _deposit(first)),
            peer.event("code_used", {**used, "via": "keypad"}),
        ]
    )
    await peer.ack_through(2)
    second = await site.reserve(customer="cleo")
    first_code = (await site.allocation(first["allocation_id"]))["pickup_code_id"]
    second_code = (await site.allocation(second["allocation_id"]))["pickup_code_id"]
    assert first_code != second_code
    await peer.send_events(
        [
            peer.event(
                "code_given_back",
                {"code_ref": "abcd", "allocation_ids": [ident], "reason": "interrupted"},
            )
        ]
    )
    assert (await peer.ack_through(3)).through_sequence == 3
    assert [e["outcome"] for e in await _events(site)][-1] == "applied"
    async with site.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT pickup_code_id, used_at, retired_at FROM pickup_codes"
            " WHERE pickup_code_id = ANY(%s) ORDER BY pickup_code_id",
            ([first_code, second_code],),
        )
        rows = await cur.fetchall()
    # Both live: the given-back one for the first parcel, the newer one for the second.
    assert [(r["used_at"], r["retired_at"]) for r in rows] == [(None, None), (None, None)]
    # A third parcel for her joins the newer code, not the given-back one.
    third = await site.reserve(customer="cleo")
    assert (await site.allocation(third["allocation_id"]))["pickup_code_id"] == second_code


async def test_a_locked_courier_sign_in_is_an_operator_alert(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    # Issue 11: as staff_pin_locked, so that operators see someone guessing courier codes.
    locked = {"failures": 5, "locked_until": (now() + timedelta(minutes=15)).isoformat()}
    await peer.send_events([peer.event("courier_code_locked", locked)])
    assert (await peer.ack_through(1)).through_sequence == 1
    assert [(e["type"], e["outcome"]) for e in await _events(site)] == [
        ("courier_code_locked", "recorded")
    ]
    async with site.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT kind, detail FROM fleet_alerts WHERE location_id = %s", (site.location_id,)
        )
        [alert] = await cur.fetchall()
    assert alert["kind"] == "courier_code_locked"
    assert alert["detail"]["failures"] == 5
