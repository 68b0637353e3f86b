"""A NATS broker cluster on loopback: three nats-server nodes (Debian's package), clustered,
with JetStream and NATS's MQTT listener, for the broker-cluster tests (tests/broker_cluster)
and for trying broker failover by hand (`scripts/broker-cluster`):

    scripts/broker-cluster up DIR      # prints the nodes' MQTT URLs (a LOCKER_MQTT_URL) when ready
    scripts/broker-cluster status DIR
    scripts/broker-cluster down DIR

NATS keeps MQTT sessions, retained messages and QoS 1 deliveries in JetStream streams, replicated
on every node (``stream_replicas: 3``), so a client that loses its node reconnects to another and
finds its retained messages there. What NATS's MQTT listener does and does not carry of the sync
protocol is in docs/protocol.md ("Broker cluster"), checked by tests/broker_cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
CLUSTER_NAME = "locker-brokers"
NODES = 3
STATE_FILE = "cluster.json"

MQTT_SETTINGS: dict[str, str] = {
    # Sessions and retained messages survive the loss of a node.
    "stream_replicas": str(NODES),
    # A QoS 1 message not acknowledged within this is delivered again.
    "ack_wait": '"10s"',
}
"""The ``mqtt {}`` block of every node (NATS's names and syntax), after ``listen``;
`BrokerCluster.create` takes others (bench/broker_failover_bench.py compares them)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class BrokerNode:
    """One nats-server: its client, cluster-route and MQTT ports, and its process."""

    name: str
    client_port: int
    route_port: int
    mqtt_port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    pid: int | None = None
    mqtt_settings: dict[str, str] = field(default_factory=lambda: dict(MQTT_SETTINGS))

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    def config(self, routes: list[int]) -> str:
        route_list = ", ".join(f'"nats-route://127.0.0.1:{port}"' for port in routes)
        store = self.folder / "jetstream"
        mqtt_settings = "\n".join(
            f"    {key}: {value}" for key, value in self.mqtt_settings.items()
        )
        return f"""
server_name: {self.name}
listen: "127.0.0.1:{self.client_port}"
jetstream {{
    store_dir: "{store}"
    max_memory_store: 64MB
    max_file_store: 512MB
}}
cluster {{
    name: {CLUSTER_NAME}
    listen: "127.0.0.1:{self.route_port}"
    routes: [{route_list}]
}}
mqtt {{
    listen: "127.0.0.1:{self.mqtt_port}"
{mqtt_settings}
}}
# The protocol's largest message is 262,144 bytes (shared.protocol.MAX_PAYLOAD_BYTES).
max_payload: 1MB
"""

    def start(self, routes: list[int]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        config_file = self.folder / "nats.conf"
        config_file.write_text(self.config(routes))
        log = (self.folder / "nats.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 (our own binary and file)
            [NATS_SERVER, "-c", str(config_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.pid = self.process.pid

    def kill(self) -> None:
        """kill -9, as a machine that dies."""
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)
        self.process = None
        self.pid = None

    def alive(self) -> bool:
        if self.pid is None:
            return False
        if self.process is not None:
            return self.process.poll() is None
        # Started by an earlier `up`: not our child; a zombie left unreaped counts as dead.
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        return stat.rpartition(")")[2].split()[0] != "Z"


@dataclass
class BrokerCluster:
    """Three clustered nats-server nodes with JetStream and MQTT, in ``folder``."""

    folder: Path
    nodes: list[BrokerNode]

    @classmethod
    def create(cls, folder: Path, mqtt_settings: dict[str, str] | None = None) -> BrokerCluster:
        settings = dict(MQTT_SETTINGS if mqtt_settings is None else mqtt_settings)
        nodes = [
            BrokerNode(
                f"n{i + 1}",
                free_port(),
                free_port(),
                free_port(),
                folder / f"n{i + 1}",
                mqtt_settings=settings,
            )
            for i in range(NODES)
        ]
        return cls(folder, nodes)

    @property
    def mqtt_urls(self) -> list[str]:
        return [node.mqtt_url for node in self.nodes]

    def start(self, node: BrokerNode | None = None) -> None:
        """Starts every node (or one, again, on its old ports and store)."""
        routes = [n.route_port for n in self.nodes]
        for each in [node] if node else self.nodes:
            each.start([port for port in routes if port != each.route_port])
        self.save()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Waits until each running node's MQTT listener takes a session (JetStream has a
        meta leader and the MQTT streams exist).

        Raises:
            TimeoutError: not ready within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if not node.alive():
                continue
            while not _mqtt_connects(node.mqtt_port):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"broker node {node.name} not ready; see {node.folder}")
                if not node.alive():
                    raise RuntimeError(f"broker node {node.name} died; see {node.folder}")
                time.sleep(0.3)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()

    def save(self) -> None:
        state = [
            {
                "name": n.name,
                "client_port": n.client_port,
                "route_port": n.route_port,
                "mqtt_port": n.mqtt_port,
                "pid": n.pid,
            }
            for n in self.nodes
        ]
        (self.folder / STATE_FILE).write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, folder: Path) -> BrokerCluster:
        state = json.loads((folder / STATE_FILE).read_text())
        nodes = [
            BrokerNode(
                s["name"],
                s["client_port"],
                s["route_port"],
                s["mqtt_port"],
                folder / s["name"],
                pid=s["pid"],
            )
            for s in state
        ]
        return cls(folder, nodes)


def _mqtt_connects(port: int) -> bool:
    """Whether a raw MQTT 3.1.1 CONNECT gets an accepting CONNACK (NATS refuses sessions
    until JetStream is up). Raw bytes: this runs outside any event loop."""
    client_id = b"ready-probe"
    variable = b"\x00\x04MQTT\x04\x02\x00\x05"  # MQTT 3.1.1, clean session, keepalive 5
    payload = len(client_id).to_bytes(2, "big") + client_id
    body = variable + payload
    packet = b"\x10" + bytes([len(body)]) + body
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(packet)
            answer = sock.recv(4)
            sock.sendall(b"\xe0\x00")  # DISCONNECT
    except OSError:
        return False
    return len(answer) == 4 and answer[0] == 0x20 and answer[3] == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="broker-cluster", description="a NATS MQTT broker cluster on loopback"
    )
    parser.add_argument("action", choices=["up", "status", "down"])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    folder: Path = args.folder.resolve()
    if args.action == "up":
        if (folder / STATE_FILE).exists() and any(
            n.alive() for n in BrokerCluster.load(folder).nodes
        ):
            print(f"broker-cluster: already running in {folder}", file=sys.stderr)
            return 1
        folder.mkdir(parents=True, exist_ok=True)
        cluster = BrokerCluster.create(folder)
        cluster.start()
        # The processes outlive this command; `down` ends them by their saved pids.
        for node in cluster.nodes:
            node.process = None
        cluster.wait_ready()
        print(",".join(cluster.mqtt_urls))
        return 0
    if not (folder / STATE_FILE).exists():
        print(f"broker-cluster: no cluster in {folder}", file=sys.stderr)
        return 1
    cluster = BrokerCluster.load(folder)
    if args.action == "status":
        for node in cluster.nodes:
            state = "running" if node.alive() else "stopped"
            print(f"{node.name} {node.mqtt_url} {state}")
        return 0
    cluster.stop()
    cluster.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
