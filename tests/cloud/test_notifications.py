"""The notification outbox: nothing lost across a crash, nothing delivered twice."""

import json
from datetime import timedelta

import httpx

from cloud import dispatch
from cloud.dispatch import LoggingSender, SendFailed, WebhookSender


async def deposit_one(cloud, carrier="acme", **carrier_extra):
    acme = await cloud.create_carrier(carrier, **carrier_extra)
    await cloud.create_location(counts={"small": 2})
    a = (
        await acme.post(
            "/api/v1/allocations",
            json={"location_id": "LOC-1", "package_id": "P1", "order_id": "O",
                  "customer_id": "C1", "package_size": "small"},
        )
    ).json()  # fmt: skip
    await acme.post(
        f"/api/v1/allocations/{a['allocation_id']}/deposit",
        json={"driver_id": "D", "scan_code": "P1"},
    )
    return acme, a


async def statuses(cloud):
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT kind, status, attempts FROM notifications ORDER BY due_at")
        return [tuple(r.values()) for r in await cur.fetchall()]


async def test_code_notification_survives_a_crash_between_commit_and_send(cloud):
    """The deposit committed, then the process died before sending: the outbox row
    is still there and the next dispatcher (a fresh process) sends it once."""
    _, a = await deposit_one(cloud)
    assert cloud.sender.sent == []  # background jobs are off: nothing was sent yet
    fresh_sender = LoggingSender()
    assert await dispatch.dispatch_due(cloud.pool, fresh_sender, cloud.clock) == 1
    [sent] = fresh_sender.sent
    assert sent.kind == "pickup_code"
    assert sent.payload["pickup_code"] == a["pickup_code"]
    assert sent.payload["locker_number"] == a["locker_number"]
    assert await dispatch.dispatch_due(cloud.pool, fresh_sender, cloud.clock) == 0
    assert len(fresh_sender.sent) == 1


async def test_crash_after_send_before_record_resends_with_the_same_key(cloud):
    """A dispatcher that sent but died before recording: the lease runs out and the
    message goes again with the same idempotency key, so the receiver can dedupe."""
    await deposit_one(cloud)
    [claimed] = await dispatch.claim_due(cloud.pool, cloud.clock.now(), 10)
    # ... sent, then the process died: no record_result.
    assert await dispatch.claim_due(cloud.pool, cloud.clock.now(), 10) == []  # leased
    cloud.clock.advance(dispatch.LEASE + timedelta(seconds=1))
    sender = LoggingSender()
    assert await dispatch.dispatch_due(cloud.pool, sender, cloud.clock) == 1
    assert sender.sent[0].idempotency_key == claimed.idempotency_key
    assert sender.sent[0].attempts == 2


async def test_reminders_are_sent_when_due(cloud):
    await deposit_one(cloud)
    sender = LoggingSender()
    await dispatch.dispatch_due(cloud.pool, sender, cloud.clock)
    assert [n.kind for n in sender.sent] == ["pickup_code"]
    cloud.clock.advance(timedelta(days=1))
    await dispatch.dispatch_due(cloud.pool, sender, cloud.clock)
    assert [n.kind for n in sender.sent] == ["pickup_code", "reminder"]
    cloud.clock.advance(timedelta(days=2))
    await dispatch.dispatch_due(cloud.pool, sender, cloud.clock)
    assert [n.kind for n in sender.sent] == ["pickup_code", "reminder", "expires_today"]


class FlakySender:
    def __init__(self, failures):
        self.failures = failures
        self.calls = 0

    async def send(self, notification):
        self.calls += 1
        if self.calls <= self.failures:
            raise SendFailed("gateway unavailable")


async def test_failed_sends_back_off_and_retry(cloud):
    await deposit_one(cloud)
    sender = FlakySender(failures=2)
    assert await dispatch.dispatch_due(cloud.pool, sender, cloud.clock) == 0
    assert (await statuses(cloud))[0] == ("pickup_code", "pending", 1)
    # Not retried before the backoff (30 s) has passed.
    cloud.clock.advance(timedelta(seconds=29))
    assert await dispatch.dispatch_due(cloud.pool, sender, cloud.clock) == 0
    assert sender.calls == 1
    cloud.clock.advance(timedelta(seconds=2))
    await dispatch.dispatch_due(cloud.pool, sender, cloud.clock)
    cloud.clock.advance(timedelta(seconds=61))
    assert await dispatch.dispatch_due(cloud.pool, sender, cloud.clock) == 1
    assert (await statuses(cloud))[0] == ("pickup_code", "sent", 3)


async def test_gives_up_after_max_attempts(cloud):
    await deposit_one(cloud)
    sender = FlakySender(failures=100)
    for _ in range(5):
        await dispatch.dispatch_due(cloud.pool, sender, cloud.clock, max_attempts=3)
        cloud.clock.advance(timedelta(hours=1))
    assert sender.calls == 3
    assert (await statuses(cloud))[0] == ("pickup_code", "failed", 3)


async def test_webhook_sender_posts_json_with_idempotency_key(cloud):
    await deposit_one(cloud, webhook_url="https://carrier.example/hooks")
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        sender = WebhookSender(client, default_url=None)
        assert await dispatch.dispatch_due(cloud.pool, sender, cloud.clock) == 1
    [request] = seen
    assert str(request.url) == "https://carrier.example/hooks"
    body = json.loads(request.content)
    assert body["kind"] == "pickup_code"
    assert request.headers["Idempotency-Key"] == body["id"]


async def test_webhook_4xx_is_permanent_and_5xx_is_retried(cloud):
    await deposit_one(cloud, webhook_url="https://carrier.example/hooks")
    codes = iter([503, 400])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(codes))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        sender = WebhookSender(client, default_url=None)
        await dispatch.dispatch_due(cloud.pool, sender, cloud.clock)
        assert (await statuses(cloud))[0] == ("pickup_code", "pending", 1)
        cloud.clock.advance(timedelta(minutes=1))
        await dispatch.dispatch_due(cloud.pool, sender, cloud.clock)
        assert (await statuses(cloud))[0] == ("pickup_code", "failed", 2)


async def test_webhook_without_any_url_fails_permanently(cloud):
    await deposit_one(cloud)
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as c:
        await dispatch.dispatch_due(cloud.pool, WebhookSender(c, default_url=None), cloud.clock)
    assert (await statuses(cloud))[0] == ("pickup_code", "failed", 1)
