"""Sending the notification outbox: senders, retries, and the dispatch loop.

Delivery is at least once: a batch is claimed with a short lease (its
``next_attempt_at`` moves past the lease) in one transaction, sent outside any
transaction, and each result is written afterwards. A process that dies between
sending and recording leaves the lease to run out, and the message is sent again
with the same idempotency key, on which the receiver dedupes. Nothing is lost
(the row stays pending until recorded as sent) and nothing is delivered twice to
a receiver that honours the key. Failed sends back off exponentially up to
``max_attempts``, after which the row is marked failed for an operator.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from cloud import metrics, webhooks
from cloud.store import carrier_events
from cloud.store import notifications as store
from cloud.store.database import Pool
from cloud.store.notifications import (
    Notification,  # the senders' argument, named here too
    json_value,
)
from shared.clock import Clock, SystemClock

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)


def webhook_body(notification: Notification) -> dict[str, Any]:
    """The JSON a receiver gets for the notification."""
    return {
        "id": str(notification.idempotency_key),
        "kind": notification.kind,
        "carrier_id": notification.carrier_id,
        "customer_id": notification.customer_id,
        "payload": notification.payload,
        # issue 10: the body's version, and when the event was recorded (ISO, as the API).
        "version": webhooks.BODY_VERSION,
        "created_at": None
        if notification.created_at is None
        else json_value(notification.created_at),
    }


class SendFailed(Exception):
    """A send did not go through. ``permanent`` ones are not retried."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class NotificationSender(Protocol):
    async def send(self, notification: Notification) -> None:
        """Delivers one notification.

        Raises:
            SendFailed: it was not delivered (retried unless permanent).
        """
        ...


class LoggingSender:
    """Writes each notification to the log: the default when no gateway is configured."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        log.info(
            "notify %s customer=%s %s",
            notification.kind,
            notification.customer_id,
            json.dumps(notification.payload, default=str),
        )
        self.sent.append(notification)


class WebhookSender:
    """POSTs each notification as JSON to the carrier's webhook (or a default URL).

    The ``Idempotency-Key`` header carries the notification's stable key.
    """

    def __init__(
        self, client: httpx.AsyncClient, default_url: str | None, clock: Clock | None = None
    ) -> None:
        self._client = client
        self._default_url = default_url
        self._clock = clock or SystemClock()

    async def send(self, notification: Notification) -> None:
        url = notification.webhook_url or self._default_url
        if not url:
            raise SendFailed("no webhook URL for this carrier", permanent=True)
        body = json.dumps(webhook_body(notification)).encode()
        headers = {
            "Idempotency-Key": str(notification.idempotency_key),
            "Content-Type": "application/json",
        }
        if notification.webhook_secret:
            older = notification.previous_webhook_secret  # during a rotation's overlap
            headers[webhooks.SIGNATURE_HEADER] = webhooks.signature(
                notification.webhook_secret, body, self._clock.now(), *([older] if older else [])
            )
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SendFailed(f"{type(exc).__name__}: {exc}") from exc
        if response.is_success:
            return
        # 4xx means the receiver will never take this body; 408 and 429 mean "later".
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
        raise SendFailed(f"HTTP {response.status_code} from webhook", permanent=permanent)


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after ``attempts`` failed ones: 30 s, 60 s, ... up to 1 h."""
    delay: timedelta = BACKOFF_BASE * (2 ** max(0, attempts - 1))
    return min(delay, BACKOFF_MAX)


async def claim_due(pool: Pool, now: datetime, batch: int) -> list[Notification]:
    """Leases up to ``batch`` due notifications; counts the attempt now, before sending."""
    return await store.claim_due(pool, now, now + LEASE, batch)


async def record_result(
    pool: Pool,
    notification: Notification,
    error: SendFailed | None,
    now: datetime,
    max_attempts: int,
) -> None:
    if error is None:
        await store.mark_sent(pool, notification.notification_id, now)
        if notification.kind == "reminder" and notification.allocation_id is not None:
            # issue 10: the carrier's parcel.reminder_sent.v1 (if it asked for state webhooks).
            await carrier_events.reminder_sent(pool, notification.allocation_id, now)
        return
    give_up = error.permanent or notification.attempts >= max_attempts
    metrics.NOTIFICATION_FAILURES.labels(str(give_up).lower()).inc()
    await store.mark_failed_attempt(
        pool,
        notification.notification_id,
        error=str(error),
        give_up=give_up,
        next_attempt_at=now + backoff(notification.attempts),
    )
    if give_up:
        log.error(
            "notification %s (%s) failed for good after %d attempts: %s",
            notification.notification_id,
            notification.kind,
            notification.attempts,
            error,
        )


async def dispatch_due(
    pool: Pool,
    sender: NotificationSender,
    clock: Clock,
    *,
    batch: int = 100,
    max_attempts: int = 8,
) -> int:
    """Sends every notification due now, batch by batch.

    Returns:
        How many were sent successfully.
    """
    delivered = 0
    # issue 10: parcel.reserved.v1 for the allocations made since the last round, written here
    # rather than by the reservation, which stays as short as it is.
    await carrier_events.sweep_reservations(pool, clock.now())
    while True:
        claimed = await claim_due(pool, clock.now(), batch)
        if not claimed:
            return delivered
        results = await asyncio.gather(*(_try_send(sender, n) for n in claimed))
        for notification, error in zip(claimed, results, strict=True):
            await record_result(pool, notification, error, clock.now(), max_attempts)
            delivered += error is None
        if len(claimed) < batch:
            return delivered


async def _try_send(sender: NotificationSender, notification: Notification) -> SendFailed | None:
    try:
        await sender.send(notification)
    except SendFailed as exc:
        return exc
    except Exception as exc:  # a sender bug must not lose the row: treat it as a failed try
        log.exception("sender raised on notification %s", notification.notification_id)
        return SendFailed(f"{type(exc).__name__}: {exc}")
    return None


class Dispatcher:
    """Runs `dispatch_due` every ``interval`` seconds until cancelled."""

    def __init__(
        self,
        pool: Pool,
        sender: NotificationSender,
        clock: Clock,
        interval: float,
        max_attempts: int,
    ) -> None:
        self._pool = pool
        self._sender = sender
        self._clock = clock
        self._interval = interval
        self._max_attempts = max_attempts

    async def run(self) -> None:
        while True:
            try:
                await dispatch_due(
                    self._pool, self._sender, self._clock, max_attempts=self._max_attempts
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification dispatch round failed")
            await asyncio.sleep(self._interval)
