"""The units a sweep trains (one teacher per size x steps x seed, one student per allocation, one
baseline per method x budget x seed): their stage configs and content keys.

A key hashes everything that determines the artifact and nothing else, so a rerun, a resumed
sweep or another sweep in the same folder finds the teacher or student it already trained.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from analysis.markdown import budget_id
from trainers.checkpoint import checkpoint_path
from trainers.config import config_hash, to_dict
from trainers.data.config import DataConfig
from trainers.data.config import data_view as loader_free_view
from trainers.stage_config import StudentConfig, TeacherConfig

from salt_budget.experiment import ExperimentConfig

Schedule = Literal["wsd", "cosine"]



class Budgeted:
    """The budget of a unit trained for one: `budget` steps, or the `budget_flops` FLOPs that paid for them."""

    budget: int
    budget_flops: float | None

    @property
    def budget_tag(self) -> str:
        """The budget's part of the unit's id: N240000 or F1.49e21."""
        return budget_id(self.budget_value, self.budget_kind)

    @property
    def budget_kind(self) -> str:
        return "flops" if self.budget_flops else "steps"

    @property
    def budget_value(self) -> float:
        """What the results table's budget column holds: N steps, or F FLOPs."""
        return self.budget_flops if self.budget_flops else self.budget


@dataclass(frozen=True)
class Allocation(Budgeted):
    """One point of the grid: T teacher steps + S student steps = the budget (N steps), or, for a budget in
    FLOPs (`budget_flops`), the T and S whose FLOPs add up to it, the teacher taking `flops_share` of them."""

    budget: int  # T + S
    teacher_size: str
    teacher_steps: int
    student_size: str
    student_steps: int
    seed: int
    budget_flops: float | None = None
    flops_share: float | None = None

    @property
    def id(self) -> str:
        return (f"{self.budget_tag}_T{self.teacher_steps}-{self.teacher_size}"
                f"_S{self.student_steps}-{self.student_size}_seed{self.seed}")

    @property
    def teacher_share(self) -> float:
        """T / N of a step budget; the teacher's share of the FLOPs of a FLOPs budget."""
        return self.flops_share if self.flops_share is not None else self.teacher_steps / self.budget

    @property
    def teacher_id(self) -> TeacherId:
        return TeacherId(self.teacher_size, self.teacher_steps, self.seed)


@dataclass(frozen=True, order=True)
class TeacherId:
    size: str
    steps: int
    seed: int


def data_view(data: DataConfig) -> dict[str, Any]:
    """The data settings a unit's key hashes: trainers.data.config.data_view (which clips, not how fast they
    arrive), plus decoded_cache_mb. That one only sizes an in-memory cache, but unit keys were first hashed with it,
    and every sweep folder finds the units it trained by key: leaving it out would retrain them all."""
    return {**loader_free_view(data), "decoded_cache_mb": data.decoded_cache_mb}


def cooldown_steps(steps: int, fraction: float) -> int:
    return max(1, int(steps * fraction + 0.5))


def teacher_config(
    experiment: ExperimentConfig, size: str, steps: int, schedule: Schedule, cooldown_fraction: float
) -> TeacherConfig:
    """The experiment's teacher at `size` trained `steps` steps. With "wsd" it cools down over the
    last `cooldown_fraction` of its steps, so one constant-lr trunk serves every step count."""
    cfg = copy.deepcopy(experiment.teacher)
    cfg.encoder.preset = size
    cfg.optim.steps = steps
    cfg.optim.schedule = schedule
    cfg.optim.cooldown_steps = cooldown_steps(steps, cooldown_fraction) if schedule == "wsd" else 0
    cfg.run.checkpoint_steps = []  # a trunk adds its ladder points; they choose which files are kept, not the weights
    return cfg


def teacher_key(seed: int, data: DataConfig, cfg: TeacherConfig) -> str:
    return config_hash({"kind": "teacher", "seed": seed, "data": data_view(data), "teacher": cfg})


def probe_steps(steps: int, points: int) -> list[int]:
    """`points` checkpoints evenly spaced along a run, the last one included."""
    return sorted({max(1, int(steps * i / points + 0.5)) for i in range(1, points + 1)})


def student_config(
    experiment: ExperimentConfig, allocation: Allocation, teacher_checkpoint: Path | None, probe_points: int,
    schedule: Schedule | None = None, cooldown_fraction: float = 0.2,
) -> StudentConfig:
    """The experiment's student for `allocation`. `schedule` "wsd" cools down over the last `cooldown_fraction`
    of its steps, so that the students of one teacher at several budgets share a trunk (ladder.py); "cosine"
    sets the paper's schedule; None keeps the experiment's."""
    cfg = copy.deepcopy(experiment.student)
    cfg.encoder.preset = allocation.student_size
    cfg.optim.steps = allocation.student_steps
    if schedule is not None:
        cfg.optim.schedule = schedule
        cfg.optim.cooldown_steps = cooldown_steps(allocation.student_steps, cooldown_fraction) if schedule == "wsd" else 0
    cfg.run.checkpoint_steps = probe_steps(allocation.student_steps, probe_points)
    cfg.teacher_checkpoint = str(teacher_checkpoint) if teacher_checkpoint else None
    return cfg


def student_key(seed: int, data: DataConfig, cfg: StudentConfig, teacher: str) -> str:
    # The teacher enters by its key, not its path: the folder may move, the artifact stays the same.
    view = to_dict(cfg)
    view["teacher_checkpoint"] = teacher
    return config_hash({"kind": "student", "seed": seed, "data": data_view(data), "student": view})


@dataclass(frozen=True)
class TeacherUnit:
    id: TeacherId
    key: str
    cfg: TeacherConfig
    run_dir: Path
    kind = "teacher"

    @property
    def steps(self) -> int:
        return self.id.steps

    @property
    def seed(self) -> int:
        return self.id.seed

    @property
    def final_checkpoint(self) -> Path:
        return checkpoint_path(self.run_dir / "checkpoints", self.id.steps)


@dataclass(frozen=True)
class StudentUnit:
    allocation: Allocation
    key: str
    cfg: StudentConfig
    run_dir: Path
    teacher: TeacherUnit
    kind = "student"

    @property
    def steps(self) -> int:
        return self.allocation.student_steps

    @property
    def seed(self) -> int:
        return self.allocation.seed

    @property
    def checkpoint_steps(self) -> list[int]:
        return list(self.cfg.run.checkpoint_steps)


def teacher_unit(sweep_dir: Path, experiment: ExperimentConfig, tid: TeacherId, schedule: Schedule,
                 cooldown_fraction: float) -> TeacherUnit:
    cfg = teacher_config(experiment, tid.size, tid.steps, schedule, cooldown_fraction)
    key = teacher_key(tid.seed, experiment.data, cfg)
    return TeacherUnit(tid, key, cfg, sweep_dir / "teachers" / key)


def student_unit(sweep_dir: Path, experiment: ExperimentConfig, allocation: Allocation, teacher: TeacherUnit,
                 probe_points: int, schedule: Schedule | None = None, cooldown_fraction: float = 0.2) -> StudentUnit:
    cfg = student_config(experiment, allocation, teacher.final_checkpoint, probe_points, schedule, cooldown_fraction)
    key = student_key(allocation.seed, experiment.data, cfg, teacher.key)
    return StudentUnit(allocation, key, cfg, sweep_dir / "trials" / f"{allocation.id}-{key[:8]}", teacher)


@dataclass(frozen=True)
class BaselineUnit(Budgeted):
    """A baseline trained for a whole budget: the student's encoder size, N steps (matched total steps). Its
    method is a stage kind registered as a baseline (trainers/registry.py)."""

    method: str
    budget: int  # its steps: N, or as many as a FLOPs budget pays for
    size: str
    seed: int
    key: str
    cfg: Any
    sweep_dir: Path
    budget_flops: float | None = None

    @property
    def kind(self) -> str:
        return self.method

    @property
    def id(self) -> str:
        return f"{self.budget_tag}_{self.method}-{self.size}_seed{self.seed}"

    @property
    def run_dir(self) -> Path:
        return self.sweep_dir / "baselines" / f"{self.id}-{self.key[:8]}"

    @property
    def steps(self) -> int:
        return self.budget

    @property
    def checkpoint_steps(self) -> list[int]:
        return list(self.cfg.run.checkpoint_steps)


def baseline_config(experiment: ExperimentConfig, method: str, budget: int, size: str, probe_points: int) -> Any:
    """The experiment's section of baseline `method` at encoder `size`, trained `budget` steps."""
    cfg = copy.deepcopy(experiment.stage_config(method))
    cfg.encoder.preset = size
    cfg.optim.steps = budget
    cfg.run.checkpoint_steps = probe_steps(budget, probe_points)
    return cfg


def baseline_unit(sweep_dir: Path, experiment: ExperimentConfig, method: str, budget: int, size: str, seed: int,
                  probe_points: int, budget_flops: float | None = None) -> BaselineUnit:
    cfg = baseline_config(experiment, method, budget, size, probe_points)
    key = config_hash({"kind": method, "seed": seed, "data": data_view(experiment.data), method: cfg})
    return BaselineUnit(method, budget, size, seed, key, cfg, sweep_dir, budget_flops)
