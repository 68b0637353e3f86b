"""Pre-check, doors within reach and nearby alternatives (issue 10)."""

from __future__ import annotations


def _body(package, **extra):
    return {"location_id": "LOC-1", "package_id": package, "order_id": f"O-{package}",
            "customer_id": f"C-{package}", "package_size": "small", **extra}  # fmt: skip


async def test_an_accessible_allocation_gets_a_door_within_reach_or_its_own_refusal(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 2, "medium": 1})
    r = await cloud.admin.put(
        "/api/v1/admin/locations/LOC-1/doors/3/accessible", json={"accessible": True}
    )
    assert r.status_code == 200, r.text
    assert r.json()["accessible"] is True
    r = await acme.post("/api/v1/allocations", json=_body("P1", accessible=True))
    assert r.status_code == 201, r.text
    assert r.json()["door_number"] == 3  # the only door within reach, though larger
    r = await acme.post("/api/v1/allocations", json=_body("P2", accessible=True))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "no_accessible_door"
    # Without the wish, a small door is still free.
    r = await acme.post("/api/v1/allocations", json=_body("P2"))
    assert r.status_code == 201
    assert r.json()["door_number"] == 1


async def test_a_retry_must_ask_for_the_same_access(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    assert (await acme.post("/api/v1/allocations", json=_body("P1"))).status_code == 201
    r = await acme.post("/api/v1/allocations", json=_body("P1", accessible=True))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "idempotency_conflict"


async def test_location_full_lists_alternatives_only_within_the_distance(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 1}, latitude=52.0, longitude=21.0)
    # About 5.6 km and 111 km away.
    await cloud.create_location("NEAR", counts={"small": 1}, latitude=52.05, longitude=21.0)
    await cloud.create_location("FAR", counts={"small": 1}, latitude=53.0, longitude=21.0)
    assert (await acme.post("/api/v1/allocations", json=_body("P1"))).status_code == 201
    r = await acme.post("/api/v1/allocations", json=_body("P2"))
    assert r.status_code == 409
    details = r.json()["error"]["details"]
    assert [alt["location_id"] for alt in details["nearest"]] == ["NEAR"]
    assert details["within_km"] == 10
    r = await acme.post("/api/v1/allocations", json=_body("P2", alternatives_within_km=200))
    assert [alt["location_id"] for alt in r.json()["error"]["details"]["nearest"]] == [
        "NEAR",
        "FAR",
    ]


async def test_capacity_says_what_fits_now_and_holds_nothing(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 1, "large": 1})
    await cloud.admin.put(
        "/api/v1/admin/locations/LOC-1/doors/1/accessible", json={"accessible": True}
    )
    r = await acme.get("/api/v1/locations/LOC-1/capacity")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["free_doors"] == {"small": 1, "medium": 0, "large": 1, "xlarge": 0}
    assert body["can_take"] == {"small": True, "medium": True, "large": True, "xlarge": False}
    assert body["can_take_accessible"] == {
        "small": True, "medium": False, "large": False, "xlarge": False
    }  # fmt: skip
    again = (await acme.get("/api/v1/locations/LOC-1/capacity")).json()
    assert again == body  # nothing was held
    r = await acme.get("/api/v1/locations/NOWHERE/capacity")
    assert r.status_code == 404
