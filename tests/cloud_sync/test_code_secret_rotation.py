"""Code-secret rotation in the cloud (issue 9): the request logged for the kiosk, the answer
that activates a generation (checked by its fingerprint), new codes under the newest generation
while live codes keep theirs, the schedule, and the retirement of a generation no code needs.

The kiosk's half of the exchange is played with the same X25519 code the kiosk runs
(`shared.code_secret_exchange`)."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta

import pytest

from cloud import code_secret_rotation
from cloud.lifecycle import run_once
from cloud.store import code_secrets
from cloud.store.changelog import changes_since
from cloud.store.database import Pool
from cloud.sync.keys import register_kiosk
from cloud.sync.snapshot import build_snapshot
from shared import code_secret_exchange as exchange
from shared.codes import PickupCode, code_hash
from shared.protocol import AllocationState, CodeSecretRotationChange
from shared.signing import Signer

from .conftest import Site, make_site, now


async def _answer(site: Site, generation: int) -> tuple[bytes, bytes]:
    """The kiosk's answer to the logged request: (its public half, the secret it made)."""
    async with site.pool.connection() as conn:
        catchup = await changes_since(conn, site.location_id, 0, limit=500)
    [request] = [
        c
        for c in catchup.changes
        if isinstance(c, CodeSecretRotationChange) and c.generation == generation
    ][-1:]
    assert request.kiosk_id == site.kiosk_id
    private, public = exchange.new_half()
    secret = exchange.generation_secret(
        private, bytes.fromhex(request.cloud_public), site.kiosk_id, generation
    )
    return public, secret


async def _rotate(site: Site) -> tuple[int, bytes]:
    [request] = await code_secret_rotation.rotate(site.pool, [site.kiosk_id], now(), "test")
    public, secret = await _answer(site, request.generation)
    async with site.pool.connection() as conn, conn.transaction():
        assert await code_secrets.activate(
            conn,
            site.kiosk_id,
            request.generation,
            public,
            exchange.secret_fingerprint(secret),
            now(),
        )
    return request.generation, secret


async def _state(site: Site, allocation_id: object) -> AllocationState:
    entries = [
        e["change"]["allocation"]
        for e in await site.changes()
        if e["change"]["kind"] == "allocation"
        and e["change"]["allocation"]["allocation_id"] == str(allocation_id)
    ]
    return AllocationState.model_validate(entries[-1])


async def test_a_request_is_logged_for_the_kiosk_and_asked_again_until_answered(
    site: Site,
) -> None:
    first = await code_secret_rotation.rotate(site.pool, [site.kiosk_id], now(), "test")
    again = await code_secret_rotation.rotate(site.pool, [site.kiosk_id], now(), "test")
    assert [(r.generation, r.new) for r in first] == [(2, True)]
    assert [(r.generation, r.new) for r in again] == [(2, False)]
    logged = [e["change"] for e in await site.changes()]
    assert [c["kind"] for c in logged] == ["code_secret_rotation"] * 2
    assert logged[0] == logged[1]  # the same public half: one exchange per generation
    assert len(bytes.fromhex(logged[0]["cloud_public"])) == 32


async def test_new_codes_use_the_new_generation_and_live_codes_keep_theirs(site: Site) -> None:
    before = await site.reserve(customer="ann")
    generation, secret = await _rotate(site)
    assert generation == 2
    after = await site.reserve(customer="bob")
    joined = await site.reserve(customer="ann")  # joins ann's live code: its generation too

    old = await _state(site, before["allocation_id"])
    new = await _state(site, after["allocation_id"])
    same = await _state(site, joined["allocation_id"])
    assert old.code_generation_for(site.kiosk_id) == 1
    assert old.code_hash_for(site.kiosk_id) == code_hash(
        site.code_secret, PickupCode(before["pickup_code"])
    )
    assert new.code_generations == {site.kiosk_id: 2}
    assert new.code_hash_for(site.kiosk_id) == code_hash(secret, PickupCode(after["pickup_code"]))
    assert same.code_generation_for(site.kiosk_id) == 1
    assert same.code_hash_for(site.kiosk_id) == old.code_hash_for(site.kiosk_id)


async def test_an_answer_with_a_wrong_fingerprint_or_no_request_changes_nothing(
    site: Site,
) -> None:
    [request] = await code_secret_rotation.rotate(site.pool, [site.kiosk_id], now(), "test")
    public, secret = await _answer(site, request.generation)
    async with site.pool.connection() as conn:
        with pytest.raises(code_secrets.RotationRefused, match="fingerprint"):
            await code_secrets.activate(conn, site.kiosk_id, 2, public, "0" * 64, now())
        with pytest.raises(code_secrets.RotationRefused, match="requested"):
            await code_secrets.activate(
                conn, site.kiosk_id, 3, public, exchange.secret_fingerprint(secret), now()
            )
        [info] = await code_secrets.generations(conn, site.kiosk_id)
    assert info.activated_at is None
    after = await site.reserve()
    assert (await _state(site, after["allocation_id"])).code_generations is None


async def test_the_schedule_asks_kiosks_whose_generation_is_older_than_the_period(
    pool: Pool,
) -> None:
    site = await make_site(pool)
    day = timedelta(days=1)
    async with pool.connection() as conn:
        assert site.kiosk_id not in await code_secrets.due_kiosks(conn, now(), day)
        assert site.kiosk_id in await code_secrets.due_kiosks(conn, now() + 2 * day, day)
    await _rotate(site)
    async with pool.connection() as conn:
        assert site.kiosk_id not in await code_secrets.due_kiosks(conn, now() + day / 2, day)
        assert site.kiosk_id in await code_secrets.due_kiosks(conn, now() + 2 * day, day)


async def test_a_generation_is_retired_once_no_live_code_was_issued_under_it(
    site: Site,
) -> None:
    await _rotate(site)  # generation 2
    live = await site.reserve()  # under generation 2
    await _rotate(site)  # generation 3
    assert await code_secret_rotation.retire_unneeded(site.pool, now()) == []
    async with site.pool.connection() as conn:
        await conn.execute(
            "UPDATE allocations SET status = 'cancelled', cancelled_at = now(),"
            " cancel_reason = 'test' WHERE allocation_id = %s",
            (live["allocation_id"],),
        )
    assert await code_secret_rotation.retire_unneeded(site.pool, now()) == [(site.kiosk_id, 2)]
    async with site.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT generation, secret IS NULL AS wiped FROM code_secret_generations"
            " WHERE kiosk_id = %s ORDER BY generation",
            (site.kiosk_id,),
        )
        assert [tuple(r.values()) for r in await cur.fetchall()] == [(2, True), (3, False)]


async def test_a_snapshot_lists_a_request_until_the_kiosk_answers(site: Site) -> None:
    [request] = await code_secret_rotation.rotate(site.pool, [site.kiosk_id], now(), "test")
    snapshot = await build_snapshot(site.pool, site.location_id)
    assert [(r.kiosk_id, r.generation, r.cloud_public) for r in snapshot.code_secret_rotations] == [
        (site.kiosk_id, 2, request.cloud_public.hex())
    ]
    public, secret = await _answer(site, 2)
    async with site.pool.connection() as conn, conn.transaction():
        await code_secrets.activate(
            conn, site.kiosk_id, 2, public, exchange.secret_fingerprint(secret), now()
        )
    assert (await build_snapshot(site.pool, site.location_id)).code_secret_rotations == []


async def _cli(database_url: str, *args: str, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cloud.cli",
        "rotate-code-secret",
        *args,
        env={**os.environ, "LOCKER_DATABASE_URL": database_url, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_command_asks_a_kiosk_or_a_location_and_refuses_unknown_ones(
    pool: Pool, sync_db_url: str
) -> None:
    site = await make_site(pool)
    second = f"{site.kiosk_id}-b"
    async with pool.connection() as conn:
        await register_kiosk(
            conn,
            kiosk_id=second,
            location_id=site.location_id,
            public_key=Signer.generate().verifier.public_base64(),
            code_secret=b"another-kiosk-code-secret",
            now=now(),
        )
    status, out, _ = await _cli(sync_db_url, "--kiosk", site.kiosk_id)
    assert status == 0
    assert f"kiosk {site.kiosk_id}: generation 2 asked" in out
    status, out, _ = await _cli(sync_db_url, "--location", site.location_id)
    assert status == 0
    assert "asked again" in out  # the first kiosk's request still waits for its answer
    assert f"kiosk {second}: generation 2 asked\n" in out
    status, _, err = await _cli(sync_db_url, "--kiosk", "kiosk-nobody")
    assert (status, "no unrevoked kiosk 'kiosk-nobody'" in err) == (2, True)
    status, _, err = await _cli(sync_db_url, "--location", "loc-nowhere")
    assert (status, "no location 'loc-nowhere'" in err) == (2, True)
    status, _, err = await _cli(sync_db_url, "--all-due")
    assert (status, "LOCKER_CODE_SECRET_ROTATION_DAYS" in err) == (2, True)
    kinds = [e["change"]["kind"] for e in await site.changes()]
    assert kinds.count("code_secret_rotation") == 3


async def test_the_lifecycle_round_rotates_only_with_a_schedule(pool: Pool) -> None:
    site = await make_site(pool)
    await run_once(pool, now())
    async with pool.connection() as conn:
        assert await code_secrets.generations(conn, site.kiosk_id) == []
    await run_once(pool, now(), code_secret_rotation=timedelta(microseconds=1))
    async with pool.connection() as conn:
        [info] = await code_secrets.generations(conn, site.kiosk_id)
    assert (info.generation, info.activated_at) == (2, None)
