"""``locker-kiosk`` as a real process: exit statuses, one-line errors, read-only inspection of a
database that a running daemon holds."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import cli
from kiosk.store import outbox

from .helpers import open_store, seed, write_config

FAKE = '[doors]\nbackend = "fake"\n[doors.fake]\ndoors = 8\n'
LAYOUT_SIZES = '"1-8" = "small"'


def kiosk_cmd(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    from shared.sizes import Size

    config = write_config(tmp_path, doors=FAKE, layout=LAYOUT_SIZES)
    with open_store(tmp_path / "kiosk.db") as store:
        seed(
            store,
            dict.fromkeys(range(1, 9), Size.SMALL),
            deposited=[("p1", 1, "ABC234")],
            reserved=[("r1", 9, "PKG-R1")],  # door 9 does not exist: an event says so
        )
    return config


def test_importing_the_cli_and_daemon_loads_no_hardware_library() -> None:
    code = (
        "import sys, kiosk, kiosk.cli, kiosk.daemon, kiosk.config;"
        "bad = [m for m in ('serial', 'gpiozero') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_run_prints_ready_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = write_config(tmp_path, doors=FAKE, layout=LAYOUT_SIZES)
    with subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("ready: location loc-test, kiosk kiosk-test, 8 doors")
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 0, err
    assert out.strip() == "stopped"
    assert "boot reconciliation" in err


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["run"], 2, "the following arguments are required: --config"),
        (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
        (["audit", "--database", "x.db", "--limit", "many"], 2, "expected a whole number"),
        (["status"], 2, "one of the arguments --config --database is required"),
        (["run", "--config", "/nonexistent/kiosk.toml"], 2, "not found"),
        (["status", "--database", "/nonexistent/kiosk.db"], 1, "no kiosk database at"),
    ],
)
def test_bad_arguments_give_one_line_and_a_non_zero_status(
    args: list[str], status: int, message: str
) -> None:
    result = kiosk_cmd(*args)
    assert result.returncode == status
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("locker-kiosk")
    assert message in lines[0]


def test_a_missing_serial_port_at_boot_leaves_the_daemon_running_and_says_why(
    tmp_path: Path,
) -> None:
    # Under systemd a daemon that exits here loops with a dark screen; it must run, say why no
    # door can open, and reconcile when the bus answers (tests/kiosk_process/test_port_loss.py).
    doors = (
        '[doors]\nbackend = "serial"\n[doors.serial]\n'
        f'port = "{tmp_path / "ttyNOPE"}"\nprotocol = "8a80"\n'
        "boards = [{ address = 1, locks = 8 }]\n"
    )
    config = write_config(tmp_path, doors=doors, layout=LAYOUT_SIZES)
    with subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().startswith("ready:")
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 0, err
    assert out.strip() == "stopped"
    assert "door bank does not answer at boot" in err
    assert "ttyNOPE" in err


def test_a_bad_key_is_named_on_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, doors=FAKE, layout=LAYOUT_SIZES, extra="[monitor]\nevery = 1\n")
    result = kiosk_cmd("check-config", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr == "locker-kiosk: error: monitor.every: unknown key; known keys here:" + (
        " poll_interval_s, max_backoff_s\n"
    )


def test_check_config_summarises_a_good_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, doors=FAKE, layout=LAYOUT_SIZES)
    result = kiosk_cmd("check-config", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stdout
    assert "8 (8 small) on a fake bank" in result.stdout


def test_inspection_reads_the_store_without_the_secret(seeded: Path, tmp_path: Path) -> None:
    # A file whose secret cannot be read still serves the read-only commands.
    text = seeded.read_text().replace('code_secret = "', 'code_secret_env = "UNSET_VAR_')
    seeded.write_text(text)
    status = kiosk_cmd("status", "--config", str(seeded), "--json")
    assert status.returncode == 0, status.stderr
    view = json.loads(status.stdout)
    assert view["kiosk_id"] == "kiosk-test"
    assert view["parcels"] == {"deposited": 1, "reserved": 1}
    assert view["outbox"]["pending"] == 1
    assert view["last_revision"] == 2
    assert [d["status"] for d in view["doors"]][:2] == ["occupied", "available"]

    text_status = kiosk_cmd("status", "--database", str(tmp_path / "kiosk.db"))
    assert "outbox: 1 pending of 1 stored, last sequence 1" in text_status.stdout
    assert "keypad: open" in text_status.stdout

    parcels = kiosk_cmd("parcels", "--database", str(tmp_path / "kiosk.db"), "--status", "reserved")
    assert "PKG-R1" in parcels.stdout
    assert "PKG-p1" not in parcels.stdout

    events = kiosk_cmd("events", "--database", str(tmp_path / "kiosk.db"), "--pending", "--json")
    assert [e["type"] for e in json.loads(events.stdout)] == ["proposed_door_unavailable"]


def test_inspection_works_while_the_daemon_holds_the_database(seeded: Path, tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "run", "--config", str(seeded)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().startswith("ready:")
            audit = kiosk_cmd("audit", "--config", str(seeded), "--limit", "5", "--json")
            assert audit.returncode == 0, audit.stderr
            assert isinstance(json.loads(audit.stdout), list)
            events = kiosk_cmd("events", "--config", str(seeded), "--json")
            assert [e["sequence"] for e in json.loads(events.stdout)] == [1]
            assert kiosk_cmd("status", "--config", str(seeded)).returncode == 0
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            process.kill()
    with open_store(tmp_path / "kiosk.db") as store:
        assert outbox.last_sequence(store.db) == 1


def test_main_returns_the_status_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["events", "--database", str(tmp_path / "absent.db")]) == 1
    assert capsys.readouterr().err.startswith("locker-kiosk: error: no kiosk database")
