"""Invariant 1 under load: concurrent requests never put two parcels in one door."""

import asyncio

import httpx
import psycopg
import pytest


async def test_250_concurrent_allocations_for_50_doors_fill_each_door_once(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 20, "medium": 15, "large": 10, "xlarge": 5})
    # One connection per request, so all 250 are truly in flight together.
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=0)
    client = cloud.client(None, limits=limits)
    key = acme.headers["Authorization"]

    async def allocate(n):
        return await client.post(
            "/api/v1/allocations",
            headers={"Authorization": key},
            json={
                "location_id": "LOC-1",
                "package_id": f"P{n}",
                "order_id": f"O{n}",
                "customer_id": f"C{n % 40}",
                "package_size": "small",
            },
        )

    responses = await asyncio.gather(*(allocate(n) for n in range(250)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 50
    assert statuses.count(409) == 200
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "location_full"
    }
    doors = [r.json()["door_number"] for r in responses if r.status_code == 201]
    assert sorted(doors) == list(range(1, 51))
    async with cloud.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS live, count(DISTINCT door_id) AS doors FROM allocations"
            " WHERE status IN ('reserved', 'deposited', 'expired')"
        )
        assert await cur.fetchone() == {"live": 50, "doors": 50}
        cur = await conn.execute("SELECT count(*) AS n FROM doors WHERE status = 'available'")
        assert (await cur.fetchone())["n"] == 0


async def test_concurrent_retries_of_one_package_get_one_door(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 10})
    body = {
        "location_id": "LOC-1",
        "package_id": "SAME",
        "order_id": "O",
        "customer_id": "C",
        "package_size": "small",
    }
    responses = await asyncio.gather(
        *(acme.post("/api/v1/allocations", json=body) for _ in range(30))
    )
    assert sorted({r.status_code for r in responses}) in ([200, 201], [201])
    assert [r.status_code for r in responses].count(201) == 1
    assert len({r.json()["allocation_id"] for r in responses}) == 1
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM doors WHERE status = 'reserved'")
        assert (await cur.fetchone())["n"] == 1


async def test_database_refuses_a_second_live_allocation_on_a_door(cloud):
    """The constraint holds even for a writer that bypasses the service's code."""
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 2})
    first = (
        await acme.post(
            "/api/v1/allocations",
            json={"location_id": "LOC-1", "package_id": "A", "order_id": "O",
                  "customer_id": "C", "package_size": "small"},
        )
    ).json()  # fmt: skip
    async with cloud.pool.connection() as conn:
        with pytest.raises(
            psycopg.errors.ExclusionViolation, match="allocations_one_live_per_door"
        ):
            await conn.execute(
                """
                INSERT INTO allocations (allocation_id, carrier_id, location_id, door_id,
                    package_id, order_id, customer_id, size, status, pickup_code_id,
                    request_fingerprint, reserved_at, reservation_expires_at, updated_at)
                SELECT gen_random_uuid(), carrier_id, location_id, door_id, 'B', 'O', 'C',
                       size, 'deposited', pickup_code_id, 'x', now(), now(), now()
                FROM allocations WHERE allocation_id = %s
                """,
                (first["allocation_id"],),
            )
