"""A three-node NATS cluster (JetStream, MQTT listener) on free loopback ports, once per module
(`deploy.broker_cluster.cluster`); the machine's Mosquitto at 1883 is untouched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.broker_cluster.cluster import NATS_SERVER, BrokerCluster


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
