"""How a budget splits into teacher and student steps: by teacher steps or shares of a step budget, or by the
FLOPs each stage costs for a budget in FLOPs (docs/paper.md section 7)."""

from __future__ import annotations

import copy
from fractions import Fraction

from salt_budget.experiment import ExperimentConfig
from salt_budget.sweep.planning.costs import flops_per_clip
from salt_budget.sweep.planning.options import DEFAULT_FRACTIONS, PlanError, SweepOptions
from salt_budget.sweep.planning.units import Allocation


def teacher_steps(budget: int, options: SweepOptions) -> list[int]:
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
        steps = int(fraction * budget + Fraction(1, 2))
        if not 1 <= steps < budget:
            raise PlanError(
                f"teacher fraction {float(fraction):g} of --total-steps {budget} rounds to {steps} teacher steps, "
                f"leaving {'no teacher' if steps < 1 else 'no student'} steps; use a larger budget or another fraction"
            )
        steps_list.append(steps)
    return sorted(set(steps_list))


def _step_flops(experiment: ExperimentConfig, teacher_size: str, student_size: str) -> tuple[float, float]:
    """FLOPs of one teacher step and one student step (against that teacher) at the experiment's batch sizes."""
    teacher, student = copy.deepcopy(experiment.teacher), copy.deepcopy(experiment.student)
    teacher.encoder.preset, student.encoder.preset = teacher_size, student_size
    data = experiment.data
    return (flops_per_clip("teacher", teacher, data) * teacher.optim.batch_size,
            flops_per_clip("student", student, data, teacher) * student.optim.batch_size)


def flops_allocations(experiment: ExperimentConfig, options: SweepOptions, flops: float, teacher_size: str,
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


def baseline_steps(experiment: ExperimentConfig, method: str, flops: float, size: str) -> int:
    cfg = copy.deepcopy(experiment.stage_config(method))
    cfg.encoder.preset = size
    steps = round(flops / (flops_per_clip(method, cfg, experiment.data) * cfg.optim.batch_size))
    if steps < 1:
        raise PlanError(f"--total-flops {flops:.3g} pays for no step of the {size} {method} baseline; give a larger "
                        f"budget")
    return steps
