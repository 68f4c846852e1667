"""The experiment file: one typed config for a whole study, loaded from YAML plus dotted overrides.

The dataclass defaults ARE the embedded tiny default (CPU, synthetic data), so every command
runs without an experiment file; experiments/tiny.yaml spells the same values out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from trainers.config import load_config
from trainers.data.config import DataConfig


@dataclass
class ExperimentConfig:
    name: str = "tiny"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)


def load_experiment(path: str | Path | None = None, overrides: Sequence[str] = ()) -> ExperimentConfig:
    return load_config(ExperimentConfig, path, overrides)
