"""Cloud service nodes behind HAProxy (Debian's), on loopback: several ``locker-cloud serve``
processes on one database, each with its own background jobs, one address for carriers.

HAProxy checks each node's ``/livez`` (the process answers), not ``/healthz`` (which also asks
the database): while PostgreSQL fails over, requests still reach a node, whose own
``503 database_unavailable`` with ``Retry-After`` tells the carrier what happened. When no node
answers at all, HAProxy itself answers 503 ``service_unavailable`` in the same JSON shape.
A request whose connection to a node failed before it was sent is retried on the other node
(``retry-on conn-failure``); one cut mid-way is not (a POST might have been applied), and the
carrier's retry, idempotent by ``package_id``, finds its allocation.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from deploy.ha.cluster import free_port, tool

NO_NODE_503 = """HTTP/1.1 503 Service Unavailable
Content-Type: application/json
Retry-After: 5
Cache-Control: no-store
Connection: close

{"error": {"code": "service_unavailable", "message": "no node of the service is answering; retry later", "details": {"retry_after_seconds": 5}}}
"""  # noqa: E501 (an HTTP response, kept as sent)


@dataclass
class CloudNodes:
    """``count`` cloud nodes and the HAProxy in front of them."""

    folder: Path
    database_url: str
    count: int = 2
    env: dict[str, str] = field(default_factory=dict)  # more LOCKER_* settings for every node
    ports: list[int] = field(default_factory=list)
    proxy_port: int = 0
    _nodes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    _proxy: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.ports = self.ports or [free_port() for _ in range(self.count)]
        self.proxy_port = self.proxy_port or free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    def node_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def start(self, timeout: float = 60.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for index in range(self.count):
            self.start_node(index, timeout)
        self.start_proxy()

    def start_node(self, index: int, timeout: float = 60.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKER_")}
        env |= {
            "LOCKER_DATABASE_URL": self.database_url,
            "LOCKER_DATA_DIR": str(self.folder / f"cloud{index}"),
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        path = self.folder / f"cloud{index}.log"
        start = path.stat().st_size if path.exists() else 0
        log = path.open("ab")
        command = [sys.executable, "-m", "cloud.cli", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.ports[index])]
        process = subprocess.Popen(  # noqa: S603 (our own command)
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        self._nodes[index] = process
        _wait_for_ready(process, path, start, timeout)

    def running(self) -> set[int]:
        return set(self._nodes)

    def kill_node(self, index: int) -> None:
        """kill -9 of a node (its in-flight requests are cut)."""
        process = self._nodes.pop(index, None)
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def haproxy_config(self) -> str:
        servers = "\n".join(
            f"  server node{i} 127.0.0.1:{port} check" for i, port in enumerate(self.ports)
        )
        return f"""global
  maxconn 4000

defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  option httpchk GET /livez
  default-server inter 300ms fall 2 rise 1
  retries 3
  option redispatch
  retry-on conn-failure

frontend api
  bind 127.0.0.1:{self.proxy_port}
  default_backend cloud

backend cloud
  balance roundrobin
  errorfile 503 {self.folder / "no-node-503.http"}
{servers}
"""

    def start_proxy(self) -> None:
        (self.folder / "no-node-503.http").write_text(NO_NODE_503)
        config = self.folder / "haproxy.cfg"
        config.write_text(self.haproxy_config())
        check = subprocess.run(  # noqa: S603
            [tool("haproxy"), "-c", "-q", "-f", str(config)], capture_output=True, check=False
        )
        if check.returncode != 0:
            raise RuntimeError(f"haproxy refused its configuration: {check.stderr.decode()}")
        log = (self.folder / "haproxy.log").open("ab")
        self._proxy = subprocess.Popen(  # noqa: S603
            [tool("haproxy"), "-db", "-f", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 10
        while not _port_open(self.proxy_port):
            if time.monotonic() > deadline:
                raise RuntimeError("haproxy did not start listening")
            time.sleep(0.05)

    def stop(self) -> None:
        for index in list(self._nodes):
            self.kill_node(index)
        if self._proxy is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proxy.pid, signal.SIGKILL)
            self._proxy.wait()
            self._proxy = None


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_ready(
    process: subprocess.Popen[bytes], log: Path, start: int, timeout: float
) -> None:
    """Until the node's log (from ``start``) has its ``READY`` line."""
    deadline = time.monotonic() + timeout
    while True:
        with log.open("rb") as f:
            f.seek(start)
            if b"READY " in f.read():
                return
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"a cloud node did not start: see {log}")
        time.sleep(0.1)
