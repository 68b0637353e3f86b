"""The fleet CA: certificates an identity each, private keys private, revocations in the CRL."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cloud.ca_cli import COMMANDS
from cloud.cli import main
from cloud.fleet_ca import CRL_LIFETIME, FleetCa, FleetCaError, Role

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def ca(tmp_path: Path) -> FleetCa:
    return FleetCa.create(tmp_path / "ca", name="test fleet", now=NOW)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def crl(ca: FleetCa) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl(ca.crl_file.read_bytes())


def test_a_kiosk_certificate_names_the_kiosk_and_is_signed_by_the_ca(
    ca: FleetCa, tmp_path: Path
) -> None:
    files = ca.issue_kiosk(kiosk_id="kiosk-1", location_id="loc-1", out=tmp_path / "k", now=NOW)

    certificate = load(files.cert_file)
    [cn] = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert cn.value == "kiosk-1"
    certificate.verify_directly_issued_by(ca.certificate)
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert stat.S_IMODE(files.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((ca.folder / "ca-key.pem").stat().st_mode) == 0o600
    [issued] = ca.issued()
    assert (issued.identity, issued.role, issued.location_id) == ("kiosk-1", Role.KIOSK, "loc-1")
    assert issued.serial == certificate.serial_number


def test_a_broker_certificate_carries_its_host_names_and_addresses(
    ca: FleetCa, tmp_path: Path
) -> None:
    files = ca.issue_broker(hosts=["broker.example", "10.0.0.5"], out=tmp_path, now=NOW)

    names = load(files.cert_file).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.DNSName) == ["broker.example"]
    assert [str(a) for a in names.value.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    assert ca.identities(NOW) == []  # a broker is not a client the ACL knows


def test_revoking_an_identity_puts_every_one_of_its_certificates_in_the_crl(
    ca: FleetCa, tmp_path: Path
) -> None:
    first = ca.issue_kiosk(kiosk_id="k", location_id="loc", out=tmp_path / "1", now=NOW)
    second = ca.rotate("k", out=tmp_path / "2", now=NOW)
    other = ca.issue_worker(name="worker-1", out=tmp_path / "w", now=NOW)
    assert crl(ca).get_revoked_certificate_by_serial_number(first.certificate.serial) is None

    revoked = ca.revoke(identity="k", now=NOW)

    assert {c.serial for c in revoked} == {first.certificate.serial, second.certificate.serial}
    listed = crl(ca)
    assert listed.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    assert listed.get_revoked_certificate_by_serial_number(first.certificate.serial)
    assert listed.get_revoked_certificate_by_serial_number(second.certificate.serial)
    assert listed.get_revoked_certificate_by_serial_number(other.certificate.serial) is None
    assert [c.identity for c in ca.identities(NOW)] == ["worker-1"]


def test_rotation_keeps_the_identity_role_and_location_with_a_new_key(
    ca: FleetCa, tmp_path: Path
) -> None:
    old = ca.issue_kiosk(kiosk_id="k", location_id="loc", out=tmp_path / "1", now=NOW)

    new = ca.rotate("k", out=tmp_path / "2", now=NOW + timedelta(days=1))

    assert new.certificate.serial != old.certificate.serial
    assert (new.certificate.role, new.certificate.location_id) == (Role.KIOSK, "loc")
    assert load(new.cert_file).public_key() != load(old.cert_file).public_key()
    assert {c.serial for c in ca.identities(NOW)} == {
        old.certificate.serial,
        new.certificate.serial,
    }


def test_the_crl_is_refreshed_with_a_new_next_update(ca: FleetCa) -> None:
    later = NOW + timedelta(days=20)

    ca.refresh_crl(later)

    assert crl(ca).next_update_utc == later + CRL_LIFETIME


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda ca, out: ca.issue_kiosk(kiosk_id="a b", location_id="l", out=out, now=NOW), "1-64"),
        (lambda ca, out: ca.issue_worker(name="kiosk-1", out=out, now=NOW), "identity of a kiosk"),
        (lambda ca, out: ca.rotate("nobody", out=out, now=NOW), "no certificate was issued"),
        (lambda ca, out: ca.revoke(now=NOW, serial=1), "no certificate with serial"),
        (lambda ca, out: ca.revoke(now=NOW), "one serial or one identity"),
    ],
)
def test_bad_ca_requests_are_refused_with_a_reason(
    ca: FleetCa,
    tmp_path: Path,
    action,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    ca.issue_kiosk(kiosk_id="kiosk-1", location_id="loc", out=tmp_path / "k", now=NOW)
    before = ca.issued()

    with pytest.raises(FleetCaError, match=message):
        action(ca, tmp_path / "out")

    assert ca.issued() == before


def test_a_ca_is_not_created_twice_nor_opened_where_there_is_none(
    ca: FleetCa, tmp_path: Path
) -> None:
    with pytest.raises(FleetCaError, match="already holds"):
        FleetCa.create(ca.folder, name="again", now=NOW)
    with pytest.raises(FleetCaError, match="holds no fleet CA"):
        FleetCa(tmp_path / "empty")


def test_the_ca_commands_issue_revoke_and_generate_the_broker_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca_dir = str(tmp_path / "ca")
    assert main(["ca-init", "--ca", ca_dir]) == 0
    assert main(["ca-issue-kiosk", "--ca", ca_dir, "--kiosk", "k1", "--location", "l1",
                 "--out", str(tmp_path / "k1")]) == 0  # fmt: skip
    assert main(["ca-issue-worker", "--ca", ca_dir, "--name", "w1", "--out", str(tmp_path)]) == 0
    assert main(["ca-issue-broker", "--ca", ca_dir, "--host", "localhost", "--out",
                 str(tmp_path / "b")]) == 0  # fmt: skip
    assert (
        main(["ca-rotate", "--ca", ca_dir, "--identity", "k1", "--out", str(tmp_path / "k1b")]) == 0
    )
    assert main(["ca-revoke", "--ca", ca_dir, "--identity", "w1"]) == 0
    assert main(["ca-refresh-crl", "--ca", ca_dir]) == 0
    assert main(["mosquitto-config", "--ca", ca_dir, "--out", str(tmp_path / "broker"),
                 "--broker-cert", str(tmp_path / "b" / "broker-cert.pem"),
                 "--broker-key", str(tmp_path / "b" / "broker-cert-key.pem")]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["ca-list", "--ca", ca_dir]) == 0
    listing = capsys.readouterr().out

    assert listing.count("kiosk k1 at l1") == 2
    assert "worker w1" in listing
    assert "revoked" in listing
    config = (tmp_path / "broker" / "mosquitto.conf").read_text()
    assert "require_certificate true" in config
    assert "allow_anonymous false" in config
    security = (tmp_path / "broker" / "dynamic-security.json").read_text()
    assert '"username": "k1"' in security
    assert '"username": "w1"' not in security  # revoked: no rights even before the CRL
    assert main(["ca-revoke", "--ca", ca_dir, "--serial", "12345"]) == 2
    assert "ca-list" in COMMANDS
