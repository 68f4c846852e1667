"""Baselines: each method asked for (--baselines) trained once per budget and seed, for the whole budget
(matched total steps), probed at as many checkpoints as a student, one row per checkpoint with the method
as its role. One Ray task per baseline run, after the students; a retried or resumed task continues
from the run's last checkpoint and probes only the checkpoints that have no row yet.

A wsd baseline whose EMA momentum is constant does not depend on its length before its cool-down, so the
runs of one method and seed at several budgets form a ladder (ladder.py): the longest trains once, a shorter
one is its cool-down from the trunk, and without a cool-down (constant lr) its step-N checkpoint is the
N-step run.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pandas as pd

from salt_budget.sweep.planning.plan import Plan
from salt_budget.sweep.running.ray_tasks import run_as_tasks
from salt_budget.sweep.results.store import append_rows, ok_steps, read_results
from salt_budget.sweep.running.rows import baseline_row, failed_row
from salt_budget.sweep.running.tracking import record_probe_row
from salt_budget.sweep.running.summary import SweepTimes, flagged, percent, say
from salt_budget.sweep.running.trial import probe_result
from salt_budget.sweep.planning.units import BaselineUnit
from salt_budget.sweep.running.unit_run import run_unit, train_unit
from salt_budget.sweep.running.workers import Workers

if TYPE_CHECKING:
    from salt_budget.sweep.running.resources import UnitResources


def _train(unit: BaselineUnit, plan: Plan, rank: int | None = None) -> float:
    """Train the run (and its ladder's trunk as far as it needs, as a student's trial does); the seconds spent."""
    return train_unit(unit, plan.baseline_ladders[unit.id], plan, rank)["train_s"]


def _probe(unit: BaselineUnit, plan: Plan) -> float:
    """Probe the checkpoints that have no row yet; the seconds spent."""
    spent = 0.0
    done = ok_steps(read_results(plan.sweep_dir), unit.key)
    ladder = plan.baseline_ladders[unit.id]
    for step in unit.checkpoint_steps:
        if step in done:
            continue
        started = time.perf_counter()
        checkpoint = ladder.checkpoint(unit, step)
        result = probe_result(checkpoint, plan, unit.seed)
        seconds = time.perf_counter() - started
        spent += seconds
        record_probe_row(plan, unit, baseline_row(unit, checkpoint, step, result, sweep=plan.name,
                                                  config_hash=plan.config_hash, probe_s=seconds))
    return spent


def _baseline_work(unit: BaselineUnit, plan: Plan, rank: int | None) -> dict[str, Any]:
    """Train what is missing of one baseline run, then probe its checkpoints that have no row yet (alone, or on
    rank 0 of its Ray Train workers once every rank trained); the seconds spent training and probing."""
    train_s = _train(unit, plan, rank)
    return {"train_s": train_s, "probe_s": _probe(unit, plan) if rank in (None, 0) else 0.0}


def baseline_task(unit: BaselineUnit, plan: Plan, workers: Workers = Workers(), max_failures: int = 0
                  ) -> dict[str, Any]:
    """A Ray task (or a plain call) that runs one baseline here or on `workers` (Ray Train) and waits."""
    return run_unit(_baseline_work, unit, plan, run_dir=unit.run_dir,
                    trunk_dir=plan.baseline_ladders[unit.id].trunk.run_dir, name=f"baseline-{unit.key[:12]}",
                    workers=workers, max_failures=max_failures)


def _finished(plan: Plan, unit: BaselineUnit) -> bool:
    return set(unit.checkpoint_steps) <= ok_steps(read_results(plan.sweep_dir), unit.key)


def train_baselines(plan: Plan, resources: UnitResources, times: SweepTimes) -> None:
    """One Ray task per baseline run not finished yet; one that fails for good gets a failed row."""
    todo = [unit for unit in plan.baselines.values() if not _finished(plan, unit)]
    if len(todo) < len(plan.baselines):
        say(f"{len(plan.baselines) - len(todo)} baseline run(s) already trained and probed: reused")
    if not todo:
        return
    started = time.perf_counter()
    say(f"training {len(todo)} baseline run(s) as Ray tasks")
    for unit, spent, reason in run_as_tasks(baseline_task, todo, plan, cpus=resources.cpus, gpus=resources.gpus,
                                            retries=resources.max_failures,
                                            args=(resources.workers, resources.max_failures),
                                            max_concurrent=resources.slots):
        if reason is not None:
            append_rows(plan.sweep_dir, [failed_row(unit, reason, sweep=plan.name, config_hash=plan.config_hash)])
            say(f"baseline {unit.id}: FAILED ({reason})")
            continue
        times.baseline_work["train_s"] += spent["train_s"]
        times.baseline_work["probe_s"] += spent["probe_s"]
        table = read_results(plan.sweep_dir)
        final = table[(table["unit_key"] == unit.key) & (table["step"] == unit.budget)].iloc[-1]
        # A baseline without a latent target (a pixel one, say) logs no target std and cannot collapse.
        target = "" if pd.isna(final["target_std"]) else f", target std {final['target_std']:.3f}"
        say(f"baseline {unit.id}: done, acc {percent(final['acc_mean'])}, FLOPs {final['flops_total']:.3g}{target}"
            + (" (COLLAPSED)" if flagged(final["collapsed"]) else ""))
    times.baselines_s = time.perf_counter() - started
