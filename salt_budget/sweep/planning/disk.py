"""The disk a sweep's run folder will fill, predicted before it trains: checkpoints (weights and AdamW's two
moments, fp32, per kept step) and the probes' feature caches (fp16 tokens of every probed video and view),
against the free space of the file system that will hold it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from salt_budget.sweep.planning.plan import Plan
from trainers.registry import stage_kind
from trainers.stage_config import EncoderConfig
from trainers.stage_costs import config_spec, token_grid

FP16 = 2


@dataclass(frozen=True)
class DiskEstimate:
    checkpoints: float
    features: float

    @property
    def total(self) -> float:
        return self.checkpoints + self.features


def checkpoint_bytes(kind: str, cfg: Any, teacher: Any = None) -> float:
    """One checkpoint of stage kind `kind`, as its stage predicts it (trainers/registry.py)."""
    return stage_kind(kind).checkpoint_bytes(cfg=cfg, teacher=teacher)


def feature_bytes(encoder: EncoderConfig, data, probe_rows: float) -> float:
    """One probe's cache: `probe_rows` (videos x clips x views summed over the probe's train and val lists) rows of
    the encoder's tokens."""
    spec = config_spec(encoder)
    t, h, w = token_grid(spec, data)
    return FP16 * probe_rows * t * h * w * spec.width


def estimate_disk(plan: Plan, probe_rows: float) -> DiskEstimate:
    """Every unit's kept checkpoints (its probed or branch steps and `keep_last` periodic ones) and every probe's
    features (teachers probed once, students and baselines at each probe point, the random-init floor once)."""
    data = plan.experiment.data
    checkpoints = features = 0.0
    for unit in plan.teachers.values():
        checkpoints += checkpoint_bytes("teacher", unit.cfg) * (1 + unit.cfg.run.keep_last)
        features += feature_bytes(unit.cfg.encoder, data, probe_rows)
    for unit in plan.students.values():
        kept = len(unit.checkpoint_steps) + unit.cfg.run.keep_last
        checkpoints += checkpoint_bytes("student", unit.cfg, unit.teacher.cfg) * kept
        features += feature_bytes(unit.cfg.encoder, data, probe_rows) * len(unit.checkpoint_steps)
    for unit in plan.baselines.values():
        kept = len(unit.checkpoint_steps) + unit.cfg.run.keep_last
        checkpoints += checkpoint_bytes(unit.method, unit.cfg) * kept
        features += feature_bytes(unit.cfg.encoder, data, probe_rows) * len(unit.checkpoint_steps)
    sizes = {unit.cfg.encoder.preset: unit.cfg.encoder for unit in [*plan.teachers.values(), *plan.students.values()]}
    features += sum(feature_bytes(encoder, data, probe_rows) for encoder in sizes.values()) * len(
        {a.seed for a in plan.allocations})
    return DiskEstimate(checkpoints, features)


def _size(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1e3:.0f} kB"


def free_bytes(folder: Path) -> tuple[Path, float]:
    """Free space where `folder` will be: the nearest folder that exists on its path."""
    existing = folder.resolve()
    while not existing.exists():
        existing = existing.parent
    return existing, float(shutil.disk_usage(existing).free)


def disk_lines(plan: Plan, probe_rows: float) -> list[str]:
    estimate = estimate_disk(plan, probe_rows)
    where, free = free_bytes(plan.sweep_dir)
    lines = [f"disk: about {_size(estimate.total)} in {plan.sweep_dir} (checkpoints {_size(estimate.checkpoints)}, "
             f"probe feature caches {_size(estimate.features)}); {_size(free)} free on the file system of {where}"]
    if estimate.total > free:
        lines.append(f"WARNING: the run folder needs about {_size(estimate.total)} but {_size(free)} is free: put "
                     f"runs_dir on a larger file system, or probe fewer checkpoints (--probe-points) or fewer clips "
                     f"and views (probe.clips, probe.views)")
    return lines
