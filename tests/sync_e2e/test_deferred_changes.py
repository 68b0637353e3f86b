"""A cloud change the kiosk cannot apply now (its door is open) is deferred, not lost: the
issue's repro with the real cloud worker, the real broker and the kiosk daemon's store.

Before deferral, the cancel was refused at the kiosk while the driver had the door open, its
revision consumed, and when the driver shut the door empty nothing re-applied it: the cloud
said cancelled and the door available, the kiosk said reserved, for good.
"""

from __future__ import annotations

from kiosk.flows.drop_off import drop_off

from .harness import Cloud, Site, converge, eventually


def _with_occupancy_sensors(site: Site) -> None:
    """Doors that see what is in them, as the Kerong boards of the fault campaign did: a door
    shut empty then leaves the parcel reserved."""
    text = site.config_file.read_text(encoding="utf-8")
    site.config_file.write_text(
        text.replace("[doors.fake]\n", "[doors.fake]\noccupancy_sensors = true\n"),
        encoding="utf-8",
    )


async def _driver_has_the_door_open(site: Site, barcode: str) -> int:
    await eventually(
        lambda: site.kiosk_rows("SELECT 1 FROM allocations WHERE barcode = ?", barcode)
    )
    result = await drop_off(site.ctx, barcode, driver_id="driver-1")
    await eventually(
        lambda: site.kiosk_rows(
            "SELECT 1 FROM door_operations WHERE door = ? AND state = 'open'", result.door
        )
    )
    return result.door


async def _kiosk_has_consumed_the_cloud_log(site: Site) -> None:
    async def caught_up() -> bool:
        rows = await site.cloud.fetch(
            "SELECT revision FROM locations WHERE location_id = %s", site.location_id
        )
        return bool(rows[0]["revision"] == site.kiosk_revision())

    await eventually(caught_up)


async def test_a_cancel_while_the_door_is_open_applies_when_it_shuts_empty(
    cloud: Cloud, site: Site
) -> None:
    _with_occupancy_sensors(site)
    await cloud.start_worker()
    await site.start_kiosk()
    reserved = await site.reserve()
    door = await _driver_has_the_door_open(site, reserved["package_id"])

    await site.cancel(reserved["allocation_id"])  # the carrier cancels (200)
    await _kiosk_has_consumed_the_cloud_log(site)
    assert site.kiosk_status(reserved["allocation_id"]) == "reserved"  # the door is open

    site.bank.set_occupied(door, False)  # the occupancy sensor: empty
    site.bank.close(door)  # the driver shuts it without the parcel
    await converge(site)
    assert site.kiosk_status(reserved["allocation_id"]) == "cancelled"
    assert site.kiosk_rows("SELECT status FROM doors WHERE number = ?", door) == [("available",)]


async def test_a_cancel_while_the_door_is_open_loses_to_the_parcel_put_in(
    cloud: Cloud, site: Site
) -> None:
    _with_occupancy_sensors(site)
    await cloud.start_worker()
    await site.start_kiosk()
    reserved = await site.reserve()
    door = await _driver_has_the_door_open(site, reserved["package_id"])
    await site.cancel(reserved["allocation_id"])
    await _kiosk_has_consumed_the_cloud_log(site)

    site.bank.set_occupied(door)
    site.bank.close(door)  # the parcel went in: physical facts win
    await converge(site)
    assert (await site.cloud_allocation(reserved["allocation_id"]))["status"] == "deposited"
    alerts = await cloud.fetch(
        "SELECT detail FROM fleet_alerts WHERE kiosk_id = %s AND kind = 'cloud_change_refused'",
        site.kiosk_id,
    )
    [alert] = alerts
    assert alert["detail"]["allocation_id"] == str(reserved["allocation_id"])
    assert alert["detail"]["deferred"] is True
