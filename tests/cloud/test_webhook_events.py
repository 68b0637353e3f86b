"""The rest of issue 10's webhooks: reserved (swept off the hot path), reminder sent, the
customer told of a redirect, and rotating a carrier's webhook secret with an overlap."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg

from cloud import dispatch, webhooks
from cloud.dispatch import WebhookSender
from cloud.store import database as db

MIGRATIONS = Path(__file__).resolve().parents[2] / "cloud" / "migrations"


async def _state_carrier(cloud, carrier_id="acme"):
    r = await cloud.admin.post(
        "/api/v1/admin/carriers",
        json={"carrier_id": carrier_id, "name": carrier_id, "state_webhooks": True,
              "webhook_url": "https://acme.example/hooks"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return cloud.client(r.json()["api_key"]), r.json()["webhook_secret"]


async def _events(cloud):
    async with cloud.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT payload, status FROM notifications WHERE kind = 'state_changed'"
            " ORDER BY notification_id"
        )
        return [(row["payload"]["event"], row["status"]) for row in await cur.fetchall()]


def _receiver(seen):
    def receive(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    return httpx.MockTransport(receive)


BODY = {"location_id": "LOC-1", "order_id": "O", "customer_id": "C", "package_size": "small"}


async def test_the_reserved_event_is_written_by_the_dispatcher_not_the_reservation(cloud):
    acme, _ = await _state_carrier(cloud)
    await cloud.create_location(counts={"small": 3})
    a = (await acme.post("/api/v1/allocations", json={**BODY, "package_id": "P1"})).json()
    assert await _events(cloud) == []  # the reservation wrote nothing more
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=_receiver(seen)) as client:
        sender = WebhookSender(client, default_url=None, clock=cloud.clock)
        assert await dispatch.dispatch_due(cloud.pool, sender, cloud.clock) == 1
        # Swept once: a second round (and the retry of the same package) adds nothing.
        await acme.post("/api/v1/allocations", json={**BODY, "package_id": "P1"})
        assert await dispatch.dispatch_due(cloud.pool, sender, cloud.clock) == 0
    assert await _events(cloud) == [("parcel.reserved.v1", "sent")]
    [request] = seen
    payload = json.loads(request.content)["payload"]
    assert (payload["allocation_id"], payload["status"]) == (a["allocation_id"], "reserved")
    assert payload["locker_number"] == a["locker_number"]
    # A carrier that did not ask for state webhooks gets none.
    quiet = await cloud.create_carrier("quiet")
    await quiet.post("/api/v1/allocations", json={**BODY, "package_id": "Q1"})
    async with httpx.AsyncClient(transport=_receiver(seen)) as client:
        sender = WebhookSender(client, default_url=None, clock=cloud.clock)
        await dispatch.dispatch_due(cloud.pool, sender, cloud.clock)
    assert await _events(cloud) == [("parcel.reserved.v1", "sent")]


async def test_a_reminder_going_out_is_an_event_for_the_carrier(cloud):
    acme, _ = await _state_carrier(cloud)
    await cloud.create_location(counts={"small": 3})
    a = (await acme.post("/api/v1/allocations", json={**BODY, "package_id": "P1"})).json()
    await acme.post(
        f"/api/v1/allocations/{a['allocation_id']}/deposit",
        json={"driver_id": "D", "scan_code": "P1"},
    )
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=_receiver(seen)) as client:
        sender = WebhookSender(client, default_url=None, clock=cloud.clock)
        await dispatch.dispatch_due(cloud.pool, sender, cloud.clock)
        assert "parcel.reminder_sent.v1" not in [e for e, _ in await _events(cloud)]
        cloud.clock.advance(timedelta(days=1, minutes=1))  # the reminder is due
        await dispatch.dispatch_due(cloud.pool, sender, cloud.clock)
        await dispatch.dispatch_due(cloud.pool, sender, cloud.clock)
    events = await _events(cloud)
    assert ("parcel.reminder_sent.v1", "sent") in events
    assert [e for e, _ in events].count("parcel.reminder_sent.v1") == 1
    kinds = [json.loads(r.content)["kind"] for r in seen]
    assert kinds.index("reminder") < len(kinds) - 1  # the event came after the reminder


async def test_a_redirect_tells_the_customer_where_the_parcel_now_goes(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 1})
    await cloud.create_location("LOC-2", counts={"small": 1})
    a = (await acme.post("/api/v1/allocations", json={**BODY, "package_id": "P1"})).json()
    r = await acme.post(
        f"/api/v1/allocations/{a['allocation_id']}/redirect", json={"location_id": "LOC-2"}
    )
    assert r.status_code == 200, r.text
    async with cloud.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT customer_id, payload FROM notifications WHERE kind = 'redirected'"
        )
        [row] = await cur.fetchall()
    assert row["customer_id"] == "C"
    payload = row["payload"]
    assert (payload["from_location_id"], payload["location_id"]) == ("LOC-1", "LOC-2")
    assert payload["locker_number"] == r.json()["locker_number"]
    assert "pickup_code" not in payload  # that comes with the deposit, as always
    # Redirected back: a second notice, not refused as a duplicate.
    r = await acme.post(
        f"/api/v1/allocations/{a['allocation_id']}/redirect", json={"location_id": "LOC-1"}
    )
    assert r.status_code == 200, r.text
    async with cloud.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM notifications WHERE kind = 'redirected'"
        )
        assert (await cur.fetchone())["n"] == 2


async def _signed_request(cloud, acme):
    """Deposits a parcel and sends its webhooks; returns the pickup_code webhook's request."""
    a = (await acme.post("/api/v1/allocations", json={**BODY, "package_id": "P1"})).json()
    await acme.post(
        f"/api/v1/allocations/{a['allocation_id']}/deposit",
        json={"driver_id": "D", "scan_code": "P1"},
    )
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=_receiver(seen)) as client:
        sender = WebhookSender(client, default_url=None, clock=cloud.clock)
        await dispatch.dispatch_due(cloud.pool, sender, cloud.clock)
    [request] = [r for r in seen if json.loads(r.content)["kind"] == "pickup_code"]
    return request


async def test_a_rotated_secret_signs_beside_the_new_one_until_the_overlap_ends(cloud):
    r = await cloud.admin.post(
        "/api/v1/admin/carriers",
        json={"carrier_id": "acme", "name": "Acme", "webhook_url": "https://acme.example/h"},
    )
    acme, old = cloud.client(r.json()["api_key"]), r.json()["webhook_secret"]
    await cloud.create_location(counts={"small": 3})
    r = await cloud.admin.post(
        "/api/v1/admin/carriers/acme/webhook-secret", json={"overlap_hours": 2}
    )
    assert r.status_code == 200, r.text
    new = r.json()["webhook_secret"]
    assert new.startswith("whsec_")
    assert new != old
    until = r.json()["previous_secret_valid_until"]
    assert until.replace("Z", "+00:00") == (cloud.clock.now() + timedelta(hours=2)).isoformat()

    request = await _signed_request(cloud, acme)
    header = request.headers[webhooks.SIGNATURE_HEADER]
    assert header.count("v1=") == 2
    now = cloud.clock.now()
    assert webhooks.verify(new, request.content, header, now)
    assert webhooks.verify(old, request.content, header, now)  # a receiver not yet switched
    assert not webhooks.verify("whsec_other", request.content, header, now)

    # Past the overlap only the new secret signs.
    cloud.clock.advance(timedelta(hours=3))
    a = (await acme.post("/api/v1/allocations", json={**BODY, "package_id": "P2"})).json()
    await acme.post(
        f"/api/v1/allocations/{a['allocation_id']}/deposit",
        json={"driver_id": "D", "scan_code": "P2"},
    )
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=_receiver(seen)) as client:
        sender = WebhookSender(client, default_url=None, clock=cloud.clock)
        await dispatch.dispatch_due(cloud.pool, sender, cloud.clock)
    [later] = [r for r in seen if json.loads(r.content)["payload"]["package_id"] == "P2"][:1]
    header = later.headers[webhooks.SIGNATURE_HEADER]
    assert header.count("v1=") == 1
    assert webhooks.verify(new, later.content, header, cloud.clock.now())
    assert not webhooks.verify(old, later.content, header, cloud.clock.now())


async def test_a_carrier_rotates_its_own_secret_and_a_leaked_one_stops_at_once(cloud):
    acme = await cloud.create_carrier(webhook_url="https://acme.example/h")
    await cloud.create_location(counts={"small": 3})
    r = await acme.post("/api/v1/webhooks/secret", json={"overlap_hours": 0})
    assert r.status_code == 200, r.text
    new = r.json()["webhook_secret"]
    request = await _signed_request(cloud, acme)
    header = request.headers[webhooks.SIGNATURE_HEADER]
    assert header.count("v1=") == 1
    assert webhooks.verify(new, request.content, header, cloud.clock.now())
    # The admin key is no carrier; an unknown carrier is 404; bad input changes nothing.
    assert (await cloud.admin.post("/api/v1/webhooks/secret")).status_code == 403
    r = await cloud.admin.post("/api/v1/admin/carriers/nobody/webhook-secret")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "carrier_not_found")
    r = await acme.post("/api/v1/webhooks/secret", json={"overlap_hours": 1000})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error")
    request = await _signed_request_again(cloud, acme, "P9")
    assert webhooks.verify(new, request.content, request.headers[webhooks.SIGNATURE_HEADER],
                           cloud.clock.now())  # fmt: skip


async def _signed_request_again(cloud, acme, package):
    a = (await acme.post("/api/v1/allocations", json={**BODY, "package_id": package})).json()
    await acme.post(
        f"/api/v1/allocations/{a['allocation_id']}/deposit",
        json={"driver_id": "D", "scan_code": package},
    )
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=_receiver(seen)) as client:
        sender = WebhookSender(client, default_url=None, clock=cloud.clock)
        await dispatch.dispatch_due(cloud.pool, sender, cloud.clock)
    return seen[0]


async def test_pickup_attempts_at_unknown_locations_leave_no_rows(cloud):
    acme = await cloud.create_carrier()
    for n in range(5):
        r = await acme.post(
            "/api/v1/pickup", json={"location_id": f"NOPE-{n}", "pickup_code": "ABCDEF"}
        )
        assert r.status_code == 404, r.text
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT scope, key, attempts FROM pickup_guesses ORDER BY scope")
        rows = [(row["scope"], row["key"], row["attempts"]) for row in await cur.fetchall()]
    assert rows == [("carrier", "acme", 5)]  # still counted against the carrier


async def test_the_migration_gives_older_carriers_a_secret_and_drops_stray_guess_rows(
    postgres_server_url,
):
    # A database at the migration before 0011, with what older code left behind.
    name = "locker_test_mig0011"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(postgres_server_url, dbname=name)
    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for version, file, sql in db.migration_files():
                if version >= 11:
                    break
                await conn.execute(sql.encode())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (version, file),
                )
            await conn.execute(
                "INSERT INTO carriers (carrier_id, name, api_key_hash, created_at)"
                " VALUES ('old', 'old', '\\x00', now())"
            )
            await conn.execute(
                "INSERT INTO pickup_guesses VALUES ('location', 'NOPE', now(), 3),"
                " ('carrier', 'old', now(), 3)"
            )
        await db.migrate(url)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            cur = await conn.execute("SELECT webhook_secret FROM carriers")
            [(secret,)] = await cur.fetchall()
            cur = await conn.execute("SELECT scope FROM pickup_guesses")
            scopes = [row[0] for row in await cur.fetchall()]
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert secret.startswith("whsec_")
    assert len(secret) == 6 + 64
    assert scopes == ["carrier"]
