"""Deposit by the driver and pickup by the customer, with every refusal."""

import pytest


async def allocate(client, package_id="P1", customer_id="C1", location_id="LOC-1", size="small"):
    r = await client.post(
        "/api/v1/allocations",
        json={
            "location_id": location_id,
            "package_id": package_id,
            "order_id": f"O-{package_id}",
            "customer_id": customer_id,
            "package_size": size,
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


async def deposit(client, allocation, scan=None):
    return await client.post(
        f"/api/v1/allocations/{allocation['allocation_id']}/deposit",
        json={"driver_id": "D1", "scan_code": scan or allocation["package_id"]},
    )


async def door_statuses(cloud):
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT door_number, status FROM doors ORDER BY door_number")
        return {r["door_number"]: r["status"] for r in await cur.fetchall()}


async def test_deposit_starts_the_pickup_window_and_queues_the_code(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    a = await allocate(acme)
    r = await deposit(acme, a)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "deposited"
    assert body["driver_id"] == "D1"
    assert body["pickup_expires_at"] == "2026-03-05T09:00:00Z"  # 3 days
    assert body["expires_at"] == body["pickup_expires_at"]
    assert (await door_statuses(cloud))[1] == "occupied"
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT kind FROM notifications ORDER BY due_at")
        assert [r["kind"] for r in await cur.fetchall()] == [
            "pickup_code",
            "reminder",
            "expires_today",
        ]


async def test_deposit_with_the_wrong_barcode_is_refused_and_changes_nothing(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    a = await allocate(acme)
    r = await deposit(acme, a, scan="SOMETHING-ELSE")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "scan_mismatch"
    assert (await acme.get(f"/api/v1/allocations/{a['allocation_id']}")).json()["status"] == (
        "reserved"
    )
    assert (await door_statuses(cloud))[1] == "reserved"


async def test_second_deposit_is_a_wrong_state(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    a = await allocate(acme)
    assert (await deposit(acme, a)).status_code == 200
    r = await deposit(acme, a)
    assert r.status_code == 409
    assert r.json()["error"] == {
        "code": "wrong_state",
        "message": "cannot deposit an allocation that is deposited",
        "details": {"status": "deposited"},
    }


async def test_pickup_opens_every_deposited_parcel_of_the_code_once(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 3})
    a = await allocate(acme, "P1")
    b = await allocate(acme, "P2")
    for x in (a, b):
        assert (await deposit(acme, x)).status_code == 200
    r = await acme.post(
        "/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": a["pickup_code"].lower()}
    )
    assert r.status_code == 200, r.text
    assert r.json()["locker_numbers"] == ["1", "2"]
    assert {o["package_id"] for o in r.json()["opened"]} == {"P1", "P2"}
    assert await door_statuses(cloud) == {1: "available", 2: "available", 3: "available"}
    again = await acme.post(
        "/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": a["pickup_code"]}
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "code_already_used"
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT DISTINCT status FROM notifications")
        # Nothing is left to tell: a reminder (or a code not yet sent) for a parcel
        # already taken would only confuse the customer.
        assert [r["status"] for r in await cur.fetchall()] == ["cancelled"]


async def test_pickup_before_deposit_is_refused(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    a = await allocate(acme)
    r = await acme.post(
        "/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": a["pickup_code"]}
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "not_yet_deposited"
    assert (await door_statuses(cloud))[1] == "reserved"


async def test_parcel_still_on_its_way_gets_a_new_code_after_a_pickup(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 3})
    a = await allocate(acme, "P1")
    b = await allocate(acme, "P2")
    assert a["pickup_code"] == b["pickup_code"]
    await deposit(acme, a)
    r = await acme.post(
        "/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": a["pickup_code"]}
    )
    assert r.json()["locker_numbers"] == [a["locker_number"]]
    b_now = (await acme.get(f"/api/v1/allocations/{b['allocation_id']}")).json()
    assert b_now["pickup_code"] != a["pickup_code"]
    await deposit(acme, b_now)
    r = await acme.post(
        "/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": b_now["pickup_code"]}
    )
    assert r.json()["locker_numbers"] == [b["locker_number"]]


async def test_code_works_only_at_its_own_location(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location("LOC-1")
    await cloud.create_location("LOC-2")
    a = await allocate(acme)
    await deposit(acme, a)
    r = await acme.post(
        "/api/v1/pickup", json={"location_id": "LOC-2", "pickup_code": a["pickup_code"]}
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "code_not_found"
    assert r.json()["error"]["details"] == {"reason": "wrong_location", "location_id": "LOC-1"}
    assert (await door_statuses(cloud))[1] == "occupied"


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [("ABCDE", 422, "invalid_code"), ("ABCDE0", 422, "invalid_code"),
     ("ZZZZZZ", 404, "code_not_found")],
)  # fmt: skip
async def test_bad_or_unknown_codes_are_refused(cloud, code, status, error):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    r = await acme.post("/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": code})
    assert r.status_code == status
    assert r.json()["error"]["code"] == error


async def test_cancel_frees_the_door_and_is_idempotent(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 1})
    a = await allocate(acme)
    r = await acme.post(f"/api/v1/allocations/{a['allocation_id']}/cancel", json={"reason": "lost"})
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"
    assert r.json()["cancel_reason"] == "lost"
    again = await acme.post(f"/api/v1/allocations/{a['allocation_id']}/cancel")
    assert again.status_code == 200
    assert (await door_statuses(cloud))[1] == "available"
    # The freed door serves the next parcel; the cancelled parcel's code is dead.
    b = await allocate(acme, "P2")
    assert b["door_number"] == 1
    assert b["pickup_code"] != a["pickup_code"]


async def test_cancel_after_deposit_is_refused(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    a = await allocate(acme)
    await deposit(acme, a)
    r = await acme.post(f"/api/v1/allocations/{a['allocation_id']}/cancel")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "wrong_state"
    assert (await door_statuses(cloud))[1] == "occupied"


async def test_carrier_recall_collects_a_deposited_parcel(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    a = await allocate(acme)
    await deposit(acme, a)
    r = await acme.post(f"/api/v1/allocations/{a['allocation_id']}/collect")
    assert r.status_code == 200
    assert r.json()["status"] == "collected"
    assert (await door_statuses(cloud))[1] == "available"
    r = await acme.post(
        "/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": a["pickup_code"]}
    )
    assert r.status_code == 410
    assert r.json()["error"]["code"] == "code_expired"
