"""A PostgreSQL high-availability cluster on loopback: etcd (three members) and two PostgreSQL
nodes under Patroni, a primary and a synchronous standby, all from Debian's packages.

For the failover tests (tests/ha) and for trying failover by hand (`scripts/ha-cluster`):

    scripts/ha-cluster up DIR      # prints the multi-host LOCKER_DATABASE_URL when ready
    scripts/ha-cluster status DIR
    scripts/ha-cluster down DIR

Patroni runs PostgreSQL as the ``postgres`` user (PostgreSQL refuses root). Synchronous mode
(``synchronous_mode: true``): a commit is acknowledged once the standby has it, so an allocation
acknowledged to a carrier survives the primary's death (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
RUN_AS = "postgres"
SCOPE = "locker-ha"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        raise RuntimeError(
            f"{name} is not installed: run scripts/install-system-tools"
            " (Debian's etcd-server, patroni, haproxy)"
        )
    return found


@dataclass
class Member:
    """A process of the cluster: its name, command, log and pid file."""

    name: str
    command: list[str]
    log: Path
    as_postgres: bool = False
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        user = pwd.getpwnam(RUN_AS) if self.as_postgres else None
        self.process = subprocess.Popen(  # noqa: S603 (our own, fixed command)
            self.command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self.log.parent,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            start_new_session=True,
            env={**os.environ, "HOME": str(self.log.parent)},
        )
        (self.log.parent / f"{self.name}.pid").write_text(str(self.process.pid))
        out.close()  # the child has its own copy

    def kill(self) -> None:
        """kill -9 of its process group, and reaped (no zombie, no unwaited Popen)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None


@dataclass
class Cluster:
    """The ports and folders of one cluster (written to ``cluster.json`` in its folder)."""

    folder: Path
    etcd: list[tuple[int, int]] = field(default_factory=list)  # (client, peer) per member
    nodes: list[tuple[int, int]] = field(default_factory=list)  # (postgres, patroni api)
    members: dict[str, Member] = field(default_factory=dict)

    @classmethod
    def plan(cls, folder: Path, *, etcd_members: int = 3, nodes: int = 2) -> Cluster:
        cluster = cls(folder=folder)
        cluster.etcd = [(free_port(), free_port()) for _ in range(etcd_members)]
        cluster.nodes = [(free_port(), free_port()) for _ in range(nodes)]
        return cluster

    @property
    def database_url(self) -> str:
        """The cloud's LOCKER_DATABASE_URL: every node, the writable one taken."""
        hosts = ",".join(f"127.0.0.1:{pg}" for pg, _ in self.nodes)
        return f"postgresql://postgres@{hosts}/postgres?target_session_attrs=read-write"

    def node_url(self, index: int) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.nodes[index][0]}/postgres"

    def save(self) -> None:
        state = {"etcd": self.etcd, "nodes": self.nodes}
        (self.folder / "cluster.json").write_text(json.dumps(state))

    @classmethod
    def load(cls, folder: Path) -> Cluster:
        state = json.loads((folder / "cluster.json").read_text())
        cluster = cls(folder=folder)
        cluster.etcd = [(int(a), int(b)) for a, b in state["etcd"]]
        cluster.nodes = [(int(a), int(b)) for a, b in state["nodes"]]
        return cluster

    # Starting.

    def up(self, timeout: float = 90.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.folder, RUN_AS)
        self.save()
        for i in range(len(self.etcd)):
            self.start_etcd(i)
        for i in range(len(self.nodes)):
            self.start_node(i)
        self.wait_ready(timeout)

    def start_etcd(self, index: int) -> None:
        """Starts etcd member ``index`` (again, after a kill: its data folder remembers the
        cluster, and the ``--initial-*`` flags are then ignored)."""
        initial = ",".join(
            f"etcd{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(self.etcd)
        )
        client, peer = self.etcd[index]
        member = Member(
            f"etcd{index}",
            [
                tool("etcd"),
                f"--name=etcd{index}",
                f"--data-dir={self.folder / f'etcd{index}'}",
                f"--listen-client-urls=http://127.0.0.1:{client}",
                f"--advertise-client-urls=http://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster={initial}",
                "--initial-cluster-state=new",
                f"--initial-cluster-token={SCOPE}",
                # Patroni 3.0 of Debian 12 speaks etcd's v2 API.
                "--enable-v2=true",
            ],
            self.folder / f"etcd{index}.log",
        )
        member.start()
        self.members[member.name] = member

    def patroni_config(self, index: int) -> Path:
        pg, api = self.nodes[index]
        name = f"node{index}"
        data = self.folder / name / "data"
        data.parent.mkdir(exist_ok=True)
        shutil.chown(data.parent, RUN_AS)
        hosts = ",".join(f"127.0.0.1:{client}" for client, _ in self.etcd)
        hba = [
            "local all all trust",
            "host all all 127.0.0.1/32 trust",
            "host replication replicator 127.0.0.1/32 trust",
        ]
        config = {
            "scope": SCOPE,
            "name": name,
            "restapi": {"listen": f"127.0.0.1:{api}", "connect_address": f"127.0.0.1:{api}"},
            "etcd": {"hosts": hosts},
            "bootstrap": {
                "dcs": {
                    # Failover in under 10 s: the leader key lives 8 s, renewed every 2 s
                    # (Patroni needs loop_wait + 2 * retry_timeout <= ttl).
                    "ttl": 8,
                    "loop_wait": 2,
                    "retry_timeout": 3,
                    "maximum_lag_on_failover": 1048576,
                    "synchronous_mode": True,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "parameters": {"max_connections": 60, "wal_log_hints": "on"},
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"auth": "trust"}],
                "pg_hba": hba,
            },
            "postgresql": {
                "listen": f"127.0.0.1:{pg}",
                "connect_address": f"127.0.0.1:{pg}",
                "data_dir": str(data),
                "bin_dir": str(PG_BIN),
                "pgpass": str(self.folder / name / "pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres", "password": "postgres"},
                    "replication": {"username": "replicator", "password": "replicator"},
                },
                "pg_hba": hba,
                "parameters": {"unix_socket_directories": str(self.folder / name)},
            },
        }
        path = self.folder / f"{name}.yml"
        # JSON is YAML: no YAML writer needed.
        path.write_text(json.dumps(config, indent=2))
        shutil.chown(path, RUN_AS)
        return path

    def start_node(self, index: int) -> None:
        config = self.patroni_config(index)
        member = Member(
            f"node{index}",
            [tool("patroni"), str(config)],
            self.folder / f"node{index}.log",
            as_postgres=True,
        )
        member.start()
        self.members[member.name] = member

    # Looking at it.

    def node_state(self, index: int) -> dict[str, object] | None:
        """Patroni's REST view of a node (role, state), or None while it does not answer."""
        _, api = self.nodes[index]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api}/patroni", timeout=2) as response:
                state: dict[str, object] = json.loads(response.read())
                return state
        except (OSError, ValueError):
            return None

    def primary(self) -> int | None:
        """The index of the running primary, if there is one."""
        for index in range(len(self.nodes)):
            state = self.node_state(index)
            if (
                state
                and state.get("role") in ("master", "primary")
                and state.get("state") == ("running")
            ):
                return index
        return None

    def running(self, name: str) -> bool:
        member = self.members.get(name)
        return member is not None and member.process is not None

    def wait_ready(self, timeout: float) -> None:
        """Until there is a primary and every other node streams from it (synchronously)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [self.node_state(i) for i in range(len(self.nodes))]
            roles = [s.get("role") if s else None for s in states]
            running = all(s and s.get("state") == "running" for s in states)
            if running and sum(r in ("master", "primary") for r in roles) == 1:
                primary = self.primary()
                if primary is not None and self._has_sync_standby(primary):
                    return
            time.sleep(0.5)
        raise RuntimeError(f"the cluster was not ready in {timeout:.0f} s; logs in {self.folder}")

    def _has_sync_standby(self, primary: int) -> bool:
        _, api = self.nodes[primary]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api}/cluster", timeout=2) as response:
                members = json.loads(response.read()).get("members", [])
        except (OSError, ValueError):
            return False
        return any(m.get("role") == "sync_standby" for m in members)

    # Faults and stopping.

    def postgres_pid(self, index: int) -> int | None:
        pid_file = self.folder / f"node{index}" / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(pid_file.read_text().splitlines()[0])
        return None

    def kill_postgres(self, index: int) -> None:
        """kill -9 of the node's postmaster (Patroni restarts or fails over)."""
        pid = self.postgres_pid(index)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def kill_node(self, index: int) -> None:
        """kill -9 of the node's Patroni and its PostgreSQL: the machine is gone."""
        self._kill(f"node{index}")
        self.kill_postgres(index)

    def kill_etcd(self, index: int) -> None:
        self._kill(f"etcd{index}")

    def down(self) -> None:
        for index in range(len(self.nodes)):
            self.kill_node(index)
        for index in range(len(self.etcd)):
            self.kill_etcd(index)

    def _kill(self, name: str) -> None:
        member = self.members.pop(name, None)
        if member is not None:  # started by this process
            member.kill()
        else:  # by another (`ha-cluster up`, then `down`)
            self._kill_pid_file(self.folder / f"{name}.pid")

    @staticmethod
    def _kill_pid_file(path: Path) -> None:
        with contextlib.suppress(OSError, ValueError):
            pid = int(path.read_text())
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ha-cluster", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "status", "down"])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    folder: Path = args.folder.resolve()
    if args.command == "up":
        cluster = Cluster.plan(folder)
        cluster.up()
        print(f"READY LOCKER_DATABASE_URL={cluster.database_url}", flush=True)
        return 0
    cluster = Cluster.load(folder)
    if args.command == "down":
        cluster.down()
        return 0
    for index in range(len(cluster.nodes)):
        state = cluster.node_state(index) or {"state": "not answering"}
        print(f"node{index}\t{state.get('role', '-')}\t{state.get('state')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
