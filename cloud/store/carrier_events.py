"""State-change webhooks: a notification per parcel state change, for carriers that asked.

Written in the transaction of the change (so a change and its event commit together) and sent
by the notification dispatcher like any webhook (signed, retried, in the delivery log). The
event code is versioned (``parcel.deposited.v1``); ``round`` keeps one per allocation and state
(a state is entered once), and numbers the redirects from 1000 on.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shared.states import AllocationStatus

if TYPE_CHECKING:
    from cloud.store.transaction import Unit

EVENT_VERSION = 1
_REDIRECT_ROUNDS = 1000


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
           'at', to_char(%(now)s::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
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
        },
    )


async def redirected(work: Unit, allocation_id: uuid.UUID) -> None:
    """Queues ``parcel.redirected.v1`` (the allocation's location is the new one)."""
    counted = (
        f"{_REDIRECT_ROUNDS} + (SELECT count(*) FROM notifications n"
        " WHERE n.allocation_id = a.allocation_id AND n.kind = 'state_changed'"
        f" AND n.round >= {_REDIRECT_ROUNDS})"
    )
    await work.conn.execute(
        _INSERT.format(round=counted),
        {"event": event_code("redirected"), "now": work.now, "ids": [allocation_id]},
    )
