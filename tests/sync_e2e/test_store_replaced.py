"""A kiosk whose SD card was replaced: its new store restarts at sequence 1 under a new
incarnation, the cloud applies its events after the old store's, and tells operators."""

from __future__ import annotations

from .harness import Cloud, Site, deposit_at_kiosk, eventually


async def test_a_replaced_store_gets_its_new_events_applied(cloud: Cloud, site: Site) -> None:
    await cloud.start_worker()
    await site.start_kiosk()
    before = await site.reserve()
    await deposit_at_kiosk(site, before["package_id"])

    async def deposited_in_the_cloud(parcel: dict[str, object]) -> bool:
        row = await site.cloud_allocation(str(parcel["allocation_id"]))
        return bool(row["status"] == "deposited")

    await eventually(lambda: deposited_in_the_cloud(before))
    cursor_rows = await cloud.fetch(
        "SELECT through_sequence FROM kiosk_cursors WHERE kiosk_id = %s", site.kiosk_id
    )
    old_cursor = cursor_rows[0]["through_sequence"]
    assert old_cursor > 0

    # A new SD card: the same configuration and keys, an empty store, numbering from 1 again.
    await site.stop_kiosk()
    for suffix in ("", "-wal", "-shm"):
        site.folder.joinpath("kiosk.db" + suffix).unlink(missing_ok=True)
    await site.start_kiosk()
    after = await site.reserve()
    await deposit_at_kiosk(site, after["package_id"])

    await eventually(lambda: deposited_in_the_cloud(after))
    alerts = await cloud.fetch(
        "SELECT kind, detail FROM fleet_alerts WHERE kiosk_id = %s ORDER BY alert_id",
        site.kiosk_id,
    )
    kinds = [a["kind"] for a in alerts]
    assert kinds[0] == "store_replaced"
    assert alerts[0]["detail"]["first_cursor_sequence"] == old_cursor + 1
    # The new store, catching up from revision 0, refuses the cloud's "deposited" for the parcel
    # the old store took in (only a kiosk deposits): reported, so an operator sees a parcel this
    # store does not know is in its door (a known limit, docs/security.md).
    assert set(kinds[1:]) <= {"cloud_change_refused"}
    for refused in alerts[1:]:
        assert refused["detail"]["allocation_id"] == str(before["allocation_id"])
    cursor_rows = await cloud.fetch(
        "SELECT through_sequence FROM kiosk_cursors WHERE kiosk_id = %s", site.kiosk_id
    )
    assert cursor_rows[0]["through_sequence"] > old_cursor
