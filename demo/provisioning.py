"""The demo's kiosk: registered for the demo location, its doors simulated, its file written.

The kiosk is provisioned as ``locker-cloud provision-kiosk`` does (`cloud.sync.provisioning`);
the simulated bank's layout follows the doors the cloud has for the location
(`cloud.doors.list_doors`), and the kiosk's configuration then points at the bank's
pseudo-terminals.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

from cloud.config import CloudSettings
from cloud.doors import list_doors
from cloud.store import database as db
from cloud.store.records import Door
from cloud.sync.keys import load_cloud_signer
from cloud.sync.provisioning import provision_kiosk
from demo.options import DemoError
from demo.seed import DEMO_LOCATION
from hardware_sim.bank import SimulatedBank
from hardware_sim.bank_layout import BankLayout
from kiosk.hardware.protocols import BoardProtocol
from shared.clock import SystemClock
from shared.sizes import Size


async def provision_demo_kiosk(
    *, database_url: str, settings: CloudSettings, folder: Path, broker_url: str
) -> tuple[str, BankLayout]:
    """Registers a new kiosk for the demo location, its files in ``folder``.

    Returns:
        The kiosk's id, and the layout of a simulated bank with the location's doors.

    Raises:
        DemoError: the location's doors are not numbered 1 to N.
    """
    kiosk_id = f"kiosk-demo-{uuid.uuid4().hex[:6]}"
    key_file, may_create = settings.cloud_key_path()
    cloud_key = load_cloud_signer(key_file, create=may_create).verifier
    pool = await db.open_pool(database_url, min_size=1, max_size=2)
    try:
        async with pool.connection() as conn:
            await provision_kiosk(
                conn,
                location_id=DEMO_LOCATION,
                kiosk_id=kiosk_id,
                folder=folder,
                broker_url=broker_url,
                cloud_key=cloud_key,
                now=SystemClock().now(),
            )
            doors = await list_doors(conn, DEMO_LOCATION)
    finally:
        await pool.close()
    return kiosk_id, bank_layout(doors)


def bank_layout(doors: Sequence[Door]) -> BankLayout:
    """Kerong boards with ``doors`` (in door order).

    Raises:
        DemoError: the doors are not numbered 1 to N.
    """
    numbers = [d.door_number for d in doors]
    if numbers != list(range(1, len(numbers) + 1)):
        raise DemoError(f"the demo location's doors are not numbered 1-N: {numbers}")
    runs: list[tuple[Size, int]] = []
    for d in doors:
        size = d.size
        if runs and runs[-1][0] is size:
            runs[-1] = (size, runs[-1][1] + 1)
        else:
            runs.append((size, 1))
    return BankLayout.plan(BoardProtocol.KERONG, sizes=runs)


def write_hardware_config(config: Path, bank: SimulatedBank) -> None:
    """Points the kiosk's configuration file at ``bank``, and makes it quick to react."""
    text = config.read_text(encoding="utf-8")
    start = text.index("[doors]\n")
    end = text.index("[sync]\n")
    hardware = bank.layout.kiosk_toml(bank.port, bank.scanner_port)
    hardware = hardware.replace(
        'backend = "serial"\n', 'backend = "serial"\nopen_timeout_s = 3.0\n'
    )
    hardware += "\n[monitor]\npoll_interval_s = 0.1\n\n"
    sync = "reconnect_min_s = 0.2\nreconnect_max_s = 2.0\n"
    config.write_text(text[:start] + hardware + text[end:] + sync, encoding="utf-8")
