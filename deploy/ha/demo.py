"""``scripts/ha-demo``: the cloud's HA setup on loopback until Ctrl-C: etcd x3, PostgreSQL x2
under Patroni (synchronous standby), two cloud nodes behind HAProxy; prints the API address
and how to break things.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from cloud.store import database as db
from deploy.ha.cloud_nodes import CloudNodes
from deploy.ha.cluster import RUN_AS, Cluster

ADMIN = "ha-demo-admin-key"


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="locker-ha-demo-"))
    shutil.chown(folder, RUN_AS)
    (folder / "db").mkdir()
    shutil.chown(folder / "db", RUN_AS)
    cluster = Cluster.plan(folder / "db")
    nodes = CloudNodes(folder / "cloud", cluster.database_url, env={"LOCKER_ADMIN_API_KEY": ADMIN})
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        print("starting etcd x3 and PostgreSQL x2 under Patroni ...", flush=True)
        cluster.up()
        asyncio.run(db.migrate(cluster.database_url))
        print("starting two cloud nodes behind HAProxy ...", flush=True)
        nodes.start()
        print(
            f"\n  API         {nodes.url}/api/v1   (admin key: {ADMIN})"
            f"\n  nodes       {nodes.node_url(0)}  {nodes.node_url(1)}"
            f"\n  database    LOCKER_DATABASE_URL={cluster.database_url}"
            f"\n  status      scripts/ha-cluster status {cluster.folder}"
            f"\n  logs        {folder}"
            "\n  break it    kill -9 the primary's postmaster (its pid: first line of"
            f" {cluster.folder}/node*/data/postmaster.pid) and watch the API answer 503"
            " with Retry-After, then carry on"
            f"\n\nREADY {nodes.url}   (Ctrl-C stops everything)",
            flush=True,
        )
        stop.wait()
    finally:
        nodes.stop()
        cluster.down()
        shutil.rmtree(folder, ignore_errors=True)
        print("ha-demo stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
