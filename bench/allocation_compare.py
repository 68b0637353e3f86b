"""One commit's allocation service against an earlier commit's, measured in the same run.

Runs ``bench/allocation_bench.py`` of a baseline commit and of the current one (``HEAD`` unless
``--current`` names another), each checked out with ``git worktree`` in a temporary folder (so
edits to the working tree during the run change nothing) and run with this project's virtualenv
and its own code first on ``PYTHONPATH``, alternately, ``--rounds`` times, each on a database
of its own on the same server (their schemas differ). The first round loads both databases;
later rounds reuse them (``--reuse``: allocations deleted, doors freed, VACUUM). Every other
option is passed to both benchmarks unchanged.

The last line printed is one JSON object: per side, each round's figures (the benchmark's own
last line), and per mode and level the median throughput of each side and their ratio.

    .venv/bin/python bench/allocation_compare.py --baseline ad4de57 -- --locations 20000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str, check: bool = True) -> str:
    done = subprocess.run(  # noqa: S603 - fixed git commands on our own checkout
        ["git", *args],  # noqa: S607 - git from PATH, as a developer runs it
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=check,
    )
    return done.stdout.strip()


def _run(tree: Path, database: str, reuse: bool, passthrough: Sequence[str]) -> dict[str, Any]:
    command = [
        sys.executable,
        str(tree / "bench" / "allocation_bench.py"),
        "--database-name",
        database,
        *(["--reuse"] if reuse else []),
        *passthrough,
    ]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    print(f"# {tree.name}: {' '.join(command[1:])}", flush=True)
    done = subprocess.run(  # noqa: S603 - this interpreter on the benchmark script
        command, cwd=tree, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"the benchmark of {tree} failed ({done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _throughputs(result: dict[str, Any]) -> dict[str, float]:
    """``mode@clients`` -> allocations per second, from one benchmark's JSON."""
    found = {}
    for mode in ("single", "direct", "http"):
        for clients, figures in result.get(mode, {}).get("levels", {}).items():
            found[f"{mode}@{clients}"] = float(figures["allocations_per_s"])
    return found


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--baseline", required=True, help="the commit to compare against")
    p.add_argument("--current", default="HEAD", help="the commit measured against it")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("passthrough", nargs=argparse.REMAINDER, help="-- then allocation_bench options")
    args = p.parse_args(argv)
    passthrough = [a for a in args.passthrough if a != "--"]
    commit = _git("rev-parse", "--short", args.baseline)
    head = _git("rev-parse", "--short", args.current)
    with tempfile.TemporaryDirectory(prefix="alloc-baseline-") as scratch:
        base = Path(scratch) / f"baseline-{commit}"
        current = Path(scratch) / f"current-{head}"
        for tree, rev in ((base, commit), (current, head)):
            _git("worktree", "add", "--detach", str(tree), rev)
        try:
            sides: dict[str, list[dict[str, Any]]] = {"baseline": [], "current": []}
            for n in range(args.rounds):
                for side, tree in (("baseline", base), ("current", current)):
                    sides[side].append(_run(tree, f"bench_cmp_{side}", n > 0, passthrough))
        finally:
            for tree in (base, current):
                _git("worktree", "remove", "--force", str(tree), check=False)
    medians = {
        side: {
            key: statistics.median(_throughputs(r)[key] for r in runs)
            for key in _throughputs(runs[0])
        }
        for side, runs in sides.items()
    }
    comparison = {
        key: {
            "baseline_per_s": round(medians["baseline"][key], 1),
            "current_per_s": round(value, 1),
            "ratio": round(value / medians["baseline"][key], 3)
            if medians["baseline"][key]
            else None,
        }
        for key, value in medians["current"].items()
        if key in medians["baseline"]
    }
    for key, figures in comparison.items():
        print(f"{key:>14}: baseline {figures['baseline_per_s']:8.1f}/s  current "
              f"{figures['current_per_s']:8.1f}/s  x{figures['ratio']}")  # fmt: skip
    print(json.dumps({"baseline": commit, "current": head, "comparison": comparison,
                      "runs": sides}, default=str))  # fmt: skip


if __name__ == "__main__":
    main()
