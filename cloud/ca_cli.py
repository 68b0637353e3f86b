"""``locker-cloud ca-*`` and ``mosquitto-config``: the fleet CA and the broker's configuration.

Each command is a thin layer over `cloud.fleet_ca` and `cloud.broker_config`; the CA folder is
``--ca DIR`` or ``LOCKER_FLEET_CA_DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
from cryptography import x509
from cryptography.x509.oid import NameOID

from cloud import broker_config
from cloud.broker_acl import BrokerAclError, apply_acl
from cloud.config import CloudSettings
from cloud.fleet_ca import FleetCa, FleetCaError, IssuedFiles
from shared.broker_url import ClientTls

COMMANDS = (
    "ca-init",
    "ca-issue-kiosk",
    "ca-issue-worker",
    "ca-issue-broker",
    "ca-rotate",
    "ca-revoke",
    "ca-refresh-crl",
    "ca-list",
    "mosquitto-config",
    "ca-issue-admin",
    "broker-apply-acl",
    "ca-rotate-ca",
    "ca-reissue-all",
    "ca-retire-previous",
)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds the CA's commands to ``locker-cloud``'s sub-commands."""

    def with_ca(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text)
        parser.add_argument("--ca", help="the fleet CA's folder (default: LOCKER_FLEET_CA_DIR)")
        return parser

    p = with_ca("ca-init", "create the fleet CA (key, certificate, empty CRL)")
    p.add_argument("--name", default="locker fleet CA", help="the CA certificate's common name")
    p = with_ca("ca-issue-kiosk", "issue a kiosk's broker certificate (CN = kiosk id)")
    p.add_argument("--kiosk", required=True, help="the kiosk's id")
    p.add_argument("--location", required=True, help="the location it serves")
    p.add_argument("--out", required=True, help="folder to write the certificate and key into")
    p = with_ca("ca-issue-worker", "issue a cloud worker's broker certificate")
    p.add_argument("--name", required=True, help="the worker's identity (one per process)")
    p.add_argument("--out", required=True, help="folder to write the certificate and key into")
    p = with_ca("ca-issue-broker", "issue the broker's server certificate")
    p.add_argument(
        "--host", required=True, action="append", help="a DNS name or IP of the broker (repeat)"
    )
    p.add_argument("--out", required=True, help="folder to write the certificate and key into")
    p = with_ca("ca-rotate", "issue a new certificate for an identity (old ones stay valid)")
    p.add_argument("--identity", required=True, help="a kiosk id or worker name")
    p.add_argument("--out", required=True, help="folder to write the new certificate and key")
    p = with_ca("ca-revoke", "revoke a certificate, or every one of an identity")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--serial", type=int, help="the certificate's serial (see ca-list)")
    target.add_argument("--identity", help="a kiosk id or worker name")
    with_ca("ca-refresh-crl", "re-sign the CRL before it runs out (monthly)")
    with_ca("ca-list", "list the certificates issued")
    p = with_ca("ca-rotate-ca", "make a new CA; the current one stays trusted until retired")
    p.add_argument("--name", help="the new CA's common name (default: dated)")
    p = with_ca("ca-reissue-all", "re-issue every live client certificate under the current CA")
    p.add_argument("--out", required=True, help="folder for one sub-folder per identity")
    with_ca("ca-retire-previous", "stop trusting the previous CA (after re-issuing)")
    p = with_ca("ca-issue-admin", "issue the broker admin's certificate (live ACL changes)")
    p.add_argument("--name", default="broker-admin", help="its identity (broker-admin)")
    p.add_argument("--out", required=True, help="folder to write the certificate and key into")
    p = with_ca("broker-apply-acl", "bring a running broker's ACL level with the CA, live")
    p.add_argument("--host", required=True, help="the broker's host name (as its certificate)")
    p.add_argument("--port", type=int, default=8883, help="its TLS port (8883)")
    p.add_argument("--cert", required=True, help="the admin's certificate (ca-issue-admin)")
    p.add_argument("--key", required=True, help="the admin's private key")
    p = with_ca("mosquitto-config", "generate the fleet broker's Mosquitto configuration")
    p.add_argument("--out", required=True, help="folder to write the configuration into")
    p.add_argument("--port", type=int, default=8883, help="the TLS listener's port (8883)")
    p.add_argument("--bind", help="the listener's address (default: all)")
    p.add_argument("--broker-cert", required=True, help="the broker's certificate (PEM)")
    p.add_argument("--broker-key", required=True, help="the broker's private key (PEM)")
    p.add_argument("--user", help="the user Mosquitto runs as once started (its own default)")
    p.add_argument(
        "--plugin",
        default=str(broker_config.DYNSEC_PLUGIN),
        help="the dynamic-security plugin's path",
    )


def run(args: argparse.Namespace) -> int:
    """Runs one of `COMMANDS`; exit status 2 with a message on a CA error."""
    now = datetime.now(UTC)
    folder = args.ca or CloudSettings().fleet_ca_dir
    if not folder:
        print("locker-cloud: give --ca DIR (or set LOCKER_FLEET_CA_DIR)", file=sys.stderr)
        return 2
    try:
        if args.command == "ca-init":
            ca = FleetCa.create(Path(folder), name=args.name, now=now)
            print(f"fleet CA created in {folder}; its certificate is {ca.cert_file}")
            return 0
        ca = FleetCa(Path(folder))
        return _run(ca, args, now)
    except FleetCaError as error:
        print(f"locker-cloud: {error}", file=sys.stderr)
        return 2


def _run(ca: FleetCa, args: argparse.Namespace, now: datetime) -> int:
    if args.command == "ca-issue-kiosk":
        _print_issued(
            ca.issue_kiosk(
                kiosk_id=args.kiosk, location_id=args.location, out=Path(args.out), now=now
            )
        )
    elif args.command == "ca-issue-worker":
        _print_issued(ca.issue_worker(name=args.name, out=Path(args.out), now=now))
    elif args.command == "ca-issue-broker":
        _print_issued(ca.issue_broker(hosts=args.host, out=Path(args.out), now=now))
    elif args.command == "ca-rotate":
        _print_issued(ca.rotate(args.identity, out=Path(args.out), now=now))
        print("the previous certificates stay valid until `locker-cloud ca-revoke --serial`")
    elif args.command == "ca-revoke":
        revoked = ca.revoke(now=now, serial=args.serial, identity=args.identity)
        for certificate in revoked:
            print(f"revoked {certificate.serial} ({certificate.role} {certificate.identity})")
        print(f"CRL re-signed: {ca.crl_file}; send the broker SIGHUP to apply it")
    elif args.command == "ca-rotate-ca":
        ca.rotate_ca(name=args.name or f"locker fleet CA {now:%Y-%m-%d %H%M%S}", now=now)
        print(f"new CA in {ca.cert_file}; trust {ca.bundle_file} (both CAs) everywhere now,")
        print("then ca-reissue-all, ca-issue-broker, deliver, and ca-retire-previous")
    elif args.command == "ca-reissue-all":
        for files in ca.reissue_all(out=Path(args.out), now=now):
            _print_issued(files)
        print("re-issue the broker's certificate with ca-issue-broker too")
    elif args.command == "ca-retire-previous":
        ca.retire_previous(now)
        print(f"previous CA retired; {ca.bundle_file} and {ca.crl_file} hold the current one:")
        print("deliver the bundle, regenerate mosquitto-config and restart the broker")
    elif args.command == "ca-issue-admin":
        _print_issued(ca.issue_admin(name=args.name, out=Path(args.out), now=now))
        print("run mosquitto-config and restart the broker once, so that it knows the admin")
    elif args.command == "broker-apply-acl":
        return _apply_acl(ca, args, now)
    elif args.command == "ca-refresh-crl":
        ca.refresh_crl(now)
        print(f"CRL re-signed: {ca.crl_file}")
    elif args.command == "ca-list":
        for c in ca.issued():
            state = "revoked" if c.revoked_at else ("live" if c.live(now) else "expired")
            where = f" at {c.location_id}" if c.location_id else ""
            print(f"{c.serial} {c.role} {c.identity}{where} until {c.not_after:%Y-%m-%d} {state}")
    else:
        generated = broker_config.generate(
            ca,
            Path(args.out),
            broker_cert_file=Path(args.broker_cert),
            broker_key_file=Path(args.broker_key),
            port=args.port,
            now=now,
            bind_address=args.bind,
            user=args.user,
            plugin=Path(args.plugin),
        )
        print(
            f"wrote {generated.config_file} and {generated.security_file}"
            f" ({generated.kiosks} kiosk(s), {generated.workers} worker(s));"
            f" run: mosquitto -c {generated.config_file}"
        )
    return 0


def _apply_acl(ca: FleetCa, args: argparse.Namespace, now: datetime) -> int:
    cert = x509.load_pem_x509_certificate(Path(args.cert).read_bytes())
    admin = str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    tls = ClientTls(ca.cert_file, Path(args.cert), Path(args.key)).context()
    try:
        changes = asyncio.run(
            apply_acl(ca, now, host=args.host, port=args.port, tls_context=tls,
                      admin_identity=admin)
        )  # fmt: skip
    except (BrokerAclError, aiomqtt.MqttError) as error:
        print(f"locker-cloud: {error}", file=sys.stderr)
        return 2
    for name in changes.roles_created:
        print(f"role created: {name}")
    for name in changes.clients_created:
        print(f"client created: {name}")
    for grant in changes.roles_granted:
        print(f"role granted: {grant}")
    for name in changes.clients_deleted:
        print(f"client deleted: {name}")
    if not changes.changed:
        print("the broker's ACL already matches the CA")
    return 0


def _print_issued(files: IssuedFiles) -> None:
    c = files.certificate
    print(f"issued {c.serial} to {c.role} {c.identity} until {c.not_after:%Y-%m-%d}")
    print(f"  certificate {files.cert_file}")
    print(f"  key         {files.key_file} (mode 0600)")
