"""State-change webhooks: a notification per parcel state change, for carriers that asked.

Written in the transaction of the change (so a change and its event commit together) and sent
by the notification dispatcher like any webhook (signed, retried, in the delivery log). The
event code is versioned (``parcel.deposited.v1``); ``round`` keeps one per allocation and state
(a state is entered once), and numbers the redirects from 1000 on and the door faults during a
drop-off from 2000 on; a reminder having gone out is round 900 (one reminder per parcel).

``parcel.reserved.v1`` is not written by the reservation: that path is the service's hottest, and
its 201 answers the carrier anyway. `sweep_reservations`, run by the notification dispatcher
before each round, writes it for the allocations reserved since its last sweep (less a margin for
transactions that committed late), deduped by the (allocation, kind, round) key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cloud.store.database import Pool
from shared.states import AllocationStatus

if TYPE_CHECKING:
    from cloud.store.transaction import Unit

EVENT_VERSION = 1
_REDIRECT_ROUNDS = 1000
_DOOR_FAULT_ROUNDS = 2000
_REMINDER_SENT_ROUND = 900
# A reservation committed this long after its reserved_at stamp is still swept.
SWEEP_MARGIN = timedelta(minutes=5)


def event_code(what: str) -> str:
    return f"parcel.{what}.v{EVENT_VERSION}"


_INSERT = """
INSERT INTO notifications (idempotency_key, allocation_id, carrier_id, customer_id, kind,
                           payload, due_at, next_attempt_at, created_at, round)
SELECT gen_random_uuid(), a.allocation_id, a.carrier_id, a.customer_id, 'state_changed',
       jsonb_build_object(
           'event', %(event)s::text, 'allocation_id', a.allocation_id, 'kind', a.kind,
           'package_id', a.package_id, 'order_id', a.order_id, 'location_id', a.location_id,
           'locker_number', d.label, 'door_number', d.door_number, 'status', a.status,
           'at', to_char(%(now)s::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
       || %(extra)s::jsonb,
       %(now)s, %(now)s, %(now)s, {round}
FROM allocations a
JOIN carriers c ON c.carrier_id = a.carrier_id AND c.state_events
JOIN doors d ON d.door_id = a.door_id
WHERE a.allocation_id = ANY(%(ids)s)
ON CONFLICT (allocation_id, kind, round) DO NOTHING
"""


async def state_changed(
    work: Unit, allocation_ids: Sequence[uuid.UUID], status: AllocationStatus
) -> None:
    """Queues ``parcel.<status>.v1`` for these allocations (of carriers that want it)."""
    await work.conn.execute(
        _INSERT.format(round="%(round)s"),
        {
            "event": event_code(status.value),
            "now": work.now,
            "ids": list(allocation_ids),
            "round": list(AllocationStatus).index(status) + 1,
            "extra": "{}",
        },
    )


async def redirected(work: Unit, allocation_id: uuid.UUID) -> None:
    """Queues ``parcel.redirected.v1`` (the allocation's location is the new one)."""
    counted = (
        f"{_REDIRECT_ROUNDS} + (SELECT count(*) FROM notifications n"
        " WHERE n.allocation_id = a.allocation_id AND n.kind = 'state_changed'"
        f" AND n.round >= {_REDIRECT_ROUNDS} AND n.round < {_DOOR_FAULT_ROUNDS})"
    )
    await work.conn.execute(
        _INSERT.format(round=counted),
        {"event": event_code("redirected"), "now": work.now, "ids": [allocation_id],
         "extra": "{}"},
    )  # fmt: skip


async def door_fault(work: Unit, allocation_id: uuid.UUID, *, door_number: int, fault: str) -> None:
    """Queues ``parcel.door_fault.v1``: a door of the parcel's drop-off failed at the kiosk
    (``fault``: the kiosk's event or reported problem; ``fault_door_number`` the door)."""
    counted = (
        f"{_DOOR_FAULT_ROUNDS} + (SELECT count(*) FROM notifications n"
        " WHERE n.allocation_id = a.allocation_id AND n.kind = 'state_changed'"
        f" AND n.round >= {_DOOR_FAULT_ROUNDS})"
    )
    extra: Mapping[str, Any] = {"fault": fault, "fault_door_number": door_number}
    await work.conn.execute(
        _INSERT.format(round=counted),
        {"event": event_code("door_fault"), "now": work.now, "ids": [allocation_id],
         "extra": json.dumps(extra)},
    )  # fmt: skip


async def reminder_sent(pool: Pool, allocation_id: uuid.UUID, now: datetime) -> None:
    """Queues ``parcel.reminder_sent.v1``: the customer's reminder went out (once)."""
    async with pool.connection() as conn:
        await conn.execute(
            _INSERT.format(round=_REMINDER_SENT_ROUND),
            {"event": event_code("reminder_sent"), "now": now, "ids": [allocation_id],
             "extra": "{}"},
        )  # fmt: skip


_SWEEP_SQL = """
WITH mark AS (
    SELECT swept_through FROM webhook_sweeps WHERE name = 'reserved'
)
INSERT INTO notifications (idempotency_key, allocation_id, carrier_id, customer_id, kind,
                           payload, due_at, next_attempt_at, created_at, round)
SELECT gen_random_uuid(), a.allocation_id, a.carrier_id, a.customer_id, 'state_changed',
       jsonb_build_object(
           'event', %(event)s::text, 'allocation_id', a.allocation_id, 'kind', a.kind,
           'package_id', a.package_id, 'order_id', a.order_id, 'location_id', a.location_id,
           'locker_number', d.label, 'door_number', d.door_number, 'status', 'reserved',
           'at', to_char(a.reserved_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
       %(now)s, %(now)s, %(now)s, %(round)s
FROM allocations a
JOIN carriers c ON c.carrier_id = a.carrier_id AND c.state_events
JOIN doors d ON d.door_id = a.door_id
WHERE a.reserved_at > coalesce((SELECT swept_through FROM mark), %(now)s) - %(margin)s
  AND a.reserved_at <= %(now)s
ON CONFLICT (allocation_id, kind, round) DO NOTHING
"""


async def sweep_reservations(pool: Pool, now: datetime) -> int:
    """Queues ``parcel.reserved.v1`` for allocations created since the last sweep (of carriers
    with state webhooks); returns how many were queued.

    The first sweep of a database starts ``SWEEP_MARGIN`` back from now: allocations from
    before the upgrade get no event.
    """
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            _SWEEP_SQL,
            {
                "event": event_code("reserved"),
                "now": now,
                "margin": SWEEP_MARGIN,
                "round": list(AllocationStatus).index(AllocationStatus.RESERVED) + 1,
            },
        )
        queued = cur.rowcount
        await conn.execute(
            "INSERT INTO webhook_sweeps (name, swept_through) VALUES ('reserved', %(now)s)"
            " ON CONFLICT (name) DO UPDATE"
            " SET swept_through = greatest(webhook_sweeps.swept_through, %(now)s)",
            {"now": now},
        )
    return queued
