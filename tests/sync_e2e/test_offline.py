"""A kiosk offline for a long period while both sides change things; a compacted log that
forces a snapshot. After the kiosk is back, cloud and kiosk are identical and every event
was applied once (`differences`)."""

from __future__ import annotations

from datetime import timedelta

from cloud import lifecycle
from cloud.store import changelog
from shared.sizes import Size

from .harness import (
    PICKUP_WINDOW,
    Cloud,
    Site,
    converge,
    deposit_at_kiosk,
    eventually,
    now,
    pick_up_at_kiosk,
)


async def test_kiosk_offline_while_both_sides_change(cloud: Cloud, site: Site) -> None:
    await cloud.start_worker()
    await site.start_kiosk()
    waiting = await site.reserve()  # deposited now, picked up offline
    expiring = await site.reserve()  # deposited now, picked up offline after the cloud expired it
    cancelled = await site.reserve()  # cancelled in the cloud while offline
    deposited_after_cancel = await site.reserve()  # cancelled in the cloud, deposited offline
    dropped = await site.reserve(Size.MEDIUM)  # deposited offline
    await eventually(lambda: site.kiosk_status(dropped["allocation_id"]) == "reserved")
    await deposit_at_kiosk(site, waiting["package_id"])
    await deposit_at_kiosk(site, expiring["package_id"])
    await converge(site)

    assert site.proxy is not None
    await site.proxy.kill()  # the kiosk's link is down: no DISCONNECT, the will fires
    await eventually(lambda: not site.connected)

    # The cloud, meanwhile: new reservations, cancellations, and the pickup window running out.
    fresh = [await site.reserve(), await site.reserve(Size.LARGE)]
    await site.cancel(cancelled["allocation_id"])
    await site.cancel(deposited_after_cancel["allocation_id"])
    expired = await lifecycle.expire_pickups(cloud.pool, now() + PICKUP_WINDOW + timedelta(hours=1))
    assert expired >= 2
    assert (await site.cloud_allocation(expiring["allocation_id"]))["status"] == "expired"

    # The kiosk, meanwhile (its own clock: the windows have not run out here).
    await pick_up_at_kiosk(site, await site.code(waiting["allocation_id"]))
    await pick_up_at_kiosk(site, await site.code(expiring["allocation_id"]))
    await deposit_at_kiosk(site, deposited_after_cancel["package_id"])
    await deposit_at_kiosk(site, dropped["package_id"])

    await site.proxy.start()
    await converge(site, within=40)

    statuses = {
        key: (await site.cloud_allocation(row["allocation_id"]))["status"]
        for key, row in {
            "waiting": waiting,
            "expiring": expiring,
            "cancelled": cancelled,
            "deposited_after_cancel": deposited_after_cancel,
            "dropped": dropped,
        }.items()
    }
    assert statuses == {
        "waiting": "picked_up",
        "expiring": "picked_up",  # physical facts win over the expiry
        "cancelled": "cancelled",
        "deposited_after_cancel": "deposited",  # the parcel is in the locker
        "dropped": "deposited",
    }
    for row in fresh:
        assert site.kiosk_status(row["allocation_id"]) == "reserved"
    # No "expired" notice for parcels that were taken out.
    notices = await cloud.fetch(
        "SELECT kind, status FROM notifications WHERE allocation_id = ANY(%s) AND kind = 'expired'",
        [waiting["allocation_id"], expiring["allocation_id"]],
    )
    assert all(n["status"] != "pending" for n in notices)


async def test_a_compacted_log_forces_a_snapshot(cloud: Cloud, site: Site) -> None:
    await cloud.start_worker()
    await site.start_kiosk()
    kept = await site.reserve()
    gone = await site.reserve()
    parcel = await site.reserve()
    await eventually(lambda: site.kiosk_status(parcel["allocation_id"]) == "reserved")
    await deposit_at_kiosk(site, parcel["package_id"])
    await converge(site)

    assert site.proxy is not None
    await site.proxy.kill()
    await eventually(lambda: not site.connected)
    before = site.kiosk_revision()
    await site.cancel(gone["allocation_id"])
    added = [await site.reserve() for _ in range(3)]
    await pick_up_at_kiosk(site, await site.code(parcel["allocation_id"]))
    # Compaction with a tiny retention: nothing of this location's log is kept.
    await eventually(lambda: _all_older(cloud, site))
    report = await lifecycle.run_once(cloud.pool, now(), change_retention=timedelta(0))
    assert report.changes_compacted > 0
    async with cloud.pool.connection() as conn:
        catchup = await changelog.changes_since(conn, site.location_id, before)
    assert catchup.needs_snapshot

    await site.proxy.start()
    await converge(site, within=40)
    assert site.kiosk_status(gone["allocation_id"]) == "cancelled"
    assert site.kiosk_status(kept["allocation_id"]) == "reserved"
    assert all(site.kiosk_status(r["allocation_id"]) == "reserved" for r in added)
    assert (await site.cloud_allocation(parcel["allocation_id"]))["status"] == "picked_up"


async def _all_older(cloud: Cloud, site: Site) -> bool:
    # Entries are stamped with the cloud's clock; compaction deletes those strictly older.
    rows = await cloud.fetch(
        "SELECT max(created_at) AS newest FROM location_changes WHERE location_id = %s",
        site.location_id,
    )
    return rows[0]["newest"] is None or rows[0]["newest"] < now()
