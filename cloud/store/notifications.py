"""The customer-notification outbox: rows to send, their lease, their outcome.

`cloud.notifications` decides what to send and when; `cloud.dispatch` sends it. A claim leases
rows by moving ``next_attempt_at`` past the lease, so a dispatcher that dies mid-send leaves
them to be claimed again once the lease runs out.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cloud.store.database import Conn, Pool


@dataclass(frozen=True, slots=True)
class Notification:
    """A claimed notification, with its carrier's webhook, as a sender needs it."""

    notification_id: int
    idempotency_key: uuid.UUID
    kind: str
    carrier_id: str
    customer_id: str
    payload: dict[str, Any]
    attempts: int  # counting the one this claim is for
    webhook_url: str | None
    # issue 10: the carrier's webhook signing secret (None: sent unsigned), and when it was made.
    webhook_secret: str | None = None
    created_at: datetime | None = None
    # The secret rotated out, while its overlap lasts (signs beside the new one), and the
    # allocation the notification is about.
    previous_webhook_secret: str | None = None
    allocation_id: uuid.UUID | None = None


def json_value(value: object) -> str:
    """How a payload holds what JSON has no type for: times in ISO 8601 as the API gives
    them (``2026-03-02T09:00:00Z``), anything else as its text."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A notification as its carrier's delivery log shows it."""

    id: uuid.UUID
    kind: str
    allocation_id: uuid.UUID
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None


async def deliveries(conn: Conn, carrier_id: str, limit: int) -> list[Delivery]:
    """The carrier's notifications, newest first."""
    cur = await conn.execute(
        "SELECT idempotency_key AS id, kind, allocation_id, status, attempts, last_error,"
        " created_at, CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at,"
        " sent_at FROM notifications WHERE carrier_id = %s"
        " ORDER BY created_at DESC, notification_id DESC LIMIT %s",
        (carrier_id, limit),
    )
    return [Delivery(**row) for row in await cur.fetchall()]


async def enqueue(
    conn: Conn,
    *,
    idempotency_key: uuid.UUID,
    allocation_id: uuid.UUID,
    carrier_id: str,
    customer_id: str,
    kind: str,
    payload: Mapping[str, Any],
    due_at: datetime,
    now: datetime,
    round: int = 0,
) -> None:
    """Adds a pending notification due at ``due_at``; one of a kind (and round) per allocation.

    A second one of the same kind and round for the allocation is ignored, not an error.
    """
    await conn.execute(
        """
        INSERT INTO notifications (idempotency_key, allocation_id, carrier_id, customer_id,
                                   kind, payload, due_at, next_attempt_at, created_at, round)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (allocation_id, kind, round) DO NOTHING
        """,
        (
            idempotency_key,
            allocation_id,
            carrier_id,
            customer_id,
            kind,
            json.dumps(payload, default=json_value),
            due_at,
            due_at,
            now,
            round,
        ),
    )


async def revise_pending(
    conn: Conn,
    allocation_ids: Sequence[uuid.UUID],
    changes: Mapping[str, Any],
    *,
    shift: timedelta | None = None,
) -> None:
    """Rewrites fields of the pending messages of these allocations (``changes`` merged into
    their payloads), and moves the waiting ones (reminders) by ``shift``."""
    await conn.execute(
        """
        UPDATE notifications
        SET payload = payload || %(changes)s::jsonb,
            due_at = CASE WHEN kind = ANY(%(waiting)s) THEN due_at + %(shift)s ELSE due_at END,
            next_attempt_at = CASE WHEN kind = ANY(%(waiting)s)
                                   THEN next_attempt_at + %(shift)s ELSE next_attempt_at END
        WHERE allocation_id = ANY(%(ids)s) AND status = 'pending'
        """,
        {
            "changes": json.dumps(changes, default=json_value),
            "waiting": ["reminder", "expires_today"],
            "shift": shift or timedelta(0),
            "ids": list(allocation_ids),
        },
    )


async def count_kind(conn: Conn, allocation_id: uuid.UUID, kind: str) -> int:
    """How many notifications of ``kind`` the allocation has, whatever their status."""
    cur = await conn.execute(
        "SELECT count(*) AS n FROM notifications WHERE allocation_id = %s AND kind = %s",
        (allocation_id, kind),
    )
    row = await cur.fetchone()
    return 0 if row is None else int(row["n"])


async def cancel_pending(
    conn: Conn, allocation_ids: Sequence[uuid.UUID], kinds: Sequence[str]
) -> None:
    """Cancels the allocations' notifications of these kinds that are not sent yet."""
    await conn.execute(
        """
        UPDATE notifications SET status = 'cancelled'
        WHERE allocation_id = ANY(%s) AND kind = ANY(%s) AND status = 'pending'
        """,
        (list(allocation_ids), list(kinds)),
    )


async def claim_due(
    pool: Pool, now: datetime, lease_until: datetime, batch: int
) -> list[Notification]:
    """Leases up to ``batch`` pending notifications due at ``now`` until ``lease_until``.

    The attempt is counted now, before sending, so a send that never gets recorded still
    counts towards the limit. Rows another dispatcher is claiming are skipped.
    """
    async with pool.connection() as conn:
        cur = await conn.execute(
            """
            UPDATE notifications n
            SET next_attempt_at = %(lease_until)s, attempts = n.attempts + 1
            FROM carriers c
            WHERE c.carrier_id = n.carrier_id AND n.notification_id IN (
                SELECT notification_id FROM notifications
                WHERE status = 'pending' AND next_attempt_at <= %(now)s
                ORDER BY next_attempt_at
                LIMIT %(batch)s
                FOR UPDATE SKIP LOCKED)
            RETURNING n.notification_id, n.idempotency_key, n.kind, n.carrier_id,
                      n.customer_id, n.payload, n.attempts, c.webhook_url,
                      c.webhook_secret, n.created_at, n.allocation_id,
                      CASE WHEN c.previous_webhook_secret_until > %(now)s
                           THEN c.previous_webhook_secret END AS previous_webhook_secret
            """,
            {"now": now, "lease_until": lease_until, "batch": batch},
        )
        return [Notification(**row) for row in await cur.fetchall()]


async def mark_sent(pool: Pool, notification_id: int, now: datetime) -> None:
    """Records a delivery. A notification cancelled while in flight stays cancelled."""
    async with pool.connection() as conn:
        # status = 'pending' guards a row cancelled while it was in flight.
        await conn.execute(
            "UPDATE notifications SET status = 'sent', sent_at = %s, last_error = NULL"
            " WHERE notification_id = %s AND status = 'pending'",
            (now, notification_id),
        )


async def mark_failed_attempt(
    pool: Pool, notification_id: int, *, error: str, give_up: bool, next_attempt_at: datetime
) -> None:
    """Records a failed send: retried at ``next_attempt_at``, or ``failed`` for good.

    ``error`` is kept to its first 500 characters. A notification cancelled while in flight
    stays cancelled.
    """
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE notifications SET status = %s, last_error = %s, next_attempt_at = %s"
            " WHERE notification_id = %s AND status = 'pending'",
            ("failed" if give_up else "pending", error[:500], next_attempt_at, notification_id),
        )
