"""``locker-cloud staff|courier add|revoke|list``: the people who sign in at a kiosk.

Thin over `cloud.store.people`. A PIN or courier code is read from an environment variable
(``--pin-env``/``--code-env``: not on the command line, where ``ps`` and shell history would
show it) or drawn at random and printed once; the cloud keeps only its hash.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys

from cloud.config import CloudSettings
from cloud.errors import ServiceError
from cloud.store import database as db
from cloud.store import people
from cloud.store.transaction import Unit, unit
from shared.clock import SystemClock
from shared.people import COURIER_CODE, PIN, CourierPermission, new_courier_code
from shared.protocol import _ID

COMMANDS = ("staff", "courier")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``staff`` and ``courier`` to ``locker-cloud``'s sub-commands."""
    staff = sub.add_parser("staff", help="a location's staff members and their PINs")
    s_sub = staff.add_subparsers(dest="action", required=True)
    p = s_sub.add_parser("add", help="add a staff member (PIN from --pin-env, or drawn)")
    p.add_argument("--location", required=True)
    p.add_argument("--staff", required=True, help="the staff member's id")
    p.add_argument("--name", required=True, help="the name the audit log and screen show")
    p.add_argument("--pin-env", help="environment variable holding the PIN (4-12 digits)")
    p = s_sub.add_parser("revoke", help="stop a staff member's PIN working")
    p.add_argument("--location", required=True)
    p.add_argument("--staff", required=True)
    p = s_sub.add_parser("list", help="list a location's staff members")
    p.add_argument("--location", required=True)

    courier = sub.add_parser("courier", help="a location's couriers and their codes")
    c_sub = courier.add_subparsers(dest="action", required=True)
    p = c_sub.add_parser("add", help="add a courier (code from --code-env, or drawn)")
    p.add_argument("--location", required=True)
    p.add_argument("--courier", required=True, help="the driver's id")
    p.add_argument("--carrier", required=True, help="the carrier the driver works for")
    p.add_argument("--name", required=True)
    p.add_argument(
        "--permissions",
        default="drop_off",
        help="comma list of drop_off, collect_expired, collect_returns (default drop_off)",
    )
    p.add_argument("--code-env", help="environment variable holding the code (8 digits)")
    p = c_sub.add_parser("revoke", help="stop a courier's code working")
    p.add_argument("--location", required=True)
    p.add_argument("--courier", required=True)
    p = c_sub.add_parser("list", help="list a location's couriers")
    p.add_argument("--location", required=True)


def run(args: argparse.Namespace) -> int:
    """Runs a ``staff`` or ``courier`` action; exit status 2 with a message on an error."""
    problem = _check(args)
    if problem:
        print(f"locker-cloud: {problem}", file=sys.stderr)
        return 2
    return asyncio.run(_run(args))


def _secret(args: argparse.Namespace) -> tuple[str, bool]:
    """The PIN or code to hash, and whether it was drawn here (so is printed once)."""
    env = args.pin_env if args.command == "staff" else args.code_env
    if env:
        return os.environ.get(env, ""), False
    if args.command == "staff":
        return f"{secrets.randbelow(10**6):06d}", True
    return new_courier_code(), True


def _check(args: argparse.Namespace) -> str | None:
    ids = [args.location, getattr(args, "staff", None), getattr(args, "courier", None)]
    ids.append(getattr(args, "carrier", None))
    if any(value is not None and not _ID.match(value) for value in ids):
        return "ids are 1-64 of A-Z a-z 0-9 . _ -"
    if args.action != "add":
        return None
    if not 1 <= len(args.name.strip()) <= 80:
        return "--name must be 1-80 characters"
    env = args.pin_env if args.command == "staff" else args.code_env
    if env:
        pattern = PIN if args.command == "staff" else COURIER_CODE
        if not pattern.match(os.environ.get(env, "")):
            what = "a PIN of 4-12 digits" if args.command == "staff" else "a code of 8 digits"
            return f"${env} must hold {what}"
    if args.command == "courier":
        try:
            [CourierPermission(p.strip()) for p in args.permissions.split(",") if p.strip()]
        except ValueError:
            return "--permissions takes drop_off, collect_expired, collect_returns"
    return None


async def _run(args: argparse.Namespace) -> int:
    settings = CloudSettings()
    url = settings.database_url or await asyncio.to_thread(
        db.start_embedded_postgres, settings.data_dir
    )
    assert url
    await db.migrate(url)
    pool = await db.open_pool(url, min_size=1, max_size=2)
    try:
        async with pool.connection() as conn:
            if args.action == "list":
                return await _list(conn, args)
            async with unit(conn, SystemClock().now()) as work:
                return await _change(work, args)
    except ServiceError as exc:
        print(f"locker-cloud: {exc.message}", file=sys.stderr)
        return 2
    finally:
        await pool.close()


async def _change(work: Unit, args: argparse.Namespace) -> int:
    loc = args.location
    if args.command == "staff" and args.action == "revoke":
        await people.revoke_staff(work, location_id=loc, staff_id=args.staff)
        print(f"staff {args.staff} revoked at {loc}")
        return 0
    if args.command == "courier" and args.action == "revoke":
        await people.revoke_courier(work, location_id=loc, courier_id=args.courier)
        print(f"courier {args.courier} revoked at {loc}")
        return 0
    secret, drawn = _secret(args)
    if args.command == "staff":
        await people.add_staff(
            work, location_id=loc, staff_id=args.staff, name=args.name.strip(), pin=secret
        )
        print(f"staff {args.staff} added at {loc}")
        if drawn:
            print(f"  PIN {secret}  (shown once: the cloud keeps only its hash)")
        return 0
    allowed = [CourierPermission(p.strip()) for p in args.permissions.split(",") if p.strip()]
    await people.add_courier(
        work,
        location_id=loc,
        courier_id=args.courier,
        carrier_id=args.carrier,
        name=args.name.strip(),
        code=secret,
        permissions=allowed,
    )
    print(f"courier {args.courier} ({args.carrier}) added at {loc}: {', '.join(sorted(allowed))}")
    if drawn:
        print(f"  code {secret}  (shown once: the cloud keeps only its hash)")
    return 0


async def _list(conn: db.Conn, args: argparse.Namespace) -> int:
    if args.command == "staff":
        for member in await people.list_staff(conn, args.location):
            state = "revoked" if member.revoked_at else "active"
            print(f"{member.staff_id}\t{member.name}\t{state}")
        return 0
    for courier in await people.list_couriers(conn, args.location):
        state = "revoked" if courier.revoked_at else "active"
        perms = ",".join(courier.permissions)
        print(f"{courier.courier_id}\t{courier.carrier_id}\t{courier.name}\t{perms}\t{state}")
    return 0
