"""Redirecting a reserved parcel to another location before deposit (issue 10)."""

from __future__ import annotations


def _body(package="P1", location_id="LOC-1"):
    return {"location_id": location_id, "package_id": package, "order_id": f"O-{package}",
            "customer_id": "C1", "package_size": "small"}  # fmt: skip


async def _doors(cloud, location_id):
    r = await cloud.admin.get(f"/api/v1/admin/locations/{location_id}/doors")
    return [(d["door_number"], d["status"]) for d in r.json()]


async def test_a_reserved_parcel_moves_with_its_door_and_code_and_both_kiosks_are_told(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 1})
    await cloud.create_location("LOC-2", counts={"small": 1})
    async with cloud.pool.connection() as conn:  # both locations have a kiosk following them
        for loc in ("LOC-1", "LOC-2"):
            await conn.execute(
                "INSERT INTO kiosks (kiosk_id, location_id, public_key, code_secret,"
                " registered_revision, registered_at)"
                " VALUES (%s, %s, 'x', decode(repeat('ab', 16), 'hex'), 0, now())",
                (f"k-{loc}", loc),
            )
    a = (await acme.post("/api/v1/allocations", json=_body())).json()
    r = await acme.post(
        f"/api/v1/allocations/{a['allocation_id']}/redirect", json={"location_id": "LOC-2"}
    )
    assert r.status_code == 200, r.text
    moved = r.json()
    assert (moved["allocation_id"], moved["location_id"], moved["status"]) == (
        a["allocation_id"], "LOC-2", "reserved"
    )  # fmt: skip
    assert moved["address"] == "LOC-2 street 1"
    assert moved["pickup_code"] != a["pickup_code"]  # the customer's code at LOC-2
    assert await _doors(cloud, "LOC-1") == [(1, "available")]
    assert await _doors(cloud, "LOC-2") == [(1, "reserved")]
    async with cloud.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT location_id, change->'allocation'->>'status' AS status FROM location_changes"
            " WHERE change->'allocation'->>'allocation_id' = %s ORDER BY location_id, revision",
            (a["allocation_id"],),
        )
        logged = [(row["location_id"], row["status"]) for row in await cur.fetchall()]
    assert logged == [("LOC-1", "reserved"), ("LOC-1", "cancelled"), ("LOC-2", "reserved")]
    # The old code opens nothing any more.
    r = await acme.post(
        "/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": a["pickup_code"]}
    )
    assert r.status_code in (404, 410)


async def test_only_a_reserved_parcel_moves_and_only_where_a_door_is_free(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 2})
    await cloud.create_location("LOC-2", counts={"medium": 0})
    a = (await acme.post("/api/v1/allocations", json=_body())).json()
    path = f"/api/v1/allocations/{a['allocation_id']}/redirect"
    r = await acme.post(path, json={"location_id": "LOC-2"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "location_full"
    r = await acme.post(path, json={"location_id": "NOWHERE"})
    assert r.status_code == 404
    r = await acme.post(path, json={"location_id": "LOC-1"})
    assert r.status_code == 400
    await acme.post(
        f"/api/v1/allocations/{a['allocation_id']}/deposit",
        json={"driver_id": "D", "scan_code": "P1"},
    )
    await cloud.create_location("LOC-3", counts={"small": 1})
    r = await acme.post(path, json={"location_id": "LOC-3"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "wrong_state"
    assert (await acme.get(f"/api/v1/allocations/{a['allocation_id']}")).json()[
        "location_id"
    ] == "LOC-1"
