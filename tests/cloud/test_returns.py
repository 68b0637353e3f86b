"""Customer returns: a door and a one-time return code, dropped off, then collected."""


async def create_return(client, order_id="ORD-1", **overrides):
    body = {"location_id": "LOC-1", "order_id": order_id, "customer_id": "C1",
            "package_size": "medium", "reason": "wrong colour"}  # fmt: skip
    body.update(overrides)
    return await client.post("/api/v1/returns", json=body)


async def test_return_gets_a_door_and_code_and_is_idempotent_per_order(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 1, "medium": 1})
    r = await create_return(acme)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["door_number"] == 2  # medium
    assert body["status"] == "reserved"
    assert len(body["return_code"]) == 6
    again = await create_return(acme)
    assert again.status_code == 200
    assert again.json()["return_id"] == body["return_id"]
    conflict = await create_return(acme, package_size="small")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT kind, payload->>'return_code' AS code FROM notifications")
        assert await cur.fetchall() == [{"kind": "return_code", "code": body["return_code"]}]


async def test_drop_off_with_return_code_then_collection_frees_the_door(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"medium": 1})
    ret = (await create_return(acme)).json()
    r = await acme.post(
        "/api/v1/returns/drop-off", json={"location_id": "LOC-1", "return_code": ret["return_code"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "deposited"
    again = await acme.post(
        "/api/v1/returns/drop-off", json={"location_id": "LOC-1", "return_code": ret["return_code"]}
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "code_already_used"
    r = await acme.post(f"/api/v1/allocations/{ret['allocation_id']}/collect")
    assert r.json()["status"] == "collected"
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT status FROM doors")
        assert (await cur.fetchone())["status"] == "available"


async def test_return_code_does_not_open_pickups_and_vice_versa(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"medium": 2})
    ret = (await create_return(acme)).json()
    r = await acme.post(
        "/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": ret["return_code"]}
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "code_not_found"


async def test_return_at_a_full_location_suggests_others(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 1})
    await cloud.create_location("LOC-2", counts={"large": 1}, latitude=52.3)
    r = await create_return(acme)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "location_full"
    assert [x["location_id"] for x in r.json()["error"]["details"]["nearest"]] == ["LOC-2"]


async def test_deposit_endpoint_refuses_a_return(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    ret = (await create_return(acme)).json()
    r = await acme.post(
        f"/api/v1/allocations/{ret['allocation_id']}/deposit",
        json={"driver_id": "D", "scan_code": "RET-ORD-1"},
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "wrong_state"
