"""Who may call what, and how malformed requests are refused."""

import json

import pytest


async def test_missing_and_wrong_keys_get_401(cloud):
    r = await cloud.anonymous.post("/api/v1/allocations", json={})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "missing_api_key"
    wrong = cloud.client("lk_not-a-real-key")
    r = await wrong.get("/api/v1/locations?lat=1&lng=1")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    r = await cloud.anonymous.get(
        "/api/v1/locations?lat=1&lng=1", headers={"Authorization": "Basic abc"}
    )
    assert r.status_code == 401


async def test_x_api_key_header_works_too(cloud):
    acme = await cloud.create_carrier()
    key = acme.headers["Authorization"].removeprefix("Bearer ")
    r = await cloud.anonymous.get("/api/v1/locations?lat=1&lng=1", headers={"X-API-Key": key})
    assert r.status_code == 200


async def test_carrier_key_cannot_use_admin_endpoints(cloud):
    acme = await cloud.create_carrier()
    r = await acme.post("/api/v1/admin/carriers", json={"carrier_id": "evil", "name": "evil"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "admin_only"


async def test_admin_key_cannot_allocate_for_a_carrier(cloud):
    await cloud.create_location()
    r = await cloud.admin.post(
        "/api/v1/allocations",
        json={"location_id": "LOC-1", "package_id": "P", "order_id": "O", "customer_id": "C",
              "package_size": "small"},
    )  # fmt: skip
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "carrier_only"


async def test_carrier_sees_and_changes_only_its_own_allocations(cloud):
    acme = await cloud.create_carrier("acme")
    other = await cloud.create_carrier("other")
    await cloud.create_location()
    a = (
        await acme.post(
            "/api/v1/allocations",
            json={"location_id": "LOC-1", "package_id": "P", "order_id": "O",
                  "customer_id": "C", "package_size": "small"},
        )
    ).json()  # fmt: skip
    path = f"/api/v1/allocations/{a['allocation_id']}"
    for method, suffix, body in [
        ("GET", "", None),
        ("POST", "/cancel", {}),
        ("POST", "/deposit", {"driver_id": "D", "scan_code": "P"}),
        ("POST", "/collect", None),
    ]:
        r = await other.request(method, path + suffix, json=body)
        assert r.status_code == 404, (method, suffix)
        assert r.json()["error"]["code"] == "allocation_not_found"
    r = await other.post(
        "/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": a["pickup_code"]}
    )
    assert r.status_code == 404
    assert (await acme.get(path)).json()["status"] == "reserved"
    # The operator sees everything.
    assert (await cloud.admin.get(path)).status_code == 200


async def test_malformed_json_is_400_and_changes_nothing(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    r = await acme.post(
        "/api/v1/allocations",
        content=b'{"location_id": "LOC-1", "package_id": ',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "malformed_json"


async def test_body_that_is_not_an_object_is_a_validation_error(cloud):
    acme = await cloud.create_carrier()
    r = await acme.post("/api/v1/allocations", json=[1, 2, 3])
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"


async def test_oversized_body_is_413_before_parsing(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    big = {"location_id": "LOC-1", "package_id": "P", "order_id": "O", "customer_id": "C",
           "package_size": "small", "pad": "x" * 20_000}  # fmt: skip
    r = await acme.post("/api/v1/allocations", json=big)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


async def test_oversized_chunked_body_is_413(cloud):
    acme = await cloud.create_carrier()

    async def chunks():
        for _ in range(40):
            yield b"x" * 1024

    r = await acme.post(
        "/api/v1/allocations", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


async def test_unknown_route_and_method_have_machine_readable_errors(cloud):
    r = await cloud.admin.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = await cloud.admin.delete("/api/v1/pickup")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


async def test_openapi_document_lists_every_endpoint(cloud):
    r = await cloud.anonymous.get("/openapi.json")
    assert r.status_code == 200
    paths = set(json.loads(r.text)["paths"])
    assert {
        "/api/v1/allocations",
        "/api/v1/allocations/{allocation_id}",
        "/api/v1/allocations/{allocation_id}/deposit",
        "/api/v1/allocations/{allocation_id}/cancel",
        "/api/v1/allocations/{allocation_id}/collect",
        "/api/v1/pickup",
        "/api/v1/returns",
        "/api/v1/returns/drop-off",
        "/api/v1/locations",
        "/api/v1/locations/{location_id}",
        "/api/v1/admin/carriers",
        "/api/v1/admin/locations",
        "/api/v1/admin/locations/{location_id}/doors",
        "/api/v1/admin/locations/{location_id}/doors/{door_number}/maintenance",
    } <= paths


@pytest.mark.parametrize(
    "query",
    ["lat=91&lng=0", "lat=0&lng=181", "lat=abc&lng=0", "lng=0", "lat=0&lng=0&size=huge",
     "lat=0&lng=0&limit=0"],
)  # fmt: skip
async def test_bad_location_queries_are_refused(cloud, query):
    acme = await cloud.create_carrier()
    r = await acme.get(f"/api/v1/locations?{query}")
    assert r.status_code == 422
    assert r.json()["error"]["code"] in {"validation_error", "invalid_size"}


@pytest.mark.parametrize("location_id", ["WAW.1", "WAW/1", "WAW:1", "L" * 65])
async def test_a_location_id_no_sync_topic_can_carry_is_refused_and_nothing_is_created(
    cloud, location_id
):
    """Issue 13: the id is a level of the location's MQTT topics, and NATS's MQTT listener
    refuses a topic with a '.' (shared.topic_ids)."""
    r = await cloud.admin.post(
        "/api/v1/admin/locations",
        json={
            "location_id": location_id,
            "name": "dotted",
            "address": "street 1",
            "latitude": 52.2,
            "longitude": 21.0,
            "door_counts": {"small": 1},
        },
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_id"
    assert error["details"] == {"field": "location_id"}
    assert "no '.'" in error["message"]
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM locations")
        row = await cur.fetchone()
    assert row is not None
    assert row["n"] == 0
