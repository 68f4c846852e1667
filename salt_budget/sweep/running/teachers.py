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

import time
from typing import Any

from salt_budget.sweep.planning.ladder import length_independent
from salt_budget.sweep.planning.teacher_ladders import TeacherLadders
from salt_budget.sweep.planning.plan import Plan
from salt_budget.sweep.results.store import append_rows, ok_steps, read_results
from salt_budget.sweep.running.rows import failed_row, teacher_row
from salt_budget.sweep.running.tracking import record_probe_row
from salt_budget.sweep.running.unit_run import run_unit, train_unit
from salt_budget.sweep.planning.units import TeacherUnit
from salt_budget.sweep.running.workers import Workers


class TeacherFailed(RuntimeError):
    """Some teachers of a ladder could not be trained; the message names each and why."""


def probe_teacher(unit: TeacherUnit, plan: Plan) -> float:
    """Probe a teacher's final checkpoint and append its row, once: the caller holds the teacher's
    lock, and a teacher that already has its row is skipped. Returns the seconds spent."""
    from trainers.probe.checkpoints import probe_checkpoint

    if unit.id.steps in ok_steps(read_results(plan.sweep_dir), unit.key):
        return 0.0
    started = time.perf_counter()
    result, _ = probe_checkpoint(unit.final_checkpoint, plan.experiment.data, plan.experiment.probe,
                                 seed=unit.id.seed, progress=False)
    seconds = time.perf_counter() - started
    record_probe_row(plan, unit, teacher_row(unit, result, sweep=plan.name, config_hash=plan.config_hash,
                                            probe_s=seconds))
    return seconds


def train_ladder(group: TeacherLadders, plan: Plan, rank: int | None = None) -> dict[str, Any]:
    """Train every teacher of `group` that is not done yet, each trunk before its branches (a Ray task, or a plain
    call).

    One teacher failing does not stop the others: each failed one gets a failed row in the results
    table, and TeacherFailed at the end names them (so that Ray may retry the task); a trunk that fails fails its
    branches. On a Ray Train worker (`rank` given) the first failure stops the ladder instead: every rank must run
    the same collectives, and the worker group is restarted as a whole; its driver writes the failed rows."""
    trained = 0
    failures: dict[str, tuple[TeacherUnit, str]] = {}  # by teacher key
    started, started_at = time.perf_counter(), time.time()
    for ladder in group.ladders:
        for unit in (ladder.trunk, *ladder.branches):
            try:
                trained += train_unit(unit, ladder, plan, rank)["trained_steps"]
            except Exception as error:
                if rank is not None:
                    raise
                if ladder.is_trunk(unit) and length_independent(unit.cfg):
                    reason = f"trunk ({unit.steps} steps) failed: {type(error).__name__}: {error}"
                    failures.update({u.key: (u, reason) for u in ladder.units if not ladder.is_trained(u)})
                    break
                failures[unit.key] = (unit, f"{type(error).__name__}: {error}")
    if failures:
        append_rows(plan.sweep_dir, [failed_row(unit, reason, sweep=plan.name, config_hash=plan.config_hash)
                                     for unit, reason in failures.values()])
        raise TeacherFailed("; ".join(f"teacher {unit.id.size} x {unit.id.steps} steps: {reason}"
                                      for unit, reason in failures.values()))
    return {"ladder": group.name, "trained_steps": trained, "train_s": time.perf_counter() - started,
            "started_at": started_at, "ended_at": time.time()}


def teachers_task(group: TeacherLadders, plan: Plan, workers: Workers = Workers(), max_failures: int = 0) -> dict[str, Any]:
    """A Ray task that trains `group` here or on `workers` (Ray Train); returns what train_ladder does."""
    trunk = group.trunk
    return run_unit(train_ladder, group, plan, run_dir=trunk.run_dir, trunk_dir=trunk.run_dir,
                    name=f"teachers-{trunk.key[:12]}", workers=workers, max_failures=max_failures)
