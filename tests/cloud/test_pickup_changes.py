"""Re-issuing a pickup code and extending a pickup deadline (issue 10), over the API."""

from __future__ import annotations

from datetime import datetime, timedelta


async def _deposited(cloud, acme, package="P", customer="C"):
    r = await acme.post(
        "/api/v1/allocations",
        json={"location_id": "LOC-1", "package_id": package, "order_id": f"O-{package}",
              "customer_id": customer, "package_size": "small"},
    )  # fmt: skip
    a = r.json()
    r = await acme.post(
        f"/api/v1/allocations/{a['allocation_id']}/deposit",
        json={"driver_id": "D", "scan_code": package},
    )
    assert r.status_code == 200, r.text
    return r.json()


async def _notices(cloud, kind):
    async with cloud.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT payload, round, status FROM notifications WHERE kind = %s ORDER BY round",
            (kind,),
        )
        return await cur.fetchall()


async def test_a_reissued_code_replaces_the_old_one_at_once_and_is_sent(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    a = await _deposited(cloud, acme)
    old = a["pickup_code"]
    r = await acme.post(f"/api/v1/allocations/{a['allocation_id']}/pickup-code")
    assert r.status_code == 200, r.text
    new = r.json()["pickup_code"]
    assert new != old
    sent = await _notices(cloud, "code_reissued")
    assert [(n["payload"]["pickup_code"], n["round"]) for n in sent] == [(new, 1)]
    # The reminders still to come carry the new code.
    async with cloud.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT DISTINCT payload->>'pickup_code' AS code FROM notifications"
            " WHERE status = 'pending' AND kind IN ('reminder', 'expires_today')"
        )
        assert [row["code"] for row in await cur.fetchall()] == [new]
    r = await acme.post("/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": old})
    assert r.status_code in (404, 410), r.text
    r = await acme.post("/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": new})
    assert r.status_code == 200, r.text


async def test_reissues_are_limited_and_only_for_parcels_in_their_door(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    r = await acme.post(
        "/api/v1/allocations",
        json={"location_id": "LOC-1", "package_id": "R", "order_id": "O", "customer_id": "X",
              "package_size": "small"},
    )  # fmt: skip
    reserved = r.json()
    r = await acme.post(f"/api/v1/allocations/{reserved['allocation_id']}/pickup-code")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "wrong_state"
    a = await _deposited(cloud, acme)
    path = f"/api/v1/allocations/{a['allocation_id']}/pickup-code"
    for _ in range(3):  # LOCKER_PICKUP_CODE_REISSUES_MAX
        assert (await acme.post(path)).status_code == 200
    r = await acme.post(path)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "limit_reached"
    assert len(await _notices(cloud, "code_reissued")) == 3


async def test_a_deadline_extends_within_its_limits_and_is_sent(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location()
    a = await _deposited(cloud, acme)
    path = f"/api/v1/allocations/{a['allocation_id']}/extend"
    deadline = datetime.fromisoformat(a["pickup_expires_at"])
    r = await acme.post(path, json={"pickup_expires_at": deadline.isoformat()})
    assert r.status_code == 400  # not later
    r = await acme.post(
        path, json={"pickup_expires_at": (deadline + timedelta(days=8)).isoformat()}
    )
    assert r.status_code == 400  # past the latest (7 days after the first window)
    assert "latest" in r.json()["error"]["details"]
    r = await acme.post(path, json={"pickup_expires_at": "2030-01-01T00:00:00"})
    assert r.status_code == 422  # no time zone
    later = deadline + timedelta(days=2)
    r = await acme.post(path, json={"pickup_expires_at": later.isoformat()})
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["pickup_expires_at"]) == later
    assert datetime.fromisoformat(r.json()["expires_at"]) == later
    sent = await _notices(cloud, "deadline_extended")
    assert [n["round"] for n in sent] == [1]
    r = await acme.post(path, json={"pickup_expires_at": (later + timedelta(days=1)).isoformat()})
    assert r.status_code == 200
    r = await acme.post(path, json={"pickup_expires_at": (later + timedelta(days=2)).isoformat()})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "limit_reached"
