"""The generated broker configuration, proved on a real Mosquitto: who gets in, who reads and
writes what, and what is too large."""

from __future__ import annotations

import asyncio
import ssl
import uuid

import aiomqtt
import pytest

from cloud.fleet_ca import FleetCa
from shared.broker_url import ClientTls
from shared.mqtt_client import MqttClient, SubscriptionRefused
from shared.protocol import CLOUD_SUBSCRIPTION, MAX_PAYLOAD_BYTES, Channel, topic
from tests.broker_tls.conftest import NOW, Fleet, first_message


def refused(codes: object) -> bool:
    return all(code.is_failure for code in codes)  # type: ignore[attr-defined]


async def test_an_anonymous_client_without_a_certificate_is_refused(fleet: Fleet) -> None:
    context = ssl.create_default_context(cafile=str(fleet.ca.cert_file))
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            "localhost", fleet.port, identifier="anon", tls_context=context, timeout=5
        ):
            pass


async def test_a_plain_tcp_client_is_refused(fleet: Fleet) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", fleet.port, identifier="plain", timeout=3):
            pass


async def test_a_certificate_of_another_ca_is_refused(fleet: Fleet) -> None:
    other = FleetCa.create(fleet.folder / "other-ca", name="someone else", now=NOW)
    files = other.issue_kiosk(
        kiosk_id="kiosk-a", location_id="loc-a", out=fleet.folder / "other-kiosk", now=NOW
    )
    context = ClientTls(fleet.ca.cert_file, files.cert_file, files.key_file).context()
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            "localhost", fleet.port, identifier="kiosk-a", tls_context=context, timeout=5
        ):
            pass


async def test_a_revoked_kiosk_certificate_is_refused(fleet: Fleet) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with fleet.client("kiosk-stolen"):
            pass


async def test_a_kiosk_revoked_while_the_broker_runs_is_refused_after_a_reload(
    fleet: Fleet,
) -> None:
    files = fleet.ca.issue_kiosk(
        kiosk_id="kiosk-c", location_id="loc-a", out=fleet.folder / "kiosk-c", now=NOW
    )
    fleet.clients["kiosk-c"] = files
    fleet.reload()
    await asyncio.sleep(0.5)
    async with fleet.client("kiosk-c"):
        pass

    fleet.ca.revoke(identity="kiosk-c", now=NOW)
    fleet.reload()
    await asyncio.sleep(0.5)

    with pytest.raises(aiomqtt.MqttError):
        async with fleet.client("kiosk-c"):
            pass


async def test_a_kiosk_talks_with_the_cloud_on_its_own_locations_topics(
    fleet: Fleet, worker: aiomqtt.Client
) -> None:
    assert not refused(await worker.subscribe(CLOUD_SUBSCRIPTION, qos=1))
    async with fleet.client("kiosk-a") as kiosk:
        assert not refused(await kiosk.subscribe("locker/v1/loc-a/cloud/#", qos=1))

        await kiosk.publish(topic("loc-a", Channel.KIOSK_EVENTS), b"event", qos=1)
        got = await first_message(worker, 5)
        assert got is not None
        assert got.payload == b"event"

        await worker.publish(topic("loc-a", Channel.CLOUD_CHANGES), b"change", qos=1)
        got = await first_message(kiosk, 5)
        assert got is not None
        assert got.payload == b"change"


@pytest.mark.parametrize(
    "subscription",
    [
        "#",
        "locker/v1/#",
        "locker/v1/+/cloud/#",
        "locker/v1/loc-b/cloud/#",
        "locker/v1/loc-b/kiosk/#",
        "locker/v1/loc-a/kiosk/#",  # its own location's kiosks' events: the cloud's to read
        CLOUD_SUBSCRIPTION,
        "$share/locker-cloud/locker/v1/loc-a/kiosk/#",
        "$SYS/#",
    ],
)
async def test_a_kiosk_cannot_subscribe_beyond_its_locations_cloud_topics(
    fleet: Fleet, subscription: str
) -> None:
    async with fleet.client("kiosk-a") as kiosk:
        assert refused(await kiosk.subscribe(subscription, qos=1))


async def test_a_kiosk_receives_nothing_of_another_location_nor_of_other_kiosks(
    fleet: Fleet, worker: aiomqtt.Client
) -> None:
    async with fleet.client("kiosk-a") as kiosk, fleet.client("kiosk-a2") as neighbour:
        await kiosk.subscribe("locker/v1/loc-a/cloud/#", qos=1)
        await kiosk.subscribe("#", qos=1)  # refused; were it not, this would show it
        await worker.publish(topic("loc-b", Channel.CLOUD_CHANGES), b"for loc-b", qos=1)
        await neighbour.publish(topic("loc-a", Channel.KIOSK_EVENTS), b"neighbour", qos=1)
        await worker.publish(topic("loc-a", Channel.CLOUD_ACKS), b"mine", qos=1)

        got = await first_message(kiosk, 5)
        assert got is not None
        assert got.payload == b"mine"
        assert await first_message(kiosk, 0.5) is None


@pytest.mark.parametrize(
    "channel", [Channel.KIOSK_EVENTS, Channel.KIOSK_PRESENCE, Channel.CLOUD_CHANGES]
)
async def test_a_kiosk_cannot_publish_on_another_location_nor_on_cloud_topics(
    fleet: Fleet, worker: aiomqtt.Client, channel: Channel
) -> None:
    await worker.subscribe(CLOUD_SUBSCRIPTION, qos=1)
    async with fleet.client("kiosk-b") as at_b, fleet.client("kiosk-a2") as at_a:
        await at_b.subscribe("locker/v1/loc-b/cloud/#", qos=1)
        await at_a.subscribe("locker/v1/loc-a/cloud/#", qos=1)
        async with fleet.client("kiosk-a") as kiosk:
            # Mosquitto acknowledges a denied QoS 1 publish and drops it (MQTT 3.1.1 has no
            # way to say no), so the proof is that nobody receives it.
            await kiosk.publish(topic("loc-b", channel), b"forged", qos=1)
            await kiosk.publish(topic("loc-a", Channel.CLOUD_CHANGES), b"forged", qos=1)
            await kiosk.publish(topic("loc-a", Channel.KIOSK_HEARTBEAT), b"marker", qos=1)

        got = await first_message(worker, 5)
        assert got is not None
        assert got.payload == b"marker"
        assert await first_message(worker, 0.5) is None
        assert await first_message(at_b, 0.2) is None
        assert await first_message(at_a, 0.2) is None


async def test_a_kiosk_cannot_take_another_kiosks_client_id(fleet: Fleet) -> None:
    events: list[str] = []
    async with fleet.client("kiosk-a") as victim:
        await victim.subscribe("locker/v1/loc-a/cloud/#", qos=1)
        for _ in range(3):
            async with fleet.client("kiosk-b", client_id="kiosk-a") as intruder:
                await intruder.publish(topic("loc-b", Channel.KIOSK_HEARTBEAT), b"hb", qos=1)
            events.append("intruded")
        # Still connected: a round trip through the broker works on the original session.
        async with fleet.client("worker-1") as cloud:
            await cloud.publish(topic("loc-a", Channel.CLOUD_ACKS), b"still here", qos=1)
        got = await first_message(victim, 5)

    assert events == ["intruded"] * 3
    assert got is not None
    assert got.payload == b"still here"


async def test_an_oversized_message_is_dropped_by_the_broker(
    fleet: Fleet, worker: aiomqtt.Client
) -> None:
    async def send_too_much() -> None:
        async with fleet.client("kiosk-a") as kiosk:
            await kiosk.publish(
                topic("loc-a", Channel.KIOSK_EVENTS), b"x" * (4 * MAX_PAYLOAD_BYTES), qos=1
            )
            # The broker closes the connection of a client that sends a packet too large.
            await kiosk.publish(topic("loc-a", Channel.KIOSK_EVENTS), b"after", qos=1)

    await worker.subscribe(CLOUD_SUBSCRIPTION, qos=1)
    with pytest.raises(aiomqtt.MqttError):
        await send_too_much()

    async with fleet.client("kiosk-a") as kiosk:
        await kiosk.publish(topic("loc-a", Channel.KIOSK_EVENTS), b"y" * MAX_PAYLOAD_BYTES, qos=1)
    got = await first_message(worker, 5)
    assert got is not None
    assert got.payload == b"y" * MAX_PAYLOAD_BYTES


async def test_a_message_of_an_unknown_identity_goes_nowhere(fleet: Fleet) -> None:
    name = f"unlisted-{uuid.uuid4().hex[:6]}"
    # Issued after the configuration was generated: the broker lets it in (the CA signed it)
    # but its ACL has no block for it, so it may do nothing.
    fleet.clients[name] = fleet.ca.issue_kiosk(
        kiosk_id=name, location_id="loc-a", out=fleet.folder / name, now=NOW
    )
    async with fleet.client(name) as client:
        assert refused(await client.subscribe("locker/v1/loc-a/cloud/#", qos=1))


async def test_a_kiosk_in_the_shared_group_takes_no_message_from_the_workers(
    fleet: Fleet, worker: aiomqtt.Client
) -> None:
    await worker.subscribe(CLOUD_SUBSCRIPTION, qos=1)
    async with fleet.client("kiosk-b") as intruder, fleet.client("kiosk-a") as kiosk:
        await intruder.subscribe(CLOUD_SUBSCRIPTION, qos=1)
        for n in range(20):
            await kiosk.publish(topic("loc-a", Channel.KIOSK_EVENTS), b"%d" % n, qos=1)
        received = []
        for _ in range(20):
            got = await first_message(worker, 3)
            if got is None:
                break
            received.append(got.payload)
        stolen = await first_message(intruder, 0.3)

    assert stolen is None
    assert sorted(received) == sorted(b"%d" % n for n in range(20))


async def test_the_sync_clients_raise_on_a_refused_subscription(fleet: Fleet) -> None:
    client = MqttClient(
        "localhost", fleet.port, identifier="kiosk-a", tls_context=fleet.tls("kiosk-a"), timeout=5
    )
    async with client:
        await client.subscribe("locker/v1/loc-a/cloud/#", qos=1)
        with pytest.raises(SubscriptionRefused, match="refused the subscription"):
            await client.subscribe("locker/v1/loc-b/cloud/#", qos=1)
