"""Several broker nodes for one client, and which to try next: the failover of kiosks and cloud
workers across a broker cluster (docs/protocol.md, "Broker cluster").

A client is given the cluster's nodes as a list (a comma-separated list of broker URLs, or a
TOML array). It starts at a random node, so a fleet spreads over the cluster, and moves to the
next node after every failed or lost connection, waiting the usual jittered backoff
(`shared.backoff`) between attempts; a node that dies therefore costs its clients one backoff
wait (``reconnect_min_s`` at most, the first time) before they are on another node, and a fleet
that lost a node comes back spread over the others at random moments, not all at once.

All nodes of one list share the scheme, the user name and the password: one client has one
identity (its certificate, its password) on every node of a cluster.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Generic, TypeVar

from shared.broker_url import BrokerUrl, BrokerUrlError, parse_broker_url

Node = TypeVar("Node")

CLUSTER_SUBSCRIPTION_QOS = 0
"""A kiosk's subscription QoS on the NATS broker cluster (``[sync] subscription_qos``). NATS
backs every QoS 1 subscription with a JetStream consumer, created at each connection and
replicated like the streams: a fleet reconnecting after a node died then waits for consumer
creation, or gets SUBACK refused, while JetStream elects new leaders. At QoS 0 the subscription
is a plain NATS one. The kiosk loses nothing it did not already risk: a clean session queues
nothing while it is away, and what a connection drops is made up for by the next connection's
``sync_request`` (docs/protocol.md). Measured: docs/BENCHMARKS.md, "Broker failover"."""

CLUSTER_CONNECT_TIMEOUT_S = 2.0
"""A kiosk's connection timeout on the broker cluster (``[sync] connect_timeout_s``): a node
that holds the CONNACK, or the birth's PUBACK (its JetStream waiting for a new leader of the
session or retained-message stream after a node died), is left for the next node after this,
not after the 10 s every other wait gets: in bench/broker_failover_bench.py no such PUBACK came
within 10 s (NATS's own JetStream requests time out after 4 s), so waiting longer gained
nothing."""


def parse_broker_urls(value: str | Sequence[str]) -> tuple[BrokerUrl, ...]:
    """Parses one broker URL, a comma-separated list of them, or a sequence of them.

    Raises:
        BrokerUrlError: no URL, a URL that `parse_broker_url` refuses, the same node twice, or
            nodes that differ in scheme, user name or password.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    urls = [item.strip() for item in items if item.strip()]
    if not urls:
        raise BrokerUrlError("expected at least one broker URL")
    parsed = tuple(parse_broker_url(url) for url in urls)
    first = parsed[0]
    for url in parsed[1:]:
        if (url.tls, url.username, url.password) != (first.tls, first.username, first.password):
            raise BrokerUrlError(
                "every broker of a list needs the same scheme, user name and password"
            )
    nodes = [(url.host, url.port) for url in parsed]
    if len(set(nodes)) != len(nodes):
        raise BrokerUrlError("a broker appears twice in the list")
    return parsed


class BrokerRotation(Generic[Node]):
    """The node to connect to now, moving on after each failed or lost connection.

    Args:
        nodes: The cluster's nodes (at least one), in the order they are tried.
        rng: Picks the first node (the module's random source by default; tests pass their
            own).

    Raises:
        ValueError: no nodes.
    """

    def __init__(self, nodes: Sequence[Node], *, rng: random.Random | None = None) -> None:
        if not nodes:
            raise ValueError("a broker rotation needs at least one node")
        self._nodes = tuple(nodes)
        self._index = (rng or random).randrange(len(self._nodes))

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self._nodes

    @property
    def current(self) -> Node:
        """The node the next connection attempt goes to."""
        return self._nodes[self._index]

    def failed(self) -> Node:
        """The current node's connection failed or was lost: returns the next node."""
        self._index = (self._index + 1) % len(self._nodes)
        return self.current
