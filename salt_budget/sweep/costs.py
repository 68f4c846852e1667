"""Predicted cost of an allocation before anything trains: FLOPs (docs/paper.md section 7) from the
architecture and the mask generator's expected token counts, and time where a throughput was measured."""

from __future__ import annotations

import functools
import json
import math
import statistics
from pathlib import Path

import numpy as np
import yaml

from trainers.config import from_dict, to_dict
from trainers.data.config import DataConfig
from trainers.flops import (
    predictor_param_count, student_step_flops, teacher_step_flops, vit_param_count, vjepa2_step_flops,
)
from trainers.masks import MaskConfig, MaskGenerator
from trainers.models.presets import ViTSpec, encoder_spec
from trainers.stage_config import EncoderConfig, StudentConfig, TeacherConfig, VJEPA2Config

from salt_budget.sweep.workers import read_processes

# Enough sampled clips that the mean token count is stable to a fraction of a percent.
_SAMPLED_CLIPS = 2048


def _spec(encoder: EncoderConfig) -> ViTSpec:
    return encoder_spec(encoder.preset, encoder.patch_size, encoder.tubelet_size)


def token_grid(spec: ViTSpec, data: DataConfig) -> tuple[int, int, int]:
    side = data.resolution // spec.patch_size
    return data.frames // spec.tubelet_size, side, side


@functools.lru_cache(maxsize=64)
def _mask_tokens(masks_json: str, grid: tuple[int, int, int], batch_size: int) -> tuple[float, float]:
    masks = from_dict(MaskConfig, json.loads(masks_json))
    generator = MaskGenerator(masks, grid)
    rng = np.random.default_rng(0)
    draws = min(64, max(4, math.ceil(_SAMPLED_CLIPS / batch_size)))
    context = target = 0.0
    for _ in range(draws):
        mask_sets, _ = generator(batch_size, rng)
        for mask in mask_sets:
            context += _kept(mask.context, mask.context_valid)
            target += _kept(mask.target, mask.target_valid)
    return context / draws, target / draws


def _kept(index, valid) -> float:
    # As the training loop counts them: rows cut to the batch minimum, or their valid entries.
    return float(index.size(1)) if valid is None else float(valid.sum(1).float().mean())


def mask_tokens(masks: MaskConfig, grid: tuple[int, int, int], batch_size: int) -> tuple[float, float]:
    """Expected (context, target) tokens per clip summed over the masks, as the batch cut leaves them."""
    return _mask_tokens(json.dumps(to_dict(masks), sort_keys=True), grid, batch_size)


def teacher_flops_per_clip(cfg: TeacherConfig, data: DataConfig) -> float:
    spec = _spec(cfg.encoder)
    context, target = mask_tokens(cfg.masks, token_grid(spec, data), cfg.run.split_batch(cfg.optim.batch_size)[0])
    pixels = 3 * spec.tubelet_size * spec.patch_size**2
    decoder = predictor_param_count(spec.width, pixels, width=cfg.decoder.width, depth=cfg.decoder.depth)
    return teacher_step_flops(vit_param_count(spec), decoder, context, context + target)


def student_flops_per_clip(cfg: StudentConfig, teacher: TeacherConfig, data: DataConfig) -> float:
    spec, teacher_spec = _spec(cfg.encoder), _spec(teacher.encoder)
    grid = token_grid(spec, data)
    context, target = mask_tokens(cfg.masks, grid, cfg.run.split_batch(cfg.optim.batch_size)[0])
    predictor = predictor_param_count(spec.width, teacher_spec.width, width=cfg.predictor.width,
                                      depth=cfg.predictor.depth)
    return student_step_flops(vit_param_count(spec), predictor, vit_param_count(teacher_spec), context,
                              context + target, float(grid[0] * grid[1] * grid[2]))


def vjepa2_flops_per_clip(cfg: VJEPA2Config, data: DataConfig) -> float:
    spec = _spec(cfg.encoder)
    grid = token_grid(spec, data)
    context, target = mask_tokens(cfg.masks, grid, cfg.run.split_batch(cfg.optim.batch_size)[0])
    predictor = predictor_param_count(spec.width, spec.width, width=cfg.predictor.width, depth=cfg.predictor.depth)
    return vjepa2_step_flops(vit_param_count(spec), predictor, context, context + target,
                             float(grid[0] * grid[1] * grid[2]))


def stage_flops(per_clip: float, batch_size: int, steps: int) -> float:
    return per_clip * batch_size * steps


# Where no run with W data-parallel workers measured a rate, W workers are predicted at W x one process's rate
# times this: one all-reduce of the gradients per step, overlapped with nothing (trainers/distributed.py). An
# assumption, stated wherever it is used; a finished W-worker run replaces it with its measured rate.
ASSUMED_EFFICIENCY = 0.9


def _rate_key(kind: str, preset: str, data: dict, batch_size: int, world: int = 1) -> tuple:
    return kind, preset, data.get("frames"), data.get("resolution"), batch_size, world


def _world(run_dir: Path) -> int:
    """How many data-parallel processes trained a run (its processes.jsonl; 1 for a run without one)."""
    try:
        return max([process["world"] for process in read_processes(run_dir)] or [1])
    except (OSError, ValueError, KeyError):
        return 1


def measured_rates(runs_dir: Path, calibrations: Path | None = None) -> dict[tuple, float]:
    """Achieved FLOP/s of earlier runs under `runs_dir` (sweeps and single stage runs), by stage, trained
    encoder preset, frames, resolution and the clips of one pass on the device (run.micro_batch where set):
    the median over runs of cumulative FLOPs over
    cumulative training wall time at their last logged step. Where none measured a key, a calibration of this
    machine in the folder `calibrations` (salt_budget/sweep/calibration.py) stands in."""
    rates: dict[tuple, list[float]] = {}
    # <runs>/<sweep>/{teachers,trials,baselines}/<key>/ of sweeps and <runs>/<name>/<run>/ of `salt-budget train --run-dir`.
    for config_path in [*runs_dir.glob("*/*/config.yaml"), *runs_dir.glob("*/*/*/config.yaml")]:
        metrics = config_path.with_name("metrics.jsonl")
        try:
            config = yaml.safe_load(config_path.read_text())
            lines = metrics.read_text().splitlines() if metrics.is_file() else []
            last = json.loads(lines[-1]) if lines else None
        except (OSError, ValueError, yaml.YAMLError):
            continue  # a run being written or a foreign file says nothing about throughput
        kind = config.get("kind") if isinstance(config, dict) else None
        if kind not in ("teacher", "student", "vjepa2") or not last or not last.get("wall_s"):
            continue
        stage = config[kind]
        batch, micro = stage["optim"]["batch_size"], stage.get("run", {}).get("micro_batch")
        on_device = min(batch, micro) if micro else batch
        key = _rate_key(kind, stage["encoder"]["preset"], config["data"], on_device, _world(config_path.parent))
        # metrics.jsonl's FLOPs are summed over the processes, its wall time each one's: the run's whole rate.
        rates.setdefault(key, []).append(last["flops"] / last["wall_s"])
    found = {key: statistics.median(values) for key, values in rates.items()}
    return {**(_calibrated_rates(calibrations) if calibrations else {}), **found}


def calibration_machine() -> str:
    """What a calibration's rate holds for: this machine's GPU, or its processor on one thread (trainers/calibrate.py)."""
    import torch

    from trainers.provenance import cpu_model

    return torch.cuda.get_device_name() if torch.cuda.is_available() else f"{cpu_model()}, 1 thread"


def _calibrated_rates(folder: Path) -> dict[tuple, float]:
    """Rates of calibration.jsonl (salt_budget/sweep/calibration.py) taken on this machine; the latest per key."""
    path = folder / "calibration.jsonl"
    if not path.is_file():
        return {}
    machine, rates = calibration_machine(), {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash: the next calibration replaces it
        if record.get("machine") == machine:
            key = _rate_key(record["kind"], record["preset"], record, record["batch"], record.get("world", 1))
            rates[key] = record["flops_per_s"]
    return rates


def predicted_seconds(rates: dict[tuple, float], kind: str, cfg: TeacherConfig | StudentConfig | VJEPA2Config,
                      data: DataConfig, flops: float, workers: int = 1) -> tuple[float | None, bool]:
    """(seconds on `workers` data-parallel processes or None where nothing was measured, whether that rests on
    ASSUMED_EFFICIENCY rather than a run measured at that worker count)."""
    on_device = cfg.run.split_batch(cfg.optim.batch_size)[0]
    key = _rate_key(kind, cfg.encoder.preset, to_dict(data), on_device, workers)
    if rates.get(key):
        return flops / rates[key], False
    single = rates.get(_rate_key(kind, cfg.encoder.preset, to_dict(data), on_device, 1))
    if not single:
        return None, False
    return flops / (single * (1.0 if workers == 1 else workers * ASSUMED_EFFICIENCY)), workers > 1
