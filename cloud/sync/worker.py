"""The sync worker: the cloud's MQTT connection, its reconnect loop, and the kiosks' messages.

One worker owns one MQTT connection. Each connection attempt makes a new client (an aiomqtt
client that keeps a stop request: `shared.mqtt_client`); when the connection fails, the worker
waits a jittered exponential backoff (`shared.backoff`: full jitter, 0.1 s doubling to 1 s: a
few workers cannot storm a broker, and the cloud is back within a second of it, before most of
the fleet, whose births and requests it must be subscribed to hear) and tries again;
the backoff restarts from its minimum only once a connection has held `CONNECTION_HELD_S`.
The broker may lose anything in flight: the change log, the kiosks' outboxes and the cursors
are the durable record, and both sides resend.

While connected, the worker

1. subscribes to every kiosk's topics, through the shared subscription
   ``$share/locker-cloud/locker/v1/+/kiosk/#`` (several workers split the load) or, for a broker
   without shared subscriptions, ``locker/v1/+/kiosk/#`` (then run one worker only);
2. checks every message with `shared.protocol.open_message` (the sender's registered key, which
   must belong to the topic's location; freshness; a replay guard), logs a rejection with its
   reason and moves on: bad input never stops the worker;
3. answers ``sync_request``, applies ``events`` and acknowledges them, records presence;
4. listens on PostgreSQL (``LISTEN``) for committed changes and queued remote commands, and
   publishes them (`cloud.sync.publisher`), with a sweep every few seconds for anything a lost
   notification left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import ssl
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiomqtt
import psycopg

from cloud.store import database, kiosk_events, kiosk_keys
from cloud.store.changelog import NOTIFY_CHANNEL
from cloud.store.database import Pool
from cloud.sync import presence
from cloud.sync.events import UnknownKiosk, apply_events
from cloud.sync.facts import DEFAULT_KEY_GRACE
from cloud.sync.key_rotation import rotation_due
from cloud.sync.keys import REFRESH_AFTER_S, KioskDirectory, KioskKey, resolver_for
from cloud.sync.publisher import Publisher
from shared.backoff import backoff_delay
from shared.broker_list import BrokerRotation, parse_broker_urls
from shared.broker_url import ClientTls, parse_broker_url
from shared.cancellation import raise_if_cancelling
from shared.clock import Clock
from shared.events import EventType
from shared.flood_gate import FloodGate, RateLimit, RejectionLog
from shared.mqtt_client import MqttClient
from shared.protocol import (
    CLOUD_SENDER,
    CLOUD_SUBSCRIPTION,
    MAX_PAYLOAD_BYTES,
    SHARED_GROUP,
    TOPIC_ROOT,
    BirthBody,
    DeathBody,
    EventsBody,
    HeartbeatBody,
    Message,
    MessageType,
    Rejected,
    RejectReason,
    ReplayGuard,
    SyncRequestBody,
    check_envelope_shape,
    check_json_bounds,
    check_signature_field,
    open_message,
    parse_topic,
)
from shared.signing import Signer

log = logging.getLogger(__name__)

PLAIN_SUBSCRIPTION = f"{TOPIC_ROOT}/+/kiosk/#"
"""The filter for a broker without shared subscriptions (one worker only)."""
assert f"$share/{SHARED_GROUP}/{PLAIN_SUBSCRIPTION}" == CLOUD_SUBSCRIPTION

COMMANDS_CHANNEL = "locker_remote_commands"
# A kiosk sends a heartbeat every 30 s and at most 10 events messages in flight; a location's
# topics carry its few kiosks. Far above that, far below a flood (docs/cloud-sync.md).
TOPIC_LIMIT = RateLimit(per_second=100.0, burst=1000)
KIOSK_LIMIT = RateLimit(per_second=100.0, burst=1000)
CONNECTION_HELD_S = 5.0
"""A connection that lived this long resets the reconnect backoff to its minimum."""
CONNACK_TIMEOUT_S = 3.0
"""How long a connection attempt waits for its CONNACK before the next broker node is tried:
a NATS node holds it while JetStream elects the leaders a dead node had (docs/protocol.md,
"Broker cluster"); Mosquitto answers in milliseconds."""
_SENDER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """The broker and this worker's credentials there (see `shared.broker_url`)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_tls: ClientTls = field(default_factory=ClientTls)

    @classmethod
    def from_url(cls, url: str, client_tls: ClientTls | None = None) -> BrokerAddress:
        """``mqtt(s)://[USER[:PASSWORD]@]HOST[:PORT]`` (ports default to 1883 and 8883).

        Raises:
            ValueError: not such a URL (`BrokerUrlError`), or TLS files without ``mqtts://``.
        """
        parsed = parse_broker_url(url)
        if client_tls is not None and client_tls != ClientTls() and not parsed.tls:
            raise ValueError("a CA file or client certificate needs an mqtts:// broker URL")
        return cls(
            parsed.host,
            parsed.port,
            parsed.tls,
            parsed.username,
            parsed.password,
            client_tls or ClientTls(),
        )

    def tls_context(self) -> ssl.SSLContext | None:
        """The connection's TLS context; None for plain ``mqtt://``."""
        return self.client_tls.context() if self.tls else None

    @classmethod
    def list_from_urls(
        cls, urls: str, client_tls: ClientTls | None = None
    ) -> tuple[BrokerAddress, ...]:
        """A broker cluster's nodes from a comma-separated list of URLs (issue 13; one URL
        gives one node), all with one scheme and one identity (`shared.broker_list`).

        Raises:
            ValueError: see `from_url` and `shared.broker_list.parse_broker_urls`.
        """
        parse_broker_urls(urls)
        return tuple(
            cls.from_url(url.strip(), client_tls) for url in urls.split(",") if url.strip()
        )


class SyncWorker:
    """Runs the cloud side of the sync until cancelled.

    Attributes:
        ready: Set while connected and subscribed (tests wait for it).
        stats: Counts of messages handled by type, rejections by reason, failures; and of the
            publisher's ``wakeups`` and the ``notifications`` they took.
    """

    def __init__(
        self,
        pool: Pool,
        *,
        database_url: str,
        broker: BrokerAddress | Sequence[BrokerAddress],
        signer: Signer,
        clock: Clock,
        pickup_window: timedelta,
        shared_subscription: bool = True,
        share_group: str = SHARED_GROUP,
        sweep_interval: float = 5.0,
        concurrency: int = 8,
        client_id: str | None = None,
        connack_timeout: float = CONNACK_TIMEOUT_S,
        backoff_first: float = 0.1,
        backoff_longest: float = 1.0,
        key_cache_s: float = 60.0,
        key_refresh_s: float = REFRESH_AFTER_S,
        topic_limit: RateLimit = TOPIC_LIMIT,
        kiosk_limit: RateLimit = KIOSK_LIMIT,
        key_max_age: timedelta | None = None,
        key_grace: timedelta = DEFAULT_KEY_GRACE,
    ) -> None:
        self._pool = pool
        self._database_url = database_url
        # Issue 13: one broker, or a cluster's nodes, the next one tried after each failure.
        self._brokers = BrokerRotation(
            (broker,) if isinstance(broker, BrokerAddress) else tuple(broker)
        )
        self._signer = signer
        self._clock = clock
        self._pickup_window = pickup_window
        # Workers of one group split the kiosks' messages; another group (a test run, a
        # staging cloud on the same broker) gets its own copy instead of taking half of them.
        self.subscription = (
            f"$share/{share_group}/{PLAIN_SUBSCRIPTION}"
            if shared_subscription
            else PLAIN_SUBSCRIPTION
        )
        self._sweep_interval = sweep_interval
        self._slots = asyncio.Semaphore(concurrency)
        # Per location: the lock that keeps its messages in order, and how many tasks use it.
        self._order: dict[str, tuple[asyncio.Lock, int]] = {}
        self._client_id = client_id or f"locker-cloud-{uuid.uuid4().hex[:12]}"
        self._backoff = (backoff_first, backoff_longest)
        self._connack_timeout = connack_timeout
        # A revocation or the end of a key's grace takes effect within key_cache_s.
        # A key rotated on another worker is looked up again after a bad signature (at most
        # every key_refresh_s per kiosk).
        self._directory = KioskDirectory(
            pool, ttl=key_cache_s, now=clock.now, refresh_after=key_refresh_s
        )
        self._replays = ReplayGuard()
        # Before anything costs (per topic), and per kiosk once its signature is checked.
        self._topic_gate = FloodGate(topic_limit, what="sync: flood on a topic", logger=log)
        self._kiosk_gate = FloodGate(kiosk_limit, what="sync: flood from a kiosk", logger=log)
        self._rejections = RejectionLog(log)
        self._key_max_age = key_max_age
        self._key_grace = key_grace
        self.ready = asyncio.Event()
        self.stats: Counter[str] = Counter()

    async def run(self) -> None:
        """Connects, serves, and reconnects with backoff, forever (cancel to stop)."""
        attempt = 0
        loop = asyncio.get_running_loop()
        while True:
            raise_if_cancelling()
            connected_at: float | None = None
            try:
                async with self._client() as client:
                    connected_at = loop.time()
                    await self._session(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if _is_mqtt_error(exc):
                    log.warning("sync: broker connection lost or refused: %s", exc)
                else:
                    log.exception("sync: session failed")
            finally:
                subscribed = self.ready.is_set()
                self.ready.clear()
            # Backoff starts again from its minimum only after a session that got going
            # (subscribed: a broker that accepts the connection but refuses the subscription, an
            # ACL, must not be retried every half second forever) and held (a flapping link
            # must not become a reconnect storm).
            held = connected_at is not None and loop.time() - connected_at >= CONNECTION_HELD_S
            if subscribed and held:
                attempt = 0
            self._brokers.failed()
            first, longest = self._backoff
            delay = backoff_delay(attempt, first=first, longest=longest)
            attempt += 1
            log.info("sync: reconnecting in %.1f s", delay)
            await asyncio.sleep(delay)

    @property
    def broker(self) -> BrokerAddress:
        """The broker node connected to, or tried next (issue 13: one of a cluster's)."""
        return self._brokers.current

    def _client(self) -> MqttClient:
        return MqttClient(
            self.broker.host,
            self.broker.port,
            identifier=self._client_id,
            clean_session=True,
            keepalive=30,
            timeout=10,
            connack_timeout=self._connack_timeout,
            tls_context=self.broker.tls_context(),
            username=self.broker.username,
            password=self.broker.password,
        )

    async def _session(self, client: aiomqtt.Client) -> None:
        async def publish(topic_name: str, payload: bytes, qos: int, retain: bool) -> None:
            await client.publish(topic_name, payload, qos=qos, retain=retain)

        publisher = Publisher(self._pool, self._signer, self._clock, publish)
        listener = await psycopg.AsyncConnection.connect(self._database_url, autocommit=True)
        async with listener:
            await database.listen(listener, NOTIFY_CHANNEL, COMMANDS_CHANNEL)
            await client.subscribe(self.subscription, qos=1)
            log.info(
                "sync: connected to %s:%d as %s, subscribed to %s",
                self.broker.host,
                self.broker.port,
                self._client_id,
                self.subscription,
            )
            self.ready.set()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._publish_loop(listener, publisher))
                async for message in client.messages:
                    if not self._topic_gate.admit(message.topic.value):
                        self.stats["rate_limited"] += 1
                        continue
                    await self._slots.acquire()
                    task = group.create_task(self._handle_in_order(message, publisher))
                    task.add_done_callback(lambda _: self._slots.release())

    async def _publish_loop(
        self, listener: psycopg.AsyncConnection[Any], publisher: Publisher
    ) -> None:
        """Publishes what the notifications name, coalesced, with a sweep every interval.

        A wakeup takes every notification already waiting, not just the first: a busy location
        sends one per committed change, and a round publishes all of its pending changes
        however many notified, so the location gets one round per wakeup (in the order the
        locations first appear) instead of one per change. A change committed while a round
        runs notifies again after its commit, so the next wakeup (or the sweep) publishes it.
        """
        loop = asyncio.get_running_loop()
        while True:
            await publisher.sweep()
            await publisher.publish_commands()
            deadline = loop.time() + self._sweep_interval
            while (left := deadline - loop.time()) > 0:
                notes = await _wakeup(listener, left)
                if not notes:
                    break
                locations = dict.fromkeys(n.payload for n in notes if n.channel == NOTIFY_CHANNEL)
                self.stats["wakeups"] += 1
                self.stats["notifications"] += len(notes)
                for location_id in locations:
                    await publisher.publish_pending(location_id)
                if any(n.channel != NOTIFY_CHANNEL for n in notes):
                    await publisher.publish_commands()

    async def _handle_in_order(self, message: aiomqtt.Message, publisher: Publisher) -> None:
        """Handles messages of one location one at a time, in the order they arrived.

        Messages of different locations run concurrently, but a kiosk's `events` batches must
        reach its cursor in sequence order: handled concurrently, a later batch could arrive
        first, be refused as a gap and wait for the kiosk's resend (seconds each time). The lock
        is taken before the first await, and asyncio locks are fair, so arrival order holds.
        """
        where = parse_topic(message.topic.value)
        key = "" if where is None else where[0]
        lock, users = self._order.get(key, (asyncio.Lock(), 0))
        self._order[key] = (lock, users + 1)
        try:
            async with lock:
                await self._handle(message, publisher)
        finally:
            lock, users = self._order[key]
            if users == 1:
                del self._order[key]
            else:
                self._order[key] = (lock, users - 1)

    async def _handle(self, message: aiomqtt.Message, publisher: Publisher) -> None:
        payload = message.payload
        name = message.topic.value
        if not isinstance(payload, bytes | bytearray) or not payload:
            # A retained message being cleared (empty payload) or nothing at all.
            self.stats["empty"] += 1
            return
        data = bytes(payload)
        try:
            sender = _sender(data)
            key = None if sender is None else await self._directory.lookup(sender)
            try:
                opened = self._open(data, name, key)
            except Rejected as rejected:
                # A kiosk that rotated its key over the air signs with the new one as soon as
                # its announcement is acknowledged, perhaps by another worker: this worker's
                # cached keys may not hold it yet. Look once more, fresh (at most every few
                # seconds per kiosk, so forged signatures cannot make every message a query).
                if (
                    rejected.reason is not RejectReason.BAD_SIGNATURE
                    or sender is None
                    or not self._directory.may_refresh(sender)
                ):
                    raise
                self._directory.forget(sender)
                opened = self._open(data, name, await self._directory.lookup(sender))
        except Rejected as rejected:
            self._rejections.rejected(logging.WARNING, name, rejected.reason.value, rejected.detail)
            self.stats[f"rejected:{rejected.reason}"] += 1
            return
        except Exception:
            log.exception("sync: could not check a message on %s", name)
            self.stats["failed"] += 1
            return
        if not self._kiosk_gate.admit(opened.sender):
            self.stats["rate_limited"] += 1
            return
        try:
            await self._dispatch(opened, publisher, retained=bool(message.retain))
            self.stats[opened.type.value] += 1
        except Exception:
            log.exception(
                "sync: %s from %s at %s failed", opened.type, opened.sender, opened.location_id
            )
            self.stats["failed"] += 1

    def _open(self, data: bytes, name: str, key: KioskKey | None) -> Message:
        return open_message(
            data, name, keys=resolver_for(key), now=self._clock.now(), replay_guard=self._replays
        )

    async def _dispatch(
        self, message: Message, publisher: Publisher, *, retained: bool = False
    ) -> None:
        body = message.body
        now = self._clock.now()
        if message.type is MessageType.SYNC_REQUEST:
            assert isinstance(body, SyncRequestBody)
            answer = await publisher.answer_sync_request(message.location_id, body.since_revision)
            log.info(
                "sync: %s asked for changes after %d: %s",
                message.sender,
                body.since_revision,
                answer,
            )
        elif message.type is MessageType.EVENTS:
            assert isinstance(body, EventsBody)
            try:
                result = await apply_events(
                    self._pool,
                    kiosk_id=body.kiosk_id,
                    location_id=message.location_id,
                    body=body,
                    clock=self._clock,
                    pickup_window=self._pickup_window,
                    key_grace=self._key_grace,
                )
            except UnknownKiosk:
                log.warning("sync: events from %s, which has no cursor", body.kiosk_id)
                return
            if result.refused:
                self.stats["events_refused"] += 1
                return  # a retired store: no ack, so it learns nothing and moves nothing
            if any(e.type == EventType.SIGNING_KEY_ROTATED for e in body.events):
                # Its next messages may be signed with the new key: no stale cache here.
                self._directory.forget(body.kiosk_id)
            await publisher.send_ack(
                message.location_id, body.kiosk_id, result.through_sequence, body.incarnation
            )
        elif message.type is MessageType.BIRTH:
            assert isinstance(body, BirthBody)
            if not await presence.record_birth(self._pool, body, now):
                self.stats["birth_ignored"] += 1
            if retained:
                # Delivered because this worker has just subscribed (a broker or cloud
                # restart): what the kiosk sent before that was lost, its sync_request too. So it
                # is caught up, and its cursor, in an ack that does not cover those events, has
                # it resend them at once rather than after its ack timeout (docs/protocol.md,
                # "events"). A live birth is answered neither way (issue 14): its sync_request
                # and events follow it in order on the same connection, and answering the birth
                # too sent each reconnecting kiosk its missed changes twice, which at 200
                # kiosks after a broker restart was a large part of the worker's work.
                await self._catch_up(
                    message.location_id, body.kiosk_id, body.last_revision, publisher
                )
                async with self._pool.connection() as conn:
                    through = await kiosk_events.cursor(conn, body.kiosk_id, lock=False)
                if through is not None:
                    await publisher.send_ack(message.location_id, body.kiosk_id, through)
        elif message.type is MessageType.DEATH:
            assert isinstance(body, DeathBody)
            if not await presence.record_death(self._pool, body, now):
                log.info(
                    "sync: death of %s epoch %d ignored (not its latest connection)",
                    body.kiosk_id,
                    body.epoch,
                )
                self.stats["death_ignored"] += 1
        elif message.type is MessageType.HEARTBEAT:
            assert isinstance(body, HeartbeatBody)
            location_revision = await presence.record_heartbeat(self._pool, body, now)
            await self._ask_for_key_rotation(message.location_id, body.kiosk_id, publisher)
            if location_revision is None:
                self.stats["heartbeat_ignored"] += 1
            elif body.last_revision < location_revision:
                await self._catch_up(
                    message.location_id, body.kiosk_id, body.last_revision, publisher
                )

    async def _ask_for_key_rotation(
        self, location_id: str, kiosk_id: str, publisher: Publisher
    ) -> None:
        """Sends ``rotate_key`` when the kiosk's key rotation is due (`cloud.sync.key_rotation`)."""
        async with self._pool.connection() as conn:
            age = await kiosk_keys.key_age(conn, kiosk_id)
        if age is None or age.location_id != location_id:
            return
        if rotation_due(age, self._clock.now(), self._key_max_age):
            by = "operator" if age.rotation_requested_at is not None else "key_max_age"
            await publisher.send_rotate_key(location_id, kiosk_id, by)
            self.stats["rotate_key_sent"] += 1
            log.info("sync: asked %s to rotate its signing key (%s)", kiosk_id, by)

    async def _catch_up(
        self, location_id: str, kiosk_id: str, last_revision: int, publisher: Publisher
    ) -> None:
        """Pushes the changes a kiosk reports it lacks.

        The kiosk asks after every subscription, but that request can be lost (no worker
        subscribed at that moment); its birth and heartbeats carry its revision, so a kiosk left
        behind is caught up within one heartbeat instead of waiting for the next change.
        Duplicates of changes already in flight are harmless: the kiosk ignores revisions it has.
        """
        answer = await publisher.answer_sync_request(location_id, last_revision)
        if answer != "up_to_date":
            log.info("sync: %s reported revision %d: sent %s", kiosk_id, last_revision, answer)


_DRAIN_LIMIT = 10_000
"""Notifications taken into one wakeup at most, so a flood cannot hold off publishing."""


async def _wakeup(listener: psycopg.AsyncConnection[Any], within: float) -> list[psycopg.Notify]:
    """Waits up to ``within`` s for a notification, then takes every one already waiting.

    Each generator is read to its end, never broken out of: psycopg yields a whole packet's
    notifications from one read, and breaking off would drop the rest of it. ``timeout=0``
    polls once without waiting; the polls repeat until one finds nothing.
    """
    notes = [note async for note in listener.notifies(timeout=within, stop_after=1)]
    while notes and len(notes) < _DRAIN_LIMIT:
        more = [note async for note in listener.notifies(timeout=0)]
        if not more:
            break
        notes += more
    return notes


def _sender(payload: bytes) -> str | None:
    """The sender a payload claims, to look its key up before `open_message` checks it all."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    # The same bounds as open_message, first: json.loads on a 100,000-deep array raised a
    # RecursionError here, logged as a failure with its traceback instead of a rejection.
    with contextlib.suppress(Rejected, ValueError):
        check_envelope_shape(payload)  # junk costs no scan and no parse (issue 9)
        check_json_bounds(payload)
        check_signature_field(payload)
        raw = json.loads(payload)
        sender = raw.get("sender") if isinstance(raw, dict) else None
        if isinstance(sender, str) and sender != CLOUD_SENDER and _SENDER.match(sender):
            return sender
    return None


def _is_mqtt_error(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_mqtt_error(inner) for inner in exc.exceptions)
    return isinstance(exc, aiomqtt.MqttError)
