"""`shared.mqtt_client.MqttClient`: a connection attempt that fails after the TCP connection was
made (cancelled, or no CONNACK in time) leaves no socket open.

aiomqtt 2.5 left it open, registered with the event loop and pinged by its keepalive task; it
was finalised whenever the loop ended, as a ResourceWarning in whichever test ran then. The
broker here is a real TCP listener that accepts and never answers (a broker hanging, or a
proxy whose far side is gone), which holds the attempt in the phase that leaked.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from shared.mqtt_client import MqttClient
from tests.socket_guard import open_sockets


class SilentBroker:
    """Accepts TCP connections and never says a word."""

    def __init__(self) -> None:
        self.accepted: list[asyncio.StreamWriter] = []
        self.connected = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted.append(writer)
        self.connected.set()

    def own_sockets(self) -> set[str]:
        """The listening socket and the accepted ones, as `open_sockets` names them."""
        sockets = [] if self._server is None else list(self._server.sockets)
        sockets += [writer.get_extra_info("socket") for writer in self.accepted]
        names: set[str] = set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                names.add(os.readlink(f"/proc/self/fd/{sock.fileno()}"))
        return names

    async def stop(self) -> None:
        for writer in self.accepted:
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.sleep(0.05)  # the aborted transports close on the next loop turns


@pytest.fixture
async def silent() -> AsyncIterator[tuple[SilentBroker, int]]:
    broker = SilentBroker()
    port = await broker.start()
    yield broker, port
    await broker.stop()


async def _client_sockets_left(broker: SilentBroker, before: set[str]) -> set[str]:
    """The sockets opened since ``before`` that are not the broker's: the client's.

    Counted while the broker's side is still open: closing it would make paho read the end of
    the stream and close its socket itself, hiding the leak.
    """
    await asyncio.sleep(0.2)  # a closing under way finishes on the loop's next turns
    return open_sockets() - before - broker.own_sockets()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts sockets in /proc")
async def test_an_attempt_cancelled_while_waiting_for_connack_leaves_no_socket(
    silent: tuple[SilentBroker, int],
) -> None:
    broker, port = silent
    before = open_sockets()
    client = MqttClient("127.0.0.1", port, identifier="silent-1", timeout=30)
    attempt = asyncio.create_task(client.__aenter__())
    await asyncio.wait_for(broker.connected.wait(), 10)
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    assert await _client_sockets_left(broker, before) == set()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts sockets in /proc")
async def test_an_attempt_without_connack_in_time_leaves_no_socket(
    silent: tuple[SilentBroker, int],
) -> None:
    broker, port = silent
    before = open_sockets()
    client = MqttClient("127.0.0.1", port, identifier="silent-2", timeout=0.3)
    with pytest.raises(aiomqtt.MqttError):
        await client.__aenter__()
    assert await _client_sockets_left(broker, before) == set()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts sockets in /proc")
async def test_attempts_cancelled_at_any_moment_against_a_real_broker_leave_no_socket(
    mqtt_broker: tuple[str, int, bool],
) -> None:
    host, port, _ = mqtt_broker
    before = open_sockets()
    for step in range(30):
        client = MqttClient(host, port, identifier=f"cancelled-{os.getpid()}-{step}", timeout=10)
        attempt = asyncio.create_task(client.__aenter__())
        await asyncio.sleep(step * 0.0004)
        attempt.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await attempt
            await client.__aexit__(None, None, None)
    # Clean disconnects close on the loop's next turns, which a loaded machine may take seconds
    # over; a leaked socket stays open for good (registered with the loop, pinged by the
    # keepalive task), so waiting for the count to fall still fails on a leak.
    for _ in range(100):
        if not open_sockets() - before:
            break
        await asyncio.sleep(0.1)
    assert open_sockets() - before == set()


async def test_a_lost_connection_nobody_read_leaves_no_never_retrieved_error(
    mqtt_broker: tuple[str, int, bool],
) -> None:
    """The connection drops (a killed proxy), the task reading messages is cancelled before it
    sees the loss, and the client is left. aiomqtt's exit returns early on a lost connection
    without reading the loss it stored; asyncio then logged "Future exception was never
    retrieved (MqttCodeError: Unexpected disconnection)" whenever that future was collected:
    inside a later test, or at interpreter exit."""
    from tests.kiosk_sync.conftest import TcpProxy

    host, port, _ = mqtt_broker
    proxy = TcpProxy(host, port)
    await proxy.start()
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        client = MqttClient("127.0.0.1", proxy.port, identifier=f"lost-{os.getpid()}", timeout=5)
        async with client:
            await proxy.kill()
            # paho notices the end of the stream on its next read and records the loss.
            deadline = loop.time() + 10
            while not client._disconnected.done():
                assert loop.time() < deadline, "the client never noticed the lost connection"
                await asyncio.sleep(0.02)
        del client
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
    assert [c["message"] for c in reported] == []


async def test_connack_timeout_bounds_the_connect_alone(silent: tuple[SilentBroker, int]) -> None:
    """Issue 13: a broker that holds the CONNACK (a NATS node electing stream leaders) is given
    up after ``connack_timeout``, not after ``timeout``, which every later wait keeps."""
    _, port = silent
    client = MqttClient("127.0.0.1", port, timeout=30, connack_timeout=0.3)
    # Well under the 30 s `timeout`: the attempt must have ended on the CONNACK timeout.
    with pytest.raises(aiomqtt.MqttError):
        await asyncio.wait_for(client.__aenter__(), 15)
    assert client.timeout == 30
