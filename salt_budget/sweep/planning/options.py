"""What a sweep asks for on top of the experiment config (SweepOptions), checked before anything is planned."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from trainers.config import ConfigError
from trainers.registry import baselines

from salt_budget.sweep.planning.units import Schedule

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
    # optuna: the teacher share searched on a log scale between these bounds (None: DEFAULT_FRACTIONS' ends)
    share_bounds: tuple[float, float] | None = None
    search_seed: int | None = None  # the TPE sampler's seed (None: the experiment's seed)
    pruning: Literal["median", "none"] = "median"  # optuna: stop a trial behind the median at a probe point
    pruning_startup: int = 3  # trials that finish before any is pruned
    trackers: tuple[str, ...] = ()  # tensorboard, wandb, mlflow: where every unit is also logged (tracking)
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


def check_options(options: SweepOptions) -> None:
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
    for fraction in options.teacher_fractions:
        if not 0 < fraction < 1:
            raise PlanError(
                f"--teacher-fractions {float(fraction):g} lies outside (0, 1); a teacher share is between them"
            )
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
        if method not in baselines():
            raise PlanError(f"--baselines {method}: unknown baseline; choose from {', '.join(baselines())}")
    if options.search == "optuna":
        _check_search(options)
        return
    for given, flag in [(options.trials is not None, "--trials"), (options.share_bounds is not None, "--share-bounds"),
                        (options.search_seed is not None, "--search-seed")]:
        if given:
            raise PlanError(f"{flag} applies to --search optuna; a grid sweep trains every allocation")


def share_bounds(options: SweepOptions) -> tuple[float, float]:
    """The teacher shares an optuna search draws from, on a log scale."""
    return options.share_bounds or (float(min(DEFAULT_FRACTIONS)), float(max(DEFAULT_FRACTIONS)))


def _check_search(options: SweepOptions) -> None:
    if options.trials is None or options.trials < 1:
        raise PlanError("--search optuna needs --trials K >= 1: how many allocations the search may train")
    if len(options.budgets) > 1 or len(set(options.seeds)) > 1:
        raise PlanError(
            "--search optuna searches the teacher share of ONE budget and seed (a larger budget always wins); "
            "run one sweep per budget with the same --name to share the teachers"
        )
    if options.teacher_steps or options.teacher_fractions:
        raise PlanError("--search optuna draws the teacher share between --share-bounds LO HI (default 1/12 1/2); "
                        "--teacher-steps and --teacher-fractions name a grid's points: drop them")
    low, high = share_bounds(options)
    if not 0 < low < high < 1:
        raise PlanError(f"--share-bounds {low:g} {high:g}: give 0 < LO < HI < 1 (teacher shares of the budget)")
    if options.pruning_startup < 0:
        raise PlanError(f"--pruning-startup {options.pruning_startup}: give 0 or more finished trials")
