"""Edge cases a carrier integrating against the API blind runs into (issue 10's defects)."""

from __future__ import annotations

import asyncio

import pytest

ALLOCATION = {
    "location_id": "LOC-1",
    "package_id": "PKG-1",
    "order_id": "O-1",
    "customer_id": "C-1",
    "package_size": "small",
}


@pytest.mark.parametrize("free_doors", [1, 3])
async def test_concurrent_retries_of_one_package_all_get_its_allocation(cloud, free_doors):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": free_doors})
    answers = await asyncio.gather(
        *(acme.post("/api/v1/allocations", json=ALLOCATION) for _ in range(20))
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 19 + [201], [r.text for r in answers if r.status_code >= 400]
    assert len({r.json()["allocation_id"] for r in answers}) == 1
    doors = (await cloud.admin.get("/api/v1/admin/locations/LOC-1/doors")).json()
    assert sum(d["status"] == "reserved" for d in doors) == 1


async def _reserved(acme):
    r = await acme.post("/api/v1/allocations", json=ALLOCATION)
    assert r.status_code == 201, r.text
    return r.json()


NUL = "bad\u0000text"


async def test_nul_in_any_free_text_field_is_422_and_the_connection_lives(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    allocation = await _reserved(acme)
    location = {
        "location_id": "LOC-2",
        "name": "two",
        "address": "street 2",
        "latitude": 1,
        "longitude": 1,
    }
    attempts = [
        (acme, "POST", f"/api/v1/allocations/{allocation['allocation_id']}/cancel",
         {"reason": NUL}),
        (acme, "POST", "/api/v1/returns",
         {"location_id": "LOC-1", "order_id": "O", "customer_id": "C", "package_size": "small",
          "reason": NUL}),
        (cloud.admin, "POST", "/api/v1/admin/locations", {**location, "name": NUL}),
        (cloud.admin, "POST", "/api/v1/admin/locations", {**location, "address": NUL}),
        (cloud.admin, "POST", "/api/v1/admin/locations", {**location, "timezone": NUL}),
        (cloud.admin, "PATCH", "/api/v1/admin/locations/LOC-1", {"name": NUL}),
        (cloud.admin, "PATCH", "/api/v1/admin/locations/LOC-1", {"address": NUL}),
        (cloud.admin, "POST", "/api/v1/admin/carriers", {"carrier_id": "x", "name": NUL}),
        (cloud.admin, "POST", "/api/v1/admin/carriers",
         {"carrier_id": "x", "name": "x", "webhook_url": f"https://example.com/{NUL}"}),
        (cloud.admin, "PUT", "/api/v1/admin/locations/LOC-1/doors/2/maintenance",
         {"reason": NUL}),
        (cloud.admin, "POST", "/api/v1/admin/locations/LOC-1/doors/2/open", {"reason": NUL}),
        (acme, "POST", f"/api/v1/allocations/{allocation['allocation_id']}/deposit",
         {"driver_id": "D", "scan_code": NUL}),
        (acme, "POST", "/api/v1/pickup", {"location_id": "LOC-1", "pickup_code": NUL}),
    ]  # fmt: skip
    for client, method, path, body in attempts:
        r = await client.request(method, path, json=body)
        assert r.status_code == 422, (method, path, body, r.status_code, r.text)
        assert r.json()["error"]["code"] in {"validation_error", "invalid_code"}
        assert r.headers.get("connection") != "close"
    # Nothing changed.
    again = await acme.get(f"/api/v1/allocations/{allocation['allocation_id']}")
    assert again.json()["status"] == "reserved"
    assert (await cloud.admin.get("/api/v1/admin/locations/LOC-1")).json()["name"] == "LOC-1"


@pytest.mark.parametrize("field", ["active", "name", "address", "timezone"])
async def test_patch_location_with_explicit_null_is_422(cloud, field):
    await cloud.create_location()
    r = await cloud.admin.patch("/api/v1/admin/locations/LOC-1", json={field: None})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
    after = (await cloud.admin.get("/api/v1/admin/locations/LOC-1")).json()
    assert after["active"] is True
    assert after["name"] == "LOC-1"


async def test_patch_location_with_null_operating_hours_means_always_open(cloud):
    await cloud.create_location(operating_hours={"mon": [["06:00", "22:00"]]})
    r = await cloud.admin.patch("/api/v1/admin/locations/LOC-1", json={"operating_hours": None})
    assert r.status_code == 200, r.text
    assert r.json()["operating_hours"] is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"location_id": "\xff\xfe"}',
        b"\xff\xfe{}",
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 2000 + b"1" + b"}" * 2000,
    ],
    ids=["latin1-inside", "bom-like", "deep-array", "deep-object"],
)
async def test_non_utf8_and_very_deep_json_are_malformed_json(cloud, body):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    r = await acme.post(
        "/api/v1/allocations", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "malformed_json"


async def test_405_names_the_allowed_methods(cloud):
    r = await cloud.admin.delete("/api/v1/pickup")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.json()["error"]["code"] == "method_not_allowed"
    r = await cloud.admin.put("/api/v1/admin/locations/LOC-1")
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "PATCH"}


async def _deposited(acme):
    allocation = await _reserved(acme)
    r = await acme.post(
        f"/api/v1/allocations/{allocation['allocation_id']}/deposit",
        json={"driver_id": "D", "scan_code": ALLOCATION["package_id"]},
    )
    assert r.status_code == 200, r.text
    return allocation


async def _wrong_pickup(client, location_id="LOC-1"):
    return await client.post(
        "/api/v1/pickup", json={"location_id": location_id, "pickup_code": "ZZZZZZ"}
    )


async def test_guessing_pickup_codes_at_a_location_is_throttled_and_alerted(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    allocation = await _deposited(acme)
    answers = await asyncio.gather(*(_wrong_pickup(acme) for _ in range(15)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [404] * 10 + [429] * 5  # the default: 10 per location per window
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json()["error"]["code"] == "too_many_attempts"
    assert 1 <= int(refused.headers["retry-after"]) <= 600
    # Locked out: even the right code waits, and nothing was picked up.
    right = {"location_id": "LOC-1", "pickup_code": allocation["pickup_code"]}
    assert (await acme.post("/api/v1/pickup", json=right)).status_code == 429
    alerts = (await cloud.admin.get("/api/v1/admin/locations/LOC-1/alerts")).json()
    assert [(a["kind"], a["detail"]["scope"]) for a in alerts] == [("pickup_guessing", "location")]
    # Another location is not locked out by this one.
    await cloud.create_location("LOC-2")
    assert (await _wrong_pickup(acme, "LOC-2")).status_code == 404
    # The window ends: the right code opens the door.
    cloud.clock.advance(601)
    r = await acme.post("/api/v1/pickup", json=right)
    assert r.status_code == 200, r.text


async def test_successful_pickups_do_not_use_up_the_allowance(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 12})
    for n in range(12):
        body = {**ALLOCATION, "package_id": f"P-{n}", "customer_id": f"C-{n}"}
        allocation = (await acme.post("/api/v1/allocations", json=body)).json()
        r = await acme.post(
            f"/api/v1/allocations/{allocation['allocation_id']}/deposit",
            json={"driver_id": "D", "scan_code": body["package_id"]},
        )
        r = await acme.post(
            "/api/v1/pickup",
            json={"location_id": "LOC-1", "pickup_code": allocation["pickup_code"]},
        )
        assert r.status_code == 200, r.text


async def test_guessing_across_locations_is_throttled_per_carrier(cloud):
    acme = await cloud.create_carrier()
    other = await cloud.create_carrier("other")
    await cloud.create_location()
    statuses = []
    for n in range(11):  # 10 locations x 10 attempts = the carrier's 100
        for _ in range(10 if n < 10 else 1):
            statuses.append((await _wrong_pickup(acme, f"NOWHERE-{n}")).status_code)
    assert statuses == [404] * 100 + [429]
    r = await _wrong_pickup(acme, "LOC-1")
    assert r.status_code == 429
    assert r.json()["error"]["details"]["scopes"] == ["carrier"]
    alerts = (await cloud.admin.get("/api/v1/admin/locations/LOC-1/alerts")).json()
    assert alerts == []  # the carrier tripped at NOWHERE-10, which is no location
    # Another carrier is not held up.
    assert (await _wrong_pickup(other, "LOC-1")).status_code == 404


@pytest.mark.parametrize("command", ["migrate", "serve"])
def test_cli_with_a_missing_database_says_so_in_one_line(command, repo_root, tmp_path):
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "LOCKER_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/no_such_locker_db",
        "LOCKER_DATA_DIR": str(tmp_path),
        "LOCKER_HTTP_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "cloud.cli", command],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "no_such_locker_db" in lines[0]
    assert "createdb" in lines[0]
    assert "LOCKER_DATABASE_URL" in lines[0]
