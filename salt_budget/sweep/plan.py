"""The plan: every allocation T + S = N of the requested budgets (and the baselines asked for), checked
before anything starts."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

from trainers.config import ConfigError, config_hash
from trainers.encoders import encoder_description
from trainers.models.presets import encoder_spec
from trainers.stage_config import EncoderConfig, OptimConfig

from salt_budget.experiment import ExperimentConfig
from salt_budget.sweep.costs import token_grid
from salt_budget.sweep.units import (
    BASELINES, Allocation, BaselineUnit, Schedule, StudentUnit, TeacherId, TeacherUnit, baseline_unit, student_unit,
    teacher_unit,
)

# The paper's shares at 240k steps (20k, 40k, 80k teacher steps) and its 80k + 80k split of 160k.
DEFAULT_FRACTIONS = (Fraction(1, 12), Fraction(1, 6), Fraction(1, 3), Fraction(1, 2))


class PlanError(ConfigError):
    """A sweep request that cannot run; the message says what is wrong and what to ask for instead."""


@dataclass(frozen=True)
class SweepOptions:
    """What the command line asks for, on top of the experiment config."""

    total_steps: tuple[int, ...]
    name: str | None = None
    teacher_sizes: tuple[str, ...] = ()  # () -> the experiment's teacher preset
    teacher_steps: tuple[int, ...] = ()
    teacher_fractions: tuple[Fraction, ...] = ()  # () with no teacher_steps -> DEFAULT_FRACTIONS
    student_size: str | None = None
    seeds: tuple[int, ...] = ()  # () -> the experiment's seed
    search: Literal["grid", "optuna"] = "grid"
    trials: int | None = None
    teacher_schedule: Schedule = "wsd"
    cooldown_fraction: float = 0.2
    probe_points: int = 4
    baselines: tuple[str, ...] = ()  # methods of BASELINES, each trained once per budget and seed


@dataclass
class Plan:
    experiment: ExperimentConfig
    options: SweepOptions
    sweep_dir: Path
    allocations: list[Allocation]
    teachers: dict[TeacherId, TeacherUnit] = field(default_factory=dict)
    students: dict[str, StudentUnit] = field(default_factory=dict)  # by allocation id
    baselines: dict[str, BaselineUnit] = field(default_factory=dict)  # by baseline id

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
        for student in self.students.values():
            allocation = student.allocation
            if (allocation.teacher_size, allocation.teacher_steps) == (trial_config["teacher_size"],
                                                                        trial_config["teacher_steps"]):
                return student
        raise KeyError(f"no planned allocation matches the trial config {trial_config}")


def _grid(encoder: EncoderConfig, experiment: ExperimentConfig, what: str) -> tuple[int, int, int]:
    try:
        spec = encoder_spec(encoder.preset, encoder.patch_size, encoder.tubelet_size)
    except ValueError as error:
        raise PlanError(f"{what}: {error}") from None
    encoder_description(encoder, experiment.data)  # frames and resolution must divide into tokens
    return token_grid(spec, experiment.data)


def _teacher_steps(budget: int, options: SweepOptions) -> list[int]:
    if options.teacher_steps:
        for steps in options.teacher_steps:
            if steps < 1:
                raise PlanError(f"--teacher-steps {steps}: a teacher needs at least 1 step")
            if steps >= budget:
                raise PlanError(
                    f"--teacher-steps {steps} is not below the budget --total-steps {budget}: no student steps "
                    f"would be left; give teacher steps below every budget"
                )
        return sorted(set(options.teacher_steps))
    steps_list = []
    for fraction in options.teacher_fractions or DEFAULT_FRACTIONS:
        if not 0 < fraction < 1:
            raise PlanError(
                f"--teacher-fractions {float(fraction):g} lies outside (0, 1); a teacher share is between them"
            )
        steps = int(fraction * budget + Fraction(1, 2))
        if not 1 <= steps < budget:
            raise PlanError(
                f"teacher fraction {float(fraction):g} of --total-steps {budget} rounds to {steps} teacher steps, "
                f"leaving {'no teacher' if steps < 1 else 'no student'} steps; use a larger budget or another fraction"
            )
        steps_list.append(steps)
    return sorted(set(steps_list))


def _check_options(options: SweepOptions) -> None:
    if not options.total_steps:
        raise PlanError("--total-steps needs at least one budget")
    for budget in options.total_steps:
        if budget < 2:
            raise PlanError(f"--total-steps {budget}: a budget needs at least 2 steps (1 teacher + 1 student)")
    if options.teacher_steps and options.teacher_fractions:
        raise PlanError("give --teacher-steps or --teacher-fractions, not both")
    if not 0 < options.cooldown_fraction <= 0.5:
        raise PlanError(f"--cooldown-fraction {options.cooldown_fraction:g} must lie in (0, 0.5]")
    if options.probe_points < 1:
        raise PlanError(f"--probe-points {options.probe_points}: probe at least the final checkpoint (1)")
    for method in options.baselines:
        if method not in BASELINES:
            raise PlanError(f"--baselines {method}: unknown baseline; choose from {', '.join(BASELINES)}")
    if options.search == "optuna":
        if options.trials is None or options.trials < 1:
            raise PlanError("--search optuna needs --trials K >= 1: how many allocations the search may train")
        if len(set(options.total_steps)) > 1 or len(set(options.seeds)) > 1:
            raise PlanError(
                "--search optuna searches the teacher share of ONE budget and seed (a larger budget always wins); "
                "run one sweep per budget with the same --name to share the teachers"
            )
    elif options.trials is not None:
        raise PlanError("--trials applies to --search optuna; a grid sweep trains every allocation")


def build_plan(experiment: ExperimentConfig, options: SweepOptions) -> Plan:
    """Every allocation of the request, or a PlanError naming the first thing that cannot run."""
    _check_options(options)
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
    allocations = [
        Allocation(budget, size, steps, student_size, budget - steps, seed)
        for budget in dict.fromkeys(options.total_steps)
        for size in teacher_sizes
        for steps in _teacher_steps(budget, options)
        for seed in seeds
    ]
    sweep_dir = Path(experiment.runs_dir).expanduser().resolve() / experiment.name
    plan = Plan(experiment, options, sweep_dir, allocations)
    for allocation in allocations:
        tid = allocation.teacher_id
        if tid not in plan.teachers:
            unit = teacher_unit(sweep_dir, experiment, tid, options.teacher_schedule, options.cooldown_fraction)
            _validate_optim(unit.cfg.optim, f"teacher {tid.size} of {tid.steps} steps", "teacher")
            plan.teachers[tid] = unit
        student = student_unit(sweep_dir, experiment, allocation, plan.teachers[tid], options.probe_points)
        _validate_optim(student.cfg.optim, f"student of {allocation.student_steps} steps ({allocation.id})", "student")
        plan.students[allocation.id] = student
    for budget in dict.fromkeys(options.total_steps):
        for seed in seeds:
            for method in dict.fromkeys(options.baselines):
                # The student's encoder size, for the whole budget: the same encoder at matched total steps.
                unit = baseline_unit(sweep_dir, experiment, method, budget, student_size, seed, options.probe_points)
                _validate_optim(unit.cfg.optim, f"baseline {unit.id}", method)
                plan.baselines[unit.id] = unit
    return plan


def _validate_optim(optim: OptimConfig, what: str, stage: str) -> None:
    try:
        optim.validate()
    except ValueError as error:
        fix = {"teacher": " or --cooldown-fraction, or give it more steps",
               "vjepa2": " or its cooldown_steps, or give it a larger budget"}.get(stage, " or give it more steps")
        raise PlanError(f"{what}: {error}; lower {stage}.optim.warmup_steps{fix}") from None
