"""The micro sweep of tests/test_sweep_run.py as a table to compare across code versions (issue 26: a move that
changes no behaviour leaves it identical on one machine).

    python benchmarks/micro_table.py run OUT            # the sweep into OUT/runs, its table to OUT/table.csv
    python benchmarks/micro_table.py compare A.csv B.csv

Run both versions into the same OUT (the run folder enters config_hash and the checkpoint paths); with another
checkout first on the path (cd there, CODE=/path/to/checkout) for the older version. Times, the git commit and the
checkpoint paths are left out; every other column must be equal, value for value.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

VOLATILE = ("train_wall_s", "probe_wall_s", "git_dirty", "written_at", "checkpoint", "git_commit", "code_version")


def run(out: Path) -> int:
    sys.path.insert(0, os.environ.get("CODE", str(Path(__file__).resolve().parent.parent)))
    from tests.test_sweep_run import SWEEP, overrides

    from salt_budget.cli import main

    code = main([*SWEEP, *overrides(out / "runs", out / "cache")])
    try:
        from salt_budget.sweep.results.store import read_results
    except ImportError:  # a checkout from before sweep/ was grouped by concern
        from salt_budget.sweep.results import read_results
    table = read_results(out / "runs" / "micro")
    table = table.drop(columns=[c for c in VOLATILE if c in table]).sort_values(["unit_key", "step"])
    table.reset_index(drop=True).to_csv(out / "table.csv", index=False)
    print(f"{len(table)} rows, sweep exit {code}: {out / 'table.csv'}")
    return code


def compare(a: Path, b: Path) -> int:
    import pandas as pd

    left, right = pd.read_csv(a).astype(str), pd.read_csv(b).astype(str)
    if list(left.columns) != list(right.columns) or left.shape != right.shape:
        print(f"shapes {left.shape} and {right.shape}; columns in one only: {set(left.columns) ^ set(right.columns)}")
        return 1
    differ = {c: int((left[c] != right[c]).sum()) for c in left.columns if not left[c].equals(right[c])}
    print(f"{len(left)} rows x {len(left.columns)} columns: " + (f"differ in {differ}" if differ else "identical"))
    return 1 if differ else 0


if __name__ == "__main__":
    command, *paths = sys.argv[1:]
    sys.exit(run(Path(paths[0])) if command == "run" else compare(Path(paths[0]), Path(paths[1])))
