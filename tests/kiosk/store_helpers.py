"""Helpers shared by the store tests: the test kiosk's identity, its door layout, cloud updates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kiosk.store import KioskIdentity, Store
from kiosk.store.changes import AllocationUpdate, ApplyResult, apply_allocation
from kiosk.store.records import AllocationKind
from shared.clock import ManualClock
from shared.codes import PickupCode
from shared.sizes import Size
from shared.states import AllocationStatus

SECRET = "kiosk-test-secret-0123456789"
IDENTITY = KioskIdentity(location_id="loc-berlin-01", kiosk_id="kiosk-7")

# Doors 1-2 small, 3-4 medium, 5 large, 6 xlarge.
LAYOUT: dict[int, Size] = {
    1: Size.SMALL,
    2: Size.SMALL,
    3: Size.MEDIUM,
    4: Size.MEDIUM,
    5: Size.LARGE,
    6: Size.XLARGE,
}


def update(
    allocation_id: str,
    *,
    status: AllocationStatus = AllocationStatus.RESERVED,
    door: int | None = None,
    size: Size = Size.SMALL,
    code: str | None = None,
    kind: AllocationKind = AllocationKind.DELIVERY,
    barcode: str | None = None,
    clock: ManualClock | None = None,
) -> AllocationUpdate:
    """An `AllocationUpdate` as the cloud would send it, with sensible defaults."""
    base = (clock or ManualClock()).now()
    return AllocationUpdate(
        allocation_id=allocation_id,
        kind=kind,
        barcode=barcode or f"PKG-{allocation_id}",
        size=size,
        status=status,
        proposed_door=door,
        code=None if code is None else PickupCode(code),
        reservation_expires_at=base + timedelta(hours=24),
        pickup_expires_at=(
            base + timedelta(days=3) if status is not AllocationStatus.RESERVED else None
        ),
    )


def apply(
    store: Store,
    clock: ManualClock,
    allocation_id: str,
    revision: int,
    **fields: Any,
) -> ApplyResult:
    """Applies `update(allocation_id, **fields)` at ``revision``, now."""
    return apply_allocation(
        store,
        update(allocation_id, clock=clock, **fields),
        revision,
        clock.now(),
    )
