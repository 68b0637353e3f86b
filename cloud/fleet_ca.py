"""The fleet's certificate authority: who may connect to the broker, and as whom.

Every client of the fleet broker (``deploy/mosquitto/``) shows a certificate of this CA; the
broker takes its common name as the MQTT user name (``use_identity_as_username``) and as its
client id (``use_username_as_clientid``), so a certificate is an identity: a kiosk's CN is its
kiosk id, a cloud worker's a name of its own. The broker's ACL is generated from the same record
(`FleetCa.identities`), and revoked certificates go into the CRL the broker checks.

The CA is a folder, kept on the operator's machine (never on a kiosk):

- ``ca-key.pem``: the CA's private key (mode 0600);
- ``ca-cert.pem``: its self-signed certificate, which the broker and every client trust;
- ``crl.pem``: the revocation list, re-signed at every revocation (and by `FleetCa.refresh_crl`,
  before ``CRL_LIFETIME`` runs out: OpenSSL refuses every client once the CRL is past its
  next update);
- ``issued.json``: every certificate issued (serial, identity, role, location, expiry, revocation);
- ``ca-bundle.pem``: the certificates to trust: the CA's, and during a CA rotation (`rotate_ca`)
  the previous CA's too, whose key and certificate wait in ``previous/`` until
  `retire_previous`; ``crl.pem`` then holds both CAs' CRLs (OpenSSL checks each chain against
  its own issuer's).

Keys are ECDSA P-256: every TLS stack (Mosquitto's OpenSSL, Python's ssl, embedded clients)
speaks it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_KEY_FILE = "ca-key.pem"
CA_CERT_FILE = "ca-cert.pem"
CRL_FILE = "crl.pem"
INDEX_FILE = "issued.json"
BUNDLE_FILE = "ca-bundle.pem"
PREVIOUS_DIR = "previous"

CA_LIFETIME = timedelta(days=3650)
CLIENT_LIFETIME = timedelta(days=365)
CRL_LIFETIME = timedelta(days=30)
_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class FleetCaError(Exception):
    """The CA folder is missing or already there, an identity is bad, or a serial unknown."""


class Role(StrEnum):
    KIOSK = "kiosk"
    WORKER = "worker"
    BROKER = "broker"
    # Issue 9: the identity that changes the broker's ACL live ($CONTROL/dynamic-security/v1).
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """One line of ``issued.json``."""

    serial: int
    identity: str
    role: Role
    location_id: str | None
    not_after: datetime
    revoked_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.not_after > now


@dataclass(frozen=True, slots=True)
class IssuedFiles:
    """A certificate and its key as written: ``cert_file`` and ``key_file`` (mode 0600)."""

    certificate: IssuedCertificate
    cert_file: Path
    key_file: Path


class FleetCa:
    """The CA in ``folder``. Create one with `FleetCa.create`; open one with the constructor."""

    def __init__(self, folder: Path) -> None:
        """Opens the CA in ``folder``.

        Raises:
            FleetCaError: the folder holds no CA.
        """
        self.folder = folder
        if not (folder / CA_KEY_FILE).exists() or not (folder / CA_CERT_FILE).exists():
            raise FleetCaError(
                f"{folder} holds no fleet CA (create it with `locker-cloud ca init`)"
            )
        key = serialization.load_pem_private_key((folder / CA_KEY_FILE).read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise FleetCaError(f"{folder / CA_KEY_FILE} is not an EC key")
        self._key = key
        self.certificate = x509.load_pem_x509_certificate((folder / CA_CERT_FILE).read_bytes())

    @property
    def cert_file(self) -> Path:
        return self.folder / CA_CERT_FILE

    @property
    def crl_file(self) -> Path:
        return self.folder / CRL_FILE

    @property
    def bundle_file(self) -> Path:
        """What the broker and the clients trust: the CA, and the previous one in a rotation
        (a CA made before rotations existed has no bundle: its certificate is the bundle)."""
        bundle = self.folder / BUNDLE_FILE
        return bundle if bundle.exists() else self.cert_file

    @property
    def rotating(self) -> bool:
        """A previous CA is still trusted (between `rotate_ca` and `retire_previous`)."""
        return (self.folder / PREVIOUS_DIR / CA_KEY_FILE).exists()

    def rotate_ca(self, *, name: str, now: datetime) -> None:
        """Makes a new CA certificate and key; the current ones become the previous CA, still
        trusted (in `bundle_file`, its CRL in ``crl.pem``) until `retire_previous`.

        Steps for the operator (deploy/mosquitto/README.md): deliver the bundle to the broker
        and every client, re-issue every certificate (`reissue_all`, and the broker's with
        `issue_broker`), deliver them, then `retire_previous`.

        Raises:
            FleetCaError: a rotation is already under way (retire the previous CA first).
        """
        if self.rotating:
            raise FleetCaError("a CA rotation is under way: retire the previous CA first")
        current = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if current and current[0].value == name:
            # Two trusted CAs of one name: OpenSSL finds issuers and CRLs by name.
            raise FleetCaError(f"the new CA needs another name than the current {name!r}")
        previous = self.folder / PREVIOUS_DIR
        previous.mkdir(exist_ok=True)
        key, certificate = _new_ca(name, now)
        write_private(previous / CA_KEY_FILE, (self.folder / CA_KEY_FILE).read_bytes())
        _write_atomically(previous / CA_CERT_FILE, (self.folder / CA_CERT_FILE).read_bytes())
        write_private(self.folder / CA_KEY_FILE, _private_pem(key))
        _write_atomically(
            self.folder / CA_CERT_FILE, certificate.public_bytes(serialization.Encoding.PEM)
        )
        self._key, self.certificate = key, certificate
        self.refresh_crl(now)
        self._write_bundle()

    def reissue_all(self, *, out: Path, now: datetime) -> list[IssuedFiles]:
        """A certificate under the current CA for every live kiosk, worker and admin identity,
        each written into ``out/<identity>/``. The broker's is re-issued with `issue_broker`
        (its host names are not recorded here)."""
        latest: dict[str, IssuedCertificate] = {}
        for certificate in self.identities(now):
            latest[certificate.identity] = certificate
        return [self.rotate(identity, out=out / identity, now=now) for identity in latest]

    def retire_previous(self, now: datetime) -> None:
        """Stops trusting the previous CA: its key is deleted, the bundle and the CRL hold the
        current CA only, so certificates it issued are refused once the broker and clients
        have the new bundle.

        Raises:
            FleetCaError: no rotation is under way.
        """
        if not self.rotating:
            raise FleetCaError("no previous CA to retire")
        previous = self.folder / PREVIOUS_DIR
        (previous / CA_KEY_FILE).unlink()
        (previous / CA_CERT_FILE).unlink()
        previous.rmdir()
        self.refresh_crl(now)
        self._write_bundle()

    def _write_bundle(self) -> None:
        parts = [(self.folder / CA_CERT_FILE).read_bytes()]
        if self.rotating:
            parts.append((self.folder / PREVIOUS_DIR / CA_CERT_FILE).read_bytes())
        _write_atomically(self.folder / BUNDLE_FILE, b"".join(parts))

    @classmethod
    def create(cls, folder: Path, *, name: str, now: datetime) -> FleetCa:
        """Creates a CA named ``name`` (its certificate's CN) in ``folder``, with an empty CRL.

        Raises:
            FleetCaError: the folder already holds a CA.
        """
        if (folder / CA_KEY_FILE).exists():
            raise FleetCaError(f"{folder} already holds a fleet CA")
        folder.mkdir(parents=True, exist_ok=True)
        key, certificate = _new_ca(name, now)
        write_private(folder / CA_KEY_FILE, _private_pem(key))
        (folder / CA_CERT_FILE).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        _write_index(folder, [])
        ca = cls(folder)
        ca.refresh_crl(now)
        ca._write_bundle()
        return ca

    def issued(self) -> list[IssuedCertificate]:
        """Every certificate issued, oldest first."""
        raw = json.loads((self.folder / INDEX_FILE).read_text(encoding="utf-8"))
        return [
            IssuedCertificate(
                serial=int(item["serial"]),
                identity=item["identity"],
                role=Role(item["role"]),
                location_id=item["location_id"],
                not_after=datetime.fromisoformat(item["not_after"]),
                revoked_at=(
                    datetime.fromisoformat(item["revoked_at"]) if item["revoked_at"] else None
                ),
            )
            for item in raw
        ]

    def identities(self, now: datetime) -> list[IssuedCertificate]:
        """The live certificates (unrevoked, unexpired) of kiosks and workers: who the broker
        lets in, and what its ACL is made of."""
        return [c for c in self.issued() if c.live(now) and c.role is not Role.BROKER]

    def issue_kiosk(
        self, *, kiosk_id: str, location_id: str, out: Path, now: datetime
    ) -> IssuedFiles:
        """A kiosk's client certificate (CN = kiosk id), written as ``kiosk-cert.pem`` and
        ``kiosk-cert-key.pem`` into ``out``.

        Raises:
            FleetCaError: a bad id, or the id is another role's identity.
        """
        _check_id(location_id, "location id")
        return self._issue(Role.KIOSK, kiosk_id, location_id, out, "kiosk-cert", now)

    def issue_worker(self, *, name: str, out: Path, now: datetime) -> IssuedFiles:
        """A cloud worker's client certificate (CN = ``name``): ``worker-cert.pem`` and
        ``worker-cert-key.pem`` in ``out``. Each worker needs a name of its own: the broker
        makes the CN the client id, and a second connection with one id ends the first.

        Raises:
            FleetCaError: a bad name, or the name is another role's identity.
        """
        return self._issue(Role.WORKER, name, None, out, "worker-cert", now)

    def issue_admin(self, *, name: str, out: Path, now: datetime) -> IssuedFiles:
        """The broker administrator's client certificate (CN = ``name``): ``admin-cert.pem``
        and ``admin-cert-key.pem`` in ``out``. Its only right is the dynamic-security plugin's
        control topic (`cloud.broker_acl`); keep it with the CA, never on a kiosk or worker.

        Raises:
            FleetCaError: a bad name, or the name is another role's identity.
        """
        return self._issue(Role.ADMIN, name, None, out, "admin-cert", now)

    def issue_broker(self, *, hosts: list[str], out: Path, now: datetime) -> IssuedFiles:
        """The broker's server certificate for ``hosts`` (DNS names or IP addresses, the first
        is the CN): ``broker-cert.pem`` and ``broker-cert-key.pem`` in ``out``.

        Raises:
            FleetCaError: no host given.
        """
        if not hosts:
            raise FleetCaError("a broker certificate needs at least one host name or address")
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        return self._issue(Role.BROKER, hosts[0], None, out, "broker-cert", now, names)

    def rotate(self, identity: str, *, out: Path, now: datetime) -> IssuedFiles:
        """A new certificate and key for an identity already issued, with the same role and
        location. The old certificates stay valid until revoked (`revoke`) or expired, so the
        new files can reach the kiosk before the old ones stop working.

        Raises:
            FleetCaError: nothing was ever issued to ``identity``.
        """
        previous = [c for c in self.issued() if c.identity == identity]
        if not previous:
            raise FleetCaError(f"no certificate was issued to {identity!r}")
        last = previous[-1]
        stem = {
            Role.KIOSK: "kiosk-cert",
            Role.WORKER: "worker-cert",
            Role.BROKER: "broker-cert",
            Role.ADMIN: "admin-cert",
        }
        if last.role is Role.BROKER:
            raise FleetCaError("rotate a broker certificate with `ca issue-broker`")
        return self._issue(last.role, identity, last.location_id, out, stem[last.role], now)

    def revoke(
        self, *, now: datetime, serial: int | None = None, identity: str | None = None
    ) -> list[IssuedCertificate]:
        """Revokes one certificate (``serial``) or every one of an identity, and re-signs the
        CRL. A broker reading the CRL (it reads it at start and on SIGHUP) refuses them.

        Returns:
            The certificates revoked now (already revoked ones are left as they were).

        Raises:
            FleetCaError: neither or both given, or nothing matches.
        """
        if (serial is None) == (identity is None):
            raise FleetCaError("revoke one serial or one identity")
        issued = self.issued()
        matching = [c for c in issued if c.serial == serial or c.identity == identity]
        if not matching:
            raise FleetCaError(f"no certificate with serial {serial} / identity {identity!r}")
        revoked = [replace(c, revoked_at=now) for c in matching if c.revoked_at is None]
        by_serial = {c.serial: c for c in revoked}
        _write_index(self.folder, [by_serial.get(c.serial, c) for c in issued])
        self.refresh_crl(now)
        return revoked

    def refresh_crl(self, now: datetime) -> None:
        """Re-signs ``crl.pem`` with every revoked certificate and a next update of
        ``CRL_LIFETIME`` from now."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - timedelta(minutes=5))
            .next_update(now + CRL_LIFETIME)
        )
        for certificate in self.issued():
            if certificate.revoked_at is not None:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(certificate.serial)
                    .revocation_date(certificate.revoked_at)
                    .build()
                )
        crl = builder.sign(self._key, hashes.SHA256())
        pem = crl.public_bytes(serialization.Encoding.PEM)
        if self.rotating:
            # The previous CA's certificates are still accepted: OpenSSL's CRL check needs a
            # current CRL from their issuer too. Same revoked serials (they are random).
            previous = self.folder / PREVIOUS_DIR
            old_key = serialization.load_pem_private_key(
                (previous / CA_KEY_FILE).read_bytes(), None
            )
            assert isinstance(old_key, ec.EllipticCurvePrivateKey)
            old_cert = x509.load_pem_x509_certificate((previous / CA_CERT_FILE).read_bytes())
            old_crl = (
                x509.CertificateRevocationListBuilder()
                .issuer_name(old_cert.subject)
                .last_update(now - timedelta(minutes=5))
                .next_update(now + CRL_LIFETIME)
            )
            for revoked in crl:
                old_crl = old_crl.add_revoked_certificate(revoked)
            pem += old_crl.sign(old_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        _write_atomically(self.crl_file, pem)

    def _issue(
        self,
        role: Role,
        identity: str,
        location_id: str | None,
        out: Path,
        stem: str,
        now: datetime,
        alt_names: list[x509.GeneralName] | None = None,
    ) -> IssuedFiles:
        if role is not Role.BROKER:
            _check_id(identity, f"{role} identity")
            other = {c.role for c in self.issued() if c.identity == identity} - {role}
            if other:
                raise FleetCaError(f"{identity!r} is already the identity of a {other.pop()}")
        key = ec.generate_private_key(ec.SECP256R1())
        usage = (
            ExtendedKeyUsageOID.SERVER_AUTH
            if role is Role.BROKER
            else (ExtendedKeyUsageOID.CLIENT_AUTH)
        )
        serial = x509.random_serial_number()
        not_after = now + CLIENT_LIFETIME
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), False
            )
        )
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), False)
        certificate = builder.sign(self._key, hashes.SHA256())
        out.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = out / f"{stem}.pem", out / f"{stem}-key.pem"
        write_private(key_file, _private_pem(key))
        _write_atomically(cert_file, certificate.public_bytes(serialization.Encoding.PEM))
        record = IssuedCertificate(serial, identity, role, location_id, not_after)
        _write_index(self.folder, [*self.issued(), record])
        return IssuedFiles(record, cert_file, key_file)


def _new_ca(name: str, now: datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new CA key and its self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _check_id(value: str, what: str) -> None:
    if not _ID.match(value):
        raise FleetCaError(f"a {what} is 1-64 of A-Z a-z 0-9 . _ -, got {value!r}")


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private(path: Path, data: bytes) -> None:
    """Writes a secret file readable by its owner only (0600 from the first byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


def _write_atomically(path: Path, data: bytes) -> None:
    # The broker may re-read the CRL at any moment (SIGHUP): it must never see half a file.
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def _write_index(folder: Path, issued: list[IssuedCertificate]) -> None:
    rows = []
    for certificate in issued:
        row = asdict(certificate)
        row["serial"] = str(certificate.serial)  # beyond a double's precision
        row["not_after"] = certificate.not_after.isoformat()
        row["revoked_at"] = certificate.revoked_at.isoformat() if certificate.revoked_at else None
        rows.append(row)
    _write_atomically(folder / INDEX_FILE, (json.dumps(rows, indent=2) + "\n").encode())
