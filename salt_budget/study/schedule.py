"""Which sweeps of a study run side by side.

A sweep trains its units in phases (teacher ladders, then student trials, then baseline runs), each phase
as many units at once as it has ladders. A sweep with fewer such units than the machine has cores (a
variant of one allocation per seed: one teacher, one student) leaves cores idle for its whole length, so
the study runs it beside other such sweeps, each on a local Ray of its own capped at its share of the
cores; a sweep that can fill the machine runs alone. Sweeps of one folder never run at once (they share
units and results.parquet): they keep the file's order, which is also what lets a later ablation reuse
the units of an earlier one.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

from salt_budget.sweep.planning.plan import Plan
from salt_budget.sweep.running.resources import Resources
from salt_budget.sweep.planning.teacher_ladders import ladders


def machine_cpus() -> int:
    """The cores this process may use (a container's or `taskset`'s limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def sweep_width(plan: Plan) -> int:
    """The most units the sweep can train at once: its widest phase, counted in ladders (the rungs of one
    ladder train one after another)."""
    students = {id(ladder) for ladder in plan.student_ladders.values()}
    baselines = {id(ladder) for ladder in plan.baseline_ladders.values()}
    return max(1, len(ladders(plan)), len(students), len(baselines))


def unit_cpus(resources: Resources) -> float:
    """CPUs one unit holds (its own process, or its data-parallel workers)."""
    if resources.workers_per_trial > 1:
        return resources.workers_per_trial * resources.cpus_per_worker
    return resources.cpus_per_trial


def cpus_needed(plan: Plan, resources: Resources, cores: int) -> int:
    """The cores a sweep is given: enough for its widest phase, all of them when it can fill the machine."""
    return min(cores, max(1, math.ceil(sweep_width(plan) * unit_cpus(resources))))


def startable(pending: Sequence[int], running: Sequence[int], folders: Sequence[str], needs: Sequence[int],
              cores: int) -> list[int]:
    """The pending sweeps (indices, in the file's order) to start now: each whose cores are free and whose folder
    no running or earlier pending sweep uses. A later narrow sweep may start before an earlier wide one that
    waits for the whole machine: the wide one starts when the narrow ones are done."""
    free = cores - sum(needs[i] for i in running)
    busy = {folders[i] for i in running}
    chosen: list[int] = []
    for i in pending:
        if folders[i] in busy:
            continue
        busy.add(folders[i])  # later sweeps of this folder wait for it, started now or not
        if needs[i] <= free:
            chosen.append(i)
            free -= needs[i]
    return chosen
