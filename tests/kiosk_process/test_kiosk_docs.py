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
    # The keys come from the models the parser validates with, so none can be missed.
    accepted = {f"kiosk.{k}" for k in config.KioskTable.known_keys()}
    accepted |= {f"rules.{k}" for k in config.RulesTable.known_keys()}
    accepted |= {f"monitor.{k}" for k in config.MonitorTable.known_keys()}
    accepted |= {"layout"}
    accepted |= {f"sync.{k}" for k in config.SyncTable.known_keys()}
    assert accepted == set(config.DOCUMENTED_KEYS)
    tables = {key.split(".")[0] for key in config.DOCUMENTED_KEYS}
    tables |= {key.split(".")[0] for key in hardware_config.DOCUMENTED_KEYS}
    assert tables == set(config.ConfigFile.known_keys())


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
