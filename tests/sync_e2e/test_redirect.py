"""A redirected reservation leaves the old location's kiosk (issue 10)."""

from __future__ import annotations

import uuid

from cloud.parcels import redirect
from cloud.parcels.lookup import allocation_for
from cloud.store.transaction import unit

from .harness import Cloud, Site, eventually, make_cloud_location, now


async def test_the_old_kiosk_lets_go_of_a_redirected_reservation(cloud: Cloud, site: Site) -> None:
    await cloud.start_worker()
    await site.start_kiosk()
    row = await site.reserve()
    allocation_id = str(row["allocation_id"])
    await eventually(lambda: site.kiosk_status(allocation_id) == "reserved")
    elsewhere, _ = await make_cloud_location(cloud, uuid.uuid4().hex[:10])
    async with cloud.pool.connection() as conn, unit(conn, now()) as work:
        found = await allocation_for(conn, row["allocation_id"], None)
        await redirect.redirect(work, found, elsewhere)
    await eventually(lambda: site.kiosk_status(allocation_id) == "cancelled")
    [(door,)] = site.kiosk_rows(
        "SELECT door FROM allocations WHERE allocation_id = ?", allocation_id
    )
    assert site.kiosk_rows("SELECT status FROM doors WHERE number = ?", door) == [("available",)]
    # Not `converge`: the harness compares the kiosk's allocations with the cloud's at this
    # location, and the cancelled one it keeps (as for any finished parcel) is elsewhere now.
