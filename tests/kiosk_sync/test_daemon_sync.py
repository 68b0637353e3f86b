"""The daemon with a ``[sync]`` table: it syncs with the cloud, and works on without a broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from cloud.embedded_broker import free_port
from kiosk.config import load_config
from kiosk.daemon import Daemon
from kiosk.flows.pickup import pick_up
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.store import KioskIdentity, changes
from shared.protocol import MessageType
from shared.signing import Signer
from shared.sizes import Size
from shared.states import AllocationStatus
from tests.kiosk_process.helpers import seed

from .conftest import SECRET, Cloud, allocation, eventually, open_store, unique

LAYOUT = dict.fromkeys(range(1, 9), Size.SMALL)


@dataclass
class Running:
    daemon: Daemon
    task: asyncio.Task[None]
    ready: list[str]

    @property
    def bank(self) -> FakeDoorBank:
        assert self.daemon.ctx is not None
        bank = self.daemon.ctx.bank
        assert isinstance(bank, FakeDoorBank)
        return bank


def write_config(folder: Path, identity: KioskIdentity, broker_url: str, cloud_key: str) -> Path:
    (folder / "kiosk-key.pem").write_bytes(KIOSK_KEY.private_pem())
    path = folder / "kiosk.toml"
    path.write_text(
        f"""
[kiosk]
location_id = "{identity.location_id}"
kiosk_id = "{identity.kiosk_id}"
database = "kiosk.db"
code_secret = "{SECRET.decode()}"

[layout]
"1-8" = "small"

[doors]
backend = "fake"
open_timeout_s = 0.5
[doors.fake]
doors = 8

[sync]
broker_url = "{broker_url}"
cloud_public_key = "{cloud_key}"
private_key_file = "kiosk-key.pem"
reconnect_min_s = 0.1
reconnect_max_s = 0.5
""",
        encoding="utf-8",
    )
    return path


KIOSK_KEY = Signer.generate()


@contextlib.asynccontextmanager
async def running_daemon(path: Path) -> AsyncIterator[Running]:
    daemon = Daemon(load_config(path))
    stop = asyncio.Event()
    ready: list[str] = []
    task = asyncio.create_task(daemon.run(stop, on_ready=ready.append))
    await eventually(lambda: bool(ready) or task.done())
    try:
        yield Running(daemon, task, ready)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_pickup_works_with_the_broker_down_and_sync_keeps_trying(tmp_path: Path) -> None:
    identity = KioskIdentity(unique("loc"), unique("kiosk"))
    path = write_config(
        tmp_path,
        identity,
        f"mqtt://127.0.0.1:{free_port()}",
        Signer.generate().verifier.public_base64(),
    )
    with open_store(tmp_path / "kiosk.db", identity) as store:
        seed(store, LAYOUT, deposited=[("p1", 1, "ABC234")])
    async with running_daemon(path) as run:
        assert "sync with 127.0.0.1" in run.ready[0]
        daemon = run.daemon
        await eventually(lambda: daemon.sync is not None and daemon.sync.status.last_error)
        assert daemon.ctx is not None
        result = await pick_up(daemon.ctx, "ABC234", via="keypad")
        assert result.doors == (1,)
        assert run.bank.is_open(1)
        assert not run.task.done()
        assert daemon.sync is not None
        assert not daemon.sync.status.connected


async def test_the_daemon_syncs_with_the_cloud(
    tmp_path: Path, mqtt_broker: tuple[str, int, bool]
) -> None:
    host, port, _ = mqtt_broker
    identity = KioskIdentity(unique("loc"), unique("kiosk"))
    cloud = Cloud(host, port, identity.location_id, identity.kiosk_id, KIOSK_KEY)
    await cloud.start()
    try:
        path = write_config(
            tmp_path, identity, f"mqtt://{host}:{port}", cloud.signer.verifier.public_base64()
        )
        async with running_daemon(path) as run:
            await eventually(lambda: cloud.of_type(MessageType.BIRTH))
            await cloud.changes(
                1, allocation("p1", status=AllocationStatus.DEPOSITED, door=3, code="DEF567")
            )
            daemon = run.daemon
            assert daemon.ctx is not None
            store = daemon.ctx.store
            await eventually(lambda: changes.last_revision(store.db) == 1)
            result = await pick_up(daemon.ctx, "DEF567", via="keypad")
            assert result.doors == (3,)
            # The pickup's events reach the cloud (woken by the flows or the periodic check).
            await eventually(
                lambda: any(
                    e.type == "code_used"
                    for m in cloud.of_type(MessageType.EVENTS)
                    for e in m.body.events  # type: ignore[union-attr]
                )
            )
    finally:
        await cloud.stop()
