"""`locker-cloud provision-kiosk`: keys, files and registration, all or nothing."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from cloud.fleet_ca import FleetCa
from cloud.store.database import Pool
from cloud.sync.keys import write_private
from kiosk.config import SyncTable
from shared.signing import Signer

from .conftest import make_site


async def _provision(
    database_url: str,
    key_file: Path,
    *args: str,
    mqtt_url: str = "mqtt://broker.example:1883",
) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "LOCKER_DATABASE_URL": database_url,
        "LOCKER_CLOUD_KEY_FILE": str(key_file),
        "LOCKER_MQTT_URL": mqtt_url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cloud.cli",
        "provision-kiosk",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_provisioning_writes_the_kiosks_files_and_registers_it(
    pool: Pool, sync_db_url: str, tmp_path: Path
) -> None:
    site = await make_site(pool, register=False)
    cloud = Signer.generate()
    key_file = tmp_path / "cloud.pem"
    write_private(key_file, cloud.private_pem())
    out = tmp_path / "kiosk"
    code, stdout, stderr = await _provision(
        sync_db_url, key_file, "--location", site.location_id, "--kiosk", "k-1x", "--out", str(out)
    )
    assert code == 0, stderr
    assert cloud.verifier.public_base64() in stdout

    private = out / "kiosk-key.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "code-secret").stat().st_mode) == 0o600
    config = tomllib.loads((out / "kiosk.toml").read_text())
    assert config["kiosk"] == {
        "location_id": site.location_id,
        "kiosk_id": "k-1x",
        "database": "kiosk.db",
        "code_secret_file": "code-secret",
    }
    assert config["layout"] == {"1-3": "small", "4-5": "medium"}
    assert config["sync"] == {
        "broker_url": "mqtt://broker.example:1883",
        "cloud_public_key": cloud.verifier.public_base64(),
        "private_key_file": "kiosk-key.pem",
    }
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT k.location_id, k.public_key, k.code_secret, c.through_sequence"
            " FROM kiosks k JOIN kiosk_cursors c USING (kiosk_id) WHERE kiosk_id = 'k-1x'"
        )
        row = await cur.fetchone()
    assert row is not None
    assert row["location_id"] == site.location_id
    assert row["public_key"] == Signer.from_file(private).verifier.public_base64()
    assert bytes(row["code_secret"]) == (out / "code-secret").read_bytes().rstrip(b"\n")
    assert row["through_sequence"] == 0

    # A second kiosk at the location gets a code secret of its own (issue 9: one per kiosk);
    # the same id again is refused.
    code, _, stderr = await _provision(
        sync_db_url,
        key_file,
        "--location",
        site.location_id,
        "--kiosk",
        "k-1y",
        "--out",
        str(tmp_path / "second"),
    )
    assert code == 0, stderr
    assert (tmp_path / "second" / "code-secret").read_bytes() != (out / "code-secret").read_bytes()
    code, _, stderr = await _provision(
        sync_db_url,
        key_file,
        "--location",
        site.location_id,
        "--kiosk",
        "k-1x",
        "--out",
        str(tmp_path / "again"),
    )
    assert code == 2
    assert "already registered" in stderr
    assert not (tmp_path / "again" / "kiosk-key.pem").exists()  # nothing left behind

    code, _, stderr = await _provision(
        sync_db_url,
        key_file,
        "--location",
        "nowhere",
        "--kiosk",
        "k-2",
        "--out",
        str(tmp_path / "x"),
    )
    assert code == 2
    assert "no location" in stderr


async def test_provisioning_with_the_fleet_ca_writes_the_kiosks_broker_certificate(
    pool: Pool, sync_db_url: str, tmp_path: Path
) -> None:
    site = await make_site(pool, register=False)
    key_file = tmp_path / "cloud.pem"
    write_private(key_file, Signer.generate().private_pem())
    ca = FleetCa.create(tmp_path / "ca", name="fleet", now=datetime.now(UTC))
    out = tmp_path / "kiosk"

    code, stdout, stderr = await _provision(
        sync_db_url,
        key_file,
        *("--location", site.location_id, "--kiosk", "k-ca", "--out", str(out)),
        *("--ca", str(ca.folder), "--broker-url", "mqtts://worker:cloud-pw@broker.example"),
    )

    assert code == 0, stderr
    assert "k-ca" in stdout
    assert stat.S_IMODE((out / "kiosk-cert-key.pem").stat().st_mode) == 0o600
    certificate = x509.load_pem_x509_certificate((out / "kiosk-cert.pem").read_bytes())
    [cn] = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert cn.value == "k-ca"
    assert (out / "fleet-ca.pem").read_bytes() == ca.cert_file.read_bytes()
    sync = tomllib.loads((out / "kiosk.toml").read_text())["sync"]
    # The cloud's own broker password never reaches a kiosk's files.
    assert sync["broker_url"] == "mqtts://broker.example:8883"
    assert "cloud-pw" not in (out / "kiosk.toml").read_text()
    assert (sync["ca_file"], sync["client_cert_file"], sync["client_key_file"]) == (
        "fleet-ca.pem",
        "kiosk-cert.pem",
        "kiosk-cert-key.pem",
    )
    [issued] = ca.issued()
    assert (issued.identity, issued.location_id, issued.serial) == (
        "k-ca",
        site.location_id,
        certificate.serial_number,
    )


async def test_a_kiosk_with_a_certificate_needs_a_tls_broker_url(
    pool: Pool, sync_db_url: str, tmp_path: Path
) -> None:
    site = await make_site(pool, register=False)
    key_file = tmp_path / "cloud.pem"
    write_private(key_file, Signer.generate().private_pem())
    ca = FleetCa.create(tmp_path / "ca", name="fleet", now=datetime.now(UTC))
    out = tmp_path / "kiosk"

    code, _, stderr = await _provision(
        sync_db_url,
        key_file,
        *("--location", site.location_id, "--kiosk", "k-plain", "--out", str(out)),
        *("--ca", str(ca.folder)),
    )

    assert code == 2
    assert "needs an mqtts:// broker URL" in stderr
    assert not out.exists() or list(out.iterdir()) == []
    assert ca.issued() == []


async def test_a_broker_cluster_url_list_gives_the_kiosk_every_node_and_the_cluster_settings(
    pool: Pool, sync_db_url: str, tmp_path: Path
) -> None:
    """Issue 13: a comma-separated LOCKER_MQTT_URL (the cloud's own list of a cluster's nodes)
    becomes the kiosk's broker_url plus broker_urls, with the cluster's subscription QoS and
    CONNACK timeout; the worker's password stays behind."""
    site = await make_site(pool, register=False)
    cloud = Signer.generate()
    key_file = tmp_path / "cloud.pem"
    write_private(key_file, cloud.private_pem())
    out = tmp_path / "kiosk"
    code, _, stderr = await _provision(
        sync_db_url,
        key_file,
        *("--location", site.location_id, "--kiosk", "k-nats", "--out", str(out)),
        mqtt_url="mqtt://worker:cloud-pw@n1.example:4883, mqtt://worker:cloud-pw@n2.example:4883,"
        "mqtt://worker:cloud-pw@n3.example:4883",
    )
    assert code == 0, stderr
    text = (out / "kiosk.toml").read_text()
    # Not a bare "pw": the file's random base64 cloud key held those two letters now and then.
    assert "cloud-pw" not in text
    sync = tomllib.loads(text)["sync"]
    assert sync["broker_url"] == "mqtt://n1.example:4883"
    assert sync["broker_urls"] == ["mqtt://n2.example:4883", "mqtt://n3.example:4883"]
    assert (sync["subscription_qos"], sync["connect_timeout_s"]) == (0, 2.0)
    # The kiosk's own model takes the table as written.
    table = SyncTable.model_validate(sync)
    assert [(u.host, u.port) for u in table.broker_urls or ()] == [
        ("n2.example", 4883),
        ("n3.example", 4883),
    ]


async def test_an_id_with_a_dot_is_refused_at_provisioning_and_nothing_is_written(
    pool: Pool, sync_db_url: str, tmp_path: Path
) -> None:
    """Issue 13: a NATS MQTT topic cannot carry a '.', and the kiosk id is the client id and the
    location id a topic level (`shared.topic_ids`)."""
    site = await make_site(pool, register=False)
    key_file = tmp_path / "cloud.pem"
    write_private(key_file, Signer.generate().private_pem())
    out = tmp_path / "kiosk"
    code, _, stderr = await _provision(
        sync_db_url,
        key_file,
        *("--location", site.location_id, "--kiosk", "k.dotted", "--out", str(out)),
    )
    assert code == 2
    assert "kiosk id 'k.dotted' is not valid" in stderr
    assert "no '.'" in stderr
    assert not out.exists()
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM kiosks WHERE kiosk_id = 'k.dotted'")
        row = await cur.fetchone()
    assert row is not None
    assert row["n"] == 0
