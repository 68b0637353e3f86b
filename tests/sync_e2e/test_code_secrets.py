"""One code secret per kiosk (issue 9), through the real worker, PostgreSQL and broker: a
location's second kiosk is provisioned with a secret of its own, and each kiosk there holds
every code under its own secret only, so a code opens its door at either kiosk."""

from __future__ import annotations

from pathlib import Path

from .harness import (
    Cloud,
    Site,
    _hash,
    converge,
    deposit_at_kiosk,
    eventually,
    pick_up_at_kiosk,
    provision_site,
    running_site,
)


def _held_hash(site: Site, allocation_id: str) -> str | None:
    rows = site.kiosk_rows(
        "SELECT c.code_hash FROM allocations a JOIN codes c USING (code_id)"
        " WHERE a.allocation_id = ?",
        allocation_id,
    )
    return rows[0][0] if rows else None


async def test_each_kiosk_of_a_location_opens_doors_with_codes_under_its_own_secret(
    cloud: Cloud, site: Site, tmp_path: Path
) -> None:
    await cloud.start_worker()
    await site.start_kiosk()
    before = await site.reserve()  # logged while the location had one kiosk
    first = str(before["allocation_id"])
    await converge(site)

    second = await provision_site(
        cloud,
        tmp_path / "second",
        location_id=site.location_id,
        carrier_id=site.carrier_id,
        kiosk_id=f"{site.kiosk_id}-b",
    )
    assert second.code_secret != site.code_secret
    async with running_site(second):
        await second.start_kiosk()
        after = await site.reserve()
        later = str(after["allocation_id"])
        await converge(site)
        await converge(second)  # its catch-up: a snapshot hashed under its secret

        for allocation_id in (first, later):
            code = await site.code(allocation_id)
            assert _held_hash(site, allocation_id) == _hash(site.code_secret, code)
            assert _held_hash(second, allocation_id) == _hash(second.code_secret, code)

        # Each code opens its door, at the kiosk it was deposited in.
        door = await deposit_at_kiosk(site, before["package_id"])
        assert await pick_up_at_kiosk(site, await site.code(first)) == [door]
        await eventually(lambda: site.kiosk_status(first) == "picked_up")
        door = await deposit_at_kiosk(second, after["package_id"])
        assert await pick_up_at_kiosk(second, await site.code(later)) == [door]
        await eventually(lambda: second.kiosk_status(later) == "picked_up")
