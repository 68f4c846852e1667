"""The experiment file: one typed config for a whole study, loaded from YAML plus dotted overrides.

The dataclass defaults ARE the embedded tiny default (CPU, synthetic data), so every command
runs without an experiment file; experiments/tiny.yaml spells the same values out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from trainers.config import load_config
from trainers.data.config import DataConfig
from trainers.stage_config import ProbeConfig, StudentConfig, TeacherConfig, VJEPA2Config


@dataclass
class ExperimentConfig:
    name: str = "tiny"
    seed: int = 0
    runs_dir: str = "runs"  # run directories go to <runs_dir>/<name>/
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    vjepa2: VJEPA2Config = field(default_factory=VJEPA2Config)  # the baseline (`train vjepa2`, `sweep --baselines`)
    probe: ProbeConfig = field(default_factory=ProbeConfig)


def load_experiment(
    path: str | Path | None = None, overrides: Sequence[str] = (), *, base: Mapping[str, Any] | None = None
) -> ExperimentConfig:
    return absolute_lists(load_config(ExperimentConfig, path, overrides, base=base))


def absolute_lists(cfg: ExperimentConfig) -> ExperimentConfig:
    """Clip-list paths made absolute against the directory the command runs in, as they were meant, so that
    trials (which Ray may start elsewhere) and the saved config find the same files."""

    def absolute(path: str) -> str:
        return str(Path(path).expanduser().resolve())

    data = cfg.data
    data.train_list = data.train_list and absolute(data.train_list)
    data.val_list = data.val_list and absolute(data.val_list)
    for part in data.pretrain:
        part.path = absolute(part.path)
    for task in cfg.probe.tasks.values():
        task.train_list, task.val_list = absolute(task.train_list), absolute(task.val_list)
    return cfg
