"""A few steps of a stage on random clips, timed: the FLOP rate a plan prices its time with where no earlier run
measured the stage at these shapes. Seconds, not minutes: no data set is read or generated. On a CPU it runs
on one thread, as a sweep's unit does with the default --cpus-per-trial 1 (Ray gives a trial as many threads as
CPUs). It leaves out data loading, checkpoints and logging, so the time it predicts errs short: on
experiments/first.yaml's shapes (2026-12-05, Intel Xeon AVX-512, 1 thread, three calibrations) 41-46 / 51-52 /
49-52 GFLOP/s for teacher / student / V-JEPA 2, against 27.5 / 42.3 / 34.5 measured by the study's real runs on
this machine kind: 1.2-1.6x fast."""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import torch

from trainers.bench import _random_teacher
from trainers.data.config import DataConfig
from trainers.loop import param_groups, resolve_device
from trainers.train_step import backward_in_parts
from trainers.masks import MaskGenerator
from trainers.registry import stage_kind


def calibrate_stage(kind: str, cfg: Any, data: DataConfig, *, batch: int = 2, warmup: int = 1,
                    steps: int = 2, threads: int | None = 1) -> float:
    """FLOP/s of `kind`'s training step (forward, backward, AdamW) at `batch` clips, median over `steps`, on
    `threads` CPU threads (None: as set)."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _calibrate(kind, cfg, data, batch, warmup, steps)
    finally:
        torch.set_num_threads(previous)


def _calibrate(kind: str, cfg: Any, data: DataConfig, batch: int, warmup: int, steps: int) -> float:
    entry = stage_kind(kind)
    cfg = copy.deepcopy(cfg)
    cfg.optim.batch_size, cfg.run.micro_batch = batch, None
    device = resolve_device(cfg.run.device)
    with tempfile.TemporaryDirectory(prefix="salt-calibrate-") as tmp:
        if entry.needs_teacher:
            cfg.teacher_checkpoint = str(_random_teacher(cfg, data, Path(tmp)))
        torch.manual_seed(0)
        stage = entry.stage_class(cfg, data)
    autocast = device.type == "cuda" and cfg.run.precision == "bf16"
    stage.to(device, torch.bfloat16 if autocast else None)
    optimizer = torch.optim.AdamW(param_groups(stage.trainable), lr=cfg.optim.lr)
    generator, rng = MaskGenerator(stage.masks, stage.grid), np.random.default_rng(0)
    video = torch.randint(0, 256, (batch, 3, data.frames, data.resolution, data.resolution), dtype=torch.uint8)
    times, flops = [], []
    for step in range(warmup + steps):
        masks, _ = generator(batch, rng)
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        backward_in_parts(stage.loss, [{"video": video, "masks": masks}], data, device, autocast)
        optimizer.step()
        stage.after_step(step + 1)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= warmup:
            times.append(time.perf_counter() - started)
            flops.append(stage.flops_per_clip(masks) * batch)
    return float(np.mean(flops)) / median(times)
