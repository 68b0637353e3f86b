"""The demo's hint on the home screen offers only codes and barcodes that still work (issue 11)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from demo.seed import DemoParcel
from demo.system import DemoParcelAtKiosk, DemoSystem
from kiosk.store import allocations, changes, doors
from kiosk.store.code_hash import CodeHasher
from kiosk.store.database import KioskIdentity, Store
from kiosk.store.records import AllocationKind
from shared.codes import PickupCode
from shared.sizes import Size
from shared.states import AllocationStatus

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _parcel(allocation_id: str, code: str, door: int) -> DemoParcelAtKiosk:
    parcel = DemoParcel(
        package_id=f"PKG-{allocation_id}",
        customer_id=allocation_id,
        allocation_id=allocation_id,
        locker_number=door,
        pickup_code=code,
        status="deposited",
        deposit=True,
    )
    return DemoParcelAtKiosk(parcel, door)


def test_a_code_used_at_the_kiosk_is_no_longer_offered(tmp_path: Path) -> None:
    store = Store.in_memory(CodeHasher("demo-hint-test-secret"), KioskIdentity("loc", "kiosk"))
    with store.transaction() as db:
        doors.sync_layout(db, {1: Size.SMALL, 2: Size.SMALL}, NOW)
    for revision, (allocation_id, code, door) in enumerate(
        [("a1", "ABC234", 1), ("a2", "DEF567", 2)], start=1
    ):
        changes.apply_allocation(
            store,
            changes.AllocationUpdate(
                allocation_id=allocation_id,
                kind=AllocationKind.DELIVERY,
                barcode=f"PKG-{allocation_id}",
                size=Size.SMALL,
                status=AllocationStatus.DEPOSITED,
                proposed_door=door,
                code=PickupCode.parse(code),
                pickup_expires_at=NOW + timedelta(days=3),
            ),
            revision,
            NOW,
        )
    with store.transaction() as db:
        allocations.move(db, "a1", AllocationStatus.PICKED_UP, NOW)  # ABC234 was used
    options: Any = None
    settings: Any = None
    system = DemoSystem(options, tmp_path, "postgresql://unused", "mqtt://unused", settings)
    system.daemon = SimpleNamespace(ctx=SimpleNamespace(store=store))  # type: ignore[assignment]
    system.parcels = [_parcel("a1", "ABC234", 1), _parcel("a2", "DEF567", 2)]

    note = system.home_note()

    assert "DEF567" in note
    assert "ABC234" not in note
    store.close()
