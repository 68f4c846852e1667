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

from trainers.locks import file_lock
from salt_budget.sweep.ladder import TRUNK_LOCK, train_rung
from salt_budget.sweep.plan import Plan
from salt_budget.sweep.ray_tasks import run_as_tasks
from salt_budget.sweep.results import append_rows, ok_steps, read_results
from salt_budget.sweep.rows import baseline_row, failed_row
from salt_budget.sweep.summary import SweepTimes, percent, say
from salt_budget.sweep.trial import probe_result
from salt_budget.sweep.units import BaselineUnit
from salt_budget.sweep.workers import Workers, record_process, run_on_workers

if TYPE_CHECKING:
    from salt_budget.sweep.runner import UnitResources


def _train(unit: BaselineUnit, plan: Plan, rank: int | None = None) -> float:
    """Train the run (and its ladder's trunk as far as it needs, as a student's trial does); the seconds spent."""
    from trainers.train import train_vjepa2

    ladder = plan.baseline_ladders[unit.id]
    if ladder.is_trained(unit):
        return 0.0

    def train_run(rung: BaselineUnit, cfg, **kwargs) -> None:
        record_process(rung.run_dir)
        train_vjepa2(cfg, plan.experiment.data, rung.run_dir, seed=rung.seed, progress=False, **kwargs)

    started = time.perf_counter()
    train_rung(ladder, unit, train_run, locked=rank is None, write=rank in (None, 0))
    return time.perf_counter() - started


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
        append_rows(plan.sweep_dir, [baseline_row(unit, checkpoint, step, result, sweep=plan.name,
                                                  config_hash=plan.config_hash, probe_s=seconds)])
    return spent


def train_and_probe_baseline(unit: BaselineUnit, plan: Plan) -> dict[str, Any]:
    """Train what is missing of one baseline run and probe its checkpoints (a Ray task, or a plain call);
    returns the seconds spent training and probing."""
    with file_lock(unit.run_dir / ".lock"):
        train_s = _train(unit, plan)
        return {"train_s": train_s, "probe_s": _probe(unit, plan)}


def baseline_on_rank(unit: BaselineUnit, plan: Plan, rank: int) -> dict[str, Any]:
    """One Ray Train worker of a baseline run: every rank trains, rank 0 then probes and writes the rows."""
    train_s = _train(unit, plan, rank)
    return {"train_s": train_s, "probe_s": _probe(unit, plan) if rank == 0 else 0.0}


def baseline_on_workers(unit: BaselineUnit, plan: Plan, workers: Workers, max_failures: int) -> dict[str, Any]:
    """A Ray task that runs one baseline on `workers` (Ray Train) and waits."""
    trunk = plan.baseline_ladders[unit.id].trunk
    with file_lock(unit.run_dir / ".lock"), file_lock(trunk.run_dir / TRUNK_LOCK):
        return run_on_workers(baseline_on_rank, unit, plan, run_dir=unit.run_dir, name=f"baseline-{unit.key[:12]}",
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
    function, args = train_and_probe_baseline, ()
    if resources.workers.distributed:
        function, args = baseline_on_workers, (resources.workers, resources.max_failures)
    for unit, spent, reason in run_as_tasks(function, todo, plan, cpus=resources.cpus, gpus=resources.gpus,
                                            retries=resources.max_failures, args=args, max_concurrent=resources.slots):
        if reason is not None:
            append_rows(plan.sweep_dir, [failed_row(unit, reason, sweep=plan.name, config_hash=plan.config_hash)])
            say(f"baseline {unit.id}: FAILED ({reason})")
            continue
        times.baseline_work["train_s"] += spent["train_s"]
        times.baseline_work["probe_s"] += spent["probe_s"]
        table = read_results(plan.sweep_dir)
        final = table[(table["unit_key"] == unit.key) & (table["step"] == unit.budget)].iloc[-1]
        say(f"baseline {unit.id}: done, acc {percent(final['acc_mean'])}, FLOPs {final['flops_total']:.3g}, "
            f"target std {final['target_std']:.3f}" + (" (COLLAPSED)" if final["collapsed"] else ""))
    times.baselines_s = time.perf_counter() - started
