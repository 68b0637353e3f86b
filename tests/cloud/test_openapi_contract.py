"""The OpenAPI document holds the server's rules: schemathesis, every check, finds nothing.

A bounded run of ``scripts/contract`` (the README names it; run it with more examples by
hand) against the real service over HTTP and a real PostgreSQL database.
"""

from __future__ import annotations

import os
import subprocess
import sys


def test_schemathesis_finds_no_server_error_or_schema_mismatch(repo_root, clean_db):
    done = subprocess.run(
        [sys.executable, "scripts/contract", "--max-examples", "20", "--seed", "10"],
        cwd=repo_root,
        env={**os.environ, "LOCKER_DATABASE_URL": clean_db},
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stdout[-6000:]
    assert done.stdout.count("No issues found") == 2, done.stdout[-3000:]


async def test_openapi_states_the_rules_the_server_enforces(cloud):
    spec = (await cloud.anonymous.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    allocation_in = schemas["AllocationIn"]
    assert allocation_in["anyOf"] == [
        {"required": ["package_size"]},
        {"required": ["dimensions"]},
    ]
    size = schemas["Size"]
    assert size["enum"] == ["small", "medium", "large", "xlarge"]
    pickup_code = schemas["PickupIn"]["properties"]["pickup_code"]
    assert pickup_code["minLength"] == 6
    assert "pattern" in pickup_code
    responses = spec["paths"]["/api/v1/pickup"]["post"]["responses"]
    assert {"400", "401", "403", "404", "409", "410", "413", "422", "429"} <= set(responses)
    for answer in responses.values():
        if answer is not responses["200"]:
            ref = answer["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorOut")
    assert schemas["AllocationOut"]["properties"]["status"]["$ref"].endswith("AllocationStatus")


async def test_a_number_sent_as_text_is_refused(cloud):
    await cloud.create_location()
    r = await cloud.admin.post(
        "/api/v1/admin/locations/LOC-1/doors",
        json={"doors": [{"door_number": "9", "size": "small"}]},
    )
    assert r.status_code == 422
    r = await cloud.admin.patch("/api/v1/admin/locations/LOC-1", json={"active": 0})
    assert r.status_code == 422


async def test_dimensions_too_small_for_the_database_are_refused(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    body = {"location_id": "LOC-1", "package_id": "P", "order_id": "O", "customer_id": "C",
            "dimensions": {"length": 5e-324, "width": 1, "height": 1}}  # fmt: skip
    r = await acme.post("/api/v1/allocations", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
