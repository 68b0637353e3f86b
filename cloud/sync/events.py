"""Kiosk events applied once, in sequence order, under the kiosk's cursor (``docs/protocol.md``).

One transaction per ``events`` message, under a row lock on the kiosk's ``kiosk_cursors`` row, so
two workers never apply one kiosk's events concurrently (and one worker handles a location's
messages in arrival order, `cloud.sync.worker`):

- ``sequence <= cursor``: a duplicate, skipped (its event id is compared with the stored one; a
  mismatch is two events under one sequence number, a sign of a stolen key or a replaced store,
  and raises an ``event_conflict`` security alert with both events);
- ``sequence == cursor + 1``: applied (`cloud.sync.facts`), recorded in ``kiosk_events`` and the
  cursor advanced, in the message's transaction;
- ``sequence > cursor + 1``: a gap: neither it nor anything after it in the message is applied;
  the kiosk sends them again after its earlier events.

Sequences count per store incarnation (``EventsBody.incarnation``, `cloud.store.incarnations`):
a kiosk whose store was replaced sends under a new incarnation from sequence 1; its events are
applied after the old store's (a ``store_replaced`` alert tells operators), and its acks carry
its incarnation. A replaced store speaking again is refused whole (a ``retired_store`` alert, no
ack): only the kiosk's current store moves its cursor.

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

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from cloud import metrics
from cloud.store import alerts, incarnations, kiosk_events
from cloud.store.database import Conn, Pool
from cloud.store.incarnations import Standing
from cloud.sync.facts import DEFAULT_KEY_GRACE, FactContext, Ignored, Outcome, apply_fact
from shared.clock import Clock
from shared.events import InvalidEvent, KioskEvent, parse_event
from shared.protocol import EventRecord, EventsBody

log = logging.getLogger(__name__)

# Alert kinds (``fleet_alerts.kind``) of this module; docs/cloud-sync.md lists them.
EVENT_CONFLICT = "event_conflict"
STORE_REPLACED = "store_replaced"
RETIRED_STORE = "retired_store"


@dataclass(frozen=True, slots=True)
class EventsResult:
    """What one ``events`` message did.

    Attributes:
        through_sequence: The kiosk's cursor afterwards (what the ack says).
        applied: Events applied now (recorded as applied, unchanged, recorded or ignored).
        duplicates: Events at or below the cursor, skipped.
        gap: An event came after a missing one; it and the rest were not applied.
        refused: The message came from a retired store incarnation: nothing applied, no ack.
    """

    through_sequence: int
    applied: int
    duplicates: int
    gap: bool
    refused: bool = False


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
    key_grace: timedelta = DEFAULT_KEY_GRACE,
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
        where = await incarnations.resolve(conn, kiosk_id, body.incarnation, cursor, clock.now())
        if where.standing is Standing.RETIRED:
            await _retired_store_spoke(conn, kiosk_id, location_id, body, where, clock)
            return EventsResult(0, 0, 0, gap=False, refused=True)
        if where.standing is Standing.NEW:
            await _store_replaced(conn, kiosk_id, location_id, body, where, cursor, clock)
        offset = where.offset
        for received in sorted(body.events, key=lambda e: e.sequence):
            # From here on, sequences are the cursor's (offset + the store's own).
            event = received.model_copy(update={"sequence": offset + received.sequence})
            if event.sequence <= cursor:
                duplicates += 1
                await _check_duplicate(conn, kiosk_id, location_id, event, received, clock)
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
                outcome = await _apply_one(
                    conn, kiosk_id, location_id, valid, clock, pickup_window, key_grace
                )
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
    return EventsResult(cursor - offset, applied, duplicates, gap)


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


async def _check_duplicate(
    conn: Conn,
    kiosk_id: str,
    location_id: str,
    event: EventRecord,
    received: EventRecord,
    clock: Clock,
) -> None:
    applied = await kiosk_events.event_id_at(conn, kiosk_id, event.sequence)
    if applied is None or applied == event.event_id:
        return
    # Two events under one sequence number: the kiosk's key signed both, so either someone
    # else holds the key (and got in first) or the store was replaced without a new
    # incarnation. Not applied (the sequence is taken) but never silent: an operator decides.
    log.warning(
        "SECURITY kiosk %s: sequence %d arrived with event id %s (%s), but %s was applied under"
        " it; not applied, alert raised",
        kiosk_id,
        received.sequence,
        event.event_id,
        event.type,
        applied,
    )
    if await alerts.has_open_alert(
        conn,
        kiosk_id=kiosk_id,
        kind=EVENT_CONFLICT,
        detail_matches={"received_event_id": str(event.event_id)},
    ):
        return
    await alerts.raise_alert(
        conn,
        location_id=location_id,
        kiosk_id=kiosk_id,
        kind=EVENT_CONFLICT,
        door_number=None,
        detail=json.dumps(
            {
                "sequence": received.sequence,
                "cursor_sequence": event.sequence,
                "applied_event_id": str(applied),
                "received_event_id": str(event.event_id),
                "received_type": event.type,
                "received_payload": event.payload,
            },
            default=str,
        ),
        now=clock.now(),
    )


async def _store_replaced(
    conn: Conn,
    kiosk_id: str,
    location_id: str,
    body: EventsBody,
    where: incarnations.Incarnation,
    cursor: int,
    clock: Clock,
) -> None:
    log.warning(
        "kiosk %s: a new store (incarnation %s) replaced %s; its events count from %d",
        kiosk_id,
        body.incarnation,
        where.previous,
        cursor + 1,
    )
    await alerts.raise_alert(
        conn,
        location_id=location_id,
        kiosk_id=kiosk_id,
        kind=STORE_REPLACED,
        door_number=None,
        detail=json.dumps(
            {
                "incarnation": str(body.incarnation),
                "previous_incarnation": str(where.previous),
                "first_cursor_sequence": cursor + 1,
            }
        ),
        now=clock.now(),
    )


async def _retired_store_spoke(
    conn: Conn,
    kiosk_id: str,
    location_id: str,
    body: EventsBody,
    where: incarnations.Incarnation,
    clock: Clock,
) -> None:
    log.warning(
        "SECURITY kiosk %s: events from its replaced store (incarnation %s) refused",
        kiosk_id,
        body.incarnation,
    )
    matches = {"incarnation": str(body.incarnation)}
    if await alerts.has_open_alert(
        conn, kiosk_id=kiosk_id, kind=RETIRED_STORE, detail_matches=matches
    ):
        return
    await alerts.raise_alert(
        conn,
        location_id=location_id,
        kiosk_id=kiosk_id,
        kind=RETIRED_STORE,
        door_number=None,
        detail=json.dumps(
            {
                **matches,
                "current_incarnation": str(where.previous),
                "sequences": [e.sequence for e in body.events],
                "types": [e.type for e in body.events],
            }
        ),
        now=clock.now(),
    )


async def _apply_one(
    conn: Conn,
    kiosk_id: str,
    location_id: str,
    valid: ValidEvent,
    clock: Clock,
    pickup_window: timedelta,
    key_grace: timedelta,
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
        key_grace=key_grace,
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
