"""The change log: an entry per change a kiosk must know, consecutive, in the same transaction."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import psycopg
import pytest

from cloud import doors, errors, lifecycle
from cloud.api.schemas import AllocationOut
from cloud.parcels.requests import AllocationRequest, ReturnRequest
from cloud.parcels.reserve import Job, reserve_many
from cloud.store import changelog
from cloud.store.database import Pool
from cloud.sync.snapshot import build_snapshot
from kiosk.store.code_hash import CodeHasher
from shared.codes import PickupCode, code_hash
from shared.sizes import Size
from tests import parcel_ops

from .conftest import HOLD, WINDOW, Site, make_site, now


def _allocation(entry: dict) -> dict:
    assert entry["change"]["kind"] == "allocation"
    allocation_state: dict = entry["change"]["allocation"]
    return allocation_state


async def test_every_change_gets_the_next_revision(site: Site) -> None:
    first = await site.reserve(customer="anna")
    second = await site.reserve(customer="bob")
    async with site.pool.connection() as conn:
        await parcel_ops.deposit(
            conn,
            carrier_id=site.carrier_id,
            allocation_id=first["allocation_id"],
            driver_id="d1",
            scan_code=first["package_id"],
            now=now(),
            window=WINDOW,
        )
        await parcel_ops.pickup(
            conn,
            location_id=site.location_id,
            code_text=first["pickup_code"],
            carrier_id=None,
            now=now(),
        )
        await parcel_ops.cancel(
            conn,
            carrier_id=site.carrier_id,
            allocation_id=second["allocation_id"],
            reason="customer_cancelled",
            now=now(),
        )
        await doors.set_maintenance(conn, site.location_id, 3, "hinge", now())
        await doors.clear_maintenance(conn, site.location_id, 3, now())

    entries = await site.changes()
    assert [e["revision"] for e in entries] == [1, 2, 3, 4, 5, 6, 7]
    assert await site.revision() == 7
    statuses = [(_allocation(e)["allocation_id"], _allocation(e)["status"]) for e in entries[:5]]
    a, b = str(first["allocation_id"]), str(second["allocation_id"])
    assert statuses == [
        (a, "reserved"),
        (b, "reserved"),
        (a, "deposited"),
        (a, "picked_up"),
        (b, "cancelled"),
    ]
    assert _allocation(entries[0])["proposed_door"] == first["door_number"]
    assert _allocation(entries[3])["proposed_door"] is None  # finished: holds no door
    assert entries[5]["change"] == {
        "kind": "door_maintenance",
        "door": 3,
        "on": True,
        "reason": "hinge",
    }
    assert entries[6]["change"]["on"] is False
    # Every entry is a valid protocol change.
    for entry in entries:
        changelog.parse_change(entry["revision"], entry["change"])


async def test_a_rolled_back_allocation_leaves_no_change(site: Site) -> None:
    class Abort(Exception):
        pass

    async def reserve_then_fail() -> None:
        async with site.pool.connection() as conn, conn.transaction():
            await parcel_ops.reserve(
                conn,
                carrier_id=site.carrier_id,
                request=AllocationRequest(site.location_id, "P-RB", "O-RB", "c", Size.SMALL),
                now=now(),
                hold=HOLD,
            )
            assert await site.revision() == 0  # another connection sees nothing yet
            raise Abort

    with pytest.raises(Abort):
        await reserve_then_fail()
    assert await site.revision() == 0
    assert await site.changes() == []

    # A refused allocation (no door fits) logs nothing either.
    for _ in range(5):
        await site.reserve()
    with pytest.raises(errors.LocationFull):
        await site.reserve()
    assert [e["revision"] for e in await site.changes()] == [1, 2, 3, 4, 5]


async def test_changes_carry_the_code_hash_once_a_kiosk_is_registered(pool: Pool) -> None:
    site = await make_site(pool, register=False)
    before = await site.reserve()
    assert _allocation((await site.changes())[0])["code_hash"] is None

    await site.register_kiosk()
    after = await site.reserve()
    state = _allocation((await site.changes())[1])
    expected = CodeHasher(site.code_secret).hash(PickupCode(after["pickup_code"]))
    assert state["code_hash"] == code_hash(site.code_secret, PickupCode(after["pickup_code"]))
    assert state["code_hash"] == expected

    async with pool.connection() as conn:
        # Revision 1 was logged without a hash: asking from before it needs a snapshot...
        assert (await changelog.changes_since(conn, site.location_id, 0)).needs_snapshot
        # ...and the snapshot's list hashes every live code afresh.
        live = await changelog.live_allocation_states(conn, site.location_id)
        catchup = await changelog.changes_since(conn, site.location_id, 1)
    assert {s.allocation_id: s.code_hash for s in live}[str(before["allocation_id"])] == (
        code_hash(site.code_secret, PickupCode(before["pickup_code"]))
    )
    assert not catchup.needs_snapshot
    assert [c.revision for c in catchup.changes] == [2]


async def test_maintenance_on_a_reserved_door_logs_the_move_then_the_door(site: Site) -> None:
    reserved = await site.reserve()
    assert reserved["door_number"] == 1
    async with site.pool.connection() as conn:
        await doors.set_maintenance(conn, site.location_id, 1, "broken lock", now())
    moved, door = (await site.changes())[1:]
    assert _allocation(moved)["proposed_door"] == 2
    assert door["change"]["door"] == 1
    assert door["change"]["on"] is True


async def test_batched_allocations_each_get_a_revision(pool: Pool) -> None:
    one, two = await make_site(pool), await make_site(pool)
    jobs = [
        Job(
            carrier_id=site.carrier_id,
            request=AllocationRequest(site.location_id, f"B-{i}", f"O-{i}", f"c-{i}", Size.SMALL),
            now=now(),
            hold=HOLD,
        )
        for i, site in enumerate([one, two, one, two, one])
    ]
    async with pool.connection() as conn:
        await reserve_many(conn, jobs)
    assert all(isinstance(job.result, tuple) for job in jobs)
    assert [e["revision"] for e in await one.changes()] == [1, 2, 3]
    assert [e["revision"] for e in await two.changes()] == [1, 2]
    doors_logged = sorted(_allocation(e)["proposed_door"] for e in await one.changes())
    assert doors_logged == [1, 2, 3]


async def test_new_allocations_log_the_state_a_read_back_gives(pool: Pool) -> None:
    """reserve and reserve_many log a new allocation from the rows they wrote (no read-back):
    the entry must be what `record` would have read, code hash included or left out."""
    hashed, plain = await make_site(pool), await make_site(pool, register=False)
    await hashed.reserve(customer="anna")
    await plain.reserve(customer="anna")
    jobs = [
        Job(
            carrier_id=site.carrier_id,
            request=AllocationRequest(site.location_id, f"S-{i}", f"O-{i}", customer, Size.SMALL),
            now=now(),
            hold=HOLD,
        )
        # anna's second parcel joins her live code; bob's gets a new one.
        for i, (site, customer) in enumerate([(hashed, "anna"), (plain, "bob"), (hashed, "bob")])
    ]
    async with pool.connection() as conn:
        await reserve_many(conn, jobs)
        logged = {}
        for site in (hashed, plain):
            entries = [_allocation(e) for e in await site.changes()]
            ids = [uuid.UUID(e["allocation_id"]) for e in entries]
            read_back = await changelog.allocation_states(conn, ids)
            assert entries == [state.model_dump(mode="json") for _, state in read_back]
            logged[site.location_id] = entries
    assert [len(logged[hashed.location_id]), len(logged[plain.location_id])] == [3, 2]
    assert all(e["code_hash"] is not None for e in logged[hashed.location_id])
    assert all(e["code_hash"] is None for e in logged[plain.location_id])
    # The code secret the batch statement reads for the hash stays out of the answers.
    for job in jobs:
        assert isinstance(job.result, tuple)
        assert "code_secret" not in AllocationOut.of(job.result[0]).model_dump()


async def test_an_append_that_fails_undoes_the_allocation(site: Site) -> None:
    """The allocation paths send the change-log append without waiting for its answer (it goes
    with the COMMIT): if it fails, the allocation must not commit without its entry."""
    async with site.pool.connection() as conn:
        # A stray entry at the next revision: the append's insert hits the primary key.
        await conn.execute(
            "INSERT INTO location_changes (location_id, revision, change, created_at)"
            " VALUES (%s, 1, '{}', now())",
            (site.location_id,),
        )

        def request(package: str) -> AllocationRequest:
            return AllocationRequest(site.location_id, package, f"O-{package}", "c", Size.SMALL)

        job = Job(carrier_id=site.carrier_id, request=request("F-1"), now=now(), hold=HOLD)
        await reserve_many(conn, [job])  # the batch, then reserve's redo, both fail
        assert isinstance(job.result, psycopg.errors.UniqueViolation)
        with pytest.raises(psycopg.errors.UniqueViolation):
            await parcel_ops.reserve(
                conn, carrier_id=site.carrier_id, request=request("F-2"), now=now(), hold=HOLD
            )
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM allocations WHERE location_id = %(loc)s) AS allocations,"
            " (SELECT count(*) FROM doors WHERE location_id = %(loc)s"
            "  AND status <> 'available') AS doors_taken",
            {"loc": site.location_id},
        )
        assert await cur.fetchone() == {"allocations": 0, "doors_taken": 0}
        # The stray entry goes: the session's database is shared with later tests, and a job
        # that appends to every location (the lifecycle round's rotation) would hit it too.
        await conn.execute(
            "DELETE FROM location_changes WHERE location_id = %s", (site.location_id,)
        )
    assert await site.revision() == 0


async def test_returns_and_lifecycle_jobs_log_their_changes(site: Site) -> None:
    parcel = await site.reserve()
    held = await site.reserve()
    async with site.pool.connection() as conn:
        await parcel_ops.deposit(
            conn,
            carrier_id=None,
            allocation_id=parcel["allocation_id"],
            driver_id="d",
            scan_code=parcel["package_id"],
            now=now(),
            window=WINDOW,
        )
        ret, _ = await parcel_ops.create_return(
            conn,
            carrier_id=site.carrier_id,
            request=ReturnRequest(site.location_id, "ORD-R", "cust-r", Size.MEDIUM, "too big"),
            now=now(),
            hold=HOLD,
        )
    later = now() + timedelta(days=4)
    await lifecycle.run_once(site.pool, later)
    by_id: dict[str, list[str]] = {}
    for entry in await site.changes():
        state = _allocation(entry)
        by_id.setdefault(state["allocation_id"], []).append(state["status"])
    assert by_id[str(parcel["allocation_id"])] == ["reserved", "deposited", "expired"]
    assert by_id[str(held["allocation_id"])] == ["reserved", "cancelled"]
    assert by_id[str(ret["allocation_id"])] == ["reserved", "cancelled"]
    return_state = next(
        _allocation(e)
        for e in await site.changes()
        if _allocation(e)["allocation_id"] == str(ret["allocation_id"])
    )
    assert return_state["kind"] == "return"
    assert return_state["order_id"] == "ORD-R"
    assert return_state["return_reason"] == "too big"


async def test_compaction_keeps_a_consecutive_suffix_and_older_requests_need_a_snapshot(
    site: Site,
) -> None:
    for _ in range(3):
        await site.reserve()
    async with site.pool.connection() as conn:
        await conn.execute(
            "UPDATE location_changes SET created_at = created_at - interval '30 days'"
            " WHERE location_id = %s AND revision <= 2",
            (site.location_id,),
        )
    deleted = await changelog.compact(site.pool, now() - timedelta(days=7))
    assert deleted >= 2
    assert [e["revision"] for e in await site.changes()] == [3]
    async with site.pool.connection() as conn:
        assert (await changelog.changes_since(conn, site.location_id, 0)).needs_snapshot
        assert (await changelog.changes_since(conn, site.location_id, 1)).needs_snapshot
        kept = await changelog.changes_since(conn, site.location_id, 2)
        current = await changelog.changes_since(conn, site.location_id, 3)
    assert [c.revision for c in kept.changes] == [3]
    assert current.changes == []
    assert not current.needs_snapshot


async def test_a_kiosk_registering_between_the_secret_read_and_the_append_gets_no_unhashed_change(
    pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registration race: the reservation reads the location's code secret (none yet) with
    its allocation; a kiosk registers before the reservation appends to the log. The entry has
    no code hash, above the kiosk's registered revision: served as it is, the kiosk would hold a
    parcel whose code it cannot check."""
    site = await make_site(pool, register=False)
    original = changelog.append
    raced: list[int] = []

    async def register_meanwhile(
        conn: psycopg.AsyncConnection, *args: object, **kwargs: object
    ) -> None:
        if not raced:
            await asyncio.wait_for(site.register_kiosk(), 10)
            raced.append(await site.revision())
        await original(conn, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(changelog, "append", register_meanwhile)
    reserved = await site.reserve()
    monkeypatch.undo()
    [entry] = await site.changes()
    assert _allocation(entry)["allocation_id"] == str(reserved["allocation_id"])
    assert _allocation(entry)["code_hash"] is None  # the race happened: hashed before the secret
    [registered_at] = raced
    async with pool.connection() as conn:
        catchup = await changelog.changes_since(conn, site.location_id, registered_at)
    assert catchup.needs_snapshot  # a snapshot, whose hashes are computed with the secret
    snapshot = await build_snapshot(pool, site.location_id)
    [state] = snapshot.allocations
    assert state.code_hash == code_hash(site.code_secret, PickupCode(reserved["pickup_code"]))
