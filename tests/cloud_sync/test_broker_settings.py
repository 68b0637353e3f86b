"""The worker's broker credentials from LOCKER_* settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cloud.config import CloudSettings
from cloud.sync.worker import BrokerAddress
from shared.broker_url import ClientTls


def test_a_broker_url_with_a_user_and_password_is_a_valid_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCKER_MQTT_URL", "mqtts://worker-1:pa%24%24@broker.example.net:8884")

    settings = CloudSettings()
    assert settings.mqtt_url is not None
    broker = BrokerAddress.from_url(settings.mqtt_url, settings.mqtt_client_tls())

    assert (broker.host, broker.port, broker.tls) == ("broker.example.net", 8884, True)
    assert (broker.username, broker.password) == ("worker-1", "pa$$")
    assert "pa$$" not in repr(broker)


def test_the_client_certificate_settings_reach_the_broker_address(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOCKER_MQTT_URL", "mqtts://broker")
    monkeypatch.setenv("LOCKER_MQTT_CA_FILE", str(tmp_path / "ca.pem"))
    monkeypatch.setenv("LOCKER_MQTT_CERT_FILE", str(tmp_path / "worker.pem"))
    monkeypatch.setenv("LOCKER_MQTT_KEY_FILE", str(tmp_path / "worker-key.pem"))

    settings = CloudSettings()
    assert settings.mqtt_url is not None
    broker = BrokerAddress.from_url(settings.mqtt_url, settings.mqtt_client_tls())

    assert broker.client_tls == ClientTls(
        tmp_path / "ca.pem", tmp_path / "worker.pem", tmp_path / "worker-key.pem"
    )


def test_tls_files_with_a_plain_broker_url_are_refused() -> None:
    with pytest.raises(ValueError, match="needs an mqtts://"):
        BrokerAddress.from_url("mqtt://broker", ClientTls(ca_file=Path("ca.pem")))


def test_a_certificate_without_its_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKER_MQTT_CERT_FILE", "worker.pem")

    with pytest.raises(ValueError, match="needs its key"):
        CloudSettings().mqtt_client_tls()


def test_a_broker_url_with_a_path_is_not_a_valid_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCKER_MQTT_URL", "mqtts://user:pass@broker/path")

    with pytest.raises(ValidationError):
        CloudSettings()


def test_a_broker_clusters_nodes_are_a_comma_list_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 13: the worker fails over between a cluster's nodes."""
    monkeypatch.setenv("LOCKER_MQTT_URL", "mqtt://b1:1884,mqtt://b2, mqtt://b3:1886")

    settings = CloudSettings()
    assert settings.mqtt_url is not None
    brokers = BrokerAddress.list_from_urls(settings.mqtt_url)

    assert [(b.host, b.port) for b in brokers] == [("b1", 1884), ("b2", 1883), ("b3", 1886)]


def test_a_broker_list_mixing_schemes_is_refused() -> None:
    with pytest.raises(ValueError, match="same scheme"):
        BrokerAddress.list_from_urls("mqtt://b1,mqtts://b2")


def test_the_share_group_is_a_setting_and_a_topic_level_in_it_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second cloud (a parallel test run) on the same broker takes a group of its own."""
    assert CloudSettings().mqtt_share_group == "locker-cloud"
    monkeypatch.setenv("LOCKER_MQTT_SHARE_GROUP", "staging-2")
    assert CloudSettings().mqtt_share_group == "staging-2"

    # A '/', '+' or '#' would change which topics the worker subscribes to.
    for bad in ("a/b", "cloud+", "#", ""):
        monkeypatch.setenv("LOCKER_MQTT_SHARE_GROUP", bad)
        with pytest.raises(ValidationError, match="mqtt_share_group"):
            CloudSettings()
