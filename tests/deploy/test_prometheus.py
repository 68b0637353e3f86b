"""deploy/prometheus: the alerting rules pass `promtool test rules`, the example configuration
passes `promtool check config`, and every metric a rule uses is one the service exports.

promtool is Debian's prometheus package (`scripts/install-system-tools`, run by scripts/check).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from cloud import metrics
from cloud.store.fleet_stats import FleetStats

FOLDER = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed: run scripts/install-system-tools")
    return found


def run(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_alerting_rules_pass_their_unit_tests() -> None:
    assert "SUCCESS: 10 rules found" in run("check", "rules", "alerts.yml", cwd=FOLDER)
    assert "SUCCESS" in run("test", "rules", "alerts.test.yml", cwd=FOLDER)


def test_the_example_prometheus_configuration_is_valid(tmp_path: Path) -> None:
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(FOLDER / name, tmp_path / name)
    (tmp_path / "metrics-token").write_text("a-token\n")
    assert "SUCCESS" in run("check", "config", "prometheus.yml", cwd=tmp_path)


def test_every_metric_the_rules_use_is_exported() -> None:
    rules = (FOLDER / "alerts.yml").read_text()
    used = set(re.findall(r"\b(locker_[a-z_]+)", rules))
    assert used
    exported = {
        metric.name
        for registry in (REGISTRY, metrics.fleet_registry(FleetStats()))
        for metric in registry.collect()
    }
    # Counters are exported as <name>_total.
    exported |= {f"{name}_total" for name in exported}
    assert sorted(used - exported) == []
