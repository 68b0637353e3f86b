"""Steady state: an allocation made in the cloud reaches the kiosk; the parcel is dropped off and
picked up at the kiosk; the cloud shows it deposited, then picked up, with its notifications."""

from __future__ import annotations

from kiosk.flows.drop_off import drop_off
from kiosk.flows.pickup import pick_up

from .harness import Cloud, Site, converge, eventually


async def test_allocate_drop_off_pick_up(cloud: Cloud, site: Site) -> None:
    await cloud.start_worker()
    await site.start_kiosk()
    row = await site.reserve()
    allocation_id = str(row["allocation_id"])
    await eventually(lambda: site.kiosk_status(allocation_id) == "reserved")
    await converge(site)

    result = await drop_off(site.ctx, row["package_id"], driver_id="driver-1")
    site.bank.set_occupied(result.door)
    site.bank.close(result.door)
    await eventually(lambda: site.kiosk_status(allocation_id) == "deposited")
    await converge(site)
    deposited = await site.cloud_allocation(allocation_id)
    assert deposited["status"] == "deposited"
    assert deposited["door_number"] == result.door
    assert deposited["driver_id"] == "driver-1"
    kinds = {
        r["kind"]
        for r in await cloud.fetch(
            "SELECT kind FROM notifications WHERE allocation_id = %s", allocation_id
        )
    }
    assert "pickup_code" in kinds

    code = await site.code(allocation_id)
    picked = await pick_up(site.ctx, code)
    assert [o.door for o in picked.openings] == [result.door]
    site.bank.set_occupied(result.door, False)
    site.bank.close(result.door)
    await eventually(lambda: site.kiosk_status(allocation_id) == "picked_up")
    await converge(site)
    finished = await site.cloud_allocation(allocation_id)
    assert finished["status"] == "picked_up"
    pending = await cloud.fetch(
        "SELECT kind FROM notifications WHERE allocation_id = %s AND status = 'pending'"
        " AND kind IN ('reminder', 'expires_today', 'expired')",
        allocation_id,
    )
    assert pending == []
