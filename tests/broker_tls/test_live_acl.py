"""A new kiosk's broker rights added live, over the dynamic-security plugin's control topic, on
a real Mosquitto started with the generated configuration: no restart (issue 9)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from cloud.broker_acl import apply_acl
from cloud.broker_config import DYNSEC_PLUGIN
from cloud.fleet_ca import FleetCa
from shared.protocol import Channel, kiosk_subscription, topic
from tests.broker_tls.conftest import (
    MOSQUITTO,
    NOW,
    Fleet,
    first_message,
    running_broker,
)


@pytest.fixture(scope="module")
def live_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if not Path(MOSQUITTO).exists() or not DYNSEC_PLUGIN.exists():
        pytest.skip("no mosquitto with the dynamic-security plugin on this machine")
    folder = tmp_path_factory.mktemp("live-fleet")
    ca = FleetCa.create(folder / "ca", name="test fleet CA", now=NOW)
    clients = {
        "broker-admin": ca.issue_admin(name="broker-admin", out=folder / "admin", now=NOW),
        "worker-1": ca.issue_worker(name="worker-1", out=folder / "worker-1", now=NOW),
        "kiosk-a": ca.issue_kiosk(
            kiosk_id="kiosk-a", location_id="loc-a", out=folder / "kiosk-a", now=NOW
        ),
    }
    ca.issue_broker(hosts=["localhost", "127.0.0.1"], out=folder / "broker", now=NOW)
    with running_broker(ca, folder, clients) as fleet:
        yield fleet


async def _apply(fleet: Fleet) -> object:
    return await apply_acl(
        fleet.ca,
        NOW,
        host="localhost",
        port=fleet.port,
        tls_context=fleet.tls("broker-admin"),
        admin_identity="broker-admin",
    )


def _refused(codes: object) -> bool:
    return all(code.is_failure for code in codes)  # type: ignore[attr-defined]


async def test_a_kiosk_provisioned_after_the_broker_started_gets_its_rights_live(
    live_fleet: Fleet,
) -> None:
    fleet = live_fleet
    pid = fleet.process.pid
    fleet.clients["kiosk-new"] = fleet.ca.issue_kiosk(
        kiosk_id="kiosk-new", location_id="loc-new", out=fleet.folder / "kiosk-new", now=NOW
    )
    # Its certificate is good, but the running broker's ACL does not know it: no rights.
    async with fleet.client("kiosk-new") as kiosk:
        assert _refused(await kiosk.subscribe(kiosk_subscription("loc-new"), qos=1))

    changes = await _apply(fleet)
    assert changes.clients_created == ["kiosk-new"]  # type: ignore[attr-defined]
    assert changes.roles_created == ["kiosk@loc-new"]  # type: ignore[attr-defined]
    assert changes.clients_deleted == []  # type: ignore[attr-defined]

    async with fleet.client("kiosk-new") as kiosk, fleet.client("worker-1") as worker:
        assert not _refused(await kiosk.subscribe(kiosk_subscription("loc-new"), qos=1))
        # ... and still nothing of another location.
        assert _refused(await kiosk.subscribe(kiosk_subscription("loc-a"), qos=1))
        await worker.publish(topic("loc-new", Channel.CLOUD_ACKS), b"hello", qos=1)
        received = await first_message(kiosk, within_s=5.0)
        assert received is not None
        assert received.payload == b"hello"
    assert fleet.process.poll() is None
    assert fleet.process.pid == pid  # never restarted

    # Idempotent: nothing left to do.
    again = await _apply(fleet)
    assert not again.changed  # type: ignore[attr-defined]


async def test_an_identity_no_longer_live_loses_its_rights_live(live_fleet: Fleet) -> None:
    fleet = live_fleet
    fleet.ca.revoke(identity="kiosk-a", now=NOW)
    changes = await _apply(fleet)
    assert changes.clients_deleted == ["kiosk-a"]  # type: ignore[attr-defined]
    # Until the broker re-reads the CRL (SIGHUP) the certificate still connects, but the
    # client is gone from the ACL: it can do nothing.
    try:
        async with fleet.client("kiosk-a") as kiosk:
            assert _refused(await kiosk.subscribe(kiosk_subscription("loc-a"), qos=1))
    except aiomqtt.MqttError:
        pass  # refused outright: as good


def test_only_the_admin_identity_has_rights_on_the_control_topic(live_fleet: Fleet) -> None:
    security = json.loads((live_fleet.folder / "broker" / "dynamic-security.json").read_text())
    with_control = {
        role["rolename"]
        for role in security["roles"]
        if any(acl["topic"].startswith("$CONTROL") for acl in role["acls"])
    }
    assert with_control == {"broker-admin"}
    roles = {c["username"]: c["roles"][0]["rolename"] for c in security["clients"]}
    assert roles["broker-admin"] == "broker-admin"
    assert roles["worker-1"] == "cloud-worker"


def test_the_command_applies_a_new_kiosk_live(live_fleet: Fleet) -> None:
    fleet = live_fleet
    fleet.ca.issue_kiosk(
        kiosk_id="kiosk-cli", location_id="loc-cli", out=fleet.folder / "kiosk-cli", now=NOW
    )
    admin = fleet.clients["broker-admin"]
    command = [sys.executable, "-m", "cloud.cli", "broker-apply-acl", "--ca", str(fleet.ca.folder),
               "--host", "localhost", "--port", str(fleet.port),
               "--cert", str(admin.cert_file), "--key", str(admin.key_file)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "client created: kiosk-cli" in done.stdout
    assert "role created: kiosk@loc-cli" in done.stdout
    # A client that is not the admin is not answered: a clear error, exit status 2.
    worker = fleet.clients["worker-1"]
    command[-4:] = ["--cert", str(worker.cert_file), "--key", str(worker.key_file)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "admin identity" in done.stderr
