"""Door labels travel to the kiosk over sync (issue 10): the snapshot a new kiosk gets carries
the labels the doors were created with, and a door added later sends its label in the change log.
"""

from __future__ import annotations

from pathlib import Path

from cloud import doors
from cloud.doors import DoorSpec
from kiosk.store.door_labels import door_namer

from .harness import LAYOUT, Cloud, converge, eventually, make_site, now, running_site


async def test_labels_reach_the_kiosk_and_its_screen(cloud: Cloud, tmp_path: Path) -> None:
    # Doors 1-7 by column and row (two rows), door 8 with a label of its own; the fake bank has
    # 8 doors, so door 8 is created later, as an operator adds one.
    specs = [
        DoorSpec(n, size, column=(n - 1) // 2 + 1, row=(n - 1) % 2 + 1)
        for n, size in LAYOUT.items()
        if n < 8
    ]
    site = await make_site(cloud, tmp_path / "kiosk", specs=specs)
    # The kiosk's layout comes from the cloud's doors; door 8 is in the bank already.
    config = site.config_file.read_text(encoding="utf-8")
    site.config_file.write_text(
        config.replace("[layout]\n", f'[layout]\n"8" = "{LAYOUT[8].value}"\n', 1),
        encoding="utf-8",
    )
    async with running_site(site):
        await cloud.start_worker()
        await site.start_kiosk()
        name = door_namer(site.ctx.store)
        await eventually(lambda: name(1) == "A1")
        assert [name(n) for n in range(1, 8)] == ["A1", "A2", "B1", "B2", "C1", "C2", "D1"]
        assert name(8) == "8"  # not in the cloud yet
        async with cloud.pool.connection() as conn:
            await doors.add_doors(
                conn, site.location_id, [DoorSpec(8, LAYOUT[8], label="LOW-8")], now()
            )
        await eventually(lambda: name(8) == "LOW-8")
        await converge(site)
