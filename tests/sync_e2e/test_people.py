"""Staff and couriers reach the kiosk over sync (issue 11): those added before it starts come in
its snapshot, later ones in the change log, and a revocation stops their sign-in there."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.store import people as cloud_people
from cloud.store.transaction import unit
from kiosk.flows import staff_sign_in
from kiosk.flows.refusals import FlowRefused
from kiosk.store import people
from kiosk.ui.services import pin_checker
from shared.people import CourierPermission

from .harness import Cloud, converge, eventually, make_site, now, running_site


async def test_staff_and_couriers_are_provisioned_and_revoked_at_the_kiosk(
    cloud: Cloud, tmp_path: Path
) -> None:
    site = await make_site(cloud, tmp_path / "kiosk")
    loc = site.location_id
    async with cloud.pool.connection() as conn, unit(conn, now()) as work:
        await cloud_people.add_staff(
            work, location_id=loc, staff_id="ana", name="Ana", pin="135790"
        )
    async with running_site(site):
        await cloud.start_worker()
        await site.start_kiosk()
        store = site.ctx.store
        await eventually(lambda: people.find_staff(store.db, "135790") is not None)
        assert staff_sign_in.sign_in(site.ctx, "135790", pin_checker(None)).staff_id == "ana"
        async with cloud.pool.connection() as conn, unit(conn, now()) as work:
            await cloud_people.add_staff(
                work, location_id=loc, staff_id="bo", name="Bo", pin="246802"
            )
            await cloud_people.add_courier(
                work,
                location_id=loc,
                courier_id="drv-1",
                carrier_id=site.carrier_id,
                name="Dee",
                code="12345678",
                permissions=[CourierPermission.DROP_OFF, CourierPermission.COLLECT_EXPIRED],
            )
        await eventually(lambda: people.find_courier(store.db, "12345678") is not None)
        found = people.find_courier(store.db, "12345678")
        assert found is not None
        assert found.may(CourierPermission.COLLECT_EXPIRED)
        assert not found.may(CourierPermission.COLLECT_RETURNS)
        assert people.find_staff(store.db, "246802") is not None
        async with cloud.pool.connection() as conn, unit(conn, now()) as work:
            await cloud_people.revoke_staff(work, location_id=loc, staff_id="ana")
            await cloud_people.revoke_courier(work, location_id=loc, courier_id="drv-1")
        await eventually(lambda: people.find_staff(store.db, "135790") is None)
        await eventually(lambda: people.find_courier(store.db, "12345678") is None)
        with pytest.raises(FlowRefused):
            staff_sign_in.sign_in(site.ctx, "135790", pin_checker(None))
        assert staff_sign_in.sign_in(site.ctx, "246802", pin_checker(None)).staff_id == "bo"
        # Allocations carry their carrier to the kiosk, so couriers are scoped to it.
        parcel = await site.reserve()
        ident = str(parcel["allocation_id"])
        await eventually(lambda: people.carrier_of(store.db, ident) == site.carrier_id)
        await converge(site)
