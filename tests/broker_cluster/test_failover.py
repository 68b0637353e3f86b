"""Broker failover (issue 13): the kiosk daemon and a cloud sync worker, both on the same node of
the three-node NATS cluster, lose that node to kill -9; both reconnect to another node of their
lists (`shared.broker_list`) with their jittered backoff, and sync converges: the deposit made
at the kiosk meanwhile is applied once in the cloud, the allocation made in the cloud meanwhile
reaches the kiosk.

Each side starts at a random node of its list in production; here both start at the first
(``random.randrange`` patched), so that one kill takes the node both are on.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from cloud.sync.worker import BrokerAddress, SyncWorker
from deploy.broker_cluster.cluster import BrokerCluster
from shared.clock import SystemClock
from tests.sync_e2e.harness import (
    PICKUP_WINDOW,
    Cloud,
    Site,
    converge,
    deposit_at_kiosk,
    eventually,
    make_site,
    pick_up_at_kiosk,
    running_site,
)


async def _start_worker(cloud: Cloud, nodes: list[tuple[str, int]]) -> SyncWorker:
    worker = SyncWorker(
        cloud.pool,
        database_url=cloud.database_url,
        broker=[BrokerAddress(host, port) for host, port in nodes],
        signer=cloud.signer,
        clock=SystemClock(),
        pickup_window=PICKUP_WINDOW,
        # NATS has no shared subscriptions (test_nats_mqtt_features): a plain one.
        shared_subscription=False,
        sweep_interval=1.0,
        backoff_first=0.2,
        backoff_longest=1.0,
    )
    cloud.workers.append((worker, asyncio.create_task(worker.run())))
    await eventually(worker.ready.is_set, within=30)
    return worker


async def _events_applied_once(cloud: Cloud, site: Site) -> None:
    """Every event of the kiosk's outbox is in the cloud, each once."""
    events = await cloud.fetch(
        "SELECT event_id, count(*) AS n FROM kiosk_events WHERE kiosk_id = %s GROUP BY event_id",
        site.kiosk_id,
    )
    outbox = site.kiosk_rows("SELECT event_id FROM outbox")
    assert events
    assert all(row["n"] == 1 for row in events)
    assert {str(row["event_id"]) for row in events} == {str(row[0]) for row in outbox}


async def test_two_workers_on_plain_subscriptions_apply_each_event_once(
    cloud_on_cluster: Cloud, broker_cluster: BrokerCluster, tmp_path: Path
) -> None:
    """The design around NATS's missing shared subscriptions (docs/protocol.md): two workers,
    on two nodes, each receive every kiosk message; the cursor's row lock applies each event
    once, and each parcel's state and notifications come out once."""
    cloud = cloud_on_cluster
    nodes = [("127.0.0.1", node.mqtt_port) for node in broker_cluster.nodes]
    workers = [await _start_worker(cloud, [nodes[0]]), await _start_worker(cloud, [nodes[1]])]
    site = await make_site(cloud, tmp_path / "kiosk")
    with site.config_file.open("a", encoding="utf-8") as config:
        config.write(f'broker_urls = ["mqtt://{nodes[2][0]}:{nodes[2][1]}"]\n')
    async with running_site(site):
        await site.start_kiosk()
        rows = [await site.reserve() for _ in range(3)]
        for row in rows:
            await deposit_at_kiosk(site, row["package_id"])
        await converge(site, within=60)
        for row in rows:
            code = await site.code(row["allocation_id"])
            await pick_up_at_kiosk(site, code)
        await converge(site, within=60)
        await _events_applied_once(cloud, site)
        assert all(worker.stats["events"] > 0 for worker in workers)
        notifications = await cloud.fetch(
            "SELECT allocation_id, kind, count(*) AS n FROM notifications"
            " WHERE allocation_id = ANY(%s) GROUP BY allocation_id, kind",
            [row["allocation_id"] for row in rows],
        )
        assert notifications
        assert all(row["n"] == 1 for row in notifications)


async def test_kiosk_and_worker_fail_over_to_another_node_and_sync_converges(
    cloud_on_cluster: Cloud,
    broker_cluster: BrokerCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cloud = cloud_on_cluster
    monkeypatch.setattr(random, "randrange", lambda n: 0)
    nodes = [("127.0.0.1", node.mqtt_port) for node in broker_cluster.nodes]
    worker = await _start_worker(cloud, nodes)
    site = await make_site(cloud, tmp_path / "kiosk")
    others = ", ".join(f'"mqtt://{host}:{port}"' for host, port in nodes[1:])
    with site.config_file.open("a", encoding="utf-8") as config:
        config.write(f"broker_urls = [{others}]\n")  # [sync] is the file's last table
    async with running_site(site):
        await site.start_kiosk()
        assert site.daemon is not None
        assert site.daemon.sync is not None
        status = site.daemon.sync.status
        await eventually(lambda: site.connected, within=30)
        assert status.broker == nodes[0]
        assert (worker.broker.host, worker.broker.port) == nodes[0]
        first = await site.reserve()
        await eventually(lambda: site.kiosk_status(str(first["allocation_id"])) == "reserved")
        connections = status.connections

        broker_cluster.nodes[0].kill()
        # While both are cut off or reconnecting: a deposit at the kiosk (its outbox), an
        # allocation in the cloud (its change log).
        door = await deposit_at_kiosk(site, first["package_id"])
        second = await site.reserve()

        await eventually(lambda: site.connected and status.connections > connections, within=60)
        await eventually(worker.ready.is_set, within=60)
        # The next node, or the one after it when the next refused a session or subscription
        # while JetStream moved its leaders off the dead node (a refusal moves a client on).
        assert status.broker in nodes[1:]
        assert (worker.broker.host, worker.broker.port) in nodes[1:]
        await converge(site, within=60)
        assert site.kiosk_status(str(second["allocation_id"])) == "reserved"
        deposited = await site.cloud_allocation(first["allocation_id"])
        assert (deposited["status"], deposited["door_number"]) == ("deposited", door)
        await _events_applied_once(cloud, site)
