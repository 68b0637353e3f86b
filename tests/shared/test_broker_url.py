"""Broker URLs with credentials, and the TLS files of a client certificate."""

from __future__ import annotations

import pytest

from shared.broker_url import BrokerUrl, BrokerUrlError, ClientTls, parse_broker_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://broker", BrokerUrl("broker", 1883, False)),
        ("mqtts://broker", BrokerUrl("broker", 8883, True)),
        ("mqtts://broker:18883/", BrokerUrl("broker", 18883, True)),
        ("mqtts://user:pass@host", BrokerUrl("host", 8883, True, "user", "pass")),
        ("mqtt://user@host:1884", BrokerUrl("host", 1884, False, "user", None)),
        ("mqtts://u%40x:p%2F%3A@host", BrokerUrl("host", 8883, True, "u@x", "p/:")),
        ("mqtts://user:@host", BrokerUrl("host", 8883, True, "user", "")),
    ],
)
def test_broker_urls_parse_with_their_credentials(url: str, expected: BrokerUrl) -> None:
    parsed = parse_broker_url(url)

    assert parsed == expected
    assert parsed.password == expected.password


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://broker", "expected mqtt://"),
        ("mqtt://", "expected mqtt://"),
        ("mqtt://broker:99999", "Port out of range"),
        ("mqtt://broker/path", "only a scheme"),
        ("mqtt://broker?x=1", "only a scheme"),
        ("mqtts://:secret@broker", "a password needs a user name"),
    ],
)
def test_bad_broker_urls_are_refused_with_a_reason(url: str, message: str) -> None:
    with pytest.raises(BrokerUrlError, match=message):
        parse_broker_url(url)


def test_a_password_never_shows_in_a_repr_or_an_error() -> None:
    assert "hunter2" not in repr(parse_broker_url("mqtts://me:hunter2@broker"))
    with pytest.raises(BrokerUrlError) as refused:
        parse_broker_url("mqtts://me:hunter2@broker/path")
    assert "hunter2" not in str(refused.value)
    assert "me:***@broker" in str(refused.value)


def test_a_client_certificate_needs_its_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="needs its key"):
        ClientTls(cert_file=tmp_path / "cert.pem")
    with pytest.raises(ValueError, match="needs its key"):
        ClientTls(key_file=tmp_path / "key.pem")
