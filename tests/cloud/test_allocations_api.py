"""POST /api/v1/allocations and GET /api/v1/allocations/{id} against real PostgreSQL."""

import uuid

import pytest


def alloc_body(package_id="P1", **overrides):
    body = {
        "location_id": "LOC-1",
        "package_id": package_id,
        "order_id": f"O-{package_id}",
        "customer_id": "C1",
        "package_size": "small",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


async def test_allocation_returns_door_address_code_and_hold_expiry(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 1})
    r = await acme.post("/api/v1/allocations", json=alloc_body())
    assert r.status_code == 201
    body = r.json()
    assert body["status"] == "reserved"
    assert body["door_number"] == 1
    assert body["address"] == "LOC-1 street 1"
    assert len(body["pickup_code"]) == 6
    assert body["expires_at"] == "2026-03-03T09:00:00Z"  # 24 h hold from the test clock
    got = await acme.get(f"/api/v1/allocations/{body['allocation_id']}")
    assert got.status_code == 200
    assert got.json() == body


async def test_smallest_fitting_door_is_chosen_then_larger_sizes(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 1, "medium": 1, "large": 1})
    sizes = []
    for n in range(3):
        r = await acme.post("/api/v1/allocations", json=alloc_body(f"P{n}"))
        assert r.status_code == 201
        sizes.append(r.json()["door_size"])
    assert sizes == ["small", "medium", "large"]


async def test_dimensions_pick_the_smallest_size_in_any_orientation(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 1, "medium": 1})
    r = await acme.post(
        "/api/v1/allocations",
        json=alloc_body(package_size=None, dimensions={"length": 12, "width": 6, "height": 8}),
    )
    assert r.status_code == 201
    assert r.json()["size"] == "small"
    r = await acme.post(
        "/api/v1/allocations",
        json=alloc_body("P2", package_size=None, dimensions={"length": 7, "width": 7, "height": 7}),
    )
    assert r.json()["size"] == "medium"


async def test_door_interior_is_checked_against_dimensions(cloud):
    acme = await cloud.create_carrier()
    # Door 1 is a "medium" built shallow; the parcel fits medium but not that door.
    r = await cloud.admin.post(
        "/api/v1/admin/locations",
        json={
            "location_id": "LOC-1", "name": "x", "address": "a", "latitude": 1, "longitude": 1,
            "doors": [
                {"door_number": 1, "size": "medium",
                 "dimensions": {"length": 10, "width": 12, "height": 9}},
                {"door_number": 2, "size": "medium"},
            ],
        },
    )  # fmt: skip
    assert r.status_code == 201, r.text
    r = await acme.post(
        "/api/v1/allocations",
        json=alloc_body(package_size=None, dimensions={"length": 10, "width": 10, "height": 17}),
    )
    assert r.status_code == 201
    assert r.json()["door_number"] == 2


async def test_retry_with_same_package_returns_the_same_allocation(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    first = await acme.post("/api/v1/allocations", json=alloc_body())
    again = await acme.post("/api/v1/allocations", json=alloc_body())
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["allocation_id"] == first.json()["allocation_id"]
    assert again.json()["locker_number"] == first.json()["locker_number"]
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM doors WHERE status = 'reserved'")
        assert (await cur.fetchone())["n"] == 1


async def test_reusing_a_package_id_with_other_details_is_a_conflict(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    await acme.post("/api/v1/allocations", json=alloc_body())
    r = await acme.post("/api/v1/allocations", json=alloc_body(customer_id="someone-else"))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "idempotency_conflict"


async def test_same_package_id_from_two_carriers_are_two_parcels(cloud):
    acme = await cloud.create_carrier("acme")
    other = await cloud.create_carrier("other")
    await cloud.create_location()
    a = await acme.post("/api/v1/allocations", json=alloc_body())
    b = await other.post("/api/v1/allocations", json=alloc_body())
    assert a.status_code == b.status_code == 201
    assert a.json()["locker_number"] != b.json()["locker_number"]


async def test_full_location_gets_409_with_nearest_locations_that_have_the_size(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location("LOC-1", counts={"small": 1}, latitude=52.23, longitude=21.01)
    await cloud.create_location("NEAR", counts={"small": 1}, latitude=52.24, longitude=21.02)
    await cloud.create_location("FAR", counts={"large": 1}, latitude=50.06, longitude=19.94)
    await cloud.create_location("NEAR-NO-SMALL", counts={}, latitude=52.231, longitude=21.011)
    assert (await acme.post("/api/v1/allocations", json=alloc_body("P1"))).status_code == 201
    r = await acme.post("/api/v1/allocations", json=alloc_body("P2"))
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "location_full"
    nearest = [loc["location_id"] for loc in error["details"]["nearest"]]
    assert nearest == ["NEAR"]  # FAR is 250 km off: past the default 10 km (issue 10)
    assert error["details"]["nearest"][0]["distance_km"] < 2
    r = await acme.post(
        "/api/v1/allocations", json={**alloc_body("P2"), "alternatives_within_km": 500}
    )
    nearest = [loc["location_id"] for loc in r.json()["error"]["details"]["nearest"]]
    assert nearest == ["NEAR", "FAR"]  # a large door takes a small parcel too


async def test_two_parcels_for_one_customer_share_one_pickup_code(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    a = (await acme.post("/api/v1/allocations", json=alloc_body("P1"))).json()
    b = (await acme.post("/api/v1/allocations", json=alloc_body("P2"))).json()
    c = (await acme.post("/api/v1/allocations", json=alloc_body("P3", customer_id="C2"))).json()
    assert a["pickup_code"] == b["pickup_code"]
    assert c["pickup_code"] != a["pickup_code"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (alloc_body(location_id="NOPE"), 404, "location_not_found"),
        (alloc_body(package_size="huge"), 422, "invalid_size"),
        (alloc_body(package_size=None), 422, "validation_error"),
        (alloc_body(package_size=None, dimensions={"length": 30, "width": 30, "height": 40}),
         422, "package_too_large"),
        (alloc_body(package_size=None, dimensions={"length": -1, "width": 3, "height": 4}),
         422, "validation_error"),
        (alloc_body(package_size="small", dimensions={"length": 7, "width": 7, "height": 7}),
         422, "invalid_size"),
        (alloc_body(package_id=""), 422, "validation_error"),
        (alloc_body(package_id="x" * 500), 422, "validation_error"),
        ({**alloc_body(), "surprise": 1}, 422, "validation_error"),
    ],
)  # fmt: skip
async def test_bad_allocation_requests_are_refused_and_change_nothing(cloud, body, status, code):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    r = await acme.post("/api/v1/allocations", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    async with cloud.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM allocations) AS a,"
            " (SELECT count(*) FROM pickup_codes) AS c,"
            " (SELECT count(*) FROM doors WHERE status <> 'available') AS d"
        )
        assert await cur.fetchone() == {"a": 0, "c": 0, "d": 0}


async def test_inactive_location_takes_no_parcels(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    r = await cloud.admin.patch("/api/v1/admin/locations/LOC-1", json={"active": False})
    assert r.status_code == 200
    assert r.json()["active"] is False
    r = await acme.post("/api/v1/allocations", json=alloc_body())
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "location_inactive"
    nearby = await acme.get("/api/v1/locations", params={"lat": 52.23, "lng": 21.01})
    assert nearby.json()["locations"] == []
    r = await cloud.admin.patch("/api/v1/admin/locations/LOC-1", json={"active": True})
    assert (await acme.post("/api/v1/allocations", json=alloc_body())).status_code == 201
    r = await cloud.admin.patch("/api/v1/admin/locations/NOPE", json={"active": True})
    assert r.status_code == 404
    r = await cloud.admin.patch("/api/v1/admin/locations/LOC-1", json={"timezone": "Nowhere/X"})
    assert r.status_code == 400


async def test_unknown_allocation_is_404(cloud):
    acme = await cloud.create_carrier()
    r = await acme.get(f"/api/v1/allocations/{uuid.uuid4()}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "allocation_not_found"
    r = await acme.get("/api/v1/allocations/not-a-uuid")
    assert r.status_code == 422
