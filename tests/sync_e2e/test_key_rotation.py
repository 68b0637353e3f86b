"""A kiosk's signing key rotated over the air (issue 9), with the real kiosk daemon, the real
sync worker, PostgreSQL and the broker: the kiosk makes its next key, announces it under its
current one, and signs with it once the cloud has acknowledged the announcement."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from cloud import errors
from cloud.store import kiosk_keys
from kiosk.sync import key_rotation
from shared.signing import Signer

from .harness import Cloud, Site, deposit_at_kiosk, eventually, now, pick_up_at_kiosk


def _fast_heartbeats(site: Site) -> None:
    # [sync] is the configuration's last table: the worker asks at heartbeats.
    with site.config_file.open("a", encoding="utf-8") as out:
        out.write("heartbeat_interval_s = 0.3\n")


async def _cloud_key(site: Site) -> str:
    rows = await site.cloud.fetch(
        "SELECT public_key FROM kiosks WHERE kiosk_id = %s", site.kiosk_id
    )
    return str(rows[0]["public_key"])


def _key_file(site: Site) -> Path:
    return site.folder / "kiosk-key.pem"


def _kiosk_key(site: Site) -> str:
    return Signer.from_file(_key_file(site)).verifier.public_base64()


async def _picked_up_in_the_cloud(site: Site, allocation_id: object) -> bool:
    return (await site.cloud_allocation(str(allocation_id)))["status"] == "picked_up"


async def test_an_operator_asks_and_the_kiosk_rotates_its_own_key_with_live_parcels(
    cloud: Cloud, site: Site
) -> None:
    _fast_heartbeats(site)
    worker = await cloud.start_worker(key_grace=timedelta(seconds=2))
    await site.start_kiosk()
    old = _kiosk_key(site)
    parcels = [await site.reserve(), await site.reserve()]
    for parcel in parcels:
        await deposit_at_kiosk(site, parcel["package_id"])

    async with cloud.pool.connection() as conn:
        await kiosk_keys.request_rotation(conn, site.kiosk_id, requested_by="op-1", now=now())

    async def rotated_on_both_sides() -> bool:
        new = await _cloud_key(site)
        return new != old and _kiosk_key(site) == new

    await eventually(rotated_on_both_sides)
    new = await _cloud_key(site)
    assert worker.stats["rotate_key_sent"] >= 1
    assert not key_rotation.next_key_file(_key_file(site)).exists()
    assert _key_file(site).stat().st_mode & 0o777 == 0o600
    rows = await cloud.fetch(
        "SELECT key_rotation_requested_at, key_created_at FROM kiosks WHERE kiosk_id = %s",
        site.kiosk_id,
    )
    assert rows[0]["key_rotation_requested_at"] is None  # the request is done
    assert rows[0]["key_created_at"] is not None
    # The old key is kept for its grace period only.
    keys = await kiosk_keys.accepted_keys(cloud.pool, site.kiosk_id, now())
    assert keys is not None
    assert keys.current == new
    assert keys.retired == (old,)
    later = await kiosk_keys.accepted_keys(cloud.pool, site.kiosk_id, now() + timedelta(seconds=3))
    assert later is not None
    assert later.retired == ()

    # Every live parcel still comes out, and the kiosk's events, signed by the new key now, are
    # applied.
    for parcel in parcels:
        await pick_up_at_kiosk(site, await site.code(parcel["allocation_id"]))
    for parcel in parcels:
        await eventually(lambda p=parcel: _picked_up_in_the_cloud(site, p["allocation_id"]))
    sent_before = worker.stats["rotate_key_sent"]
    await asyncio.sleep(1.0)  # several heartbeats: nothing is due any more
    assert worker.stats["rotate_key_sent"] == sent_before
    assert await _cloud_key(site) == new


async def test_a_key_older_than_the_maximum_age_is_rotated_unasked(
    cloud: Cloud, site: Site
) -> None:
    _fast_heartbeats(site)
    await site.start_kiosk()
    old = _kiosk_key(site)
    await asyncio.sleep(0.5)
    # No maximum age (the default): nothing rotates.
    off = await cloud.start_worker()
    await eventually(lambda: off.stats["heartbeat"] >= 3)  # it checked three times at least
    assert off.stats["rotate_key_sent"] == 0
    await cloud.stop_workers()

    await cloud.start_worker(key_max_age=timedelta(milliseconds=200))

    async def rotated() -> bool:
        return await _cloud_key(site) != old and _kiosk_key(site) == await _cloud_key(site)

    await eventually(rotated)


async def test_a_revoked_kiosk_can_neither_be_asked_nor_rotate(cloud: Cloud, site: Site) -> None:
    _fast_heartbeats(site)
    worker = await cloud.start_worker()
    await site.start_kiosk()
    old = _kiosk_key(site)
    async with cloud.pool.connection() as conn:
        assert await kiosk_keys.revoke(conn, site.kiosk_id, now())
        with pytest.raises(errors.KioskNotFound):
            await kiosk_keys.request_rotation(conn, site.kiosk_id, requested_by="op", now=now())
    # The stolen kiosk announces a key of its own: refused with everything it signs.
    before = worker.stats["rejected:unknown_sender"]
    assert key_rotation.begin(site.ctx.store, _key_file(site), site.kiosk_id, now()) is not None
    site.wake_sync()

    async def refused() -> bool:
        return worker.stats["rejected:unknown_sender"] > before

    await eventually(refused)
    await asyncio.sleep(0.5)
    assert await _cloud_key(site) == old
    assert _kiosk_key(site) == old  # never acknowledged: the kiosk keeps its current key
    assert worker.stats["rotate_key_sent"] == 0
