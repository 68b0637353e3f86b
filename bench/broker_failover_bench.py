"""Kiosks' time to reconnect after the loss of a broker node (issue 13).

Starts the three-node NATS cluster of `deploy.broker_cluster.cluster` on loopback, connects
``--kiosks`` MQTT clients the way a kiosk connects (aiomqtt through `shared.mqtt_client`, clean
session, a will, a subscription to its location's cloud topics, a retained birth, with the
subscription QoS and connection timeout provisioning writes for a cluster:
`shared.broker_list.CLUSTER_SUBSCRIPTION_QOS`, ``CLUSTER_CONNECT_TIMEOUT_S``), each choosing its
first node and its next ones with `shared.broker_list.BrokerRotation` and waiting
`shared.backoff.backoff_delay` between attempts with the kiosk's defaults (``reconnect_min_s``
doubling to ``reconnect_max_s``), as `kiosk.sync.client.KioskSync` does. Then it kills
(SIGKILL) one node and measures, for every client that was on it, the time from the kill to its
next connection being subscribed and born on another node; how many were on each node before
and after; and why the attempts in between failed (``failures``: no TCP connection, no CONNACK
in time, CONNACK refused, SUBACK refused, PUBACK not in time, connection lost).

``--sub-qos``, ``--connect-timeout`` (CONNACK, SUBACK, the birth's PUBACK), ``--longest`` and
``--mqtt-setting KEY=VALUE`` (a NATS ``mqtt {}`` setting over
`deploy.broker_cluster.cluster.MQTT_SETTINGS`; ``KEY=`` removes one)
let one compare the settings of docs/BENCHMARKS.md ("Broker failover").

It measures the broker side and the client's rotation and backoff, not the kiosk daemon's sync
(tests/broker_cluster/test_failover.py covers that end to end). The last line of its output is
one JSON object.

    .venv/bin/python bench/broker_failover_bench.py --kiosks 150
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.broker_cluster.cluster import MQTT_SETTINGS, BrokerCluster
from kiosk.config import SyncConfig
from shared.backoff import backoff_delay
from shared.broker_list import CLUSTER_CONNECT_TIMEOUT_S, CLUSTER_SUBSCRIPTION_QOS, BrokerRotation
from shared.mqtt_client import MqttClient, SubscriptionRefused

KIOSK = SyncConfig.__dataclass_fields__


def _default(name: str) -> float:
    value = KIOSK[name].default
    assert isinstance(value, int | float)
    return float(value)


class Kiosk:
    def __init__(self, number: int, nodes: list[int], args: argparse.Namespace) -> None:
        self.kiosk_id = f"bench-kiosk-{number}"
        self.location = f"bench-loc-{number}"
        self.rotation = BrokerRotation(nodes)
        self.args = args
        self.node: int | None = None
        self.connected_at: list[tuple[float, int]] = []
        self.failures: list[tuple[float, str]] = []

    async def run(self) -> None:
        failures = 0
        while True:
            port = self.rotation.current
            stage = "tcp"
            try:
                will = aiomqtt.Will(
                    f"locker/v1/{self.location}/kiosk/presence", b"death", qos=1, retain=True
                )
                async with MqttClient(
                    "127.0.0.1",
                    port,
                    identifier=self.kiosk_id,
                    clean_session=True,
                    will=will,
                    keepalive=5,
                    timeout=10,
                    connack_timeout=self.args.connect_timeout,
                ) as client:
                    stage = "suback"
                    await client.subscribe(
                        f"locker/v1/{self.location}/cloud/#",
                        qos=self.args.sub_qos,
                        timeout=self.args.connect_timeout,
                    )
                    stage = "puback"
                    await client.publish(
                        f"locker/v1/{self.location}/kiosk/presence",
                        b"birth",
                        qos=1,
                        retain=True,
                        timeout=self.args.connect_timeout,
                    )
                    self.node = port
                    self.connected_at.append((time.monotonic(), port))
                    failures = 0
                    stage = "lost"
                    async for _ in client.messages:
                        pass
            except SubscriptionRefused:
                self.failures.append((time.monotonic(), "suback refused"))
            except aiomqtt.MqttError as error:
                self.failures.append((time.monotonic(), _reason(stage, error)))
            self.node = None
            self.rotation.failed()
            await asyncio.sleep(
                backoff_delay(failures, first=self.args.first, longest=self.args.longest)
            )
            failures += 1


def _reason(stage: str, error: aiomqtt.MqttError) -> str:
    text = str(error).lower()
    if stage == "tcp":
        if "refused" in text and "connack" not in text and "code" not in text:
            return "no tcp connection"
        if "timed out" in text or "timeout" in text:
            return "no connack in time"
        return "connack refused"
    if stage in ("suback", "puback") and ("timed out" in text or "timeout" in text):
        return f"no {stage} in time"
    return "connection lost" if stage == "lost" else f"{stage}: {text[:40]}"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _settings(pairs: list[str]) -> dict[str, str]:
    settings = dict(MQTT_SETTINGS)
    for pair in pairs:
        key, _, value = pair.partition("=")
        if value:
            settings[key] = value
        else:
            settings.pop(key, None)
    return settings


async def main(args: argparse.Namespace) -> dict[str, object]:
    settings = _settings(args.mqtt_setting)
    with tempfile.TemporaryDirectory() as folder:
        cluster = BrokerCluster.create(Path(folder), settings)
        cluster.start()
        try:
            cluster.wait_ready()
            ports = [node.mqtt_port for node in cluster.nodes]
            fleet = [Kiosk(n, ports, args) for n in range(args.kiosks)]
            tasks = [asyncio.create_task(kiosk.run()) for kiosk in fleet]
            started = time.monotonic()
            while sum(k.node is not None for k in fleet) < args.kiosks:
                if time.monotonic() - started > 180:
                    raise TimeoutError("the fleet did not connect within 180 s")
                await asyncio.sleep(0.1)
            connect_s = time.monotonic() - started
            await asyncio.sleep(args.settle)
            before = Counter(k.node for k in fleet)
            victim = cluster.nodes[0]
            on_victim = [k for k in fleet if k.node == victim.mqtt_port]
            marks = {k.kiosk_id: len(k.connected_at) for k in on_victim}
            killed_at = time.monotonic()
            victim.kill()

            def back(kiosk: Kiosk) -> bool:
                return len(kiosk.connected_at) > marks[kiosk.kiosk_id]

            while not all(back(k) for k in on_victim):
                if time.monotonic() - killed_at > args.limit:
                    break
                await asyncio.sleep(0.05)
            reconnect = [
                k.connected_at[marks[k.kiosk_id]][0] - killed_at for k in on_victim if back(k)
            ]
            after = Counter(k.node for k in fleet)
            # Why attempts failed after the kill, every client counted (the others lose their
            # sessions' streams' leaders too).
            failures = Counter(
                reason for k in fleet for at, reason in k.failures if at >= killed_at
            )
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=30)
        finally:
            cluster.stop()
    not_back = len(on_victim) - len(reconnect)
    return {
        "bench": "broker_failover",
        "kiosks": args.kiosks,
        "nodes": len(ports),
        "subscription_qos": args.sub_qos,
        "connect_timeout_s": args.connect_timeout,
        "reconnect_min_s": args.first,
        "reconnect_max_s": args.longest,
        "mqtt_settings": settings,
        "fleet_connect_s": round(connect_s, 2),
        "per_node_before": {str(port): before[port] for port in ports},
        "per_node_after": {str(port): after[port] for port in ports},
        "on_killed_node": len(on_victim),
        "not_back_within_s": {str(args.limit): not_back},
        "reconnect_p50_s": round(statistics.median(reconnect), 3) if reconnect else None,
        "reconnect_p95_s": round(_percentile(reconnect, 0.95), 3) if reconnect else None,
        "reconnect_max_s_measured": round(max(reconnect), 3) if reconnect else None,
        "failures_after_kill": dict(failures.most_common()),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kiosks", type=int, default=150)
    parser.add_argument("--sub-qos", type=int, choices=[0, 1], default=CLUSTER_SUBSCRIPTION_QOS)
    parser.add_argument("--connect-timeout", type=float, default=CLUSTER_CONNECT_TIMEOUT_S)
    parser.add_argument("--first", type=float, default=_default("reconnect_min_s"))
    parser.add_argument("--longest", type=float, default=_default("reconnect_max_s"))
    parser.add_argument("--mqtt-setting", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--limit", type=float, default=180.0, help="seconds to wait for all")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        print(json.dumps(asyncio.run(main(args))))
