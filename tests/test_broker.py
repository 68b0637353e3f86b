"""The broker the sync tests use answers over TCP (a real round trip, no mock)."""

from __future__ import annotations

import uuid

import aiomqtt


async def test_the_test_broker_carries_a_message_over_tcp(
    mqtt_broker: tuple[str, int, bool],
) -> None:
    host, port, _ = mqtt_broker
    topic = f"locker-test/{uuid.uuid4().hex}"
    async with aiomqtt.Client(host, port, identifier=f"t-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(topic, qos=1)
        await client.publish(topic, b"ping", qos=1)
        async for message in client.messages:
            assert message.payload == b"ping"
            break
