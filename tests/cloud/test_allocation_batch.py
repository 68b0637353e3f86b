"""Batched allocation: many requests in one transaction give the answers one by one would."""

import asyncio
import socket
from datetime import UTC, datetime, timedelta

from cloud import errors
from cloud.parcels.batcher import AllocationBatcher
from cloud.parcels.requests import AllocationRequest
from cloud.parcels.reserve import Job, reserve_many
from cloud.server import bind
from shared.codes import generate_code
from shared.sizes import Size

HOLD = timedelta(hours=1)
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def job(package: str, *, location="LOC-1", customer="C1", size=Size.SMALL, order=None) -> Job:
    request = AllocationRequest(
        location_id=location,
        package_id=package,
        order_id=order or f"O-{package}",
        customer_id=customer,
        size=size,
    )
    return Job(carrier_id="acme", request=request, now=NOW, hold=HOLD)


async def test_one_batch_answers_each_request_as_reserve_would(cloud):
    await cloud.create_carrier()
    await cloud.create_location(counts={"small": 2, "medium": 1})
    await cloud.create_location("OFF", counts={"small": 1})
    r = await cloud.admin.patch("/api/v1/admin/locations/OFF", json={"active": False})
    assert r.status_code == 200, r.text
    jobs = [
        job("P1"),
        job("P2"),  # same customer, same location: shares P1's code, gets the next door
        job("P3", customer="C2"),  # only the medium door is left
        job("P4", customer="C3"),  # none left
        job("P5", location="NOWHERE"),
        job("P6", location="OFF"),
        job("P1"),  # the same package again in the same batch: a retry of P1
        job("P2", order="other"),  # the same package with other details
    ]
    async with cloud.pool.connection() as conn:
        await reserve_many(conn, jobs)
    results = [j.result for j in jobs]
    p1, p2, p3 = (r for r, _ in results[:3])
    assert [r[1] for r in results[:3]] == [True, True, True]
    assert (p1.door_number, p2.door_number, p3.door_number) == (1, 2, 3)
    assert p3.door_size == "medium"
    assert p1.pickup_code == p2.pickup_code != p3.pickup_code
    assert p1.location_name == "LOC-1"
    assert p1.address == "LOC-1 street 1"
    assert p1.reservation_expires_at == NOW + HOLD
    assert isinstance(results[3], errors.LocationFull)
    assert isinstance(results[4], errors.LocationNotFound)
    assert isinstance(results[5], errors.LocationInactive)
    replay, created = results[6]
    assert (replay.allocation_id, created) == (p1.allocation_id, False)
    assert isinstance(results[7], errors.IdempotencyConflict)
    async with cloud.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n, count(DISTINCT xmin::text) AS txns FROM allocations"
        )
        assert await cur.fetchone() == {"n": 3, "txns": 1}
        cur = await conn.execute("SELECT count(*) AS n FROM pickup_codes")
        assert (await cur.fetchone())["n"] == 2


async def test_a_package_already_allocated_is_answered_as_a_retry(cloud):
    await cloud.create_carrier()
    await cloud.create_location(counts={"small": 3})
    jobs = [job("A", customer="C1"), job("B", customer="C2")]
    async with cloud.pool.connection() as conn:
        # B was allocated before, by an earlier request.
        await conn.execute(
            "INSERT INTO pickup_codes (location_id, carrier_id, customer_id, kind, code,"
            " created_at) VALUES ('LOC-1', 'acme', 'C9', 'pickup', 'ABCDEF', %s)",
            (NOW,),
        )
        await conn.execute(
            "INSERT INTO allocations (allocation_id, carrier_id, location_id, door_id, kind,"
            " package_id, order_id, customer_id, size, status, pickup_code_id,"
            " request_fingerprint, reserved_at, reservation_expires_at, updated_at)"
            " SELECT gen_random_uuid(), 'acme', 'LOC-1', door_id, 'delivery', 'B', 'O-B',"
            " 'C2', 'small', 'reserved', (SELECT pickup_code_id FROM pickup_codes),"
            " %s, %s, %s, %s FROM doors WHERE door_number = 3",
            (jobs[1].request.fingerprint(), NOW, NOW + HOLD, NOW),
        )
        await conn.execute("UPDATE doors SET status = 'reserved' WHERE door_number = 3")
        await reserve_many(conn, jobs)
    a, created_a = jobs[0].result
    b, created_b = jobs[1].result
    assert (created_a, created_b) == (True, False)
    assert a.door_number == 1
    assert b.door_number == 3


async def test_code_collision_rolls_the_batch_back_and_redoes_it(cloud, monkeypatch):
    await cloud.create_carrier()
    await cloud.create_location(counts={"small": 3})
    async with cloud.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO pickup_codes (location_id, carrier_id, customer_id, kind, code,"
            " created_at) VALUES ('LOC-1', 'acme', 'OTHER', 'pickup', 'ABCDEF', %s)",
            (NOW,),
        )
        # Every batched statement draws the code another customer holds; the redo, one by one,
        # draws afresh (the first two draws are the batch's).
        draws = iter(["ABCDEF", "ABCDEF"])
        monkeypatch.setattr(
            "cloud.parcels.reserve.generate_code", lambda: next(draws, None) or generate_code()
        )
        jobs = [job("A", customer="C1"), job("B", customer="C2")]
        await reserve_many(conn, jobs)
        assert [j.result[1] for j in jobs] == [True, True]
        cur = await conn.execute(
            "SELECT count(*) AS n FROM doors WHERE status = 'reserved'"
            " AND door_id IN (SELECT door_id FROM allocations)"
        )
        assert (await cur.fetchone())["n"] == 2
        cur = await conn.execute("SELECT count(*) AS n FROM doors WHERE status = 'reserved'")
        assert (await cur.fetchone())["n"] == 2


async def test_batcher_makes_concurrent_requests_together(cloud):
    await cloud.create_carrier()
    await cloud.create_location(counts={"small": 40})
    batcher = AllocationBatcher(cloud.pool, workers=1, max_batch=64)
    batcher.start()
    try:
        results = await asyncio.gather(
            *(
                batcher.reserve(
                    carrier_id="acme",
                    request=job(f"P{n}", customer=f"C{n}").request,
                    now=NOW,
                    hold=HOLD,
                )
                for n in range(30)
            ),
            batcher.reserve(
                carrier_id="acme", request=job("X", location="NOWHERE").request, now=NOW, hold=HOLD
            ),
            return_exceptions=True,
        )
    finally:
        await batcher.stop()
    assert sorted(r[0].door_number for r in results[:30]) == list(range(1, 31))
    assert isinstance(results[30], errors.LocationNotFound)
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT count(DISTINCT xmin::text) AS txns FROM allocations")
        assert (await cur.fetchone())["txns"] < 30


async def test_served_connections_have_nagle_off():
    """Nagle plus delayed ACK once added ~40 ms to every response (docs/BENCHMARKS.md)."""
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    sock = bind("127.0.0.1", 0)
    server = await asyncio.start_server(on_connection, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        assert await asyncio.wait_for(accepted, 5) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
