"""Teachers first: each distinct teacher trained once (its probe runs in the first trial that needs it).

With the "wsd" schedule the teachers of one size and seed form a LADDER: a single trunk trained to
the longest teacher at constant lr (its own cool-down at the end makes it that teacher), with kept
checkpoints at T - cooldown(T) for every shorter T; each shorter teacher is a short cool-down branch
started from there (weights, optimiser, data position and step). Before its cool-down a wsd run
does not depend on its length, so the branch is the teacher a standalone T-step run would be, and
the ladder trains max(T) + the shorter teachers' cool-downs instead of the sum of all T.
With "cosine" (the paper's schedule) every T is its own run, still trained once.
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainers.stage_config import TeacherConfig

from salt_budget.sweep.ladder import BRANCH_FILE
from salt_budget.sweep.plan import Plan
from salt_budget.sweep.results import append_rows, ok_steps, read_results
from salt_budget.sweep.rows import failed_row, teacher_row
from salt_budget.sweep.units import TeacherUnit
from salt_budget.sweep.workers import Workers, record_process, run_on_workers


class TeacherFailed(RuntimeError):
    """Some teachers of a ladder could not be trained; the message names each and why."""


@dataclass(frozen=True)
class Ladder:
    """The teachers of one size and seed, by ascending steps."""

    units: tuple[TeacherUnit, ...]

    @property
    def name(self) -> str:
        first = self.units[0].id
        return f"{first.size} seed {first.seed}"

    @property
    def is_wsd(self) -> bool:
        return self.units[0].cfg.optim.schedule == "wsd"

    @property
    def trunk(self) -> TeacherUnit:
        return self.units[-1]

    def branch_point(self, unit: TeacherUnit) -> int:
        return unit.id.steps - unit.cfg.optim.cooldown_steps

    def trunk_config(self) -> TeacherConfig:
        cfg = copy.deepcopy(self.trunk.cfg)
        cfg.run.checkpoint_steps = sorted({self.branch_point(unit) for unit in self.units[:-1]})
        return cfg

    def steps_to_train(self) -> int:
        if not self.is_wsd:
            return sum(unit.id.steps for unit in self.units)
        return self.trunk.id.steps + sum(unit.cfg.optim.cooldown_steps for unit in self.units[:-1])


def ladders(plan: Plan) -> list[Ladder]:
    groups: dict[tuple[str, int], list[TeacherUnit]] = {}
    for tid, unit in sorted(plan.teachers.items()):
        groups.setdefault((tid.size, tid.seed), []).append(unit)
    return [Ladder(tuple(sorted(units, key=lambda u: u.id.steps))) for units in groups.values()]


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def _train(unit: TeacherUnit, cfg: TeacherConfig, plan: Plan, init_from: Path | None = None) -> int:
    """Train (or finish) one teacher run; returns the optimiser steps this call trained."""
    from trainers.checkpoint import list_checkpoints
    from trainers.train import train_teacher

    if unit.final_checkpoint.is_file():
        return 0
    existing = list_checkpoints(unit.run_dir / "checkpoints")
    start = existing[-1][0] if existing else (_step_of(init_from) if init_from else 0)
    record_process(unit.run_dir)
    train_teacher(cfg, plan.experiment.data, unit.run_dir, seed=unit.id.seed, init_from=init_from, progress=False)
    return unit.id.steps - start


def _step_of(checkpoint: Path) -> int:
    return int(checkpoint.stem.split("_")[1])


def probe_teacher(unit: TeacherUnit, plan: Plan) -> float:
    """Probe a teacher's final checkpoint and append its row, once: the caller holds the teacher's
    lock, and a teacher that already has its row is skipped. Returns the seconds spent."""
    from trainers.evaluate import probe_checkpoint

    if unit.id.steps in ok_steps(read_results(plan.sweep_dir), unit.key):
        return 0.0
    started = time.perf_counter()
    result, _ = probe_checkpoint(unit.final_checkpoint, plan.experiment.data, plan.experiment.probe,
                                 seed=unit.id.seed, progress=False)
    seconds = time.perf_counter() - started
    append_rows(plan.sweep_dir, [teacher_row(unit, result, sweep=plan.name, config_hash=plan.config_hash,
                                             probe_s=seconds)])
    return seconds


def train_ladder(ladder: Ladder, plan: Plan, rank: int | None = None) -> dict[str, Any]:
    """Train every teacher of `ladder` that is not done yet (a Ray task, or a plain call).

    One teacher failing does not stop the others: each failed one gets a failed row in the results
    table, and TeacherFailed at the end names them (so that Ray may retry the task). On a Ray Train
    worker (`rank` given) the first failure stops the ladder instead: every rank must run the same
    collectives, and the worker group is restarted as a whole; its driver writes the failed rows."""
    trained = 0
    failures: dict[str, tuple[TeacherUnit, str]] = {}  # by teacher key
    started, started_at = time.perf_counter(), time.time()
    units = ladder.units
    if ladder.is_wsd:
        units = ladder.units[:-1]
        try:
            trained += _train(ladder.trunk, ladder.trunk_config(), plan)
        except Exception as error:
            if rank is not None:
                raise
            reason = f"trunk ({ladder.trunk.id.steps} steps) failed: {type(error).__name__}: {error}"
            failures = {unit.key: (unit, reason) for unit in ladder.units if not unit.final_checkpoint.is_file()}
            units = ()
    for unit in units:
        if unit.final_checkpoint.is_file():
            continue
        try:
            trained += _train(unit, unit.cfg, plan, init_from=_branch_source(ladder, unit, write=rank in (None, 0)))
        except Exception as error:
            if rank is not None:
                raise
            failures[unit.key] = (unit, f"{type(error).__name__}: {error}")
    if failures:
        append_rows(plan.sweep_dir, [failed_row(unit, reason, sweep=plan.name, config_hash=plan.config_hash)
                                     for unit, reason in failures.values()])
        raise TeacherFailed("; ".join(f"teacher {unit.id.size} x {unit.id.steps} steps: {reason}"
                                      for unit, reason in failures.values()))
    return {"ladder": ladder.name, "trained_steps": trained, "train_s": time.perf_counter() - started,
            "started_at": started_at, "ended_at": time.time()}


def ladder_on_workers(ladder: Ladder, plan: Plan, workers: Workers, max_failures: int) -> dict[str, Any]:
    """A Ray task that trains `ladder` on `workers` (Ray Train) and waits; returns what train_ladder does."""
    return run_on_workers(train_ladder, ladder, plan, run_dir=ladder.trunk.run_dir,
                          name=f"teachers-{ladder.trunk.key[:12]}", workers=workers, max_failures=max_failures)


def _branch_source(ladder: Ladder, unit: TeacherUnit, write: bool = True) -> Path | None:
    """The trunk checkpoint a cool-down branch starts from (recorded in the branch's folder), or None."""
    if not ladder.is_wsd:
        return None
    point = ladder.branch_point(unit)
    source = ladder.trunk.run_dir / "checkpoints" / f"step_{point:08d}.pt"
    # A trunk finished by an earlier sweep with another ladder may lack this point: then it trains alone.
    if not source.is_file():
        return None
    if not write:  # another rank of a Ray Train group records it
        return source
    unit.run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(unit.run_dir / BRANCH_FILE, {"trunk": ladder.trunk.key, "trunk_dir": str(ladder.trunk.run_dir),
                                             "step": point})
    return source
