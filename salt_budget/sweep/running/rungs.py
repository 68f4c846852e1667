"""Training the units of a ladder (salt_budget/sweep/planning/ladder.py): a branch's run extends the shared trunk as
far as its branch point, then trains its own cool-down from the trunk's checkpoint there.

The trunk trains in segments that end at the branch points, each segment under the trunk's lock, so that a
branch can start as soon as the trunk passes its point, whichever trial comes first: the trunk's trial or a
branch's trial extends the trunk as far as it needs. Every segment ends with a checkpoint and a metrics row,
so the trunk's files do not depend on who trained which segment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from trainers.atomic import write_text
from trainers.checkpoint import list_checkpoints
from trainers.locks import file_lock

from salt_budget.sweep.planning.ladder import BRANCH_FILE, Rung, RunLadder, step_file

TRUNK_LOCK = ".trunk.lock"  # held while a segment of the trunk trains (the run's own .lock guards its trial)

# Trains `unit` with `cfg` in unit.run_dir, from `init_from` where given, pausing at `stop_at` where given.
TrainRun = Callable[..., Any]


def latest_step(run_dir: Path) -> int:
    existing = list_checkpoints(run_dir / "checkpoints")
    return existing[-1][0] if existing else 0


def _extend_trunk(ladder: RunLadder, upto: int, train_run: TrainRun, locked: bool) -> None:
    """Train the trunk through every segment that ends at or before `upto`."""
    trunk, cfg = ladder.trunk, ladder.trunk_config()
    for end in ladder.segment_ends():
        if end > upto:
            break
        with file_lock(trunk.run_dir / TRUNK_LOCK) if locked else nullcontext():
            if step_file(trunk.run_dir, end).is_file() or latest_step(trunk.run_dir) >= end:
                continue
            train_run(trunk, cfg, stop_at=end)


def _write_branch_file(unit: Rung, trunk: Rung, step: int) -> None:
    unit.run_dir.mkdir(parents=True, exist_ok=True)
    write_text(unit.run_dir / BRANCH_FILE,
               json.dumps({"trunk": trunk.key, "trunk_dir": str(trunk.run_dir), "step": step}, indent=2))


def _branch_source(trunk_dir: Path, point: int) -> tuple[int, Path] | None:
    """The trunk's checkpoint a branch at `point` starts from: the one at its point, else the last one before it.
    Before its point a branch runs the trunk's constant lr, so from an earlier checkpoint it trains the steps up to
    its point as the trunk would have, then its cool-down: the same run. A trunk extended past the point by
    another branch first (a search proposes lengths in any order, an earlier sweep had other points) thus still
    serves it."""
    before = [(step, path) for step, path in list_checkpoints(trunk_dir / "checkpoints") if step <= point]
    return before[-1] if before else None


def train_rung(ladder: RunLadder, unit: Rung, train_run: TrainRun, *, locked: bool = True,
               write: bool = True, stop_at: int | None = None) -> None:
    """Train `unit` of `ladder` to its end, and the trunk as far as it needs.

    `locked`: take the trunk's lock per segment (off on Ray Train workers, whose driver holds it: two ranks on
    one node would otherwise wait for each other). `write`: this process records the branch (rank 0).
    `stop_at`: a unit that trains alone (a ladder of one) pauses there."""
    if ladder.is_trained(unit):
        return
    if stop_at is not None:
        if ladder.branches:
            raise ValueError(f"stop_at applies to a run alone, not to a ladder of {len(ladder.units)} runs")
        train_run(unit, ladder.trunk_config(), stop_at=stop_at)
        return
    if ladder.is_trunk(unit):
        _extend_trunk(ladder, unit.steps, train_run, locked)
        return
    point = ladder.branch_point(unit)
    if latest_step(unit.run_dir) == 0:  # not started: it starts from the trunk
        _extend_trunk(ladder, point, train_run, locked)
        if point == unit.steps and step_file(ladder.trunk.run_dir, point).is_file():
            return  # no cool-down: the trunk's checkpoint is this run
        source = _branch_source(ladder.trunk.run_dir, point)
        if source is None:
            train_run(unit, unit.cfg)  # the trunk holds no checkpoint before this point: train alone
            return
        if write:
            _write_branch_file(unit, ladder.trunk, source[0])
        train_run(unit, unit.cfg, init_from=source[1])
        return
    train_run(unit, unit.cfg)  # a branch (or a run alone) continues from its own last checkpoint
