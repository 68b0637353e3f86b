"""The person at the demo's doors: shuts each one a while after it springs open.

The simulator itself leaves doors open, as a real door stays open until someone shuts it; a
driver putting a parcel in, or a customer taking it out, shuts it a couple of seconds later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from hardware_sim.bank import SimulatedBank

POLL_S = 0.05


async def shut_doors_after(
    bank: SimulatedBank, close_after_s: float, out: Callable[[str], None]
) -> None:
    """Shuts each door of ``bank`` ``close_after_s`` after it opens, swapping what is inside.

    Runs until cancelled; says on ``out`` when a door opens and when it is shut.
    """
    seen: dict[int, float] = {}
    while True:
        await asyncio.sleep(POLL_S)
        for where in bank.layout.doors:
            door = bank.door(where.number)
            if not door.is_open:
                seen.pop(where.number, None)
                continue
            if where.number not in seen:
                seen[where.number] = time.monotonic()
                out(f"door {where.number} opened")
                continue
            if time.monotonic() - seen[where.number] < close_after_s:
                continue
            door.set_occupied(not door.occupied)
            door.close()
            del seen[where.number]
            what = "a parcel inside" if door.occupied else "empty"
            out(f"door {where.number} closed ({what})")
