"""What an optuna search draws from, and the units a proposal becomes.

The search draws the teacher share of ONE budget and seed on a log scale between the user's bounds (and the teacher
size, where several are given); a share becomes T teacher steps (of a step budget, or the steps whose FLOPs are that
share of a FLOPs budget) and the rest of the budget student steps. The plan holds the two bounds' allocations from
the start (its table prices them); each proposal adds its own units when a trial (or the driver) asks for it.

With "wsd" the teachers of one size share a SEARCH TRUNK: a constant-lr run as long as the longest teacher the
bounds allow, which keeps every checkpoint it writes (its runs stop at the branch points proposals ask for). A
proposed teacher is a cool-down branch from the trunk's checkpoint at its branch point, or from the last one before
it (salt_budget/sweep/running/rungs.py): proposals come in any order, and each trains only what no earlier one did.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from salt_budget.sweep.planning.budgets import flops_allocations
from salt_budget.sweep.planning.ladder import RunLadder, length_independent
from salt_budget.sweep.planning.options import PlanError, share_bounds
from salt_budget.sweep.planning.units import (
    Allocation, StudentUnit, TeacherId, TeacherUnit, student_unit, teacher_key, teacher_unit,
)

# The search trunk's periodic checkpoints, all kept: each may be the branch point of a later proposal.
KEEP_ALL = 1_000_000


@dataclass(frozen=True)
class SearchLadder(RunLadder):
    """A proposed teacher and its size's search trunk. The trunk's config is its own whatever the proposal: a trunk
    shared by every proposal must keep one config (its run folder refuses another)."""

    def trunk_config(self) -> Any:
        return copy.deepcopy(self.trunk.cfg)


def unit_seed(plan: Any) -> int:
    """The one seed a search trains its units with (check_options allows one)."""
    return (plan.options.seeds or (plan.experiment.seed,))[0]


def allocation_for(plan: Any, share: float, size: str) -> Allocation:
    """The allocation a proposed teacher share of the plan's budget becomes (at least 1 teacher and 1 student
    step)."""
    options, seed = plan.options, unit_seed(plan)
    student_size = options.student_size or plan.experiment.student.encoder.preset
    if options.total_flops:
        grid_options = replace(options, teacher_fractions=(Fraction(share),), teacher_steps=())
        return flops_allocations(plan.experiment, grid_options, options.budgets[0], size, student_size, [seed])[0]
    budget = int(options.budgets[0])
    steps = min(budget - 1, max(1, round(share * budget)))
    return Allocation(budget, size, steps, student_size, budget - steps, seed)


def _trunk(plan: Any, size: str) -> TeacherUnit:
    top = allocation_for(plan, share_bounds(plan.options)[1], size).teacher_steps
    unit = teacher_unit(plan.sweep_dir, plan.experiment, TeacherId(size, top, unit_seed(plan)),
                        plan.options.teacher_schedule, plan.options.cooldown_fraction)
    cfg = copy.deepcopy(unit.cfg)
    cfg.run.keep_last = KEEP_ALL  # also makes its key (and folder) its own, apart from a grid's teacher of `top`
    key = teacher_key(unit.id.seed, plan.experiment.data, cfg)
    return TeacherUnit(unit.id, key, cfg, plan.sweep_dir / "teachers" / key)


def is_search_trunk(unit: Any) -> bool:
    return unit.kind == "teacher" and unit.cfg.run.keep_last == KEEP_ALL


def add_search_units(plan: Any, allocation: Allocation) -> StudentUnit:
    """The allocation's teacher, student and their ladders in the plan (once); its student."""
    if allocation.id in plan.students:
        return plan.students[allocation.id]
    options = plan.options
    tid = allocation.teacher_id
    if tid not in plan.teachers:
        teacher = teacher_unit(plan.sweep_dir, plan.experiment, tid, options.teacher_schedule,
                               options.cooldown_fraction)
        plan.teachers[tid] = teacher
        trunk = _trunk(plan, tid.size)
        shared = length_independent(teacher.cfg) and trunk.steps > teacher.steps - teacher.cfg.optim.cooldown_steps
        plan.teacher_ladders[tid] = SearchLadder((teacher, trunk)) if shared else RunLadder((teacher,))
    student = student_unit(plan.sweep_dir, plan.experiment, allocation, plan.teachers[tid], options.probe_points,
                           options.students_schedule, options.cooldown_fraction)
    plan.students[allocation.id] = student
    plan.student_ladders[allocation.id] = RunLadder((student,))  # each proposal has its own teacher: alone
    return student


def proposal_student(plan: Any, trial_config: dict[str, Any]) -> StudentUnit:
    """The student of a trial's proposal {"teacher_share": x, "teacher_size": s (where several sizes)}."""
    sizes = search_sizes(plan)
    size = trial_config.get("teacher_size", sizes[0])
    if size not in sizes:
        raise PlanError(f"the search proposed teacher size {size!r}, not one of {sizes}")
    return add_search_units(plan, allocation_for(plan, float(trial_config["teacher_share"]), size))


def search_sizes(plan: Any) -> list[str]:
    return list(dict.fromkeys(plan.options.teacher_sizes or (plan.experiment.teacher.encoder.preset,)))


def bound_allocations(plan: Any) -> list[Allocation]:
    """The allocations of the bounds' shares for every teacher size: what the plan's table prices."""
    low, high = share_bounds(plan.options)
    found = {}
    for size in search_sizes(plan):
        for share in (low, high):
            allocation = allocation_for(plan, share, size)
            found.setdefault(allocation.id, allocation)
    return list(found.values())


def search_space_text(plan: Any) -> str:
    low, high = share_bounds(plan.options)
    steps = [(a.teacher_steps, a.student_steps) for a in plan.allocations]
    spread = f"{math.log10(high / low):.2f} decades"
    return (f"optuna TPE (seed {plan.options.search_seed if plan.options.search_seed is not None else plan.experiment.seed}) "
            f"over the teacher share {low:.4g}..{high:.4g} on a log scale ({spread}; teacher steps "
            f"{min(t for t, _ in steps)}..{max(t for t, _ in steps)}), {plan.options.trials} trials, pruning "
            f"{plan.options.pruning}" + (f" after {plan.options.pruning_startup} finished trials"
                                         if plan.options.pruning != "none" else ""))
