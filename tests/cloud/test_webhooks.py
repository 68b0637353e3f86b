"""Webhooks a carrier can verify, with times as the API gives them, and a delivery log."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx

from cloud import dispatch, webhooks
from cloud.dispatch import WebhookSender


async def _carrier_with_secret(cloud):
    r = await cloud.admin.post(
        "/api/v1/admin/carriers",
        json={"carrier_id": "acme", "name": "Acme", "webhook_url": "https://acme.example/hooks"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["webhook_secret"].startswith("whsec_")
    return cloud.client(body["api_key"]), body["webhook_secret"]


async def _deposit(cloud, acme):
    await cloud.create_location(counts={"small": 2})
    r = await acme.post(
        "/api/v1/allocations",
        json={"location_id": "LOC-1", "package_id": "P1", "order_id": "O", "customer_id": "C1",
              "package_size": "small"},
    )  # fmt: skip
    a = r.json()
    await acme.post(
        f"/api/v1/allocations/{a['allocation_id']}/deposit",
        json={"driver_id": "D", "scan_code": "P1"},
    )
    return a


async def test_webhooks_are_signed_versioned_and_carry_api_times(cloud):
    acme, secret = await _carrier_with_secret(cloud)
    allocation = await _deposit(cloud, acme)
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        sender = WebhookSender(client, default_url=None, clock=cloud.clock)
        assert await dispatch.dispatch_due(cloud.pool, sender, cloud.clock) == 1
    [request] = seen
    header = request.headers[webhooks.SIGNATURE_HEADER]
    assert webhooks.verify(secret, request.content, header, cloud.clock.now())
    assert not webhooks.verify("whsec_other", request.content, header, cloud.clock.now())
    tampered = request.content.replace(b"P1", b"P2")
    assert not webhooks.verify(secret, tampered, header, cloud.clock.now())
    late = cloud.clock.now() + timedelta(minutes=10)
    assert not webhooks.verify(secret, request.content, header, late)  # a replay, later
    body = json.loads(request.content)
    assert body["version"] == 1
    assert body["kind"] == "pickup_code"
    api = (await acme.get(f"/api/v1/allocations/{allocation['allocation_id']}")).json()
    # The same instant, written the same way: ISO 8601 with a "T".
    assert "T" in body["payload"]["expires_at"]
    assert body["payload"]["expires_at"].replace("Z", "+00:00") == api["pickup_expires_at"].replace(
        "Z", "+00:00"
    )


async def test_the_delivery_log_shows_each_notification_and_its_attempts(cloud):
    acme, _ = await _carrier_with_secret(cloud)
    await _deposit(cloud, acme)
    codes = iter([503, 204])

    def receiver(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(codes))

    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        sender = WebhookSender(client, default_url=None, clock=cloud.clock)
        await dispatch.dispatch_due(cloud.pool, sender, cloud.clock)
        log = (await acme.get("/api/v1/webhooks/deliveries")).json()
        [first] = [d for d in log if d["kind"] == "pickup_code"]
        assert (first["status"], first["attempts"]) == ("pending", 1)
        assert first["last_error"] == "HTTP 503 from webhook"
        assert first["next_attempt_at"] is not None
        cloud.clock.advance(timedelta(minutes=1))  # past the 30 s backoff
        await dispatch.dispatch_due(cloud.pool, sender, cloud.clock)
    log = (await acme.get("/api/v1/webhooks/deliveries")).json()
    [first] = [d for d in log if d["kind"] == "pickup_code"]
    assert (first["status"], first["attempts"], first["last_error"]) == ("sent", 2, None)
    assert first["sent_at"] is not None
    # Another carrier sees none of it; the admin key is not a carrier.
    other = await cloud.create_carrier("other")
    assert (await other.get("/api/v1/webhooks/deliveries")).json() == []
    assert (await cloud.admin.get("/api/v1/webhooks/deliveries")).status_code == 403


async def _events(cloud):
    async with cloud.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT payload FROM notifications WHERE kind = 'state_changed'"
            " ORDER BY notification_id"
        )
        return [row["payload"] for row in await cur.fetchall()]


async def test_carriers_that_ask_get_a_versioned_event_per_state_change(cloud):
    r = await cloud.admin.post(
        "/api/v1/admin/carriers",
        json={"carrier_id": "acme", "name": "Acme", "state_webhooks": True,
              "webhook_url": "https://acme.example/hooks"},
    )  # fmt: skip
    acme = cloud.client(r.json()["api_key"])
    quiet = await cloud.create_carrier("quiet")  # did not ask: no events
    await cloud.create_location(counts={"small": 3})
    await cloud.create_location("LOC-2", counts={"small": 1})
    body = {"location_id": "LOC-1", "order_id": "O", "customer_id": "C", "package_size": "small"}
    a = (await acme.post("/api/v1/allocations", json={**body, "package_id": "P1"})).json()
    await acme.post(
        f"/api/v1/allocations/{a['allocation_id']}/deposit",
        json={"driver_id": "D", "scan_code": "P1"},
    )
    await acme.post(
        "/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": a["pickup_code"]}
    )
    b = (await acme.post("/api/v1/allocations", json={**body, "package_id": "P2"})).json()
    await acme.post(
        f"/api/v1/allocations/{b['allocation_id']}/redirect", json={"location_id": "LOC-2"}
    )
    await acme.post(f"/api/v1/allocations/{b['allocation_id']}/cancel", json={"reason": "x"})
    q = (await quiet.post("/api/v1/allocations", json={**body, "package_id": "Q1"})).json()
    await quiet.post(f"/api/v1/allocations/{q['allocation_id']}/cancel")
    events = await _events(cloud)
    assert [(e["event"], e["package_id"], e["location_id"]) for e in events] == [
        ("parcel.deposited.v1", "P1", "LOC-1"),
        ("parcel.picked_up.v1", "P1", "LOC-1"),
        ("parcel.redirected.v1", "P2", "LOC-2"),
        ("parcel.cancelled.v1", "P2", "LOC-2"),
    ]
    assert events[0]["locker_number"] == "1"
    assert events[0]["at"].endswith("Z")
    assert "T" in events[0]["at"]
