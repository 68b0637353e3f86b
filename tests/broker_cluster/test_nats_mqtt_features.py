"""What NATS's MQTT listener, clustered, carries of what the sync protocol relies on
(docs/protocol.md, "Broker cluster"): each finding is a test, through aiomqtt over TCP, with a
unique topic per test. Clients connect to different nodes, so each feature is checked across
the cluster, not within one server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid

import aiomqtt
import pytest

from deploy.broker_cluster.cluster import BrokerCluster
from shared.protocol import MAX_PAYLOAD_BYTES


def _client(
    cluster: BrokerCluster, node: int, *, will: aiomqtt.Will | None = None, **kwargs: object
) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        cluster.nodes[node].mqtt_port,
        identifier=f"t-{uuid.uuid4().hex[:10]}",
        will=will,
        timeout=10,
        **kwargs,  # type: ignore[arg-type]
    )


def _root() -> str:
    # Protocol-shaped topics (locker/v1/LOCATION/...) under a location of this test's own.
    return f"locker/v1/loc-{uuid.uuid4().hex[:10]}"


async def _received(client: aiomqtt.Client, count: int, within: float) -> list[aiomqtt.Message]:
    messages: list[aiomqtt.Message] = []
    try:
        async with asyncio.timeout(within):
            async for message in client.messages:
                messages.append(message)
                if len(messages) >= count:
                    break
    except TimeoutError:
        pass
    return messages


async def _publish_refused(client: aiomqtt.Client, topic: str, within: float = 10) -> bool:
    """Whether QoS 1 publishing to ``topic`` fails (the broker closed the connection or never
    acknowledges) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            await client.publish(topic, b"x", qos=1, timeout=2)
        except aiomqtt.MqttError:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_qos1_message_published_on_one_node_reaches_a_subscriber_on_another(
    broker_cluster: BrokerCluster,
) -> None:
    root = _root()
    async with _client(broker_cluster, 0) as subscriber, _client(broker_cluster, 2) as kiosk:
        await subscriber.subscribe(f"{root}/kiosk/#", qos=1)
        await asyncio.sleep(0.3)  # the subscription's interest reaches the other nodes
        await kiosk.publish(f"{root}/kiosk/events", b"events", qos=1)
        [message] = await _received(subscriber, 1, within=5)
    assert (message.topic.value, message.payload, message.qos) == (
        f"{root}/kiosk/events",
        b"events",
        1,
    )


async def _retained(cluster: BrokerCluster, node: int, topic: str) -> bytes | None:
    """The retained message a new subscriber on ``node`` gets, or None."""
    async with _client(cluster, node) as late:
        await late.subscribe(topic, qos=1)
        messages = await _received(late, 1, within=2)
    assert all(message.retain for message in messages)
    return bytes(messages[0].payload) if messages else None  # type: ignore[arg-type]


async def _retained_within(
    cluster: BrokerCluster, node: int, topic: str, expected: bytes | None, within: float
) -> list[bytes | None]:
    """What new subscribers on ``node`` find, asked again until it is ``expected``."""
    seen: list[bytes | None] = []
    async with asyncio.timeout(within):
        while not seen or seen[-1] != expected:
            seen.append(await _retained(cluster, node, topic))
    return seen


async def test_retained_message_is_kept_cluster_wide_and_replaced_everywhere(
    broker_cluster: BrokerCluster,
) -> None:
    """Retained messages live in a replicated JetStream stream; each node keeps its own copy
    of the latest per topic, updated from the stream, so a replacement (a death after a birth)
    reaches the other nodes a moment later, not in the same instant: the epochs in birth and
    death (docs/protocol.md) order them, not the broker."""
    topic = f"{_root()}/kiosk/presence"
    async with _client(broker_cluster, 0) as kiosk:
        await kiosk.publish(topic, b"birth", qos=1, retain=True)
    assert (await _retained_within(broker_cluster, 1, topic, b"birth", within=10))[-1] == b"birth"
    async with _client(broker_cluster, 2) as kiosk:
        await kiosk.publish(topic, b"death", qos=1, retain=True)
    assert (await _retained_within(broker_cluster, 1, topic, b"death", within=10))[-1] == b"death"
    async with _client(broker_cluster, 0) as kiosk:
        await kiosk.publish(topic, b"", qos=1, retain=True)  # cleared
    assert (await _retained_within(broker_cluster, 1, topic, None, within=10))[-1] is None


async def test_will_of_a_client_that_vanishes_is_published_to_other_nodes(
    broker_cluster: BrokerCluster,
) -> None:
    topic = f"{_root()}/kiosk/presence"
    async with _client(broker_cluster, 1) as cloud:
        await cloud.subscribe(topic, qos=1)
        await asyncio.sleep(0.3)
        dying = _client(
            broker_cluster,
            0,
            will=aiomqtt.Will(topic, b"death", qos=1, retain=True),
            keepalive=2,
        )
        await dying.__aenter__()
        # The kiosk's machine dies: its TCP connection goes without a DISCONNECT.
        sock = dying._client.socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)
        [message] = await _received(cloud, 1, within=10)
        with contextlib.suppress(aiomqtt.MqttError):
            await dying.__aexit__(None, None, None)
    assert message.payload == b"death"
    async with _client(broker_cluster, 2) as later:
        await later.subscribe(topic, qos=1)
        [retained] = await _received(later, 1, within=5)
    assert (retained.payload, retained.retain) == (b"death", True)


async def test_largest_protocol_message_is_carried(broker_cluster: BrokerCluster) -> None:
    topic = f"{_root()}/cloud/changes"
    payload = b"x" * MAX_PAYLOAD_BYTES
    async with _client(broker_cluster, 2) as kiosk, _client(broker_cluster, 0) as cloud:
        await kiosk.subscribe(topic, qos=1)
        await asyncio.sleep(0.3)
        await cloud.publish(topic, payload, qos=1)
        [message] = await _received(kiosk, 1, within=5)
    assert message.payload == payload


async def test_shared_subscription_is_granted_but_delivers_nothing(
    broker_cluster: BrokerCluster,
) -> None:
    """NATS 2.9 has no MQTT shared subscriptions: ``$share/...`` is taken as a plain topic
    filter beginning with ``$share``, granted at QoS 1, and never matches a kiosk's topic. A
    worker subscribed that way would look connected and receive nothing."""
    root = _root()
    async with _client(broker_cluster, 0) as worker, _client(broker_cluster, 1) as kiosk:
        granted = await worker.subscribe(f"$share/locker-cloud/{root}/+/#", qos=1)
        await asyncio.sleep(0.3)
        await kiosk.publish(f"{root}/kiosk/events", b"events", qos=1)
        assert await _received(worker, 1, within=2) == []
    assert [int(code.value) for code in granted] == [1]


async def test_two_workers_with_a_plain_subscription_each_receive_every_message(
    broker_cluster: BrokerCluster,
) -> None:
    """The design around the missing shared subscriptions: each worker takes every kiosk
    message; the cloud's per-kiosk cursor (a row lock, `cloud.sync.events`) applies each
    event once however many workers hand it in."""
    root = _root()
    async with (
        _client(broker_cluster, 0) as first,
        _client(broker_cluster, 1) as second,
        _client(broker_cluster, 2) as kiosk,
    ):
        await first.subscribe(f"{root}/kiosk/#", qos=1)
        await second.subscribe(f"{root}/kiosk/#", qos=1)
        await asyncio.sleep(0.3)
        for number in range(5):
            await kiosk.publish(f"{root}/kiosk/events", str(number).encode(), qos=1)
        got_first = await _received(first, 5, within=15)
        got_second = await _received(second, 5, within=15)

    assert sorted(m.payload for m in got_first) == [str(n).encode() for n in range(5)]
    assert sorted(m.payload for m in got_second) == [str(n).encode() for n in range(5)]


async def test_topic_with_a_dot_ends_the_connection(broker_cluster: BrokerCluster) -> None:
    """NATS maps MQTT ``/`` to its subject separator ``.``, so a ``.`` (or a space) in a topic
    is refused and the connection closed: location ids on a NATS broker have no dot."""
    async with _client(broker_cluster, 0) as kiosk:
        assert await _publish_refused(kiosk, "locker/v1/loc.with-dot/kiosk/events")


async def test_mqtt_5_is_refused(broker_cluster: BrokerCluster) -> None:
    """MQTT 3.1.1 only: no message expiry, user properties or reason strings. The protocol
    needs none of them (an envelope carries its own expiry: docs/protocol.md)."""
    client = _client(broker_cluster, 0, protocol=aiomqtt.ProtocolVersion.V5)
    with pytest.raises(aiomqtt.MqttError):
        async with client:
            pass


async def test_client_id_connecting_to_another_node_takes_over_the_session(
    broker_cluster: BrokerCluster,
) -> None:
    """A kiosk that failed over to another node while its old connection is half open: the
    broker ends the old one (client ids are cluster-wide), so one kiosk id has one session."""
    kiosk_id = f"kiosk-{uuid.uuid4().hex[:8]}"
    old = aiomqtt.Client("127.0.0.1", broker_cluster.nodes[0].mqtt_port, identifier=kiosk_id)
    await old.__aenter__()
    try:
        async with aiomqtt.Client(
            "127.0.0.1", broker_cluster.nodes[1].mqtt_port, identifier=kiosk_id, timeout=10
        ) as new:
            topic = f"{_root()}/cloud/changes"
            await new.subscribe(topic, qos=1)
            assert await _publish_refused(old, topic)
            await new.publish(topic, b"from the new connection", qos=1)
    finally:
        with contextlib.suppress(aiomqtt.MqttError):
            await old.__aexit__(None, None, None)


async def test_retained_message_survives_the_node_it_was_published_to(
    broker_cluster: BrokerCluster,
) -> None:
    """After a node's kill -9 the others may refuse or time out MQTT sessions for a few
    seconds, while JetStream elects new leaders for the MQTT streams the dead node led; a
    client retries with backoff (as kiosks and workers do) and then finds the retained
    message."""
    topic = f"{_root()}/kiosk/presence"
    async with _client(broker_cluster, 0) as kiosk:
        await kiosk.publish(topic, b"birth", qos=1, retain=True)
    await _retained_within(broker_cluster, 2, topic, b"birth", within=10)
    node = broker_cluster.nodes[0]
    node.kill()
    killed_at = time.monotonic()
    try:
        found: bytes | None = None
        while found is None and time.monotonic() - killed_at < 60:
            with contextlib.suppress(aiomqtt.MqttError):
                found = await _retained(broker_cluster, 2, topic)
            await asyncio.sleep(0.5)
        assert found == b"birth"
    finally:
        broker_cluster.start(node)
        broker_cluster.wait_ready()
