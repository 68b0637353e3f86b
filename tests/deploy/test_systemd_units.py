"""deploy/systemd: every unit passes ``systemd-analyze verify``, and the CRL refresh timer
really re-signs the CRL when its service's command line runs.

``systemd-analyze verify`` refuses an ExecStart whose program does not exist, so the units are
checked with the installed path (/opt/locker-fleet/.venv) pointed at this checkout's venv.
"""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from cloud.fleet_ca import FleetCa

FOLDER = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
INSTALLED_VENV = "/opt/locker-fleet/.venv/bin/"
VENV_BIN = str(Path(sys.executable).parent) + "/"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(FOLDER / name)
    return parser


def test_every_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    names = sorted(p.name for p in FOLDER.glob("*.service")) + sorted(
        p.name for p in FOLDER.glob("*.timer")
    )
    assert "locker-ca-crl-refresh.timer" in names
    for name in names:
        text = (FOLDER / name).read_text().replace(INSTALLED_VENV, VENV_BIN)
        (tmp_path / name).write_text(text)
    done = subprocess.run(
        [analyze, "verify", *(str(tmp_path / n) for n in names)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Warnings about the machine (no systemd as PID 1, an unknown user) are not the units' fault;
    # anything naming one of our units is.
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if "locker-" in line]
    assert done.returncode == 0, done.stdout + done.stderr
    assert not complaints, done.stdout + done.stderr


def test_the_crl_timer_runs_daily_and_catches_up_after_downtime() -> None:
    timer = unit("locker-ca-crl-refresh.timer")
    assert timer["Timer"]["OnCalendar"] == "daily"  # the CRL lives 30 days: weeks of slack
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["Unit"] == "locker-ca-crl-refresh.service"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_the_crl_service_command_re_signs_the_crl_and_reloads_the_broker(tmp_path: Path) -> None:
    service = unit("locker-ca-crl-refresh.service")["Service"]
    assert service["Type"] == "oneshot"
    assert "SIGHUP mosquitto.service" in service["ExecStartPost"]
    argv = shlex.split(service["ExecStart"].replace(INSTALLED_VENV, VENV_BIN))
    long_ago = datetime.now(UTC) - timedelta(days=29)
    ca = FleetCa.create(tmp_path / "ca", name="test CA", now=long_ago)
    before = x509.load_pem_x509_crl(ca.crl_file.read_bytes()).next_update_utc
    env = {**os.environ, "LOCKER_FLEET_CA_DIR": str(tmp_path / "ca")}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    after = x509.load_pem_x509_crl(ca.crl_file.read_bytes()).next_update_utc
    assert before is not None
    assert after is not None
    assert after > before + timedelta(days=28)
