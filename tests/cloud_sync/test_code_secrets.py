"""One code secret per kiosk (issue 9): every allocation the cloud logs or snapshots carries its
code's hash under each registered kiosk's own secret, a revoked kiosk's not at all, and a kiosk
registered in the middle of a transaction never gets that transaction's changes without its
hash."""

from __future__ import annotations

import asyncio
import secrets

import psycopg
import pytest

from cloud import errors
from cloud.store import changelog, kiosk_keys
from cloud.store.database import Pool
from cloud.sync.keys import register_kiosk
from cloud.sync.snapshot import build_snapshot
from shared.codes import PickupCode, code_hash
from shared.protocol import MAX_KIOSKS_PER_LOCATION, AllocationState
from shared.signing import Signer

from .conftest import Site, make_site, now


async def _second_kiosk(site: Site, kiosk_id: str) -> bytes:
    secret = secrets.token_bytes(32)
    async with site.pool.connection() as conn:
        await register_kiosk(
            conn,
            kiosk_id=kiosk_id,
            location_id=site.location_id,
            public_key=Signer.generate().verifier.public_base64(),
            code_secret=secret,
            now=now(),
        )
    return secret


async def _last_state(site: Site) -> AllocationState:
    entry = (await site.changes())[-1]
    return AllocationState.model_validate(entry["change"]["allocation"])


async def test_each_kiosk_of_a_location_gets_the_code_hashed_under_its_own_secret(
    pool: Pool,
) -> None:
    site = await make_site(pool)
    other = f"{site.kiosk_id}-b"
    other_secret = await _second_kiosk(site, other)
    assert other_secret != site.code_secret
    code = PickupCode((await site.reserve())["pickup_code"])

    state = await _last_state(site)
    assert state.code_hash_for(site.kiosk_id) == code_hash(site.code_secret, code)
    assert state.code_hash_for(other) == code_hash(other_secret, code)
    assert state.code_hash_for("kiosk-elsewhere") is None  # never another kiosk's hash
    # A snapshot hashes every live code afresh, for each kiosk too.
    [listed] = (await build_snapshot(pool, site.location_id)).allocations
    assert listed.code_hashes == state.code_hashes


async def test_a_revoked_kiosk_gets_no_hash_of_a_code_issued_afterwards(pool: Pool) -> None:
    site = await make_site(pool)
    other = f"{site.kiosk_id}-b"
    await _second_kiosk(site, other)
    async with pool.connection() as conn:
        assert await kiosk_keys.revoke(conn, other, now())
    code = PickupCode((await site.reserve())["pickup_code"])
    state = await _last_state(site)
    assert state.code_hashes == {site.kiosk_id: code_hash(site.code_secret, code)}
    async with pool.connection() as conn:
        # The revoked kiosk's missing hash raises no floor: the others still get changes.
        assert not (await changelog.changes_since(conn, site.location_id, 0)).needs_snapshot


async def test_a_second_kiosk_registering_mid_transaction_gets_a_snapshot_not_the_change(
    pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registration race with a kiosk already there: the reservation reads the location's
    secrets (the first kiosk's only) and the second kiosk registers before the append. The
    entry then has no hash for the second kiosk: it must get a snapshot, not the entry."""
    site = await make_site(pool)
    other = f"{site.kiosk_id}-b"
    original = changelog.append
    raced: list[bytes] = []

    async def register_meanwhile(
        conn: psycopg.AsyncConnection, *args: object, **kwargs: object
    ) -> None:
        if not raced:
            raced.append(await asyncio.wait_for(_second_kiosk(site, other), 10))
        await original(conn, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(changelog, "append", register_meanwhile)
    reserved = await site.reserve()
    monkeypatch.undo()
    state = await _last_state(site)
    assert state.code_hash_for(other) is None  # the race happened
    async with pool.connection() as conn:
        catchup = await changelog.changes_since(conn, site.location_id, 0)
    assert catchup.needs_snapshot
    [listed] = (await build_snapshot(pool, site.location_id)).allocations
    assert listed.code_hash_for(other) == code_hash(raced[0], PickupCode(reserved["pickup_code"]))


async def test_a_location_takes_a_limited_number_of_kiosks(pool: Pool) -> None:
    site = await make_site(pool)
    for n in range(1, MAX_KIOSKS_PER_LOCATION):
        await _second_kiosk(site, f"{site.kiosk_id}-{n}")
    with pytest.raises(errors.LimitReached):
        await _second_kiosk(site, f"{site.kiosk_id}-over")
    async with pool.connection() as conn:
        assert await kiosk_keys.revoke(conn, f"{site.kiosk_id}-1", now())
    await _second_kiosk(site, f"{site.kiosk_id}-replacement")  # a revoked one makes room
