"""Shared pieces of the daemon, CLI and crash tests: configuration files and seeded stores."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kiosk.store import changes
from kiosk.store.code_hash import CodeHasher
from kiosk.store.database import KioskIdentity, Store
from kiosk.store.records import AllocationKind
from shared.codes import PickupCode
from shared.sizes import Size
from shared.states import AllocationStatus

SECRET = "kiosk-process-test-secret"
IDENTITY = KioskIdentity("loc-test", "kiosk-test")


def write_config(
    folder: Path,
    *,
    doors: str,
    layout: str = '"1-8" = "small"',
    scanner_port: str | None = None,
    extra: str = "",
    database: str = "kiosk.db",
) -> Path:
    """A kiosk configuration file in ``folder``; ``doors`` is the ``[doors]`` TOML."""
    scanner = "" if scanner_port is None else f'\n[scanner]\nport = "{scanner_port}"\n'
    text = f"""
[kiosk]
location_id = "{IDENTITY.location_id}"
kiosk_id = "{IDENTITY.kiosk_id}"
database = "{database}"
code_secret = "{SECRET}"

[layout]
{layout}

{doors}
{scanner}
{extra}
"""
    path = folder / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def open_store(path: Path) -> Store:
    return Store.open(path, CodeHasher(SECRET), IDENTITY)


def seed(
    store: Store,
    layout: dict[int, Size],
    *,
    deposited: Iterable[tuple[str, int, str]] = (),
    reserved: Iterable[tuple[str, int | None, str]] = (),
    reserved_codes: Mapping[str, str] | None = None,
) -> None:
    """Seeds the store as the cloud would: doors, deposited parcels (id, door, code) and
    reservations (id, proposed door or None, barcode), with a pickup code already issued for
    those in ``reserved_codes`` (id to code)."""
    from kiosk.store import doors

    now = datetime.now(UTC)
    with store.transaction() as db:
        doors.sync_layout(db, layout, now)
    revision = changes.last_revision(store.db)
    for allocation_id, door, code in deposited:
        revision += 1
        changes.apply_allocation(
            store,
            changes.AllocationUpdate(
                allocation_id=allocation_id,
                kind=AllocationKind.DELIVERY,
                barcode=f"PKG-{allocation_id}",
                size=layout[door],
                status=AllocationStatus.DEPOSITED,
                proposed_door=door,
                code=PickupCode.parse(code),
                pickup_expires_at=now + timedelta(days=3),
            ),
            revision,
            now,
        )
    for allocation_id, proposed, barcode in reserved:
        code = (reserved_codes or {}).get(allocation_id)
        revision += 1
        changes.apply_allocation(
            store,
            changes.AllocationUpdate(
                allocation_id=allocation_id,
                kind=AllocationKind.DELIVERY,
                barcode=barcode,
                size=Size.SMALL,
                status=AllocationStatus.RESERVED,
                proposed_door=proposed,
                code=None if code is None else PickupCode.parse(code),
                reservation_expires_at=now + timedelta(days=1),
            ),
            revision,
            now,
        )
