"""``locker-cloud operator ...``: operator accounts of the console, from the command line.

The first admin has to come from somewhere that is not the console itself; passwords are read
from a file or standard input, never from the command line (where ``ps`` and shell history
would keep them).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from cloud.ops import accounts
from cloud.ops.accounts import Role
from cloud.store import operators
from cloud.store.database import Pool
from cloud.store.operators import OperatorError
from shared.clock import SystemClock


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("operator", help="add, change or list operators of the console")
    ops = p.add_subparsers(dest="operator_command", required=True)
    add = ops.add_parser("add", help="add an operator")
    add.add_argument("username")
    add.add_argument("--role", choices=[r.value for r in Role], required=True)
    add.add_argument("--password-file", help="read the password from this file (else stdin)")
    change = ops.add_parser("set", help="change an operator; their sessions end")
    change.add_argument("username")
    change.add_argument("--role", choices=[r.value for r in Role])
    change.add_argument("--new-password", action="store_true", help="set a new password")
    change.add_argument("--password-file", help="read the new password from this file")
    state = change.add_mutually_exclusive_group()
    state.add_argument("--disable", action="store_true", help="refuse their logins")
    state.add_argument("--enable", action="store_true", help="accept their logins again")
    change.add_argument(
        "--unlock", action="store_true", help="lift a lockout after wrong passwords"
    )
    ops.add_parser("list", help="list operators")


def _password(path: str | None) -> str:
    if path:
        return Path(path).read_text(encoding="utf-8").rstrip("\n")
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if first != getpass.getpass("again: "):
            raise OperatorError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


async def run(args: argparse.Namespace, pool: Pool) -> int:
    now = SystemClock().now()
    try:
        if args.operator_command == "add":
            made = await accounts.create_operator(
                pool,
                username=args.username,
                password=_password(args.password_file),
                role=Role(args.role),
                now=now,
            )
            print(f"operator {made.username} added ({made.role})")
        elif args.operator_command == "set":
            wants_password = args.new_password or args.password_file
            changed = await accounts.update_operator(
                pool,
                args.username,
                password=_password(args.password_file) if wants_password else None,
                role=Role(args.role) if args.role else None,
                active=False if args.disable else True if args.enable else None,
                unlock=args.unlock,
            )
            state = "active" if changed.active else "disabled"
            print(f"operator {changed.username}: {changed.role}, {state}; sessions ended")
        else:
            async with pool.connection() as conn:
                for operator in await operators.list_all(conn):
                    state = "active" if operator.active else "disabled"
                    if operator.locked_until and operator.locked_until > now:
                        state += f", locked until {operator.locked_until:%Y-%m-%d %H:%M} UTC"
                    print(f"{operator.username}\t{operator.role}\t{state}")
    except OperatorError as exc:
        print(f"locker-cloud: {exc}", file=sys.stderr)
        return 2
    return 0
