"""Rotation of a kiosk's code secret (issue 9) with live parcels, through the real worker,
PostgreSQL, the broker and the kiosk daemon: every live code still opens its door, new codes
are issued under the new generation, and the old generation is retired when its last code ends.
"""

from __future__ import annotations

from cloud import code_secret_rotation
from shared.code_secret_exchange import secret_fingerprint

from .harness import (
    Cloud,
    Site,
    _hash,
    converge,
    deposit_at_kiosk,
    eventually,
    now,
    pick_up_at_kiosk,
)


def _code_row(site: Site, allocation_id: str) -> tuple[str, int]:
    rows = site.kiosk_rows(
        "SELECT c.code_hash, c.generation FROM allocations a JOIN codes c USING (code_id)"
        " WHERE a.allocation_id = ?",
        allocation_id,
    )
    return rows[0][0], rows[0][1]


def _generations(site: Site) -> dict[int, tuple[str | None, str | None]]:
    """generation -> (fingerprint, retired_at) as the kiosk's store has it."""
    return {
        g: (f, r)
        for g, f, r in site.kiosk_rows(
            "SELECT generation, fingerprint, retired_at FROM code_secret_generations"
        )
    }


async def _active(cloud: Cloud, site: Site, generation: int) -> dict[str, object] | None:
    rows = await cloud.fetch(
        "SELECT secret, fingerprint, cloud_private FROM code_secret_generations"
        " WHERE kiosk_id = %s AND generation = %s AND activated_at IS NOT NULL",
        site.kiosk_id,
        generation,
    )
    return dict(rows[0]) if rows else None


async def test_live_codes_open_their_doors_across_a_rotation_and_the_old_generation_retires(
    cloud: Cloud, site: Site
) -> None:
    await cloud.start_worker()
    await site.start_kiosk()
    deposited = await site.reserve()  # generation 1, in its door before the rotation
    reserved = await site.reserve()  # generation 1, deposited after the rotation
    await converge(site)
    deposited_door = await deposit_at_kiosk(site, deposited["package_id"])
    await converge(site)

    requests = await code_secret_rotation.rotate(cloud.pool, [site.kiosk_id], now(), "test")
    assert [(r.generation, r.new) for r in requests] == [(2, True)]

    async def activated() -> bool:
        return await _active(cloud, site, 2) is not None

    await eventually(activated)
    active = await _active(cloud, site, 2)
    assert active is not None
    secret = bytes(active["secret"])  # type: ignore[arg-type]
    assert secret != site.code_secret
    assert active["cloud_private"] is None  # the cloud's half is gone once used
    # Both sides hold the same secret, and the kiosk's record of it matches the cloud's.
    assert _generations(site)[2] == (secret_fingerprint(secret), None)
    assert active["fingerprint"] == secret_fingerprint(secret)
    # The store's binding to the provisioned secret is unchanged.
    meta = site.kiosk_rows("SELECT value FROM kiosk_meta WHERE key = 'code_secret_fingerprint'")
    assert meta[0][0] == secret_fingerprint(site.code_secret)

    fresh = await site.reserve()  # after the rotation: generation 2
    await converge(site)
    for row, generation, key in (
        (deposited, 1, site.code_secret),
        (reserved, 1, site.code_secret),
        (fresh, 2, secret),
    ):
        allocation_id = str(row["allocation_id"])
        assert _code_row(site, allocation_id) == (
            _hash(key, await site.code(allocation_id)),
            generation,
        )

    reserved_door = await deposit_at_kiosk(site, reserved["package_id"])
    fresh_door = await deposit_at_kiosk(site, fresh["package_id"])
    # The code from before the rotation opens its door; so does the new one.
    assert await pick_up_at_kiosk(site, await site.code(deposited["allocation_id"])) == [
        deposited_door
    ]
    assert await pick_up_at_kiosk(site, await site.code(fresh["allocation_id"])) == [fresh_door]
    await converge(site)
    assert _generations(site).get(1, (None, None))[1] is None  # still needed by `reserved`

    # A restart with the same configuration: the store opens, the generations are kept.
    await site.stop_kiosk()
    await site.start_kiosk()
    assert await pick_up_at_kiosk(site, await site.code(reserved["allocation_id"])) == [
        reserved_door
    ]
    await converge(site)

    async def first_retired() -> bool:
        site.wake_sync()
        return _generations(site).get(1, (None, None))[1] is not None

    await eventually(first_retired)
    assert _generations(site)[2][1] is None  # the newest is never retired
