"""A re-issued pickup code reaches the kiosk (issue 10): the new code opens the door there, the
old one is refused at once, and an extended deadline arrives too."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cloud.parcels import pickup_changes
from cloud.parcels.lookup import allocation_for
from cloud.store.transaction import unit
from kiosk.flows.pickup import pick_up
from kiosk.flows.refusals import FlowRefused

from .harness import Cloud, Site, converge, deposit_at_kiosk, eventually, now, pick_up_at_kiosk

LIMITS = pickup_changes.PickupChangeLimits(
    max_reissues=3, max_extensions=2, max_extension=timedelta(days=7), window=timedelta(days=3)
)


async def test_a_reissued_code_works_at_the_kiosk_and_the_old_one_does_not(
    cloud: Cloud, site: Site
) -> None:
    await cloud.start_worker()
    await site.start_kiosk()
    row = await site.reserve()
    allocation_id = str(row["allocation_id"])
    door = await deposit_at_kiosk(site, row["package_id"])
    await converge(site)
    old = await site.code(allocation_id)
    deadline_before = (await site.cloud_allocation(allocation_id))["pickup_expires_at"]

    async with cloud.pool.connection() as conn:
        async with unit(conn, now()) as work:
            found = await allocation_for(conn, row["allocation_id"], None)
            await pickup_changes.reissue_code(work, found, LIMITS)
        async with unit(conn, now()) as work:
            found = await allocation_for(conn, row["allocation_id"], None)
            await pickup_changes.extend_deadline(
                work, found, deadline_before + timedelta(days=2), LIMITS
            )
    new = await site.code(allocation_id)
    assert new != old
    await converge(site)

    def kiosk_deadline() -> str:
        rows = site.kiosk_rows(
            "SELECT pickup_expires_at FROM allocations WHERE allocation_id = ?", allocation_id
        )
        return str(rows[0][0])

    later = (deadline_before + timedelta(days=2)).date().isoformat()
    await eventually(lambda: kiosk_deadline().startswith(later))
    with pytest.raises(FlowRefused):
        await pick_up(site.ctx, old)
    assert await pick_up_at_kiosk(site, new) == [door]
    await eventually(lambda: site.kiosk_status(allocation_id) == "picked_up")
