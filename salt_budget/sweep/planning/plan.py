"""The plan: every allocation T + S = N of the requested budgets (and the baselines asked for), checked
before anything starts."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from trainers.config import config_hash
from trainers.encoders import encoder_description
from trainers.models.presets import encoder_spec
from trainers.registry import baselines
from trainers.stage_config import EncoderConfig, OptimConfig
from trainers.stage_costs import token_grid

from salt_budget.experiment import ExperimentConfig
from salt_budget.sweep.planning.budgets import baseline_steps, flops_allocations, teacher_steps
from salt_budget.sweep.planning.options import PlanError, SweepOptions, check_options
from salt_budget.sweep.planning.ladder import RunLadder, ladder_group, ladders_of
from salt_budget.sweep.planning.search_space import add_search_units, bound_allocations, proposal_student
from salt_budget.sweep.planning.units import (
    Allocation, BaselineUnit, StudentUnit, TeacherId, TeacherUnit, baseline_unit, data_view,
    student_unit, teacher_unit,
)


@dataclass
class Plan:
    experiment: ExperimentConfig
    options: SweepOptions
    sweep_dir: Path
    allocations: list[Allocation]
    teachers: dict[TeacherId, TeacherUnit] = field(default_factory=dict)
    students: dict[str, StudentUnit] = field(default_factory=dict)  # by allocation id
    baselines: dict[str, BaselineUnit] = field(default_factory=dict)  # by baseline id
    # The ladder each teacher (by id), student (by allocation id) and baseline (by baseline id) trains in (ladder.py).
    teacher_ladders: dict[TeacherId, RunLadder] = field(default_factory=dict)
    student_ladders: dict[str, RunLadder] = field(default_factory=dict)
    baseline_ladders: dict[str, RunLadder] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.experiment.name

    @property
    def config_hash(self) -> str:
        return config_hash(self.experiment)

    def student_for(self, trial_config: dict) -> StudentUnit:
        """The unit a Tune trial trains: named by the grid, or picked by the search (one budget and seed)."""
        if "allocation" in trial_config:
            return self.students[trial_config["allocation"]]
        if "teacher_share" in trial_config:  # a proposal: its units join the plan (search_space.py)
            return proposal_student(self, trial_config)
        raise KeyError(f"no planned allocation matches the trial config {trial_config}")


def _grid(encoder: EncoderConfig, experiment: ExperimentConfig, what: str) -> tuple[int, int, int]:
    try:
        spec = encoder_spec(encoder.preset, encoder.patch_size, encoder.tubelet_size)
    except ValueError as error:
        raise PlanError(f"{what}: {error}") from None
    encoder_description(encoder, experiment.data)  # frames and resolution must divide into tokens
    return token_grid(spec, experiment.data)


def build_plan(experiment: ExperimentConfig, options: SweepOptions) -> Plan:
    """Every allocation of the request, or a PlanError naming the first thing that cannot run."""
    check_options(options)
    experiment = copy.deepcopy(experiment)
    if options.name:
        experiment.name = options.name
    # Every worker (and every node of a cluster) must read the same data set, whatever its environment.
    experiment.data.cache_dir = str(experiment.data.resolved_cache_dir())
    student_size = options.student_size or experiment.student.encoder.preset
    teacher_sizes = list(dict.fromkeys(options.teacher_sizes or (experiment.teacher.encoder.preset,)))
    seeds = list(dict.fromkeys(options.seeds or (experiment.seed,)))
    student_grid = _grid(dataclasses.replace(experiment.student.encoder, preset=student_size), experiment,
                         "--student-size")
    for size in teacher_sizes:
        grid = _grid(dataclasses.replace(experiment.teacher.encoder, preset=size), experiment, "--teacher-sizes")
        if grid != student_grid:
            raise PlanError(
                f"teacher {size!r} gives a token grid {grid}, the student {student_size!r} {student_grid}: a frozen "
                f"teacher must produce one target per student token; choose sizes with equal patch and tubelet "
                f"sizes (the CPU presets use patch 8, the ViT presets 16) or set teacher.encoder.patch_size"
            )
    if options.search == "optuna":
        allocations = []  # the bounds' allocations, once the plan exists (search_space.py)
    elif options.total_flops:
        allocations = [allocation for flops in options.budgets for size in teacher_sizes
                       for allocation in flops_allocations(experiment, options, flops, size, student_size,
                                                            options.seeds_of(flops, seeds))]
    else:
        allocations = [
            Allocation(budget, size, steps, student_size, budget - steps, seed)
            for budget in options.budgets
            for size in teacher_sizes
            for steps in teacher_steps(budget, options)
            for seed in options.seeds_of(budget, seeds)
        ]
    sweep_dir = Path(experiment.runs_dir).expanduser().resolve() / experiment.name
    plan = Plan(experiment, options, sweep_dir, allocations)
    if options.search == "optuna":
        plan.allocations = bound_allocations(plan)
        for allocation in plan.allocations:
            student = add_search_units(plan, allocation)
            _validate_optim(student.teacher.cfg.optim, f"teacher {student.teacher.id.size} of "
                            f"{student.teacher.steps} steps", "teacher")
            _validate_optim(student.cfg.optim, f"student of {allocation.student_steps} steps ({allocation.id})",
                            "student")
    for allocation in allocations:  # a grid's (a search's units are in the plan already)
        tid = allocation.teacher_id
        if tid not in plan.teachers:
            unit = teacher_unit(sweep_dir, experiment, tid, options.teacher_schedule, options.cooldown_fraction)
            _validate_optim(unit.cfg.optim, f"teacher {tid.size} of {tid.steps} steps", "teacher")
            plan.teachers[tid] = unit
        student = student_unit(sweep_dir, experiment, allocation, plan.teachers[tid], options.probe_points,
                               options.students_schedule, options.cooldown_fraction)
        _validate_optim(student.cfg.optim, f"student of {allocation.student_steps} steps ({allocation.id})", "student")
        plan.students[allocation.id] = student
    for budget in options.budgets:
        for seed in options.seeds_of(budget, seeds):
            for method in dict.fromkeys(options.baselines):
                # The student's encoder size, for the whole budget: the same encoder at matched total steps or FLOPs.
                steps, flops = int(budget), None
                if options.total_flops:
                    steps, flops = baseline_steps(experiment, method, budget, student_size), budget
                unit = baseline_unit(sweep_dir, experiment, method, steps, student_size, seed,
                                     options.baseline_probe_points or options.probe_points,
                                     budget_flops=flops)
                _validate_optim(unit.cfg.optim, f"baseline {unit.id}", method)
                plan.baselines[unit.id] = unit
    data = data_view(experiment.data)
    # A search's teachers and students have their search ladders already (search_space.py).
    for ladder in ladders_of(plan.teachers.values() if options.search == "grid" else (), lambda unit: ladder_group(
            unit, {"kind": "teacher", "seed": unit.seed, "data": data})):
        plan.teacher_ladders.update({unit.id: ladder for unit in ladder.units})
    for ladder in ladders_of(plan.students.values() if options.search == "grid" else (), lambda unit: ladder_group(
            unit, {"kind": "student", "seed": unit.allocation.seed, "teacher": unit.teacher.key, "data": data})):
        plan.student_ladders.update({unit.allocation.id: ladder for unit in ladder.units})
    for ladder in ladders_of(plan.baselines.values(), lambda unit: ladder_group(
            unit, {"kind": unit.method, "seed": unit.seed, "data": data})):
        plan.baseline_ladders.update({unit.id: ladder for unit in ladder.units})
    return plan


def _validate_optim(optim: OptimConfig, what: str, stage: str) -> None:
    try:
        optim.validate()
    except ValueError as error:
        fix = (" or --cooldown-fraction, or give it more steps" if stage == "teacher" else
               " or its cooldown_steps, or give it a larger budget" if stage in baselines() else " or give it more steps")
        raise PlanError(f"{what}: {error}; lower {stage}.optim.warmup_steps{fix}") from None
