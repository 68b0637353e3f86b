"""Reservation timeout, pickup expiry and the notification schedule, with a moved clock."""

from datetime import UTC, datetime, timedelta

from cloud import lifecycle
from cloud.notifications import expires_today_due


async def setup_parcel(cloud, deposit=True, customer_id="C1", package_id="P1"):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 2})
    r = await acme.post(
        "/api/v1/allocations",
        json={"location_id": "LOC-1", "package_id": package_id, "order_id": "O",
              "customer_id": customer_id, "package_size": "small"},
    )  # fmt: skip
    a = r.json()
    if deposit:
        r = await acme.post(
            f"/api/v1/allocations/{a['allocation_id']}/deposit",
            json={"driver_id": "D", "scan_code": package_id},
        )
        a = r.json()
    return acme, a


async def test_reservation_times_out_after_24_hours_and_frees_the_door(cloud):
    acme, a = await setup_parcel(cloud, deposit=False)
    cloud.clock.advance(timedelta(hours=23, minutes=59))
    report = await lifecycle.run_once(cloud.pool, cloud.clock.now())
    assert report.reservations_cancelled == 0
    cloud.clock.advance(timedelta(minutes=1))
    report = await lifecycle.run_once(cloud.pool, cloud.clock.now())
    assert report.reservations_cancelled == 1
    got = (await acme.get(f"/api/v1/allocations/{a['allocation_id']}")).json()
    assert got["status"] == "cancelled"
    assert got["cancel_reason"] == "reservation_timeout"
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT status FROM doors WHERE door_number = 1")
        assert (await cur.fetchone())["status"] == "available"
        cur = await conn.execute("SELECT retired_at IS NOT NULL AS retired FROM pickup_codes")
        assert (await cur.fetchone())["retired"]


async def test_deposit_after_the_hold_ran_out_is_refused(cloud):
    acme, a = await setup_parcel(cloud, deposit=False)
    cloud.clock.advance(timedelta(hours=25))  # the job has not run yet
    r = await acme.post(
        f"/api/v1/allocations/{a['allocation_id']}/deposit",
        json={"driver_id": "D", "scan_code": "P1"},
    )
    assert r.status_code == 409
    assert r.json()["error"]["details"] == {"status": "reservation_expired"}


async def test_parcel_expires_after_3_days_and_awaits_collection(cloud):
    acme, a = await setup_parcel(cloud)
    cloud.clock.advance(timedelta(days=3) - timedelta(seconds=1))
    assert (await lifecycle.run_once(cloud.pool, cloud.clock.now())).parcels_expired == 0
    cloud.clock.advance(timedelta(seconds=1))
    assert (await lifecycle.run_once(cloud.pool, cloud.clock.now())).parcels_expired == 1
    got = (await acme.get(f"/api/v1/allocations/{a['allocation_id']}")).json()
    assert got["status"] == "expired"
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT status FROM doors WHERE door_number = 1")
        assert (await cur.fetchone())["status"] == "awaiting_collection"
        cur = await conn.execute("SELECT kind, status FROM notifications ORDER BY notification_id")
        # No dispatcher ran in this test: messages about a waiting parcel that were
        # never sent are moot now and cancelled; the code and the expiry notice remain.
        assert await cur.fetchall() == [
            {"kind": "pickup_code", "status": "pending"},
            {"kind": "reminder", "status": "cancelled"},
            {"kind": "expires_today", "status": "cancelled"},
            {"kind": "expired", "status": "pending"},
        ]
    r = await acme.post(
        "/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": a["pickup_code"]}
    )
    assert r.status_code == 410
    assert r.json()["error"]["code"] == "code_expired"
    # Staff empty the door; it serves again.
    r = await cloud.admin.post(f"/api/v1/allocations/{a['allocation_id']}/collect")
    assert r.json()["status"] == "collected"
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT status FROM doors WHERE door_number = 1")
        assert (await cur.fetchone())["status"] == "available"


async def test_pickup_after_expiry_time_but_before_the_job_is_refused(cloud):
    acme, a = await setup_parcel(cloud)
    cloud.clock.advance(timedelta(days=3, minutes=1))
    r = await acme.post(
        "/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": a["pickup_code"]}
    )
    assert r.status_code == 410


async def test_notification_schedule_after_deposit(cloud):
    # Test clock starts 2026-03-02 09:00 UTC = 10:00 in Warsaw.
    _acme, _a = await setup_parcel(cloud)
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT kind, due_at FROM notifications ORDER BY due_at")
        due = {r["kind"]: r["due_at"] for r in await cur.fetchall()}
    assert due["pickup_code"] == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert due["reminder"] == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)  # day 2
    # Expires 2026-03-05 10:00 Warsaw: "expires today" at 08:00 Warsaw (07:00 UTC) that day.
    assert due["expires_today"] == datetime(2026, 3, 5, 7, 0, tzinfo=UTC)


def test_expires_today_moves_to_the_day_before_when_expiry_is_before_8():
    deposited = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # 06:00 Warsaw
    expires = deposited + timedelta(days=3)  # 06:00 Warsaw on the 5th
    assert expires_today_due(deposited, expires, "Europe/Warsaw") == datetime(
        2026, 3, 4, 7, 0, tzinfo=UTC
    )


def test_expires_today_follows_daylight_saving_time():
    deposited = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
    expires = deposited + timedelta(days=3)  # 30 March, after the switch to CEST
    assert expires_today_due(deposited, expires, "Europe/Warsaw") == datetime(
        2026, 3, 30, 6, 0, tzinfo=UTC
    )


async def test_jobs_are_idempotent_and_touch_only_due_rows(cloud):
    _acme, _a = await setup_parcel(cloud)
    cloud.clock.advance(timedelta(days=4))
    first = await lifecycle.run_once(cloud.pool, cloud.clock.now())
    second = await lifecycle.run_once(cloud.pool, cloud.clock.now())
    assert (first.parcels_expired, second.parcels_expired) == (1, 0)
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM notifications WHERE kind = 'expired'")
        assert (await cur.fetchone())["n"] == 1


async def test_lifecycle_handles_more_rows_than_one_batch(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 30})
    for n in range(30):
        await acme.post(
            "/api/v1/allocations",
            json={"location_id": "LOC-1", "package_id": f"P{n}", "order_id": "O",
                  "customer_id": f"C{n}", "package_size": "small"},
        )  # fmt: skip
    cloud.clock.advance(timedelta(days=2))
    assert await lifecycle.expire_reservations(cloud.pool, cloud.clock.now(), batch=7) == 30
