"""A kiosk's signing key rotated with a grace period, and a revoked kiosk, at a running worker."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud.fleet_ca import FleetCa
from cloud.store import kiosk_keys
from cloud.store.database import Pool
from cloud.sync.worker import SyncWorker
from shared.key_rotation import prove
from shared.signing import Signer

from .conftest import KioskPeer, Site, eventually, make_site, running_worker


@pytest.fixture
async def fresh_keys_worker(
    pool: Pool, sync_db_url: str, mqtt_broker: tuple[str, int, bool], cloud_signer: Signer
) -> AsyncIterator[SyncWorker]:
    # No key cache: a rotation's grace and a revocation take effect at the next message.
    async with running_worker(
        pool, sync_db_url, mqtt_broker, cloud_signer, key_cache_s=0.0
    ) as running:
        yield running


def _deposit(parcel: Any) -> dict[str, Any]:
    return {
        "allocation_id": str(parcel["allocation_id"]),
        "door": parcel["door_number"],
        "barcode": parcel["package_id"],
        "driver_id": "driver-7",
        "pickup_expires_at": None,
    }


async def _event_count(site: Site) -> int:
    async with site.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM kiosk_events WHERE kiosk_id = %s", (site.kiosk_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def test_the_old_key_is_accepted_until_its_grace_ends_then_refused(
    pool: Pool, fresh_keys_worker: SyncWorker, peer: KioskPeer, site: Site
) -> None:
    worker = fresh_keys_worker
    old = site.kiosk_signer
    new = Signer.generate()
    first, second, third = await site.reserve(), await site.reserve(), await site.reserve()
    grace_ends = datetime.now(UTC) + timedelta(seconds=3)
    async with pool.connection() as conn:
        await kiosk_keys.rotate(
            conn,
            site.kiosk_id,
            new_public_key=new.verifier.public_base64(),
            accept_old_until=grace_ends,
            now=datetime.now(UTC),
        )

    # In the grace period: the outbox signed with the old key still counts, the new one too.
    await peer.send_events([peer.event("parcel_deposited", _deposit(first))])
    await peer.ack_through(1)
    site.kiosk_signer = new
    await peer.send_events([peer.event("parcel_deposited", _deposit(second))])
    await peer.ack_through(2)

    # After it: the old key is refused, the new one still works.
    await asyncio.sleep(max(0.0, (grace_ends - datetime.now(UTC)).total_seconds()) + 0.2)
    site.kiosk_signer = old
    refused_before = worker.stats["rejected:bad_signature"]
    late = peer.event("parcel_deposited", _deposit(third))
    await peer.send_events([late])

    async def refused() -> bool:
        return worker.stats["rejected:bad_signature"] > refused_before

    await eventually(refused)
    assert await _event_count(site) == 2
    site.kiosk_signer = new
    await peer.send_events([late])
    await peer.ack_through(3)
    assert (await site.allocation(third["allocation_id"]))["status"] == "deposited"


async def test_a_key_rotated_on_another_worker_is_accepted_despite_this_workers_cache(
    pool: Pool,
    sync_db_url: str,
    mqtt_broker: tuple[str, int, bool],
    cloud_signer: Signer,
    peer: KioskPeer,
    site: Site,
) -> None:
    # Keys cached for a minute, as in production; looked up again after a bad signature.
    async with running_worker(
        pool, sync_db_url, mqtt_broker, cloud_signer, key_cache_s=60.0, key_refresh_s=0.3
    ):
        first, second = await site.reserve(), await site.reserve()
        await peer.send_events([peer.event("parcel_deposited", _deposit(first))])
        await peer.ack_through(1)  # this worker now has the kiosk's old keys cached
        new = Signer.generate()
        async with pool.connection() as conn:  # as another worker applying the announcement
            await kiosk_keys.rotate(
                conn,
                site.kiosk_id,
                new_public_key=new.verifier.public_base64(),
                accept_old_until=datetime.now(UTC) + timedelta(hours=1),
                now=datetime.now(UTC),
            )
        site.kiosk_signer = new
        await asyncio.sleep(0.4)
        await peer.send_events([peer.event("parcel_deposited", _deposit(second))])
        await peer.ack_through(2)
        assert (await site.allocation(second["allocation_id"]))["status"] == "deposited"


async def test_a_revoked_kiosk_gets_no_event_applied(
    pool: Pool, fresh_keys_worker: SyncWorker, peer: KioskPeer, site: Site
) -> None:
    worker = fresh_keys_worker
    parcel = await site.reserve()
    async with pool.connection() as conn:
        assert await kiosk_keys.revoke(conn, site.kiosk_id, datetime.now(UTC))
        assert not await kiosk_keys.revoke(conn, site.kiosk_id, datetime.now(UTC))
    before = worker.stats["rejected:unknown_sender"]

    await peer.send_events([peer.event("parcel_deposited", _deposit(parcel))])

    async def refused() -> bool:
        return worker.stats["rejected:unknown_sender"] > before

    await eventually(refused)
    assert await _event_count(site) == 0
    assert (await site.allocation(parcel["allocation_id"]))["status"] == "reserved"


async def _cli(database_url: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cloud.cli",
        *args,
        env={**os.environ, "LOCKER_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_commands_rotate_a_key_and_revoke_a_kiosk_with_its_certificate(
    pool: Pool, sync_db_url: str, tmp_path: Path
) -> None:
    site = await make_site(pool)
    ca = FleetCa.create(tmp_path / "ca", name="fleet", now=datetime.now(UTC))
    ca.issue_kiosk(
        kiosk_id=site.kiosk_id, location_id=site.location_id, out=tmp_path, now=datetime.now(UTC)
    )

    code, out, err = await _cli(
        sync_db_url, "rotate-kiosk-key", "--kiosk", site.kiosk_id, "--out", str(tmp_path / "k")
    )
    assert code == 0, err
    new = Signer.from_file(tmp_path / "k" / "kiosk-key.pem")
    keys = await kiosk_keys.accepted_keys(pool, site.kiosk_id, datetime.now(UTC))
    assert keys is not None
    assert keys.current == new.verifier.public_base64()
    assert keys.retired == (site.kiosk_signer.verifier.public_base64(),)
    assert new.verifier.public_base64() in out

    code, out, err = await _cli(
        sync_db_url, "revoke-kiosk", "--kiosk", site.kiosk_id, "--ca", str(ca.folder)
    )
    assert code == 0, err
    assert await kiosk_keys.accepted_keys(pool, site.kiosk_id, datetime.now(UTC)) is None
    assert [c.revoked_at is not None for c in ca.issued()] == [True]

    code, _, err = await _cli(sync_db_url, "revoke-kiosk", "--kiosk", "no-such-kiosk")
    assert (code, "no kiosk" in err) == (2, True)


async def test_the_command_asks_a_kiosk_to_rotate_over_the_air_but_not_a_revoked_one(
    pool: Pool, sync_db_url: str
) -> None:
    site = await make_site(pool)
    code, out, err = await _cli(
        sync_db_url, "rotate-kiosk-key", "--kiosk", site.kiosk_id, "--over-the-air"
    )
    assert code == 0, err
    assert "asked to make its next signing key" in out
    async with pool.connection() as conn:
        age = await kiosk_keys.key_age(conn, site.kiosk_id)
        assert age is not None
        assert age.rotation_requested_at is not None
        assert await kiosk_keys.revoke(conn, site.kiosk_id, datetime.now(UTC))
    code, out, err = await _cli(
        sync_db_url, "rotate-kiosk-key", "--kiosk", site.kiosk_id, "--over-the-air"
    )
    assert code == 2
    assert "revoked" in err


async def test_an_announced_key_without_a_valid_proof_is_refused_with_an_alert(
    pool: Pool, fresh_keys_worker: SyncWorker, peer: KioskPeer, site: Site
) -> None:
    old = site.kiosk_signer.verifier.public_base64()
    announced, other = Signer.generate(), Signer.generate()
    # Signed by the current key, but the proof is another key's: not a key the kiosk holds.
    forged = {"new_public_key": announced.verifier.public_base64(), "proof": prove(other, "x")}
    await peer.send_events([peer.event("signing_key_rotated", forged)])
    await peer.ack_through(1)
    keys = await kiosk_keys.accepted_keys(pool, site.kiosk_id, datetime.now(UTC))
    assert keys is not None
    assert keys.current == old
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT kind FROM fleet_alerts WHERE kiosk_id = %s", (site.kiosk_id,)
        )
        assert [r["kind"] for r in await cur.fetchall()] == ["key_rotation_refused"]
    # The real announcement is applied.
    genuine = {
        "new_public_key": announced.verifier.public_base64(),
        "proof": prove(announced, site.kiosk_id),
    }
    await peer.send_events([peer.event("signing_key_rotated", genuine)])
    await peer.ack_through(2)
    keys = await kiosk_keys.accepted_keys(pool, site.kiosk_id, datetime.now(UTC))
    assert keys is not None
    assert keys.current == announced.verifier.public_base64()
    assert keys.retired == (old,)
