"""Kiosk events applied once, in sequence order, under the kiosk's cursor (``docs/protocol.md``).

One transaction per ``events`` message, under a row lock on the kiosk's ``kiosk_cursors`` row, so
two workers never apply one kiosk's events concurrently (and one worker handles a location's
messages in arrival order, `cloud.sync.worker`):

- ``sequence <= cursor``: a duplicate, skipped (its event id is compared with the stored one, and
  a mismatch logged: the kiosk's store was replaced without a new kiosk id);
- ``sequence == cursor + 1``: applied (`cloud.sync.facts`), recorded in ``kiosk_events`` and the
  cursor advanced, in the message's transaction;
- ``sequence > cursor + 1``: a gap: neither it nor anything after it in the message is applied;
  the kiosk sends them again after its earlier events.

Each event is checked on its own first (`shared.events.parse_event`): an unknown type, a payload
version this cloud does not support, or a payload that does not fit its type's model is refused,
logged, and recorded as ``ignored`` with ``refused (<reason>): <what is wrong>`` as its detail
and the payload as received; the cursor moves over it and the message's other events are
applied. Only a valid event reaches `cloud.sync.facts`, as the validated model's payload (the
model itself is in `ValidEvent`).

An event that cannot be applied (unknown allocation, impossible transition, or a database error
other than a transient one) is recorded as ``ignored`` with its reason and still advances the
cursor: one bad event must not block a kiosk's later events forever. Transient errors (deadlock,
serialization failure, lost connection) roll the whole transaction back; the kiosk resends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from cloud import metrics
from cloud.store import kiosk_events
from cloud.store.database import Conn, Pool
from cloud.sync.facts import FactContext, Ignored, Outcome, apply_fact
from shared.clock import Clock
from shared.events import InvalidEvent, KioskEvent, parse_event
from shared.protocol import EventRecord, EventsBody

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EventsResult:
    """What one ``events`` message did.

    Attributes:
        through_sequence: The kiosk's cursor afterwards (what the ack says).
        applied: Events applied now (recorded as applied, unchanged, recorded or ignored).
        duplicates: Events at or below the cursor, skipped.
        gap: An event came after a missing one; it and the rest were not applied.
    """

    through_sequence: int
    applied: int
    duplicates: int
    gap: bool


class UnknownKiosk(Exception):
    """The kiosk has no cursor (not registered)."""


@dataclass(frozen=True, slots=True)
class ValidEvent:
    """A received event that passed `shared.events.parse_event`.

    Attributes:
        record: The event as facts read it: the received record, its payload replaced by the
            validated model's (so facts see every field of the model, with its default when the
            kiosk left an optional one out).
        event: The typed event.
    """

    record: EventRecord
    event: KioskEvent


def validate_event(record: EventRecord) -> ValidEvent:
    """Checks one received event against its type's model.

    Raises:
        InvalidEvent: an unknown type, an unsupported payload version or an invalid payload.
    """
    event = parse_event(record)
    return ValidEvent(record.model_copy(update={"payload": event.payload()}), event)


def refusal_detail(error: InvalidEvent) -> str:
    """What ``kiosk_events.detail`` says of a refused event: ``refused (<reason>): <detail>``."""
    return f"refused ({error.reason}): {error.detail}"[:500]


async def apply_events(
    pool: Pool,
    *,
    kiosk_id: str,
    location_id: str,
    body: EventsBody,
    clock: Clock,
    pickup_window: timedelta,
) -> EventsResult:
    """Applies an ``events`` message in one transaction, under the kiosk's cursor row lock.

    Each event's facts (in a savepoint, so an ignored event changes nothing), its record and the
    cursor's advance over it commit together, so an event is never applied without the cursor
    knowing, nor the other way round.
    One commit per message rather than per event: a kiosk catching up sends batches of 100, and
    a commit (a WAL flush) per event made catch-up take seconds per thousand events.

    Raises:
        UnknownKiosk: no cursor for the kiosk.
        psycopg.OperationalError: a transient database failure (nothing of the message is
            applied; the kiosk sends it again).
    """
    applied = duplicates = 0
    gap = False
    # (outcome, refusal reason) of each event recorded, counted once the transaction commits.
    counted: list[tuple[str, str]] = []
    async with pool.connection() as conn, conn.transaction():
        cursor = await _lock_cursor(conn, kiosk_id)
        for event in sorted(body.events, key=lambda e: e.sequence):
            if event.sequence <= cursor:
                duplicates += 1
                await _check_duplicate(conn, kiosk_id, event)
                continue
            if event.sequence > cursor + 1:
                gap = True
                break
            if await _event_id_taken(conn, kiosk_id, event):
                # Its id was applied under another sequence: not applied twice, and the
                # cursor moves on so that the kiosk's later events are not held up.
                log.warning(
                    "kiosk %s: event %s at sequence %d was applied before under another"
                    " sequence; skipped",
                    kiosk_id,
                    event.event_id,
                    event.sequence,
                )
                await kiosk_events.advance(conn, kiosk_id, event.sequence, clock.now())
                cursor = event.sequence
                continue
            try:
                valid = validate_event(event)
            except InvalidEvent as error:
                log.warning(
                    "kiosk %s event %d (%s) refused: %s",
                    kiosk_id,
                    event.sequence,
                    event.type,
                    error,
                )
                outcome = Outcome("ignored", refusal_detail(error))
                counted.append(("refused", error.reason))
            else:
                outcome = await _apply_one(conn, kiosk_id, location_id, valid, clock, pickup_window)
                counted.append((outcome.result, "none"))
            await _record(conn, kiosk_id, event, outcome, clock)
            cursor = event.sequence
            applied += 1
    for outcome_status, reason in counted:
        metrics.KIOSK_EVENTS.labels(outcome_status, reason).inc()
    if gap:
        log.info(
            "kiosk %s: events after %d not applied: sequence %s is missing",
            kiosk_id,
            cursor,
            cursor + 1,
        )
    return EventsResult(cursor, applied, duplicates, gap)


async def _lock_cursor(conn: Conn, kiosk_id: str) -> int:
    value = await kiosk_events.cursor(conn, kiosk_id, lock=True)
    if value is None:
        raise UnknownKiosk(kiosk_id)
    return value


async def _read_cursor(conn: Conn, kiosk_id: str) -> int:
    value = await kiosk_events.cursor(conn, kiosk_id, lock=False)
    if value is None:
        raise UnknownKiosk(kiosk_id)
    return value


async def _check_duplicate(conn: Conn, kiosk_id: str, event: EventRecord) -> None:
    applied = await kiosk_events.event_id_at(conn, kiosk_id, event.sequence)
    if applied is not None and applied != event.event_id:
        log.warning(
            "kiosk %s: sequence %d arrived with event id %s, but %s was applied under it;"
            " not applied (was the kiosk's store replaced?)",
            kiosk_id,
            event.sequence,
            event.event_id,
            applied,
        )


async def _apply_one(
    conn: Conn,
    kiosk_id: str,
    location_id: str,
    valid: ValidEvent,
    clock: Clock,
    pickup_window: timedelta,
) -> Outcome:
    event = valid.record
    ctx = FactContext(
        conn=conn,
        kiosk_id=kiosk_id,
        location_id=location_id,
        event=event,
        fact=valid.event,
        now=clock.now(),
        pickup_window=pickup_window,
    )
    try:
        # In a savepoint of its own (a unit): an ignored or failed event changes nothing.
        return await apply_fact(ctx)
    except Ignored as why:
        log.warning("kiosk %s event %d (%s) ignored: %s", kiosk_id, event.sequence, event.type, why)
        return Outcome("ignored", str(why))
    except psycopg.OperationalError:
        raise  # transient (deadlock, serialization, connection): the kiosk sends it again
    except Exception as exc:
        log.exception("kiosk %s event %d (%s) failed", kiosk_id, event.sequence, event.type)
        return Outcome("ignored", f"could not be applied: {type(exc).__name__}: {exc}"[:500])


async def _record(
    conn: Conn, kiosk_id: str, event: EventRecord, outcome: Outcome, clock: Clock
) -> None:
    await kiosk_events.record(
        conn,
        kiosk_id,
        event,
        outcome=outcome.result,
        detail=outcome.detail,
        received_at=clock.now(),
    )


async def _event_id_taken(conn: Conn, kiosk_id: str, event: EventRecord) -> bool:
    return await kiosk_events.event_id_taken(conn, kiosk_id, event.event_id)
