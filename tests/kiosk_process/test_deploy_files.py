"""The deployment files for a kiosk stay valid: the example configuration and the systemd unit."""

from __future__ import annotations

from pathlib import Path

from kiosk.config import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_the_example_kiosk_configuration_is_valid() -> None:
    config = load_config(DEPLOY / "kiosk.toml.example", read_secret=False)

    assert config.location_id == "loc-waw-0042"
    assert sorted(config.layout) == list(range(1, 17))


def test_the_systemd_unit_runs_the_documented_command() -> None:
    unit = (DEPLOY / "systemd" / "locker-kiosk.service").read_text(encoding="utf-8")

    assert "locker-kiosk run --config /etc/locker-kiosk/kiosk.toml" in unit
