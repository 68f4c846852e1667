"""The study file: the paper's ablations (docs/paper.md section 8) as sweeps of one experiment.

Each ablation is one sweep request; its `variants` are experiment overrides (the teacher's masks,
say), each trained as its own sweep. Every variant without overrides shares one sweep folder, so an
allocation the allocation and teacher-size ablations both ask for is trained once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

from salt_budget.experiment import ExperimentConfig, load_experiment
from salt_budget.sweep.planning.options import SweepOptions
from trainers.registry import baselines as registered_baselines
from trainers.config import ConfigError
from trainers.config_files import load_config

SHARED_SWEEP = "main"  # the folder of every variant without overrides
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class AblationConfig:
    """One ablation: a sweep request (as `salt-budget sweep` takes it), per variant of the experiment."""

    total_steps: list[int] = field(default_factory=list)
    teacher_fractions: list[str] = field(default_factory=list)  # "1/12"; empty with no teacher_steps: 1/12..1/2
    teacher_steps: list[int] = field(default_factory=list)
    teacher_sizes: list[str] = field(default_factory=list)  # empty: the experiment's teacher
    student_size: str | None = None
    seeds: list[int] = field(default_factory=list)  # empty: the study's seeds
    # budget -> the seeds that train it, fewer than `seeds` (an expensive largest budget for the recommendation's
    # check: those seeds' ladders reach it from the trunk the smaller budgets share, in one sweep)
    budget_seeds: dict[int, list[int]] = field(default_factory=dict)
    # Baseline methods (stage kinds registered as baselines, trainers/registry.py: vjepa2), each trained once per budget and seed of every
    # variant's sweep, as `salt-budget sweep --baselines` does: the study's rows to set the students against.
    baselines: list[str] = field(default_factory=list)
    # name -> dotted experiment overrides; empty: one variant, the experiment as it is
    variants: dict[str, list[str]] = field(default_factory=dict)

    def fractions(self, where: str) -> tuple[Fraction, ...]:
        try:
            return tuple(Fraction(text) for text in self.teacher_fractions)
        except (ValueError, ZeroDivisionError):
            raise ConfigError(f"{where}.teacher_fractions {self.teacher_fractions}: write fractions as '1/12' "
                              f"or decimals") from None


@dataclass
class StudyConfig:
    name: str = "study"
    experiment: str | None = None  # experiment YAML, relative to the study file; None: the embedded tiny one
    overrides: list[str] = field(default_factory=list)  # dotted experiment overrides for every sweep
    seeds: list[int] = field(default_factory=lambda: [0])
    random_init_probe: bool = True  # probe a random-init student-size encoder per seed: the floor to beat
    # Student checkpoints probed, one value for every ablation: it enters the student's key, so ablations
    # that ask for the same allocation share it only with equal probe points.
    probe_points: int = 3
    baseline_probe_points: int | None = None  # per baseline run; None: probe_points (the final one suffices)
    teacher_schedule: Literal["wsd", "cosine"] = "wsd"
    student_schedule: Literal["wsd", "cosine"] | None = None  # None: the teacher schedule
    # The paper's step counts divided by this give the study's (125 for the tiny study: 240k -> 1,920): how the
    # report finds the paper's row for each budget and teacher length. None: the largest allocation budget
    # stands for the paper's 240k.
    paper_scale: float | None = None
    ablations: dict[str, AblationConfig] = field(default_factory=dict)

    def validate(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"name {self.name!r}: use letters, digits, '_', '-' and '.' (it names a folder)")
        if not self.ablations:
            raise ValueError("ablations is empty: name at least one (allocation, teacher_size, teacher_masks, ...)")
        if not self.seeds:
            raise ValueError("seeds is empty: give at least one seed")
        if self.paper_scale is not None and not self.paper_scale > 0:
            raise ValueError(f"paper_scale {self.paper_scale}: give the factor the paper's steps are divided by "
                             f"(> 0, e.g. 125), or leave it out")
        for name, ablation in self.ablations.items():
            if not ablation.total_steps:
                raise ValueError(f"ablations.{name}.total_steps is empty: give the budget(s) in steps")
            for method in ablation.baselines:
                if method not in registered_baselines():
                    raise ValueError(f"ablations.{name}.baselines: unknown baseline {method!r}; choose from "
                                     f"{', '.join(registered_baselines())}")
            for variant in ablation.variants:
                if not _NAME.match(variant) or variant == SHARED_SWEEP:
                    raise ValueError(f"ablations.{name}.variants.{variant}: a variant names a folder; use letters, "
                                     f"digits, '_', '-', '.', and not {SHARED_SWEEP!r}")


@dataclass(frozen=True)
class StudySweep:
    """One sweep of the study: an ablation's variant, the experiment it trains and what it asks for."""

    ablation: str
    variant: str
    folder: str  # the sweep folder's name under runs/<study>/
    overrides: tuple[str, ...]
    experiment: ExperimentConfig
    options: SweepOptions


def load_study(path: str | Path, overrides: Sequence[str] = ()) -> StudyConfig:
    return load_config(StudyConfig, path, overrides)


def select_ablations(study: StudyConfig, names: Sequence[str]) -> list[str]:
    """The ablations a part of the study runs (`--ablations`), in the file's order; unknown names fail here."""
    unknown = [name for name in names if name not in study.ablations]
    if unknown:
        raise ConfigError(f"--ablations {' '.join(unknown)}: not an ablation of study {study.name!r}; choose from "
                          f"{', '.join(study.ablations)}")
    return [name for name in study.ablations if name in names]


def study_sweeps(study: StudyConfig, study_file: Path | None, trackers: Sequence[str] = ()) -> list[StudySweep]:
    """Every sweep of the study, in the file's order; experiment errors name the ablation and variant. `trackers`:
    where every sweep's units are also logged (--tracker)."""
    base = None
    if study.experiment is not None:
        base = Path(study.experiment)
        if not base.is_absolute() and study_file is not None:
            base = study_file.parent / base
    sweeps: list[StudySweep] = []
    folders: dict[str, tuple[str, ...]] = {}
    for name, ablation in study.ablations.items():
        where = f"ablations.{name}"
        variants = ablation.variants or {"default": []}
        for variant, extra in variants.items():
            overrides = (*study.overrides, *extra)
            try:
                experiment = load_experiment(base, overrides)
            except ConfigError as error:
                raise ConfigError(f"{where}.variants.{variant}: {error}") from None
            folder = SHARED_SWEEP if not extra else variant
            if folders.setdefault(folder, tuple(extra)) != tuple(extra):
                raise ConfigError(f"{where}.variants.{variant}: another ablation's variant {variant!r} has other "
                                  f"overrides ({list(folders[folder])}); give one of them another name")
            experiment.runs_dir = str(Path(experiment.runs_dir) / study.name)
            options = SweepOptions(
                total_steps=tuple(ablation.total_steps), name=folder, teacher_sizes=tuple(ablation.teacher_sizes),
                teacher_steps=tuple(ablation.teacher_steps), teacher_fractions=ablation.fractions(where),
                student_size=ablation.student_size, seeds=tuple(ablation.seeds or study.seeds),
                teacher_schedule=study.teacher_schedule, student_schedule=study.student_schedule,
                probe_points=study.probe_points, baseline_probe_points=study.baseline_probe_points,
                baselines=tuple(ablation.baselines),
                budget_seeds={budget: tuple(seeds) for budget, seeds in ablation.budget_seeds.items()},
                trackers=tuple(dict.fromkeys(trackers)),
            )
            sweeps.append(StudySweep(name, variant, folder, tuple(extra), experiment, options))
    return sweeps
