"""docs/kiosk.md must not drift from the code: every configuration key, command and option."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kiosk import cli, config
from kiosk.hardware import config as hardware_config
from shared.states import AllocationStatus

DOC = Path(__file__).resolve().parents[2] / "docs" / "kiosk.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize("key", config.DOCUMENTED_KEYS)
def test_every_configuration_key_is_documented(doc: str, key: str) -> None:
    assert f"`{key}`" in doc


def test_every_key_the_parser_accepts_is_in_the_documented_list(tmp_path: Path) -> None:
    # A key added to the parser but not to DOCUMENTED_KEYS would escape the test above.
    accepted = {
        f"kiosk.{k}"
        for k in ("location_id", "kiosk_id", "database", "scanner_driver_id", *config._SECRET_KEYS)
    }
    accepted |= {f"rules.{k}" for k in ("keypad_max_failures", *config._RULE_DURATIONS)}
    accepted |= {"monitor.poll_interval_s", "monitor.max_backoff_s", "layout"}
    accepted |= {f"sync.{k}" for k in config._SYNC_KEYS}
    assert accepted == set(config.DOCUMENTED_KEYS)
    tables = {key.split(".")[0] for key in config.DOCUMENTED_KEYS}
    tables |= {key.split(".")[0] for key in hardware_config.DOCUMENTED_KEYS}
    assert tables == set(config._TOP_LEVEL)


def test_the_hardware_tables_are_pointed_to(doc: str) -> None:
    assert "hardware.md#configuration" in doc
    for table in ("`doors.backend`", "`scanner.port`"):
        assert table in doc


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli._parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_command_and_option_is_documented(doc: str, name: str) -> None:
    subparser = _subcommands()[name]
    row = next(
        (line for line in doc.splitlines() if line.startswith(f"| `locker-kiosk {name} ")), None
    )
    assert row is not None, f"no row for locker-kiosk {name}"
    for action in subparser._actions:
        for flag in action.option_strings:
            if flag not in ("-h", "--help"):
                assert flag in row, f"{name} {flag}"
        for choice in action.choices or ():
            assert str(choice) in row, f"{name} {action.dest} {choice}"


def test_the_status_filter_lists_every_status(doc: str) -> None:
    row = next(line for line in doc.splitlines() if line.startswith("| `locker-kiosk parcels "))
    assert all(f"`{s.value}`" in row for s in AllocationStatus)
