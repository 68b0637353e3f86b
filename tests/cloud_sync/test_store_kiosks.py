"""`cloud.store.kiosks`: what registering a kiosk writes, as a record."""

from __future__ import annotations

import pytest

from cloud import errors
from cloud.store import kiosks, publications
from cloud.store.database import Pool
from cloud.sync.keys import location_code_secret, register_kiosk
from shared.signing import Signer

from .conftest import make_site, now


async def test_a_registered_kiosk_comes_back_as_a_record_with_its_secret_as_bytes(
    pool: Pool,
) -> None:
    site = await make_site(pool, register=False)
    async with pool.connection() as conn:
        kiosk = await register_kiosk(
            conn,
            kiosk_id=site.kiosk_id,
            location_id=site.location_id,
            public_key=site.kiosk_signer.verifier.public_base64(),
            code_secret=site.code_secret,
            now=now(),
        )
        revision = await publications.location_revision(conn, site.location_id)
        assert await location_code_secret(conn, site.location_id) == site.code_secret
    assert isinstance(kiosk, kiosks.Kiosk)
    assert (kiosk.kiosk_id, kiosk.location_id) == (site.kiosk_id, site.location_id)
    assert kiosk.code_secret == site.code_secret
    assert kiosk.registered_revision == revision
    assert kiosk.status == "never_seen"
    assert kiosk.epoch is None
    key = await kiosks.registered_key(pool, site.kiosk_id)
    assert key == kiosks.RegisteredKey(
        site.kiosk_id, site.location_id, site.kiosk_signer.verifier.public_base64()
    )


async def test_registering_a_taken_id_or_at_an_unknown_location_raises(pool: Pool) -> None:
    site = await make_site(pool)
    public_key = Signer.generate().verifier.public_base64()
    async with pool.connection() as conn:
        with pytest.raises(errors.AlreadyExists):
            await kiosks.register(
                conn,
                kiosk_id=site.kiosk_id,
                location_id=site.location_id,
                public_key=public_key,
                code_secret=site.code_secret,
                now=now(),
            )
        with pytest.raises(errors.LocationNotFound):
            await kiosks.register(
                conn,
                kiosk_id=f"{site.kiosk_id}-2",
                location_id="no-such-location",
                public_key=public_key,
                code_secret=site.code_secret,
                now=now(),
            )
        assert await kiosks.layout_doors(conn, "no-such-location") is None
        layout = await kiosks.layout_doors(conn, site.location_id)
        assert layout is not None
        assert [d.door_number for d in layout] == [1, 2, 3, 4, 5]
    assert await kiosks.registered_key(pool, "no-such-kiosk") is None
