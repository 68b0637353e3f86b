"""The outbox pump: which outbox events to publish now, and what an ``ack`` does.

No IO here but the store: the coordinator (`kiosk.sync.client`) asks `OutboxPump.due` for the
batches to publish and publishes them; the SQLite outbox, not the MQTT client, is the durable
record, so anything the client loses is sent again.

Rules (``docs/protocol.md``, "events"):

- events go out lowest sequence first, at most 100 per ``events`` message;
- at most ``window`` events are in flight (published, not yet acknowledged), so a kiosk back
  from a long outage does not flood the broker and the cloud;
- when no ``ack`` has made progress for ``ack_timeout`` while events are in flight, everything
  unacknowledged is sent again from the lowest sequence (a message or its ack was lost); while
  no ack comes at all (the cloud is down) the wait doubles at each resend, up to
  ``max_ack_timeout``, and is back to ``ack_timeout`` as soon as an ack makes progress;
- a new connection starts again from the lowest unacknowledged event;
- an ``ack`` marks every event through its sequence acknowledged; acknowledged events older than
  ``retention`` are pruned (at most once per ``prune_every``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from kiosk.store import outbox
from kiosk.store.database import Store
from kiosk.store.records import OutboxEvent

log = logging.getLogger(__name__)

BATCH_SIZE = 100
NO_PROGRESS_RESEND_AFTER = timedelta(seconds=0.5)
"""An ack that makes no progress resends at once events in flight for at least this long."""
"""Events per ``events`` message (the protocol's maximum)."""


class OutboxPump:
    """Decides what to publish from the outbox, and records acknowledgements.

    Args:
        store: The kiosk's store.
        ack_timeout: How long events may stay in flight without an ack making progress.
        retention: How long acknowledged events are kept before pruning.
        window: The most events in flight at once (a multiple of `BATCH_SIZE` is best).
        prune_every: The least time between two prunes.
        max_ack_timeout: The longest wait between resends while no ack comes.
    """

    def __init__(
        self,
        store: Store,
        *,
        ack_timeout: timedelta = timedelta(seconds=5),
        retention: timedelta = timedelta(days=1),
        window: int = 10 * BATCH_SIZE,
        prune_every: timedelta = timedelta(minutes=1),
        max_ack_timeout: timedelta = timedelta(minutes=1),
    ) -> None:
        if window < 1:
            raise ValueError("the window must allow at least one event in flight")
        self._store = store
        self._ack_timeout = ack_timeout
        self._max_ack_timeout = max(ack_timeout, max_ack_timeout)
        self._timeout = ack_timeout
        self._retention = retention
        self._window = window
        self._prune_every = prune_every
        self._sent_through = 0
        self._deadline: datetime | None = None
        self._pruned_at: datetime | None = None
        self.resends = 0
        self._last_sent_at: datetime | None = None

    def reset(self) -> None:
        """Forgets what was sent: for a new connection, which starts from the lowest pending."""
        self._sent_through = 0
        self._deadline = None
        self._timeout = self._ack_timeout
        self._last_sent_at = None

    def due(self, now: datetime) -> list[list[OutboxEvent]]:
        """The batches to publish now, oldest first (empty when there is nothing to send).

        Publishing them is the caller's job; they count as in flight from now on.
        """
        db = self._store.db
        first = outbox.pending_events(db, limit=1)
        if not first:
            self._deadline = None
            return []
        lowest = first[0].sequence
        if lowest > self._sent_through:
            # Everything sent is acknowledged; nothing is in flight.
            self._sent_through = lowest - 1
            self._deadline = None
        elif self._deadline is not None and now >= self._deadline:
            log.info(
                "no ack for events %d..%d within %.0f s: sending them again",
                lowest,
                self._sent_through,
                self._timeout.total_seconds(),
            )
            self.resends += 1
            self._sent_through = lowest - 1
            self._deadline = None
            self._timeout = min(self._timeout * 2, self._max_ack_timeout)
        in_flight = self._sent_through - lowest + 1
        room = self._window - in_flight
        if room <= 0:
            return []
        events = outbox.pending_events(db, limit=room, after_sequence=self._sent_through)
        if not events:
            return []
        self._sent_through = events[-1].sequence
        self._last_sent_at = now
        if self._deadline is None:
            self._deadline = now + self._timeout
        return [events[i : i + BATCH_SIZE] for i in range(0, len(events), BATCH_SIZE)]

    def acknowledged(self, through_sequence: int, now: datetime) -> int:
        """Records the cloud's ack cursor; prunes old acknowledged events now and then.

        Returns:
            How many events were newly acknowledged.
        """
        count = outbox.ack_through(self._store, through_sequence, now)
        if not count and self._sent_through > through_sequence and self._last_sent_at is not None:
            # The cloud is up and its cursor stops short of events in flight (lost if no worker
            # was subscribed when they went out: a broker or cloud restart): send them again
            # soon, not after the ack timeout. Soon is at least NO_PROGRESS_RESEND_AFTER after
            # the last send, since an ack right after sending may only answer an earlier batch.
            soon = max(now, self._last_sent_at + NO_PROGRESS_RESEND_AFTER)
            if self._deadline is None or soon < self._deadline:
                log.info(
                    "the cloud's cursor %d stops short of events sent through %d: resending",
                    through_sequence,
                    self._sent_through,
                )
                self._deadline = soon
        if count:
            # Progress: the in-flight rest gets a full timeout again.
            self._timeout = self._ack_timeout
            self._deadline = (
                now + self._ack_timeout if self._sent_through > through_sequence else None
            )
        last = outbox.last_sequence(self._store.db)
        if through_sequence > last:
            log.warning(
                "the cloud acknowledges events through %d, but the last one written here is %d"
                " (was this kiosk's database replaced?)",
                through_sequence,
                last,
            )
        if self._pruned_at is None or now - self._pruned_at >= self._prune_every:
            self._pruned_at = now
            pruned = outbox.prune_acked(self._store, now - self._retention)
            if pruned:
                log.info("pruned %d acknowledged event(s)", pruned)
        return count

    def depth(self) -> int:
        """How many events wait for an ack."""
        row = self._store.db.execute("SELECT count(*) FROM outbox WHERE acked = 0").fetchone()
        return int(row[0])
