"""The customer-notification outbox: what to tell whom, and when.

Notifications are rows written in the same transaction as the state change that
causes them, so a crash can never commit a deposit without its "your code is"
message, nor send a message for a deposit that rolled back. `dispatch.py` sends
them later. Each row has an idempotency key that stays the same across retries;
receivers dedupe on it, which is what turns at-least-once sending into
exactly-once delivery.

Schedule for a deposited parcel (day 1 is the 24 hours after deposit):
- ``pickup_code``: at deposit.
- ``reminder``: at the start of day 2 (deposit + 24 h), if still waiting.
- ``expires_today``: 08:00 local time on the day the pickup window ends; when the
  window ends before 08:00, at 08:00 the day before. Never before deposit.
- ``expired``: when the expiry job expires the parcel.
Pending messages that no longer apply (the parcel was picked up) are cancelled in
the transaction that made them moot.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cloud.store import notifications as store
from cloud.store.database import Conn

KINDS: tuple[str, ...] = (
    "pickup_code", "reminder", "expires_today", "expired", "return_code", "cancelled"
)  # fmt: skip
# issue 10: told each time a carrier re-issues the code or extends the pickup deadline.
KINDS += ("code_reissued", "deadline_extended")
# issue 10: told when a carrier redirects a reserved parcel to another location.
KINDS += ("redirected",)
# Kinds that only make sense while the parcel waits in its door.
WAITING_KINDS = ("reminder", "expires_today")

REMINDER_AFTER = timedelta(days=1)
EXPIRES_TODAY_LOCAL_TIME = time(8, 0)


def expires_today_due(deposited_at: datetime, expires_at: datetime, timezone: str) -> datetime:
    """When the "expires today" message goes out (see the module docstring)."""
    tz = ZoneInfo(timezone)
    local_expiry = expires_at.astimezone(tz)
    due = datetime.combine(local_expiry.date(), EXPIRES_TODAY_LOCAL_TIME, tzinfo=tz)
    if due >= local_expiry:
        due = datetime.combine(
            local_expiry.date() - timedelta(days=1), EXPIRES_TODAY_LOCAL_TIME, tzinfo=tz
        )
    return max(due, deposited_at)


async def enqueue(
    conn: Conn,
    *,
    allocation_id: uuid.UUID,
    carrier_id: str,
    customer_id: str,
    kind: str,
    payload: Mapping[str, Any],
    due_at: datetime,
    now: datetime,
    round: int = 0,
) -> None:
    """Adds one notification to the outbox; a second one of the same kind (and round) is
    ignored."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    await store.enqueue(
        conn,
        # New for each notification, the same across its retries: receivers dedupe on it.
        idempotency_key=uuid.uuid4(),
        allocation_id=allocation_id,
        carrier_id=carrier_id,
        customer_id=customer_id,
        kind=kind,
        payload=payload,
        due_at=due_at,
        now=now,
        round=round,
    )


async def schedule_after_deposit(
    conn: Conn,
    *,
    allocation: Mapping[str, Any],
    payload: Mapping[str, Any],
    timezone: str,
    now: datetime,
) -> None:
    """Queues the pickup code now, and the reminder and "expires today" for later."""
    deposited_at: datetime = allocation["deposited_at"]
    expires_at: datetime = allocation["pickup_expires_at"]
    common = {
        "allocation_id": allocation["allocation_id"],
        "carrier_id": allocation["carrier_id"],
        "customer_id": allocation["customer_id"],
        "payload": payload,
        "now": now,
    }
    await enqueue(conn, kind="pickup_code", due_at=now, **common)
    reminder_at = deposited_at + REMINDER_AFTER
    if reminder_at < expires_at:
        await enqueue(conn, kind="reminder", due_at=reminder_at, **common)
    await enqueue(
        conn,
        kind="expires_today",
        due_at=expires_today_due(deposited_at, expires_at, timezone),
        **common,
    )


async def count_kind(conn: Conn, allocation_id: uuid.UUID, kind: str) -> int:
    """How many notifications of ``kind`` the allocation has (to number the next one's round)."""
    return await store.count_kind(conn, allocation_id, kind)


async def cancel_pending(
    conn: Conn, allocation_ids: Sequence[uuid.UUID], kinds: Sequence[str] = KINDS
) -> None:
    """Cancels messages not yet sent that the allocations' new state makes moot."""
    if not allocation_ids:
        return
    await store.cancel_pending(conn, allocation_ids, kinds)
