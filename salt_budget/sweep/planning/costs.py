"""Predicted cost of an allocation before anything trains: FLOPs (docs/paper.md section 7) as each stage kind
predicts them from its config (trainers/registry.py), and time where a throughput was measured."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import yaml

from trainers.config import to_dict
from trainers.data.config import DataConfig
from trainers.registry import stage_kind, stage_kinds

from salt_budget.sweep.results.processes import read_processes


def flops_per_clip(kind: str, cfg: Any, data: DataConfig, teacher: Any = None) -> float:
    """FLOPs of one training clip of stage kind `kind` at config `cfg`, as its stage predicts them
    (trainers/registry.py); `teacher` is the teacher's config of a stage that trains against one."""
    return stage_kind(kind).flops_per_clip(cfg=cfg, data=data, teacher=teacher)


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
    machine in the folder `calibrations` (salt_budget/sweep/planning/calibration.py) stands in."""
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
        if kind not in stage_kinds() or not last or not last.get("wall_s"):
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
    """Rates of calibration.jsonl (salt_budget/sweep/planning/calibration.py) taken on this machine; the latest per key."""
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


def predicted_seconds(rates: dict[tuple, float], kind: str, cfg: Any, data: DataConfig, flops: float,
                      workers: int = 1) -> tuple[float | None, bool]:
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
