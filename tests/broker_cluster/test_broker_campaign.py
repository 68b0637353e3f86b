"""The broker side of the failover campaign (issue 13): broker nodes killed (kill -9) under load.

Two kiosk daemons (two locations) and two cloud sync workers on the three-node NATS cluster,
every one with the whole node list and the cluster settings provisioning writes
(`shared.broker_list.CLUSTER_SUBSCRIPTION_QOS`, ``CLUSTER_CONNECT_TIMEOUT_S``). Each kiosk runs
a steady load meanwhile: a parcel reserved in the cloud, deposited at the kiosk, picked up at
the kiosk, again and again; each deposit and pickup is a kiosk event that must reach the cloud
exactly once. ``FAULTS`` times, the node one kiosk is on is killed, that kiosk's time to be
connected again (subscribed and born, on another node) is taken, and the node is started
again before the next fault. At the end both sides converge, and it counts: kiosk events lost
(in a kiosk's outbox and not in the cloud) and applied twice, parcels whose deposit or pickup
the cloud did not get, notifications sent twice; each must be 0. The figures (reconnect p50 and
max) are printed as one JSON line, for docs/BENCHMARKS.md.

Bounded for CI: 3 faults, each waiting at most 60 s for the kiosk; about 1-2 minutes in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from pathlib import Path
from typing import Any

from cloud.sync.worker import BrokerAddress, SyncWorker
from deploy.broker_cluster.cluster import BrokerCluster, BrokerNode
from shared.broker_list import CLUSTER_CONNECT_TIMEOUT_S, CLUSTER_SUBSCRIPTION_QOS
from shared.clock import SystemClock
from tests.sync_e2e.harness import (
    PICKUP_WINDOW,
    Cloud,
    Site,
    converge,
    eventually,
    make_site,
    running_site,
)

FAULTS = 3


async def _start_worker(cloud: Cloud, nodes: list[tuple[str, int]]) -> SyncWorker:
    worker = SyncWorker(
        cloud.pool,
        database_url=cloud.database_url,
        broker=[BrokerAddress(host, port) for host, port in nodes],
        signer=cloud.signer,
        clock=SystemClock(),
        pickup_window=PICKUP_WINDOW,
        shared_subscription=False,  # NATS has none (docs/protocol.md, "Broker cluster")
        sweep_interval=1.0,
        backoff_first=0.2,
        backoff_longest=1.0,
    )
    cloud.workers.append((worker, asyncio.create_task(worker.run())))
    await eventually(worker.ready.is_set, within=30)
    return worker


async def _cluster_site(cloud: Cloud, folder: Path, nodes: list[tuple[str, int]]) -> Site:
    site = await make_site(cloud, folder)
    others = ", ".join(f'"mqtt://{host}:{port}"' for host, port in nodes[1:])
    with site.config_file.open("a", encoding="utf-8") as config:  # [sync] is the last table
        config.write(
            f"broker_urls = [{others}]\nsubscription_qos = {CLUSTER_SUBSCRIPTION_QOS}\n"
            f"connect_timeout_s = {CLUSTER_CONNECT_TIMEOUT_S}\n"
        )
    return site


async def _jetstream_consumers(node: BrokerNode) -> int:
    """How many JetStream consumers NATS's MQTT message stream has (one per QoS 1
    subscription), asked over the NATS client protocol of ``node``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", node.client_port)
    try:
        await reader.readline()  # INFO
        writer.write(
            b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.locker-test 1\r\n'
            b"PUB $JS.API.STREAM.INFO.$MQTT_msgs _INBOX.locker-test 0\r\n\r\n"
        )
        await writer.drain()
        while True:
            line = await asyncio.wait_for(reader.readline(), 10)
            if line.startswith(b"PING"):
                writer.write(b"PONG\r\n")
            elif line.startswith(b"MSG"):
                size = int(line.split()[-1])
                info = json.loads(await reader.readexactly(size + 2))
                count: int = info["state"]["consumer_count"]
                return count
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class Load:
    """Parcels reserved, deposited and picked up at one kiosk, one after another, until
    stopped; a fault only slows it (each step waits up to 120 s for sync)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.done: list[str] = []
        self.stopping = False

    async def run(self) -> None:
        from kiosk.flows.drop_off import drop_off
        from kiosk.flows.pickup import pick_up

        site = self.site
        while not self.stopping:
            row = await site.reserve()
            allocation_id = str(row["allocation_id"])
            await eventually(lambda a=allocation_id: site.kiosk_status(a) == "reserved", within=120)
            result = await drop_off(site.ctx, row["package_id"], driver_id="driver-1")
            site.bank.set_occupied(result.door)
            site.bank.close(result.door)
            await eventually(lambda a=allocation_id: site.kiosk_status(a) == "deposited", within=30)
            code = await site.code(allocation_id)
            picked = await pick_up(site.ctx, code)
            for opening in picked.openings:
                site.bank.set_occupied(opening.door, False)
                site.bank.close(opening.door)
            await eventually(lambda a=allocation_id: site.kiosk_status(a) == "picked_up", within=30)
            self.done.append(allocation_id)


async def _counted(cloud: Cloud, site: Site, done: list[str]) -> dict[str, int]:
    events = await cloud.fetch(
        "SELECT event_id::text AS event_id, count(*) AS n FROM kiosk_events"
        " WHERE kiosk_id = %s GROUP BY event_id",
        site.kiosk_id,
    )
    in_cloud = {row["event_id"]: row["n"] for row in events}
    outbox = {str(row[0]) for row in site.kiosk_rows("SELECT event_id FROM outbox")}
    rows = await cloud.fetch(
        "SELECT allocation_id::text AS id, status FROM allocations WHERE allocation_id = ANY(%s)",
        done,
    )
    notified = await cloud.fetch(
        "SELECT allocation_id, kind, count(*) AS n FROM notifications"
        " WHERE allocation_id = ANY(%s) GROUP BY allocation_id, kind HAVING count(*) > 1",
        done,
    )
    return {
        "events": len(outbox),
        "events_lost": len(outbox - in_cloud.keys()),
        "events_applied_twice": sum(1 for n in in_cloud.values() if n > 1),
        "parcels": len(done),
        "parcels_not_picked_up_in_cloud": sum(1 for row in rows if row["status"] != "picked_up")
        + len(done)
        - len(rows),
        "notifications_sent_twice": len(notified),
    }


async def test_broker_nodes_killed_under_load_lose_no_kiosk_event_and_apply_none_twice(
    cloud_on_cluster: Cloud, broker_cluster: BrokerCluster, tmp_path: Path
) -> None:
    cloud = cloud_on_cluster
    nodes = [("127.0.0.1", node.mqtt_port) for node in broker_cluster.nodes]
    await _start_worker(cloud, nodes)
    await _start_worker(cloud, nodes)
    consumers = await _jetstream_consumers(broker_cluster.nodes[0])
    sites = [await _cluster_site(cloud, tmp_path / f"kiosk-{n}", nodes) for n in range(2)]
    async with running_site(sites[0]), running_site(sites[1]):
        for site in sites:
            await site.start_kiosk()
        await eventually(lambda: all(site.connected for site in sites), within=60)
        # At QoS 0 a kiosk's subscription is no JetStream consumer (the workers' are).
        assert await _jetstream_consumers(broker_cluster.nodes[0]) == consumers

        loads = [Load(site) for site in sites]
        tasks = [asyncio.create_task(load.run()) for load in loads]
        reconnects: list[float] = []
        try:
            await eventually(lambda: all(load.done for load in loads), within=120)
            for fault in range(FAULTS):
                site = sites[fault % 2]
                assert site.daemon is not None
                assert site.daemon.sync is not None
                status = site.daemon.sync.status
                await eventually(lambda s=site: s.connected, within=60)
                [victim] = [n for n in broker_cluster.nodes if n.mqtt_port == status.broker[1]]
                connections = status.connections
                killed_at = time.monotonic()
                victim.kill()
                await eventually(
                    lambda st=status, c=connections: st.connected and st.connections > c,
                    within=60,
                )
                reconnects.append(time.monotonic() - killed_at)
                assert status.broker != ("127.0.0.1", victim.mqtt_port)
                broker_cluster.start(victim)
                broker_cluster.wait_ready()
                await asyncio.sleep(2)  # load runs on the whole cluster again
            for load in loads:
                load.stopping = True
            await asyncio.wait_for(asyncio.gather(*tasks), 180)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for site in sites:
            await converge(site, within=90)
        counts: dict[str, Any] = {}
        for site, load in zip(sites, loads, strict=True):
            for key, value in (await _counted(cloud, site, load.done)).items():
                counts[key] = counts.get(key, 0) + value
    print(
        json.dumps(
            {
                "bench": "broker_campaign",
                "faults": FAULTS,
                **counts,
                "reconnect_p50_s": round(statistics.median(reconnects), 2),
                "reconnect_max_s": round(max(reconnects), 2),
            }
        )
    )
    assert counts["events"] > 0
    assert counts["events_lost"] == 0
    assert counts["events_applied_twice"] == 0
    assert counts["parcels_not_picked_up_in_cloud"] == 0
    assert counts["notifications_sent_twice"] == 0
