"""Kiosks' time to reconnect after the loss of a broker node (issue 13).

Starts the three-node NATS cluster of `deploy.broker_cluster.cluster` on loopback, connects
``--kiosks`` MQTT clients the way a kiosk connects (aiomqtt through `shared.mqtt_client`, clean
session, a will, a QoS 1 subscription to its location's cloud topics, a retained birth), each
choosing its first node and its next ones with `shared.broker_list.BrokerRotation` and waiting
`shared.backoff.backoff_delay` (full jitter, ``--first`` doubling to 60 s) between attempts, as
`kiosk.sync.client.KioskSync` does. Then it kills (SIGKILL) one node and measures, for every
client that was on it, the time from the kill to its next connection being subscribed and
born on another node; and how many were on each node before and after.

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

from deploy.broker_cluster.cluster import BrokerCluster
from shared.backoff import backoff_delay
from shared.broker_list import BrokerRotation
from shared.mqtt_client import MqttClient


class Kiosk:
    def __init__(self, number: int, nodes: list[int], first: float) -> None:
        self.kiosk_id = f"bench-kiosk-{number}"
        self.location = f"bench-loc-{number}"
        self.rotation = BrokerRotation(nodes)
        self.first = first
        self.node: int | None = None
        self.connected_at: list[tuple[float, int]] = []
        self.attempts = 0

    async def run(self) -> None:
        failures = 0
        while True:
            port = self.rotation.current
            self.attempts += 1
            try:
                will = aiomqtt.Will(
                    f"locker/v1/{self.location}/kiosk/presence", b"death", qos=1, retain=True
                )
                async with MqttClient(
                    "127.0.0.1", port, identifier=self.kiosk_id, will=will, keepalive=5, timeout=10
                ) as client:
                    await client.subscribe(f"locker/v1/{self.location}/cloud/#", qos=1)
                    await client.publish(
                        f"locker/v1/{self.location}/kiosk/presence", b"birth", qos=1, retain=True
                    )
                    self.node = port
                    self.connected_at.append((time.monotonic(), port))
                    failures = 0
                    async for _ in client.messages:
                        pass
            except aiomqtt.MqttError:
                pass
            self.node = None
            self.rotation.failed()
            await asyncio.sleep(backoff_delay(failures, first=self.first, longest=60.0))
            failures += 1


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main(kiosks: int, first: float, settle: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        cluster = BrokerCluster.create(Path(folder))
        cluster.start()
        try:
            cluster.wait_ready()
            ports = [node.mqtt_port for node in cluster.nodes]
            fleet = [Kiosk(n, ports, first) for n in range(kiosks)]
            tasks = [asyncio.create_task(kiosk.run()) for kiosk in fleet]
            started = time.monotonic()
            while sum(k.node is not None for k in fleet) < kiosks:
                if time.monotonic() - started > 120:
                    raise TimeoutError("the fleet did not connect within 120 s")
                await asyncio.sleep(0.1)
            connect_s = time.monotonic() - started
            await asyncio.sleep(settle)
            before = Counter(k.node for k in fleet)
            victim = cluster.nodes[0]
            on_victim = [k for k in fleet if k.node == victim.mqtt_port]
            marks = {k.kiosk_id: len(k.connected_at) for k in on_victim}
            killed_at = time.monotonic()
            victim.kill()
            while any(len(k.connected_at) <= marks[k.kiosk_id] for k in on_victim):
                if time.monotonic() - killed_at > 180:
                    raise TimeoutError("clients of the killed node did not reconnect in 180 s")
                await asyncio.sleep(0.05)
            reconnect = [k.connected_at[marks[k.kiosk_id]][0] - killed_at for k in on_victim]
            after = Counter(k.node for k in fleet)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            cluster.stop()
    return {
        "bench": "broker_failover",
        "kiosks": kiosks,
        "nodes": len(ports),
        "reconnect_min_s": first,
        "fleet_connect_s": round(connect_s, 2),
        "per_node_before": {str(port): before[port] for port in ports},
        "per_node_after": {str(port): after[port] for port in ports},
        "on_killed_node": len(on_victim),
        "reconnect_p50_s": round(statistics.median(reconnect), 3),
        "reconnect_p95_s": round(_percentile(reconnect, 0.95), 3),
        "reconnect_max_s": round(max(reconnect), 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kiosks", type=int, default=150)
    parser.add_argument("--first", type=float, default=0.5, help="the kiosk's reconnect_min_s")
    parser.add_argument("--settle", type=float, default=3.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.kiosks, args.first, args.settle))))
