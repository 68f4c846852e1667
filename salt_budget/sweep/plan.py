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
from salt_budget.sweep.costs import (
    student_flops_per_clip, teacher_flops_per_clip, token_grid, vjepa2_flops_per_clip,
)
from salt_budget.sweep.ladder import RunLadder, ladder_group, ladders_of
from salt_budget.sweep.units import (
    BASELINES, Allocation, BaselineUnit, Schedule, StudentUnit, TeacherId, TeacherUnit, baseline_unit, data_view,
    student_unit, teacher_unit,
)

# The paper's shares at 240k steps (20k, 40k, 80k teacher steps) and its 80k + 80k split of 160k.
DEFAULT_FRACTIONS = (Fraction(1, 12), Fraction(1, 6), Fraction(1, 3), Fraction(1, 2))


class PlanError(ConfigError):
    """A sweep request that cannot run; the message says what is wrong and what to ask for instead."""


@dataclass(frozen=True)
class SweepOptions:
    """What the command line asks for, on top of the experiment config."""

    total_steps: tuple[int, ...] = ()
    name: str | None = None
    teacher_sizes: tuple[str, ...] = ()  # () -> the experiment's teacher preset
    teacher_steps: tuple[int, ...] = ()
    teacher_fractions: tuple[Fraction, ...] = ()  # () with no teacher_steps -> DEFAULT_FRACTIONS
    student_size: str | None = None
    seeds: tuple[int, ...] = ()  # () -> the experiment's seed
    search: Literal["grid", "optuna"] = "grid"
    trials: int | None = None
    teacher_schedule: Schedule = "wsd"
    student_schedule: Schedule | None = None  # None: the teachers' (wsd: students of a teacher share a trunk)
    cooldown_fraction: float = 0.2
    probe_points: int = 4
    # Checkpoints probed per baseline run; None: probe_points. A baseline's loss is known not to predict its
    # accuracy (docs/paper.md section 10), so a study reads its final checkpoint only and saves the probes.
    baseline_probe_points: int | None = None
    baselines: tuple[str, ...] = ()  # methods of BASELINES, each trained once per budget and seed
    total_flops: tuple[float, ...] = ()  # budgets in FLOPs instead of steps (one of the two)
    # budget -> the seeds that train it, where fewer than `seeds` (a study extends its largest budget with fewer
    # seeds: in one sweep, those seeds' ladders reach the large budget from the trunk the smaller ones share)
    budget_seeds: dict[float, tuple[int, ...]] = field(default_factory=dict)

    @property
    def budgets(self) -> tuple[float, ...]:
        return tuple(dict.fromkeys(self.total_flops or self.total_steps))

    def seeds_of(self, budget: float, seeds: list[int]) -> list[int]:
        return [seed for seed in seeds if budget not in self.budget_seeds or seed in self.budget_seeds[budget]]

    @property
    def students_schedule(self) -> Schedule:
        return self.student_schedule or self.teacher_schedule


@dataclass
class Plan:
    experiment: ExperimentConfig
    options: SweepOptions
    sweep_dir: Path
    allocations: list[Allocation]
    teachers: dict[TeacherId, TeacherUnit] = field(default_factory=dict)
    students: dict[str, StudentUnit] = field(default_factory=dict)  # by allocation id
    baselines: dict[str, BaselineUnit] = field(default_factory=dict)  # by baseline id
    # The ladder each student (by allocation id) and baseline (by baseline id) trains in (ladder.py).
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
    if bool(options.total_steps) == bool(options.total_flops):
        raise PlanError("give the budgets as --total-steps N ... or as --total-flops F ..., one of the two")
    for flops in options.total_flops:
        if not flops > 0:
            raise PlanError(f"--total-flops {flops:g}: a budget needs FLOPs > 0")
    for budget in options.total_steps:
        if budget < 2:
            raise PlanError(f"--total-steps {budget}: a budget needs at least 2 steps (1 teacher + 1 student)")
    if options.teacher_steps and options.teacher_fractions:
        raise PlanError("give --teacher-steps or --teacher-fractions, not both")
    if not 0 < options.cooldown_fraction <= 0.5:
        raise PlanError(f"--cooldown-fraction {options.cooldown_fraction:g} must lie in (0, 0.5]")
    if options.probe_points < 1:
        raise PlanError(f"--probe-points {options.probe_points}: probe at least the final checkpoint (1)")
    if options.baseline_probe_points is not None and options.baseline_probe_points < 1:
        raise PlanError(f"baseline_probe_points {options.baseline_probe_points}: probe at least the final "
                        f"checkpoint (1)")
    for budget, seeds in options.budget_seeds.items():
        if budget not in options.budgets:
            raise PlanError(f"budget_seeds names budget {budget:g}, which the sweep does not train (budgets: "
                            f"{', '.join(f'{b:g}' for b in options.budgets)}); name one of them")
        if not seeds or (options.seeds and not set(seeds) <= set(options.seeds)):
            raise PlanError(f"budget_seeds {budget:g}: {list(seeds)} must be a non-empty subset of the sweep's seeds "
                            f"{list(options.seeds)}")
    for method in options.baselines:
        if method not in BASELINES:
            raise PlanError(f"--baselines {method}: unknown baseline; choose from {', '.join(BASELINES)}")
    if options.search == "optuna":
        if options.trials is None or options.trials < 1:
            raise PlanError("--search optuna needs --trials K >= 1: how many allocations the search may train")
        if len(options.budgets) > 1 or len(set(options.seeds)) > 1:
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
    if options.total_flops:
        allocations = [allocation for flops in options.budgets for size in teacher_sizes
                       for allocation in _flops_allocations(experiment, options, flops, size, student_size,
                                                            options.seeds_of(flops, seeds))]
    else:
        allocations = [
            Allocation(budget, size, steps, student_size, budget - steps, seed)
            for budget in options.budgets
            for size in teacher_sizes
            for steps in _teacher_steps(budget, options)
            for seed in options.seeds_of(budget, seeds)
        ]
    sweep_dir = Path(experiment.runs_dir).expanduser().resolve() / experiment.name
    plan = Plan(experiment, options, sweep_dir, allocations)
    for allocation in allocations:
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
                    steps, flops = _baseline_steps(experiment, budget, student_size), budget
                unit = baseline_unit(sweep_dir, experiment, method, steps, student_size, seed,
                                     options.baseline_probe_points or options.probe_points,
                                     budget_flops=flops)
                _validate_optim(unit.cfg.optim, f"baseline {unit.id}", method)
                plan.baselines[unit.id] = unit
    data = data_view(experiment.data)
    for ladder in ladders_of(plan.students.values(), lambda unit: ladder_group(
            unit, {"kind": "student", "seed": unit.allocation.seed, "teacher": unit.teacher.key, "data": data})):
        plan.student_ladders.update({unit.allocation.id: ladder for unit in ladder.units})
    for ladder in ladders_of(plan.baselines.values(), lambda unit: ladder_group(
            unit, {"kind": unit.method, "seed": unit.seed, "data": data})):
        plan.baseline_ladders.update({unit.id: ladder for unit in ladder.units})
    return plan


def _step_flops(experiment: ExperimentConfig, teacher_size: str, student_size: str) -> tuple[float, float]:
    """FLOPs of one teacher step and one student step (against that teacher) at the experiment's batch sizes."""
    teacher, student = copy.deepcopy(experiment.teacher), copy.deepcopy(experiment.student)
    teacher.encoder.preset, student.encoder.preset = teacher_size, student_size
    data = experiment.data
    return (teacher_flops_per_clip(teacher, data) * teacher.optim.batch_size,
            student_flops_per_clip(student, teacher, data) * student.optim.batch_size)


def _flops_allocations(experiment: ExperimentConfig, options: SweepOptions, flops: float, teacher_size: str,
                       student_size: str, seeds: list[int]) -> list[Allocation]:
    """The allocations of a FLOPs budget: each teacher share (a fraction of the FLOPs, or the FLOPs of
    --teacher-steps T) becomes T teacher steps, and what is left of F becomes S student steps. Teachers of
    different sizes get different T and S: they are compared at equal compute."""
    teacher_step, student_step = _step_flops(experiment, teacher_size, student_size)
    what = f"--total-flops {flops:.3g} with teacher {teacher_size}"
    if options.teacher_steps:
        steps_list = sorted(set(options.teacher_steps))
    else:
        steps_list = []
        for fraction in options.teacher_fractions or DEFAULT_FRACTIONS:
            if not 0 < fraction < 1:
                raise PlanError(f"--teacher-fractions {float(fraction):g} lies outside (0, 1); a teacher share is "
                                f"between them")
            steps_list.append(max(1, round(float(fraction) * flops / teacher_step)))
        steps_list = sorted(set(steps_list))
    allocations = []
    for steps in steps_list:
        student_steps = round((flops - steps * teacher_step) / student_step)
        if student_steps < 1:
            raise PlanError(
                f"{what}: {steps} teacher steps cost {steps * teacher_step:.3g} FLOPs ({teacher_step:.3g} a step), "
                f"leaving no student step ({student_step:.3g} FLOPs a step); give a larger budget or a smaller share"
            )
        spent_teacher = steps * teacher_step
        share = spent_teacher / (spent_teacher + student_steps * student_step)
        allocations += [Allocation(steps + student_steps, teacher_size, steps, student_size, student_steps, seed,
                                   budget_flops=flops, flops_share=share) for seed in seeds]
    return allocations


def _baseline_steps(experiment: ExperimentConfig, flops: float, size: str) -> int:
    vjepa2 = copy.deepcopy(experiment.vjepa2)
    vjepa2.encoder.preset = size
    steps = round(flops / (vjepa2_flops_per_clip(vjepa2, experiment.data) * vjepa2.optim.batch_size))
    if steps < 1:
        raise PlanError(f"--total-flops {flops:.3g} pays for no step of the {size} baseline; give a larger budget")
    return steps


def _validate_optim(optim: OptimConfig, what: str, stage: str) -> None:
    try:
        optim.validate()
    except ValueError as error:
        fix = {"teacher": " or --cooldown-fraction, or give it more steps",
               "vjepa2": " or its cooldown_steps, or give it a larger budget"}.get(stage, " or give it more steps")
        raise PlanError(f"{what}: {error}; lower {stage}.optim.warmup_steps{fix}") from None
