"""Running any unit of a sweep (teacher, student, baseline): its training on its ladder, and the unit's work here
or on Ray Train workers. Each kind differs only in what its work does after training (probe, rows); how a unit
trains, resumes, shares a trunk and spreads over workers is said once, here."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

from trainers.checkpoint import checkpoint_step
from trainers.locks import file_lock

from salt_budget.sweep.planning.ladder import Rung, RunLadder
from salt_budget.sweep.running.rungs import TRUNK_LOCK, latest_step, train_rung
from salt_budget.sweep.results.processes import record_process
from salt_budget.sweep.running.tracking import unit_tracking
from salt_budget.sweep.running.workers import Workers, run_on_workers

UNIT_LOCK = ".lock"  # in a unit's run directory: held by whichever process (trial, task, driver) runs it


def train_unit(unit: Rung, ladder: RunLadder, plan: Any, rank: int | None = None,
               stop_at: int | None = None) -> dict[str, float]:
    """Train `unit` (or finish it from its last checkpoint), and its ladder's trunk as far as it needs:
    {"train_s": seconds, "trained_steps": optimiser steps this call trained}. `stop_at`: pause a unit that trains
    alone (a ladder of one) at that step, with its checkpoint there (a search trial probes it before going on).

    On Ray Train workers (`rank` given) every rank calls it, without the trunk's lock (the unit's driver holds it:
    two ranks on one node would otherwise wait for each other); rank 0 alone records a branch. A finished run
    returns at once on every rank alike."""
    from trainers.train import train_stage

    spent = {"train_s": 0.0, "trained_steps": 0}
    if ladder.is_trained(unit) or (stop_at is not None and latest_step(unit.run_dir) >= stop_at):
        return spent

    def train_run(rung: Rung, cfg: Any, *, init_from: Path | None = None, stop_at: int | None = None) -> None:
        start = latest_step(rung.run_dir) or (checkpoint_step(init_from) if init_from else 0)
        record_process(rung.run_dir)
        train_stage(rung.kind, cfg, plan.experiment.data, rung.run_dir, seed=rung.seed, init_from=init_from,
                    progress=False, stop_at=stop_at,
                    tracking=unit_tracking(plan, rung) if rank in (None, 0) else None)
        spent["trained_steps"] += (stop_at or cfg.optim.steps) - start

    started = time.perf_counter()
    train_rung(ladder, unit, train_run, locked=rank is None, write=rank in (None, 0), stop_at=stop_at)
    spent["train_s"] = time.perf_counter() - started
    return spent


# What a unit's process does: work(unit, plan, rank); rank None when it runs alone in this process.
Work = Callable[[Any, Any, "int | None"], Any]


def run_unit(work: Work, unit: Any, plan: Any, *, run_dir: Path, trunk_dir: Path, name: str,
             workers: Workers = Workers(), max_failures: int = 0) -> Any:
    """`work(unit, plan, rank)` under the unit's lock: here (rank None), or on `workers.count` Ray Train workers
    (each with its rank), this process holding the trunk's lock for them too and only waiting. Returns what work
    returns (rank 0's on workers)."""
    with ExitStack() as held:
        # A search may propose one allocation twice: a second process waits for the first, then finds the work done.
        held.enter_context(file_lock(run_dir / UNIT_LOCK))
        if not workers.distributed:
            return work(unit, plan, None)
        held.enter_context(file_lock(trunk_dir / TRUNK_LOCK))
        return run_on_workers(work, unit, plan, run_dir=run_dir, name=name, workers=workers,
                              max_failures=max_failures)
