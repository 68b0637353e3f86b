"""`KioskSync`: the one owner of the kiosk's MQTT connection to the cloud.

Every connection attempt is a new ``aiomqtt.Client`` (clean session, client id = kiosk id) inside a
reconnect loop with full-jitter exponential backoff (0.5 s doubling to 3 s by default: a fleet
coming back after an outage spreads its reconnections over 3 s, and is back within 5 s of the
broker), reset only once a connection has held for `CONNECTION_HELD_S` (a broker that accepts
and drops at once does not get a tight reconnect loop from the whole fleet). On each
connection, in this order (the device-twin order of ``docs/protocol.md``):

1. connect, with the signed ``death`` of this connection's epoch as the MQTT will;
2. subscribe to ``locker/v1/{loc}/cloud/#`` (QoS ``sync.subscription_qos``: 1, or 0 on NATS);
3. publish the retained ``birth``;
4. ask for every change since ``last_revision`` (``sync_request``);
5. publish pending outbox events; then serve messages, pump the outbox and send heartbeats
   until the connection drops, or until it has lived 23 hours: its will, a death signed to live
   one day, must never be stale when the broker publishes it, so the kiosk then reconnects.

Every received message goes through `shared.protocol.open_message` with a key resolver that
accepts only the cloud's provisioned key, for this location, and a replay guard. A rejected
message is logged with its reason and changes nothing; no input, and no failure of the broker,
ever raises out of `KioskSync.run`: the door monitor and the flows never depend on sync
(invariant 6). The SQLite store, not the client, holds everything durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiomqtt

from kiosk.config import SyncConfig
from kiosk.flows.context import FlowContext
from kiosk.store import changes, meta
from kiosk.store import commands as command_records
from kiosk.store.records import OutboxEvent
from kiosk.store.snapshot_parts import KeptParts
from kiosk.sync import apply, commands, key_rotation, presence
from kiosk.sync.pump import OutboxPump
from shared.backoff import backoff_delay
from shared.broker_list import BrokerRotation
from shared.cancellation import cancel_and_wait, raise_if_cancelling
from shared.flood_gate import FloodGate, RateLimit, RejectionLog
from shared.mqtt_client import MqttClient
from shared.protocol import (
    CLOUD_SENDER,
    MAX_LIFETIME,
    MAX_PAYLOAD_BYTES,
    AckBody,
    Body,
    ChangesBody,
    Channel,
    EventRecord,
    EventsBody,
    Message,
    MessageType,
    Rejected,
    RejectReason,
    RemoteOpenBody,
    ReplayGuard,
    RotateKeyBody,
    SnapshotBody,
    SnapshotPartBody,
    SyncRequestBody,
    kiosk_subscription,
    open_message,
    seal,
    topic,
)
from shared.signing import Signer, Verifier
from shared.snapshot_parts import InconsistentPart

log = logging.getLogger(__name__)
FLOOD_QUIET_S = 1.0

SYNC_REQUEST_REPEAT_AFTER = timedelta(seconds=5)
"""A gap asks again for the same revision only after this long (an answer may be on its way)."""
PART_WAIT_S = 3.0
"""A snapshot whose next part has not come for this long lost one (`_recover_lost_parts`)."""
CONNECTION_HELD_S = 5.0
"""A connection that lived this long resets the reconnect backoff to its minimum."""
STOP_GRACE_S = 2.0
"""How long a clean stop waits to publish the kiosk's death."""
WILL_RENEWAL = MAX_LIFETIME[MessageType.DEATH] - timedelta(hours=1)
"""A connection is renewed after this long, so that its will (a death signed to live one day)
has not expired when the broker publishes it."""


class _RenewWill(Exception):
    """Ends a connection that has lived long enough for its will to near its expiry."""


@dataclass(slots=True)
class SyncStatus:
    """What the sync is doing, for the staff screen, the CLI and tests.

    Attributes:
        connected: Whether a connection is up (subscribed and born).
        epoch: The epoch of the current (or last) connection.
        connections: Connections made since start.
        last_error: The last connection error, as text.
        last_error_at: When it happened.
        last_message_at: When the last valid cloud message arrived.
        last_revision: The last cloud revision applied.
        rejected: Rejected cloud messages by reason.
        broker: The broker node (host, port) connected to, or tried next (issue 13).
    """

    connected: bool = False
    epoch: int = 0
    connections: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_message_at: datetime | None = None
    last_revision: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    broker: tuple[str, int] | None = None


class KioskSync:
    """Keeps the kiosk in sync with the cloud over MQTT until cancelled.

    Args:
        ctx: The kiosk (its store, door bank for remote opens, and clock).
        config: The ``[sync]`` configuration (with the kiosk's private key read).
        board_error: Gives the door bank's current error for heartbeats (the monitor's health).

    Raises:
        KioskConfigError: on construction, when the configuration has no private key loaded.
    """

    def __init__(
        self,
        ctx: FlowContext,
        config: SyncConfig,
        *,
        board_error: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.ctx = ctx
        self.config = config
        self.location_id = ctx.store.identity.location_id
        self.kiosk_id = ctx.store.identity.kiosk_id
        self.status = SyncStatus(last_revision=changes.last_revision(ctx.store.db))
        self._incarnation = meta.store_incarnation(ctx.store.db)
        self.outbox_changed = asyncio.Event()
        """Set it after committing outbox events to publish them at once (else within
        ``outbox_check_s``)."""
        self._signer: Signer = config.require_signer()
        # Issue 9: a key rotation acknowledged while the kiosk was stopped finishes now.
        rotated = key_rotation.finish_if_acknowledged(ctx.store, config.private_key_file)
        if rotated is not None:
            self._signer = rotated
        self._cloud_key: Verifier = config.cloud_key
        self._board_error = board_error
        self._guard = ReplayGuard()
        self._flood_seen_at: float | None = None
        self._rejections = RejectionLog(log)
        self._flood_gate = FloodGate(
            RateLimit(per_second=config.rate_limit_per_s, burst=config.rate_limit_burst),
            what="flood on a cloud topic",
            logger=log,
        )
        self._pump = OutboxPump(
            ctx.store,
            ack_timeout=timedelta(seconds=config.ack_timeout_s),
            retention=timedelta(seconds=config.event_retention_s),
        )
        self._last_sync_request: tuple[int, datetime] | None = None
        self._gap_through = 0
        """The highest revision a gap showed the cloud has (changes refused as past ours)."""
        self._snapshot_parts = KeptParts(ctx.store)
        self._part_seen_at: float | None = None
        """When the last part of an unfinished snapshot arrived (loop time), else None."""
        self._commands: set[asyncio.Task[object]] = set()
        self._failures = 0
        self._connected_at: float | None = None
        self.will_renewal = WILL_RENEWAL
        # Issue 13: the broker cluster's nodes, the next one tried after each failure.
        self._brokers = BrokerRotation(config.brokers)

    # The connection

    async def run(self) -> None:
        """Connects, syncs, and reconnects with backoff, until cancelled. Never raises else."""
        try:
            while True:
                raise_if_cancelling()
                try:
                    await self._connection()
                except _RenewWill:
                    log.info("renewing the connection, so that its will stays valid")
                    continue
                except aiomqtt.MqttError as error:
                    self._note_error(f"{type(error).__name__}: {error}")
                    log.warning("broker connection failed or lost: %s", error)
                except Exception as error:
                    # A bug or a failing store must not end sync for good, nor the daemon.
                    self._note_error(f"{type(error).__name__}: {error}")
                    log.exception("sync connection failed")
                self.status.connected = False
                if (
                    self._connected_at is not None
                    and asyncio.get_running_loop().time() - self._connected_at >= CONNECTION_HELD_S
                ):
                    self._failures = 0  # it held: a fresh outage starts from the minimum
                self._connected_at = None
                self._brokers.failed()
                delay = self.backoff(self._failures)
                self._failures += 1
                log.info("reconnecting to the broker in %.1f s", delay)
                await asyncio.sleep(delay)
        finally:
            self.status.connected = False
            for task in self._commands:
                task.cancel()

    def backoff(self, failures: int) -> float:
        """Full jitter (`shared.backoff`): uniform in [0, min(max, min * 2**failures)]."""
        return backoff_delay(
            failures, first=self.config.reconnect_min_s, longest=self.config.reconnect_max_s
        )

    async def _connection(self) -> None:
        store = self.ctx.store
        epoch = meta.next_epoch(store)
        self.status.epoch = epoch
        will = aiomqtt.Will(
            self._topic(Channel.KIOSK_PRESENCE),
            self._seal(
                MessageType.DEATH,
                presence.death_body(self.kiosk_id, epoch),
                ttl=MAX_LIFETIME[MessageType.DEATH],
            ),
            qos=1,
            retain=True,
        )
        host, port = self.status.broker = self._brokers.current
        client = MqttClient(
            host,
            port,
            identifier=self.kiosk_id,
            # A clean session: the broker queues nothing for an offline kiosk. What it missed
            # comes from the change log (step 4) in a few large messages; a persistent session
            # had the broker replay every change message queued meanwhile, one commit each
            # here (seconds per thousand changes), and hold those queues for the whole fleet.
            clean_session=True,
            will=will,
            keepalive=self.config.keepalive_s,
            timeout=10,
            # Issue 13: a cluster node that holds the CONNACK (NATS electing stream leaders
            # after a node died) is left for the next node of the list.
            connack_timeout=self.config.connect_timeout_s,
            tls_context=self._tls_context(),
            username=self.config.username,
            password=self.config.password,
        )
        async with client:
            try:
                await self._serve_connection(client, epoch)
            except asyncio.CancelledError:
                await self._say_goodbye(client, epoch)
                raise

    async def _serve_connection(self, client: aiomqtt.Client, epoch: int) -> None:
        store = self.ctx.store
        # QoS 0 on a NATS cluster (`sync.subscription_qos`): no JetStream consumer per connection.
        # The SUBACK and the birth's PUBACK complete the connection: each waits at most
        # `sync.connect_timeout_s`, like the CONNACK (issue 13: a NATS node answers neither
        # while JetStream elects the leader a dead node had; the next attempt, on the next
        # node, gets through once it has one).
        await client.subscribe(
            kiosk_subscription(self.location_id),
            qos=self.config.subscription_qos,
            timeout=self.config.connect_timeout_s,
        )
        await self._publish(
            client,
            Channel.KIOSK_PRESENCE,
            MessageType.BIRTH,
            presence.birth_body(store.db, self.kiosk_id, epoch),
            retain=True,
            timeout=self.config.connect_timeout_s,
        )
        self.status.connected = True
        self.status.connections += 1
        self._connected_at = asyncio.get_running_loop().time()
        log.info(
            "connected to %s:%d as %s (epoch %d)",
            *self._brokers.current,
            self.kiosk_id,
            epoch,
        )
        self._last_sync_request = None
        await self._request_sync(client)
        self._pump.reset()
        await _first_failure(
            self._pump_outbox(client),
            self._serve(client),
            self._heartbeats(client, epoch),
            self._renew_will_later(),
            self._recover_after_floods(client),
            self._recover_lost_parts(client),
        )

    async def _say_goodbye(self, client: aiomqtt.Client, epoch: int) -> None:
        # A clean disconnect suppresses the will, so a stopping kiosk publishes its death itself.
        self.status.connected = False
        goodbye = asyncio.ensure_future(
            self._publish(
                client,
                Channel.KIOSK_PRESENCE,
                MessageType.DEATH,
                presence.death_body(self.kiosk_id, epoch),
                retain=True,
                ttl=MAX_LIFETIME[MessageType.DEATH],
            )
        )
        await asyncio.wait([goodbye], timeout=STOP_GRACE_S)
        if not goodbye.done():
            goodbye.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await goodbye

    async def _renew_will_later(self) -> None:
        # MQTT 3.1.1 cannot change a connection's will; a new connection (clean disconnect, so
        # no death; the sync request after subscribing covers the moment in between) gets a
        # fresh one.
        await asyncio.sleep(self.will_renewal.total_seconds())
        raise _RenewWill

    def _tls_context(self) -> ssl.SSLContext | None:
        tls = self.config.client_tls()
        return None if tls is None else tls.context()

    # Cloud to kiosk

    async def _serve(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if not self._flood_gate.admit(message.topic.value):
                # Dropped unread: a flood must not delay the real changes behind it. What
                # was real among the dropped comes back by a sync request once it is over.
                self.status.rejected["rate_limited"] += 1
                self._flood_seen_at = asyncio.get_running_loop().time()
                continue
            payload = message.payload
            if isinstance(payload, bytes | bytearray):
                data = bytes(payload)
            else:
                data = b"" if payload is None else str(payload).encode()
            try:
                await self._handle(client, message.topic.value, data)
            except Exception:
                log.exception("handling a message on %s failed", message.topic.value)

    async def _handle(self, client: aiomqtt.Client, topic_name: str, payload: bytes) -> None:
        """Checks and applies one received message; a rejected one is logged and dropped."""
        now = self.ctx.clock.now()
        try:
            message = open_message(
                payload, topic_name, keys=self._keys, now=now, replay_guard=self._guard
            )
        except Rejected as rejected:
            self.status.rejected[rejected.reason.value] += 1
            level = logging.INFO if rejected.reason is RejectReason.REPLAYED else logging.WARNING
            self._rejections.rejected(level, topic_name, rejected.reason.value, rejected.detail)
            return
        self.status.last_message_at = now
        await self._dispatch(client, message, now)

    async def _dispatch(self, client: aiomqtt.Client, message: Message, now: datetime) -> None:
        body = message.body
        store = self.ctx.store
        if isinstance(body, ChangesBody):
            result = apply.apply_changes(store, body, now)
            self.status.last_revision = result.last_revision
            if result.status is apply.CheckpointStatus.GAP:
                self._gap_through = max(self._gap_through, body.to_revision)
                await self._request_sync(client)
            if result.applied:
                self.outbox_changed.set()  # applying may have written events
        elif isinstance(body, SnapshotBody):
            result = apply.apply_snapshot(store, body, now)
            self.status.last_revision = result.last_revision
            self.outbox_changed.set()
            await self._ask_if_behind_a_gap(client)
        elif isinstance(body, SnapshotPartBody):
            if self._snapshot_part(body, now):
                await self._ask_if_behind_a_gap(client)
        elif isinstance(body, AckBody):
            if body.kiosk_id != self.kiosk_id:
                return  # another kiosk's at this location
            if body.incarnation is not None and body.incarnation != self._incarnation:
                # Counted for the store this one replaced: its numbers are not ours.
                log.info("ack for another store incarnation (%s) ignored", body.incarnation)
                return
            self._pump.acknowledged(body.through_sequence, now)
            rotated = key_rotation.finish_if_acknowledged(store, self.config.private_key_file)
            if rotated is not None:
                self._signer = rotated
            self.outbox_changed.set()
        elif isinstance(body, RemoteOpenBody):
            task: asyncio.Task[object] = asyncio.create_task(
                self._remote_open(body, message.envelope.expires_at)
            )
            self._commands.add(task)
            task.add_done_callback(self._commands.discard)
        elif isinstance(body, RotateKeyBody):
            if body.kiosk_id != self.kiosk_id:
                return  # another kiosk's at this location
            try:
                announced = key_rotation.begin(
                    store, self.config.private_key_file, self.kiosk_id, now
                )
            except OSError as error:
                log.error("could not write the next signing key: %s", error)
                return
            if announced is None:
                log.info("rotate_key from the cloud: a rotation is already under way")
            self.outbox_changed.set()

    def _snapshot_part(self, part: SnapshotPartBody, now: datetime) -> bool:
        """Keeps one part of a large snapshot; applies the snapshot once every part is in.

        Returns:
            Whether a whole snapshot was applied now.
        """
        if part.revision <= changes.last_revision(self.ctx.store.db):
            return False  # a late copy: the kiosk is at or past it
        try:
            whole = self._snapshot_parts.add(part, now)
        except InconsistentPart as error:
            log.warning("snapshot part refused: %s", error)
            return False
        if whole is None:
            self._part_seen_at = asyncio.get_running_loop().time()
            log.debug("snapshot %s: part %d of %d", part.snapshot_id, part.part, part.parts)
            return False
        self._part_seen_at = None
        with self.ctx.store.transaction():  # applied and its parts forgotten, or neither
            result = apply.apply_snapshot(self.ctx.store, whole, now)
            self._snapshot_parts.applied(part.snapshot_id)
        self.status.last_revision = result.last_revision
        self.outbox_changed.set()
        return True

    async def _ask_if_behind_a_gap(self, client: aiomqtt.Client) -> None:
        """After a snapshot: asks at once for the changes a gap showed exist past its revision.

        A snapshot answering an earlier request can be older than a change refused as a gap
        meanwhile (the change committed after the snapshot was read). Nothing else would ask for
        that change again (the cloud published it once), so without this the kiosk stayed
        behind until the cloud next noticed its heartbeat's revision, or for good.
        """
        last = changes.last_revision(self.ctx.store.db)
        if last < self._gap_through:
            log.info(
                "the snapshot is at revision %d, a gap showed %d: asking again",
                last,
                self._gap_through,
            )
            await self._request_sync(client, force=True)

    async def _remote_open(self, body: RemoteOpenBody, expires_at: datetime) -> None:
        try:
            await commands.remote_open(self.ctx, body, expires_at=expires_at)
        except Exception:
            log.exception("remote open %s failed", body.command_id)
        self.outbox_changed.set()

    def _keys(self, location_id: str, sender: str) -> Verifier | None:
        if location_id == self.location_id and sender == CLOUD_SENDER:
            return self._cloud_key
        return None

    # Kiosk to cloud

    async def _recover_after_floods(self, client: aiomqtt.Client) -> None:
        """Asks for every change again once a flood has stopped for `FLOOD_QUIET_S`: the gate
        dropped the messages of its topic unread, real changes among them perhaps."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(FLOOD_QUIET_S / 2)
            if (
                self._flood_seen_at is not None
                and loop.time() - self._flood_seen_at > FLOOD_QUIET_S
            ):
                self._flood_seen_at = None
                await self._request_sync(client, force=True)

    async def _recover_lost_parts(self, client: aiomqtt.Client) -> None:
        """Asks again at once when a snapshot's parts stop coming before the last one: parts are
        published back to back, so `PART_WAIT_S` without one means one was lost. The answer is
        a fresh snapshot (the cloud streams parts and keeps none to resend), not the next
        heartbeat's catch-up 30 s later."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(PART_WAIT_S / 4)
            seen = self._part_seen_at
            if seen is not None and loop.time() - seen > PART_WAIT_S:
                self._part_seen_at = None
                log.info("a snapshot's parts stopped before the last one: asking again")
                await self._request_sync(client, force=True)

    async def _request_sync(self, client: aiomqtt.Client, *, force: bool = False) -> None:
        now = self.ctx.clock.now()
        since = changes.last_revision(self.ctx.store.db)
        if self._last_sync_request is not None and not force:
            asked, at = self._last_sync_request
            if asked == since and now - at < SYNC_REQUEST_REPEAT_AFTER:
                return
        self._last_sync_request = (since, now)
        await self._publish(
            client,
            Channel.KIOSK_SYNC,
            MessageType.SYNC_REQUEST,
            SyncRequestBody(since_revision=since),
        )
        log.info("asked the cloud for changes since revision %d", since)

    async def _pump_outbox(self, client: aiomqtt.Client) -> None:
        while True:
            self.outbox_changed.clear()
            for batch in self._pump.due(self.ctx.clock.now()):
                await self._publish_events(client, batch)
            await _wait_for_event(self.outbox_changed, self.config.outbox_check_s)

    async def _publish_events(self, client: aiomqtt.Client, batch: list[OutboxEvent]) -> None:
        records = [
            EventRecord(
                sequence=event.sequence,
                event_id=uuid.UUID(event.event_id),
                type=event.type.value,
                version=event.version,
                created_at=event.created_at,
                payload=dict(event.payload),
            )
            for event in batch
        ]
        body = EventsBody(kiosk_id=self.kiosk_id, events=records, incarnation=self._incarnation)
        payload = self._seal(MessageType.EVENTS, body)
        if len(payload) > MAX_PAYLOAD_BYTES and len(batch) > 1:
            # Large payloads: split rather than have the cloud reject the message unread.
            half = len(batch) // 2
            await self._publish_events(client, batch[:half])
            await self._publish_events(client, batch[half:])
            return
        await client.publish(self._topic(Channel.KIOSK_EVENTS), payload, qos=1)
        log.debug("published events %d..%d", records[0].sequence, records[-1].sequence)

    async def _heartbeats(self, client: aiomqtt.Client, epoch: int) -> None:
        while True:
            store = self.ctx.store
            body = presence.heartbeat_body(
                store.db,
                self.kiosk_id,
                epoch,
                outbox_depth=self._pump.depth(),
                board_error=self._board_error(),
            )
            await self._publish(client, Channel.KIOSK_HEARTBEAT, MessageType.HEARTBEAT, body, qos=0)
            command_records.prune_commands(store, self.ctx.clock.now())
            await asyncio.sleep(self.config.heartbeat_interval_s)

    async def _publish(
        self,
        client: aiomqtt.Client,
        channel: Channel,
        message_type: MessageType,
        body: Body,
        *,
        qos: int = 1,
        retain: bool = False,
        ttl: timedelta | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (aiomqtt's own per-call timeout)
    ) -> None:
        payload = self._seal(message_type, body, ttl=ttl)
        await client.publish(self._topic(channel), payload, qos=qos, retain=retain, timeout=timeout)

    def _seal(
        self, message_type: MessageType, body: Body, *, ttl: timedelta | None = None
    ) -> bytes:
        return seal(
            self._signer,
            message_type,
            location_id=self.location_id,
            sender=self.kiosk_id,
            body=body,
            now=self.ctx.clock.now(),
            ttl=ttl,
        )

    def _topic(self, channel: Channel) -> str:
        return topic(self.location_id, channel)

    def _note_error(self, text: str) -> None:
        self.status.last_error = text
        self.status.last_error_at = self.ctx.clock.now()


async def _wait_for_event(event: asyncio.Event, timeout_s: float) -> None:
    """Waits until ``event`` is set or ``timeout_s`` passed.

    Not `asyncio.wait_for`: on Python 3.11 it can swallow the cancellation of its caller when
    the inner wait completes at the same moment, and a stopping kiosk would hang.
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait([waiter], timeout=timeout_s)
    finally:
        waiter.cancel()


async def _first_failure(*loops: Awaitable[None]) -> None:
    """Runs the connection's loops together until one of them ends; raises what ended it.

    Each loop runs until the connection drops (an `aiomqtt.MqttError`); the others are then
    cancelled.
    """
    tasks = [asyncio.ensure_future(loop) for loop in loops]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait(tasks)
    for task in done:
        task.result()
    raise aiomqtt.MqttError("a sync loop ended")
