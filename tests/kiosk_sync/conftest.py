"""The kiosk's sync against a real broker, with a small signed "cloud" written here.

Every test gets its own location and kiosk id, so tests never see each other's messages on the
shared (and persistent) Mosquitto of CI; retained presence and the kiosk's persistent session are
cleared at the end. The cloud peer (`Cloud`) signs with its own key, reads what the kiosk
publishes (checking the kiosk's signatures), and can answer ``sync_request`` from a change log
it keeps. `TcpProxy` sits between kiosk and broker so a test can cut the connection (a broker
restart, a dead link) without touching the machine's broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from kiosk.config import SyncConfig
from kiosk.flows.context import FlowContext
from kiosk.hardware.door_bank import UnlockTiming
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.store import CodeHasher, KioskIdentity, Store, changes, doors
from kiosk.sync.client import KioskSync
from shared.clock import SystemClock
from shared.codes import PickupCode, code_hash
from shared.protocol import (
    AllocationChange,
    AllocationState,
    Body,
    ChangesBody,
    Channel,
    Message,
    MessageType,
    Rejected,
    SyncRequestBody,
    open_message,
    seal,
    topic,
)
from shared.signing import Signer
from shared.sizes import Size
from shared.states import AllocationStatus
from tests import socket_guard

SECRET = b"kiosk-sync-test-code-secret"
LAYOUT = {1: Size.SMALL, 2: Size.SMALL, 3: Size.MEDIUM, 4: Size.MEDIUM, 5: Size.LARGE}
FAST = UnlockTiming(open_timeout_s=0.2, poll_interval_s=0.02)


async def eventually(condition: Callable[[], object], timeout_s: float = 15.0) -> None:
    """Waits until ``condition()`` is truthy (polling: no timing assumptions)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def hashed(code: str) -> str:
    """The code hash the cloud sends for ``code`` (the kiosk's secret is shared with it)."""
    return code_hash(SECRET, PickupCode.parse(code))


def allocation(
    allocation_id: str,
    *,
    status: AllocationStatus = AllocationStatus.RESERVED,
    door: int | None = None,
    code: str | None = None,
    size: Size = Size.SMALL,
) -> AllocationState:
    """An allocation as the cloud describes it."""
    now = datetime.now(UTC)
    return AllocationState(
        allocation_id=allocation_id,
        kind="delivery",
        barcode=f"PKG-{allocation_id}",
        size=size,
        status=status,
        proposed_door=door,
        code_hash=None if code is None else hashed(code),
        reservation_expires_at=now + timedelta(hours=24),
        pickup_expires_at=None if status is AllocationStatus.RESERVED else now + timedelta(days=3),
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class TcpProxy:
    """A TCP relay to the broker that a test can kill (abort every connection, stop listening)
    and start again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        from cloud.embedded_broker import free_port

        self.target = (host, port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def kill(self) -> None:
        """Stops listening and aborts every relayed connection (no MQTT DISCONNECT is sent)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.sleep(0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Registered before the upstream connect: a kill while it is under way must abort this
        # connection too, not let it relay on after the "outage" began.
        self._transports.add(writer.transport)
        server = self._server
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if self._server is not server or writer.transport.is_closing():
            up_writer.transport.abort()  # killed meanwhile
            writer.transport.abort()
            return
        self._transports |= {writer.transport, up_writer.transport}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.transport.abort()


@dataclass
class Cloud:
    """The test's cloud: signs what it sends, verifies and records what the kiosk publishes.

    With ``answer_sync_requests``, it answers every ``sync_request`` from ``log`` (the location's
    change log, by revision).
    """

    host: str
    port: int
    location_id: str
    kiosk_id: str
    kiosk_signer: Signer
    signer: Signer = field(default_factory=Signer.generate)
    received: list[Message] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    log: dict[int, AllocationChange] = field(default_factory=dict)
    answer_sync_requests: bool = False
    _client: aiomqtt.Client | None = None
    _reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._client = aiomqtt.Client(self.host, self.port, identifier=unique("test-cloud"))
        await self._client.__aenter__()
        await self._client.subscribe(f"locker/v1/{self.location_id}/kiosk/#", qos=1)
        self._reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._reader
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                # Leave nothing retained on a shared broker.
                await self._client.publish(
                    topic(self.location_id, Channel.KIOSK_PRESENCE), b"", qos=1, retain=True
                )
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)
            # The kiosk's persistent session: a clean connection with its id ends it.
            with contextlib.suppress(aiomqtt.MqttError):
                async with aiomqtt.Client(
                    self.host, self.port, identifier=self.kiosk_id, clean_session=True
                ):
                    pass

    async def _read(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            payload = message.payload
            if not isinstance(payload, bytes) or not payload:
                continue  # a cleared retained message
            try:
                opened = open_message(
                    payload,
                    message.topic.value,
                    keys=self._keys,
                    now=datetime.now(UTC),
                )
            except Rejected as rejected:
                self.rejected.append(rejected)
                continue
            self.received.append(opened)
            if self.answer_sync_requests and isinstance(opened.body, SyncRequestBody):
                await self.answer(opened.body.since_revision)

    def _keys(self, location_id: str, sender: str) -> Any:
        if location_id == self.location_id and sender == self.kiosk_id:
            return self.kiosk_signer.verifier
        return None

    def of_type(self, message_type: MessageType) -> list[Message]:
        return [m for m in self.received if m.type is message_type]

    def sealed(self, message_type: MessageType, body: Body, **options: Any) -> bytes:
        return seal(
            self.signer,
            message_type,
            location_id=options.pop("location_id", self.location_id),
            sender=options.pop("sender", "cloud"),
            body=body,
            now=options.pop("now", datetime.now(UTC)),
            **options,
        )

    async def send(self, message_type: MessageType, body: Body, **options: Any) -> bytes:
        """Seals and publishes; returns the payload (to replay it)."""
        payload = self.sealed(message_type, body, **options)
        await self.publish_raw(_CHANNELS[message_type], payload)
        return payload

    async def publish_raw(self, channel: Channel, payload: bytes) -> None:
        assert self._client is not None
        await self._client.publish(topic(self.location_id, channel), payload, qos=1)

    async def changes(self, first: int, *states: AllocationState) -> bytes:
        """Sends the changes ``first``, ``first + 1``, ... for ``states`` (also kept in the log)."""
        entries = [
            AllocationChange(revision=first + i, allocation=state) for i, state in enumerate(states)
        ]
        for entry in entries:
            self.log[entry.revision] = entry
        body = ChangesBody(
            from_revision=first - 1, to_revision=first + len(entries) - 1, changes=entries
        )
        return await self.send(MessageType.CHANGES, body)

    async def answer(self, since: int) -> None:
        """Sends every logged change after ``since`` (nothing when there is none)."""
        wanted = [self.log[r] for r in sorted(self.log) if r > since]
        if wanted:
            body = ChangesBody(from_revision=since, to_revision=wanted[-1].revision, changes=wanted)
            await self.send(MessageType.CHANGES, body)


_CHANNELS = {
    MessageType.CHANGES: Channel.CLOUD_CHANGES,
    MessageType.SNAPSHOT: Channel.CLOUD_CHANGES,
    MessageType.SNAPSHOT_PART: Channel.CLOUD_CHANGES,
    MessageType.ACK: Channel.CLOUD_ACKS,
    MessageType.REMOTE_OPEN: Channel.CLOUD_COMMANDS,
}


@dataclass
class Kiosk:
    """A kiosk with a SQLite file, a fake door bank and `KioskSync` running against the broker."""

    path: Path
    identity: KioskIdentity
    signer: Signer
    config: SyncConfig
    bank: FakeDoorBank
    store: Store
    sync: KioskSync | None = None
    task: asyncio.Task[None] | None = None

    @property
    def ctx(self) -> FlowContext:
        return FlowContext(self.store, self.bank, SystemClock())

    def start(
        self, *, board_error: Callable[[], str | None] = lambda: None, **config: Any
    ) -> KioskSync:
        if config:
            self.config = replace(self.config, **config)
        self.sync = KioskSync(self.ctx, self.config, board_error=board_error)
        self.task = asyncio.create_task(self.sync.run())
        return self.sync

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def restart(self) -> KioskSync:
        """Stops sync, closes and reopens the SQLite file, and starts sync afresh (a reboot)."""
        await self.stop()
        self.store.close()
        self.store = open_store(self.path, self.identity)
        return self.start()

    @property
    def last_revision(self) -> int:
        return changes.last_revision(self.store.db)

    @property
    def connected(self) -> bool:
        return self.sync is not None and self.sync.status.connected


def open_store(path: Path, identity: KioskIdentity) -> Store:
    return Store.open(path, CodeHasher(SECRET), identity)


@dataclass
class Rig:
    kiosk: Kiosk
    cloud: Cloud
    broker: tuple[str, int]


@pytest.fixture
async def rig(tmp_path: Path, mqtt_broker: tuple[str, int, bool]) -> AsyncIterator[Rig]:
    """A kiosk (not yet started: call ``rig.kiosk.start()``) and its cloud, on the broker."""
    host, port, _ = mqtt_broker
    async with make_rig(tmp_path, host, port) as built:
        yield built


@contextlib.asynccontextmanager
async def make_rig(
    tmp_path: Path, host: str, port: int, *, kiosk_port: int | None = None
) -> AsyncIterator[Rig]:
    identity = KioskIdentity(unique("loc"), unique("kiosk"))
    signer = Signer.generate()
    cloud = Cloud(host, port, identity.location_id, identity.kiosk_id, signer)
    path = tmp_path / "kiosk.db"
    store = open_store(path, identity)
    with store.transaction() as db:
        doors.sync_layout(db, LAYOUT, datetime.now(UTC))
    config = SyncConfig(
        broker_host=host,
        broker_port=kiosk_port or port,
        cloud_key=cloud.signer.verifier,
        private_key_file=tmp_path / "kiosk-key.pem",
        signer=signer,
        heartbeat_interval_s=30.0,
        keepalive_s=10,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        ack_timeout_s=5.0,
        outbox_check_s=0.2,
    )
    kiosk = Kiosk(path, identity, signer, config, FakeDoorBank(sorted(LAYOUT), FAST), store)
    await cloud.start()
    try:
        yield Rig(kiosk, cloud, (host, port))
    finally:
        await kiosk.stop()
        await cloud.stop()
        kiosk.store.close()


@pytest.fixture(autouse=True)
async def _no_leaked_sockets() -> AsyncIterator[None]:
    """Every test here fails when it leaves a socket open (`tests.socket_guard`)."""
    async with socket_guard.no_socket_left():
        yield
