"""Door labels (issue 10): set at creation, returned as locker_number, in notifications."""

from __future__ import annotations

from cloud import doors
from cloud.store import changelog
from cloud.sync.keys import register_kiosk
from cloud.sync.snapshot import build_snapshot
from shared.signing import Signer


async def _location_with_labels(cloud):
    r = await cloud.admin.post(
        "/api/v1/admin/locations",
        json={
            "location_id": "LOC-1",
            "name": "one",
            "address": "street 1",
            "latitude": 52.2,
            "longitude": 21.0,
            "doors": [
                {"door_number": 1, "size": "small", "column": 1, "row": 1},
                {"door_number": 2, "size": "small", "column": 2, "row": 5},
                {"door_number": 3, "size": "medium", "label": "XL-7"},
                {"door_number": 4, "size": "medium"},
            ],
        },
    )
    assert r.status_code == 201, r.text


async def test_labels_default_to_column_and_row_else_the_number(cloud):
    await _location_with_labels(cloud)
    doors = (await cloud.admin.get("/api/v1/admin/locations/LOC-1/doors")).json()
    assert [(d["door_number"], d["label"]) for d in doors] == [
        (1, "A1"), (2, "B5"), (3, "XL-7"), (4, "4")
    ]  # fmt: skip


async def test_allocation_pickup_and_notification_name_the_locker_by_its_label(cloud):
    await _location_with_labels(cloud)
    acme = await cloud.create_carrier()
    r = await acme.post(
        "/api/v1/allocations",
        json={"location_id": "LOC-1", "package_id": "P", "order_id": "O", "customer_id": "C",
              "package_size": "small"},
    )  # fmt: skip
    a = r.json()
    assert (a["locker_number"], a["door_number"]) == ("A1", 1)
    r = await acme.post(
        f"/api/v1/allocations/{a['allocation_id']}/deposit",
        json={"driver_id": "D", "scan_code": "P"},
    )
    assert r.json()["locker_number"] == "A1"
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT payload FROM notifications WHERE kind = 'pickup_code'")
        payload = (await cur.fetchone())["payload"]
    assert (payload["locker_number"], payload["door_number"]) == ("A1", 1)
    r = await acme.post(
        "/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": a["pickup_code"]}
    )
    assert r.json()["locker_numbers"] == ["A1"]
    assert r.json()["opened"][0]["door_number"] == 1


async def test_a_label_used_twice_is_refused_and_adds_nothing(cloud):
    await _location_with_labels(cloud)
    r = await cloud.admin.post(
        "/api/v1/admin/locations/LOC-1/doors",
        json={"doors": [{"door_number": 9, "size": "small", "label": "B5"}]},
    )
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "already_exists"
    r = await cloud.admin.post(
        "/api/v1/admin/locations/LOC-1/doors",
        json={"doors": [{"door_number": 9, "size": "small", "label": "Q1"},
                        {"door_number": 10, "size": "small", "label": "Q1"}]},
    )  # fmt: skip
    assert r.status_code == 400
    doors = (await cloud.admin.get("/api/v1/admin/locations/LOC-1/doors")).json()
    assert len(doors) == 4


async def test_new_doors_send_their_labels_in_the_change_log_once_a_kiosk_follows_it(cloud):
    await _location_with_labels(cloud)
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM location_changes")
        assert (await cur.fetchone())["n"] == 0  # no kiosk: registering one announces them
        await conn.execute(
            "INSERT INTO kiosks (kiosk_id, location_id, public_key, code_secret,"
            " registered_revision, registered_at)"
            " VALUES ('k1', 'LOC-1', 'x', decode(repeat('ab', 16), 'hex'), 0, now())"
        )
    r = await cloud.admin.post(
        "/api/v1/admin/locations/LOC-1/doors",
        json={"doors": [{"door_number": 5, "size": "small", "column": 3, "row": 1},
                        {"door_number": 6, "size": "small"}]},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    async with cloud.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT change FROM location_changes WHERE location_id = 'LOC-1'"
            " AND change->>'kind' = 'door_label' ORDER BY revision"
        )
        logged = [(row["change"]["door"], row["change"]["label"]) for row in await cur.fetchall()]
    assert logged == [(5, "C1"), (6, "6")]


async def test_a_door_is_relabelled_and_its_kiosk_gets_the_label_in_the_change_log(cloud):
    await _location_with_labels(cloud)
    r = await cloud.admin.put("/api/v1/admin/locations/LOC-1/doors/4/label", json={"label": "C9"})
    assert r.status_code == 200, r.text
    assert r.json()["label"] == "C9"
    acme = await cloud.create_carrier()
    r = await acme.post(
        "/api/v1/allocations",
        json={"location_id": "LOC-1", "package_id": "P", "order_id": "O", "customer_id": "C",
              "package_size": "medium"},
    )  # fmt: skip
    assert r.json()["locker_number"] in ("XL-7", "C9")
    async with cloud.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT change FROM location_changes WHERE location_id = 'LOC-1'"
            " AND change->>'kind' = 'door_label' ORDER BY revision DESC LIMIT 1"
        )
        assert (await cur.fetchone())["change"] == {"kind": "door_label", "door": 4, "label": "C9"}


async def test_a_relabel_to_a_taken_label_or_a_bad_one_changes_nothing(cloud):
    await _location_with_labels(cloud)
    r = await cloud.admin.put("/api/v1/admin/locations/LOC-1/doors/4/label", json={"label": "A1"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "already_exists")
    r = await cloud.admin.put("/api/v1/admin/locations/LOC-1/doors/4/label", json={"label": "A 1"})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error")
    r = await cloud.admin.put("/api/v1/admin/locations/LOC-1/doors/99/label", json={"label": "Z"})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "door_not_found")
    doors = (await cloud.admin.get("/api/v1/admin/locations/LOC-1/doors")).json()
    assert [d["label"] for d in doors] == ["A1", "B5", "XL-7", "4"]


async def test_a_kiosk_registered_after_the_doors_learns_their_labels_and_reach_by_sync(cloud):
    # issue 10: the accessible flag travels like the labels: announced at registration, in the
    # change log when it changes, and in every snapshot.
    await _location_with_labels(cloud)
    r = await cloud.admin.put(
        "/api/v1/admin/locations/LOC-1/doors/2/accessible", json={"accessible": True}
    )
    assert r.status_code == 200, r.text
    async with cloud.pool.connection() as conn:
        await register_kiosk(
            conn,
            kiosk_id="k1",
            location_id="LOC-1",
            public_key=Signer.generate().verifier.public_base64(),
            code_secret=b"k" * 32,
            now=cloud.clock.now(),
        )
        await doors.announce_labels(conn, "LOC-1", cloud.clock.now())  # as provisioning does
        # The flag set before the registration was logged: the kiosk starts from a snapshot.
        assert (await changelog.changes_since(conn, "LOC-1", 0)).needs_snapshot
        cur = await conn.execute(
            "SELECT change FROM location_changes WHERE location_id = 'LOC-1'"
            " AND change->>'kind' = 'door_access' ORDER BY revision"
        )
        logged = [row["change"] for row in await cur.fetchall()]
    announced = {"kind": "door_access", "door": 2, "accessible": True}
    assert logged == [announced, announced]  # set, then announced at registration
    snapshot = await build_snapshot(cloud.pool, "LOC-1")
    assert [(x.door, x.label) for x in snapshot.labels] == [
        (1, "A1"), (2, "B5"), (3, "XL-7"), (4, "4")
    ]  # fmt: skip
    assert snapshot.accessible_doors == [2]
    # The flag changed later reaches the registered kiosk in the change log.
    await cloud.admin.put(
        "/api/v1/admin/locations/LOC-1/doors/2/accessible", json={"accessible": False}
    )
    async with cloud.pool.connection() as conn:
        catchup = await changelog.changes_since(conn, "LOC-1", snapshot.revision)
    assert [c.model_dump(exclude={"revision"}) for c in catchup.changes] == [
        {"kind": "door_access", "door": 2, "accessible": False}
    ]
