"""The fleet CA itself rotated, on a real Mosquitto started with the generated configuration:
a new CA, a bundle with both during the overlap, every certificate re-issued, the previous CA
retired (issue 9)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from cloud.broker_config import DYNSEC_PLUGIN
from cloud.fleet_ca import FleetCa, FleetCaError, IssuedFiles
from shared.broker_url import ClientTls
from shared.protocol import kiosk_subscription
from tests.broker_tls.conftest import (
    MOSQUITTO,
    NOW,
    Fleet,
    running_broker,
)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    if not Path(MOSQUITTO).exists() or not DYNSEC_PLUGIN.exists():
        pytest.skip("no mosquitto with the dynamic-security plugin on this machine")
    ca = FleetCa.create(tmp_path / "ca", name="fleet CA 1", now=NOW)
    clients = {
        "kiosk-a": ca.issue_kiosk(
            kiosk_id="kiosk-a", location_id="loc-a", out=tmp_path / "kiosk-a", now=NOW
        ),
        "kiosk-b": ca.issue_kiosk(
            kiosk_id="kiosk-b", location_id="loc-b", out=tmp_path / "kiosk-b", now=NOW
        ),
    }
    ca.issue_broker(hosts=["localhost"], out=tmp_path / "broker", now=NOW)
    with running_broker(ca, tmp_path, clients) as running:
        yield running


async def _works(fleet: Fleet, files: IssuedFiles, trust: Path, location: str) -> bool:
    """Whether a client with these files connects and may subscribe to its location."""
    context = ClientTls(trust, files.cert_file, files.key_file).context()
    try:
        async with aiomqtt.Client(
            "localhost",
            fleet.port,
            identifier=files.certificate.identity,
            tls_context=context,
            timeout=5,
        ) as client:
            codes = await client.subscribe(kiosk_subscription(location), qos=1)
            return not any(code.is_failure for code in codes)  # type: ignore[attr-defined]
    except aiomqtt.MqttError:
        return False


async def test_the_ca_is_rotated_with_an_overlap_then_the_previous_one_retired(
    fleet: Fleet,
) -> None:
    ca = fleet.ca
    old_a, old_b = fleet.clients["kiosk-a"], fleet.clients["kiosk-b"]
    assert await _works(fleet, old_a, ca.bundle_file, "loc-a")

    ca.rotate_ca(name="fleet CA 2", now=NOW)
    assert ca.rotating
    bundle = ca.bundle_file.read_bytes()
    assert bundle.count(b"BEGIN CERTIFICATE") == 2
    assert ca.crl_file.read_bytes().count(b"BEGIN X509 CRL") == 2
    with pytest.raises(FleetCaError):
        ca.rotate_ca(name="fleet CA 3", now=NOW)  # one rotation at a time
    fleet.restart()  # the broker trusts the bundle now

    # Overlap: certificates of both CAs work; a revoked one of the previous CA does not.
    reissued = {
        f.certificate.identity: f for f in ca.reissue_all(out=fleet.folder / "new", now=NOW)
    }
    assert set(reissued) == {"kiosk-a", "kiosk-b"}
    ca.issue_broker(hosts=["localhost"], out=fleet.folder / "broker", now=NOW)
    ca.revoke(serial=old_b.certificate.serial, now=NOW)
    fleet.restart()
    assert await _works(fleet, old_a, ca.bundle_file, "loc-a")
    assert await _works(fleet, reissued["kiosk-a"], ca.bundle_file, "loc-a")
    assert not await _works(fleet, old_b, ca.bundle_file, "loc-b")  # the previous CA's CRL
    assert await _works(fleet, reissued["kiosk-b"], ca.bundle_file, "loc-b")

    # Retired: only the new CA's certificates get in, and a client trusting only it is served.
    ca.retire_previous(NOW)
    assert not ca.rotating
    assert ca.bundle_file.read_bytes().count(b"BEGIN CERTIFICATE") == 1
    assert not (ca.folder / "previous").exists()
    fleet.restart()
    assert not await _works(fleet, old_a, ca.bundle_file, "loc-a")
    assert await _works(fleet, reissued["kiosk-a"], ca.cert_file, "loc-a")
    with pytest.raises(FleetCaError):
        ca.retire_previous(NOW)


def test_a_new_ca_must_not_share_the_current_ones_name(tmp_path: Path) -> None:
    ca = FleetCa.create(tmp_path / "ca", name="fleet CA", now=NOW)
    with pytest.raises(FleetCaError):
        ca.rotate_ca(name="fleet CA", now=NOW)
    assert not ca.rotating
