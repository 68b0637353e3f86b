"""A three-node NATS cluster (JetStream, MQTT listener) on free loopback ports, once per module
(`deploy.broker_cluster.cluster`); the machine's Mosquitto at 1883 is untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cloud.store import database as db
from deploy.broker_cluster.cluster import NATS_SERVER, BrokerCluster
from shared.signing import Signer
from tests.sync_e2e.harness import Cloud


@pytest.fixture(scope="module")
def broker_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerCluster]:
    if not Path(NATS_SERVER).exists():
        pytest.skip("no nats-server on this machine (scripts/install-system-tools installs it)")
    cluster = BrokerCluster.create(tmp_path_factory.mktemp("nats"))
    cluster.start()
    try:
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def cloud_on_cluster(
    database_url: str, broker_cluster: BrokerCluster
) -> AsyncIterator[Cloud]:
    """The cloud of the end-to-end sync tests (`tests.sync_e2e.harness.Cloud`), whose own
    broker (where `make_site` points a kiosk's ``broker_url``) is the cluster's first node."""
    await db.migrate(database_url)
    pool = await db.open_pool(database_url, min_size=1, max_size=12)
    first = broker_cluster.nodes[0]
    built = Cloud(pool, database_url, Signer.generate(), ("127.0.0.1", first.mqtt_port))
    try:
        yield built
    finally:
        await built.stop_workers()
        await pool.close()
