"""A real Mosquitto started with the configuration `locker-cloud mosquitto-config` generates.

The fleet (CA, two locations, three kiosks, a worker, one revoked kiosk) is made once per
module; the broker runs on a free port of its own, so the plain broker at 1883 is untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from cloud.broker_config import DYNSEC_PLUGIN, generate
from cloud.fleet_ca import FleetCa, IssuedFiles
from shared.broker_url import ClientTls

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
NOW = datetime.now(UTC)


@dataclass
class Fleet:
    ca: FleetCa
    folder: Path
    port: int
    clients: dict[str, IssuedFiles]
    process: subprocess.Popen[bytes]
    config_file: Path

    def tls(self, identity: str) -> ssl.SSLContext:
        files = self.clients[identity]
        return ClientTls(self.ca.cert_file, files.cert_file, files.key_file).context()

    def client(self, identity: str, *, client_id: str | None = None) -> aiomqtt.Client:
        return aiomqtt.Client(
            "localhost",
            self.port,
            identifier=client_id or identity,
            tls_context=self.tls(identity),
            timeout=5,
        )

    def restart(self) -> None:
        """Regenerates the configuration and restarts the broker on the same port (the
        dynamic-security plugin reads its file at start only)."""
        _generate(self.ca, self.folder, self.port)
        self.process.terminate()
        self.process.wait(10)
        self.process = _start(self.config_file, self.folder)
        _wait_listening(self.port, self.process)

    def reload(self) -> None:
        """Regenerates the configuration and makes the broker re-read its ACL and CRL."""
        _generate(self.ca, self.folder, self.port)
        self.process.send_signal(1)  # SIGHUP


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _generate(ca: FleetCa, folder: Path, port: int) -> Path:
    return generate(
        ca,
        folder / "broker",
        broker_cert_file=folder / "broker" / "broker-cert.pem",
        broker_key_file=folder / "broker" / "broker-cert-key.pem",
        port=port,
        now=NOW,
        bind_address="127.0.0.1",
        user="root" if os.geteuid() == 0 else None,
    ).config_file


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if process.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(0.05)
    raise RuntimeError("mosquitto did not listen within 10 s")


@contextlib.contextmanager
def running_broker(ca: FleetCa, folder: Path, clients: dict[str, IssuedFiles]) -> Iterator[Fleet]:
    """Mosquitto on a free port, with the configuration generated from ``ca``, until the end of
    the block (the broker certificate must be issued into ``folder / "broker"`` first)."""
    port = free_port()
    config_file = _generate(ca, folder, port)
    process = _start(config_file, folder)
    fleet = Fleet(ca, folder, port, clients, process, config_file)
    try:
        _wait_listening(port, process)
        yield fleet
    finally:
        fleet.process.terminate()
        fleet.process.wait(10)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if not Path(MOSQUITTO).exists():
        pytest.skip("no mosquitto binary on this machine")
    if not DYNSEC_PLUGIN.exists():
        pytest.skip(f"no Mosquitto dynamic-security plugin at {DYNSEC_PLUGIN}")
    folder = tmp_path_factory.mktemp("fleet")
    ca = FleetCa.create(folder / "ca", name="test fleet CA", now=NOW)
    clients = {
        "kiosk-a": ca.issue_kiosk(
            kiosk_id="kiosk-a", location_id="loc-a", out=folder / "kiosk-a", now=NOW
        ),
        "kiosk-a2": ca.issue_kiosk(
            kiosk_id="kiosk-a2", location_id="loc-a", out=folder / "kiosk-a2", now=NOW
        ),
        "kiosk-b": ca.issue_kiosk(
            kiosk_id="kiosk-b", location_id="loc-b", out=folder / "kiosk-b", now=NOW
        ),
        "kiosk-stolen": ca.issue_kiosk(
            kiosk_id="kiosk-stolen", location_id="loc-b", out=folder / "kiosk-stolen", now=NOW
        ),
        "worker-1": ca.issue_worker(name="worker-1", out=folder / "worker-1", now=NOW),
    }
    ca.revoke(identity="kiosk-stolen", now=NOW)
    ca.issue_broker(hosts=["localhost", "127.0.0.1"], out=folder / "broker", now=NOW)
    with running_broker(ca, folder, clients) as fleet:
        yield fleet


def _start(config_file: Path, folder: Path) -> subprocess.Popen[bytes]:
    with (folder / "mosquitto.log").open("ab") as log:
        return subprocess.Popen(
            [MOSQUITTO, "-c", str(config_file)], stdout=log, stderr=subprocess.STDOUT
        )


@pytest.fixture
async def worker(fleet: Fleet) -> AsyncIterator[aiomqtt.Client]:
    async with fleet.client("worker-1") as client:
        yield client


async def first_message(client: aiomqtt.Client, within_s: float = 1.0) -> aiomqtt.Message | None:
    """The next message the client receives, or None if none comes within ``within_s``."""
    try:
        async with asyncio.timeout(within_s):
            async for message in client.messages:
                return message
    except TimeoutError:
        return None
    return None
