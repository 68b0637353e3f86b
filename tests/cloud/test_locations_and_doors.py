"""Nearest locations, admin location/door management and maintenance."""

import pytest


async def test_nearest_locations_are_ordered_by_distance_with_free_doors_per_size(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location("WARSAW", counts={"small": 2, "large": 1},
                                latitude=52.2297, longitude=21.0122)  # fmt: skip
    await cloud.create_location("LODZ", counts={"small": 1}, latitude=51.7592, longitude=19.4560)
    await cloud.create_location("KRAKOW", counts={"xlarge": 1}, latitude=50.0647, longitude=19.945)
    await cloud.create_location("EMPTY", counts={}, latitude=52.23, longitude=21.0)
    r = await acme.get("/api/v1/locations", params={"lat": 52.2, "lng": 21.0})
    assert r.status_code == 200
    found = r.json()["locations"]
    assert [x["location_id"] for x in found] == ["WARSAW", "LODZ", "KRAKOW"]
    assert found[0]["free_doors"] == {"small": 2, "medium": 0, "large": 1, "xlarge": 0}
    # Warsaw-Lodz is about 120 km, Warsaw-Krakow about 250 km.
    assert 110 < found[1]["distance_km"] < 130
    assert 240 < found[2]["distance_km"] < 265
    r = await acme.get("/api/v1/locations", params={"lat": 52.2, "lng": 21.0, "size": "xlarge"})
    assert [x["location_id"] for x in r.json()["locations"]] == ["KRAKOW"]


async def test_nearest_search_works_across_the_dateline(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location("FIJI-EAST", counts={"small": 1}, latitude=-17.0, longitude=179.9)
    await cloud.create_location("FAR", counts={"small": 1}, latitude=-17.0, longitude=170.0)
    r = await acme.get("/api/v1/locations", params={"lat": -17.0, "lng": -179.9})
    assert next(x["location_id"] for x in r.json()["locations"]) == "FIJI-EAST"


async def test_nearest_search_looks_past_many_full_locations(cloud):
    acme = await cloud.create_carrier()
    for n in range(60):  # more than the first scan window, all without a free door
        await cloud.create_location(f"FULL-{n}", counts={}, latitude=10 + n / 1000, longitude=10)
    await cloud.create_location("FREE", counts={"small": 1}, latitude=11, longitude=10)
    r = await acme.get("/api/v1/locations", params={"lat": 10, "lng": 10})
    assert [x["location_id"] for x in r.json()["locations"]] == ["FREE"]


async def test_location_detail_and_door_listing(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 1, "medium": 2},
                                operating_hours={"mon": [["06:00", "22:00"]]})  # fmt: skip
    r = await acme.get("/api/v1/locations/LOC-1")
    assert r.status_code == 200
    assert r.json()["free_doors"] == {"small": 1, "medium": 2, "large": 0, "xlarge": 0}
    assert r.json()["operating_hours"] == {"mon": [["06:00", "22:00"]]}
    assert (await acme.get("/api/v1/locations/NOPE")).json()["error"]["code"] == (
        "location_not_found"
    )
    doors = (await cloud.admin.get("/api/v1/admin/locations/LOC-1/doors")).json()
    assert [(d["door_number"], d["size"], d["status"]) for d in doors] == [
        (1, "small", "available"),
        (2, "medium", "available"),
        (3, "medium", "available"),
    ]
    assert doors[1]["width_in"] == 10


@pytest.mark.parametrize(
    ("patch", "code"),
    [({"timezone": "Mars/Olympus"}, "bad_request"),
     ({"operating_hours": {"funday": []}}, "bad_request"),
     ({"operating_hours": {"mon": [["22:00", "06:00"]]}}, "bad_request"),
     ({"operating_hours": {"mon": [["6am", "22:00"]]}}, "bad_request"),
     ({"latitude": 95}, "validation_error"),
     ({"door_counts": {"giant": 1}}, "invalid_size")],
)  # fmt: skip
async def test_bad_location_definitions_are_refused_and_create_nothing(cloud, patch, code):
    body = {"location_id": "BAD", "name": "n", "address": "a", "latitude": 1, "longitude": 1,
            "door_counts": {"small": 1}, **patch}  # fmt: skip
    r = await cloud.admin.post("/api/v1/admin/locations", json=body)
    assert r.status_code in (400, 422)
    assert r.json()["error"]["code"] == code
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM locations")
        assert (await cur.fetchone())["n"] == 0


async def test_duplicate_location_and_door_numbers_are_conflicts(cloud):
    await cloud.create_location(counts={"small": 2})
    r = await cloud.admin.post(
        "/api/v1/admin/locations",
        json={"location_id": "LOC-1", "name": "n", "address": "a", "latitude": 1, "longitude": 1},
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "already_exists"
    r = await cloud.admin.post(
        "/api/v1/admin/locations/LOC-1/doors",
        json={"doors": [{"door_number": 3, "size": "large"}, {"door_number": 2, "size": "large"}]},
    )
    assert r.status_code == 409
    doors = (await cloud.admin.get("/api/v1/admin/locations/LOC-1/doors")).json()
    assert len(doors) == 2  # all or nothing: door 3 was not added either
    r = await cloud.admin.post(
        "/api/v1/admin/locations/LOC-1/doors", json={"doors": [{"door_number": 3, "size": "large"}]}
    )
    assert r.status_code == 201
    assert len(r.json()) == 3


async def test_door_in_maintenance_is_never_allocated(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 1, "medium": 1})
    r = await cloud.admin.put(
        "/api/v1/admin/locations/LOC-1/doors/1/maintenance", json={"reason": "broken hinge"}
    )
    assert r.status_code == 200
    assert r.json()["status"] == "maintenance"
    assert r.json()["maintenance_reason"] == "broken hinge"
    body = {"location_id": "LOC-1", "package_id": "P1", "order_id": "O", "customer_id": "C",
            "package_size": "small"}  # fmt: skip
    a = (await acme.post("/api/v1/allocations", json=body)).json()
    assert a["door_number"] == 2  # the small door is out, the medium one takes it
    r = await cloud.admin.delete("/api/v1/admin/locations/LOC-1/doors/1/maintenance")
    assert r.json()["status"] == "available"


async def test_maintenance_moves_a_reservation_to_another_door(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 1, "medium": 1})
    body = {"location_id": "LOC-1", "package_id": "P1", "order_id": "O", "customer_id": "C",
            "package_size": "small"}  # fmt: skip
    a = (await acme.post("/api/v1/allocations", json=body)).json()
    assert a["door_number"] == 1
    r = await cloud.admin.put("/api/v1/admin/locations/LOC-1/doors/1/maintenance")
    assert r.status_code == 200
    moved = (await acme.get(f"/api/v1/allocations/{a['allocation_id']}")).json()
    assert moved["door_number"] == 2
    assert moved["pickup_code"] == a["pickup_code"]


async def test_maintenance_refused_when_a_parcel_is_inside_or_nowhere_to_move(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 2})
    for n in (1, 2):
        body = {"location_id": "LOC-1", "package_id": f"P{n}", "order_id": "O",
                "customer_id": "C", "package_size": "small"}  # fmt: skip
        a = (await acme.post("/api/v1/allocations", json=body)).json()
    await acme.post(
        f"/api/v1/allocations/{a['allocation_id']}/deposit",
        json={"driver_id": "D", "scan_code": "P2"},
    )
    r = await cloud.admin.put("/api/v1/admin/locations/LOC-1/doors/2/maintenance")
    assert r.status_code == 409
    assert r.json()["error"]["details"] == {"door_status": "occupied"}
    r = await cloud.admin.put("/api/v1/admin/locations/LOC-1/doors/1/maintenance")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "wrong_state"
    doors = (await cloud.admin.get("/api/v1/admin/locations/LOC-1/doors")).json()
    assert [d["status"] for d in doors] == ["reserved", "occupied"]


async def test_unknown_door_or_location_in_admin_calls(cloud):
    await cloud.create_location()
    r = await cloud.admin.put("/api/v1/admin/locations/LOC-1/doors/99/maintenance")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "door_not_found"
    r = await cloud.admin.get("/api/v1/admin/locations/NOPE/doors")
    assert r.json()["error"]["code"] == "location_not_found"
    r = await cloud.admin.post(
        "/api/v1/admin/locations/NOPE/doors", json={"doors": [{"door_number": 1, "size": "small"}]}
    )
    assert r.json()["error"]["code"] == "location_not_found"
