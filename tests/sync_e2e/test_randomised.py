"""A randomised (hypothesis, bounded) interleaving of cloud changes, kiosk events, door openings
and disconnects, with the real cloud worker, PostgreSQL, broker and kiosk daemon; at the end the
two stores must be identical (`differences`).

Each example is a fresh site. Steps the state does not allow at that moment (a deposit of a
parcel the kiosk does not know yet, a cancel the cloud refuses) are skipped: what is checked is
that whatever happened, both sides end up agreeing, and every event is applied once.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.errors import ServiceError
from kiosk.flows.drop_off import drop_off
from kiosk.flows.pickup import pick_up
from kiosk.flows.refusals import FlowRefused

from .harness import Cloud, Site, converge, eventually, make_site, running_site

STEPS = st.lists(
    st.one_of(
        st.just(("reserve", 0)),
        st.tuples(st.just("cancel"), st.integers(0, 5)),
        st.tuples(st.just("deposit"), st.integers(0, 5)),
        st.tuples(st.just("open_then_cancel"), st.integers(0, 5)),
        st.tuples(st.just("shut"), st.booleans()),
        st.tuples(st.just("pick_up"), st.integers(0, 5)),
        st.just(("disconnect", 0)),
        st.just(("reconnect", 0)),
    ),
    min_size=4,
    max_size=12,
)


class Scenario:
    """Plays steps on one site; remembers the open door of an `open_then_cancel`."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.reserved: list[dict[str, Any]] = []
        self.open_door: tuple[int, str] | None = None  # door, allocation id
        self.online = True

    def _pick(self, index: int) -> dict[str, Any] | None:
        return self.reserved[index % len(self.reserved)] if self.reserved else None

    def _kiosk_has(self, row: dict[str, Any], status: str) -> bool:
        return self.site.kiosk_status(row["allocation_id"]) == status

    async def play(self, step: str, arg: Any) -> None:
        site = self.site
        if step == "reserve":
            row = dict(await site.reserve())
            self.reserved.append(row)
            if self.online:  # the kiosk gets it now (offline: after reconnecting)
                await eventually(lambda: site.kiosk_status(row["allocation_id"]) is not None)
        elif step == "cancel" and (row := self._pick(arg)) is not None:
            with contextlib.suppress(ServiceError):  # no longer cancellable in the cloud
                await site.cancel(row["allocation_id"])
        elif step in ("deposit", "open_then_cancel") and (row := self._pick(arg)) is not None:
            if self.open_door is not None or not self._kiosk_has(row, "reserved"):
                return
            try:
                result = await drop_off(site.ctx, row["package_id"], driver_id="driver-1")
            except FlowRefused:
                return
            await eventually(
                lambda: site.kiosk_rows(
                    "SELECT 1 FROM door_operations WHERE door = ? AND state = 'open'",
                    result.door,
                )
            )
            self.open_door = (result.door, str(row["allocation_id"]))
            if step == "deposit":
                await self.play("shut", True)
            else:
                with contextlib.suppress(ServiceError):
                    await site.cancel(row["allocation_id"])
        elif step == "shut" and self.open_door is not None:
            door, _ = self.open_door
            site.bank.set_occupied(door, bool(arg))
            site.bank.close(door)
            await eventually(
                lambda: (
                    not site.kiosk_rows(
                        "SELECT 1 FROM door_operations WHERE door = ? AND state = 'open'", door
                    )
                )
            )
            self.open_door = None
        elif step == "pick_up" and (row := self._pick(arg)) is not None:
            if self.open_door is not None or not self._kiosk_has(row, "deposited"):
                return
            try:
                result = await pick_up(site.ctx, await site.code(row["allocation_id"]))
            except FlowRefused:
                return  # e.g. the cloud gave it a new code the kiosk has not got yet
            for opening in result.openings:
                site.bank.set_occupied(opening.door, False)
                site.bank.close(opening.door)
            await eventually(
                lambda: (
                    not site.kiosk_rows(
                        "SELECT 1 FROM door_operations WHERE state IN ('unlocking', 'open')"
                    )
                )
            )
        elif step == "disconnect" and site.proxy is not None:
            await site.proxy.kill()
            self.online = False
        elif step == "reconnect" and site.proxy is not None:
            await site.proxy.kill()
            await site.proxy.start()
            self.online = True

    async def finish(self) -> None:
        if self.open_door is not None:
            await self.play("shut", False)
        assert self.site.proxy is not None
        await self.site.proxy.kill()
        await self.site.proxy.start()


def _occupancy_sensors(site: Site) -> None:
    text = site.config_file.read_text(encoding="utf-8")
    site.config_file.write_text(
        text.replace("[doors.fake]\n", "[doors.fake]\noccupancy_sensors = true\n"),
        encoding="utf-8",
    )


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure here is a defect, not luck
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
async def test_random_interleavings_end_with_identical_stores(
    cloud: Cloud, tmp_path: Path, steps: list[tuple[str, Any]]
) -> None:
    if not cloud.workers:
        await cloud.start_worker()
    site = await make_site(cloud, tmp_path / uuid.uuid4().hex[:8], proxy=True)
    _occupancy_sensors(site)
    async with running_site(site):
        await site.start_kiosk()
        scenario = Scenario(site)
        for step, arg in [("reserve", 0), ("reserve", 0), *steps]:
            await scenario.play(step, arg)
        await scenario.finish()
        await converge(site, within=40)
