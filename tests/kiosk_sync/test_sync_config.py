"""The ``[sync]`` table: a valid one loads, every bad key is named, the key is read on demand."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.config import KioskConfigError, load_config
from shared.signing import Signer
from tests.kiosk_process.helpers import write_config

FAKE = '[doors]\nbackend = "fake"\n[doors.fake]\ndoors = 8\n'
# A fixed key, not a generated one: the configurations below are parametrize ids, and every
# pytest-xdist worker must collect the same ids (a key generated at import differs per worker).
CLOUD_KEY = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(32)))).verifier.public_base64()


def config_with(tmp_path: Path, sync: str, *, key: bool = True) -> Path:
    if key:
        (tmp_path / "kiosk-key.pem").write_bytes(Signer.generate().private_pem())
    return write_config(tmp_path, doors=FAKE, extra=f"[sync]\n{sync}")


def base(**overrides: str) -> str:
    keys = {
        "broker_url": '"mqtt://broker.example.net"',
        "cloud_public_key": f'"{CLOUD_KEY}"',
        "private_key_file": '"kiosk-key.pem"',
        **overrides,
    }
    return "\n".join(f"{k} = {v}" for k, v in keys.items() if v)


def test_a_full_sync_table_loads(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("unused here")
    path = config_with(
        tmp_path,
        base(broker_url='"mqtts://broker.example.net:18883"')
        + '\nca_file = "ca.pem"\nheartbeat_interval_s = 15\nkeepalive_s = 20'
        + "\nreconnect_min_s = 1\nreconnect_max_s = 30\nack_timeout_s = 2.5"
        + "\noutbox_check_s = 0.5\nevent_retention_s = 3600",
    )
    sync = load_config(path).sync
    assert sync is not None
    assert (sync.broker_host, sync.broker_port, sync.tls) == ("broker.example.net", 18883, True)
    assert sync.ca_file == tmp_path / "ca.pem"
    assert sync.cloud_key.public_base64() == CLOUD_KEY
    assert sync.private_key_file == tmp_path / "kiosk-key.pem"
    assert sync.signer is not None
    assert (sync.heartbeat_interval_s, sync.keepalive_s) == (15.0, 20)
    assert (sync.reconnect_min_s, sync.reconnect_max_s) == (1.0, 30.0)
    assert (sync.ack_timeout_s, sync.outbox_check_s, sync.event_retention_s) == (2.5, 0.5, 3600.0)
    assert "PRIVATE" not in repr(sync)


def test_defaults_and_no_sync_table(tmp_path: Path) -> None:
    sync = load_config(config_with(tmp_path, base())).sync
    assert sync is not None
    assert (sync.broker_port, sync.tls, sync.heartbeat_interval_s) == (1883, False, 30.0)
    assert (sync.reconnect_min_s, sync.reconnect_max_s, sync.ack_timeout_s) == (0.5, 3.0, 5.0)
    other = tmp_path / "other"
    other.mkdir()
    assert load_config(write_config(other, doors=FAKE)).sync is None


def test_the_private_key_is_not_read_without_the_secrets(tmp_path: Path) -> None:
    path = config_with(tmp_path, base(), key=False)
    sync = load_config(path, read_secret=False).sync
    assert sync is not None
    assert sync.signer is None
    with pytest.raises(KioskConfigError, match=r"sync\.private_key_file: cannot read"):
        load_config(path)


@pytest.mark.parametrize(
    ("sync", "message"),
    [
        (base(broker_url=""), r"sync\.broker_url is required"),
        (base(broker_url='"http://broker"'), r"sync\.broker_url: expected mqtt://"),
        (base(broker_url='"mqtt://broker:99999"'), r"sync\.broker_url: Port out of range"),
        (base(broker_url='"mqtt://broker/path"'), r"sync\.broker_url: only a scheme"),
        (base(cloud_public_key='"not-base64!"'), r"sync\.cloud_public_key: not an Ed25519"),
        (base(cloud_public_key=""), r"sync\.cloud_public_key is required"),
        (base(private_key_file=""), r"sync\.private_key_file is required"),
        (base(private_key_file='"missing.pem"'), r"sync\.private_key_file: cannot read"),
        (base() + '\nca_file = "ca.pem"', r"sync\.ca_file: only used with an mqtts://"),
        (base() + "\nheartbeat_interval_s = 0", r"sync\.heartbeat_interval_s: expected a pos"),
        (base() + '\nack_timeout_s = "5"', r"sync\.ack_timeout_s: expected a positive"),
        (base() + "\nkeepalive_s = 1", r"sync\.keepalive_s: expected a whole number"),
        (base() + "\nkeepalive_s = 30.5", r"sync\.keepalive_s: expected a whole number"),
        (base() + "\nreconnect_max_s = 0.1", r"sync\.reconnect_max_s: must be at least"),
        (base() + "\nbroker = 1", r"sync\.broker: unknown key"),
    ],
)
def test_a_bad_sync_key_is_named(tmp_path: Path, sync: str, message: str) -> None:
    with pytest.raises(KioskConfigError, match=message):
        load_config(config_with(tmp_path, sync))


def test_a_private_key_that_is_not_ed25519_is_named(tmp_path: Path) -> None:
    path = config_with(tmp_path, base())
    (tmp_path / "kiosk-key.pem").write_text("-----BEGIN PRIVATE KEY-----\nnope\n")
    with pytest.raises(KioskConfigError, match=r"sync\.private_key_file: not a usable"):
        load_config(path)


def test_check_config_names_the_broker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kiosk import cli

    path = config_with(tmp_path, base(broker_url='"mqtts://broker.example.net"'))
    assert cli.main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "sync: mqtts://broker.example.net:8883, kiosk key" in out


def test_a_broker_url_with_a_user_and_password_loads(tmp_path: Path) -> None:
    path = config_with(tmp_path, base(broker_url='"mqtts://kiosk-7:p%40ss%3Aword@broker:8884"'))

    sync = load_config(path).sync

    assert sync is not None
    assert (sync.broker_host, sync.broker_port, sync.tls) == ("broker", 8884, True)
    assert (sync.username, sync.password) == ("kiosk-7", "p@ss:word")
    assert "p@ss" not in repr(sync)


def test_the_password_can_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "broker-password").write_text("s3cret\n")
    path = config_with(
        tmp_path,
        base(broker_url='"mqtts://kiosk-7@broker"') + '\npassword_file = "broker-password"',
    )

    sync = load_config(path).sync

    assert sync is not None
    assert (sync.username, sync.password) == ("kiosk-7", "s3cret")
    unread = load_config(path, read_secret=False).sync
    assert unread is not None
    assert unread.password is None


def test_a_client_certificate_that_does_not_load_stops_the_kiosk_at_boot(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "cert-key.pem").write_text("not a key")
    path = config_with(
        tmp_path,
        base(broker_url='"mqtts://broker"')
        + '\nclient_cert_file = "cert.pem"\nclient_key_file = "cert-key.pem"',
    )

    with pytest.raises(KioskConfigError, match=r"sync\.client_cert_file: "):
        load_config(path)
    sync = load_config(path, read_secret=False).sync
    assert sync is not None
    assert sync.client_cert_file == tmp_path / "cert.pem"


@pytest.mark.parametrize(
    ("sync", "message"),
    [
        (base() + '\nclient_cert_file = "c.pem"\nclient_key_file = "k.pem"', r"only used with"),
        (base(broker_url='"mqtts://b"') + '\nclient_cert_file = "c.pem"', r"client_key_file: "),
        (base(broker_url='"mqtts://b"') + '\nclient_key_file = "k.pem"', r"client_cert_file: "),
        (base(broker_url='"mqtts://b"') + '\npassword_file = "p"', r"password_file: needs a user"),
        (base(broker_url='"mqtts://u:p@b"') + '\npassword_file = "p"', r"password_file: needs"),
        (base(broker_url='"mqtts://:p@b"'), r"broker_url: a password needs a user name"),
    ],
)
def test_inconsistent_broker_credentials_are_named(tmp_path: Path, sync: str, message: str) -> None:
    with pytest.raises(KioskConfigError, match=message):
        load_config(config_with(tmp_path, sync), read_secret=False)


def test_check_config_loads_the_broker_certificate_and_never_prints_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cloud.fleet_ca import FleetCa
    from kiosk import cli

    now = datetime.now(UTC)
    ca = FleetCa.create(tmp_path / "ca", name="fleet", now=now)
    ca.issue_kiosk(kiosk_id="kiosk-7", location_id="loc-7", out=tmp_path, now=now)
    path = config_with(
        tmp_path,
        base(broker_url='"mqtts://kiosk-7:hunter2@broker.example.net"')
        + f'\nca_file = "{ca.cert_file}"\nclient_cert_file = "kiosk-cert.pem"'
        + '\nclient_key_file = "kiosk-cert-key.pem"',
    )

    assert cli.main(["check-config", "--config", str(path)]) == 0

    out = capsys.readouterr().out
    assert f"client certificate {tmp_path / 'kiosk-cert.pem'} loaded" in out
    assert "user 'kiosk-7' with a password" in out
    assert "hunter2" not in out
    sync = load_config(path).sync
    assert sync is not None
    tls = sync.client_tls()
    assert tls is not None
    assert tls.context().verify_mode == ssl.CERT_REQUIRED


# Issue 13: a broker cluster's other nodes


def test_the_broker_clusters_other_nodes_load_as_an_array_or_a_comma_list(
    tmp_path: Path,
) -> None:
    array = config_with(tmp_path, base(broker_urls='["mqtt://b2:1884", "mqtt://b3"]'))
    sync = load_config(array).sync
    assert sync is not None
    assert sync.brokers == (("broker.example.net", 1883), ("b2", 1884), ("b3", 1883))
    (tmp_path / "comma").mkdir()
    comma = config_with(tmp_path / "comma", base(broker_urls='"mqtt://b2:1884,mqtt://b3"'))
    from_comma = load_config(comma).sync
    assert from_comma is not None
    assert from_comma.brokers == sync.brokers


@pytest.mark.parametrize(
    ("urls", "message"),
    [
        ('["mqtts://b2"]', "broker_url's scheme"),
        ('["mqtt://broker.example.net:1883"]', "broker_url's broker again"),
        ("7", "a list of broker URLs"),
        ('["ftp://b2"]', "expected mqtt://"),
    ],
)
def test_a_bad_broker_list_is_named(tmp_path: Path, urls: str, message: str) -> None:
    with pytest.raises(KioskConfigError, match=rf"sync\.broker_urls.*{message}"):
        load_config(config_with(tmp_path, base(broker_urls=urls)))


def test_the_broker_cluster_connection_settings_load_and_default_to_the_single_broker_ones(
    tmp_path: Path,
) -> None:
    """Issue 13: ``subscription_qos`` and ``connect_timeout_s`` (what provisioning writes for a
    NATS cluster); a kiosk without them keeps QoS 1 and 10 s."""
    sync = load_config(
        config_with(tmp_path, base(subscription_qos="0", connect_timeout_s="2.0"))
    ).sync
    assert sync is not None
    assert (sync.subscription_qos, sync.connect_timeout_s) == (0, 2.0)
    (tmp_path / "plain").mkdir()
    plain = load_config(config_with(tmp_path / "plain", base())).sync
    assert plain is not None
    assert (plain.subscription_qos, plain.connect_timeout_s) == (1, 10.0)


@pytest.mark.parametrize(
    ("sync", "message"),
    [
        ("subscription_qos = 2", r"sync\.subscription_qos.*expected 0 or 1, got 2"),
        ('subscription_qos = "0"', r"sync\.subscription_qos.*expected 0 or 1"),
        ("connect_timeout_s = 0", r"sync\.connect_timeout_s"),
    ],
)
def test_bad_broker_cluster_connection_settings_are_named(
    tmp_path: Path, sync: str, message: str
) -> None:
    with pytest.raises(KioskConfigError, match=message):
        load_config(config_with(tmp_path, base() + "\n" + sync))
