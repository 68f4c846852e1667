"""The stages as plain functions: config in, run directory out (the same under Ray, pytest or the CLI)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from trainers.config import to_dict
from trainers.data.config import DataConfig
from trainers.loop import train
from trainers.memory import release_memory
from trainers.registry import stage_kind
from trainers.stage_config import StudentConfig, TeacherConfig, VJEPA2Config
from trainers.tracking.spec import TrackingSpec


def train_stage(
    kind: str, cfg: Any, data: DataConfig, run_dir: str | os.PathLike, *, seed: int = 0,
    init_from: str | os.PathLike | None = None, progress: bool = True, stop_at: int | None = None,
    tracking: TrackingSpec | None = None,
) -> Path:
    """Train a stage of any registered kind (trainers/registry.py), `cfg` its config. Returns the final checkpoint.
    `tracking`: the tracker run its metrics also go to (trainers/tracking/), or None."""
    torch.manual_seed(seed)  # the initial weights are part of what the seed reproduces
    stage = stage_kind(kind).stage_class(cfg, data)
    config = {"kind": stage.kind, "seed": seed, "data": to_dict(data), stage.kind: to_dict(cfg)}
    try:
        return train(stage, data=data, optim=cfg.optim, run=cfg.run, seed=seed, run_dir=run_dir, config=config,
                     init_from=init_from, progress=progress, stop_at=stop_at, tracking=tracking)
    finally:
        del stage  # the caller may train the next unit in this process (trainers/memory.py)
        release_memory()


def train_teacher(
    cfg: TeacherConfig, data: DataConfig, run_dir: str | os.PathLike, *, seed: int = 0,
    init_from: str | os.PathLike | None = None, progress: bool = True, stop_at: int | None = None,
) -> Path:
    """Stage 1 (V-Pixel). Returns the final checkpoint."""
    return train_stage("teacher", cfg, data, run_dir, seed=seed, init_from=init_from, progress=progress,
                       stop_at=stop_at)


def train_student(
    cfg: StudentConfig, data: DataConfig, run_dir: str | os.PathLike, *, seed: int = 0,
    init_from: str | os.PathLike | None = None, progress: bool = True, stop_at: int | None = None,
) -> Path:
    """Stage 2 (SALT) against the frozen teacher at cfg.teacher_checkpoint. Returns the final checkpoint."""
    return train_stage("student", cfg, data, run_dir, seed=seed, init_from=init_from, progress=progress,
                       stop_at=stop_at)


def train_vjepa2(
    cfg: VJEPA2Config, data: DataConfig, run_dir: str | os.PathLike, *, seed: int = 0,
    init_from: str | os.PathLike | None = None, progress: bool = True, stop_at: int | None = None,
) -> Path:
    """The V-JEPA 2 baseline (EMA target). Returns the final checkpoint; its encoder_state is the EMA copy."""
    return train_stage("vjepa2", cfg, data, run_dir, seed=seed, init_from=init_from, progress=progress,
                       stop_at=stop_at)
