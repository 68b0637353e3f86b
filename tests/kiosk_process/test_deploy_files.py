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


def test_the_touchscreen_drop_in_runs_the_ui_on_a_console_and_logs_to_the_journal() -> None:
    conf = DEPLOY / "systemd" / "locker-kiosk.service.d" / "touchscreen.conf"
    lines = conf.read_text(encoding="utf-8").splitlines()
    starts = [line for line in lines if line.startswith("ExecStart=")]

    # A drop-in must clear the unit's ExecStart before giving its own.
    assert starts == [
        "ExecStart=",
        "ExecStart=/opt/locker-fleet/.venv/bin/locker-kiosk run "
        "--config /etc/locker-kiosk/kiosk.toml --ui",
    ]
    # Textual draws on stderr: the log (stdout) must not go to the same screen.
    assert "StandardError=tty" in lines
    assert "StandardOutput=journal" in lines
