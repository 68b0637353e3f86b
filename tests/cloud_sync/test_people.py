"""Staff and couriers in the cloud (issue 11): hashed as given, logged for the kiosk, listed in
snapshots while live, refused clearly when they clash; `locker-cloud staff|courier` on top."""

from __future__ import annotations

import pytest

from cloud import cli, errors
from cloud.store import changelog, people
from cloud.store.transaction import unit
from cloud.sync.snapshot import build_snapshot
from shared.people import CourierPermission, secret_hash
from shared.protocol import CourierChange, StaffChange

from .conftest import Site, now


async def test_staff_and_couriers_are_logged_hashed_and_listed_while_live(site: Site) -> None:
    loc = site.location_id
    async with site.pool.connection() as conn:
        async with unit(conn, now()) as work:
            await people.add_staff(work, location_id=loc, staff_id="ana", name="Ana", pin="135790")
            await people.add_courier(
                work,
                location_id=loc,
                courier_id="drv-1",
                carrier_id=site.carrier_id,
                name="Dee",
                code="12345678",
                permissions=[CourierPermission.COLLECT_RETURNS, CourierPermission.DROP_OFF],
            )
        catchup = await changelog.changes_since(conn, loc, 0)
        staff, courier = catchup.changes[-2:]
        assert isinstance(staff, StaffChange)
        assert isinstance(courier, CourierChange)
        assert staff.pin_hash == secret_hash("135790", staff.salt)
        assert courier.code_hash == secret_hash("12345678", courier.salt)
        assert courier.permissions == ["collect_returns", "drop_off"]
        assert courier.carrier_id == site.carrier_id
        cur = await conn.execute("SELECT * FROM staff_members WHERE location_id = %s", (loc,))
        assert "135790" not in str(await cur.fetchall())
        # Clashes: the same id, the same PIN as a live member.
        with pytest.raises(errors.AlreadyExists):
            async with unit(conn, now()) as work:
                await people.add_staff(
                    work, location_id=loc, staff_id="ana", name="A", pin="999999"
                )
        with pytest.raises(people.SecretInUse):
            async with unit(conn, now()) as work:
                await people.add_staff(
                    work, location_id=loc, staff_id="bo", name="Bo", pin="135790"
                )
        before = (await changelog.changes_since(conn, loc, 0)).revision
        assert before == catchup.revision  # nothing logged by the refused ones
    snapshot = await build_snapshot(site.pool, loc)
    assert [s.staff_id for s in snapshot.staff] == ["ana"]
    assert [c.courier_id for c in snapshot.couriers] == ["drv-1"]
    async with site.pool.connection() as conn:
        async with unit(conn, now()) as work:
            await people.revoke_staff(work, location_id=loc, staff_id="ana")
        [revoked] = (await changelog.changes_since(conn, loc, before)).changes
        assert isinstance(revoked, StaffChange)
        assert revoked.revoked
        with pytest.raises(people.PersonNotFound):
            async with unit(conn, now()) as work:
                await people.revoke_staff(work, location_id=loc, staff_id="ana")
    snapshot = await build_snapshot(site.pool, loc)
    assert snapshot.staff == []
    # A revoked member's PIN may be given to someone else.
    async with site.pool.connection() as conn, unit(conn, now()) as work:
        await people.add_staff(work, location_id=loc, staff_id="cy", name="Cy", pin="135790")


def test_the_cli_adds_lists_and_revokes_staff(
    site: Site,
    sync_db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LOCKER_DATABASE_URL", sync_db_url)
    monkeypatch.setenv("STAFF_PIN_FOR_TEST", "24680")
    loc = site.location_id
    add = ["staff", "add", "--location", loc, "--staff", "eve", "--name", "Eve"]
    assert cli.main([*add, "--pin-env", "STAFF_PIN_FOR_TEST"]) == 0
    assert "24680" not in capsys.readouterr().out
    assert cli.main([*add, "--pin-env", "STAFF_PIN_FOR_TEST"]) == 2
    assert "exists" in capsys.readouterr().err
    monkeypatch.setenv("STAFF_PIN_FOR_TEST", "12")
    assert (
        cli.main([*add[:-4], "--staff", "fay", "--name", "F", "--pin-env", "STAFF_PIN_FOR_TEST"])
        == 2
    )
    assert "4-12 digits" in capsys.readouterr().err
    assert cli.main(["staff", "list", "--location", loc]) == 0
    assert capsys.readouterr().out.splitlines() == ["eve\tEve\tactive"]
    assert cli.main(["staff", "revoke", "--location", loc, "--staff", "eve"]) == 0
    capsys.readouterr()
    assert cli.main(["staff", "list", "--location", loc]) == 0
    assert capsys.readouterr().out.splitlines() == ["eve\tEve\trevoked"]
    courier = ["courier", "add", "--location", loc, "--courier", "d1", "--carrier"]
    assert cli.main([*courier, site.carrier_id, "--name", "D", "--permissions", "fly"]) == 2
    assert "--permissions" in capsys.readouterr().err
    assert cli.main([*courier, site.carrier_id, "--name", "D"]) == 0
    assert "code " in capsys.readouterr().out  # drawn, shown once
    assert cli.main([*courier[:-1], "--courier", "d2", "--carrier", "nope", "--name", "D"]) == 2
