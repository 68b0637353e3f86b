"""``locker-cloud rotate-code-secret``: a new generation of kiosks' code secrets, on demand.

Thin over `cloud.code_secret_rotation`. The command only asks: each kiosk makes its generation
when it next syncs, and new codes are hashed under it once its answer is applied.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta

from cloud import code_secret_rotation
from cloud.config import CloudSettings
from cloud.store import code_secrets
from cloud.store import database as db

COMMANDS = ("rotate-code-secret",)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds the command to ``locker-cloud``'s sub-commands."""
    p = sub.add_parser(
        "rotate-code-secret",
        help="ask kiosks for a new generation of their code secret (live codes keep working)",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--kiosk", help="one kiosk's id")
    which.add_argument("--location", help="every unrevoked kiosk of a location")
    which.add_argument(
        "--all-due",
        action="store_true",
        help="every kiosk whose last rotation is older than LOCKER_CODE_SECRET_ROTATION_DAYS",
    )


def run(args: argparse.Namespace) -> int:
    """Runs the command; exit status 2 with a message on an error."""
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    settings = CloudSettings()
    now = datetime.now(UTC)
    if args.all_due and settings.code_secret_rotation_days is None:
        print(
            "locker-cloud: --all-due needs LOCKER_CODE_SECRET_ROTATION_DAYS (the schedule)",
            file=sys.stderr,
        )
        return 2
    url = settings.database_url or await asyncio.to_thread(
        db.start_embedded_postgres, settings.data_dir
    )
    assert url
    await db.migrate(url)
    pool = await db.open_pool(url, min_size=1, max_size=2)
    try:
        if args.all_due:
            every = timedelta(days=settings.code_secret_rotation_days or 0)
            requests = await code_secret_rotation.rotate_due(pool, now, every)
        else:
            if args.location is not None:
                async with pool.connection() as conn:
                    kiosks = await code_secrets.kiosks_of_location(conn, args.location)
            else:
                kiosks = [args.kiosk]
            requests = await code_secret_rotation.rotate(pool, kiosks, now, "locker-cloud")
    except LookupError as exc:
        print(f"locker-cloud: {exc.args[0]}", file=sys.stderr)
        return 2
    finally:
        await pool.close()
    for request in requests:
        state = "asked" if request.new else "asked again (still waiting for its answer)"
        print(f"kiosk {request.kiosk_id}: generation {request.generation} {state}")
    if not requests:
        print("no kiosk to rotate")
    return 0
